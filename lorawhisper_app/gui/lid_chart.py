"""A small bar chart of language-identification probabilities."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QSizePolicy, QWidget

from lorawhisper_app.core.languages import language_name
from lorawhisper_app.gui.bar_chart import Bar, BarChart

TOP_LANGUAGES = 5


def percent(probability: float) -> str:
    """e.g. "97 %"; "<1 %" for a probability that would round to zero but is not zero."""
    if 0 < probability < 0.005:
        return "<1 %"
    return f"{round(probability * 100)} %"


class LidChart(BarChart):
    """The five likeliest languages as bars; the routed language is drawn in the accent colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("no language identification", parent)
        self._bars: list[tuple[str, float]] = []
        self._highlight: str | None = None
        self.setObjectName("lidChart")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setToolTip("Language identification: how likely each language is")

    def set_probabilities(self, probs: dict[str, float], highlight: str | None = None) -> None:
        ranked = sorted(probs.items(), key=lambda item: item[1], reverse=True)
        self._bars = [(code, max(0.0, min(1.0, float(p)))) for code, p in ranked[:TOP_LANGUAGES]]
        self._highlight = highlight
        self.set_rows(
            [Bar(f"{code} {language_name(code)}", p, percent(p), code == highlight) for code, p in self._bars],
            "; ".join(f"{language_name(code)} {percent(p)}" for code, p in self._bars),
        )

    def bars(self) -> list[tuple[str, float]]:
        """The (code, probability) pairs drawn, likeliest first."""
        return list(self._bars)

    def highlight(self) -> str | None:
        return self._highlight

    def sizeHint(self) -> QSize:
        return QSize(260, max(120, TOP_LANGUAGES * self.row_height() + 8))
