"""Page 5: the training run, in a child process, with live plots, ETA, pause, cancel and resume.

Pause and cancel both stop the child cleanly: on SIGTERM the trainer stops at the end of
its step or between batches of an evaluation, writes a checkpoint and exits, which frees the memory and the processor it held; resume
runs the same command on the same run folder, which continues from that checkpoint (so
it also works after the app was closed). A paused run is meant to go on; a cancelled one
keeps its checkpoint until this page starts another run or the user discards it.

The run outlives the page being hidden or the wizard closed: the page (kept by the main
window while a run is going) owns the process, and the run registry keeps its record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from lorawhisper_app.core.adapter_store import AdapterStore, free_adapter_name
from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.languages import language_name
from lorawhisper_app.core.training.run_registry import RunRecord, RunRegistry, RunState, process_alive
from lorawhisper_app.gui.message_bar import bar_style
from lorawhisper_app.gui.wizard.plan import TrainingPlan
from lorawhisper_app.gui.wizard.training_plot import TrainingPlot
from lorawhisper_app.gui.wizard.training_process import TrainingProcess

LOG_LINES_KEPT = 2000
# The text of the wizard's Cancel button on the pages where a run exists: leaving only closes the window.
CLOSE_TEXT = "Close"
ERROR_LINES_SHOWN = 6
ERROR_STYLE = bar_style("trainingError", "error")


def format_eta(seconds: float | None) -> str:
    """e.g. "45 s", "3 min", "1 h 05 min"."""
    if seconds is None or seconds < 0:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished run installed, for the result page."""

    adapter: str
    path: Path
    language: str
    language_name: str
    dev_wer_before: float
    dev_wer_after: float
    run_dir: Path


