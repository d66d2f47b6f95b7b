"""The adapter-experiment driver's planning (no training here: the runs it plans are
`lorawhisper train` commands, which test_training runs) and the report over its results."""

import json
import re
from pathlib import Path

import pytest

from lorawhisper_app.benchmarks import adapter_experiments
from lorawhisper_app.benchmarks.adapter_experiments import BUDGETS, EVAL_EVERY, Experiments, Run
from lorawhisper_app.benchmarks.experiment_report import report


@pytest.fixture
def speech(tmp_path) -> Path:
    """A speech folder with a manifest per split: 12 Luganda clips of 60 s in train, 2 in dev."""
    for split, count in (("train", 12), ("dev", 2)):
        rows = [{"id": f"lg-{split}-{i}", "path": f"{i}.wav", "text": "x", "language": "lg", "duration_s": 60.0}
                for i in range(count)]
        (tmp_path / split).mkdir()
        (tmp_path / split / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def experiments(speech: Path, tmp_path: Path, **kwargs) -> Experiments:
    (tmp_path / "out").mkdir(exist_ok=True)
    return Experiments(speech, tmp_path / "work", tmp_path / "out", 1e9, "cpu", [], **kwargs)


def test_every_store_hides_the_bundled_adapters(speech, tmp_path):
    exp = experiments(speech, tmp_path)
    for store in ("data", "closer", "synthetic"):
        env = exp.store_env(store)
        assert env["LORAWHISPER_BUNDLED_ADAPTERS"] == ""
        assert env["XDG_DATA_HOME"] == str(tmp_path / "work" / store)


def test_closer_pair_runs_cold_beside_the_warm_start_unless_that_cold_run_already_ran(speech, tmp_path):
    exp = experiments(speech, tmp_path, closer_budgets={10: (45, 15)})
    runs = exp.closer_pair()
    assert [r.key for r in runs] == ["lg-from-rw-10m-s0", "lg-cold-10m-s0"]
    warm, cold = runs
    assert warm.args[warm.args.index("--warm-start") + 1] == "rw"
    assert cold.args[cold.args.index("--warm-start") + 1] == "none"
    for run in runs:
        assert run.args[run.args.index("--steps") + 1] == "45"
        assert run.args[run.args.index("--eval-every") + 1] == "15"
    train = Path(warm.args[0]).read_text().splitlines()
    assert len(train) == 10  # ten 60 s clips make the 10 minutes

    exp.closer_budgets = {10: (BUDGETS[10], EVAL_EVERY[10])}  # expand-10m-s0's budget
    exp.runs.update((r.key, r) for r in exp.expansion_runs(10, 0))  # as if expand-10m-s0 had run
    assert [r.key for r in exp.closer_pair()] == ["lg-from-rw-10m-s0"]
    exp.closer_budgets = {10: (60, 20)}  # another budget: the earlier cold run does not stand in
    assert [r.key for r in exp.closer_pair()] == ["lg-from-rw-10m-s0", "lg-cold-10m-s0"]


def test_closer_budgets_option_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        adapter_experiments.main(["--out", str(tmp_path), "--closer-budgets", "10:45"])
    assert "--closer-budgets takes MINUTES:STEPS:EVERY" in capsys.readouterr().err


def test_a_work_folder_it_did_not_make_is_not_emptied(tmp_path, capsys):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        adapter_experiments.main(["--out", str(tmp_path / "out"), "--work", str(mine)])
    assert "holds files this script did not make" in capsys.readouterr().err
    assert (mine / "thesis.txt").read_text() == "keep me"
    assert adapter_experiments.work_folder_problem(tmp_path / "new") is None
    (mine / adapter_experiments.WORK_MARK).touch()  # a folder an earlier run made may be emptied again
    assert adapter_experiments.work_folder_problem(mine) is None


def run_result(key: str, history: list[tuple[int, float]]) -> dict:
    events = [{"event": "eval", "step": s, "dev_wer": w} for s, w in history]
    return Run(key, []).to_dict() | {"events": events, "best_wer": min(w for _, w in history)}


def test_report_averages_seeds_of_the_synthetic_eighth_language():
    results = {"phases": [], "runs": {
        "syn-pt-cold": run_result("syn-pt-cold", [(0, 1.2), (30, 0.16)]),  # a results file from before seeds
        "syn-pt-cold-s1": run_result("syn-pt-cold-s1", [(0, 1.2), (30, 0.14)]),
        "syn-pt-moe-s1": run_result("syn-pt-moe-s1", [(0, 0.8), (30, 0.13)]),
        "lg-from-rw-10m-s0": run_result("lg-from-rw-10m-s0", [(0, 1.1), (45, 0.9)]),
    }}
    text = report(results, None)
    assert "| syn-pt | 15m | cold | 0.150 | 2 |" in text
    assert "| syn-pt | 15m | moe | 0.130 | 1 |" in text
    assert "| lg | 10m | from-rw | 0.900 | 1 |" in text


def test_a_phase_past_its_deadline_skips_its_later_batches_and_says_which(speech, tmp_path, monkeypatch):
    exp = experiments(speech, tmp_path, jobs=1)
    ran: list[str] = []

    def run_together(name, runs, store):  # stands in for the child processes; the first batch uses up the time
        ran.extend(r.key for r in runs)
        exp.deadline = 0.0

    monkeypatch.setattr(exp, "run_together", run_together)
    exp.closer_budgets = {10: (45, 15)}
    assert exp.phase("closer-pair", exp.closer_pair(), 0, store="closer")
    assert ran == ["lg-from-rw-10m-s0"]
    assert {"phase": "closer-pair", "skipped": ["lg-cold-10m-s0"]} in exp.phases
    assert next(p for p in exp.phases if "runs" in p)["runs"] == ["lg-from-rw-10m-s0"]


def test_phases_run_in_the_order_named(speech, tmp_path, monkeypatch):
    exp = experiments(speech, tmp_path)
    ran: list[str] = []
    monkeypatch.setattr("lorawhisper_app.core.backbone.resolve_backbone", lambda model: None)
    monkeypatch.setattr(exp, "fill_closer_store", lambda: True)
    monkeypatch.setattr(exp, "phase", lambda name, runs, estimate, store: ran.append(name) or True)
    exp.main(["expand-90m-s1", "closer-pair", "expand-90m-s0"], use_shipped=True)
    assert ran == ["expand-90m-s1", "closer-pair", "expand-90m-s0"]


def test_the_eighth_synthetic_language_is_skipped_when_the_seven_did_not_run(speech, tmp_path, monkeypatch):
    exp = experiments(speech, tmp_path)
    ran: list[str] = []
    monkeypatch.setattr("lorawhisper_app.core.backbone.resolve_backbone", lambda model: None)
    monkeypatch.setattr(exp, "phase", lambda name, runs, estimate, store: ran.append(name) or name != "synthetic-7")
    exp.main(["synthetic-7", "synthetic-pt", "synthetic-pt-s1"], use_shipped=True)
    assert ran == ["synthetic-7"]
    assert {"phase": "synthetic-pt", "skipped": "synthetic-7 did not run"} in exp.phases


@pytest.mark.parametrize(("phases", "message"), [
    ("synthetic-pt,synthetic-7", "synthetic-pt builds on the adapters of synthetic-7, so it must come after it"),
    ("closer-pair,ship-ha,ship-rest", "closer-pair builds on the adapters of ship-ha and ship-rest"),
    ("closer-pair,closer-pair", "--phases names a phase twice"),
])
def test_an_order_that_cannot_work_is_refused(tmp_path, capsys, phases, message):
    with pytest.raises(SystemExit):
        adapter_experiments.main(["--out", str(tmp_path), "--phases", phases])
    assert message in capsys.readouterr().err


def test_curves_draw_every_seed_and_give_each_start_its_own_colour(tmp_path):
    results = {"phases": [], "runs": {
        "lg-cold-10m-s0": run_result("lg-cold-10m-s0", [(0, 1.6), (15, 0.9)]),
        "lg-cold-10m-s1": run_result("lg-cold-10m-s1", [(0, 1.6), (15, 0.95)]),
        "lg-from-rw-lr3e-4-10m-s0": run_result("lg-from-rw-lr3e-4-10m-s0", [(0, 1.1), (15, 0.85)]),
        "lg-from-rw-10m-s0": run_result("lg-from-rw-10m-s0", [(0, 1.1), (15, 0.93)]),
    }}
    report(results, tmp_path)
    svg = (tmp_path / "expansion-lg.svg").read_text()
    lines = {label: polyline for polyline, label in
             zip(re.findall(r"<polyline [^>]*>", svg), re.findall(r"<text [^>]*>([^<]+)</text>", svg)[-4:])}
    assert set(lines) == {"cold 10m", "cold 10m s1", "from-rw 10m", "from-rw-lr3e-4 10m"}
    assert 'stroke-dasharray="5,4"' in lines["cold 10m"] and 'stroke-dasharray="2,3"' in lines["cold 10m s1"]
    colours = {label: re.search(r'stroke="(#[0-9a-f]+)"', line).group(1) for label, line in lines.items()}
    assert colours["cold 10m"] == colours["cold 10m s1"]
    assert len({colours["cold 10m"], colours["from-rw 10m"], colours["from-rw-lr3e-4 10m"]}) == 3


def test_with_the_shipped_adapters_installed_a_ship_run_keeps_its_adapter_to_itself(speech, tmp_path):
    # `lorawhisper train --name ha` refuses to start while an adapter named ha is installed, which
    # --use-shipped has done: the run must not try to install over it.
    exp = experiments(speech, tmp_path)
    (shipped,) = exp.ship_runs(("ha",), use_shipped=True)
    assert "--no-install" in shipped.args
    assert shipped.args[shipped.args.index("--run-dir") + 1] == str(tmp_path / "work" / "runs" / "ship-ha")
    (trained,) = exp.ship_runs(("ha",), use_shipped=False)
    assert "--no-install" not in trained.args and trained.args[trained.args.index("--name") + 1] == "ha"
