"""The app on a real X server (Xvfb, the xcb platform): it starts and quits cleanly, its
main screens render at 200 % scaling, and the "Add a language" wizard's pages 1-4 run on
real data there. Plus, offscreen: the main actions have shortcuts and
Tab walks the Files tab in a sensible order.

The X tests run child processes under `xvfb-run -a`; they skip where it is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QApplication, QWidget

from lorawhisper_app.benchmarks.startup_bench import display_search
from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.core.settings import Settings
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.main_window import MainWindow
from test_gui_smoke import SCREENSHOTS, distinct_colours

REPO_ROOT = Path(__file__).resolve().parents[1]
# Room for a 900 x 560 window at twice its size, in full colour (xvfb-run's default
# screen is 640 x 480 at 8 bits).
XVFB_SCREEN = "-screen 0 3840x2160x24"
CHILD_TIMEOUT_S = 180

# Run under QT_SCALE_FACTOR=2: the Files tab with a finished, a failed and a cancelled
# file (the finished one's transcript shown), then the Adapters tab with the repository's
# bundled adapters, then the settings dialog. The engine is a stand-in reporting the backbone those adapters were
# made for, so that nothing loads torch. Prints the windows' logical sizes as JSON.
SCREENS_SCRIPT = r"""
import json, sys, threading, time
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.job_store import Job, JobStatus, JobStore
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.core.settings import Settings
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.main_window import MainWindow

out, user_adapters = Path(sys.argv[1]), Path(sys.argv[2])
app = QApplication([])

def wait_until(condition, what):
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        QTest.qWait(20)

jobs = JobStore()
words = ["Habari za asubuhi, karibu kwenye mkutano wa leo.", "Tutaanza na ripoti ya kamati ya fedha.",
         "Asante sana kwa kuja mapema.", "Swali la kwanza linahusu bajeti ya mwaka ujao."]
segments = [Segment(i * 6.0, i * 6.0 + 5.5, " " + text) for i, text in enumerate(words)]
route = Route("auto", "sw", 0.91, {"sw": 1.0}, "sw")
result = TranscriptionResult("/recordings/council_meeting_morning_session.flac", 3725.0, segments, route,
                             {"sw": 0.91, "en": 0.04, "yo": 0.02, "lg": 0.012, "so": 0.006})
done = Job(result.path, status=JobStatus.DONE, duration=result.duration, detected_language="sw")
failed = Job("/recordings/voice_note_0412.m4a", status=JobStatus.FAILED, duration=12.0,
             error="the audio could not be decoded")
cancelled = Job("/recordings/interview_kigali_part_two.wav", status=JobStatus.CANCELLED, duration=1312.0)
jobs.save_result(done.id, result)
jobs.save([done, failed, cancelled])

store = AdapterStore(bundled_adapter_dir(), user_adapters)
made_for = store.list()[0].meta.base_model
engine = SimpleNamespace(
    fingerprint=made_for.fingerprint, store=store, lock=threading.RLock(),
    backbone=SimpleNamespace(files=SimpleNamespace(name=made_for.name), device=SimpleNamespace(type="cpu"),
                             compute=SimpleNamespace(name="int8")),
)
holder = EngineHolder(lambda: engine)
window = MainWindow(holder, settings=Settings(), store=store)
window.show()
assert QTest.qWaitForWindowExposed(window)
holder.start()
wait_until(lambda: holder.engine is not None and not holder.loading, "the stand-in engine")
window.files_panel.table.selectRow(0)
QTest.qWait(200)
sizes = {}
def shoot(name):
    pixmap = window.grab()
    assert pixmap.save(str(out / name)), name
    sizes[name] = [window.width(), window.height(), pixmap.devicePixelRatio()]
shoot("main_window@2x.png")

manager = window.adapter_manager
window.tabs.setCurrentWidget(manager)
wait_until(lambda: manager.model.rowCount() > 0 and not manager.busy, "the adapter listing")
manager.select("sw")
QTest.qWait(200)
shoot("adapters@2x.png")