class TrainingPage(QWizardPage):
    """`status_changed` carries a one-line summary for the main window's status bar ("" when
    this page has no run); `adapter_installed(name)` fires when the run has installed its
    adapter; `run_ended` whenever the child process has ended, however."""

    status_changed = Signal(str)
    adapter_installed = Signal(str)
    run_ended = Signal()

    def __init__(
        self, plan_provider: Callable[[], TrainingPlan], store: AdapterStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.plan_provider = plan_provider
        self.store = store
        self.registry = RunRegistry()
        self.process = TrainingProcess(self)
        self.record: RunRecord | None = None
        self.outcome: TrainingOutcome | None = None
        self.phase = ""
        self.eta_s: float | None = None
        self._stop_as: RunState | None = None
        self._installed: dict[str, Any] | None = None
        self._adopted: RunRecord | None = None
        self._requested: dict[str, Any] | None = None  # the plan as the wizard gave it, for the last run started
        self.setObjectName("trainingPage")
        self.setTitle("Training")
        self.setSubTitle("The adapter trains in a separate process: closing this window does not stop it.")
        # The wizard's Cancel only closes the window here (the run goes on; "Cancel training" stops it).
        self.setButtonText(QWizard.WizardButton.CancelButton, CLOSE_TEXT)

        self.heading = QLabel(objectName="trainingHeading")
        self.heading.setWordWrap(True)
        self.phase_label = QLabel("Starting…", objectName="trainingPhase")
        self.phase_label.setWordWrap(True)
        self.progress = QProgressBar(objectName="trainingProgress")
        self.progress.setFormat("step %v of %m")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.eta_label = QLabel(objectName="trainingEta")
        self.plot = TrainingPlot()
        self.error_box = QFrame(objectName="trainingError")
        self.error_box.setStyleSheet(ERROR_STYLE)
        self.error_label = QLabel(objectName="trainingErrorText")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout(self.error_box)
        box.setContentsMargins(8, 6, 8, 6)
        box.addWidget(self.error_label)
        self.error_box.hide()
        self.log = QPlainTextEdit(objectName="trainingLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES_KEPT)
        self.log.setMaximumHeight(110)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

        self.pause_button = QPushButton("&Pause", objectName="pauseTraining")
        self.pause_button.setToolTip("Stop after the current step, keeping a checkpoint; Resume continues from it")
        self.resume_button = QPushButton("&Resume", objectName="resumeTraining")
        self.resume_button.setToolTip("Continue from the last checkpoint")
        self.cancel_button = QPushButton("&Cancel training", objectName="cancelTraining")
        self.cancel_button.setToolTip("Stop training; its checkpoint is kept, so Resume can still continue it")
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button.clicked.connect(self._cancel_clicked)

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.eta_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(top)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.error_box)
        layout.addLayout(buttons)
        layout.addWidget(self.log)

        self.process.event.connect(self._on_event)
        self.process.log_line.connect(self._append_log)
        self.process.exited.connect(self._on_exit)
        self.process.failed_to_start.connect(self._on_failed_to_start)
        self._update_buttons()

    # -- the wizard's side -----------------------------------------------------------------

    def adopt(self, record: RunRecord) -> None:
        """Show a run from the registry (one the app did not finish) and resume it when the
        page is entered."""
        self._adopted = record

    def initializePage(self) -> None:
        if self._adopted is not None:
            record, self._adopted = self._adopted, None
            self._show_record(record)
            self.resume()
            return
        if self.record is not None and (
            self.process.running or self.record.state is RunState.FINISHED or len(self.wizard().visitedIds()) <= 1
        ):
            return  # back and forth between pages, or the wizard reopened on this page: the run stays as it is
        plan = self.plan_provider()
        if self.record is not None and self._requested == plan.to_dict():
            return  # the same settings: Resume continues this run
        self.start(plan)

    def cleanupPage(self) -> None:
        """Going back to the settings leaves the run as it is (QWizard would reset fields)."""

    def isComplete(self) -> bool:
        return self.outcome is not None

    @property
    def active(self) -> bool:
        """A child process runs (training, or stopping)."""
        return self.process.running

    # -- starting, stopping, resuming ----------------------------------------------------------

    def _run_plan(self, plan: TrainingPlan, run_dir: Path | None) -> TrainingPlan:
        """The plan as run: its run folder filled in."""
        return dataclasses.replace(plan, overrides=dict(plan.overrides), run_dir=plan.run_dir or run_dir)

    def start(self, plan: TrainingPlan) -> None:
        """Start a new run of `plan`; a stopped run this page showed is discarded."""
        if self.process.running:
            raise RuntimeError("a training run is going already")
        if self.record is not None and self.record.state is not RunState.FINISHED:
            self.registry.discard(self.record)
        self._requested = plan.to_dict()
        run_id = self.registry.new_id(plan.language or "run")
        plan = self._run_plan(plan, self.registry.run_dir(run_id))
        self._reset_view()
        taken = {info.name for info in self.store.list()}
        if plan.adapter_name and plan.adapter_name in taken:
            free = free_adapter_name(plan.adapter_name, taken)
            self._append_log(f"An adapter named {plan.adapter_name} is installed now: this one will be {free} "
                             "(the last page can rename it).")
            plan.adapter_name = free
        try:
            args = plan.train_args()
        except ValueError as error:
            self._fail(f"The training plan is incomplete: {error}.")
            return
        args += ["--adapter-dir", str(self.store.user_dir)]
        name = plan.language_name or language_name(plan.language)
        if plan.language_name:
            args += ["--language-name", plan.language_name]
        self.record = RunRecord(run_id, plan.language, name, Path(str(plan.run_dir)), args, plan.to_dict())
        self._launch()

    def resume(self) -> None:
        """Run the stopped run's command again: it continues from its checkpoint."""
        record = self.record
        if record is None or self.process.running:
            return
        if record.pid and process_alive(record.pid):
            self._fail(f"The earlier training process of this run (process {record.pid}) is still running or "
                       "stopping; wait until it has ended, then resume.")
            return
        self.error_box.hide()
        where = f"from the checkpoint at step {record.checkpoint_step}" if record.has_checkpoint else "from the start"
        self._append_log(f"Resuming {where}.")
        self._launch()

    def _launch(self) -> None:
        assert self.record is not None
        self._stop_as, self._installed, self.outcome = None, None, None
        self.record.state, self.record.error, self.record.pid = RunState.RUNNING, None, None
        self.phase = "starting the training process"
        self.process.start(self.record.args)
        self.record.pid = self.process.pid
        self._save()
        self._refresh()

    def pause(self) -> None:
        self.stop(RunState.PAUSED)

    def stop(self, state: RunState) -> None:
        """Ask the child to stop after its step, keeping a checkpoint; the run becomes `state`."""
        if self.process.running:
            self._stop_as = state
            self.process.stop()
            self._refresh()

    def _cancel_clicked(self) -> None:
        if self.process.running and self._stop_as is not None:
            self._append_log("Stopping at once: the steps since the last checkpoint are lost.")
            self.process.kill()
        elif self.process.running:
            self.stop(RunState.CANCELLED)
        elif self.record is not None and self.record.state in (RunState.PAUSED, RunState.INTERRUPTED, RunState.FAILED):
            self.record.state = RunState.CANCELLED
            self._save()
            self._refresh()

    def discard_run(self) -> None:
        """Forget this page's run and its checkpoints (the installed adapter stays)."""
        if self.record is not None and not self.process.running:
            self.registry.discard(self.record)

    def discard_finished_run(self) -> None:
        """Forget this page's run when it finished (its adapter is installed); any other stays for resuming."""
        if self.record is not None and self.record.state is RunState.FINISHED:
            self.discard_run()

    # -- what the child says -------------------------------------------------------------------

    def _on_event(self, data: dict[str, Any]) -> None:
        record = self.record
        if record is None:
            return
        kind = data["event"]
        step, total = int(data.get("step", 0)), int(data.get("total_steps", 0))
        if total:
            record.total_steps = total
            self.plot.set_total_steps(total)
        if kind == "report":
            train, dev = data.get("train", {}), data.get("dev", {})
            self._append_log(f"Data: {train.get('clips')} clips ({train.get('minutes')} min) to train on, "
                             f"{dev.get('clips')} ({dev.get('minutes')} min) held back to measure.")
        elif kind in ("phase", "similarity", "fit", "done"):
            self.phase = str(data.get("message", ""))
            self._append_log(self.phase)
        elif kind == "step":
            record.step = step
            self.eta_s = data.get("eta_s")
            loss = data.get("loss")
            if isinstance(loss, (int, float)):
                record.losses = [p for p in record.losses if p[0] < step] + [[step, float(loss)]]
                self.plot.add_loss(step, float(loss))
            self.phase = "training"
        elif kind == "eval":
            wer = float(data["dev_wer"])
            record.evals = [p for p in record.evals if p[0] != step] + [[step, wer]]
            self.plot.add_wer(step, wer)
            if step:
                record.checkpoint_step = step
            self._append_log(f"Step {step}: dev WER {wer * 100:.1f} % ({data.get('message', '')})")
            self._save()
        elif kind == "resumed":
            record.step = record.checkpoint_step = step
            record.losses = [p for p in record.losses if p[0] <= step]
            record.evals = [p for p in record.evals if p[0] <= step]
            self.plot.truncate(step)
            self._append_log(str(data.get("message", "")))
        elif kind == "cancelled" and data.get("data", {}).get("checkpoint"):
            record.step = record.checkpoint_step = step
            self._append_log(f"Stopped at step {step}; a checkpoint is kept.")
        elif kind == "cancelled":  # before a step was trained: no new checkpoint, any earlier one stands
            self._append_log(str(data.get("message", "")))
        elif kind == "installed":
            self._installed = data
        self._refresh()

    def _on_exit(self, code: int, crashed: bool) -> None:
        record = self.record
        assert record is not None
        installed = self._installed
        if installed is not None and code == 0 and not crashed:
            self._finish(record, installed)
        elif self._stop_as is not None:
            record.state = self._stop_as
            what = {RunState.PAUSED: "Paused", RunState.CANCELLED: "Cancelled", RunState.INTERRUPTED: "Stopped"}
            self.phase = f"{what.get(self._stop_as, 'Stopped')} at step {record.step} of {record.total_steps}"
            self._append_log(self.phase + (": Resume continues from the checkpoint." if record.has_checkpoint else "."))
        else:
            tail = [line for line in self.process.stderr_tail if line.strip()][-ERROR_LINES_SHOWN:]
            how = "crashed" if crashed else f"stopped with exit code {code}"
            detail = "\n".join(tail) or "it printed no error message"
            self._fail(f"The training process {how} (run folder {record.run_dir}):\n{detail}")
        record.pid = None
        self._stop_as = None
        self._save()
        self._refresh()
        self.run_ended.emit()

    def _on_failed_to_start(self, reason: str) -> None:
        self._fail(reason)
        self._save()
        self._refresh()
        self.run_ended.emit()

    def _finish(self, record: RunRecord, installed: dict[str, Any]) -> None:
        wer = installed.get("dev_wer") or {}
        record.state, record.adapter = RunState.FINISHED, str(installed["name"])
        self.outcome = TrainingOutcome(
            adapter=str(installed["name"]), path=Path(str(installed["path"])), language=record.language,
            language_name=record.language_name, dev_wer_before=float(wer["before"]), dev_wer_after=float(wer["after"]),
            run_dir=record.run_dir,
        )
        self.phase = f"Finished: adapter {record.adapter} is installed."
        self._append_log(self.phase)
        self.completeChanged.emit()
        self.adapter_installed.emit(record.adapter)

    def _fail(self, message: str) -> None:
        if self.record is not None:
            self.record.state, self.record.error = RunState.FAILED, message
        self.phase = "Training failed."
        self.error_label.setText(message)
        self.error_box.show()
        self._append_log(message)

    # -- showing it ----------------------------------------------------------------------------

    def _save(self) -> None:
        if self.record is None:
            return
        try:
            self.registry.save(self.record)
        except LoraWhisperError as error:
            self._append_log(f"{error} (the run goes on, but could not be resumed after the app closes)")

    def _reset_view(self) -> None:
        self.plot.clear()
        self.log.clear()
        self.error_box.hide()
        self.eta_s = None
        self.outcome = None

    def _show_record(self, record: RunRecord) -> None:
        """A record from the registry, with the progress it had."""
        self._reset_view()
        self.record = record
        self.plot.set_total_steps(record.total_steps)
        for step, loss in record.losses:
            self.plot.add_loss(int(step), loss)
        for step, wer in record.evals:
            self.plot.add_wer(int(step), wer)
        self._append_log(f"Training of {record.describe()}.")

    def _append_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    def status_text(self) -> str:
        """e.g. "Training sw: step 40/120, ETA 3 min"; "" without a run."""
        record = self.record
        if record is None:
            return ""
        head = f"Training {record.language}"
        steps = f"{record.step}/{record.total_steps}" if record.total_steps else ""
        if self.process.running and self._stop_as is not None:
            return f"{head}: stopping after step {steps}…" if steps else f"{head}: stopping…"
        if self.process.running:
            if record.step and steps:
                return f"{head}: step {steps}, ETA {format_eta(self.eta_s)}"
            return f"{head}: {self.phase or 'starting'}"
        state = {RunState.PAUSED: "paused", RunState.CANCELLED: "cancelled", RunState.INTERRUPTED: "stopped",
                 RunState.RUNNING: "stopped"}
        if record.state in state:
            return f"{head}: {state[record.state]} at step {steps}" if steps else f"{head}: {state[record.state]}"
        if record.state is RunState.FAILED:
            return f"{head}: failed"
        return f"{head}: finished, adapter {record.adapter}"

    def _refresh(self) -> None:
        record = self.record
        if record is not None:
            name = record.plan.get("adapter_name") or "named when it is installed"
            self.heading.setText(f"<b>{record.language_name} ({record.language})</b> — adapter {name}")
            total = max(1, record.total_steps)
            self.progress.setRange(0, total)
            if record.state is RunState.FINISHED:  # a run that stopped early is finished too
                self.progress.setValue(total)
                early = 0 < record.step < record.total_steps
                self.progress.setFormat(f"finished early, at step {record.step}" if early else "finished")
            else:
                self.progress.setValue(min(record.step, total))
                self.progress.setFormat("step %v of %m")
        running = self.process.running
        self.eta_label.setText(f"ETA {format_eta(self.eta_s)}" if running and record and record.step else "")
        if running and self._stop_as is not None:
            self.phase_label.setText("Stopping after the current step and keeping a checkpoint…")
        else:
            self.phase_label.setText(self.phase[:1].upper() + self.phase[1:])
        self._update_buttons()
        self.status_changed.emit(self.status_text())

    def _update_buttons(self) -> None:
        running = self.process.running
        stopping = running and self._stop_as is not None
        state = self.record.state if self.record is not None else None
        stopped = not running and state in (RunState.PAUSED, RunState.INTERRUPTED, RunState.CANCELLED,
                                            RunState.FAILED, RunState.RUNNING)
        self.pause_button.setVisible(running)
        self.pause_button.setEnabled(running and not stopping)
        self.resume_button.setVisible(stopped)
        self.resume_button.setText("&Try again" if state is RunState.FAILED else "&Resume")
        self.cancel_button.setText("Stop &now" if stopping else "&Cancel training")
        self.cancel_button.setToolTip(
            "Stop at once: the steps since the last checkpoint are lost" if stopping
            else "Stop training; its checkpoint is kept, so Resume can still continue it"
        )
        self.cancel_button.setVisible(running or (stopped and state is not RunState.CANCELLED))
