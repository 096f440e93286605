"""ssmkit beside the peer a CPU user would otherwise pick: transformers' `MambaForCausalLM` / `Mamba2ForCausalLM`
(whose CPU path is its PyTorch reference), on the same weights (`ssmkit.convert.from_transformers`).

Per model: training forward + backward of a batch, and greedy decoding after a prompt (transformers: `generate`
with its cache; ssmkit: `LanguageModel.generate`, prefill then the recurrent step), best of `repeats`, measured
side by side in one run. Skipped (a row saying so) when transformers is not installed (it is in the dev extra).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ssmkit.bench.measure import best_time
from ssmkit.train.plots import markdown_table

# 4 layers, d_model 256: the generation bench's size
SHAPES = {
    "quick": {"hidden_size": 32, "num_hidden_layers": 2, "batch": 2, "length": 64, "prompt": 16, "new": 8},
    "full": {"hidden_size": 256, "num_hidden_layers": 4, "batch": 4, "length": 256, "prompt": 256, "new": 64},
}


def hf_model(kind: str, hidden_size: int, num_hidden_layers: int) -> Any:
    import transformers

    common = {"vocab_size": 256, "hidden_size": hidden_size, "state_size": 16, "num_hidden_layers": num_hidden_layers}
    if kind == "mamba":
        return transformers.MambaForCausalLM(transformers.MambaConfig(**common, expand=2))
    config = transformers.Mamba2Config(**common, expand=2, head_dim=16, num_heads=hidden_size * 2 // 16, n_groups=1)
    return transformers.Mamba2ForCausalLM(config)


def measure(kind: str, shape: dict[str, int], repeats: int) -> dict[str, Any]:
    from ssmkit.convert import from_transformers

    torch.manual_seed(0)
    hf = hf_model(kind, shape["hidden_size"], shape["num_hidden_layers"])
    ours = from_transformers(hf)
    tokens = torch.randint(0, 256, (shape["batch"], shape["length"]))
    prompt = tokens[:1, : shape["prompt"]]
    train = {
        "transformers": lambda: hf(tokens).logits,
        "ssmkit": lambda: ours(tokens),
    }
    row: dict[str, Any] = {"model": kind, "parameters": sum(p.numel() for p in hf.parameters())}
    for name, call in train.items():
        call().sum().backward()  # first calls (numba's JIT cache loads) stay out of the timings
        row[f"{name}_train_s"] = best_time(call, backward=True, repeats=repeats)
    hf.eval(), ours.eval()
    decode = {
        "transformers": lambda: hf.generate(
            prompt, max_new_tokens=shape["new"], do_sample=False, min_new_tokens=shape["new"]
        ),
        "ssmkit": lambda: ours.generate(prompt, shape["new"]),
    }
    with torch.no_grad():
        for name, call in decode.items():
            call()
            row[f"{name}_decode_s"] = _best_wall(call, repeats)
    row["train_speedup"] = row["transformers_train_s"] / row["ssmkit_train_s"]
    row["decode_speedup"] = row["transformers_decode_s"] / row["ssmkit_decode_s"]
    row.update(shape)
    return row


def _best_wall(call: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool) -> list[dict[str, Any]]:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return [{"model": kind, "skipped": "transformers is not installed"} for kind in ("mamba", "mamba2")]
    shape = SHAPES["quick" if quick else "full"]
    rows = [measure(kind, shape, 1 if quick else 3) for kind in ("mamba", "mamba2")]
    for r in rows:
        print(f"transformers peer {r['model']:7} train x{r['train_speedup']:.2f}   decode x{r['decode_speedup']:.2f}",
              flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    measured = [r for r in rows if "skipped" not in r]
    if not measured:
        return "## Beside transformers\n\nSkipped: " + rows[0]["skipped"]
    first = measured[0]
    intro = (
        f"Same weights (`ssmkit.convert`), {first['num_hidden_layers']} layers, d_model {first['hidden_size']}: "
        f"training forward + backward of {first['batch']} x {first['length']} tokens; greedy decoding of "
        f"{first['new']} tokens after a {first['prompt']}-token prompt, batch 1."
    )
    header = [
        "model",
        "parameters",
        "train: transformers / ssmkit (s)",
        "speed-up",
        "decode: transformers / ssmkit (s)",
        "speed-up",
    ]
    cells = [
        [
            r["model"],
            f"{r['parameters']:,}",
            f"{r['transformers_train_s']:.3f} / {r['ssmkit_train_s']:.3f}",
            f"{r['train_speedup']:.2f}x",
            f"{r['transformers_decode_s']:.3f} / {r['ssmkit_decode_s']:.3f}",
            f"{r['decode_speedup']:.2f}x",
        ]
        for r in measured
    ]
    return "\n".join(["## Beside transformers", "", intro, "", markdown_table(header, cells)])
