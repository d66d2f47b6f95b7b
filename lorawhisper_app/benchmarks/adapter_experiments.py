"""Train the shipped adapters and run the language-expansion experiments.

    python -m lorawhisper_app.benchmarks.adapter_experiments --speech ../shared/data/speech --out results/

Every run is `lorawhisper train` in a child process, exactly as a user would start it,
with its JSON events kept. Runs within a phase go in parallel (a small model leaves a
GPU mostly idle between kernel launches, so several processes share it well).

Phases, by default in this order (each starts only while the deadline leaves room; `--phases` picks
some and the order they run in, so a short budget reaches the first named first):
  ship-ha        Hausa alone: the end-to-end time for 90 minutes of audio.
  ship-rest      Swahili, Yoruba and Lingala, installed like Hausa.
  expand-90m-s0  Kinyarwanda and Luganda added to {sw, yo, ha, ln} (store `data`) in each
                 variant (cold, warm start, warm start with L2-SP, MoE with K=2; `--variants`
                 picks some) at equal step budgets, on all 90 minutes of each...
  expand-10m-s0  ...and on 10 minutes.
  closer-pair    Luganda warm-started from the shipped Kinyarwanda adapter (store `closer`:
                 the four of `data` and rw), beside a cold run at the same budget unless an
                 expansion phase already ran that one; on 90 and 10 minutes (`--closer-budgets`).
  synthetic-7    Synthetic speech, in a store of its own: adapters for en de fr es it nl pl,
  synthetic-pt   then Portuguese added in each variant.
  expand-90m-s1, expand-10m-s1, synthetic-pt-s1   Those runs again with seed 1.
Every store hides the app's bundled adapters (the shipped rw and lg among them), so a
run sees only the adapters the experiment installed.
`--use-shipped` installs the four shipped adapters (`adapters/`) into `data` instead of
training them. Without it, the variant with the lowest mean dev WER on 90 minutes is
installed for rw and lg (store `final`, exported as .tar).
Results: `results.json` (every run's similarity ranking, dev-WER history and timings).

What a GPU session still has to run (docs/experiments.md):
  ... --use-shipped --phases ship-ha,expand-90m-s1,closer-pair,synthetic-7,synthetic-pt,synthetic-pt-s1,expand-90m-s0 --variants cold,warm,moe
On a CPU, `--jobs 1 --synthetic-steps 10,30` ran the synthetic phases, and `--jobs 1 --phases closer-pair
--closer-budgets 10:45:15` the closer pair on 10 minutes, at small budgets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SHIPPED = ("ha", "sw", "yo", "ln")
NEW = ("rw", "lg")
VARIANTS = {
    "cold": ["--warm-start", "none"],
    "warm": ["--warm-start", "auto"],
    "anchor": ["--warm-start", "auto", "--anchor", "0.01"],  # warm start held near its source (L2-SP)
    "moe": ["--moe", "2"],
}
BUDGETS = {90: 250, 10: 120}  # minutes of training audio -> optimiser steps
EVAL_EVERY = {90: 25, 10: 15}
SYNTHETIC = ("en", "de", "fr", "es", "it", "nl", "pl")
SYNTHETIC_NEW = "pt"
SYNTHETIC_STEPS, SYNTHETIC_EVAL_EVERY = 80, 10
PHASES = ("ship-ha", "ship-rest", "expand-90m-s0", "expand-10m-s0", "closer-pair", "synthetic-7", "synthetic-pt",
          "expand-90m-s1", "expand-10m-s1", "synthetic-pt-s1")
# phase -> the phases whose adapters it builds on; where both are named, those must run first
NEEDS = {
    **{p: ("ship-ha", "ship-rest")
       for p in ("expand-90m-s0", "expand-10m-s0", "closer-pair", "expand-90m-s1", "expand-10m-s1")},
    "synthetic-pt": ("synthetic-7",),
    "synthetic-pt-s1": ("synthetic-7",),
}
BUNDLED = Path(__file__).resolve().parents[2] / "adapters"
WORK_MARK = ".adapter-experiments"  # in every --work folder this script made, which it may empty again


@dataclass
class Run:
    key: str
    args: list[str]
    events: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    returncode: int | None = None
    stderr_tail: str = ""

    def final(self) -> dict | None:
        return next((e for e in reversed(self.events) if e["event"] == "done"), None)

    def best_wer(self) -> float | None:
        """The run's best dev WER; for a run stopped early, the best of its evaluations so far."""
        done = self.final()
        if done is not None:
            return done["dev_wer"]
        scores = [e["dev_wer"] for e in self.events if e["event"] == "eval"]
        return min(scores) if len(scores) > 1 else None

    def to_dict(self) -> dict:
        keep = [e for e in self.events if e["event"] in ("report", "similarity", "eval", "done", "installed", "phase", "resumed")]
        return {"key": self.key, "args": self.args, "seconds": self.seconds, "returncode": self.returncode,
                "best_wer": self.best_wer(), "events": keep, "stderr_tail": self.stderr_tail}


