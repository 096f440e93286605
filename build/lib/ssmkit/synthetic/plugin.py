"""The `synthetic` plugin, registered by the core distribution itself: the embedded default tasks."""

from ssmkit.plugins import Plugin, Task

_PKG = "ssmkit.synthetic"


plugin = Plugin(
    name="synthetic",
    description="Synthetic sequence tasks: the yardstick between mixers (no data to download)",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "selective_copy": Task.in_package(
            _PKG,
            "TokenSequenceTask",
            "SelectiveCopyData",
            "selective_copy",
            "copy the data tokens scattered among noise, in order (Mamba paper)",
        ),
        "associative_recall": Task.in_package(
            _PKG,
            "TokenSequenceTask",
            "AssociativeRecallData",
            "associative_recall",
            "multi-query associative recall, MQAR (Zoology)",
        ),
        "induction_heads": Task.in_package(
            _PKG,
            "TokenSequenceTask",
            "InductionHeadsData",
            "induction_heads",
            "recall the token that followed the trigger earlier in the sequence (H3 paper)",
        ),
        "icl_regression": Task.in_package(
            _PKG,
            "InContextRegression",
            "ICLRegressionData",
            "icl_regression",
            "in-context linear regression, reported beside least squares",
        ),
        "sequential_digits": Task.in_package(
            _PKG,
            "SequenceClassifier",
            "SequentialDigitsData",
            "sequential_digits",
            "scikit-learn's 8x8 digits read pixel by pixel, 10 classes",
        ),
    },
    demo=f"{_PKG}.demo:run_demo",
)
