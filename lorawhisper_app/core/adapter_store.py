"""Installed LoRA adapters: validation, listing, import, export and removal.

An adapter is a folder holding peft's `adapter_config.json` and
`adapter_model.safetensors` plus the app's `lorawhisper.json`, and optionally the
automatic router's profile of its language, `router.safetensors`. Validation reads the
safetensors headers and JSON files only: nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

import platformdirs

import lorawhisper_app
from lorawhisper_app.core.adapter_meta import META_FILE, NAME_PATTERN, AdapterMeta
from lorawhisper_app.core.errors import AdapterError, one_line, write_problem

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_FILES = (CONFIG_FILE, WEIGHTS_FILE, META_FILE)
ROUTER_FILE = "router.safetensors"  # the language's profile for automatic routing (core.router)
OPTIONAL_FILES = ("README.md", ROUTER_FILE)  # README.md: the model card peft's save_pretrained writes
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
MAX_ZIP_MEMBER_BYTES = 2 * 1024**3

_MAX_HEADER_BYTES = 100 * 1024**2
_FLOAT_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_LORA_TENSOR = re.compile(r"(?P<module>.+)\.lora_(?P<part>[AB])\.weight")
_CHUNK = 1024 * 1024

Source = Literal["bundled", "user"]


def default_user_adapter_dir() -> Path:
    return platformdirs.user_data_path("lorawhisper-studio", appauthor=False) / "adapters"


def bundled_adapter_dir() -> Path | None:
    """`$LORAWHISPER_BUNDLED_ADAPTERS` when set (empty: no bundled adapters), else the
    repository's `adapters/` folder; None when the folder does not exist."""
    override = os.environ.get("LORAWHISPER_BUNDLED_ADAPTERS")
    if override == "":
        return None
    folder = Path(override).expanduser() if override else Path(lorawhisper_app.__file__).resolve().parent.parent / "adapters"
    return folder if folder.is_dir() else None


# --- validation -------------------------------------------------------------------


def free_adapter_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or wanted-2, wanted-3... when an adapter (a bundled one too) has that name."""
    if wanted not in taken:
        return wanted
    return next(f"{wanted}-{n}" for n in range(2, len(taken) + 3) if f"{wanted}-{n}" not in taken)


def validate_adapter_dir(path: Path, fingerprint: str | None) -> AdapterMeta:
    """Check an adapter folder without loading it; return its metadata.

    With `fingerprint`, the adapter must also have been made for that backbone.
    Every problem is an AdapterError whose one line names the file at fault.
    """
    path = Path(path)
    if not path.is_dir():
        raise AdapterError(f"{path}: no such adapter folder")
    for item in sorted(path.iterdir()):
        if item.suffix.lower() in PICKLE_SUFFIXES:
            raise AdapterError(
                f"{item}: pickle-format weights; only safetensors adapters are accepted, nothing is unpickled"
            )
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise AdapterError(f"{path / name}: missing; a LoRA adapter needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    rank, ranks, targets = _read_lora_config(path / CONFIG_FILE)
    _check_lora_tensors(path / WEIGHTS_FILE, _read_safetensors_header(path / WEIGHTS_FILE), rank, ranks, targets)
    if (path / ROUTER_FILE).is_file():
        _read_safetensors_header(path / ROUTER_FILE)
    meta = AdapterMeta.load(path)
    if meta.lora.rank != rank:
        raise AdapterError(f"{path / META_FILE}: lora.rank is {meta.lora.rank} but {CONFIG_FILE} says r={rank}")
    if fingerprint is not None and meta.base_model.fingerprint != fingerprint:
        raise AdapterError(
            f"{path / META_FILE}: adapter {meta.name} was made for another backbone ({meta.base_model.name}, "
            f"fingerprint {_short(meta.base_model.fingerprint)}) and this app runs the backbone {_short(fingerprint)}"
        )
    return meta


def _short(fingerprint: str) -> str:
    return fingerprint if len(fingerprint) <= 19 else fingerprint[:19] + "…"


def _read_lora_config(path: Path) -> tuple[int, set[int], list[str] | str]:
    """(r, every rank a module may have, target_modules) from peft's config."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise AdapterError(f"{path}: not readable JSON ({one_line(error)})") from None
    if not isinstance(config, dict):
        raise AdapterError(f"{path}: must be a JSON object")
    if config.get("peft_type") != "LORA":
        peft_type = config.get("peft_type")
        raise AdapterError(f"{path}: peft_type is {peft_type!r}; only LoRA adapters (\"LORA\") are supported")
    rank_pattern = config.get("rank_pattern") or {}
    ranks = [config.get("r"), *(rank_pattern.values() if isinstance(rank_pattern, dict) else [None])]
    if not all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in ranks):
        raise AdapterError(f"{path}: r and any rank_pattern value must be positive integers, got r={config.get('r')!r}")
    targets = config.get("target_modules")
    valid_list = isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets)
    if not (valid_list or (isinstance(targets, str) and targets)):
        raise AdapterError(f"{path}: target_modules is missing or empty")
    return ranks[0], set(ranks), targets


