"""Fast implementations of ssmkit's ops: `cpu/` and `triton/` (GPU), and `scan_api`, the scans' calling conventions
(signatures, working precision, the stages around the recurrence) that the references in `ssmkit.ops` share. Depends
on torch / triton / numba only and never imports ssmkit; the dispatch table `ssmkit.ops.dispatch.BACKENDS` names the
functions here by import string."""
