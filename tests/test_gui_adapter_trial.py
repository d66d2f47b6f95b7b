"""Trying an adapter on one's own recordings from the Adapters tab, on the real backbone with
the shipped Swahili adapter and real Swahili clips: the adapter must win, a broken clip is
named, Cancel stops a trial."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.evaluation import Clips, Comparison
from lorawhisper_app.gui.adapter_trial import comparison_text
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.main_window import MainWindow

pytestmark = pytest.mark.integration
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
TIMEOUT_MS = 180_000
RESULT = re.compile(r"^sw on 2 clips of recordings: (\d+\.\d) % of words wrong with it, (\d+\.\d) % without "
                    r"\((\d+) % fewer errors\)\. Left out: (.+)$")


@pytest.fixture
def recordings(speech_dev: Path, tmp_path: Path) -> Path:
    """Two real Swahili dev clips with their transcripts beside them, and a file that is not audio."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rows = sorted((r for r in rows if r["language"] == "sw" and r["synthetic"] is None), key=lambda r: r["duration_s"])
    folder = tmp_path / "recordings"
    folder.mkdir()
    for row in rows[:2]:
        audio = folder / Path(row["path"]).name
        audio.write_bytes((speech_dev / row["path"]).read_bytes())
        audio.with_suffix(".txt").write_text(row["text"], encoding="utf-8")
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt not audio")
    (folder / "broken.txt").write_text("maneno", encoding="utf-8")
    return folder


def test_trying_the_swahili_adapter_on_swahili_recordings(qtbot, tmp_path: Path, recordings: Path) -> None:
    store = AdapterStore(bundled_adapter_dir(), tmp_path / "adapters")
    holder = EngineHolder(lambda: Engine(device="cpu", store=store))
    window = MainWindow(holder, store=store)
    qtbot.addWidget(window)
    window.resize(1000, 640)
    window.show()
    manager = window.adapter_manager
    window.tabs.setCurrentWidget(manager)
    with qtbot.waitSignal(holder.ready, timeout=TIMEOUT_MS):
        holder.start()
    qtbot.waitUntil(lambda: manager.model.row_of("sw") is not None and not manager.busy, timeout=TIMEOUT_MS)
    trial = manager.trial
    assert not trial.button.isEnabled()  # nothing selected
    manager.select("sw")
    assert trial.button.isEnabled() and not trial.progress.isVisible()

    trial.run(recordings)
    assert trial.progress.isVisible() and trial.cancel_button.isVisible() and not trial.button.isEnabled()
    with qtbot.waitSignal(trial.report, timeout=TIMEOUT_MS) as reported:
        pass
    text, kind = reported.args
    found = RESULT.match(text)
    assert kind == "info" and found, text
    with_it, without, fewer = float(found[1]), float(found[2]), int(found[3])
    assert with_it < without and fewer == round(100 * (without - with_it) / without)
    assert found[4].startswith(f"{recordings / 'broken.wav'}: ")  # named, with what is wrong with it
    assert manager.message_bar.isVisible() and manager.message.text() == text
    results = trial.results  # the clips one by one, in a window of their own
    assert results is not None and results.isVisible() and results.summary.text() == text
    table = results.table
    references = {" ".join(p.read_text(encoding="utf-8").split()) for p in recordings.glob("*.txt") if p.stem != "broken"}
    assert table.rowCount() == 2 and {table.item(row, 0).text() for row in range(2)} == references
    wrong = [tuple(int(n) for n in table.item(row, 3).text().split(" → ")) for row in range(2)]
    assert sum(w for w, _ in wrong) > sum(a for _, a in wrong)  # fewer wrong words with the adapter, as the totals say
    assert not trial.progress.isVisible() and trial.button.isEnabled()
    SCREENSHOTS.mkdir(exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "adapter_trial.png"))
    assert results.grab().save(str(SCREENSHOTS / "adapter_trial_results.png"))

    trial.run(recordings)
    qtbot.mouseClick(trial.cancel_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(trial.report, timeout=TIMEOUT_MS) as reported:
        pass
    assert reported.args == ["Trying sw on recordings was cancelled.", "info"]
    assert trial.button.isEnabled() and not trial.cancel_button.isVisible()

    empty = tmp_path / "nothing here"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio", encoding="utf-8")
    trial.run(empty)
    with qtbot.waitSignal(trial.report, timeout=TIMEOUT_MS) as reported:
        pass
    assert reported.args[1] == "error" and reported.args[0].startswith(f"{empty}: no audio files found")

    others = tmp_path / "yoruba.jsonl"  # a manifest's clips of other languages are not the adapter's to try
    others.write_text(json.dumps({"path": str(recordings / "broken.wav"), "text": "oro", "language": "yo"}) + "\n")
    trial.run(others)
    with qtbot.waitSignal(trial.report, timeout=TIMEOUT_MS) as reported:
        pass
    assert reported.args == [f"{others}: no clips with transcripts in sw to try sw on", "error"]


def test_the_outcome_says_which_way_it_went() -> None:
    worse = Comparison("rw", "sw")
    worse.with_adapter.add("a b c d", "a x y d")
    worse.without.add("a b c d", "a b c x")
    assert comparison_text(worse, Clips([], [], ""), Path("/data/talks")) == (
        "rw on 1 clip of talks: 50.0 % of words wrong with it, 25.0 % without (100 % more errors)")
    worse.unreadable += ["/data/talks/b.wav: not audio", "/data/talks/c.wav: not audio"]
    left_out = Clips([], ["/data/talks/a.wav: no a.txt beside it: left out"], "dev.tsv")
    assert comparison_text(worse, left_out, Path("/data/talks")) == (
        "rw on 1 clip of talks (dev.tsv): 50.0 % of words wrong with it, 25.0 % without (100 % more errors). "
        "Left out: /data/talks/a.wav: no a.txt beside it: left out, and 2 more")
