"""How the Adapters tab shows adapters: the table's model and view, the text of each
column, and the details pane's HTML."""

from __future__ import annotations

import html
from enum import IntEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QTableView, QWidget

from lorawhisper_app.core.adapter_meta import DevWer
from lorawhisper_app.core.adapter_store import ROUTER_FILE, AdapterInfo
from lorawhisper_app.core.languages import language_name
from lorawhisper_app.gui.files_panel import paths_from_mime
from lorawhisper_app.gui.training_record import json_text, training_rows

Index = QModelIndex | QPersistentModelIndex

CHECKING = "checking…"
OTHER_BACKBONE_COLOUR = "#b3261e"
MUTED_COLOUR = "#6b6b6b"


class Column(IntEnum):
    NAME = 0
    LANGUAGE = 1
    SOURCE = 2
    SIZE = 3
    BACKBONE = 4
    WER = 5
    MIXTURE = 6


HEADERS = {
    Column.NAME: "Name",
    Column.LANGUAGE: "Language",
    Column.SOURCE: "Source",
    Column.SIZE: "Size",
    Column.BACKBONE: "Backbone",
    Column.WER: "Dev WER",
    Column.MIXTURE: "MoE mixture",
}


def format_size(size_bytes: int) -> str:
    megabytes = size_bytes / 1e6
    return f"{megabytes:.2f} MB" if megabytes < 10 else f"{megabytes:.1f} MB"


def format_wer(wer: DevWer | None) -> str:
    """e.g. "62.0 % → 41.0 %" (bare backbone → with the adapter); "–" when not measured."""
    return "–" if wer is None else f"{wer.before * 100:.1f} % → {wer.after * 100:.1f} %"


def routing_text(info: AdapterInfo) -> str:
    """Whether automatic routing knows the adapter's language, and how well it did on dev clips."""
    if not (info.path / ROUTER_FILE).is_file():
        return "no router profile: auto mode relies on Whisper's language identification"
    report = info.meta.training_data.get("router")
    accuracy = report.get("dev_accuracy") if isinstance(report, dict) else None
    if not isinstance(accuracy, (int, float)):
        return "router profile present"
    others = len(report.get("languages", [])) - 1
    return f"{accuracy * 100:.0f} % of {report.get('dev_clips')} dev clips recognised, beside {others} other languages"


def format_mixture(mixture: dict[str, float] | None) -> str:
    """e.g. "sw 0.60 + rw 0.40", heaviest first; "" for a plain adapter."""
    if not mixture:
        return ""
    return " + ".join(f"{name} {weight:.2f}" for name, weight in sorted(mixture.items(), key=lambda i: -i[1]))


def language_text(info: AdapterInfo) -> str:
    """e.g. "sw · Swahili", or "rw · Kinyarwanda (sw token)" when it decodes as another language."""
    meta = info.meta
    text = f"{meta.language} · {meta.language_name}"
    return text if meta.decode_token == meta.language else f"{text} ({meta.decode_token} token)"


def adapter_paths(mime: QMimeData) -> list[Path]:
    """The folders and .zip files a drag carries: what may be an adapter."""
    return [p for p in paths_from_mime(mime) if p.is_dir() or (p.suffix.lower() == ".zip" and p.is_file())]


def accept_adapter_drag(event: QDropEvent) -> list[Path]:
    """Accept a drag (entering, moving or dropped) that carries adapter folders or
    archives, ignore any other; returns what it carries."""
    paths = adapter_paths(event.mimeData())
    if paths:
        event.acceptProposedAction()
    else:
        event.ignore()
    return paths


