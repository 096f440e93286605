"""`--trainer.strategy sequence_parallel`: two CPU processes (gloo), each reading half of every sequence, train as one
process reading whole sequences does; a model that cannot split is refused by name before training; the batch
splitting and the checks on their own."""

import textwrap

import lightning as L
import pytest
import torch

from ssmkit.models.backbone import BackboneConfig, SequenceBackbone
from ssmkit.registry import list_mixers, mixer_class
from ssmkit.synthetic.tasks import InContextRegression, TokenSequenceTask
from ssmkit.train.sequence_parallel import check_splittable, split_batch

# A task whose every position is scored (the running sum of the tokens so far, mod the vocabulary: each chunk needs
# the state of the chunks before it), installed for the test as a plugin of its own: a package and the dist-info
# whose entry point `ssmkit fit` finds. Two layers: Mamba (conv halo, selective scan) then S5 (complex linear scan).
PLUGIN = """
import torch
from ssmkit.plugins import Plugin, Task
from ssmkit.synthetic.datamodules import TokenTaskData
from ssmkit.synthetic.tasks import InContextRegression, TokenSequenceTask


class RunningSumTask(TokenSequenceTask):
    def shared_step(self, batch, stage):
        self.log(f"{stage}/positions", float(batch[0].shape[1]))  # what each process reads
        return super().shared_step(batch, stage)


class RunningSumData(TokenTaskData):
    def __init__(self, seq_len: int = 16, vocab_size: int = 4, scored: int = 0, **data: int) -> None:
        super().__init__(**data)
        self.seq_len, self.vocab_size, self.scored = seq_len, vocab_size, scored

    def generate(self, n, generator):
        tokens = torch.randint(self.vocab_size, (n, self.seq_len), generator=generator)
        targets = tokens.cumsum(1) % self.vocab_size
        if self.scored:  # only the last `scored` positions count, as in selective copying
            targets[:, : -self.scored] = -100
        return tokens, targets


config = "sp_task:running_sum.yaml"
plugin = Plugin(
    name="sptest",
    description="a task for the sequence-parallel test",
    requires_ssmkit=">=0.1",
    tasks={"running_sum": Task("sp_task:RunningSumTask", "sp_task:RunningSumData", config, config, "running sum")},
)
"""
CONFIG = """
model:
  backbone: {d_model: 16, n_layers: 2, mixer: mamba, mixer_kwargs: {d_state: 4}, hybrid: {s5: [1]},
             hybrid_kwargs: {s5: {d_state: 4}}}
  warmup_steps: 2
data: {seq_len: 16, vocab_size: 4, n_train: 64, n_val: 32, batch_size: 16}
trainer: {max_epochs: 2, limit_train_batches: 4}
"""
TASK = "sptest.running_sum"


@pytest.fixture
def plugin_env(tmp_path):
    """PYTHONPATH for the subprocesses: the `sptest` plugin (package and entry point)."""
    site = tmp_path / "site"
    (site / "sp_task").mkdir(parents=True)
    (site / "sp_task" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (site / "sp_task" / "running_sum.yaml").write_text(CONFIG)
    info = site / "sp_task-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sp-task\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ssmkit.plugins]\nsptest = sp_task:plugin\n")
    return {"PYTHONPATH": str(site)}


