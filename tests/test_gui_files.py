"""The Files tab end to end: real clips dropped on the window, transcribed by the real
backbone on the queue's worker thread, exported, cancelled, retried and reloaded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog

from lorawhisper_app.benchmarks.engine_bench import make_timing_adapter
from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.job_store import Job, JobStatus, JobStore
from lorawhisper_app.core.routing import RoutingOptions
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.files_panel import FilesPanel, collect_audio
from lorawhisper_app.gui.job_queue import Column
from lorawhisper_app.gui.main_window import MainWindow

pytestmark = pytest.mark.integration
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
MAX_STALL_S = 0.2
JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The real backbone with a Swahili adapter (peft's initialisation: the text stays the
    bare backbone's, the routing to it is real)."""
    store_dir = tmp_path_factory.mktemp("adapters")
    engine = Engine(store=AdapterStore(None, store_dir))
    make_timing_adapter(store_dir, "sw-test", "sw", engine.backbone.model.config, engine.backbone.files, 0)
    return engine


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's data folder for this test only (never the user's)."""
    monkeypatch.setenv("LORAWHISPER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def holder(engine: Engine) -> EngineHolder:
    """Not started: the window (or the queue's worker) starts it."""
    return EngineHolder(lambda: engine)


@pytest.fixture
def window(qtbot, holder: EngineHolder, data_dir: Path) -> MainWindow:
    window = MainWindow(holder)
    qtbot.addWidget(window)  # closed at teardown: closeEvent stops the queue's worker
    window.resize(1100, 700)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(holder.ready, timeout=60_000):
        holder.start()
    return window


def shortest_clips(speech_dev: Path, language: str, count: int = 1) -> list[Path]:
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    rows = sorted((r for r in rows if r["language"] == language), key=lambda r: r["duration_s"])
    return [speech_dev / r["path"] for r in rows[:count]]


def drop_on(widget, paths: list[Path], at: QPoint) -> None:  # noqa: ANN001 - a QWidget
    """Drag `paths` over `widget` and drop them at `at`, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    copy, no_button, no_modifier = Qt.DropAction.CopyAction, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(at, copy, mime, no_button, no_modifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(at), copy, mime, no_button, no_modifier)
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted()


class StallMeter:
    """A 10 ms timer on the GUI thread; the largest gap between its ticks is the longest
    time the event loop was kept from running."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._last: float | None = None
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.worst = max(self.worst, now - self._last)
        self._last = now

    def __enter__(self) -> StallMeter:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.stop()


def statuses(panel: FilesPanel) -> list[JobStatus]:
    return [job.status for job in panel.queue.jobs()]


def test_dropped_files_are_transcribed_and_exported(
    qtbot, window: MainWindow, speech_dev: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    panel = window.files_panel
    assert "Swahili (sw) ★ adapter" in [panel.language_box.itemText(i) for i in range(panel.language_box.count())]
    sw, en = shortest_clips(speech_dev, "sw")[0], shortest_clips(speech_dev, "en")[0]
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    export_dir = tmp_path / "export"
    panel.set_export(export_dir, "srt")
    window.tabs.setCurrentWidget(window.live_panel)  # a drop anywhere brings the Files tab forward

    with StallMeter() as meter:
        qtbot.wait(50)
        drop_on(window, [sw, en, notes], window.rect().center())
        assert window.tabs.currentWidget() is panel
        assert panel.message_bar.isVisible()
        assert "notes.txt: not an audio file" in panel.message.text()
        assert [job.name for job in panel.queue.jobs()] == [sw.name, en.name]
        qtbot.waitUntil(lambda: statuses(panel) == [JobStatus.DONE] * 2, timeout=JOB_TIMEOUT_MS)
        qtbot.wait(100)
    with capsys.disabled():
        print(f"\nlongest event-loop stall while transcribing: {meter.worst * 1000:.0f} ms")
    assert meter.worst < MAX_STALL_S

    jobs = panel.queue.jobs()
    assert [job.detected_language for job in jobs] == ["sw", "en"]
    assert panel.queue.result(jobs[0].id).route.adapters == {"sw-test": 1.0}
    languages = [panel.queue.index(row, Column.LANGUAGE).data() for row in range(2)]
    assert languages == ["Auto → Swahili (sw) ★", "Auto → English (en)"]
    assert panel.queue.index(0, Column.DURATION).data() == "0:06"
    for clip, job in zip((sw, en), jobs):
        exported = export_dir / f"{clip.stem}.srt"
        assert exported.is_file() and "-->" in exported.read_text()
        assert job.export_error is None
    # The first finished file was selected and its transcript is shown beside the queue.
    assert panel.result_pane.currentWidget() is panel.transcript
    assert panel.transcript.result() == panel.queue.result(jobs[0].id)
    assert not panel.row_actions(jobs[0].id).cancel_button.isVisible()
    assert panel.row_actions(jobs[0].id).remove_button.isVisible()

    SCREENSHOTS.mkdir(exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "files_tab.png"))


def test_cancel_retry_failure_and_language_override(
    qtbot, window: MainWindow, speech_dev: Path, tmp_path: Path
) -> None:
    panel = window.files_panel
    first, second = shortest_clips(speech_dev, "sw", 2)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    jobs = panel.add_paths([first, second, broken])
    running, waiting, bad = (job.id for job in jobs)
    assert statuses(panel) == [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.QUEUED]

    # A waiting file's language, changed in its row's combo box.
    index = panel.queue.index(1, Column.LANGUAGE)
    panel.table.setCurrentIndex(index)
    panel.table.edit(index)
    editor = panel.table.findChild(QComboBox, "jobLanguage")
    editor.setCurrentIndex(editor.findText("English (en)"))
    editor.activated.emit(editor.currentIndex())
    assert panel.queue.job(waiting).routing == RoutingOptions("en")
    assert json.loads(panel.queue.store.queue_path.read_text())["jobs"][1]["routing"]["language"] == "en"

    qtbot.mouseClick(panel.row_actions(running).cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.queue.job(running).status is JobStatus.CANCELLED, timeout=JOB_TIMEOUT_MS)
    qtbot.waitUntil(lambda: panel.queue.job(bad).status is JobStatus.FAILED, timeout=JOB_TIMEOUT_MS)
    failure = panel.queue.job(bad).error
    assert failure and "broken.wav" in failure
    assert panel.queue.index(2, Column.STATUS).data() == f"failed: {failure}"
    assert failure in panel.queue.index(2, Column.STATUS).data(Qt.ItemDataRole.ToolTipRole)

    actions = panel.row_actions(running)
    assert actions.retry_button.isVisible() and not actions.cancel_button.isVisible()
    qtbot.mouseClick(actions.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.queue.job(running).status is JobStatus.DONE, timeout=JOB_TIMEOUT_MS)
    qtbot.waitUntil(lambda: panel.queue.job(waiting).status is JobStatus.DONE, timeout=JOB_TIMEOUT_MS)
    assert panel.queue.result(waiting).route.mode == "manual" and panel.queue.job(waiting).detected_language == "en"

    qtbot.mouseClick(panel.row_actions(bad).remove_button, Qt.MouseButton.LeftButton)
    assert [job.id for job in panel.queue.jobs()] == [running, waiting]


def test_a_failed_export_is_shown_and_the_transcript_kept(
    qtbot, window: MainWindow, speech_dev: Path, tmp_path: Path
) -> None:
    panel = window.files_panel
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should be")
    panel.set_export(blocker / "exports", "txt")
    job = panel.add_paths(shortest_clips(speech_dev, "en"))[0]
    qtbot.waitUntil(lambda: panel.queue.job(job.id).status is JobStatus.DONE, timeout=JOB_TIMEOUT_MS)
    failed = panel.queue.job(job.id)
    assert failed.export_error and "export to" in failed.export_error
    assert panel.message_bar.isVisible() and failed.export_error in panel.message.text()
    assert panel.queue.index(0, Column.STATUS).data() == "done · export failed"
    assert panel.queue.store.load_result(job.id).text  # the transcript itself is kept


def test_file_open_adds_files_with_the_default_language(qtbot, window: MainWindow, speech_dev: Path) -> None:
    panel = window.files_panel
    panel.moe_box.setChecked(True)
    panel.moe_k.setValue(3)
    assert panel.default_routing() == RoutingOptions(moe_k=3)
    panel.set_default_language("sw")
    assert not panel.moe_box.isEnabled() and panel.default_routing() == RoutingOptions("sw")
    window.tabs.setCurrentWidget(window.live_panel)
    window.open_action.trigger()
    dialog = panel.open_dialog
    assert isinstance(dialog, QFileDialog) and dialog.isVisible() and window.tabs.currentWidget() is panel
    assert dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
    assert dialog.fileMode() == QFileDialog.FileMode.ExistingFiles
    clips = shortest_clips(speech_dev, "sw", 2)
    dialog.setDirectory(str(clips[0].parent))
    dialog.selectFile(" ".join(f'"{clip.name}"' for clip in clips))
    dialog.accept()
    assert [Path(job.path) for job in panel.queue.jobs()] == clips
    assert all(job.routing == RoutingOptions("sw") for job in panel.queue.jobs())
    qtbot.waitUntil(lambda: statuses(panel) == [JobStatus.DONE] * 2, timeout=JOB_TIMEOUT_MS)
    assert panel.queue.index(0, Column.LANGUAGE).data() == "Swahili (sw) ★"

    # "Re-run as" in the transcript pane queues the file again in that language.
    panel.table.selectRow(0)
    view = panel.transcript
    view.rerun_box.setCurrentIndex(view.rerun_box.findData("en"))
    qtbot.mouseClick(view.rerun_button, Qt.MouseButton.LeftButton)
    rerun = panel.queue.jobs()[-1]
    assert (Path(rerun.path), rerun.routing) == (clips[0], RoutingOptions("en"))
    qtbot.waitUntil(lambda: panel.queue.job(rerun.id).status is JobStatus.DONE, timeout=JOB_TIMEOUT_MS)
    assert panel.queue.result(rerun.id).route.language == "en"
    assert panel.queue.result(panel.queue.jobs()[0].id).route.language == "sw"  # the first transcript is kept


def test_queue_and_edits_survive_a_new_panel(qtbot, holder: EngineHolder, speech_dev: Path, tmp_path: Path) -> None:
    clip, other = shortest_clips(speech_dev, "en", 2)
    store = JobStore(tmp_path / "jobs")
    first = FilesPanel(holder, store)
    qtbot.addWidget(first)
    job = first.add_paths([clip])[0]
    qtbot.waitUntil(lambda: first.queue.job(job.id).status is JobStatus.DONE, timeout=JOB_TIMEOUT_MS)
    qtbot.waitUntil(lambda: first.result_pane.currentWidget() is first.transcript)
    view = first.transcript
    view.model.setData(view.model.index(0, view.model.TEXT_COLUMN), "corrected by hand")
    first.shutdown()
    # As if the app had been killed while a second file ran.
    JobStore(store.root).save([*first.queue.jobs(), Job(str(other), status=JobStatus.RUNNING)])

    second = FilesPanel(holder, JobStore(store.root))
    qtbot.addWidget(second)
    try:
        assert statuses(second) == [JobStatus.DONE, JobStatus.INTERRUPTED]
        assert second.queue.result(job.id).segments[0].text == "corrected by hand"
        second.table.selectRow(0)
        assert second.result_pane.currentWidget() is second.transcript
        assert "corrected by hand" in second.transcript.result().text
        assert not second.banner.isHidden()
        assert second.banner_label.text() == "1 unfinished file from the last session."
        qtbot.mouseClick(second.resume_button, Qt.MouseButton.LeftButton)
        assert second.banner.isHidden()
        qtbot.waitUntil(lambda: statuses(second) == [JobStatus.DONE] * 2, timeout=JOB_TIMEOUT_MS)
    finally:
        second.shutdown()


def test_folders_give_their_audio_files_recursively_sorted(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for name in ("b/2.flac", "b/1.MP3", "a.wav", "cover.jpg", ".hidden.wav", "c/d/e.opus"):
        (music / name).parent.mkdir(parents=True, exist_ok=True)
        (music / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    accepted, refused = collect_audio([music, tmp_path / "empty", tmp_path / "gone.wav", music / "cover.jpg"])
    assert [p.relative_to(music).as_posix() for p in accepted] == ["a.wav", "b/1.MP3", "b/2.flac", "c/d/e.opus"]
    assert refused == ["empty/: no audio files inside", "gone.wav: not found", "cover.jpg: not an audio file"]


def test_a_corrupt_queue_is_reported_not_fatal(qtbot, holder: EngineHolder, data_dir: Path) -> None:
    (data_dir / "jobs").mkdir(parents=True)
    (data_dir / "jobs" / "queue.json").write_text('{"jobs": [{"path": ')
    window = MainWindow(holder)
    qtbot.addWidget(window)
    window.show()
    panel = window.files_panel
    assert panel.message_bar.isVisible() and "moved aside" in panel.message.text()
    assert panel.queue.rowCount() == 0
    assert len(list((data_dir / "jobs").glob("queue.json.corrupt-*"))) == 1
    window.close()
