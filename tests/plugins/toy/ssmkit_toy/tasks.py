"""A sequence backbone pooled into two classes; the kit does the loss, metrics, report and predictions."""

from typing import Any

from torch import Tensor

from ssmkit.models import DEFAULT_BACKBONE, BackboneConfig, ClassificationHead
from ssmkit.train.classification import ClassificationTask


class MajorityClassifier(ClassificationTask):
    data_links = {"n_classes": "n_classes", "d_input": "d_input"}

    def __init__(
        self, n_classes: int, d_input: int, backbone: BackboneConfig = DEFAULT_BACKBONE, **kwargs: Any
    ) -> None:
        """The backbone over the bits, mean-pooled into two logits.

        Args:
            n_classes: number of classes (the command line takes it from the data).
            d_input: channels per step (the command line takes it from the data).
            backbone: the sequence backbone's settings.
        """
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(backbone, d_input=d_input)
        self.head = ClassificationHead(self.backbone.d_model, n_classes, "mean")

    def forward(self, bits: Tensor) -> Tensor:
        """bits (B, L, 1) -> logits (B, 2)."""
        return self.head(self.backbone(bits))
