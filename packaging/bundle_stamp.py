"""A digest of everything a bundle is built from, so a built bundle can be told up to date.

The build script writes it into the bundle (`_internal/lorawhisper-bundle-stamp.txt`); the
smoke test rebuilds only when the digest of the working tree differs. The inputs are the
app's Python files, the packaging files, resources/, adapters/ and pyproject.toml (which pins
the dependencies), and the versions of the installed distributions.

    python packaging/bundle_stamp.py      # prints the digest of this working tree
"""

from __future__ import annotations

import hashlib
import sys
from importlib import metadata
from pathlib import Path

STAMP_NAME = "lorawhisper-bundle-stamp.txt"
_INPUT_FOLDERS = ("lorawhisper_app", "packaging", "resources", "adapters")


def input_files(root: Path) -> list[Path]:
    """The files a bundle is built from, in a fixed order (caches left out)."""
    files = [root / "pyproject.toml"]
    for folder in _INPUT_FOLDERS:
        files += (
            path
            for path in (root / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        )
    return sorted(files)


def inputs_digest(root: Path) -> str:
    """sha256 over the input files' paths and bytes and the installed distributions."""
    sha = hashlib.sha256()
    for path in input_files(root):
        sha.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    installed = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions())
    sha.update("\n".join(installed).encode())
    return sha.hexdigest()


def bundle_is_current(bundle: Path, root: Path) -> bool:
    """Whether `bundle` was built from this working tree as it is now."""
    stamp = bundle / "_internal" / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == inputs_digest(root)


if __name__ == "__main__":
    print(inputs_digest(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