def _read_safetensors_header(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, after checking the header against the file's size."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        prefix = stream.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if length < 2 or length > min(_MAX_HEADER_BYTES, size - 8):
            raise AdapterError(f"{path}: not a safetensors file, or truncated (header does not fit in {size} bytes)")
        raw = stream.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AdapterError(f"{path}: corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise AdapterError(f"{path}: corrupt safetensors header (not a JSON object)")
    data_bytes = size - 8 - length
    shapes: dict[str, tuple[int, ...]] = {}
    end_of_data = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape, end = _check_tensor_entry(path, name, info, data_bytes)
        shapes[name] = shape
        end_of_data = max(end_of_data, end)
    if not shapes:
        raise AdapterError(f"{path}: holds no tensors")
    if end_of_data != data_bytes:
        raise AdapterError(f"{path}: tensor data takes {end_of_data} bytes but the file holds {data_bytes}")
    return shapes


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tensor_entry(path: Path, name: str, info: Any, data_bytes: int) -> tuple[tuple[int, ...], int]:
    if not isinstance(info, dict):
        raise AdapterError(f"{path}: corrupt safetensors header (entry for {name!r} is not an object)")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _FLOAT_DTYPE_BYTES:
        raise AdapterError(f"{path}: tensor {name!r} has dtype {dtype!r}; LoRA weights are F16, BF16, F32 or F64")
    if not (isinstance(shape, list) and all(_is_index(d) for d in shape)):
        raise AdapterError(f"{path}: corrupt safetensors header (bad shape for {name!r})")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_index(o) for o in offsets)):
        raise AdapterError(f"{path}: corrupt safetensors header (bad data_offsets for {name!r})")
    begin, end = offsets
    if end - begin != math.prod(shape) * _FLOAT_DTYPE_BYTES[dtype]:
        raise AdapterError(f"{path}: corrupt safetensors header (size of {name!r} does not match its shape)")
    if end > data_bytes:
        raise AdapterError(f"{path}: truncated (tensor {name!r} ends at byte {end} of {data_bytes})")
    return tuple(shape), end


def lora_matrix_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Module name (as in the bare transformers model) -> (lora_A shape, lora_B shape), read
    from the header of an adapter's weights file `path` without loading the tensors."""
    return {
        module.removeprefix("base_model.model."): (parts["A"], parts["B"])
        for module, parts in _lora_pairs(path, _read_safetensors_header(path)).items()
    }


