"""The Live tab end to end: a real engine hears real clips through a virtual microphone."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from lorawhisper_app.benchmarks.engine_bench import make_timing_adapter
from lorawhisper_app.benchmarks.virtual_mic import VirtualMicrophone, virtual_mic_unavailable
from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.core.capture import find_input_device
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.metrics import word_errors
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.main_window import MainWindow

pytestmark = pytest.mark.integration
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ADAPTER_LANGUAGES = ("en", "de")
# Live finals may differ from a file transcription of the same clip: the utterance is cut
# by the VAD (a little pre- and post-roll) instead of being the whole file.
MAX_WER_GAP = 0.10


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The real backbone with an English and a German adapter installed.

    They are LoRA adapters at peft's initialisation (B = 0): routing to them is real, and
    the text stays the bare backbone's, so live and offline texts compare directly."""
    store_dir = tmp_path_factory.mktemp("adapters")
    engine = Engine(store=AdapterStore(None, store_dir))
    files, config = engine.backbone.files, engine.backbone.model.config
    for seed, language in enumerate(ADAPTER_LANGUAGES):
        make_timing_adapter(store_dir, f"{language}-test", language, config, files, seed)
    return engine


def _clip(speech_dev: Path, language: str) -> dict:
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["language"] == language and r["synthetic"] is None and r["duration_s"] < 12)
    return {**row, "path": speech_dev / row["path"]}


def _listening_window(qtbot, engine: Engine, mic: VirtualMicrophone, threshold: float | None = None):  # noqa: ANN001, ANN202
    """The main window on the Live tab, its engine loaded, listening to `mic`."""
    holder = EngineHolder(lambda: engine)
    window = MainWindow(holder)
    qtbot.addWidget(window)
    window.show()
    holder.start()
    qtbot.waitUntil(lambda: holder.engine is not None, timeout=30000)
    panel = window.live_panel
    if threshold is not None:
        window.apply_settings(replace(window.settings, threshold=threshold))
    window.tabs.setCurrentWidget(panel)
    panel.refresh_devices()
    panel.device_box.setCurrentIndex(panel.device_box.findData(find_input_device(mic.device).index))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.state.text().startswith("Listening"), timeout=30000)
    return window, panel


def test_live_tab_transcribes_the_microphone(qtbot, engine: Engine, speech_dev: Path, tmp_path: Path) -> None:
    reason = virtual_mic_unavailable()
    if reason:
        pytest.skip(f"no virtual microphone: {reason}")
    clips = [_clip(speech_dev, language) for language in ADAPTER_LANGUAGES]
    with VirtualMicrophone() as mic:
        window, panel = _listening_window(qtbot, engine, mic, threshold=0.3)
        partials: list = []
        panel.worker.event.connect(lambda e: partials.append(e) if e.kind == "partial" else None)
        for count, clip in enumerate(clips, 1):
            mic.play(clip["path"]).wait()
            qtbot.waitUntil(lambda n=count: len(panel.finals) >= n, timeout=30000)
            time.sleep(0.5)
        SCREENSHOTS.mkdir(exist_ok=True)
        assert window.grab().save(str(SCREENSHOTS / "live_panel.png"))
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        # The worker's end reaches the panel as a queued signal: wait for the panel, not the thread.
        qtbot.waitUntil(lambda: not panel.worker.isRunning() and panel.start_button.isEnabled(), timeout=30000)

    assert panel.worker.session.options.threshold == 0.3, "the Settings' auto-routing threshold applies to Live"
    assert [e.language for e in panel.finals] == list(ADAPTER_LANGUAGES)
    assert [e.adapter for e in panel.finals] == [f"{language}-test" for language in ADAPTER_LANGUAGES]
    for event, clip in zip(panel.finals, clips):
        offline = engine.transcribe(clip["path"], language="auto")
        assert offline.route.adapters == {event.adapter: 1.0}
        live_wer = word_errors(clip["text"], event.text).rate
        offline_wer = word_errors(clip["text"], offline.text).rate
        assert live_wer <= offline_wer + MAX_WER_GAP, (event.text, offline.text)
    assert partials, "no partial text was shown while speaking"
    html = panel.transcript.toHtml()
    assert "en " in panel.transcript.toPlainText() and "de " in panel.transcript.toPlainText()
    assert clips[0]["text"].split()[1] in html.lower()
    assert panel.save_button.isEnabled() and panel.export_button.isEnabled()
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with qtbot.waitSignal(panel.saved, timeout=30000) as failed:
        panel.save(blocker / "session")
    assert failed.args == [{}] and panel.state.text() == "Not saved"
    assert panel.message_bar.message.text().startswith(f"{blocker / 'session'}: could not save the live session")
    with qtbot.waitSignal(panel.saved, timeout=30000) as done:
        panel.save(tmp_path / "session")
        assert not (panel.start_button.isEnabled() or panel.save_button.isEnabled()), "nothing starts while saving"
    saved = done.args[0]
    assert sorted(saved) == ["audio", "transcript"] and all(Path(p).is_file() for p in saved.values())
    assert panel.start_button.isEnabled() and panel.save_button.isEnabled()


def test_a_full_disk_stops_the_recording_and_the_panel_says_so(
    qtbot, engine: Engine, speech_dev: Path, tmp_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session records into the temporary folder, here a real 64 KiB filesystem: it fills within
    seconds, the bar says so, the words still come, and Save keeps the transcript."""
    reason = virtual_mic_unavailable()
    if reason:
        pytest.skip(f"no virtual microphone: {reason}")
    full = small_disk("64k")
    monkeypatch.setattr(tempfile, "tempdir", str(full))
    clip = _clip(speech_dev, "en")
    with VirtualMicrophone() as mic:
        window, panel = _listening_window(qtbot, engine, mic)
        mic.play(clip["path"]).wait()
        qtbot.waitUntil(lambda: len(panel.finals) >= 1 and panel.message_bar.isVisible(), timeout=30000)
        assert window.grab().save(str(SCREENSHOTS / "live_panel_full_disk.png"))
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.worker.isRunning() and panel.start_button.isEnabled(), timeout=30000)

    text = panel.message_bar.message.text()
    assert text.startswith(f"{full}/lorawhisper-live-") and "the recording stopped at" in text, text
    assert text.endswith("the transcript goes on, the audio will not be kept")
    assert word_errors(clip["text"], panel.finals[0].text).rate < 0.5
    with qtbot.waitSignal(panel.saved, timeout=30000) as done:
        panel.save(tmp_path / "session")
    assert list(done.args[0]) == ["transcript"] and panel.state.text() == f"Saved to {tmp_path / 'session'} (the transcript only)"
