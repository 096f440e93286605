"""The `medical` plugin's entry point (imports no torch, timm, MONAI or lightning)."""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="medical",
    description="Medical imaging on MONAI: MedMamba classification (timm registry), U-Mamba segmentation",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "classify": Task.in_package(
            "ssmkit_medical",
            "MedicalClassifier",
            "MedicalImageData",
            "classify",
            "image classification from MedMNIST npz files, an image folder or synthetic organs (accuracy, AUC)",
        ),
        "segment": Task.in_package(
            "ssmkit_medical",
            "Segmenter",
            "SegmentationData",
            "segment",
            "2D/3D segmentation from image / mask folders or synthetic organs (Dice + CE, sliding-window inference)",
        ),
    },
)