class AdapterModel(QAbstractTableModel):
    """The adapters, one a row, with how each fits the current backbone: `fingerprint`, or
    `backbone_note` ("checking…", "unknown") while it is not known."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._infos: list[AdapterInfo] = []
        self.fingerprint: str | None = None
        self.backbone_note = CHECKING

    def set_adapters(self, infos: list[AdapterInfo]) -> None:
        self.beginResetModel()
        self._infos = list(infos)
        self.endResetModel()

    def set_fingerprint(self, fingerprint: str | None, note: str = CHECKING) -> None:
        self.fingerprint, self.backbone_note = fingerprint, note
        if self._infos:
            self.dataChanged.emit(self.index(0, Column.BACKBONE), self.index(len(self._infos) - 1, Column.BACKBONE))

    def adapters(self) -> list[AdapterInfo]:
        return list(self._infos)

    def info(self, row: int) -> AdapterInfo:
        return self._infos[row]

    def row_of(self, name: str) -> int | None:
        return next((row for row, info in enumerate(self._infos) if info.name == name), None)

    def compatible(self, info: AdapterInfo) -> bool | None:
        return None if self.fingerprint is None else info.compatible_with(self.fingerprint)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's default argument
        return 0 if parent.isValid() else len(self._infos)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        info, column = self._infos[index.row()], Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(info, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(info, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == Column.BACKBONE:
            compatible = self.compatible(info)
            if compatible is not True:
                return QBrush(QColor(MUTED_COLOUR if compatible is None else OTHER_BACKBONE_COLOUR))
        if role == Qt.ItemDataRole.TextAlignmentRole and column == Column.SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, info: AdapterInfo, column: Column) -> str:
        meta = info.meta
        texts = {
            Column.NAME: info.name,
            Column.LANGUAGE: language_text(info),
            Column.SOURCE: info.source,
            Column.SIZE: format_size(info.size_bytes),
            Column.WER: format_wer(meta.dev_wer),
            Column.MIXTURE: format_mixture(meta.mixture),
        }
        if column == Column.BACKBONE:
            compatible = self.compatible(info)
            return self.backbone_note if compatible is None else ("this backbone" if compatible else "another backbone")
        return texts[column]

    def _tooltip(self, info: AdapterInfo, column: Column) -> str | None:
        meta = info.meta
        if column == Column.NAME:
            return str(info.path)
        if column == Column.LANGUAGE and meta.decode_token != meta.language:
            return f"Decoded with the {language_name(meta.decode_token)} ({meta.decode_token}) language token"
        if column == Column.BACKBONE:
            made_for = f"Made for {meta.base_model.name} ({meta.base_model.fingerprint})"
            if self.compatible(info) is False:
                return f"{made_for}: it cannot be used with the current backbone"
            return made_for
        if column == Column.WER:
            return "Word error rate on the dev set: bare backbone → with this adapter"
        return None


class AdapterDropTarget:
    """Mixed in before a Qt widget class: takes drags that carry adapter folders or .zip
    archives, lets any other pass on, and hands what is dropped to `adapters_dropped`."""

    def adapters_dropped(self, paths: list[Path]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_adapter_drag(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        accept_adapter_drag(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if paths := accept_adapter_drag(event):
            self.adapters_dropped(paths)


class AdapterTable(AdapterDropTarget, QTableView):
    """The adapter list; adapter folders and .zip archives dropped on it are imported."""

    paths_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(False)

    def adapters_dropped(self, paths: list[Path]) -> None:
        self.paths_dropped.emit(paths)


def details_html(info: AdapterInfo, compatible: bool | None, backbone_note: str) -> str:
    """The details pane: everything the metadata says, as an HTML table; `compatible` is
    whether the adapter fits the current backbone (None: not known yet, `backbone_note` says why)."""
    meta = info.meta
    fit = {True: "this backbone", False: "another backbone: cannot be used now", None: backbone_note}
    lora = meta.lora
    rows = [
        ("Language", f"{meta.language_name} ({meta.language})"),
        ("Decode token", f"{meta.decode_token} ({language_name(meta.decode_token)})"),
        ("Source", f"{info.source} · {info.path}"),
        ("Size", format_size(info.size_bytes)),
        ("Made for", f"{meta.base_model.name} · {meta.base_model.fingerprint}"),
        ("Fits", fit[compatible]),
        ("LoRA", f"rank {lora.rank}, alpha {lora.alpha:g}, dropout {lora.dropout:g}"),
        ("Targets", ", ".join(lora.targets)),
        ("Dev WER", format_wer(meta.dev_wer)),
        ("Auto-routing", routing_text(info)),
    ]
    if meta.mixture:
        rows.append(("MoE mixture", format_mixture(meta.mixture)))
    rows += training_rows(meta.training_data)
    if not meta.training_data:
        rows.append(("Training data", "not recorded"))
    rows += [("Created", meta.created), ("App version", meta.app_version)]
    rows += [(key, json_text(value)) for key, value in meta.extra.items()]
    colour = OTHER_BACKBONE_COLOUR if compatible is False else None
    cells = "".join(
        f'<tr><td style="padding-right:12px"><b>{html.escape(label)}</b></td>'
        f"<td{_colour_attr(colour) if label == 'Fits' else ''}>{html.escape(value)}</td></tr>"
        for label, value in rows
    )
    return f"<h3>{html.escape(meta.name)}</h3><table>{cells}</table>"


def _colour_attr(colour: str | None) -> str:
    return f' style="color:{colour}"' if colour else ""
