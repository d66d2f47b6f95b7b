"""What the bare backbone makes of a data set, kept between training runs.

Before a step is trained, a run measures the new data with the adapters off: its LID
profile and router features (the similarity stage) and the dev WER without an adapter.
On this project's 2-core CPU that took 167 to 727 s of the 15-step runs on 10-minute sets
in docs/experiments.md, and none of it depends on the training settings. A user who trains
again on the same data (another preset, another start, another seed) gets them from here.

An entry is one safetensors file named by a digest of everything that goes into the
figures: the backbone's fingerprint, the device, precision and batch size, the method,
torch's version, and each clip's id, text and audio samples. Any change is a new entry;
an entry that cannot be read is measured again and rewritten. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = 1
SUFFIX = ".safetensors"

Entry = tuple[dict[str, torch.Tensor], dict[str, str]]  # tensors, and string metadata


def memo_key(kind: str, inputs: dict[str, object], sections: dict[str, Iterable[tuple[str, str, np.ndarray]]]) -> str:
    """`kind`-<digest> of the settings in `inputs` and of the clips (id, text, audio) in each section."""
    digest = hashlib.sha256(json.dumps(
        {"format": FORMAT, "kind": kind, "torch": torch.__version__, **inputs}, sort_keys=True, default=str,
    ).encode())
    for section, clips in sections.items():
        digest.update(f"\n[{section}]\n".encode())
        for clip_id, text, audio in clips:
            digest.update(f"{clip_id}\t{text}\t{audio.dtype.str}\t{len(audio)}\n".encode())
            digest.update(hashlib.sha256(np.ascontiguousarray(audio).tobytes()).digest())
    return f"{kind}-{digest.hexdigest()[:32]}"


class BaselineMemo:
    """A folder of entries, one file each; a memo that cannot be written just forgets."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def load(self, key: str) -> Entry | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                return {name: handle.get_tensor(name) for name in handle.keys()}, dict(handle.metadata() or {})
        except (OSError, SafetensorError, ValueError):
            return None  # damaged: measured again, and the new entry replaces it

    def save(self, key: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bool:
        """Write the entry atomically; False when it could not be written (full disk, no permission)."""
        target = self._path(key)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(temp), metadata=metadata)
            os.replace(temp, target)
        except (OSError, SafetensorError):
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            return False
        return True
