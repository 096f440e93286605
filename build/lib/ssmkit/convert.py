"""Interop with checkpoints people already have: Hugging Face transformers' `MambaForCausalLM` and
`Mamba2ForCausalLM` <-> ssmkit `LanguageModel`s built from `mamba` / `mamba2` blocks.

    hf = MambaForCausalLM.from_pretrained("path/to/saved/mamba-130m-hf", local_files_only=True)  # no download
    lm = ssmkit.convert.from_transformers(hf)          # lm(input_ids) -> logits (B, L, V)
    hf2 = ssmkit.convert.to_transformers(lm)

The architectures are the same computation (pre-norm residual blocks, RMSNorm, the Mamba / Mamba-2 mixer,
gated RMSNorm for Mamba-2), so conversion is a renaming of parameters; a configuration that ssmkit does not
implement is refused with the reason rather than converted approximately. transformers is imported only
here, on use.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ssmkit.models.lm import LanguageModel

# ssmkit name <-> transformers name, for the parameters whose names differ.
_RENAMES = {"backbone.embedding.weight": "backbone.embeddings.weight", "lm_head.proj.weight": "lm_head.weight"}
_EPS = 1e-5  # ssmkit's RMSNorm epsilon


def from_transformers(hf_model: nn.Module) -> LanguageModel:
    """An ssmkit `LanguageModel` with the weights of a transformers Mamba / Mamba-2 causal LM."""
    cfg = hf_model.config
    _check_supported(cfg)
    lm = LanguageModel(
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.num_hidden_layers,
        mixer=cfg.model_type,
        mixer_kwargs=_mixer_kwargs(cfg),
        tie_embeddings=cfg.tie_word_embeddings,
    )
    inverse = {hf: ours for ours, hf in _RENAMES.items()}
    state = {inverse.get(name, name): tensor for name, tensor in hf_model.state_dict().items()}
    lm.load_state_dict(state, strict=True)
    return lm.to(next(hf_model.parameters()).dtype)


def to_transformers(lm: LanguageModel) -> nn.Module:
    """A transformers `MambaForCausalLM` / `Mamba2ForCausalLM` with the weights of an ssmkit LanguageModel
    made only of `mamba` or only of `mamba2` blocks without MLPs."""
    import transformers

    mixers = {type(block.mixer).__name__ for block in lm.backbone.layers}
    if len(mixers) != 1 or mixers - {"Mamba", "Mamba2"} or any(b.mlp is not None for b in lm.backbone.layers):
        raise ValueError(f"only pure Mamba or Mamba-2 stacks without MLPs convert; this model has {sorted(mixers)}")
    mixer = lm.backbone.layers[0].mixer
    tied = lm.lm_head.proj.weight is lm.backbone.embedding.weight
    common = {
        "vocab_size": lm.backbone.vocab_size,
        "hidden_size": lm.backbone.d_model,
        "num_hidden_layers": len(lm.backbone.layers),
        "state_size": mixer.d_state,
        "conv_kernel": mixer.d_conv,
        "expand": mixer.d_inner // lm.backbone.d_model,
        "use_conv_bias": mixer.conv1d.bias is not None,
        "use_bias": mixer.in_proj.bias is not None,
        "layer_norm_epsilon": _EPS,
        "tie_word_embeddings": tied,
    }
    if mixers == {"Mamba"}:
        config = transformers.MambaConfig(**common, time_step_rank=mixer.dt_rank)
        hf = transformers.MambaForCausalLM(config)
    else:
        extra = {"head_dim": mixer.headdim, "num_heads": mixer.nheads, "n_groups": mixer.ngroups}
        config = transformers.Mamba2Config(**common, **extra, chunk_size=mixer.chunk_size)
        hf = transformers.Mamba2ForCausalLM(config)
    state = {_RENAMES.get(name, name): tensor for name, tensor in lm.state_dict().items()}
    hf.load_state_dict(state, strict=True)
    return hf.to(next(lm.parameters()).dtype)


def _mixer_kwargs(cfg: Any) -> dict[str, Any]:
    common = {
        "d_state": cfg.state_size,
        "d_conv": cfg.conv_kernel,
        "expand": cfg.expand,
        "conv_bias": cfg.use_conv_bias,
        "bias": cfg.use_bias,
    }
    if cfg.model_type == "mamba":
        return {**common, "dt_rank": cfg.time_step_rank}
    return {**common, "headdim": cfg.head_dim, "ngroups": cfg.n_groups, "chunk_size": cfg.chunk_size}


def _check_supported(cfg: Any) -> None:
    """Refuse, with the reason, configurations that ssmkit's blocks do not compute."""
    kind = getattr(cfg, "model_type", None)
    problems = []
    if kind not in ("mamba", "mamba2"):
        problems.append(f"model_type {kind!r} (expected 'mamba' or 'mamba2')")
    else:
        if cfg.hidden_act != "silu":
            problems.append(f"hidden_act={cfg.hidden_act!r} (ssmkit uses silu)")
        if not math.isclose(cfg.layer_norm_epsilon, _EPS):
            problems.append(f"layer_norm_epsilon={cfg.layer_norm_epsilon} (ssmkit uses {_EPS})")
    if kind == "mamba2":
        if cfg.num_heads * cfg.head_dim != cfg.expand * cfg.hidden_size:
            problems.append("num_heads * head_dim != expand * hidden_size")
        if tuple(cfg.time_step_limit) != (0.0, float("inf")):
            problems.append(f"time_step_limit={cfg.time_step_limit} (ssmkit applies no dt clamp)")
    if problems:
        raise ValueError("cannot convert this transformers model: " + "; ".join(problems))
