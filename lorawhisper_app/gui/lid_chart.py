"""A small horizontal bar chart of language-identification probabilities, painted by hand."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from lorawhisper_app.core.languages import language_name

TOP_LANGUAGES = 5
EMPTY_TEXT = "no language identification"


def percent(probability: float) -> str:
    """e.g. "97 %"; "<1 %" for a probability that would round to zero but is not zero."""
    if 0 < probability < 0.005:
        return "<1 %"
    return f"{round(probability * 100)} %"


def blend(a: QColor, b: QColor, weight_of_a: float) -> QColor:
    """`a` mixed into `b`: muted text and bar colours that follow the palette."""
    w = weight_of_a
    return QColor.fromRgbF(
        a.redF() * w + b.redF() * (1 - w),
        a.greenF() * w + b.greenF() * (1 - w),
        a.blueF() * w + b.blueF() * (1 - w),
    )


class LidChart(QWidget):
    """The five likeliest languages as bars; the routed language is drawn in the accent colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bars: list[tuple[str, float]] = []
        self._highlight: str | None = None
        self.setObjectName("lidChart")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setToolTip("Language identification: how likely each language is")

    def set_probabilities(self, probs: dict[str, float], highlight: str | None = None) -> None:
        ranked = sorted(probs.items(), key=lambda item: item[1], reverse=True)
        self._bars = [(code, max(0.0, min(1.0, float(p)))) for code, p in ranked[:TOP_LANGUAGES]]
        self._highlight = highlight
        self.setAccessibleDescription(
            "; ".join(f"{language_name(code)} {percent(p)}" for code, p in self._bars) or EMPTY_TEXT
        )
        self.updateGeometry()
        self.update()

    def bars(self) -> list[tuple[str, float]]:
        """The (code, probability) pairs drawn, likeliest first."""
        return list(self._bars)

    def highlight(self) -> str | None:
        return self._highlight

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 8

    def sizeHint(self) -> QSize:
        return QSize(260, max(120, TOP_LANGUAGES * self._row_height() + 8))

    def minimumSizeHint(self) -> QSize:
        return QSize(180, max(1, len(self._bars)) * self._row_height() + 8)

    def _label(self, code: str) -> str:
        return f"{code} {language_name(code)}"

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002 - the whole widget is repainted
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        background = palette.color(QPalette.ColorRole.Window)
        muted_text = blend(text, background, 0.55)
        if not self._bars:
            painter.setPen(muted_text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, EMPTY_TEXT)
            return

        bold = QFont(self.font())
        bold.setBold(True)
        bold_metrics = QFontMetrics(bold)
        row = self._row_height()
        margin = 4
        gap = 6
        label_width = min(
            max(bold_metrics.horizontalAdvance(self._label(code)) for code, _ in self._bars),
            int(self.width() * 0.45),
        )
        value_width = bold_metrics.horizontalAdvance("100 %")
        bar_x = margin + label_width + gap
        bar_area = max(1, self.width() - bar_x - gap - value_width - margin)
        top = max(margin, (self.height() - row * len(self._bars)) // 2)
        accent = palette.color(QPalette.ColorRole.Highlight)
        muted_bar = blend(text, background, 0.35)
        left_middle = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft

        for index, (code, probability) in enumerate(self._bars):
            y = top + index * row
            chosen = code == self._highlight
            font, metrics = (bold, bold_metrics) if chosen else (self.font(), self.fontMetrics())
            painter.setFont(font)
            painter.setPen(text)
            label = metrics.elidedText(self._label(code), Qt.TextElideMode.ElideRight, label_width)
            label_rect = QRectF(margin, y, label_width, row)
            painter.drawText(label_rect, left_middle, label)

            length = bar_area * probability
            if probability > 0:
                length = max(2.0, length)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(accent if chosen else muted_bar)
            painter.drawRoundedRect(QRectF(bar_x, y + 3, length, row - 6), 2, 2)

            painter.setPen(text if chosen else muted_text)
            value_rect = QRectF(bar_x + length + gap, y, value_width, row)
            painter.drawText(value_rect, left_middle, percent(probability))
