"""The training record in an adapter's metadata (`training_data`), as readable rows for the
Adapters tab's details pane. The record comes from whoever made the adapter, so a value of
an unexpected shape, or a key this version does not know, is shown as its JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lorawhisper_app.core.languages import language_name
from lorawhisper_app.core.training.config import FRESH
from lorawhisper_app.core.training.datasets import clip_count

SIMILAR_SHOWN = 5
HIDDEN = {"router"}  # shown as Auto-routing


def training_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows for `record`, known keys first in a fixed order, then the rest."""
    rows: list[tuple[str, str]] = []
    used: set[str] = set(HIDDEN)
    for label, keys, render in _KNOWN:
        if keys[0] not in record:
            continue
        used.update(keys)
        try:
            rows.append((label, render(record)))
        except (TypeError, ValueError, KeyError, AttributeError):
            rows.append((label, "; ".join(f"{key}: {json_text(record.get(key))}" for key in keys if key in record)))
    rows += [(f"Training: {key}", json_text(value)) for key, value in record.items() if key not in used]
    return rows


def json_text(value: Any) -> str:
    """A metadata value as its JSON, a string as itself."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _amount(part: dict[str, Any]) -> str:
    return f"{clip_count(int(part['clips']))}, {float(part['minutes']):.1f} min"


def _trained_on(record: dict[str, Any]) -> str:
    where = " · ".join(str(record[key]) for key in ("layout", "source") if key in record)
    return f"{_amount(record['train'])}{f' ({where})' if where else ''}"


def _dev_set(record: dict[str, Any]) -> str:
    given = record.get("dev_given")
    how = {True: "given with the data", False: "held out from the training data"}.get(given, "")
    return f"{_amount(record['dev'])}{f', {how}' if how else ''}"


def _left_out(record: dict[str, Any]) -> str:
    problems = record["problems"]
    if not problems:
        return "nothing"
    return ", ".join(f"{kind}: {int(count)}" for kind, count in problems.items())


def _started_from(record: dict[str, Any]) -> str:
    start = str(record["warm_start"])
    text = "fresh (the standard LoRA initialisation)" if start == "none" else f"a copy of the {start} adapter"
    if record.get("warm_rank"):
        text += f", its {int(record['warm_rank'])} strongest directions a layer"
    fits = record.get("warm_start_fit")
    if fits:
        scored = sorted(fits.items(), key=lambda item: float(item[1]))
        losses = ", ".join(f"{'fresh' if name == FRESH else name} {float(loss):.2f}" for name, loss in scored)
        text += f" (chosen by fit; loss per token on a sample of the data: {losses})"
    return text


def _steps(record: dict[str, Any]) -> str:
    steps = int(record["steps"])
    planned = record.get("planned_steps")
    text = f"{steps}" if planned is None else f"{steps} of {int(planned)} planned"
    if planned is not None and steps < int(planned):
        text += " (stopped early)"
    if record.get("best_step") is not None:
        text += f", best dev WER at step {int(record['best_step'])}"
    return text


def _settings(record: dict[str, Any]) -> str:
    names = {"batch_size": "batch {}", "learning_rate": "learning rate {:g}", "seed": "seed {}"}
    return ", ".join(names[key].format(record[key]) for key in names if key in record)


def _history(record: dict[str, Any]) -> str:
    return " · ".join(f"{int(point['step'])}: {float(point['dev_wer']) * 100:.1f} %" for point in record["history"])


def _similar(record: dict[str, Any]) -> str:
    profile = sorted(record["lid_profile"].items(), key=lambda item: -float(item[1]))[:SIMILAR_SHOWN]
    return ", ".join(f"{language_name(code)} ({code}) {float(p) * 100:.0f} %" for code, p in profile)


# (label, the keys it shows, the first one deciding whether it is shown, and how)
_KNOWN: list[tuple[str, tuple[str, ...], Callable[[dict[str, Any]], str]]] = [
    ("Trained on", ("train", "source", "layout"), _trained_on),
    ("Dev set", ("dev", "dev_given"), _dev_set),
    ("Left out", ("problems",), _left_out),
    ("Started from", ("warm_start", "warm_rank", "warm_start_fit"), _started_from),
    ("Steps", ("steps", "planned_steps", "best_step"), _steps),
    ("Settings", ("batch_size", "learning_rate", "seed"), _settings),
    ("Dev WER by step", ("history",), _history),
    ("Whisper hears it as", ("lid_profile",), _similar),
    ("Dev WER measured by", ("dev_wer_method",), lambda record: str(record["dev_wer_method"])),
]
