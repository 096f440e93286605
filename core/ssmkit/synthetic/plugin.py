"""The `synthetic` plugin, registered by the core distribution itself: the embedded default tasks."""

from ssmkit.plugins import Plugin, Task

_PKG = "ssmkit.synthetic"


def _task(module: str, datamodule: str, name: str, description: str) -> Task:
    return Task(
        module=f"{_PKG}.tasks:{module}",
        datamodule=f"{_PKG}.datamodules:{datamodule}",
        config=f"{_PKG}:configs/{name}.yaml",
        quick_config=f"{_PKG}:configs/{name}_quick.yaml",
        description=description,
    )


plugin = Plugin(
    name="synthetic",
    description="Synthetic sequence tasks: the yardstick between mixers (no data to download)",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "selective_copy": _task(
            "TokenSequenceTask",
            "SelectiveCopyData",
            "selective_copy",
            "copy the data tokens scattered among noise, in order (Mamba paper)",
        ),
        "associative_recall": _task(
            "TokenSequenceTask",
            "AssociativeRecallData",
            "associative_recall",
            "multi-query associative recall, MQAR (Zoology)",
        ),
        "induction_heads": _task(
            "TokenSequenceTask",
            "InductionHeadsData",
            "induction_heads",
            "recall the token that followed the trigger earlier in the sequence (H3 paper)",
        ),
        "icl_regression": _task(
            "InContextRegression",
            "ICLRegressionData",
            "icl_regression",
            "in-context linear regression, reported beside least squares",
        ),
        "sequential_digits": _task(
            "SequenceClassifier",
            "SequentialDigitsData",
            "sequential_digits",
            "scikit-learn's 8x8 digits read pixel by pixel, 10 classes",
        ),
    },
    demo=f"{_PKG}.demo:run_demo",
)
