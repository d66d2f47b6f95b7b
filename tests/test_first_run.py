"""The welcome on the app's first start: shown once, by the real app's start-up, non-modal,
naming the real folders; never with --quit-after-start."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel

from lorawhisper_app.gui import app as app_module
from lorawhisper_app.gui import first_run
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.first_run import WelcomeDialog, show_welcome_if_first_run
from lorawhisper_app.gui.main_window import MainWindow
from test_gui_smoke import SCREENSHOTS, distinct_colours


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Fresh cache, data, user-data and config folders: this user has never started the app."""
    made = {name: tmp_path / name for name in ("cache", "data", "xdg-data", "config")}
    monkeypatch.setenv("LORAWHISPER_CACHE_DIR", str(made["cache"]))
    monkeypatch.setenv("LORAWHISPER_DATA_DIR", str(made["data"]))
    monkeypatch.setenv("XDG_DATA_HOME", str(made["xdg-data"]))
    monkeypatch.setenv("LORAWHISPER_CONFIG_DIR", str(made["config"]))
    return made


def welcome_dialogs() -> list[WelcomeDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, WelcomeDialog) and w.isVisible()]


def test_the_welcome_comes_once_names_the_real_folders_and_leaves_the_window_usable(qtbot, folders):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)

    dialog = show_welcome_if_first_run(window)
    assert dialog is not None
    qtbot.waitExposed(dialog)
    assert dialog.isVisible() and not dialog.isModal()
    assert (folders["config"] / first_run.MARKER_NAME).is_file()

    text = dialog.findChild(QLabel, "welcomeText").text()
    for path in (
        folders["cache"] / "backbones",
        folders["xdg-data"] / "lorawhisper-studio" / "adapters",
        folders["data"] / "jobs",
        folders["config"] / "settings.json",
    ):
        assert html.escape(str(path)) in text
    assert "File › Add a Language…" in text and "train RECORDINGS --language CODE" in text
    assert "File › Settings… › Backbone" in text and "openai/whisper-small" in text

    label = dialog.findChild(QLabel, "welcomeText")
    assert label.height() >= label.heightForWidth(label.width())  # no line cut off at the bottom
    assert dialog.rect().contains(label.geometry())

    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "first_run.png"
    assert dialog.grab().save(str(shot))
    assert distinct_colours(dialog.grab().toImage()) > 16

    # Non-modal: the main window still takes input while the welcome is open.
    assert QApplication.activeModalWidget() is None
    window.tabs.setCurrentIndex(2)
    assert window.tabs.currentWidget() is window.adapter_manager

    dialog.accept()
    assert show_welcome_if_first_run(window) is None  # the second start: no welcome
    window.welcome_action.trigger()  # ...but Help › Welcome… shows it any time
    again = [w for w in window.findChildren(WelcomeDialog) if w.isVisible()]
    assert len(again) == 1 and again[0] is not dialog


def test_an_unwritable_config_folder_only_brings_the_welcome_again(qtbot, folders):
    blocker = folders["config"]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the config folder should be")
    first = show_welcome_if_first_run()
    assert first is not None
    qtbot.addWidget(first)
    second = show_welcome_if_first_run()
    assert second is not None
    qtbot.addWidget(second)


def test_the_cache_folder_it_names_is_the_backbones(folders, monkeypatch):
    """The welcome names the folder the backbone is converted to: under $LORAWHISPER_CACHE_DIR, else the XDG cache."""
    from lorawhisper_app.core.settings import backbones_dir

    assert backbones_dir() == folders["cache"] / "backbones"
    monkeypatch.delenv("LORAWHISPER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folders["cache"].parent / "xdg-cache"))
    assert backbones_dir() == folders["cache"].parent / "xdg-cache" / "lorawhisper-studio" / "backbones"


def test_the_cli_it_names_is_the_one_beside_the_program(tmp_path, monkeypatch):
    program = tmp_path / "lorawhisper-studio"
    program.write_text("")
    monkeypatch.setattr(first_run.sys, "executable", str(program))
    assert first_run.cli_command() == "lorawhisper"
    (tmp_path / "lorawhisper").symlink_to(program)
    assert first_run.cli_command() == str(tmp_path / "lorawhisper")


def run_app(argv: list[str]) -> tuple[int, list[str]]:
    """Runs the real app's main() until its window has painted and the event loop has gone
    round a few times; returns the exit code and the texts of the welcomes that were open."""
    seen: list[str] = []

    def close_when_painted() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows:
            QTimer.singleShot(50, close_when_painted)
            return
        QTimer.singleShot(300, lambda: (seen.extend(d.text.text() for d in welcome_dialogs()), windows[0].close()))

    QTimer.singleShot(0, close_when_painted)
    return app_module.main(argv), seen


def test_the_app_shows_the_welcome_on_its_first_start_only(qtbot, folders, monkeypatch):
    started: list[EngineHolder] = []
    # The backbone would load (torch, conversion) in the background: not what this test is about.
    monkeypatch.setattr(EngineHolder, "start", lambda self: started.append(self))

    code, seen = run_app(["lorawhisper-app"])
    assert code == 0 and started
    assert len(seen) == 1 and "Welcome to LoRA-Whisper Studio" in seen[0]

    code, seen = run_app(["lorawhisper-app"])
    assert code == 0 and seen == []


def test_quit_after_start_never_shows_the_welcome(qtbot, folders, capsys):
    code = app_module.main(["lorawhisper-app", "--quit-after-start"])
    assert code == 0
    assert "window shown after" in capsys.readouterr().out
    assert not (folders["config"] / first_run.MARKER_NAME).exists()
