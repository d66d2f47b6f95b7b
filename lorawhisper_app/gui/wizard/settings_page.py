"""Page 4: a training preset with an estimate of the time it takes here, and the advanced settings."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from lorawhisper_app.core.languages import language_name
from lorawhisper_app.core.training.config import (
    DEFAULT_TARGETS,
    FIT_HELPS_MAX_PASSES,
    WARM_FIT,
    WARM_NONE,
    TrainConfig,
    passes,
    start_problem,
)
from lorawhisper_app.core.training.estimate import (
    Estimate,
    Throughput,
    auto_precision,
    duration_text,
    estimate_training,
    steps_for,
    training_device,
)
from lorawhisper_app.core.training.speed_log import default_speed_log
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.wizard.state import WizardState, adapter_name_problem

CUSTOM = "Custom"


@dataclass(frozen=True)
class Preset:
    name: str
    epochs: int
    rank: int
    learning_rate: float
    evaluations: int  # dev checks over the run
    blurb: str


PRESETS = (
    Preset("Quick", 4, 16, 1e-3, 4, "A first adapter to try: 4 passes over the data, rank 16, 4 dev checks."),
    Preset("Balanced", 12, 32, 1e-3, 8,
           "The trainer's defaults, the settings measured in docs/experiments.md: 12 passes, rank 32, 8 dev checks."),
    Preset("Best", 24, 32, 1e-3, 16,
           "Twice the passes and twice the dev checks; it stops by itself after "
           f"{TrainConfig.patience} checks without a better dev WER and keeps the best."),
)
DEFAULT_PRESET = "Balanced"
FIT_HINT = (
    "A short run: each clip is seen about {passes:.1f} times. In this project's measurements, starting from the "
    "installed adapter that already fits the recordings best made 3 to 9 % fewer word errors than a fresh start "
    "in runs of up to 5.7 passes (Kinyarwanda on 10 and 90 minutes, Luganda on 10; 13 pairs of runs), and did "
    "no better from 7 passes on. That adapter was a related language's; when none fits closely, Best fit starts "
    "fresh (a copy of an unrelated language's adapter did no better, or far worse)."
)


def eval_every(steps: int, evaluations: int) -> int:
    return max(1, steps // evaluations)


class SettingsPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.device: str | None = None
        self.rates: Throughput | None = None  # this machine's measured speeds, once a run has finished here
        self.device_task: BackgroundTask | None = None
        self.estimate: Estimate | None = None
        self.seed_rank: int | None = None  # the rank a warm start needs; None: the preset's or the user's
        self._filling = False
        self._steps_edited = False
        self.setTitle("Settings")
        self.setSubTitle("How hard to train, and about how long that takes on this machine.")

        self.preset_group = QButtonGroup(self)
        presets = QVBoxLayout()
        self.preset_buttons: dict[str, QRadioButton] = {}
        for preset in PRESETS:
            button = QRadioButton(preset.name, objectName=f"preset{preset.name}")
            blurb = QLabel(preset.blurb, wordWrap=True)
            blurb.setContentsMargins(24, 0, 0, 4)
            blurb.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            self.preset_group.addButton(button)
            self.preset_buttons[preset.name] = button
            presets.addWidget(button)
            presets.addWidget(blurb)
        self.seed_note = QLabel(objectName="seedNote", wordWrap=True)
        self.seed_note.setVisible(False)
        self.fit_hint = QLabel(objectName="fitHint", wordWrap=True)
        self.fit_button = QPushButton("Start from the best fit", objectName="useFit")
        self.fit_button.setToolTip(
            "Train from the installed adapter that fits your recordings best, or fresh if none fits closely "
            "(scored as training starts)"
        )
        self.fit_button.clicked.connect(self.use_fit)
        self.fit_row = QWidget(objectName="fitHintRow")
        fit_layout = QHBoxLayout(self.fit_row)
        fit_layout.setContentsMargins(0, 0, 0, 8)
        fit_layout.addWidget(self.fit_hint, 1)
        fit_layout.addWidget(self.fit_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.fit_row.setVisible(False)
        self.estimate_label = QLabel(objectName="estimate")
        font = QFont(self.estimate_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.estimate_label.setFont(font)
        self.estimate_detail = QLabel(objectName="estimateDetail", wordWrap=True)

        self.name_edit = QLineEdit(objectName="adapterName")
        self.name_edit.setToolTip("The adapter's name in the adapter manager: lowercase letters, digits, '.', '_' and '-'")
        self.name_problem = QLabel(objectName="nameProblem", wordWrap=True)
        self.name_problem.setStyleSheet("color: #b00020;")

        self.advanced_button = QToolButton(objectName="advancedToggle", text="Advanced", checkable=True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced = QGroupBox(objectName="advancedPanel")
        self.rank_spin = QSpinBox(objectName="rank", minimum=1, maximum=256)
        self.rank_spin.setToolTip("LoRA rank: the adapter's size (alpha is kept at twice the rank)")
        self.lr_spin = QDoubleSpinBox(objectName="learningRate", decimals=5, minimum=0.00001, maximum=0.1, singleStep=0.0001)
        self.steps_spin = QSpinBox(objectName="steps", minimum=1, maximum=1_000_000)
        self.steps_spin.setToolTip("Optimiser steps; a preset sets them from its number of passes over the data")
        self.batch_spin = QSpinBox(objectName="batchSize", minimum=1, maximum=512)
        self.batch_spin.setToolTip("Clips per optimiser step")
        form = QFormLayout(self.advanced)
        form.addRow("LoRA rank:", self.rank_spin)
        form.addRow("Learning rate:", self.lr_spin)
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Batch size:", self.batch_spin)
        self.advanced.setVisible(False)

        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Adapter name:"))
        name_row.addWidget(self.name_edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(presets)
        layout.addWidget(self.seed_note)
        layout.addWidget(self.fit_row)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.estimate_detail)
        layout.addSpacing(10)
        layout.addLayout(name_row)
        layout.addWidget(self.name_problem)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced)
        layout.addStretch(1)

        self.preset_group.buttonToggled.connect(lambda button, on: on and self.apply_preset(button.text()))
        self.advanced_button.toggled.connect(self._toggle_advanced)
        for spin in (self.rank_spin, self.lr_spin, self.batch_spin):
            spin.valueChanged.connect(self._edited)
        self.steps_spin.valueChanged.connect(self._steps_changed)
        self.name_edit.textChanged.connect(self._name_changed)

    # -- presets and the advanced panel ------------------------------------------------

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _train_clips(self) -> int:
        return len(self.state.report.train) if self.state.report else 0

    def preset(self) -> Preset | None:
        checked = self.preset_group.checkedButton()
        return next((p for p in PRESETS if checked is not None and p.name == checked.text()), None)

    def apply_preset(self, name: str) -> None:
        preset = next(p for p in PRESETS if p.name == name)
        self._filling = True
        try:
            self.preset_buttons[name].setChecked(True)
            self.rank_spin.setValue(self.seed_rank or preset.rank)
            self.lr_spin.setValue(preset.learning_rate)
            self.batch_spin.setValue(TrainConfig.batch_size)
            self.steps_spin.setValue(steps_for(self._train_clips(), TrainConfig.batch_size, preset.epochs))
        finally:
            self._filling = False
        self._steps_edited = False
        self._update_estimate()

    def _steps_changed(self) -> None:
        if not self._filling:
            self._steps_edited = True
        self._edited()

    def _edited(self) -> None:
        if self._filling:
            return
        preset = self.preset()
        if preset is not None and not self._steps_edited:
            # A new batch size keeps the preset's number of passes over the data.
            self._filling = True
            self.steps_spin.setValue(steps_for(self._train_clips(), self.batch_spin.value(), preset.epochs))
            self._filling = False
        self._update_estimate()

    def is_custom(self) -> bool:
        preset = self.preset()
        return preset is None or self._steps_edited or (
            self.rank_spin.value(), round(self.lr_spin.value(), 6), self.batch_spin.value()
        ) != (self.seed_rank or preset.rank, preset.learning_rate, TrainConfig.batch_size)

    def overrides(self) -> dict[str, object]:
        """The plan's overrides: always the step budget (never epochs beside it), rank and alpha,
        learning rate, batch size and the dev-check cadence."""
        steps = self.steps_spin.value()
        preset = self.preset() or next(p for p in PRESETS if p.name == DEFAULT_PRESET)
        rank = self.rank_spin.value()
        return {
            "rank": rank, "alpha": float(2 * rank), "lr": round(self.lr_spin.value(), 6),
            "steps": steps, "batch_size": self.batch_spin.value(), "eval_every": eval_every(steps, preset.evaluations),
        }

    # -- the estimate ----------------------------------------------------------------

    def _follow_the_start(self) -> None:
        """A warm start copies an installed adapter's weights, so the new adapter takes its rank
        (for Best fit: the rank most of the candidates have; the trainer scores only those)."""
        plan, similarity = self.state.plan, self.state.similarity
        neighbours = similarity.neighbours if similarity is not None else []
        self.seed_rank, source = None, ""
        # Only the targets rule a neighbour out here: the new adapter follows the rank.
        ranks = [n.lora.rank for n in neighbours if start_problem(n.adapter, n.lora, n.lora.rank, DEFAULT_TARGETS) is None]
        if plan.warm_start == WARM_FIT and ranks:
            self.seed_rank = max(ranks, key=lambda r: (ranks.count(r), -ranks.index(r)))
            source = "the installed adapters that Best fit can start from"
        elif plan.warm_start != WARM_NONE:
            chosen = next((n for n in neighbours if n.language == plan.warm_start), None)
            if chosen is not None:
                self.seed_rank = chosen.lora.rank
                source = f"the {language_name(chosen.language)} adapter ({chosen.adapter}) it starts from"
        self.seed_note.setText(f"Every preset trains at rank {self.seed_rank}, the rank of {source}." if source else "")
        self.seed_note.setVisible(bool(source))
        self.rank_spin.setEnabled(self.seed_rank is None)
        self.rank_spin.setToolTip(
            "LoRA rank: the adapter's size (alpha is kept at twice the rank)" if self.seed_rank is None
            else f"Rank {self.seed_rank}: a warm start needs the rank of the adapter it copies"
        )

    def initializePage(self) -> None:
        self.name_edit.setText(self.state.plan.adapter_name)
        self._follow_the_start()
        if self.device is None and self.device_task is None:  # looked up once, in the background
            engine, similarity = self.state.holder.engine, self.state.similarity
            fingerprint = engine.fingerprint if engine is not None else None
            device = similarity.device if similarity is not None else None
            self.device_task = BackgroundTask(lambda _p, _c: self._find_speeds(device, fingerprint), "wizard-device", self)
            self.device_task.done.connect(self._device_found)
            self.device_task.failed.connect(lambda _: self._device_found((device or "cpu", None)))
            self.device_task.start()
        self.apply_preset(self.preset().name if self.preset() else DEFAULT_PRESET)

    def _find_speeds(self, device: str | None, fingerprint: str | None) -> tuple[str, Throughput | None]:
        """Off the GUI thread: where training runs, and the speeds earlier runs measured there
        with this backbone (None before the first, or while the backbone's fingerprint is unknown)."""
        device = device or training_device(self.state.plan.device)
        precision = auto_precision(device)  # looks at the CPU through torch
        return device, default_speed_log().throughput(device, precision, fingerprint) if fingerprint else None

    def _device_found(self, found: tuple[str, Throughput | None]) -> None:
        (self.device, self.rates), self.device_task = found, None
        self._update_estimate()

    def _fit_candidates(self, rank: int | None) -> int:
        """How many installed adapters a Best fit start would score (at `rank`, or at each one's own)."""
        similarity = self.state.similarity
        neighbours = similarity.neighbours if similarity is not None else []
        return sum(start_problem(n.adapter, n.lora, rank or n.lora.rank, DEFAULT_TARGETS) is None for n in neighbours)

    def _update_fit_hint(self) -> None:
        """Offer Best fit for a short run that would start fresh (MoE never starts from a copy)."""
        plan, report = self.state.plan, self.state.report
        seen = passes(self.steps_spin.value(), self.batch_spin.value(), len(report.train) if report else 0)
        short = report is not None and plan.warm_start == WARM_NONE and plan.moe == 0 and seen <= FIT_HELPS_MAX_PASSES
        shown = short and self._fit_candidates(None) > 0
        self.fit_hint.setText(FIT_HINT.format(passes=seen) if shown else "")
        self.fit_row.setVisible(shown)

    def use_fit(self) -> None:
        """Switch this plan to a Best fit start: the rank follows the candidates', the rest stays."""
        preset = None if self.is_custom() else self.preset()
        self.state.plan.warm_start = WARM_FIT
        self._follow_the_start()
        if preset is not None:
            self.apply_preset(preset.name)
        else:
            self.rank_spin.setValue(self.seed_rank or self.rank_spin.value())
            self._update_estimate()

    def _update_estimate(self) -> None:
        """Estimate the run as now set up; Next waits for it (the device is looked up in the background)."""
        self._update_fit_hint()
        self._estimate()
        self.completeChanged.emit()

    def _estimate(self) -> None:
        report, plan = self.state.report, self.state.plan
        if report is None or self.device is None:
            self.estimate = None
            self.estimate_label.setText("Estimating…")
            self.estimate_detail.setText("")
            return
        overrides = self.overrides()
        scored = self._fit_candidates(int(overrides["rank"])) if plan.warm_start == WARM_FIT else 0
        self.estimate = estimate = estimate_training(
            device=self.device, train_clips=len(report.train), dev_clips=len(report.dev),
            data_seconds=report.train_seconds() + report.dev_seconds(), steps=int(overrides["steps"]),
            batch_size=int(overrides["batch_size"]), eval_every=int(overrides["eval_every"]),
            starts_from_adapter=plan.warm_start != WARM_NONE or plan.moe > 0,
            fit_candidates=scored, rates=self.rates,
        )
        where = "on this machine's GPU" if self.device == "cuda" else "on this machine's CPU"
        total = duration_text(estimate.total_s)
        self.estimate_label.setText(f"{total[0].upper()}{total[1:]} {where}")
        seen = passes(estimate.steps, int(overrides["batch_size"]), len(report.train))
        self.estimate_detail.setText(
            f"{estimate.steps} steps of {overrides['batch_size']} clips (each of the {len(report.train)} training "
            f"clips, {report.train_seconds() / 60:.1f} min, seen about {seen:.1f} times): {duration_text(estimate.train_s)}; "
            f"{estimate.evaluations} dev checks of {min(len(report.dev), TrainConfig.dev_max_clips)} clips: "
            f"{duration_text(estimate.eval_s)}; loading and preparing: {duration_text(estimate.setup_s)}"
            + (f"; finding the best-fitting start: {duration_text(estimate.fit_s)}" if estimate.fit_s else "") + ". "
            f"Speeds {estimate.basis}. A run that stops improving ends sooner."
        )

    # -- the name and handing over ---------------------------------------------------------

    def name_problem_text(self) -> str:
        name = self.name_edit.text().strip()
        return adapter_name_problem(name, self.state.adapter_names)

    def _name_changed(self) -> None:
        self.name_problem.setText(self.name_problem_text())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.estimate is not None and not self.name_problem_text() and self.state.report is not None

    def validatePage(self) -> bool:
        if not self.isComplete():
            return False
        plan = self.state.plan
        preset = self.preset()
        plan.preset = CUSTOM if self.is_custom() or preset is None else preset.name
        plan.overrides = self.overrides()
        plan.adapter_name = self.name_edit.text().strip()
        return True