def _lora_pairs(path: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, tuple[int, ...]]]:
    """Module name (as peft saves it) -> {"A": shape, "B": shape}; an AdapterError names
    any tensor that is not a LoRA matrix, and any matrix without its pair."""
    modules: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in shapes.items():
        match = _LORA_TENSOR.fullmatch(name)
        if match is None:
            raise AdapterError(
                f"{path}: tensor {name!r} is not a LoRA weight (names end in lora_A.weight or lora_B.weight)"
            )
        if len(shape) != 2:
            raise AdapterError(f"{path}: tensor {name!r} has shape {list(shape)}; LoRA weights are matrices")
        modules.setdefault(match["module"], {})[match["part"]] = shape
    for module, parts in modules.items():
        if set(parts) != {"A", "B"}:
            raise AdapterError(f"{path}: {module} has lora_{''.join(parts)} without its pair")
    return modules


def _check_lora_tensors(
    path: Path, shapes: dict[str, tuple[int, ...]], rank: int, ranks: set[int], targets: list[str] | str
) -> None:
    modules = _lora_pairs(path, shapes)
    for module, parts in modules.items():
        module_rank, b_rank = parts["A"][0], parts["B"][1]
        if module_rank != b_rank or module_rank not in ranks:
            raise AdapterError(
                f"{path}: {module} has rank {module_rank} (lora_A) / {b_rank} (lora_B) but {CONFIG_FILE} says r={rank}"
            )
        if isinstance(targets, list) and not any(module == t or module.endswith("." + t) for t in targets):
            raise AdapterError(f"{path}: {module} is not among the target_modules of {CONFIG_FILE}")


# --- file helpers -----------------------------------------------------------------


def _adapter_files(folder: Path) -> list[str]:
    return [*ADAPTER_FILES, *(name for name in OPTIONAL_FILES if (folder / name).is_file())]


class _WriteFailed(Exception):
    """A file of the store that could not be written (a full disk): not an OSError, so that
    the zip reader does not take it for an archive it cannot read."""


