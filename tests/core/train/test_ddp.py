"""Data parallelism through the real command on CPU: two processes (gloo) train as one process with the same global
batch does; Lightning's FSDP is refused on CPU (see README, "Running on a cluster")."""

import pytest

from ssmkit.train.cli import RunError, run_task

TASK = "synthetic.selective_copy"
# 3 epochs of the quick config: 12 optimiser steps of a global batch of 16 sequences
EPOCHS = ("--trainer.max_epochs", "3")


@pytest.mark.slow
def test_two_ddp_processes_train_as_one_with_the_same_global_batch(tmp_path, fit):
    """The baseline is DDP with one process, so that both runs read the samples through Lightning's distributed
    sampler (seed 0) in the same order: one process reads batches of 16, two read the two halves of each (8 each).
    Measured: weights within 1.2e-7, validation loss within 2.4e-7 (float32 rounding of the gradient average); one
    process without DDP (another sample order) ends 5e-3 away in weights and 4e-3 in validation loss, so the
    tolerances below (1e-5) would catch a wrong split or a wrong gradient average."""
    one = fit(TASK, tmp_path / "one", "--trainer.strategy", "ddp", "--trainer.devices", "1", "--data.batch_size", "16",
              *EPOCHS)  # fmt: skip
    two = fit(TASK, tmp_path / "two", "--trainer.strategy", "ddp", "--trainer.devices", "2", "--data.batch_size", "8",
              *EPOCHS)  # fmt: skip
    assert "distributed_backend=gloo" in two.output
    assert "All distributed processes registered. Starting with 2 processes" in two.output
    assert len(two.series("train/loss")) == len(one.series("train/loss")) == 12
    assert two.weight_difference(one) < 1e-5
    # the losses are logged reduced over the processes: the whole batch's and the whole validation split's
    assert two.series("train/loss") == pytest.approx(one.series("train/loss"), abs=1e-5)
    assert two.final("val/loss") == pytest.approx(one.final("val/loss"), abs=1e-5)
    assert two.final("val/acc") == pytest.approx(one.final("val/acc"), abs=1e-6)
    assert (two.folder / "checkpoints" / "last.ckpt").is_file()


def test_lightning_refuses_fsdp_on_cpu(tmp_path):
    """Lightning 2.6 checks the accelerator before anything starts (and torch 2.14's FullyShardedDataParallel itself
    refuses a machine without an accelerator: "FSDP needs a non-CPU accelerator device"). When this test fails,
    FSDP runs on CPU: give it an end-to-end test like the DDP one above."""
    flags = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "fsdp"]
    with pytest.raises(RunError, match="`fsdp` requires a GPU accelerator"):
        run_task("fit", TASK, flags, runs_dir=tmp_path, quick=True)
    assert not any(tmp_path.rglob("version_*"))
