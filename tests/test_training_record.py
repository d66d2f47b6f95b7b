"""The training record of an adapter's metadata as the details pane shows it: readable rows
for what the trainer writes, and the JSON of whatever else an adapter brings."""

from __future__ import annotations

import json

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.training.fit_ranking import FRESH
from lorawhisper_app.gui.training_record import training_rows


def test_a_shipped_adapters_record_reads_as_sentences(tmp_path) -> None:
    store = AdapterStore(bundled_adapter_dir(), tmp_path)
    sw = next(info for info in store.list() if info.name == "sw")
    record = sw.meta.training_data
    rows = dict(training_rows(record))
    assert list(rows) == ["Trained on", "Dev set", "Left out", "Started from", "Steps", "Settings", "Dev WER by step",
                          "Whisper hears it as", "Dev WER measured by"]
    train = record["train"]
    assert rows["Trained on"] == f"{train['clips']} clips, {train['minutes']:.1f} min (jsonl · {record['source']})"
    assert rows["Started from"] == f"a copy of the {record['warm_start']} adapter"
    assert rows["Steps"] == f"{record['steps']} of {record['planned_steps']} planned, best dev WER at step {record['best_step']}"
    assert rows["Dev WER by step"].count(" · ") == len(record["history"]) - 1
    assert rows["Whisper hears it as"].startswith("Swahili (sw) 75 %, Yoruba (yo) 8 %")
    assert not any("{" in text for text in rows.values())  # no JSON left


def test_an_early_stop_a_fit_start_and_odd_or_unknown_values() -> None:
    record = {
        "train": {"clips": 1, "minutes": 0.5}, "dev": {"clips": 12, "minutes": 2.0}, "dev_given": False,
        "problems": {"missing transcript": 2, "duplicate": 1},
        "warm_start": "lg", "warm_rank": 8, "warm_start_fit": {FRESH: 3.667, "sw": 5.056, "lg": 4.094},
        "steps": 40, "planned_steps": 100, "best_step": 20,
        "history": [{"step": 0, "dev_wer": 1.2}, {"step": "twenty"}],
        "lid_profile": ["sw"],
        "router": {"dev_accuracy": 1.0},
        "made_with": {"gpu": "H200"},
    }
    rows = training_rows(record)
    assert rows[:4] == [
        ("Trained on", "1 clip, 0.5 min"),
        ("Dev set", "12 clips, 2.0 min, held out from the training data"),
        ("Left out", "missing transcript: 2, duplicate: 1"),
        ("Started from", "a copy of the lg adapter, its 8 strongest directions a layer (chosen by fit; loss per "
                         "token on a sample of the data: fresh 3.67, lg 4.09, sw 5.06)"),
    ]
    assert rows[4] == ("Steps", "40 of 100 planned (stopped early), best dev WER at step 20")
    # a value of a shape this version does not expect is shown as it is, not dropped
    assert ("Dev WER by step", f"history: {json.dumps(record['history'])}") in rows
    assert ("Whisper hears it as", 'lid_profile: ["sw"]') in rows
    assert rows[-1] == ("Training: made_with", '{"gpu": "H200"}') and all(label != "Training: router" for label, _ in rows)
    assert training_rows({"warm_start": "none"}) == [("Started from", "fresh (the standard LoRA initialisation)")]
