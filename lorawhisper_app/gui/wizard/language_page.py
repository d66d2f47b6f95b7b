"""Page 1: the language the new adapter serves, from the list or typed as a code and a name."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWizardPage,
)

from lorawhisper_app.core.adapter_store import free_adapter_name
from lorawhisper_app.core.languages import EXTRA_LANGUAGES, is_whisper_language, whisper_languages
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.wizard.state import WizardState

_CODE = re.compile(r"[a-z]{2,3}")
ADAPTER_MARK = " ★"


class LanguagePage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.adapters: dict[str, list[str]] = {}  # language -> adapter names installed
        self.setTitle("Language")
        self.setSubTitle("Which language will the new adapter serve? Pick one Whisper knows, or type a new one.")

        self.known_choice = QRadioButton("A language from the list:", objectName="knownLanguage", checked=True)
        self.other_choice = QRadioButton("Another language:", objectName="otherLanguage")
        group = QButtonGroup(self)
        group.addButton(self.known_choice)
        group.addButton(self.other_choice)
        self.language_box = QComboBox(objectName="languageBox", editable=True)
        self.language_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.language_box.setMinimumWidth(260)
        completer = self.language_box.completer()
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.languages = dict(sorted({**whisper_languages(), **EXTRA_LANGUAGES}.items(), key=lambda kv: kv[1]))
        for code, name in self.languages.items():
            self.language_box.addItem(f"{name} ({code})", code)
        self.language_box.setCurrentIndex(-1)
        self.language_box.lineEdit().setPlaceholderText("type to search, e.g. Swahili")

        self.code_edit = QLineEdit(objectName="languageCode", placeholderText="ISO 639-1 or 639-3, e.g. rw or kin")
        self.code_edit.setMaxLength(3)
        self.name_edit = QLineEdit(objectName="languageName", placeholderText="English name, e.g. Kinyarwanda")
        other = QFormLayout()
        other.addRow("Code:", self.code_edit)
        other.addRow("Name:", self.name_edit)
        other.setContentsMargins(24, 0, 0, 0)

        self.note = QLabel(objectName="languageNote", wordWrap=True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setMinimumHeight(60)
        self.note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        known = QHBoxLayout()
        known.addWidget(self.known_choice)
        known.addWidget(self.language_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(known)
        layout.addWidget(self.other_choice)
        layout.addLayout(other)
        layout.addSpacing(12)
        layout.addWidget(self.note)
        layout.addStretch(1)

        for signal in (
            self.language_box.currentIndexChanged, self.language_box.editTextChanged,
            self.code_edit.textChanged, self.name_edit.textChanged, self.known_choice.toggled,
        ):
            signal.connect(self._changed)
        self.code_edit.textEdited.connect(self._fill_name)
        self._lister = BackgroundTask(self._list_adapters, "wizard-adapters", self)
        self._lister.done.connect(self._adapters_listed)
        self._lister.start()
        self._changed()

    def _list_adapters(self, _progress: Callable[[int, int], None], _cancel: threading.Event) -> list[tuple[str, str]]:
        return [(info.meta.language, info.name) for info in self.state.store.list()]

    def _adapters_listed(self, found: list[tuple[str, str]]) -> None:
        self.adapters = {}
        for language, name in found:
            self.adapters.setdefault(language, []).append(name)
        self.state.adapter_names = {name for _, name in found}
        for index in range(self.language_box.count()):
            code = self.language_box.itemData(index)
            mark = ADAPTER_MARK if code in self.adapters else ""
            self.language_box.setItemText(index, f"{self.languages[code]} ({code}){mark}")
        self._changed()

    def select(self, code: str) -> None:
        """Choose `code` from the list (also what a test does)."""
        self.known_choice.setChecked(True)
        self.language_box.setCurrentIndex(self.language_box.findData(code))

    def _fill_name(self, text: str) -> None:
        code = text.strip().lower()
        if code in self.languages and not self.name_edit.isModified():
            self.name_edit.setText(self.languages[code])

    def chosen(self) -> tuple[str, str] | str:
        """(code, name), or why there is none yet."""
        if self.known_choice.isChecked():
            index = self.language_box.currentIndex()
            text = self.language_box.currentText()
            if index < 0 or text != self.language_box.itemText(index):
                return "Pick a language from the list, or choose Another language."
            code = self.language_box.itemData(index)
            return code, self.languages[code]
        code, name = self.code_edit.text().strip().lower(), " ".join(self.name_edit.text().split())
        if not _CODE.fullmatch(code):
            return "The code is 2 or 3 letters a-z: ISO 639-1 (e.g. sw) or ISO 639-3 (e.g. swh)."
        if not name:
            return "Give the language's name."
        return code, name

    def _changed(self) -> None:
        self.language_box.setEnabled(self.known_choice.isChecked())
        self.code_edit.setEnabled(self.other_choice.isChecked())
        self.name_edit.setEnabled(self.other_choice.isChecked())
        choice = self.chosen()
        self.note.setText(choice if isinstance(choice, str) else self._describe(*choice))
        self.completeChanged.emit()

    def _describe(self, code: str, name: str) -> str:
        lines = []
        if code in self.languages and name.lower() != self.languages[code].lower():
            lines.append(f"{code} is {self.languages[code]} in Whisper's and this app's tables.")
        if is_whisper_language(code):
            lines.append(f"Whisper knows {name}: the adapter decodes with its language token <|{code}|>.")
        else:
            lines.append(
                f"Whisper has no token for {name}: the adapter will decode with the token of the language "
                "Whisper hears in your recordings (measured on your data before training)."
            )
        installed = self.adapters.get(code, [])
        if installed:
            lines.append(
                f"Installed for {name}: {', '.join(installed)}. The new adapter is added beside it as "
                f"{free_adapter_name(code, self.state.adapter_names)}; nothing installed changes."
            )
        return "\n".join(lines)

    def isComplete(self) -> bool:
        return not isinstance(self.chosen(), str)

    def validatePage(self) -> bool:
        choice = self.chosen()
        if isinstance(choice, str):
            return False
        code, name = choice
        plan = self.state.plan
        plan.language, plan.language_name = code, name
        plan.adapter_name = free_adapter_name(code, self.state.adapter_names)
        return True
