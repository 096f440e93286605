"""Decoding throughput on the recurrent path: a 4-layer d_model=256 Mamba LM beside a same-depth Transformer
with a KV cache (the Mamba paper reports ~5x higher generation throughput for Mamba; this measures what this
machine gives). Both read the prompt in one parallel pass (`prefill_logits`: Mamba's scan returns its last
state, attention fills its KV cache), then generate greedily through `step`; batch 1 and 16, float32, no
gradients; each model's step eager and under `torch.compile` (its first calls, which compile, are not timed;
not in the quick run).

Reported per model: parameters, prompt seconds, generated tokens/s, and the bytes of its decoding state at
the end (constant in the length for Mamba, growing with it for the KV cache).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ssmkit.registry import create_model
from ssmkit.train.plots import markdown_table

# (preset, overrides): a Mamba block (expand 2) holds ~6.2 d^2 weights; attention 4 d^2 plus a gated MLP of ratio
# 0.75 (3 x 0.75 d^2) matches it, so both 4-layer d_model=256 models have about the same size.
MODELS = (("mamba_lm_small", {}), ("transformer_lm_small", {"mlp_ratio": 0.75}))
BATCHES = (1, 16)


def state_bytes(state: list[dict[str, torch.Tensor]]) -> int:
    return sum(t.numel() * t.element_size() for layer in state for t in layer.values())


@torch.no_grad()
def measure(
    name: str,
    prompt_len: int,
    new_tokens: int,
    vocab: int = 256,
    batch: int = 1,
    compiled: bool = False,
    **overrides: Any,
) -> dict[str, float | int | str]:
    """Greedy decoding of `batch` sequences (`compiled`: the step under torch.compile); tokens/s counts every
    sequence's tokens."""
    torch.manual_seed(0)
    model = create_model(name, vocab_size=vocab, **overrides).eval()
    step = torch.compile(model.step_logits) if compiled else model.step_logits
    prompt = torch.randint(0, vocab, (batch, prompt_len))
    logits, warm = model.prefill_logits(prompt[:, :8])  # first calls (JIT cache loads, compiling) stay out of the
    for _ in range(3):  # timings; a KV cache of a third length makes torch.compile's graph dynamic in it
        logits, warm = step(logits.argmax(-1), warm)
    start = time.perf_counter()
    logits, state = model.prefill_logits(prompt)
    prompt_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(new_tokens):
        logits, state = step(logits.argmax(-1), state)
    decode_s = time.perf_counter() - start
    return {
        "model": name,
        "step": "compiled" if compiled else "eager",
        "batch": batch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "prompt_tokens": prompt_len,
        "new_tokens": new_tokens,
        "prompt_s": prompt_s,
        "tokens_per_s": batch * new_tokens / decode_s,
        "state_mb": state_bytes(state) / 2**20,
    }


def run(quick: bool) -> list[dict[str, float | int | str]]:
    prompt_len, new_tokens = (32, 16) if quick else (4096, 1000)
    rows = [
        measure(name, prompt_len, new_tokens, batch=batch, compiled=compiled, **overrides)
        for compiled in ((False,) if quick else (False, True))
        for batch in BATCHES
        for name, overrides in MODELS
    ]
    for row in rows:
        print(f"generation {row['model']:22} {row['step']:8} batch {row['batch']:2}  prompt {row['prompt_s']:7.2f} s   "
              f"{row['tokens_per_s']:8.1f} tok/s   state {row['state_mb']:7.2f} MiB", flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict[str, float | int | str]]) -> str:
    first = rows[0]
    intro = (
        f"Greedy decoding: {first['prompt_tokens']} prompt tokens per sequence in one prefill pass, then "
        f"{first['new_tokens']} generated; tokens/s counts every sequence of the batch."
    )
    header = ["model", "step", "batch", "parameters", "prompt (s)", "generated tokens/s", "decoding state (MiB)"]
    cells = [
        [r["model"], r["step"], str(r["batch"]), f"{r['parameters']:,}", f"{r['prompt_s']:.2f}",
         f"{r['tokens_per_s']:.1f}", f"{r['state_mb']:.2f}"]
        for r in rows
    ]  # fmt: skip
    return intro + "\n\n" + markdown_table(header, cells) + "\n"
