"""CPU fast paths: fused numba loops, parallel over (batch x channel blocks), compiled once and cached on disk."""