@pytest.mark.slow
@pytest.mark.parametrize("scored", [0, 4], ids=["every position scored", "only the last 4 scored"])
def test_two_processes_on_halves_of_each_sequence_train_as_one(tmp_path, fit, plugin_env, scored):
    """The baseline is DDP with one process: the same sampler and batches (16 whole sequences of 16 tokens); the
    sequence-parallel run gives each of two processes the same 16 sequences, tokens 0-7 or 8-15. Measured over 8
    steps: weights within 5.2e-7, training losses within 1.2e-7, the same validation loss (float32 rounding: the
    gradients are averaged over two processes, the state crosses between them); one process without DDP (another
    sample order) ends 4.9e-3 away in weights, so the tolerances (1e-5) would catch a lost state or a wrong
    gradient average, and `positions` that the sequences were split at all. With only the last 4 positions scored,
    process 0's chunk scores none: the loss is `sequence_mean`'s share (0 there), not a mean over its chunk (NaN)."""
    flags = ("--data.scored", str(scored))
    one = fit(TASK, tmp_path / "one", "--trainer.strategy", "ddp", "--trainer.devices", "1", *flags, env=plugin_env)
    two = fit(TASK, tmp_path / "two", "--trainer.strategy", "sequence_parallel", "--trainer.devices", "2", *flags,
              env=plugin_env)  # fmt: skip
    assert "distributed_backend=gloo" in two.output
    assert "Starting with 2 processes" in two.output
    assert len(two.series("train/loss")) == len(one.series("train/loss")) == 8
    assert set(one.series("train/positions")) == {16.0} and set(two.series("train/positions")) == {8.0}
    assert two.weight_difference(one) < 1e-5
    assert two.series("train/loss") == pytest.approx(one.series("train/loss"), abs=1e-5)
    assert two.final("val/loss") == pytest.approx(one.final("val/loss"), abs=1e-5)
    assert two.final("val/acc") == pytest.approx(one.final("val/acc"), abs=1e-6)


@pytest.mark.slow
def test_a_mixer_that_cannot_split_is_refused_by_name_before_training(tmp_path, fit_command, plugin_env):
    status, message = fit_command(TASK, tmp_path, "--trainer.strategy", "sequence_parallel", "--trainer.devices",
                                  "1", "--model.backbone.bidirectional", "true", env=plugin_env)  # fmt: skip
    assert status == 2, message[-3000:]  # the command's answer to a bad setting, not a crash
    assert "BidirectionalMixer cannot read a sequence split across ranks" in message
    assert "mixers that can:" in message and "mamba" in message
    assert "Epoch 0" not in message  # refused before the first step
    assert not list(tmp_path.rglob("*.ckpt"))


def tiny_task(**backbone) -> TokenSequenceTask:
    return TokenSequenceTask(vocab_size=4, backbone=BackboneConfig(d_model=8, n_layers=1, **backbone))


def test_check_splittable_names_the_mixer_and_the_task():
    class Splits(TokenSequenceTask):
        sequence_dims = (1, 1)

    unsplittable = next(n for n in list_mixers() if not mixer_class(n).sequence_parallel)
    config = BackboneConfig(d_model=8, n_layers=2, mixer="s5", hybrid={unsplittable: [1]})
    name = type(SequenceBackbone(config, vocab_size=4).layers[1].mixer).__name__
    with pytest.raises(
        ValueError, match=f"^Splits cannot train with .*: {name} cannot read a sequence split across ranks"
    ):
        check_splittable(Splits(vocab_size=4, backbone=config))
    with pytest.raises(ValueError, match="BidirectionalMixer cannot read"):
        check_splittable(Splits(vocab_size=4, backbone=BackboneConfig(d_model=8, mixer="s5", bidirectional=True)))
    with pytest.raises(ValueError, match="InContextRegression does not declare `sequence_dims`"):
        check_splittable(InContextRegression(dim=2, backbone=BackboneConfig(d_model=8, mixer="mamba")))
    check_splittable(Splits(vocab_size=4, backbone=BackboneConfig(d_model=8, mixer="lru")))  # accepted


def test_split_batch_refuses_dims_that_do_not_match_the_batch():
    tokens = torch.zeros(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"does not match a batch of 2 entries"):
        split_batch([tokens, tokens], (1,))
    with pytest.raises(ValueError, match="a dict batch needs `sequence_dims` by key"):
        split_batch({"tokens": tokens}, (1,))
    assert split_batch((tokens, tokens), (None, None))[1] is tokens  # None: kept whole, the tuple stays a tuple


def test_tasks_log_reduced_over_processes_by_default(monkeypatch):
    """`TaskModule.log` / `log_dict` pass sync_dist=True unless told otherwise (the two-process losses rely on it)."""
    calls = []
    monkeypatch.setattr(L.LightningModule, "log", lambda self, name, value, **kw: calls.append((name, kw["sync_dist"])))
    task = tiny_task(mixer="s5")
    task.log("a", 1.0)
    task.log("b", 1.0, sync_dist=False)
    task.log_dict({"c": 1.0})
    assert calls == [("a", True), ("b", False), ("c", True)]
