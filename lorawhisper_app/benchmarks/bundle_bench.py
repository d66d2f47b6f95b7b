"""Size of the desktop bundle and its cold start to the first transcript, against .venv:
`python -m lorawhisper_app.benchmarks.bundle_bench [--bundle dist/lorawhisper-studio]`.

Size: the bundle folder in MiB and its largest parts (the top-level entries of `_internal/`,
and the executable). Cold start: wall time from starting `lorawhisper transcribe CLIP
--language sw` to its exit with the transcript written, for the bundle's `lorawhisper` and
for `.venv/bin/lorawhisper`, alternating, in a clean environment (empty HOME and XDG folders,
PATH without .venv, no network where `unshare` can take it away). Two cases:

- first run: empty cache, so the built-in backbone is converted from its packages first;
- later runs: the cache of an earlier run, as every start after the first.

The processes start cold; the operating system's file cache is not emptied (that would slow
every other job on the machine), so both sides read their files from memory.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO / "dist" / "lorawhisper-studio"
VENV_CLI = REPO / ".venv" / "bin" / "lorawhisper"
DEFAULT_CLIP = (
    REPO.parent / "shared" / "data" / "speech" / "dev" / "sw" / "real" / "200702-201811_swh_35d_elicit_71.opus"
)
RUN_TIMEOUT_S = 600
MIB = 1 << 20


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links not followed: a link counts nothing)."""
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def size_report(bundle: Path) -> tuple[int, list[tuple[str, int]]]:
    """The bundle's bytes and its parts, largest first: top-level entries of `_internal/`
    and of the bundle itself."""
    parts = [(p.name, tree_bytes(p)) for p in bundle.iterdir() if p.name != "_internal"]
    parts += [(f"_internal/{p.name}", tree_bytes(p)) for p in (bundle / "_internal").iterdir()]
    parts.sort(key=lambda part: part[1], reverse=True)
    return sum(size for _, size in parts), parts


def network_blocker() -> list[str]:
    """A command prefix that runs a program without network (a new network namespace), or
    [] where this kernel or user may not create one."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "--map-root-user", "true"], capture_output=True)
    return [unshare, "--net", "--map-root-user"] if probe.returncode == 0 else []


def clean_env(home: Path) -> dict[str, str]:
    """A user who has never run the app, with nothing of this shell's Python set-up: HOME
    and the XDG folders under `home`, PATH without .venv, the hubs told to stay offline."""
    return {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "QT_QPA_PLATFORM": "offscreen",
    }


@dataclass(frozen=True)
class Run:
    seconds: float
    text: str


def transcribe_once(cli: Path, clip: Path, home: Path, language: str = "sw", prefix: Sequence[str] = ()) -> Run:
    """`cli transcribe clip --language language` as the user whose home is `home`: wall
    seconds from start to exit, and the transcript it wrote. Raises RuntimeError on failure."""
    home.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="transcript-", dir=home))
    command = [*prefix, str(cli), "transcribe", str(clip), "--language", language, "--format", "txt", "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, env=clean_env(home), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    seconds = time.perf_counter() - started
    written = out / f"{clip.stem}.txt"
    if done.returncode != 0 or not written.is_file():
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return Run(seconds, written.read_text(encoding="utf-8").strip())


def cold_starts(clis: dict[str, Path], clip: Path, runs: int, work: Path) -> dict[str, dict[str, list[Run]]]:
    """For each CLI: `runs` first runs (each with a new, empty home) and `runs` later runs
    (the home of its first first run, cache warm), the CLIs alternating."""
    prefix = network_blocker()
    results: dict[str, dict[str, list[Run]]] = {name: {"first": [], "later": []} for name in clis}
    for index in range(runs):
        for name, cli in clis.items():
            results[name]["first"].append(transcribe_once(cli, clip, work / f"{name}-first-{index}", prefix=prefix))
    for _ in range(runs):
        for name, cli in clis.items():
            results[name]["later"].append(transcribe_once(cli, clip, work / f"{name}-first-0", prefix=prefix))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lorawhisper_app.benchmarks.bundle_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="the bundle folder (default dist/lorawhisper-studio)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a Swahili clip (default: a 5.8 s dev clip)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind per side (default 3)")
    parser.add_argument("--top", type=int, default=12, help="how many of the largest parts to list (default 12)")
    args = parser.parse_args(argv)

    bundle_cli = args.bundle / "lorawhisper"
    if not bundle_cli.is_file():
        parser.error(f"{bundle_cli} is missing: build the bundle first (bash packaging/build_bundle.sh)")
    total, parts = size_report(args.bundle)
    print(f"bundle {args.bundle}: {total / MIB:.0f} MiB; largest parts:")
    for name, size in parts[: args.top]:
        print(f"  {size / MIB:8.1f} MiB  {name}")

    network = "no network (unshare)" if network_blocker() else "network not blocked (unshare unavailable)"
    print(f"\ncold start to first transcript of {args.clip.name}, {network}, median of {args.runs} (min-max):")
    with tempfile.TemporaryDirectory(prefix="bundle-bench-") as work:
        results = cold_starts({"bundle": bundle_cli, ".venv": VENV_CLI}, args.clip, args.runs, Path(work))
    medians: dict[str, dict[str, float]] = {}
    for name, kinds in results.items():
        medians[name] = {kind: statistics.median(r.seconds for r in runs) for kind, runs in kinds.items()}
        cells = "   ".join(
            f"{kind} {medians[name][kind]:6.2f} s ({min(r.seconds for r in runs):.2f}-{max(r.seconds for r in runs):.2f})"
            for kind, runs in kinds.items()
        )
        print(f"  {name:7s} {cells}")
    for kind in ("first", "later"):
        print(f"  bundle / .venv, {kind} run: {medians['bundle'][kind] / medians['.venv'][kind]:.2f}")
    texts = {run.text for kinds in results.values() for runs in kinds.values() for run in runs}
    print(f"\ntranscripts: {'all the same' if len(texts) == 1 else 'DIFFERENT'}: {sorted(texts)[0]!r}")
    return 0 if len(texts) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
