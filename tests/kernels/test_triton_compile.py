"""Every Triton kernel compiles for an NVIDIA H100 (sm_90) on this GPU-less machine.

The interpreter runs a kernel as numpy, so it accepts code the GPU compiler rejects (return types that differ
between branches, unsupported ops). Here each kernel goes through Triton's real pipeline, Triton IR to PTX and
ptxas (bundled with triton) to a cubin, for a GPU target given by hand: nothing is launched. It has to happen in a
process where triton runs without the interpreter, so the test runs this file as a script. Tiles are the small
ones the launch code picks for small n and p (and 16 for SSD), to keep ptxas fast; float64 and absent-input
variants are included. About 25 s of CPU with a cold Triton cache, seconds once it is warm.
"""

from __future__ import annotations

import os
import subprocess
import sys

FLAGS = {"HAS_D": True, "HAS_Z": True, "HAS_BIAS": True, "SOFTPLUS": True}


def kernels() -> list[tuple[object, dict[str, str], dict[str, object]]]:
    """(kernel, pointer dtypes that are not float32 ("*": all others), constexprs) for each variant compiled."""
    from ssmkit_kernels.triton import linear_scan, selective_scan, ssd_scan

    scan = {"BLOCK_D": 8, "BLOCK_N": 16, "BLOCK_L": 32}  # what the launch code picks for n <= 16
    half = {"u_ptr": "bf16", "delta_ptr": "bf16", "z_ptr": "bf16", "y_ptr": "bf16"}
    variants = [
        (selective_scan._selective_scan_fwd, half, FLAGS | scan | {"SAVE_STATES": True}),
        (selective_scan._selective_scan_bwd, {}, FLAGS | scan | {"B_VARIES": True, "C_VARIES": False}),
        (selective_scan._selective_state_update, {}, FLAGS | {"BLOCK_D": 64, "BLOCK_N": 16}),
        (ssd_scan._ssd_fwd, {}, {"HAS_INIT": True, "SAVE_STATES": True, "BLOCK_T": 16, "BP": 16, "BN": 16}),
        (ssd_scan._ssd_bwd, {}, {"BLOCK_T": 16, "BP": 16, "BN": 16}),
        (ssd_scan._ssd_bwd, {"*": "fp64"}, {"BLOCK_T": 16, "BP": 16, "BN": 16}),  # tl.dot in float64
    ]
    absent = {"D_ptr": None, "z_ptr": None, "bias_ptr": None, "dz_ptr": None} | {flag: False for flag in FLAGS}
    variants.append(
        (selective_scan._selective_scan_bwd, {"*": "fp64"}, absent | scan | {"B_VARIES": False, "C_VARIES": True})
    )
    for kernel in (linear_scan._linear_scan_fwd, linear_scan._linear_scan_bwd):
        for complex_ in (False, True):
            meta = {"HAS_H0": True, "HAS_RESETS": True, "COMPLEX": complex_, "BLOCK_L": 64, "BLOCK_D": 32}
            variants.append((kernel, {"resets_ptr": "i1"}, meta))
    return variants


def compile_all(capabilities: list[int]) -> None:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    for capability, (kernel, dtypes, constexprs) in ((c, k) for c in capabilities for k in kernels()):
        fn = kernel.fn if isinstance(kernel, triton.runtime.Autotuner) else kernel
        pointer = {
            name: "*" + dtypes.get(name, dtypes.get("*", "fp32")) for name in fn.arg_names if name.endswith("_ptr")
        }
        signature = {name: "constexpr" if name in constexprs else pointer.get(name, "i32") for name in fn.arg_names}
        constants = {(fn.arg_names.index(name),): value for name, value in constexprs.items()}
        triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", capability, 32))
        print(f"sm_{capability} {fn.__name__} {constexprs}", flush=True)


def test_kernels_compile_for_nvidia_gpus():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, __file__, "90"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    assert run.stdout.count("sm_90 ") == len(kernels()), run.stdout


if __name__ == "__main__":
    compile_all([int(c) for c in sys.argv[1:]])
