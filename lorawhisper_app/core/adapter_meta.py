"""The app's metadata file beside each peft LoRA adapter: `lorawhisper.json`, schema 1."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lorawhisper_app import __version__
from lorawhisper_app.core.errors import AdapterError, one_line
from lorawhisper_app.core.languages import is_whisper_language

META_FILE = "lorawhisper.json"
SCHEMA_VERSION = 1
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
_SCHEMA_KEYS = (
    "schema_version", "name", "language", "language_name", "decode_token", "base_model", "lora",
    "training_data", "dev_wer", "mixture", "created", "app_version",
)


class _FieldError(AdapterError):
    """A bad field; `AdapterMeta.from_dict` prefixes the file it came from."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"field '{key}' {problem}")


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Fields:
    """Typed reads from one JSON object, each failure naming the dotted key."""

    def __init__(self, data: Any, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise _FieldError(prefix.rstrip(".") or "<root>", "must be a JSON object")
        self.data = data
        self.prefix = prefix

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise _FieldError(self.prefix + key, "is missing")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value.strip():
            raise _FieldError(self.prefix + key, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _FieldError(self.prefix + key, f"must be an integer, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if not _is_number(value):
            raise _FieldError(self.prefix + key, f"must be a number, got {value!r}")
        return value

    def mapping(self, key: str) -> _Fields:
        return _Fields(self._get(key), f"{self.prefix}{key}.")


@dataclass(frozen=True)
class BaseModelRef:
    """The backbone an adapter was trained on; `fingerprint` is "sha256:<hex>"."""

    name: str
    fingerprint: str


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    alpha: float
    dropout: float
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank < 1:
            raise _FieldError("lora.rank", f"must be a positive integer, got {self.rank!r}")
        if not _is_number(self.alpha) or self.alpha <= 0:
            raise _FieldError("lora.alpha", f"must be a positive number, got {self.alpha!r}")
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            raise _FieldError("lora.dropout", f"must be in [0, 1), got {self.dropout!r}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise _FieldError("lora.targets", "must be a non-empty list of module names")


@dataclass(frozen=True)
class DevWer:
    """Word error rate on the dev set with the bare backbone and with the adapter."""

    before: float
    after: float

    def __post_init__(self) -> None:
        for key in ("before", "after"):
            value = getattr(self, key)
            if not _is_number(value) or value < 0:
                raise _FieldError(f"dev_wer.{key}", f"must be a non-negative number, got {value!r}")


@dataclass(frozen=True)
class AdapterMeta:
    """What the app knows about an adapter beyond peft's own files.

    `decode_token` is the Whisper language token put in the decoder prompt: the
    language's own, or a similar language's for one Whisper lacks. `mixture` maps
    adapter names to weights for LoRA-MoE adapters. Unknown top-level keys found in
    the file are kept in `extra` and written back.
    """

    name: str
    language: str
    language_name: str
    decode_token: str
    base_model: BaseModelRef
    lora: LoraSpec
    training_data: dict[str, Any] = field(default_factory=dict)
    dev_wer: DevWer | None = None
    mixture: dict[str, float] | None = None
    created: str = field(default_factory=_utc_now)
    app_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise _FieldError(
                "name", f"must be 1-64 of a-z 0-9 . _ - starting with a letter or digit, got {self.name!r}"
            )
        if not isinstance(self.language, str) or not _LANGUAGE_CODE.fullmatch(self.language):
            raise _FieldError("language", f"must be a 2-3 letter lowercase code, got {self.language!r}")
        if not is_whisper_language(self.decode_token):
            raise _FieldError("decode_token", f"must be a Whisper language code, got {self.decode_token!r}")
        try:
            parse_timestamp(self.created)
        except (TypeError, ValueError):
            raise _FieldError("created", f"must be an ISO 8601 time, got {self.created!r}") from None
        if self.mixture is not None:
            if not self.mixture or not all(
                isinstance(k, str) and _is_number(w) and w >= 0 for k, w in self.mixture.items()
            ):
                raise _FieldError("mixture", "must map adapter names to non-negative weights")
        clash = set(self.extra) & set(_SCHEMA_KEYS)
        if clash:
            raise _FieldError(sorted(clash)[0], "is a schema field, not an extra")

    @property
    def created_at(self) -> datetime:
        return parse_timestamp(self.created)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "language": self.language,
            "language_name": self.language_name,
            "decode_token": self.decode_token,
            "base_model": {"name": self.base_model.name, "fingerprint": self.base_model.fingerprint},
            "lora": {
                "rank": self.lora.rank,
                "alpha": self.lora.alpha,
                "dropout": self.lora.dropout,
                "targets": list(self.lora.targets),
            },
            "training_data": dict(self.training_data),
            "dev_wer": None if self.dev_wer is None else {"before": self.dev_wer.before, "after": self.dev_wer.after},
            "mixture": None if self.mixture is None else dict(self.mixture),
            "created": self.created,
            "app_version": self.app_version,
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = META_FILE) -> AdapterMeta:
        """Parse and validate; every problem is an AdapterError naming `source` and the field."""
        try:
            return cls._parse(data)
        except _FieldError as error:
            raise AdapterError(f"{source}: {error}") from None

    @classmethod
    def _parse(cls, data: Any) -> AdapterMeta:
        fields = _Fields(data)
        version = fields.integer("schema_version")
        if version != SCHEMA_VERSION:
            raise _FieldError(
                "schema_version", f"is {version}; this app reads schema {SCHEMA_VERSION} (a newer app wrote it?)"
            )
        base = fields.mapping("base_model")
        lora = fields.mapping("lora")
        targets = lora.data.get("targets")
        if not isinstance(targets, list):
            raise _FieldError("lora.targets", f"must be a list of module names, got {targets!r}")
        wer = None if data.get("dev_wer") is None else fields.mapping("dev_wer")
        training = data.get("training_data")
        training = {} if training is None else training
        if not isinstance(training, dict):
            raise _FieldError("training_data", "must be a JSON object")
        mixture = data.get("mixture")
        if mixture is not None and not isinstance(mixture, dict):
            raise _FieldError("mixture", "must be a JSON object or null")
        return cls(
            name=fields.text("name"),
            language=fields.text("language"),
            language_name=fields.text("language_name"),
            decode_token=fields.text("decode_token"),
            base_model=BaseModelRef(name=base.text("name"), fingerprint=base.text("fingerprint")),
            lora=LoraSpec(
                rank=lora.integer("rank"),
                alpha=lora.number("alpha"),
                dropout=lora.number("dropout"),
                targets=tuple(targets),
            ),
            training_data=training,
            dev_wer=None if wer is None else DevWer(before=wer.number("before"), after=wer.number("after")),
            mixture=mixture,
            created=fields.text("created"),
            app_version=fields.text("app_version"),
            extra={k: v for k, v in data.items() if k not in _SCHEMA_KEYS},
        )

    @classmethod
    def load(cls, folder: Path) -> AdapterMeta:
        path = folder / META_FILE
        if not path.is_file():
            raise AdapterError(f"{path}: missing; every adapter needs the app's metadata file {META_FILE}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise AdapterError(f"{path}: not readable JSON ({one_line(error)})") from None
        return cls.from_dict(data, path)

    def save(self, folder: Path) -> Path:
        """Write `folder/lorawhisper.json` atomically (temp file, fsync, rename)."""
        path = folder / META_FILE
        tmp = folder / f".{META_FILE}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, indent=2, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return path