class Experiments:
    def __init__(
        self, speech: Path, work: Path, out: Path, deadline: float, device: str, extra: list[str],
        variants: dict[str, list[str]] = VARIANTS, jobs: int | None = None,
        synthetic_steps: tuple[int | None, int] = (None, SYNTHETIC_STEPS),
        closer_budgets: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.speech = speech
        self.jobs = jobs  # runs of a phase at once (None: all of them)
        self.synthetic_steps = synthetic_steps  # (each of the seven: None for the default epochs, the eighth)
        # minutes of Luganda -> (steps, evaluate every) for the closer pair
        self.closer_budgets = closer_budgets or {m: (BUDGETS[m], EVAL_EVERY[m]) for m in BUDGETS}
        self.variants = variants
        self.work = work
        self.out = out
        self.deadline = deadline
        self.device = device
        self.extra = extra  # appended to every train command (a --model, or --quick's tiny budgets)
        self.model_args = extra[:2] if extra[:1] == ["--model"] else []
        self.runs: dict[str, Run] = {}
        self.phases: list[dict] = []
        # Parallel runs each keep torch to two CPU threads: the work is on the GPU, and
        # sixteen processes with a thread per core would only fight over the cores.
        self.env = {"OMP_NUM_THREADS": "2", **os.environ, "PYTHONUNBUFFERED": "1"}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def manifest(self, split: str, language: str, minutes: float | None = None, synthetic: bool = False) -> Path:
        """One language's real (or synthetic) rows of a shared manifest, with absolute paths;
        with `minutes`, a fixed subset of about that much audio."""
        rows = []
        for line in (self.speech / split / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["language"] == language and bool(row.get("synthetic")) == synthetic:
                row["path"] = str(self.speech / split / row["path"])
                rows.append(row)
        if minutes is not None:
            rows.sort(key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
            total, kept = 0.0, []
            for row in rows:
                if total >= minutes * 60:
                    break
                kept.append(row)
                total += row["duration_s"]
            rows = kept
        kind = "synthetic" if synthetic else "real"
        path = self.work / "manifests" / f"{split}-{language}-{kind}-{minutes or 'all'}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path

    def train_args(self, language: str, name: str, train: Path, *extra: str, synthetic: bool = False) -> list[str]:
        dev = self.manifest("dev", language, synthetic=synthetic)
        return [str(train), "--language", language, "--name", name, "--dev", str(dev),
                "--device", self.device, "--json", *extra, *self.extra]

    def store_env(self, store: str) -> dict[str, str]:
        """Child environment whose user store is `work/<store>` and that hides the app's bundled
        adapters: otherwise the shipped rw would be a neighbour of lg in every store (and the
        shipped lg of rw), and a synthetic warm start could pick a real-speech adapter."""
        return {**self.env, "XDG_DATA_HOME": str(self.work / store), "LORAWHISPER_BUNDLED_ADAPTERS": ""}

    def phase(self, name: str, runs: list[Run], estimate: float, store: str = "data") -> bool:
        """Run `runs` in parallel (`jobs` at a time) with the user store under `work/<store>`; skipped when the
        deadline leaves less than `estimate` seconds."""
        if self.left() < estimate:
            self.phases.append({"phase": name, "skipped": f"{self.left():.0f} s left, needs about {estimate:.0f}"})
            print(f"[{name}] skipped: {self.left():.0f} s left", flush=True)
            return False
        began = time.monotonic()
        batch = self.jobs or len(runs)
        started: list[str] = []
        for start in range(0, len(runs), batch):
            if self.left() < 0:
                self.phases.append({"phase": name, "skipped": [r.key for r in runs[start:]]})
                break
            together = runs[start : start + batch]
            self.run_together(name, together, store)
            started += [r.key for r in together]
        self.phases.append({"phase": name, "seconds": time.monotonic() - began, "runs": started})
        self.save()
        return True

    def run_together(self, name: str, runs: list[Run], store: str) -> None:
        began = time.monotonic()
        procs = []
        for run in runs:
            self.runs[run.key] = run
            command = [sys.executable, "-m", "lorawhisper_app.cli.main", "train", *run.args]
            out, err = (open(self.work / f"{run.key}.{ext}", "w") for ext in ("out", "err"))
            env = self.store_env(store)
            procs.append((run, subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env), out, err))
        ended: dict[str, float] = {}
        cancelled = False
        while len(ended) < len(procs):
            for run, proc, _, _ in procs:
                if run.key not in ended and proc.poll() is not None:
                    ended[run.key] = time.monotonic() - began
            if self.left() < 0 and not cancelled:  # out of time: runs cancel cleanly at their next step
                cancelled = True  # once: a second SIGTERM stops `lorawhisper train` at once
                for _, proc, _, _ in procs:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
            time.sleep(1)
        for run, proc, out, err in procs:
            out.close()
            err.close()
            run.seconds = ended[run.key]
            run.returncode = proc.returncode
            lines = (self.work / f"{run.key}.out").read_text().splitlines()
            run.events = [json.loads(line) for line in lines if line.startswith("{")]
            run.stderr_tail = (self.work / f"{run.key}.err").read_text()[-1500:]
            print(f"[{name}] {run.key}: rc {proc.returncode}, {run.seconds:.0f} s, best dev WER {run.best_wer()}", flush=True)

    def install(self, code: str, folder: Path, store: str) -> bool:
        """`lorawhisper adapters import` into store `store`; a refusal is recorded, not raised."""
        if not folder.is_dir():  # the run was stopped before it finished
            self.phases.append({"phase": f"install-{code}", "skipped": f"{folder} does not exist"})
            return False
        env = self.store_env(store)
        command = [sys.executable, "-m", "lorawhisper_app.cli.main", "adapters", "import", str(folder), "--replace"]
        done = subprocess.run(command + self.model_args, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            self.phases.append({"phase": f"install-{code}", "failed": done.stderr.strip()[-500:]})
            print(f"[install {code} into {store}] failed: {done.stderr.strip()[-300:]}", flush=True)
        return done.returncode == 0

    def export(self, code: str, store: str) -> None:
        folder = self.work / store / "lorawhisper-studio" / "adapters" / code
        if folder.is_dir():
            with tarfile.open(self.out / f"{code}.tar", "w") as tar:
                tar.add(folder, arcname=code)

    def save(self) -> None:
        data = {"phases": self.phases, "runs": {k: r.to_dict() for k, r in self.runs.items()}}
        tmp = self.out / ".results.json.tmp"
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.out / "results.json")

    def added_run_flags(self, key: str, steps: int, every: int, seed: int) -> list[str]:
        """Budget, seed and run folder of a run that adds a language; its adapter is not installed."""
        return ["--steps", str(steps), "--eval-every", str(every), "--patience", "1000", "--seed", str(seed),
                "--no-install", "--run-dir", str(self.work / "runs" / key)]

    def new_language_run(self, code: str, start: str, flags: list[str], train: Path, minutes: int, steps: int,
                         every: int, seed: int) -> Run:
        """Adding `code` from `train` (`minutes` of it) with the start `flags`; key CODE-START-MINUTESm-sSEED."""
        key = f"{code}-{start}-{minutes}m-s{seed}"
        return Run(key, self.train_args(code, code, train, *flags, *self.added_run_flags(key, steps, every, seed)))

    def expansion_runs(self, minutes: int, seed: int) -> list[Run]:
        runs = []
        for code in NEW:
            train = self.manifest("train", code, None if minutes == 90 else minutes)
            runs += [self.new_language_run(code, variant, flags, train, minutes, BUDGETS[minutes], EVAL_EVERY[minutes], seed)
                     for variant, flags in self.variants.items()]
        return runs

    def choose(self, code: str) -> str | None:
        """The variant with the lowest mean dev WER over the seeds run on 90 minutes."""
        scores: dict[str, list[float]] = {}
        for key, run in self.runs.items():
            variant, _, rest = key.rpartition("-90m-")
            if variant.startswith(f"{code}-") and rest.startswith("s") and run.best_wer() is not None:
                scores.setdefault(variant[len(code) + 1 :], []).append(run.best_wer())  # type: ignore[arg-type]
        if not scores:
            return None
        best = min(scores, key=lambda v: sum(scores[v]) / len(scores[v]))
        self.phases.append({"phase": f"choose-{code}", "scores": scores, "chosen": best})
        return best

    def closer_pair(self) -> list[Run]:
        runs = []
        for minutes, (steps, every) in self.closer_budgets.items():
            train = self.manifest("train", "lg", None if minutes == 90 else minutes)
            for start, flags in (("from-rw", ["--warm-start", "rw"]), ("cold", VARIANTS["cold"])):
                run = self.new_language_run("lg", start, flags, train, minutes, steps, every, 0)
                ran = self.runs.get(run.key)
                if ran is None or ran.args != run.args:  # an expansion phase may have run this cold one
                    runs.append(run)
        return runs

    def synthetic_seven(self) -> list[Run]:
        steps = self.synthetic_steps[0]
        budget = [] if steps is None else ["--steps", str(steps), "--eval-every", str(min(steps, SYNTHETIC_EVAL_EVERY))]
        return [Run(f"syn-{c}", self.train_args(c, c, self.manifest("train", c, synthetic=True), *budget, synthetic=True))
                for c in SYNTHETIC]

    def synthetic_eighth(self, seed: int) -> list[Run]:
        train = self.manifest("train", SYNTHETIC_NEW, synthetic=True)
        runs = []
        for variant, flags in self.variants.items():
            key = f"syn-{SYNTHETIC_NEW}-{variant}-s{seed}"
            budget = self.added_run_flags(key, self.synthetic_steps[1], SYNTHETIC_EVAL_EVERY, seed)
            runs.append(Run(key, self.train_args(SYNTHETIC_NEW, SYNTHETIC_NEW, train, *flags, *budget, synthetic=True)))
        return runs

    def fill_closer_store(self) -> bool:
        """The four adapters of store `data` (or the shipped ones) and the shipped rw."""
        ok = True
        for code in SHIPPED:
            trained = self.work / "data" / "lorawhisper-studio" / "adapters" / code
            ok &= self.install(code, trained if trained.is_dir() else BUNDLED / code, "closer")
        return self.install("rw", BUNDLED / "rw", "closer") and ok

    def ship_new_languages(self) -> None:
        for code in NEW:
            variant = self.choose(code)
            if variant:
                self.install(code, self.work / "runs" / f"{code}-{variant}-90m-s0" / "adapter", "final")
                self.export(code, "final")

    def ship_runs(self, codes: tuple[str, ...], use_shipped: bool) -> list[Run]:
        """Each language of `codes` trained on all its data. Where the shipped adapters are installed
        already, the run keeps its adapter in its run folder: it is there for its figures."""
        runs = []
        for code in codes:
            keep = ["--no-install", "--run-dir", str(self.work / "runs" / f"ship-{code}")] if use_shipped else []
            runs.append(Run(f"ship-{code}", self.train_args(code, code, self.manifest("train", code), *keep)))
        return runs

    def main(self, phases: list[str], use_shipped: bool) -> None:
        """Run `phases` in the order given (`phase_order_error` has checked it)."""
        self.out.mkdir(parents=True, exist_ok=True)
        from lorawhisper_app.core.backbone import resolve_backbone

        resolve_backbone(self.model_args[1] if self.model_args else None)  # convert once, before parallel runs
        if use_shipped:
            for code in SHIPPED:
                self.install(code, BUNDLED / code, "data")
        plan: dict[str, tuple[Callable[[], list[Run]], int, str]] = {  # phase -> (its runs, estimate s, store)
            "ship-ha": (lambda: self.ship_runs(SHIPPED[:1], use_shipped), 60, "data"),
            "ship-rest": (lambda: self.ship_runs(SHIPPED[1:], use_shipped), 60, "data"),
            "expand-90m-s0": (lambda: self.expansion_runs(90, 0), 120, "data"),
            "expand-10m-s0": (lambda: self.expansion_runs(10, 0), 60, "data"),
            "closer-pair": (self.closer_pair, 90, "closer"),
            "synthetic-7": (self.synthetic_seven, 90, "synthetic"),
            "synthetic-pt": (lambda: self.synthetic_eighth(0), 60, "synthetic"),
            "expand-90m-s1": (lambda: self.expansion_runs(90, 1), 120, "data"),
            "expand-10m-s1": (lambda: self.expansion_runs(10, 1), 60, "data"),
            "synthetic-pt-s1": (lambda: self.synthetic_eighth(1), 60, "synthetic"),
        }
        dropped: set[str] = set()
        for name in phases:
            runs, estimate, store = plan[name]
            if name in dropped:
                self.phases.append({"phase": name, "skipped": "synthetic-7 did not run"})
                continue
            if name == "closer-pair" and not self.fill_closer_store():
                self.phases.append({"phase": name, "skipped": "its store could not be filled (see install-*)"})
                continue
            ran = self.phase(name, runs(), estimate, store=store)
            if name == "ship-rest" and ran and not use_shipped:  # with --use-shipped they stay in their run folders
                for code in SHIPPED:
                    self.export(code, "data")
            if name == "synthetic-7" and not ran:
                dropped |= {later for later, needs in NEEDS.items() if name in needs}  # the eighth language needs the seven
        if not use_shipped:
            self.ship_new_languages()
        self.save()


def work_folder_problem(work: Path) -> str | None:
    """Why `--work` may not be emptied: it holds files and is not a folder this script made."""
    if work.is_dir() and any(work.iterdir()) and not (work / WORK_MARK).is_file():
        return f"--work {work}: the folder holds files this script did not make; it empties --work, so name a new folder"
    if work.exists() and not work.is_dir():
        return f"--work {work}: not a folder"
    return None


def phase_order_error(phases: list[str]) -> str | None:
    """Why `phases` cannot run in this order (a phase named twice, or before one it builds on), or None."""
    if len(set(phases)) < len(phases):
        return "--phases names a phase twice"
    for i, name in enumerate(phases):
        later = [need for need in NEEDS.get(name, ()) if need in phases[i + 1 :]]
        if later:
            return f"--phases: {name} builds on the adapters of {' and '.join(later)}, so it must come after it"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech"))
    parser.add_argument("--work", default="adapter-experiments", help="scratch folder (stores, runs, manifests)")
    parser.add_argument("--out", required=True, help="results.json and the adapters as .tar files")
    parser.add_argument("--seconds", type=float, default=520, help="time budget; later phases are skipped")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default=None, help="another backbone (a folder), for trying the pipeline out")
    parser.add_argument("--quick", action="store_true", help="two steps per run: checks the pipeline, not the method")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated, from: " + ", ".join(PHASES))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--jobs", type=int, default=None, help="runs of a phase at once (default: all; 1 on a CPU)")
    parser.add_argument("--synthetic-steps", default=f"epochs,{SYNTHETIC_STEPS}",
                        help="steps for each of the seven synthetic adapters (or 'epochs': the default) and for the eighth")
    parser.add_argument("--closer-budgets", default=",".join(f"{m}:{BUDGETS[m]}:{EVAL_EVERY[m]}" for m in BUDGETS),
                        help="MINUTES:STEPS:EVERY,... for the closer pair (minutes of Luganda: 90 is all of it)")
    parser.add_argument("--use-shipped", action="store_true", help="install the adapters in adapters/ instead of training them")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    variants = {v.strip(): VARIANTS[v.strip()] for v in args.variants.split(",") if v.strip() in VARIANTS}
    if set(phases) - set(PHASES) or not variants:
        parser.error(f"--phases takes {', '.join(PHASES)}; --variants takes {', '.join(VARIANTS)}")
    if order_error := phase_order_error(phases):
        parser.error(order_error)
    seven, _, eighth = args.synthetic_steps.partition(",")
    if not eighth.isdigit() or not (seven == "epochs" or seven.isdigit()) or (args.jobs is not None and args.jobs < 1):
        parser.error("--synthetic-steps takes SEVEN,EIGHTH (SEVEN a number or 'epochs'); --jobs a positive number")
    try:
        closer = {int(m): (int(s), int(e)) for m, s, e in (b.split(":") for b in args.closer_budgets.split(","))}
    except ValueError:
        parser.error("--closer-budgets takes MINUTES:STEPS:EVERY, comma-separated (for example 10:45:15)")
    extra = (["--model", args.model] if args.model else []) + (["--steps", "2", "--eval-every", "1"] if args.quick else [])
    work = Path(args.work).resolve()
    if problem := work_folder_problem(work):
        parser.error(problem)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / WORK_MARK).touch()
    experiments = Experiments(Path(args.speech), work, Path(args.out), time.monotonic() + args.seconds, args.device, extra,
                              variants, args.jobs, (None if seven == "epochs" else int(seven), int(eighth)), closer)
    experiments.main(phases, args.use_shipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
