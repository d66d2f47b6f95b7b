"""The result pane of the Files tab: one finished transcript to read, correct, play, search and export."""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QGuiApplication,
    QKeySequence,
    QPalette,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.languages import language_name
from lorawhisper_app.core.playback import AudioPlayer, PlaybackError
from lorawhisper_app.core.results import Route, TranscriptionResult
from lorawhisper_app.core.writers import WRITERS, render, write_atomic
from lorawhisper_app.gui.fitting_layout import ElidedLabel, arrange, side_by_side, stacked
from lorawhisper_app.gui.lid_chart import LidChart, percent
from lorawhisper_app.gui.segment_table import EDIT_HINT, PLAY_HINT, RoomyDelegate, SegmentModel, format_time

FORMAT_LABELS = {
    "txt": "Plain text (.txt)",
    "srt": "SubRip subtitles (.srt)",
    "vtt": "WebVTT subtitles (.vtt)",
    "json": "JSON with timings and route (.json)",
}
CANNOT_PLAY = "Cannot play the audio"


def describe_language(route: Route) -> str:
    """e.g. "Swahili (sw) · 97 %", or "... · set by hand" when LID did not choose it."""
    confidence = "set by hand" if route.language_probability is None else percent(route.language_probability)
    return f"{language_name(route.language)} ({route.language}) · {confidence}"


def describe_adapters(adapters: dict[str, float]) -> str:
    """ "bare backbone", "sw" (one adapter at full weight) or "sw 0.70 + yo 0.30"."""
    if not adapters:
        return "bare backbone"
    if len(adapters) == 1 and next(iter(adapters.values())) == 1.0:
        return next(iter(adapters))
    ranked = sorted(adapters.items(), key=lambda item: item[1], reverse=True)
    return " + ".join(f"{name} {weight:.2f}" for name, weight in ranked)


def _tone_colour(widget: QWidget, kind: str) -> str:
    """A text colour for "error"/"warning" messages that reads on light and dark windows."""
    dark = widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
    colours = {"error": ("#b3261e", "#ff8a80"), "warning": ("#8a5a00", "#ffcc66")}
    light_colour, dark_colour = colours[kind]
    return dark_colour if dark else light_colour


