"""Two small line charts painted by hand: the training loss at every step and the dev WER
at every evaluation, over the run's steps."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

LOSS_COLOUR = QColor("#1f77b4")
WER_COLOUR = QColor("#d0582a")
MARGIN = 6


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is >= `value` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value * (1 - 1e-9))


def _axis_text(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f} %"
    return f"{value:.3g}"


def value_range(values: list[float], percent: bool) -> tuple[float, float]:
    """The y axis: from 0 for the WER (a share of errors); around the values for the loss,
    whose changes are small beside its size."""
    top = max(values, default=0.0)
    if percent:
        return 0.0, nice_ceiling(top)
    bottom = min(values, default=0.0)
    pad = 0.1 * (top - bottom) or 0.05 * abs(top) or 1.0
    return max(0.0, bottom - pad), top + pad


class TrainingPlot(QWidget):
    """`add_loss(step, loss)` and `add_wer(step, wer)` add points; `truncate(step)` drops
    those after a step (a resumed run repeats the steps since its checkpoint)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPlot")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.losses: list[tuple[int, float]] = []
        self.wers: list[tuple[int, float]] = []
        self.total_steps = 0
        self._describe()

    def sizeHint(self) -> QSize:
        return QSize(560, 200)

    def minimumSizeHint(self) -> QSize:
        return QSize(300, 140)

    def clear(self) -> None:
        self.losses.clear()
        self.wers.clear()
        self.total_steps = 0
        self._changed()

    def set_total_steps(self, total: int) -> None:
        self.total_steps = total
        self._changed()

    def add_loss(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.losses = [p for p in self.losses if p[0] < step] + [(step, loss)]
            self._changed()

    def add_wer(self, step: int, wer: float) -> None:
        if math.isfinite(wer):
            self.wers = [p for p in self.wers if p[0] != step] + [(step, wer)]
            self.wers.sort()
            self._changed()

    def truncate(self, step: int) -> None:
        self.losses = [p for p in self.losses if p[0] <= step]
        self.wers = [p for p in self.wers if p[0] <= step]
        self._changed()

    def _changed(self) -> None:
        self._describe()
        self.update()

    def _describe(self) -> None:
        loss = f"training loss {self.losses[-1][1]:.3f} at step {self.losses[-1][0]}" if self.losses else "no loss yet"
        wer = f"dev WER {self.wers[-1][1] * 100:.1f} % at step {self.wers[-1][0]}" if self.wers else "no dev WER yet"
        self.setAccessibleDescription(f"{loss}; {wer}")

    # -- painting ------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002 - the whole widget is repainted
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        half = (self.width() - MARGIN) / 2
        left = QRectF(0, 0, half, self.height())
        right = QRectF(half + MARGIN, 0, half, self.height())
        self._panel(painter, left, "Training loss", self.losses, LOSS_COLOUR, percent=False)
        self._panel(painter, right, "Dev WER", self.wers, WER_COLOUR, percent=True)

    def _panel(
        self, painter: QPainter, rect: QRectF, title: str, points: list[tuple[int, float]], colour: QColor, *, percent: bool
    ) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        grid = QColor(text)
        grid.setAlphaF(0.15)
        metrics = self.fontMetrics()
        line = metrics.height()

        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text)
        painter.drawText(QRectF(rect.left(), rect.top(), rect.width(), line + 4), Qt.AlignmentFlag.AlignCenter, title)
        painter.setFont(self.font())

        y_min, y_max = value_range([v for _, v in points], percent)
        x_max = max([self.total_steps, 1, *(s for s, _ in points)])
        ticks = [y_min, (y_min + y_max) / 2, y_max]
        axis_width = max(metrics.horizontalAdvance(_axis_text(t, percent)) for t in ticks) + 6
        plot = QRectF(rect.left() + axis_width, rect.top() + line + 8, rect.width() - axis_width - 8,
                      rect.height() - 2 * line - 16)
        if plot.width() < 20 or plot.height() < 20:
            return

        painter.setPen(QPen(grid, 1))
        for fraction, tick in zip((0.0, 0.5, 1.0), ticks):
            y = plot.bottom() - fraction * plot.height()
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            label = QRectF(rect.left(), y - line / 2, axis_width - 4, line)
            painter.drawText(label, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _axis_text(tick, percent))
            painter.setPen(QPen(grid, 1))
        painter.setPen(text)
        below = QRectF(plot.left(), plot.bottom() + 2, plot.width(), line + 2)
        painter.drawText(below, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, "step")
        painter.drawText(below, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, str(x_max))

        if not points:
            muted = QColor(text)
            muted.setAlphaF(0.55)
            painter.setPen(muted)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "waiting for the first " + ("evaluation" if percent else "step"))
            return

        def at(step: int, value: float) -> QPointF:
            share = (min(max(value, y_min), y_max) - y_min) / (y_max - y_min)
            return QPointF(plot.left() + plot.width() * step / x_max, plot.bottom() - plot.height() * share)

        path = QPainterPath(at(*points[0]))
        for point in points[1:]:
            path.lineTo(at(*point))
        painter.setPen(QPen(colour, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        if len(points) <= 40:
            painter.setBrush(colour)
            for point in points:
                painter.drawEllipse(at(*point), 2.5, 2.5)
        last = points[-1]
        painter.setPen(colour)
        value = f"{last[1] * 100:.1f} %" if percent else f"{last[1]:.3f}"
        painter.drawText(QRectF(plot.left(), plot.top(), plot.width() - 2, line), Qt.AlignmentFlag.AlignRight, value)
