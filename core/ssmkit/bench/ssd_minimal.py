"""A straightforward torch implementation of chunked SSD, the peer `ssd_scan` is measured against: the minimal
listing of the Mamba-2 paper (Dao & Gu, 2024, "Transformers are SSMs", Listing 1) — a `segsum` and four einsum
steps — behind the `ssd_scan` signature.

It stays a separate implementation on purpose: it is the outside yardstick for `ssmkit.ops.ssd_scan_chunked`, so it
must not share that algorithm (a fault or a speed-up of ours would show on both sides). Only what the listing leaves
out is shared with every `ssd_scan` backend (`ssmkit_kernels.scan_api.ssd_scan_backend`: dt_bias and softplus before
it, the D skip and silu(z) gate after it), so the two are measured on the same work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmkit_kernels.scan_api import ssd_scan_backend

Tensor = torch.Tensor


def segsum(x: Tensor) -> Tensor:
    """x: (..., T) -> (..., T, T) with out[..., i, j] = x[j+1] + ... + x[i] for j <= i, -inf above the diagonal."""
    T = x.shape[-1]
    x_cumsum = torch.cumsum(x, dim=-1)
    out = x_cumsum[..., :, None] - x_cumsum[..., None, :]
    mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return out.masked_fill(~mask, float("-inf"))


def ssd_minimal(X: Tensor, A: Tensor, B: Tensor, C: Tensor, block_len: int) -> tuple[Tensor, Tensor]:
    """X: (b, l, h, p) already times dt; A: (b, l, h) already times dt; B, C: (b, l, h, n); l a multiple of
    block_len. Returns Y (b, l, h, p) and the final state (b, h, p, n)."""
    b, length, h, p = X.shape
    c = length // block_len
    X, A, B, C = (t.reshape(b, c, block_len, *t.shape[2:]) for t in (X, A, B, C))
    A = A.permute(0, 3, 1, 2)  # (b, h, c, l)
    A_cumsum = torch.cumsum(A, dim=-1)

    # 1. outputs within each chunk (the diagonal blocks)
    L = torch.exp(segsum(A))
    Y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", C, B, L, X)
    # 2. the state each chunk ends with, from its own inputs
    decay_states = torch.exp(A_cumsum[..., -1:] - A_cumsum)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", B, decay_states, X)
    # 3. the recurrence between chunks
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(A_cumsum[..., -1], (1, 0))))  # (b, h, c+1, c+1)
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final_state = new_states[:, :-1], new_states[:, -1]
    # 4. the state entering each chunk, read out at every position
    Y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", C, states, torch.exp(A_cumsum))
    return (Y_diag + Y_off).reshape(b, length, h, p), final_state


@ssd_scan_backend
def ssd_scan_minimal(x, dt, A, B, C, chunk_size, initial_states, resets):
    """`ssd_minimal` with `ssd_scan`'s arguments (l a multiple of chunk_size, no initial state, no resets)."""
    if initial_states is not None or resets is not None:
        raise ValueError("the paper's minimal SSD reads one sequence from a zero state: no initial_states or resets")
    heads_per_group = x.shape[2] // B.shape[2]
    B, C = (M.repeat_interleave(heads_per_group, dim=2) for M in (B, C))
    return ssd_minimal(x * dt[..., None], dt * A, B, C, chunk_size)