class TranscriptView(QWidget):
    """Shows one TranscriptionResult: header, LID chart, editable segments, search, playback, export.

    `rerun_requested(code)` asks the owner to transcribe the file again in that language;
    `edited()` fires after each correction of a segment's text.
    """

    rerun_requested = Signal(str)
    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcriptView")
        self._result: TranscriptionResult | None = None
        self._audio_path: Path | None = None
        self._player: AudioPlayer | None = None
        self._playback_timer = QTimer(self, interval=100)
        self._playback_timer.timeout.connect(self._on_playback_tick)
        self._play_request: tuple[Path, int] | None = None
        self._matches: list[int] = []
        self._match_index = -1
        self._export_dir: Path | None = None
        self.export_dialog: QFileDialog | None = None

        self._build_header()
        self._build_toolbar()
        self.model = SegmentModel(self)
        self.table = QTableView(objectName="transcriptSegments")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.table.setItemDelegate(RoomyDelegate(self.table))
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip(f"{PLAY_HINT}. {EDIT_HINT}.")
        self.message = QLabel(objectName="transcriptMessage", wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(self._header_layout)
        layout.addLayout(self._toolbar_layout)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)

        self.model.text_edited.connect(self._on_text_edited)
        self.table.clicked.connect(self._on_cell_clicked)
        # With the focus inside this view; a window may disable it and bind Ctrl+F itself.
        self.find_shortcut = QShortcut(
            QKeySequence.StandardKey.Find, self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut
        )
        self.find_shortcut.activated.connect(self.focus_search)
        shortcuts = (
            (QKeySequence.StandardKey.FindNext, self.next_match),
            (QKeySequence.StandardKey.FindPrevious, self.previous_match),
        )
        for keys, slot in shortcuts:
            QShortcut(keys, self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut).activated.connect(slot)
        back = QShortcut(QKeySequence("Shift+Return"), self.search, context=Qt.ShortcutContext.WidgetShortcut)
        back.activated.connect(self.previous_match)
        self.clear()

    # -- building -------------------------------------------------------------------

    def _build_header(self) -> None:
        self.file_label = ElidedLabel(objectName="transcriptFile")
        title_font = QFont(self.font())
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.2)
        self.file_label.setFont(title_font)
        # A long file name is shortened rather than widening the pane; the tooltip has the whole path.
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.language_label = QLabel(objectName="transcriptLanguage")
        self.language_label.setToolTip("The language the file was decoded in, and how sure identification was")
        self.adapter_label = QLabel(objectName="transcriptAdapter")
        self.adapter_label.setToolTip("The LoRA adapter, or mixture of adapters, that decoded the file")
        self.notice_label = QLabel(objectName="transcriptNotice", wordWrap=True)

        self.rerun_box = QComboBox(objectName="transcriptRerunLanguage")
        self.rerun_box.setToolTip("The language to transcribe this file in again")
        self.rerun_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.rerun_button = QPushButton("Re-run", objectName="transcriptRerun")
        self.rerun_button.setToolTip("Transcribe this file again in the language chosen beside")
        self.rerun_second_button = QPushButton(objectName="transcriptRerunSecond")
        self.rerun_second_button.setToolTip("Transcribe again in the likeliest other language")
        self.rerun_button.clicked.connect(self._rerun_chosen)
        self.rerun_second_button.clicked.connect(self._rerun_second)
        # "Re-run as [language] [Re-run]", then the second-language button beside it, or
        # under it when the pane is narrow (see _fit_layout).
        rerun_chosen = QHBoxLayout()
        rerun_chosen.addWidget(QLabel("Re-run as"))
        rerun_chosen.addWidget(self.rerun_box)
        rerun_chosen.addWidget(self.rerun_button)
        self._rerun_row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._rerun_row.addLayout(rerun_chosen)
        self._rerun_row.setAlignment(rerun_chosen, Qt.AlignmentFlag.AlignLeft)
        self._rerun_row.addWidget(self.rerun_second_button, 0, Qt.AlignmentFlag.AlignLeft)
        self._rerun_row.addStretch(1)

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.addWidget(self.file_label, 0, 0, 1, 2)
        self._captions = [QLabel("Language:"), QLabel("Decoded with:")]
        for row, (caption, label) in enumerate(zip(self._captions, (self.language_label, self.adapter_label)), 1):
            grid.addWidget(caption, row, 0)
            grid.addWidget(label, row, 1)
        grid.addWidget(self.notice_label, 3, 0, 1, 2)
        grid.addLayout(self._rerun_row, 4, 0, 1, 2)
        grid.setRowStretch(5, 1)
        self._text_grid = grid

        # The LID chart beside the text, or under it when the pane is narrow.
        self.lid_chart = LidChart()
        self._header_layout = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._header_layout.addLayout(grid, 1)
        self._header_layout.addWidget(self.lid_chart)

    def _build_toolbar(self) -> None:
        self.search = QLineEdit(objectName="transcriptSearch", clearButtonEnabled=True)
        self.search.setPlaceholderText("Search the transcript (Ctrl+F)")
        self.search.setToolTip("Enter: next match, Shift+Enter: previous match")
        self.previous_button = QToolButton(objectName="transcriptPrevious", arrowType=Qt.ArrowType.UpArrow)
        self.previous_button.setToolTip("Previous match (Shift+F3)")
        self.next_button = QToolButton(objectName="transcriptNext", arrowType=Qt.ArrowType.DownArrow)
        self.next_button.setToolTip("Next match (F3)")
        self.match_label = QLabel(objectName="transcriptMatches")
        self.match_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("999 of 999"))
        self.search.textChanged.connect(self._on_search_changed)
        self.search.returnPressed.connect(self.next_match)
        self.previous_button.clicked.connect(self.previous_match)
        self.next_button.clicked.connect(self.next_match)

        self.play_button = QPushButton("Play", objectName="transcriptPlay")
        self.play_button.setToolTip(f"Play or pause the audio. {PLAY_HINT}.")
        self.play_button.clicked.connect(self.toggle_playback)
        self.position_label = QLabel(objectName="transcriptPosition")
        self.copy_button = QPushButton("Copy text", objectName="transcriptCopy")
        self.copy_button.setToolTip("Copy the corrected text to the clipboard, one segment a line")
        self.copy_button.clicked.connect(self.copy_text)
        self.export_button = QPushButton("Export", objectName="transcriptExport")
        self.export_button.setToolTip("Save the corrected transcript as a file")
        menu = QMenu(self.export_button)
        self.export_actions: dict[str, QAction] = {}
        for fmt in WRITERS:
            action = menu.addAction(FORMAT_LABELS.get(fmt, fmt.upper()))
            action.triggered.connect(lambda _checked=False, f=fmt: self.open_export_dialog(f))
            self.export_actions[fmt] = action
        self.export_button.setMenu(menu)

        # The style gives text buttons a minimum of about 80 px; these may shrink to their text.
        for button, longest in ((self.play_button, "Pause"), (self.copy_button, None), (self.export_button, None)):
            text_width = button.fontMetrics().horizontalAdvance(longest or button.text())
            button.setMinimumWidth(text_width + 24 + (16 if button.menu() else 0))
        search_row = QHBoxLayout()
        for widget in (self.search, self.previous_button, self.next_button, self.match_label):
            search_row.addWidget(widget)
        search_row.setStretch(0, 1)
        actions_row = QHBoxLayout()
        for widget in (self.play_button, self.position_label):
            actions_row.addWidget(widget)
        actions_row.addStretch(1)
        actions_row.addWidget(self.copy_button)
        actions_row.addWidget(self.export_button)
        # Search and the actions in one row, or two when the pane is narrow.
        self._toolbar_layout = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._toolbar_layout.addLayout(search_row, 2)
        self._toolbar_layout.addLayout(actions_row, 1)

    # -- fitting narrow panes ----------------------------------------------------------

    def minimumSizeHint(self) -> QSize:
        """As narrow as the stacked arrangement allows: `_fit_layout` stacks the parts that
        do not fit side by side, so the file queue beside this pane keeps its room."""
        margins = self.layout().contentsMargins()
        width = max(
            self._texts_width(),
            stacked(self._rerun_row),
            self.lid_chart.minimumSizeHint().width(),
            stacked(self._toolbar_layout),
            self.table.minimumSizeHint().width(),
        )
        return QSize(width + margins.left() + margins.right(), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_layout()

    def _texts_width(self) -> int:
        """The least width of the captioned lines (language, adapters)."""
        captions = max(caption.minimumSizeHint().width() for caption in self._captions)
        values = max(label.minimumSizeHint().width() for label in (self.language_label, self.adapter_label))
        return captions + self._text_grid.horizontalSpacing() + values

    def _fit_layout(self) -> None:
        """Put the header's and toolbar's parts side by side where they fit, else one under
        another: the LID chart under the text, the second re-run button under the first,
        the playback and export buttons under the search field."""
        margins = self.layout().contentsMargins()
        room = self.width() - margins.left() - margins.right()
        chart = self.lid_chart.minimumSizeHint().width() + self._header_layout.spacing()
        # Beside only where the language choice keeps its natural width.
        chart_beside = max(self._texts_width(), stacked(self._rerun_row, preferred=True)) + chart <= room
        text_room = room - chart if chart_beside else room
        arrange(self._rerun_row, side_by_side(self._rerun_row) <= text_room)
        arrange(self._header_layout, chart_beside)
        # In a row only where the search field keeps a useful width, not its bare minimum.
        arrange(self._toolbar_layout, side_by_side(self._toolbar_layout, preferred=True) <= room)

    # -- showing a result ------------------------------------------------------------

    def show_result(self, result: TranscriptionResult, audio_path: Path | None) -> None:
        audio_path = Path(audio_path) if audio_path is not None else None
        self._stop_player(forget_source=audio_path != self._audio_path)
        self._result = result
        self._audio_path = audio_path
        self._play_request = None
        self.model.set_segments(result.segments)
        self._fit_time_columns()

        duration = format_time(result.duration)
        self.file_label.set_parts(Path(result.path).name, f"  ·  {duration}")
        self.file_label.setToolTip(result.path)
        route = result.route
        self.language_label.setText(describe_language(route))
        self.adapter_label.setText(describe_adapters(route.adapters))
        self.adapter_label.setToolTip(f"Routing mode: {route.mode}")
        if route.notice:
            colour = _tone_colour(self, "warning")
            self.notice_label.setText(f'<span style="color:{colour}">⚠ {html.escape(route.notice)}</span>')
            self.notice_label.show()
        else:
            self.notice_label.hide()
        self.lid_chart.set_probabilities(result.language_probabilities, highlight=route.language)

        second = self.second_language()
        self.rerun_second_button.setVisible(second is not None)
        if second is not None:
            self.rerun_second_button.setText(f"Re-run as {language_name(second)} ({second})")
        has_audio = self._audio_path is not None
        self.play_button.setEnabled(has_audio)
        self.position_label.setText(f"0:00.0 / {duration}" if has_audio else "no audio")
        self._set_enabled(True)
        self.message.hide()
        self._refresh_matches(keep_position=False)
        self._fit_layout()

    def _fit_time_columns(self) -> None:
        longest = format_time(max((s.end for s in self.model.segments()), default=0.0))
        width = self.table.fontMetrics().horizontalAdvance(longest) + 24
        for column in (0, 1):
            self.table.horizontalHeader().resizeSection(column, width)

    def clear(self) -> None:
        self._stop_player(forget_source=True)
        self._result = None
        self._audio_path = None
        self._play_request = None
        self.model.set_segments([])
        self._fit_time_columns()
        self.file_label.set_parts("No transcript selected")
        self.file_label.setToolTip("")
        self.language_label.setText("–")
        self.adapter_label.setText("–")
        self.notice_label.hide()
        self.lid_chart.set_probabilities({})
        self.rerun_second_button.hide()
        self.position_label.setText("")
        self.message.hide()
        self._set_enabled(False)
        self._refresh_matches(keep_position=False)
        self._fit_layout()

    def result(self) -> TranscriptionResult | None:
        """The result shown, with the user's corrections to the segment texts."""
        if self._result is None:
            return None
        return dataclasses.replace(
            self._result,
            segments=self.model.segments(),
            language_probabilities=dict(self._result.language_probabilities),
        )

    def audio_path(self) -> Path | None:
        return self._audio_path

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.copy_button, self.export_button, self.search, self.table):
            widget.setEnabled(enabled)
        self.rerun_box.setEnabled(enabled and self.rerun_box.count() > 0)
        self.rerun_button.setEnabled(enabled and self.rerun_box.count() > 0)
        if not enabled:
            self.play_button.setEnabled(False)

    @Slot(int)
    def _on_text_edited(self, _row: int) -> None:
        self._refresh_matches(keep_position=True)
        self.edited.emit()

    # -- re-running -------------------------------------------------------------------

    def set_rerun_languages(self, items: list[tuple[str, str]]) -> None:
        """The languages offered by "Re-run as", as (code, label) pairs."""
        self.rerun_box.clear()
        for code, label in items:
            self.rerun_box.addItem(label, code)
        usable = self._result is not None and bool(items)
        self.rerun_box.setEnabled(usable)
        self.rerun_button.setEnabled(usable)
        self._fit_layout()

    def second_language(self) -> str | None:
        """The likeliest language other than the one the result was decoded in."""
        if self._result is None or len(self._result.language_probabilities) < 2:
            return None
        ranked = sorted(self._result.language_probabilities.items(), key=lambda item: item[1], reverse=True)
        return next((code for code, _ in ranked if code != self._result.route.language), None)

    @Slot()
    def _rerun_chosen(self) -> None:
        code = self.rerun_box.currentData()
        if code:
            self.rerun_requested.emit(code)

    @Slot()
    def _rerun_second(self) -> None:
        code = self.second_language()
        if code:
            self.rerun_requested.emit(code)

    # -- search -------------------------------------------------------------------------

    @Slot()
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def matches(self) -> list[int]:
        """The rows whose text contains the search text, top to bottom."""
        return list(self._matches)

    @Slot(str)
    def _on_search_changed(self, _text: str) -> None:
        self._refresh_matches(keep_position=False)

    def _refresh_matches(self, keep_position: bool) -> None:
        """Find and tint the matching rows; select the first unless the current match still matches."""
        needle = self.search.text().strip().casefold()
        current = self._matches[self._match_index] if keep_position and self._match_index >= 0 else None
        segments = self.model.segments()
        self._matches = [row for row, s in enumerate(segments) if needle and needle in s.text.casefold()]
        tint = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        tint.setAlpha(60)
        self.model.set_matches(set(self._matches), tint)
        if current in self._matches:
            self._match_index = self._matches.index(current)
            self._show_match_count()
        elif self._matches:
            self._select_match(0)
        else:
            self._match_index = -1
            self._show_match_count()
        for button in (self.previous_button, self.next_button):
            button.setEnabled(len(self._matches) > 0)

    def _show_match_count(self) -> None:
        if not self.search.text().strip():
            self.match_label.setText("")
        elif not self._matches:
            self.match_label.setText("no match")
        else:
            self.match_label.setText(f"{self._match_index + 1} of {len(self._matches)}")

    def _select_match(self, position: int) -> None:
        self._match_index = position % len(self._matches)
        row = self._matches[self._match_index]
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, SegmentModel.TEXT_COLUMN))
        self._show_match_count()

    @Slot()
    def next_match(self) -> None:
        if self._matches:
            self._select_match(self._match_index + 1)

    @Slot()
    def previous_match(self) -> None:
        if self._matches:
            self._select_match(self._match_index - 1)

    # -- playback ------------------------------------------------------------------------

    @property
    def play_request(self) -> tuple[Path, int] | None:
        """The file and position (ms) that playback was last asked to start from."""
        return self._play_request

    def player(self) -> AudioPlayer | None:
        """The player, once playback has been used."""
        return self._player

    def play_from(self, seconds: float) -> None:
        """Play the audio from `seconds`; says in the message line why it cannot, if it cannot."""
        if self._audio_path is None:
            self._show_message("There is no audio file for this transcript.", "warning")
            return
        self._play_request = (self._audio_path, max(0, round(seconds * 1000)))
        if self._player is None:
            self._player = AudioPlayer()
            self.destroyed.connect(self._player.close)
        self._player.load(self._audio_path)  # decodes in the background, once per file
        self._start_playing(seconds)

    @Slot()
    def toggle_playback(self) -> None:
        """Pause, resume, or start from the selected segment (the file's start when none is)."""
        player = self._player
        if player is not None and player.path == self._audio_path and self._play_request is not None:
            if player.is_playing:
                player.pause()
                self._show_playback()
            else:
                self._start_playing(None)
            return
        rows = self.table.selectionModel().selectedRows()
        segments = self.model.segments()
        self.play_from(segments[rows[0].row()].start if rows and segments else 0.0)

    def _start_playing(self, seconds: float | None) -> None:
        assert self._player is not None
        try:
            self._player.play(seconds)
        except PlaybackError as error:
            self._show_message(f"{CANNOT_PLAY}: {error}", "warning")
        else:
            if self.message.text().startswith(CANNOT_PLAY):
                self.message.hide()
            self._playback_timer.start()
        self._show_playback()

    @Slot(QModelIndex)
    def _on_cell_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() != SegmentModel.TEXT_COLUMN:
            self.play_from(self.model.segments()[index.row()].start)

    def _stop_player(self, forget_source: bool) -> None:
        self._playback_timer.stop()
        self.play_button.setText("Play")
        if self._player is None:
            return
        if forget_source:
            self._player.close()
        else:
            self._player.stop()

    def _show_playback(self) -> None:
        """The button's text and the position, from the player."""
        player = self._player
        if player is None:
            return
        self.play_button.setText("Pause" if player.is_playing else "Play")
        if self._result is not None:
            self.position_label.setText(f"{format_time(player.position())} / {format_time(self._result.duration)}")

    @Slot()
    def _on_playback_tick(self) -> None:
        """While playing: follow the position; once it stopped by itself (the end, or a
        failure to show), stop following."""
        self._show_playback()
        player = self._player
        if player is not None and not player.is_playing:
            self._playback_timer.stop()
            if player.error is not None:
                self._show_message(f"{CANNOT_PLAY}: {player.error}", "error")

    # -- export and copy -------------------------------------------------------------------

    def _show_message(self, text: str, kind: str = "info") -> None:
        style = "" if kind == "info" else f"color: {_tone_colour(self, kind)};"
        self.message.setStyleSheet(style)
        self.message.setText(text)
        self.message.setProperty("kind", kind)
        self.message.show()

    def _proposed_path(self, fmt: str) -> Path:
        assert self._result is not None
        folder = self._export_dir or (self._audio_path.parent if self._audio_path else Path.home())
        return folder / f"{Path(self._result.path).stem}.{fmt}"

    def open_export_dialog(self, fmt: str) -> None:
        """Ask where to save (a non-blocking, non-native dialog), then export there."""
        if self._result is None:
            return
        dialog = QFileDialog(self, f"Export the transcript as {fmt.upper()}")
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter(f"{fmt.upper()} (*.{fmt})")
        dialog.setDefaultSuffix(fmt)
        proposed = self._proposed_path(fmt)
        dialog.setDirectory(str(proposed.parent))
        dialog.selectFile(proposed.name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path, f=fmt: self._export_chosen(Path(path), f))
        dialog.destroyed.connect(self._forget_dialog)
        self.export_dialog = dialog
        dialog.open()

    @Slot()
    def _forget_dialog(self) -> None:
        self.export_dialog = None

    def _export_chosen(self, path: Path, fmt: str) -> None:
        try:
            self.export_to(path, fmt)
        except OSError:
            pass  # export_to has shown the error

    def export_to(self, path: Path, fmt: str) -> Path:
        """Write the corrected transcript to `path` atomically and return it.

        The outcome shows in the message line; an OSError is shown there and raised again.
        """
        result = self.result()
        if result is None:
            raise ValueError("no transcript is shown")
        path = Path(path)
        try:
            written = write_atomic(path, render(result, fmt))
        except OSError as exc:
            self._show_message(f"Could not export to {path}: {exc.strerror or exc}", "error")
            raise
        self._export_dir = written.parent
        self._show_message(f"Exported {fmt.upper()} to {written}")
        return written

    @Slot()
    def copy_text(self) -> None:
        """Put the corrected text, one segment a line, on the clipboard."""
        result = self.result()
        if result is None:
            return
        QGuiApplication.clipboard().setText(render(result, "txt"))
        self._show_message("Copied the text to the clipboard.")
