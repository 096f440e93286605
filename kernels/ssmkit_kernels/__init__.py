"""Fast implementations of ssmkit's ops: `cpu/` and `triton/` (GPU). Depends on torch / triton only and never
imports ssmkit; the dispatch table `ssmkit.ops.dispatch.BACKENDS` names the functions here by import string."""
