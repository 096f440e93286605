"""Exporting a language model's recurrent step (the decoding graph): the `torch.export` program and the ONNX graph
(run by onnxruntime, the state fed back) step as eager does. Exporting picks the best backend the exporter can trace
(numba's kernels are opaque calls, so the step runs on its PyTorch path inside the graph); the ONNX graph holds the
complex states of S5, LRU and S4D as (real, imaginary) pairs."""

import pytest
import torch

from ssmkit.models.export import DecodeStep, OnnxExportError, export_step_onnx, onnx_state
from ssmkit.models.lm import LanguageModel
from ssmkit.registry import mixer_class

MIXERS = ["mamba", "mamba2", "s5", "lru", "s4d"]


def tiny_lm(mixer: str) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(11, 16, 2, mixer=mixer, mixer_kwargs=mixer_class(mixer).tiny_kwargs).eval()


@pytest.mark.parametrize("mixer", MIXERS)
def test_the_exported_step_equals_eager(mixer):
    lm = tiny_lm(mixer)
    tokens = torch.randint(0, 11, (4, 2))
    exported = torch.export.export(DecodeStep(lm), (tokens[0], lm.allocate_state(2))).module()
    state_eager, state_exported = lm.allocate_state(2), lm.allocate_state(2)
    for t in tokens:
        want, state_eager = lm.step_logits(t, state_eager)
        got, state_exported = exported(t, state_exported)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mixer", MIXERS)
def test_the_onnx_step_equals_eager(mixer, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    lm = tiny_lm(mixer)
    path = export_step_onnx(lm, tmp_path / "step.onnx", batch_size=2)
    assert [p.name for p in tmp_path.iterdir()] == ["step.onnx"]  # no temporary file left
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = lm.allocate_state(2)  # eager's, which `step_logits` may update in place
    feeds = {k: v.numpy() for k, v in onnx_state(lm.allocate_state(2)).items()}
    assert [i.name for i in session.get_inputs()] == ["tokens", *feeds]
    assert [o.name for o in session.get_outputs()] == ["logits", *onnx_state(state, "next_state")]
    for t in torch.randint(0, 11, (4, 2)):
        want, state = lm.step_logits(t, state)
        logits, *next_state = session.run(None, {"tokens": t.numpy(), **feeds})
        feeds = dict(zip(feeds, next_state, strict=True))
        torch.testing.assert_close(torch.from_numpy(logits), want, atol=1e-5, rtol=1e-5)
    for name, want in onnx_state(state).items():
        torch.testing.assert_close(torch.from_numpy(feeds[name]), want, atol=1e-5, rtol=1e-5)


def test_a_step_that_does_not_export_names_its_mixer(tmp_path):
    pytest.importorskip("onnxscript")
    lm = tiny_lm("longvq")  # a nearest-codebook lookup (cdist), which has no ONNX function
    with pytest.raises(OnnxExportError, match="LongVQ does not export to ONNX: .*cdist"):
        export_step_onnx(lm, tmp_path / "step.onnx")
    assert not list(tmp_path.iterdir())
