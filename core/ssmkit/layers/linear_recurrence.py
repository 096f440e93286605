"""Diagonal linear recurrent layers computed by `linear_scan` (the body shared by S5 and LRU):

    h_t = lam ⊙ h_{t-1} + B u_t            lam (P,) complex, B (P, H) complex
    y_t = Re(C h_t) + D ⊙ u_t              C (H, P) complex, D (H,)
    out_t = GLU(W gelu(y_t))               `GatedOutput`

`forward(x, lengths=None, resets=None)`: `resets (B, L)` bool restarts the state before the flagged steps
(h_t = B u_t there), as S5 does across episode boundaries in in-context RL. In step mode the same restart is
zeroing the rows of `state["h"]`. Subclasses define `_dynamics() -> (lam, B, C)`.
"""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.mixer import Mixer, State
from ssmkit.ops import linear_scan
from ssmkit.ops.sequence_parallel import current_split, linear_scan_sequence_parallel

Tensor = torch.Tensor


def project(h: Tensor, C: Tensor, dtype: torch.dtype) -> Tensor:
    """Re(C h): h (..., P) complex, C (H, P) -> (..., H) in `dtype`."""
    return torch.einsum("...p,hp->...h", h, C).real.to(dtype)


class DiagonalRecurrence(Mixer):
    takes_resets = True
    computes_in_float32 = True  # complex diagonal scan
    sequence_parallel = True  # state passing between ranks: ssmkit.ops.sequence_parallel

    def __init__(self, d_model: int, dropout: float = 0.0) -> None:
        super().__init__(d_model)
        self.D = nn.Parameter(torch.randn(d_model))
        self.output = GatedOutput(d_model, dropout)

    def _dynamics(self) -> tuple[Tensor, Tensor, Tensor]:
        """(lam (P,), B (P, H), C (H, P)), complex."""
        raise NotImplementedError

    def _forward(self, x: Tensor, lengths: Tensor | None, resets: Tensor | None = None) -> Tensor:
        """x (B, L, D), resets (B, L) bool -> (B, L, D)."""
        lam, B, C = self._dynamics()
        bu = torch.einsum("blh,ph->blp", x.to(B.dtype), B)
        split = current_split()
        if split is None:
            h = linear_scan(lam.expand_as(bu), bu, resets=resets)
        else:
            h = linear_scan_sequence_parallel(lam.expand_as(bu), bu, resets, split.group)
        return self._readout(h, x, C)

    def _prefill_from(self, x: Tensor, state: State, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """One parallel scan from the state's h (a chunk of a prompt, or the whole prompt from zeros)."""
        lam, B, C = self._dynamics()
        bu = torch.einsum("blh,ph->blp", x.to(B.dtype), B)
        h = linear_scan(lam.expand_as(bu), bu, state["h"], resets)
        state["h"] = h[:, -1]
        return self._readout(h, x, C), state

    def _readout(self, h: Tensor, u: Tensor, C: Tensor) -> Tensor:
        return self.output(project(h, C, u.dtype) + self.D * u)

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        lam = self._dynamics()[0]
        complex_dtype = torch.promote_types(f["dtype"], torch.complex64)
        return {"h": torch.zeros(batch_size, lam.shape[0], device=f["device"], dtype=complex_dtype)}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        lam, B, C = self._dynamics()
        h = lam * state["h"] + x_t.to(B.dtype) @ B.T
        state["h"] = h
        return self._readout(h, x_t, C), state
