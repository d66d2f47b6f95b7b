"""Horizontal bar charts painted by hand: a label, a bar and its value on each row; the chosen
row in bold with the palette's accent colour, the others muted. The LID chart and the wizard's
similarity chart are both this."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QWidget


def blend(a: QColor, b: QColor, weight_of_a: float) -> QColor:
    """`a` mixed into `b`: muted text and bar colours that follow the palette."""
    w = weight_of_a
    return QColor.fromRgbF(
        a.redF() * w + b.redF() * (1 - w),
        a.greenF() * w + b.greenF() * (1 - w),
        a.blueF() * w + b.blueF() * (1 - w),
    )


@dataclass(frozen=True)
class Bar:
    label: str
    fraction: float  # the bar's length, 0 to 1 of the room there is
    value: str  # written after the bar
    chosen: bool = False


class BarChart(QWidget):
    """Subclasses turn their data into `Bar`s (`set_rows`) and may set the class constants."""

    ROW_PADDING = 8  # above and below the text of a row
    LABEL_SHARE = 0.45  # the most of the width that labels take
    WIDEST_VALUE = "100 %"
    MIN_WIDTH = 180
    MARGIN, GAP = 4, 6

    def __init__(self, empty_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty_text = empty_text
        self._rows: list[Bar] = []

    def set_rows(self, rows: list[Bar], description: str) -> None:
        self._rows = [Bar(r.label, max(0.0, min(1.0, r.fraction)), r.value, r.chosen) for r in rows]
        self.setAccessibleDescription(description or self.empty_text)
        self.updateGeometry()
        self.update()

    def row_height(self) -> int:
        return self.fontMetrics().height() + self.ROW_PADDING

    def minimumSizeHint(self) -> QSize:
        return QSize(self.MIN_WIDTH, max(1, len(self._rows)) * self.row_height() + 2 * self.MARGIN)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002 - the whole widget is repainted
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        background = palette.color(QPalette.ColorRole.Window)
        muted_text = blend(text, background, 0.55)
        if not self._rows:
            painter.setPen(muted_text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            return

        bold = QFont(self.font())
        bold.setBold(True)
        bold_metrics = QFontMetrics(bold)
        row, margin, gap = self.row_height(), self.MARGIN, self.GAP
        label_width = min(
            max(bold_metrics.horizontalAdvance(r.label) for r in self._rows) + 2,  # + rounding room
            int(self.width() * self.LABEL_SHARE),
        )
        value_width = bold_metrics.horizontalAdvance(self.WIDEST_VALUE)
        bar_x = margin + label_width + gap
        bar_area = max(1, self.width() - bar_x - gap - value_width - margin)
        top = max(margin, (self.height() - row * len(self._rows)) // 2)
        accent = palette.color(QPalette.ColorRole.Highlight)
        muted_bar = blend(text, background, 0.35)
        left_middle = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft

        for index, bar in enumerate(self._rows):
            y = top + index * row
            font, metrics = (bold, bold_metrics) if bar.chosen else (self.font(), self.fontMetrics())
            painter.setFont(font)
            painter.setPen(text)
            label = metrics.elidedText(bar.label, Qt.TextElideMode.ElideRight, label_width)
            painter.drawText(QRectF(margin, y, label_width, row), left_middle, label)

            length = bar_area * bar.fraction
            if bar.fraction > 0:
                length = max(2.0, length)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(accent if bar.chosen else muted_bar)
            painter.drawRoundedRect(QRectF(bar_x, y + 3, length, row - 6), 2, 2)

            painter.setPen(text if bar.chosen else muted_text)
            painter.drawText(QRectF(bar_x + length + gap, y, value_width, row), left_middle, bar.value)
