"""Fast implementations of ssmkit's ops: `cpu/` and `triton/` (GPU). Depends on torch / triton only and never
imports ssmkit; `ssmkit.ops` registers what is here as dispatch backends. Empty until the kernels work lands."""
