"""What lets a pane fit a narrow window: rows of widgets that stack when there is no
room beside each other, and labels that shorten their text in the middle."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QBoxLayout, QLabel, QSizePolicy, QWidget


def _item_widths(box: QBoxLayout, preferred: bool) -> list[int]:
    items = [item for item in map(box.itemAt, range(box.count())) if not item.isEmpty()]
    return [(item.sizeHint() if preferred else item.minimumSize()).width() for item in items]


def side_by_side(box: QBoxLayout, preferred: bool = False) -> int:
    """The least (or `preferred`) width `box`'s shown items need in one row, whichever
    way it is arranged now."""
    widths = _item_widths(box, preferred)
    return sum(widths) + box.spacing() * max(0, len(widths) - 1)


def stacked(box: QBoxLayout, preferred: bool = False) -> int:
    """The least (or `preferred`) width `box`'s shown items need one under another."""
    return max(_item_widths(box, preferred), default=0)


def arrange(box: QBoxLayout, in_a_row: bool) -> None:
    """Lay `box` out in a row or in a column, touching it only when that changes."""
    direction = QBoxLayout.Direction.LeftToRight if in_a_row else QBoxLayout.Direction.TopToBottom
    if box.direction() != direction:
        box.setDirection(direction)


class ElidedLabel(QLabel):
    """A one-line label that shortens its text in the middle to fit its width, keeping a
    suffix whole (e.g. a file name, then its duration); it never asks for more width."""

    def __init__(self, parent: QWidget | None = None, objectName: str = "") -> None:  # noqa: N803 - Qt's keyword
        super().__init__(parent, objectName=objectName)
        self._head = ""
        self._tail = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_parts(self, head: str, tail: str = "") -> None:
        self._head, self._tail = head, tail
        self._elide()

    def full_text(self) -> str:
        return self._head + self._tail

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._elide()

    def _elide(self) -> None:
        if not self.isVisible():  # not laid out yet: its width means nothing
            self.setText(self.full_text())
            return
        metrics = self.fontMetrics()
        room = max(0, self.contentsRect().width() - metrics.horizontalAdvance(self._tail))
        self.setText(metrics.elidedText(self._head, Qt.TextElideMode.ElideMiddle, room) + self._tail)