dialog = window.open_settings()
assert QTest.qWaitForWindowExposed(dialog)
QTest.qWait(200)
pixmap = dialog.grab()
assert pixmap.save(str(out / "settings@2x.png"))
sizes["settings@2x.png"] = [dialog.width(), dialog.height(), pixmap.devicePixelRatio()]
dialog.reject()
print(json.dumps(sizes))
window.close()
"""


def xvfb_run(slot: int = 0) -> list[str]:
    """xvfb-run with a display of its own (`display_search`, `slot` 0 to 7)."""
    path = shutil.which("xvfb-run")
    if path is None:
        pytest.skip("xvfb-run is not installed (Debian package xvfb): no X server to test on")
    return [path, *display_search(slot), "-s", XVFB_SCREEN]


def x_environment(**extra: str) -> dict[str, str]:
    """This environment for a child on the X server: the platform left to Qt (xcb)."""
    env = {key: value for key, value in os.environ.items() if key != "QT_QPA_PLATFORM"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env | extra


def test_the_app_starts_and_quits_on_a_real_x_server(tmp_path: Path) -> None:
    command = [*xvfb_run(), sys.executable, "-m", "lorawhisper_app", "--quit-after-start"]
    env = x_environment(LORAWHISPER_CONFIG_DIR=str(tmp_path / "config"), LORAWHISPER_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^window shown after \d+\.\d\d s$", done.stdout, re.MULTILINE), done.stdout + done.stderr


def test_starts_beside_each_other_each_on_its_own_x_server(tmp_path: Path) -> None:
    """Xvfb resets when its last client leaves and refuses connections meanwhile. The app's check
    for a display once closed its probe at once, and Qt, connecting a moment later, aborted in
    about one start in four when four started together on this 2-core machine (4 of 16)."""
    env = x_environment(LORAWHISPER_CONFIG_DIR=str(tmp_path / "config"), LORAWHISPER_DATA_DIR=str(tmp_path / "data"))
    app = [sys.executable, "-m", "lorawhisper_app", "--quit-after-start"]
    for _ in range(2):
        starts = [subprocess.Popen([*xvfb_run(slot), *app], env=env, cwd=tmp_path, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for slot in range(4)]
        for start in starts:
            out, err = start.communicate(timeout=CHILD_TIMEOUT_S)
            assert start.returncode == 0 and "window shown after" in out, err


def test_wizard_pages_on_a_real_x_server(tmp_path: Path) -> None:
    """tests/test_wizard_pages.py's run through pages 1-4 (real Swahili, the real backbone) and
    its validation report, in a child on Xvfb; their screenshots go to screenshots/xvfb/."""
    shots = SCREENSHOTS / "xvfb"
    tests = [f"tests/test_wizard_pages.py::{name}" for name in (
        "test_pages_one_to_four_on_real_swahili", "test_validation_report_names_the_broken_files",
    )]
    command = [*xvfb_run(), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    env = x_environment(QT_QPA_PLATFORM="xcb", LORAWHISPER_SCREENSHOTS=str(shots), PYTEST_ADDOPTS="")
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=2 * CHILD_TIMEOUT_S, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout, done.stdout[-3000:]
    for name in ("wizard_1_language", "wizard_2_data", "wizard_2_data_problems", "wizard_3_similarity", "wizard_4_settings"):
        path = shots / f"{name}.png"
        assert path.stat().st_mtime >= started, f"{path} was not written by this run"
        assert distinct_colours(QImage(str(path))) > 16, path


def test_screenshots_at_200_percent(tmp_path: Path) -> None:
    command = [*xvfb_run(), sys.executable, "-c", SCREENS_SCRIPT]
    env = x_environment(
        QT_SCALE_FACTOR="2",
        LORAWHISPER_CONFIG_DIR=str(tmp_path / "config"),
        LORAWHISPER_DATA_DIR=str(tmp_path / "data"),
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    done = subprocess.run(
        [*command, str(SCREENSHOTS), str(tmp_path / "user-adapters")],
        env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(sizes) == ["adapters@2x.png", "main_window@2x.png", "settings@2x.png"]
    for name, (width, height, ratio) in sizes.items():
        assert ratio == 2.0, name
        image = QImage(str(SCREENSHOTS / name))
        assert (image.width(), image.height()) == (2 * width, 2 * height), name
        # Blank or flat grabs have a handful of colours; rendered text has hundreds.
        assert distinct_colours(image) > 100, name


# -- keyboard (offscreen) -------------------------------------------------------------------


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    """The window with a stand-in engine already "loaded": showing the Adapters tab then
    checks nothing against the real backbone."""
    monkeypatch.setenv("LORAWHISPER_DATA_DIR", str(tmp_path / "data"))
    store = AdapterStore(None, tmp_path / "adapters")
    backbone = SimpleNamespace(
        files=SimpleNamespace(name="stand-in"), device=SimpleNamespace(type="cpu"), compute=SimpleNamespace(name="int8")
    )
    engine = SimpleNamespace(fingerprint="sha256:" + "ab" * 32, store=store, lock=threading.RLock(), backbone=backbone)
    holder = EngineHolder(lambda: engine)
    window = MainWindow(holder, settings=Settings(), store=store)
    qtbot.addWidget(window)
    with qtbot.waitSignal(holder.ready):
        holder.start()
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_main_actions_have_shortcuts(window: MainWindow) -> None:
    bound = {
        key.toString(QKeySequence.SequenceFormat.PortableText)
        for action in window.findChildren(QAction)
        for key in action.shortcuts()
    }
    expected = {
        "Ctrl+O",  # File › Open…
        "Ctrl+Shift+O",  # File › Add Folder…
        "Ctrl+,",  # File › Settings…
        "Ctrl+Q",  # File › Quit
        "Ctrl+F",  # Edit › Find in Transcript
        "Ctrl+Shift+C",  # Edit › Copy Transcript Text
        "Ctrl+E",  # Edit › Export Transcript…
        "Ctrl+.",  # Edit › Cancel File
        "Ctrl+1",  # View › Files
        "Ctrl+2",  # View › Live
        "Ctrl+3",  # View › Adapters
    }
    assert expected <= bound, expected - bound
    assert window.open_action.shortcut() == QKeySequence("Ctrl+O")
    assert window.add_folder_action.shortcut() == QKeySequence("Ctrl+Shift+O")
    assert window.quit_action.shortcut() == QKeySequence("Ctrl+Q")
    assert window.find_action.shortcut() == QKeySequence("Ctrl+F")
    assert window.copy_action.shortcut() == QKeySequence("Ctrl+Shift+C")
    assert window.export_action.shortcut() == QKeySequence("Ctrl+E")
    assert window.cancel_action.shortcut() == QKeySequence("Ctrl+.")
    assert [action.shortcut() for action in window.tab_actions] == [QKeySequence(f"Ctrl+{n}") for n in (1, 2, 3)]


def test_the_view_and_edit_actions_work(qtbot, window: MainWindow) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.adapter_manager
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.live_panel

    view = window.files_panel.transcript
    result = TranscriptionResult("/audio/a.flac", 8.0, [Segment(0.0, 4.0, " habari")], Route("manual", "sw", None))
    view.show_result(result, None)
    window.files_panel.result_pane.setCurrentWidget(view)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.files_panel
    qtbot.waitUntil(lambda: view.search.hasFocus())
    # Inside the transcript too, Ctrl+F reaches the search field (one binding, not two).
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.search.hasFocus()

    window.copy_action.trigger()
    assert QGuiApplication.clipboard().text().strip() == "habari"
    window.export_action.trigger()  # the formats, under the Export button
    menu = view.export_button.menu()
    qtbot.waitUntil(menu.isVisible)
    menu.hide()
    window.cancel_action.trigger()  # the queue is empty
    assert window.statusBar().currentMessage().startswith("Nothing to cancel")


def test_tab_walks_the_files_tab_in_order(qtbot, window: MainWindow) -> None:
    """Language choice, then the Add buttons, the export row, the queue, and the transcript."""
    panel = window.files_panel
    panel.transcript.show_result(
        TranscriptionResult("/audio/a.flac", 8.0, [Segment(0.0, 4.0, " habari")], Route("manual", "sw", None)), None
    )
    panel.result_pane.setCurrentWidget(panel.transcript)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    panel.language_box.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(panel.language_box.hasFocus)

    visited: list[QWidget] = []
    for _ in range(20):
        visited.append(QApplication.focusWidget())
        if panel.transcript.isAncestorOf(visited[-1]):
            break
        qtbot.keyClick(visited[-1], Qt.Key.Key_Tab)
    expected = [
        panel.language_box,
        panel.moe_box,  # enabled: the language is Auto
        panel.apply_button,  # K is off until MoE is ticked
        panel.add_button,
        panel.add_folder_button,
        panel.export_box,
        panel.export_folder,
        panel.export_choose,
        panel.export_format,
        panel.table,
    ]
    names = [widget.objectName() for widget in visited]
    assert visited[: len(expected)] == expected, names
    assert panel.transcript.isAncestorOf(visited[len(expected)]), names
