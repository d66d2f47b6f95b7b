"""Dev-set word error rate during training: batched greedy decoding without timestamps.

Faster than the engine's long-form decoder (no temperature fallback, no timestamp
rules), so it is what picks the best checkpoint; `lorawhisper evaluate` measures an
adapter the way the app will use it.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import WhisperForConditionalGeneration

from ..decoding import SpecialTokens
from ..metrics import corpus_rates
from .batches import Example, collate

MAX_NEW_TOKENS = 160


@torch.inference_mode()
def greedy_texts(
    model: WhisperForConditionalGeneration,
    examples: list[Example],
    tokens: SpecialTokens,
    decode_token: str | None,
    decode_text,  # noqa: ANN001 - Callable[[list[int]], str]
    *,
    batch_size: int = 16,
    autocast: torch.dtype | None = None,
) -> list[str]:
    device = model.device
    prompt = tokens.prompt(decode_token, timestamps=False)
    vocab = model.config.vocab_size
    blocked = torch.zeros(vocab, dtype=torch.bool, device=device)
    blocked[[t for t in tokens.suppress if 0 <= t < vocab]] = True
    blocked[tokens.eot + 1 :] = True  # special and timestamp tokens: text and the end token only
    texts: list[str] = []
    amp = torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    with amp:
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            feats = collate(chunk, model.config.num_mel_bins, device, tokens.eot).features.to(model.dtype)
            enc = model.model.encoder(feats).last_hidden_state
            ids = torch.tensor([prompt] * len(chunk), device=device)
            out = model.model.decoder(input_ids=ids, encoder_hidden_states=enc, use_cache=True)
            done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
            rows: list[torch.Tensor] = []
            for _ in range(MAX_NEW_TOKENS):
                logits = model.proj_out(out.last_hidden_state[:, -1]).float()
                logits.masked_fill_(blocked, -torch.inf)
                nxt = logits.argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, tokens.eot), nxt)
                rows.append(nxt)
                done |= nxt == tokens.eot
                if bool(done.all()):
                    break
                out = model.model.decoder(
                    input_ids=nxt[:, None], encoder_hidden_states=enc, cache=out.cache, use_cache=True
                )
            generated = torch.stack(rows, 1).tolist()
            for seq in generated:
                cut = seq.index(tokens.eot) if tokens.eot in seq else len(seq)
                texts.append(decode_text(seq[:cut]).strip())
    return texts


def dev_wer(references: list[str], hypotheses: list[str]) -> float:
    return corpus_rates(zip(references, hypotheses))[0]
