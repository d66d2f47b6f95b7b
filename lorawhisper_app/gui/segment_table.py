"""The segment table of a transcript: Start, End and an editable Text column."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from lorawhisper_app.core.results import Segment

PLAY_HINT = "Click a Start or End time to play the audio from the start of that segment"
EDIT_HINT = "Double-click (or press F2) to correct the text"

Index = QModelIndex | QPersistentModelIndex


def format_time(seconds: float) -> str:
    """m:ss.s, or h:mm:ss.s from an hour on; rounded to the tenth before splitting."""
    tenths = max(0, round(seconds * 10))
    hours, tenths = divmod(tenths, 36_000)
    minutes, tenths = divmod(tenths, 600)
    secs = f"{tenths // 10:02d}.{tenths % 10}"
    return f"{hours}:{minutes:02d}:{secs}" if hours else f"{minutes}:{secs}"


class SegmentModel(QAbstractTableModel):
    """Start, End and Text of each segment; the Text column is editable."""

    HEADERS = ("Start", "End", "Text")
    TEXT_COLUMN = 2
    text_edited = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._segments: list[Segment] = []
        self._matches: set[int] = set()
        self._match_brush: QColor | None = None

    def set_segments(self, segments: list[Segment]) -> None:
        self.beginResetModel()
        self._segments = list(segments)
        self._matches = set()
        self.endResetModel()

    def segments(self) -> list[Segment]:
        return list(self._segments)

    def set_matches(self, rows: set[int], colour: QColor) -> None:
        """Rows to tint as search matches."""
        self._matches, self._match_brush = rows, colour
        if self._segments:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._segments) - 1, len(self.HEADERS) - 1),
                [Qt.ItemDataRole.BackgroundRole],
            )

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's default argument
        return 0 if parent.isValid() else len(self._segments)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignLeft if section == self.TEXT_COLUMN else Qt.AlignmentFlag.AlignRight
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        segment = self._segments[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == 0:
                return format_time(segment.start)
            if column == 1:
                return format_time(segment.end)
            return segment.text.strip()
        if role == Qt.ItemDataRole.ToolTipRole:
            return EDIT_HINT if column == self.TEXT_COLUMN else PLAY_HINT
        if role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignLeft if column == self.TEXT_COLUMN else Qt.AlignmentFlag.AlignRight
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and index.row() in self._matches:
            return self._match_brush
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == self.TEXT_COLUMN:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != self.TEXT_COLUMN or role != Qt.ItemDataRole.EditRole:
            return False
        row = index.row()
        text = str(value).strip()
        if text == self._segments[row].text.strip():
            return False
        self._segments[row] = dataclasses.replace(self._segments[row], text=text)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole])
        self.text_edited.emit(row)
        return True


class RoomyDelegate(QStyledItemDelegate):
    """The default delegate with a little air above and below each row's text."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), hint.height() + 6)
