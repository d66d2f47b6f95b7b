"""The settings file: defaults, round trip, bad files and fields, atomic writes, its folder."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from lorawhisper_app.core import settings as settings_module
from lorawhisper_app.core.settings import (
    Settings,
    SettingsError,
    backbone_kind,
    config_dir,
    load_settings,
    save_settings,
    settings_path,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """What the settings check of a local backbone looks for: a folder with config.json."""
    folder = tmp_path / "whisper-small-sw"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_defaults() -> None:
    settings = Settings()
    assert (settings.backbone, settings.device, settings.compute_type) == ("builtin", "auto", "auto")
    assert (settings.threshold, settings.moe_k) == (0.5, 0)
    assert (settings.export_format, settings.export_folder, settings.auto_export) == ("txt", None, False)
    assert settings.model is None and settings.problems() == {}


def test_a_missing_file_gives_the_defaults_quietly(path: Path) -> None:
    assert load_settings(path) == (Settings(), None)


def test_round_trip(path: Path, model_folder: Path, tmp_path: Path) -> None:
    chosen = Settings(
        backbone=str(model_folder),
        device="cpu",
        compute_type="float32",
        threshold=0.35,
        moe_k=2,
        export_format="srt",
        export_folder=str(tmp_path / "exports"),
        auto_export=True,
    )
    assert save_settings(chosen, path) == path
    assert load_settings(path) == (chosen, None)
    assert chosen.model == str(model_folder)
    assert json.loads(path.read_text())["backbone"] == str(model_folder)
    hub = Settings(backbone="openai/whisper-small", compute_type="int8")
    save_settings(hub, path)
    assert load_settings(path) == (hub, None)


def test_the_backbone_kinds() -> None:
    assert backbone_kind("builtin") == "builtin"
    assert backbone_kind("openai/whisper-small") == "hub"
    assert backbone_kind("distil-whisper") == "hub"
    assert backbone_kind("/models/whisper") == "folder"
    assert backbone_kind("~/models/whisper") == "folder"
    assert backbone_kind("not a model") is None
    assert backbone_kind("a/b/c") is None  # a relative path: folders must be given in full


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2]", '"builtin"'])
def test_a_corrupt_file_gives_the_defaults_and_a_warning(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(text)
    settings, warning = load_settings(path)
    assert settings == Settings()
    assert warning is not None and str(path) in warning and "\n" not in warning
    assert "default settings" in warning


def test_an_unreadable_file_gives_the_defaults_and_a_warning(path: Path) -> None:
    path.mkdir(parents=True)  # a folder where the file should be
    settings, warning = load_settings(path)
    assert settings == Settings() and warning is not None and "could not be read" in warning


def test_bad_fields_take_their_defaults_and_the_rest_is_kept(path: Path, tmp_path: Path) -> None:
    path.parent.mkdir(parents=True)
    missing = tmp_path / "gone"
    path.write_text(
        json.dumps(
            {
                "backbone": str(missing),
                "device": "gpu",
                "compute_type": "float32",
                "threshold": 1.5,
                "moe_k": True,
                "export_format": "docx",
                "export_folder": str(tmp_path / "out"),
                "auto_export": "yes",
                "colour": "blue",  # unknown keys are ignored
            }
        )
    )
    settings, warning = load_settings(path)
    assert settings == Settings(compute_type="float32", export_folder=str(tmp_path / "out"))
    assert warning is not None and "\n" not in warning
    for words in (f"the backbone folder {missing} does not exist", "device 'gpu'", "threshold", "MoE K",
                  "export format 'docx'", "auto-export must be true or false"):
        assert words in warning
    assert "colour" not in warning


def test_combinations_that_cannot_work_are_refused(path: Path, tmp_path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"device": "cuda", "compute_type": "int8", "auto_export": True, "moe_k": 3}))
    settings, warning = load_settings(path)
    assert settings == Settings(device="cuda", moe_k=3)
    assert "no export folder" in warning and "int8 runs on the CPU" in warning
    assert Settings(device="cpu", compute_type="float16").problems().keys() == {"compute_type"}


def test_validation_names_each_problem(model_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    problems = Settings(
        backbone=str(tmp_path / "nowhere"), threshold=-0.1, moe_k=6, export_folder="relative/out"
    ).problems()
    assert problems == {
        "backbone": f"the backbone folder {tmp_path / 'nowhere'} does not exist",
        "threshold": "the auto-routing threshold must be a number from 0 to 1, got -0.1",
        "moe_k": "MoE K must be a whole number from 0 (off) to 5, got 6",
        "export_folder": "the export folder 'relative/out' must be a full path",
    }
    assert "is a file" in Settings(backbone=str(tmp_path / "a-file")).problems()["backbone"]
    (model_folder / "config.json").unlink()
    assert "no config.json" in Settings(backbone=str(model_folder)).problems()["backbone"]
    assert "neither" in Settings(backbone="two words").problems()["backbone"]
    with pytest.raises(SettingsError, match="threshold.*MoE K"):
        Settings(threshold=2.0, moe_k=-1).validated()


def test_invalid_settings_are_not_saved(path: Path) -> None:
    with pytest.raises(SettingsError, match="device"):
        save_settings(Settings(device="tpu"), path)
    assert not path.exists()


def test_a_failed_write_leaves_the_old_file_whole(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(Settings(threshold=0.3), path)
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_settings(Settings(threshold=0.9), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temporary file left
    monkeypatch.undo()
    save_settings(Settings(threshold=0.9), path)
    assert load_settings(path)[0].threshold == 0.9


def test_the_config_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWHISPER_CONFIG_DIR", str(tmp_path))
    assert config_dir() == tmp_path and settings_path() == tmp_path / "settings.json"
    save_settings(Settings(moe_k=2))
    assert load_settings() == (Settings(moe_k=2), None)
    monkeypatch.delenv("LORAWHISPER_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert settings_path() == tmp_path / "xdg" / "lorawhisper-studio" / "settings.json"


def test_the_tests_never_use_the_users_folders() -> None:
    """conftest.py points the config, data and cache folders at the session's temp folder."""
    session_temp = Path(os.environ["LORAWHISPER_CACHE_DIR"]).parent
    for name in ("LORAWHISPER_CONFIG_DIR", "LORAWHISPER_DATA_DIR", "XDG_DATA_HOME"):
        assert Path(os.environ[name]).parent == session_temp
    from lorawhisper_app.core.adapter_store import default_user_adapter_dir

    assert default_user_adapter_dir().is_relative_to(session_temp)
    assert settings_module.settings_path().is_relative_to(session_temp)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().threshold = 0.2  # type: ignore[misc]
