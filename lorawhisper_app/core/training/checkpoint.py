"""Resumable training state in plain files: safetensors for tensors, JSON for the rest.

A checkpoint is a folder written beside the old one and swapped in by renames, so a
run killed at any moment leaves one complete checkpoint. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CHECKPOINT = "checkpoint"
TENSORS = "tensors.safetensors"
STATE = "state.json"


@dataclass
class Checkpoint:
    adapter: dict[str, torch.Tensor]  # trainable LoRA weights by parameter name
    optimizer: dict[str, Any]  # torch optimizer state_dict
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]  # step, history, best, fingerprints


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: Path, ckpt: Checkpoint) -> None:
    """Replace the run's checkpoint; when the new one cannot be written (a full disk), the old
    one stays and the partial new one is removed before the error goes on."""
    tmp = run_dir / f".{CHECKPOINT}.tmp"
    old = run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        tensors, optim_meta = _flatten_optimizer(ckpt.optimizer)
        tensors.update({f"adapter.{k}": v.detach().cpu().contiguous() for k, v in ckpt.adapter.items()})
        tensors.update({f"rng.{k}": v.cpu() for k, v in ckpt.rng.items()})
        save_file(tensors, tmp / TENSORS)
        (tmp / STATE).write_text(json.dumps({**ckpt.state, "optimizer": optim_meta}, indent=1), encoding="utf-8")
        for name in (TENSORS, STATE):
            _fsync(tmp / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    current = run_dir / CHECKPOINT
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    tmp.rename(current)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The last complete checkpoint, or None. A kill between the two renames of a save
    leaves only the previous one, under its temporary name: that one is used."""
    for name in (CHECKPOINT, f".{CHECKPOINT}.old"):
        folder = run_dir / name
        if (folder / TENSORS).is_file() and (folder / STATE).is_file():
            tensors = load_file(folder / TENSORS)
            state = json.loads((folder / STATE).read_text(encoding="utf-8"))
            optim_meta = state.pop("optimizer")
            return Checkpoint(
                adapter={k[len("adapter."):]: v for k, v in tensors.items() if k.startswith("adapter.")},
                optimizer=_unflatten_optimizer(tensors, optim_meta),
                rng={k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")},
                state=state,
            )
    return None
