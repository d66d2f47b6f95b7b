"""The app's settings: which backbone to load and how, routing and export defaults.

They live in `settings.json` in the user's config folder (`$LORAWHISPER_CONFIG_DIR` when
that is set). Reading never fails: a missing file gives the defaults, and a corrupt or
partly invalid one gives the defaults for whatever is wrong plus one line saying so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs

from .errors import LoraWhisperError
from .writers import WRITERS, write_atomic

APP_NAME = "lorawhisper-studio"
SETTINGS_FILE = "settings.json"
BUILTIN = "builtin"
DEVICES = ("auto", "cpu", "cuda")
COMPUTE_TYPES = ("auto", "int8", "float32", "bfloat16", "float16")  # as core/backbone.py accepts them
MAX_MOE_K = 5
# A Hugging Face repository id: "name" or "owner/name", letters, digits, "-", "_" and ".".
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")

BackboneKind = Literal["builtin", "hub", "folder"]


class SettingsError(LoraWhisperError):
    """Settings that cannot be saved as they are; the message lists every problem."""


def config_dir() -> Path:
    """`$LORAWHISPER_CONFIG_DIR`, or the user's config folder for the app."""
    override = os.environ.get("LORAWHISPER_CONFIG_DIR")
    return Path(override) if override else platformdirs.user_config_path(APP_NAME, appauthor=False)


def cache_dir() -> Path:
    """`$LORAWHISPER_CACHE_DIR`, or the user's cache folder for the app: the converted backbone,
    the bare backbone's figures and the training speeds measured here."""
    return Path(os.environ.get("LORAWHISPER_CACHE_DIR") or platformdirs.user_cache_path(APP_NAME))


def backbones_dir() -> Path:
    """Where the built-in backbone is converted to, once per machine."""
    return cache_dir() / "backbones"


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def backbone_kind(backbone: str) -> BackboneKind | None:
    """How `backbone` names a model: the built-in one, a hub id or a full folder path
    (None: none of these). A relative path would read as a hub id, so folders are absolute."""
    if backbone == BUILTIN:
        return "builtin"
    if Path(backbone).expanduser().is_absolute():
        return "folder"
    return "hub" if _HUB_ID.fullmatch(backbone) and ".." not in backbone else None


# -- checks of single fields: each returns a problem, or None ---------------------------------


def _check_backbone(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"the backbone must be 'builtin', a Hugging Face model id or a folder, got {value!r}"
    kind = backbone_kind(value)
    if kind is None:
        return (
            f"backbone {value!r} is neither 'builtin', a Hugging Face model id (owner/name) "
            "nor the full path of a folder"
        )
    if kind == "folder":
        folder = Path(value).expanduser()
        if not folder.exists():
            return f"the backbone folder {folder} does not exist"
        if not folder.is_dir():
            return f"the backbone {folder} is a file, not a folder"
        if not (folder / "config.json").is_file():
            return f"the backbone folder {folder} has no config.json (not a transformers Whisper model)"
    return None


def _one_of(label: str, choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"{label} {value!r} is not one of {', '.join(choices)}"

    return check


def _check_threshold(value: Any) -> str | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and 0.0 <= value <= 1.0:
        return None
    return f"the auto-routing threshold must be a number from 0 to 1, got {value!r}"


def _check_moe_k(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MOE_K:
        return None
    return f"MoE K must be a whole number from 0 (off) to {MAX_MOE_K}, got {value!r}"


def _check_export_folder(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"the export folder must be a folder path or null, got {value!r}"
    if not Path(value).expanduser().is_absolute():
        return f"the export folder {value!r} must be a full path"
    if Path(value).expanduser().is_file():
        return f"the export folder {value} is a file"
    return None


def _check_auto_export(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"auto-export must be true or false, got {value!r}"


_FIELD_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "backbone": _check_backbone,
    "device": _one_of("device", DEVICES),
    "compute_type": _one_of("compute type", COMPUTE_TYPES),
    "threshold": _check_threshold,
    "moe_k": _check_moe_k,
    "export_format": _one_of("export format", tuple(WRITERS)),
    "export_folder": _check_export_folder,
    "auto_export": _check_auto_export,
}


@dataclass(frozen=True)
class Settings:
    """`backbone`: "builtin", a Hugging Face model id or the full path of a model folder;
    `threshold`: the LID probability auto routing needs to use an adapter; `moe_k` > 0 mixes
    the adapters of the K likeliest languages; exports go to `export_folder` as
    `export_format` when `auto_export` is on."""

    backbone: str = BUILTIN
    device: str = "auto"
    compute_type: str = "auto"
    threshold: float = 0.5
    moe_k: int = 0
    export_format: str = "txt"
    export_folder: str | None = None
    auto_export: bool = False

    @property
    def model(self) -> str | None:
        """What `Engine(model)` takes: None for the built-in backbone."""
        return None if self.backbone == BUILTIN else self.backbone

    @property
    def engine_key(self) -> tuple[str, str, str]:
        """What the loaded engine depends on: a change of it needs a reload."""
        return self.backbone, self.device, self.compute_type

    def problems(self) -> dict[str, str]:
        """Field name -> what is wrong with it; empty when the settings are usable."""
        found = {name: problem for name, check in _FIELD_CHECKS.items() if (problem := check(getattr(self, name)))}
        for name, problem in self._combination_problems().items():
            found.setdefault(name, problem)
        return found

    def _combination_problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.auto_export is True and not self.export_folder:
            found["auto_export"] = "auto-export is on but no export folder is set"
        if self.device == "cuda" and self.compute_type == "int8":
            found["compute_type"] = "compute type int8 runs on the CPU; on a GPU use float16 or bfloat16"
        if self.device == "cpu" and self.compute_type == "float16":
            found["compute_type"] = "compute type float16 needs a GPU; on the CPU use int8, float32 or bfloat16"
        return found

    def validated(self) -> Settings:
        """These settings, or a SettingsError naming every problem."""
        problems = self.problems()
        if problems:
            raise SettingsError("; ".join(problems.values()))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> tuple[Settings, list[str]]:
        """Settings from parsed JSON: each missing field and each bad one takes its default
        (the bad ones are listed in the returned problems); unknown keys are ignored."""
        defaults = cls()
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, check in _FIELD_CHECKS.items():
            if name not in data:
                continue
            problem = check(data[name])
            if problem:
                problems.append(problem)
            else:
                values[name] = data[name]
        if isinstance(values.get("threshold"), int):
            values["threshold"] = float(values["threshold"])
        settings = dataclasses.replace(defaults, **values)
        combination = settings._combination_problems()
        if combination:
            problems += combination.values()
            settings = dataclasses.replace(settings, **{name: getattr(defaults, name) for name in combination})
        return settings, problems


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """The saved settings and a one-line warning (None when all was well). Never raises:
    what cannot be read or used gives the defaults."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(), None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return Settings(), f"Settings file {path} could not be read ({reason}); using the default settings."
    try:
        data = json.loads(text)
    except ValueError as error:
        return Settings(), f"Settings file {path} is not valid JSON ({error}); using the default settings."
    if not isinstance(data, dict):
        return Settings(), f"Settings file {path} does not hold a JSON object; using the default settings."
    settings, problems = Settings.from_dict(data)
    if not problems:
        return settings, None
    listed = "; ".join(" ".join(problem.split()) for problem in problems)
    return settings, f"Settings file {path}: {listed}. The defaults are used for those."


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically; raises SettingsError for invalid ones, OSError when
    the file cannot be written (the previous file then stays whole)."""
    settings.validated()
    text = json.dumps(settings.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return write_atomic(path or settings_path(), text)
