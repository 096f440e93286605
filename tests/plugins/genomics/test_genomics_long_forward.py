"""`python -m ssmkit_genomics.long_forward` at a tiny length: the pretrain model, inference mode, a JSON record."""

import copy
import json

import torch

from ssmkit_genomics.long_forward import build_model, main
from ssmkit_genomics.tokenizer import VOCAB_SIZE, A, T


def test_the_model_is_the_pretrain_configs_with_max_length_set():
    model = build_model(4096, d_model=16)
    assert model.max_length == 4096 and model.backbone.config.mixer == "hyena" and model.backbone.d_model == 16
    assert model.backbone.config.mixer_kwargs["l_max"] == 4096 and not model.training


def test_long_forward_writes_time_and_memory(tmp_path, capsys):
    assert main(["--length", "2048", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "long_forward.json").read_text())
    assert result["length"] == 2048 and result["logits_shape"] == [1, 2048, VOCAB_SIZE] and result["finite"]
    assert result["wall_s"] > 0 and result["cpu_s"] > 0 and result["tokens_per_s"] > 0
    assert result["peak_extra_mib"] is None or 0 <= result["peak_extra_mib"] <= result["peak_rss_mib"]
    assert "2,048 tokens" in capsys.readouterr().out


def test_the_bfloat16_forward_follows_the_float32_one(tmp_path):
    """The long path (channel groups, chunks) in bfloat16 gives the float32 model's next-base distribution to bf16
    rounding; the command records the dtype."""
    torch.manual_seed(0)
    model = build_model(4096, d_model=16)
    for block in model.backbone.layers:
        block.mixer.grouped_from = 0
    tokens = torch.randint(A, T + 1, (1, 4096))
    with torch.inference_mode():
        want = model(tokens).log_softmax(-1).exp()
        got = copy.deepcopy(model).bfloat16()(tokens).float().log_softmax(-1).exp()
    assert (got - want).abs().max() < 0.05 and (got - want).abs().mean() < 5e-3
    assert main(["--length", "1024", "--dtype", "bfloat16", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "long_forward.json").read_text())
    assert result["dtype"] == "bfloat16" and result["finite"]
