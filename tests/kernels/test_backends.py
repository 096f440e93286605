"""The backend contract (ssmkit.testing.BackendContract): every backend of every op in the dispatch table that runs
on CPU tensors here (numba, the PyTorch fast paths, and the Triton kernels under the interpreter) against the op's
reference on the examples its module declares, forward and gradients, in float64 and float32."""

from ssmkit.testing import BackendContract


class TestEveryBackend(BackendContract):
    pass
