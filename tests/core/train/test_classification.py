import csv

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import TensorDataset

from ssmkit.data import BaseDataModule, DataError
from ssmkit.train.classification import ClassificationTask, classification_metric


class Blobs(BaseDataModule):
    classes = ["left", "middle", "right"]

    def build(self, stage):
        g = torch.Generator().manual_seed(self.seed)
        labels = torch.arange(60) % 3
        x = labels[:, None].float() + 0.3 * torch.randn(60, 2, generator=g)
        return {"train": TensorDataset(x[:45], labels[:45]), "val": TensorDataset(x[45:], labels[45:])}


class Linear(ClassificationTask):
    metrics = ("acc", "top2", "mcc", "f1")

    def __init__(self, n_classes: int = 3, **kwargs) -> None:
        super().__init__(n_classes=n_classes, **kwargs)
        self.layer = nn.Linear(2, n_classes)

    def forward(self, x):
        return self.layer(x)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_fit_test_predict_write_the_report_and_predictions(tmp_path):
    model, data = Linear(lr=0.05, warmup_steps=1), Blobs(batch_size=15)
    trainer = L.Trainer(max_epochs=3, logger=CSVLogger(tmp_path, name="run"), enable_progress_bar=False)
    trainer.fit(model, data)
    logged = trainer.callback_metrics
    assert {"val/acc", "val/top2", "val/mcc", "val/f1", "train/acc"} <= set(logged)
    trainer.test(model, data)
    trainer.predict(model, data)
    run = tmp_path / "run" / "version_0"
    for stage in ("val", "test"):
        assert (run / "plots" / f"{stage}_confusion.png").stat().st_size > 5_000
        confusion = rows(run / f"{stage}_confusion.csv")
        assert confusion[0] == ["true \\ predicted", *Blobs.classes]
        assert sum(int(n) for row in confusion[1:] for n in row[1:]) == 15  # the val split serves test
        assert [r[0] for r in rows(run / f"{stage}_per_class_accuracy.csv")] == ["class", *Blobs.classes]
    predictions = rows(run / "predictions.csv")
    assert predictions[0] == ["item", "predicted", "label", "p_left", "p_middle", "p_right"]
    assert len(predictions) == 16 and [r[2] for r in predictions[1:4]] == ["left", "middle", "right"]


def test_labels_outside_the_classes_are_a_data_error():
    with pytest.raises(DataError, match=r"train batch: sample 1 has label 3, outside \[0, n_classes=3\)"):
        Linear().shared_step((torch.zeros(2, 2), torch.tensor([0, 3])), "train")


def test_metric_names():
    assert classification_metric("top5", 3).top_k == 3  # capped at the number of classes
    with pytest.raises(ValueError, match="unknown classification metric 'auroc'"):
        classification_metric("auroc", 3)
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        Linear(n_classes=1)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_auc_is_sklearns_roc_auc_of_the_softmax_even_for_logits_inside_0_1(n_classes):
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % n_classes
    # logits all inside [0, 1]: taken as probabilities they rank classes differently than their softmax does
    logits = torch.rand(40, n_classes, generator=g) * 0.5 + 0.3 * torch.nn.functional.one_hot(labels, n_classes)
    metric = classification_metric("auc", n_classes)
    metric.update(logits[:25], labels[:25])
    metric.update(logits[25:], labels[25:])
    probabilities = logits.softmax(-1).numpy()
    expected = (
        roc_auc_score(labels.numpy(), probabilities[:, 1])
        if n_classes == 2
        else roc_auc_score(labels.numpy(), probabilities, multi_class="ovr", average="macro")
    )
    assert float(metric.compute()) == pytest.approx(expected, abs=1e-6)
