"""A sequence backbone pooled into two classes; the kit does the loss, metrics, report and predictions."""

from typing import Any

from torch import Tensor

from ssmkit.models import BackboneConfig, ClassificationHead
from ssmkit.train.classification import ClassificationTask


class MajorityClassifier(ClassificationTask):
    data_links = {"n_classes": "n_classes", "d_input": "d_input"}

    def __init__(self, n_classes: int, d_input: int, backbone: BackboneConfig | None = None, **kwargs: Any) -> None:
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(backbone, d_input=d_input)
        self.head = ClassificationHead(self.backbone.d_model, n_classes, "mean")

    def forward(self, bits: Tensor) -> Tensor:
        """bits (B, L, 1) -> logits (B, 2)."""
        return self.head(self.backbone(bits))