def _write_file(source: IO[bytes], dest: Path) -> None:
    """Copy a stream into a new file and fsync it."""
    try:
        with open(dest, "xb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise _WriteFailed(write_problem(error)) from error


def _copy_adapter(source: Path, dest: Path) -> None:
    dest.mkdir()
    for name in _adapter_files(source):
        with open(source / name, "rb") as stream:
            _write_file(stream, dest / name)
    _fsync_dir(dest)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder for fsync
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _folder_size(folder: Path) -> int:
    return sum(item.stat().st_size for item in folder.iterdir() if item.is_file())


def _folder_state(folder: Path) -> tuple[tuple[str, bool, int, int, int], ...]:
    """Each entry of `folder` with its type, size, inode and modification time: what the
    folder's validation depends on (an edit, a replacement or a new file changes it)."""
    entries = []
    with os.scandir(folder) as scan:
        for entry in scan:
            info = entry.stat()
            entries.append((entry.name, entry.is_file(), info.st_size, info.st_ino, info.st_mtime_ns))
    return tuple(sorted(entries))


def _check_zip_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise AdapterError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in re.split(r"[/\\]", name):
        raise AdapterError(f"{archive}: member {name!r} points outside the archive; refusing to extract")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise AdapterError(f"{archive}: member {name!r} is a symbolic link; refusing to extract")
    if info.file_size > MAX_ZIP_MEMBER_BYTES:
        raise AdapterError(
            f"{archive}: member {name!r} is {info.file_size} bytes, over the {MAX_ZIP_MEMBER_BYTES}-byte limit; "
            "refusing to extract"
        )
    if PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES:
        raise AdapterError(
            f"{archive}: member {name!r} holds pickle-format weights; only safetensors adapters are accepted, "
            "nothing is unpickled"
        )


def _extract_adapter_zip(archive: Path, dest: Path) -> Path:
    """Extract the adapter's files from `archive` under `dest`; return the adapter folder.

    The files may sit at the archive's root or in one folder (what `export` writes).
    """
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for info in members:
                _check_zip_member(archive, info)
            wanted = [
                info
                for info in members
                if not info.is_dir()
                and len(PurePosixPath(info.filename).parts) <= 2
                and PurePosixPath(info.filename).name in (*ADAPTER_FILES, *OPTIONAL_FILES)
            ]
            folders = {PurePosixPath(info.filename).parent for info in wanted}
            if len(folders) != 1:
                found = ", ".join(sorted(f"{folder}/" for folder in folders)) or "none"
                raise AdapterError(
                    f"{archive}: expected {CONFIG_FILE} and the other adapter files at the archive's root "
                    f"or in one folder; found adapter files in: {found}"
                )
            for info in wanted:
                target = dest.joinpath(*PurePosixPath(info.filename).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as stream:
                    _write_file(stream, target)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise AdapterError(f"{archive}: not a readable zip archive ({one_line(error)})") from None
    folder = dest.joinpath(*folders.pop().parts)
    _fsync_dir(folder)
    return folder


# --- the store --------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    meta: AdapterMeta
    path: Path
    source: Source
    size_bytes: int

    def compatible_with(self, fingerprint: str) -> bool:
        return self.meta.base_model.fingerprint == fingerprint


def _preference(info: AdapterInfo) -> tuple[Any, ...]:
    """Sort key for adapters serving one language: user first, best dev WER, newest."""
    wer = info.meta.dev_wer
    return (info.source != "user", wer is None, wer.after if wer else 0.0, -info.meta.created_at.timestamp(), info.name)


class AdapterStore:
    """Bundled adapters (read-only) and the user's, which shadow bundled ones by name."""

    def __init__(self, bundled_dir: Path | None, user_dir: Path) -> None:
        self.bundled_dir = bundled_dir
        self.user_dir = Path(user_dir)
        # Each folder's validation (its info or its problem), kept while the folder's state is
        # unchanged: validating six adapters took 3.4 ms, and routing asks at every utterance.
        self._checked: dict[Path, tuple[object, AdapterInfo | str]] = {}

    def _scan(self) -> tuple[dict[str, AdapterInfo], list[str]]:
        found: dict[str, AdapterInfo] = {}
        problems: list[str] = []
        checked: dict[Path, tuple[object, AdapterInfo | str]] = {}
        roots: list[tuple[Source, Path | None]] = [("bundled", self.bundled_dir), ("user", self.user_dir)]
        for source, root in roots:
            if root is None or not root.is_dir():
                continue
            for folder in sorted(root.iterdir()):
                if folder.name.startswith(".") or not folder.is_dir():
                    continue
                state = (source, _folder_state(folder))
                known = self._checked.get(folder)
                result = known[1] if known is not None and known[0] == state else self._check(folder, source)
                checked[folder] = (state, result)
                if isinstance(result, str):
                    problems.append(result)
                else:
                    found[result.name] = result
        self._checked = checked
        return found, problems

    @staticmethod
    def _check(folder: Path, source: Source) -> AdapterInfo | str:
        """The folder's AdapterInfo, or the line that says what is wrong with it."""
        try:
            meta = validate_adapter_dir(folder, None)
            if meta.name != folder.name:
                raise AdapterError(f"{folder / META_FILE}: name {meta.name!r} differs from its folder's name")
        except AdapterError as error:
            return str(error)
        return AdapterInfo(meta.name, meta, folder, source, _folder_size(folder))

    def list(self) -> list[AdapterInfo]:
        found, _ = self._scan()
        return sorted(found.values(), key=lambda info: info.name)

    def problems(self) -> list[str]:
        """One line for each folder in the store that is not a valid adapter."""
        return self._scan()[1]

    def get(self, name: str) -> AdapterInfo:
        found, _ = self._scan()
        if name not in found:
            raise self._unknown(name, found)
        return found[name]

    def _unknown(self, name: str, found: dict[str, AdapterInfo] | None = None) -> AdapterError:
        names = sorted(self._scan()[0] if found is None else found)
        return AdapterError(f"no adapter named {name}; installed: {', '.join(names) or 'none'}")

    def for_language(self, code: str, fingerprint: str) -> AdapterInfo | None:
        """The compatible adapter serving `code`: user before bundled, then best dev WER, then newest."""
        matches = [info for info in self.list() if info.meta.language == code and info.compatible_with(fingerprint)]
        return min(matches, key=_preference, default=None)

    def import_(self, source: Path, fingerprint: str, *, name: str | None = None, replace: bool = False) -> AdapterInfo:
        """Install an adapter folder or a zip made by `export` as a user adapter."""
        source = Path(source)
        if name is not None and not NAME_PATTERN.fullmatch(name):
            raise AdapterError(
                f"invalid adapter name {name!r}: use 1-64 of a-z 0-9 . _ - starting with a letter or digit"
            )
        is_zip = source.suffix.lower() == ".zip" and not source.is_dir()
        if not is_zip:
            validate_adapter_dir(source, fingerprint)
        staging: Path | None = None
        try:
            self.user_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".import-", dir=self.user_dir))
            content = staging / "content"
            if is_zip:
                staged = _extract_adapter_zip(source, content)
            else:
                _copy_adapter(source, content)
                staged = content
            try:
                meta = validate_adapter_dir(staged, fingerprint)
            except AdapterError as error:  # name the files as the user knows them
                raise AdapterError(str(error).replace(str(content), str(source))) from None
            if name is not None and name != meta.name:
                meta = dataclasses.replace(meta, name=name)
                meta.save(staged)
            self._install(staged, meta.name, replace, trash=staging / "old")
        except (OSError, _WriteFailed) as error:
            raise AdapterError(f"{self.user_dir}: could not install {source.name} there ({write_problem(error)}); "
                               "nothing was installed") from None
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        final = self.user_dir / meta.name
        return AdapterInfo(meta.name, meta, final, "user", _folder_size(final))

    def _install(self, staged: Path, name: str, replace: bool, trash: Path) -> None:
        final = self.user_dir / name
        bundled = self.bundled_dir is not None and (self.bundled_dir / name).is_dir()
        if (final.exists() or bundled) and not replace:
            where = "installed" if final.exists() else "bundled with the app"
            raise AdapterError(
                f"an adapter named {name} is already {where}; import it under another name or replace it"
            )
        try:
            if final.exists():
                os.rename(final, trash)
                try:
                    os.rename(staged, final)
                except OSError:
                    os.rename(trash, final)
                    raise
            else:
                os.rename(staged, final)
            _fsync_dir(self.user_dir)
        except OSError as error:
            raise AdapterError(f"{final}: could not install ({one_line(error)})") from None

    def export(self, name: str, dest: Path) -> Path:
        """Write adapter `name` to `dest` (a `.zip`, files under `<name>/`) or to folder `dest/<name>`."""
        info = self.get(name)
        dest = Path(dest)
        try:
            return self._export(info, dest)
        except (OSError, _WriteFailed) as error:
            raise AdapterError(f"{dest}: could not export {name} there ({write_problem(error)}); nothing was left behind") from None

    def _export(self, info: AdapterInfo, dest: Path) -> Path:
        name = info.name
        if dest.suffix.lower() == ".zip":
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
                        for file in _adapter_files(info.path):
                            zipped.write(info.path / file, f"{name}/{file}")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp_name, dest)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
            return dest
        target = dest / name
        if target.exists():
            raise AdapterError(f"{target}: already exists; choose another folder")
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.export-", dir=dest))
        try:
            _copy_adapter(info.path, staging / name)
            os.rename(staging / name, target)
            _fsync_dir(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def remove(self, name: str) -> None:
        """Delete a user adapter; bundled adapters cannot be removed."""
        folder = self.user_dir / name
        if NAME_PATTERN.fullmatch(name) and folder.is_dir():
            trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.user_dir))
            os.rename(folder, trash / name)
            shutil.rmtree(trash, ignore_errors=True)
            return
        if NAME_PATTERN.fullmatch(name) and self.bundled_dir is not None and (self.bundled_dir / name).is_dir():
            raise AdapterError(f"adapter {name} is bundled with the app and cannot be removed")
        raise self._unknown(name)
