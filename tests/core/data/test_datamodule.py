import lightning as L
import pytest
import torch
from torch.utils.data import TensorDataset

from ssmkit.data import BaseDataModule, DataError, PadCollate, pad_sequences, window_starts
from ssmkit.train.module import TaskModule


class Counting(BaseDataModule):
    """Builds train and val (and test when asked to); counts its builds."""

    def __init__(self, with_test: bool = False, n_val: int = 4, **loader) -> None:
        super().__init__(**loader)
        self.with_test, self.n_val, self.builds = with_test, n_val, []

    def build(self, stage):
        self.builds.append(stage)
        x = torch.arange(10.0)
        splits = {"train": TensorDataset(x), "val": TensorDataset(x[: self.n_val])}
        return {**splits, "test": TensorDataset(x[:3])} if self.with_test else splits


def test_loaders_shuffle_and_drop_only_in_training():
    data = Counting(batch_size=4)
    data.setup("fit")
    train, val = data.train_dataloader(), data.val_dataloader()
    assert train.drop_last and len(list(train)) == 2 and not val.drop_last and len(list(val)) == 1
    assert type(train.sampler).__name__ == "RandomSampler"  # torchdata's stateful one
    assert type(val.sampler).__name__ == "SequentialSampler"


def test_missing_test_and_predict_splits_are_served_by_val_and_said(caplog):
    data = Counting(batch_size=4)
    data.setup("fit")
    data.setup("test")
    data.setup("test")
    assert data.builds == ["fit", "test"]  # once per stage, even when the test split stays missing
    assert data.serving_split("test")[0] == "val" and data.serving_split("predict")[0] == "val"
    with_test = Counting(with_test=True, batch_size=4)
    with_test.setup("fit")
    assert with_test.serving_split("predict")[0] == "test" and with_test.builds == ["fit"]
    with pytest.raises(RuntimeError, match="has no 'train' split"):
        Counting(batch_size=4).serving_split("train")


def test_an_empty_split_is_a_data_error():
    with pytest.raises(DataError, match="Counting: the val split"):
        Counting(n_val=0).setup("fit")
    with pytest.raises(ValueError, match="batch_size"):
        Counting(batch_size=0)


def test_pad_collate_pads_right_and_keeps_lengths():
    padded, lengths = pad_sequences([torch.tensor([1, 2, 3]), torch.tensor([4])], pad_value=9)
    assert padded.tolist() == [[1, 2, 3], [4, 9, 9]] and lengths.tolist() == [3, 1]
    tokens, lengths, labels = PadCollate(0)([(torch.ones(2, 5), 1), (torch.ones(4, 5), 0)])
    assert tokens.shape == (2, 4, 5) and lengths.tolist() == [2, 4] and labels.tolist() == [1, 0]
    assert bool((tokens[0, 2:] == 0).all())


def test_window_starts_skip_invalid_rows():
    valid = torch.ones(10, dtype=torch.bool).numpy()
    valid[4] = False
    assert window_starts(valid, 3, 1, "s").tolist() == [0, 1, 5, 6, 7]
    with pytest.raises(DataError, match="^s: 10 rows is too few"):
        window_starts(valid, 11, 1, "s")


def test_data_error_names_file_record_and_position():
    error = DataError("'J' is not a nucleotide", source="train.fa", record="chr2", position=40)
    assert str(error) == "train.fa, record chr2, position 40: 'J' is not a nucleotide" and isinstance(error, ValueError)


class Regression(TaskModule):
    def __init__(self) -> None:
        super().__init__(lr=0.1, warmup_steps=1)
        self.layer = torch.nn.Linear(1, 1)

    def shared_step(self, batch, stage):
        return (self.layer(batch[0][:, None]) - 2 * batch[0][:, None]).square().mean()


class KillAt(L.Callback):
    """Saves a checkpoint after training step `step`, then stops the run as a kill -9 would."""

    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            raise RuntimeError("killed")


def test_a_run_resumed_mid_epoch_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    """The loaders are stateful: the resumed epoch continues the same shuffled order (a plain DataLoader does not)."""

    def fit(callbacks=(), ckpt_path=None):
        L.seed_everything(0)
        model = Regression()
        trainer = L.Trainer(max_epochs=3, callbacks=list(callbacks), logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
        trainer.fit(model, Counting(batch_size=2), ckpt_path=ckpt_path)
        return model.layer.weight.detach().clone()

    uninterrupted = fit()
    with pytest.raises(RuntimeError, match="killed"):
        fit([KillAt(7, tmp_path / "mid.ckpt")])  # step 7: epoch 1, batch 2 of 5
    torch.testing.assert_close(fit(ckpt_path=tmp_path / "mid.ckpt"), uninterrupted, rtol=0, atol=0)
