"""The `vision` plugin's entry point (imports no torch, timm or lightning)."""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="vision",
    description="Vision Mamba (Vim), Hydra and matched ViT image models (timm registry); image classification",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "classify": Task.in_package(
            "ssmkit_vision",
            "ImageClassifier",
            "ImageClassificationData",
            "classify",
            "image classification from an image folder, npz/csv arrays or scikit-learn's digits",
        ),
    },
    demo="ssmkit_vision.demo:run_demo",
)
