"""`--warm-start fit`: the installed adapters scored by their loss on the new data. Real
backbone, the shipped Lingala, Kinyarwanda and Swahili adapters, real Luganda clips."""

from __future__ import annotations

import json

import pytest
import torch

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.backbone import load_backbone
from lorawhisper_app.core.decoding import SpecialTokens
from lorawhisper_app.core.training.batches import collate, make_example
from lorawhisper_app.core.training.config import TrainConfig
from lorawhisper_app.core.training.datasets import pcm16
from lorawhisper_app.core.training.fit_ranking import FRESH, Fit, choose_start, mean_loss, rank_by_fit
from lorawhisper_app.core.training.lora_setup import attach, trainable_state

from conftest import SHARED_SPEECH


@pytest.mark.integration
def test_fit_scores_each_start_as_training_would_begin_from_it(tmp_path) -> None:  # noqa: ANN001
    manifest = SHARED_SPEECH / "train" / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip(f"../shared/data/speech/train is absent: no {manifest}")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    rows = sorted((r for r in rows if r["language"] == "lg"), key=lambda r: r["duration_s"])[:4]
    backbone = load_backbone(None, "cpu", "float32")
    tokens = SpecialTokens.from_model(backbone.model, backbone.processor.tokenizer)
    examples = [
        make_example(r["id"], pcm16(load_audio(SHARED_SPEECH / "train" / r["path"])),
                     backbone.processor.tokenizer.encode(" " + r["text"], add_special_tokens=False),
                     tokens, "sw", False, backbone.model.config.max_target_positions)
        for r in rows
    ]
    batches = [collate(examples, backbone.model.config.num_mel_bins, backbone.device, tokens.eot)]
    installed = {i.name: i for i in AdapterStore(bundled_adapter_dir(), tmp_path / "user").list()}
    candidates = [installed[name] for name in ("ln", "rw", "sw")]
    config = TrainConfig(language="lg", name="new", warm_start="fit")

    peft = attach(backbone.model, config, warm=None, frozen=[])
    try:
        fresh = {k: v.detach().clone() for k, v in trainable_state(peft, "new").items()}
        fits = rank_by_fit(peft, config, candidates, batches, None)
        after = trainable_state(peft, "new")
        assert all(torch.equal(after[k], fresh[k]) for k in fresh), "scoring leaves the new adapter at its fresh start"
    finally:
        peft.unload()
    losses = {f.adapter: f.loss for f in fits}
    print({k: round(v, 3) for k, v in losses.items()})
    assert [f.loss for f in fits] == sorted(losses.values())
    assert losses["rw"] < losses["ln"], "Kinyarwanda, Luganda's Great Lakes Bantu neighbour, fits it better than Lingala"

    for info in candidates:  # the same figure as a training run that starts from the adapter
        warm = attach(backbone.model, config, warm=info, frozen=[])
        try:
            assert mean_loss(warm, batches, None) == pytest.approx(losses[info.name], rel=1e-5)
        finally:
            warm.unload()
    bare = mean_loss(backbone.model, batches, None)
    assert bare == pytest.approx(losses[FRESH], rel=1e-5), "a fresh LoRA start is the bare backbone"


def test_the_cli_prints_the_fit_table_and_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    from lorawhisper_app.cli.train_cmd import _Printer
    from lorawhisper_app.core.training.events import TrainEvent

    ranking = [{"adapter": FRESH, "language": "", "loss": 3.477}, {"adapter": "rw", "language": "rw", "loss": 4.024}]
    _Printer(as_json=False)(TrainEvent("fit", data={"ranking": ranking, "chosen": "rw", "clips": 16}))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fit to the new data (16 clips; loss per token, lower is better):"
    assert lines[1].split() == [FRESH, "3.477"] and lines[2].split() == ["rw", "rw", "4.024"]
    assert lines[3] == "starting from rw"


def test_fit_copies_a_close_adapter_and_starts_fresh_when_none_is_close() -> None:
    """The losses measured here: Kinyarwanda's fresh start 3.667, Luganda's adapter 4.094 (1.12 times,
    related: its copy helped), Swahili's 5.056 (1.38 times: its copy did far worse than fresh)."""
    fresh, lg, sw, ha = Fit(FRESH, "", 3.667), Fit("lg", "lg", 4.094), Fit("sw", "sw", 5.056), Fit("ha", "ha", 5.260)
    assert choose_start([fresh, lg, sw, ha]) == ("lg", "")
    chosen, why = choose_start([fresh, sw, ha])
    assert chosen == FRESH and why == ("the best-fitting adapter, sw, has 1.38 times a fresh start's loss; copies "
                                       "beyond 1.25 times (unrelated languages) measured worse than fresh")
    assert choose_start([Fit("sw", "sw", 2.0), fresh]) == ("sw", ""), "a copy that fits better than fresh is taken"
    assert choose_start([fresh]) == (FRESH, "no installed adapter can be a start")
