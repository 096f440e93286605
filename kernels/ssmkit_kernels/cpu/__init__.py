"""CPU fast paths: fused numba loops, parallel over (batch x channel blocks), compiled once and cached on disk."""

# Options of every kernel here. reassoc / contract let LLVM vectorise reductions over channels; no flag that assumes
# finite values. numpy's error model divides without a zero check (which would raise ZeroDivisionError), so loops that
# divide vectorise too: softplus 6.6 -> 1.7 ns and sigmoid 3.7 -> 1.2 ns an element on this project's machine.
JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"reassoc", "contract", "nsz"}}
