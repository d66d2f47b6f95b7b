"""File › Settings…: backbone, device and compute type; routing and export defaults."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.settings import BUILTIN, MAX_MOE_K, Settings, SettingsError, backbone_kind, save_settings

DEVICE_LABELS = {"auto": "Auto (a GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU"}
COMPUTE_LABELS = {
    "auto": "Auto (int8 on the CPU, float16 on a GPU)",
    "int8": "int8 (CPU)",
    "float32": "float32",
    "bfloat16": "bfloat16",
    "float16": "float16 (GPU)",
}
FORMAT_LABELS = {"txt": "Plain text (.txt)", "srt": "SubRip (.srt)", "vtt": "WebVTT (.vtt)", "json": "JSON (.json)"}
# Which field shows a problem of each setting.
PROBLEM_LABELS = {
    "backbone": "Backbone",
    "device": "Device",
    "compute_type": "Compute type",
    "threshold": "Threshold",
    "moe_k": "MoE",
    "export_format": "Export format",
    "export_folder": "Export folder",
    "auto_export": "Export",
}
LABEL_BOX = "QLabel {{ background: {}; color: {}; border: 1px solid {}; border-radius: 4px; padding: 4px; }}"
NOTE_STYLE = LABEL_BOX.format("#fff4ce", "#3d3000", "#e0c060")
ERROR_STYLE = LABEL_BOX.format("#fde7e9", "#5f1018", "#e8a0a8")


class SettingsDialog(QDialog):
    """Shows `settings`; OK checks and saves them, then emits `applied(Settings)` and closes.
    Problems keep it open with a message naming them. Open it with `.open()`."""

    applied = Signal(object)  # Settings

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.original = settings
        self.folder_dialog: QFileDialog | None = None

        layout = QVBoxLayout(self)
        layout.addWidget(self._build_backbone())
        layout.addWidget(self._build_routing())
        layout.addWidget(self._build_export())
        self.busy_note = QLabel(objectName="settingsBusy", wordWrap=True, styleSheet=NOTE_STYLE)
        self.busy_note.hide()
        self.error = QLabel(objectName="settingsError", wordWrap=True, styleSheet=ERROR_STYLE)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        layout.addWidget(self.busy_note)
        layout.addWidget(self.error)
        layout.addStretch(1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.show_settings(Settings())
        )
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout.addWidget(buttons)
        self.show_settings(settings)

    # -- building --------------------------------------------------------------------

    def _build_backbone(self) -> QGroupBox:
        box = QGroupBox("Backbone")
        self.builtin_radio = QRadioButton("Built-in Whisper base", objectName="settingsBuiltin")
        self.hub_radio = QRadioButton("Hugging Face model id", objectName="settingsHub")
        self.folder_radio = QRadioButton("Local folder", objectName="settingsFolder")
        self.backbone_group = QButtonGroup(self)
        for radio in (self.builtin_radio, self.hub_radio, self.folder_radio):
            self.backbone_group.addButton(radio)
        self.hub_edit = QLineEdit(objectName="settingsHubId", placeholderText="e.g. openai/whisper-small")
        self.hub_edit.setToolTip("Downloaded once from the Hugging Face hub, then loaded from its cache")
        self.folder_edit = QLineEdit(objectName="settingsFolderPath", placeholderText="a transformers Whisper folder")
        self.browse_button = QPushButton("Browse…", objectName="settingsBrowse")
        self.browse_button.setToolTip("Choose the folder of a Whisper model in the transformers format")
        self.device_box = QComboBox(objectName="settingsDevice")
        for value, label in DEVICE_LABELS.items():
            self.device_box.addItem(label, value)
        self.compute_box = QComboBox(objectName="settingsCompute")
        for value, label in COMPUTE_LABELS.items():
            self.compute_box.addItem(label, value)
        note = QLabel("Changing these reloads the backbone. Adapters work only with the backbone they were made for.")
        note.setWordWrap(True)
        note.setEnabled(False)  # drawn as secondary text

        self.backbone_group.buttonToggled.connect(self._sync_backbone_fields)
        self.hub_edit.textEdited.connect(lambda: self.hub_radio.setChecked(True))
        self.folder_edit.textEdited.connect(lambda: self.folder_radio.setChecked(True))
        self.browse_button.clicked.connect(self.open_folder_dialog)

        grid = QGridLayout(box)
        grid.setColumnStretch(1, 1)
        grid.addWidget(self.builtin_radio, 0, 0, 1, 3)
        grid.addWidget(self.hub_radio, 1, 0)
        grid.addWidget(self.hub_edit, 1, 1, 1, 2)
        grid.addWidget(self.folder_radio, 2, 0)
        grid.addWidget(self.folder_edit, 2, 1)
        grid.addWidget(self.browse_button, 2, 2)
        grid.addWidget(QLabel("Device:"), 3, 0)
        grid.addWidget(self.device_box, 3, 1, 1, 2)
        grid.addWidget(QLabel("Compute type:"), 4, 0)
        grid.addWidget(self.compute_box, 4, 1, 1, 2)
        grid.addWidget(note, 5, 0, 1, 3)
        return box

    def _build_routing(self) -> QGroupBox:
        box = QGroupBox("Language routing (Files tab defaults)")
        self.threshold_box = QDoubleSpinBox(objectName="settingsThreshold", minimum=0.0, maximum=1.0, singleStep=0.05)
        self.threshold_box.setDecimals(2)
        self.threshold_box.setToolTip(
            "Auto uses the detected language's adapter only when language identification is at least this sure"
        )
        self.moe_box = QSpinBox(objectName="settingsMoeK", minimum=0, maximum=MAX_MOE_K)
        self.moe_box.setSpecialValueText("off")
        self.moe_box.setToolTip("Auto only: mix the adapters of the K likeliest detected languages (LoRA-MoE)")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Auto-routing threshold:", self.threshold_box)
        form.addRow("MoE K (mix adapters):", self.moe_box)
        return box

    def _build_export(self) -> QGroupBox:
        box = QGroupBox("Export (Files tab defaults)")
        self.format_box = QComboBox(objectName="settingsExportFormat")
        for value, label in FORMAT_LABELS.items():
            self.format_box.addItem(label, value)
        self.export_folder_edit = QLineEdit(objectName="settingsExportFolder", placeholderText="choose a folder")
        self.export_browse = QPushButton("Choose…", objectName="settingsExportChoose")
        self.export_browse.setToolTip("Choose the folder that finished transcripts are exported to")
        self.auto_export_box = QCheckBox("Export each finished file automatically", objectName="settingsAutoExport")
        self.export_browse.clicked.connect(self.open_export_folder_dialog)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.export_folder_edit, 1)
        folder_row.addWidget(self.export_browse)
        form = QFormLayout(box)
        form.addRow("Format:", self.format_box)
        form.addRow("Folder:", folder_row)
        form.addRow("", self.auto_export_box)
        return box

    # -- values ----------------------------------------------------------------------

    def show_settings(self, settings: Settings) -> None:
        kind = backbone_kind(settings.backbone)
        self.hub_edit.setText(settings.backbone if kind == "hub" else "")
        self.folder_edit.setText(settings.backbone if kind == "folder" else "")
        {"hub": self.hub_radio, "folder": self.folder_radio}.get(kind or "", self.builtin_radio).setChecked(True)
        self.device_box.setCurrentIndex(max(0, self.device_box.findData(settings.device)))
        self.compute_box.setCurrentIndex(max(0, self.compute_box.findData(settings.compute_type)))
        self.threshold_box.setValue(settings.threshold)
        self.moe_box.setValue(settings.moe_k)
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(settings.export_format)))
        self.export_folder_edit.setText(settings.export_folder or "")
        self.auto_export_box.setChecked(settings.auto_export)
        self._sync_backbone_fields()

    def settings(self) -> Settings:
        """The settings as the fields show them (not yet checked)."""
        if self.hub_radio.isChecked():
            backbone = self.hub_edit.text().strip()
        elif self.folder_radio.isChecked():
            backbone = self.folder_edit.text().strip()
        else:
            backbone = BUILTIN
        folder = self.export_folder_edit.text().strip()
        return Settings(
            backbone=backbone,
            device=self.device_box.currentData(),
            compute_type=self.compute_box.currentData(),
            threshold=round(self.threshold_box.value(), 2),
            moe_k=self.moe_box.value(),
            export_format=self.format_box.currentData(),
            export_folder=str(Path(folder).expanduser()) if folder else None,
            auto_export=self.auto_export_box.isChecked(),
        )

    def problems(self) -> list[str]:
        """The fields' problems, each starting with the field's name; a typed folder that is
        not a full path is one too (it would read as a model id)."""
        chosen = self.settings()
        if self.folder_radio.isChecked() and chosen.backbone and backbone_kind(chosen.backbone) != "folder":
            return [f"Backbone: give the full path of the folder ({chosen.backbone!r} is not one), or use Browse…"]
        if self.hub_radio.isChecked() and not chosen.backbone:
            return ["Backbone: type a Hugging Face model id, e.g. openai/whisper-small"]
        if self.folder_radio.isChecked() and not chosen.backbone:
            return ["Backbone: choose the model's folder (Browse…)"]
        return [f"{PROBLEM_LABELS[name]}: {problem}" for name, problem in chosen.problems().items()]

    def set_busy(self, text: str | None) -> None:
        """A note on transcriptions running now, which a backbone change waits for."""
        self.busy_note.setText(text or "")
        self.busy_note.setVisible(bool(text))

    # -- closing ---------------------------------------------------------------------

    def accept(self) -> None:
        problems = self.problems()
        if problems:
            self._show_error("\n".join(problems))
            return
        chosen = self.settings()
        try:
            save_settings(chosen)
        except (SettingsError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._show_error(f"The settings could not be saved: {reason}")
            return
        self.error.hide()
        self.applied.emit(chosen)
        super().accept()

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    # -- folders ---------------------------------------------------------------------

    @Slot()
    def _sync_backbone_fields(self) -> None:
        self.hub_edit.setEnabled(self.hub_radio.isChecked())
        self.folder_edit.setEnabled(self.folder_radio.isChecked())
        self.browse_button.setEnabled(self.folder_radio.isChecked())

    def open_folder_dialog(self) -> QFileDialog:
        """Browse… for a backbone folder: a non-blocking folder dialog."""
        dialog = self._folder_dialog("Choose a Whisper model folder", self.folder_edit.text())
        dialog.fileSelected.connect(self._folder_chosen)
        dialog.open()
        return dialog

    def open_export_folder_dialog(self) -> QFileDialog:
        dialog = self._folder_dialog("Export finished files to", self.export_folder_edit.text())
        dialog.fileSelected.connect(self.export_folder_edit.setText)
        dialog.open()
        return dialog

    def _folder_dialog(self, title: str, start: str) -> QFileDialog:
        dialog = QFileDialog(self, title)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if start and Path(start).expanduser().is_dir():
            dialog.setDirectory(str(Path(start).expanduser()))
        dialog.destroyed.connect(self._forget_folder_dialog)
        self.folder_dialog = dialog
        return dialog

    @Slot()
    def _forget_folder_dialog(self) -> None:
        self.folder_dialog = None

    @Slot(str)
    def _folder_chosen(self, folder: str) -> None:
        self.folder_edit.setText(folder)
        self.folder_radio.setChecked(True)
