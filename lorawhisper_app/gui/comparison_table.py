"""Clips side by side: what was said, what the bare backbone and the adapter made of it, and
how many words each got wrong. The wizard's result page and the Adapters tab's trial show it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from lorawhisper_app.core.evaluation import ClipComparison

HEADERS = ["What was said", "Without the adapter", "With the adapter", "Wrong words"]
ERRORS_COLUMN = 3


class ComparisonTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(ERRORS_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeaderItem(ERRORS_COLUMN).setToolTip("Words wrong without the adapter → with it")
        self.verticalHeader().setVisible(False)
        self.setWordWrap(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # nothing to select: no focus frame on a cell

    def show_clips(self, clips: list[ClipComparison]) -> None:
        self.setRowCount(len(clips))
        for row, outcome in enumerate(clips):
            without, with_adapter = outcome.word_errors
            texts = (outcome.clip.text, outcome.without, outcome.with_adapter, f"{without} → {with_adapter}")
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text or "(nothing)")
                item.setToolTip(str(outcome.clip.audio) if column == 0 else text)
                self.setItem(row, column, item)
        self.resizeRowsToContents()
