"""Hydra (Hwang et al., 2024, "Hydra: Bidirectional State Space Models Through Generalized Matrix Mixers").

A quasiseparable matrix mixer: the sequence-mixing matrix is M = shift(SS_fwd) + flip(shift(SS_bwd)) + diag,
where SS_fwd and SS_bwd are two SSD (Mamba-2) semiseparable matrices with their own dt, B, C (one call of
the scan on the sequence and its reverse) and shift makes each strictly triangular:

    z, xBC, dt   = in_proj(u)                        xBC holds x and the forward and backward B, C
    xBC          = silu(depthwise_conv(xBC))         non-causal, kernel d_conv (odd), centred
    y_f          = ssd_scan(x, dt_f, A, B_f, C_f);   y_b = reverse(ssd_scan(reverse(x), dt_b, A, B_b, C_b))
    y            = shift(y_f) + shift_back(y_b) + x * (fc_D(x) + D)      per head, data-dependent diagonal
    out          = out_proj(GatedRMSNorm(y, z))

shift(y)_t = y_{t-1} (zero at t = 0) removes each scan's diagonal, which the data-dependent diagonal term
replaces. Reversals are within each sequence's valid length, so padding never mixes in. Non-causal: no step.

On a sequence split across ranks (`ssmkit.ops.sequence_parallel`) the centred conv reads both neighbours' edges, the
forward scan takes its state from the ranks before and the backward scan from the ranks after (`reverse`), and each
shift moves one position across the boundary; whole sequences only (no `lengths`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.mamba2 import ssd_head_parameters, ssd_heads
from ssmkit.layers.mixer import Mixer, reverse_valid
from ssmkit.layers.norms import GatedRMSNorm
from ssmkit.ops import ssd_scan
from ssmkit.ops.sequence_parallel import current_split, neighbour_edges, ssd_scan_sequence_parallel
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


def shift_right(y: Tensor) -> Tensor:
    """y_t <- y_{t-1}, zero at t = 0. y: (B, L, ...)."""
    return torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)


@register_mixer("hydra")
class Hydra(Mixer):
    causal = False
    sequence_parallel = True  # both neighbours' edges, the two scans' states from before and after: module docstring
    tiny_kwargs = {"d_state": 4, "d_conv": 3, "expand": 2, "headdim": 4, "chunk_size": 4}

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        d_conv: int = 7,
        expand: int = 2,
        headdim: int = 64,
        ngroups: int = 1,
        chunk_size: int = 64,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        bias: bool = False,
    ) -> None:
        super().__init__(d_model)
        if d_conv % 2 == 0:
            raise ValueError(f"d_conv must be odd (a centred, non-causal kernel), got {d_conv}")
        self.d_inner, self.nheads = ssd_heads(d_model, expand, headdim, ngroups)
        self.headdim, self.ngroups, self.d_state, self.chunk_size = headdim, ngroups, d_state, chunk_size
        self.conv_dim = self.d_inner + 4 * ngroups * d_state  # x, then B and C for both directions
        self.in_proj = nn.Linear(d_model, self.d_inner + self.conv_dim + 2 * self.nheads, bias=bias)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, padding=d_conv // 2, groups=self.conv_dim)
        self.fc_D = nn.Linear(self.d_inner, self.nheads, bias=False)
        self.norm = GatedRMSNorm(self.d_inner, group_size=self.d_inner // ngroups)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

        self.dt_bias, self.A_log, self.D = ssd_head_parameters(self.nheads, A_init_range, dt_min, dt_max)

    def splits_across_ranks(self) -> bool:
        return True  # bidirectional, and both scans pass their state across ranks (module docstring)

    def _forward(self, u: Tensor, lengths: Tensor | None) -> Tensor:
        b, length, _ = u.shape
        z, xBC, dt = self.in_proj(u).split([self.d_inner, self.conv_dim, 2 * self.nheads], dim=-1)
        split = current_split()
        if split is not None and lengths is not None:
            raise ValueError("Hydra on a sequence split across ranks reads whole sequences: give no lengths")
        xBC = xBC.transpose(1, 2)  # (B, conv_dim, L)
        if split is None:
            xBC = self.conv1d(xBC)
        else:  # the centred conv reads d_conv // 2 positions of each neighbour
            before, after = neighbour_edges(xBC, self.conv1d.padding[0], dim=-1, group=split.group)
            xBC = torch.cat([before, xBC, after], -1)
            xBC = F.conv1d(xBC, self.conv1d.weight, self.conv1d.bias, groups=self.conv1d.groups)
        gn = self.ngroups * self.d_state
        x, B_f, B_b, C_f, C_b = F.silu(xBC.transpose(1, 2)).split([self.d_inner, gn, gn, gn, gn], dim=-1)
        x = x.unflatten(-1, (self.nheads, self.headdim))  # (B, L, H, P)
        dt_f, dt_b = dt.chunk(2, dim=-1)
        B_f, B_b, C_f, C_b = (M.unflatten(-1, (self.ngroups, self.d_state)) for M in (B_f, B_b, C_f, C_b))
        scan = dict(A=-torch.exp(self.A_log), chunk_size=min(self.chunk_size, length), dt_bias=self.dt_bias,
                    dt_softplus=True)  # fmt: skip
        if split is None:
            flip = lambda t: reverse_valid(t, lengths)  # noqa: E731
            # both directions in one scan: the reversed sequences ride as extra batch rows
            y = ssd_scan(torch.cat([x, flip(x)]), torch.cat([dt_f, flip(dt_b)]), B=torch.cat([B_f, flip(B_b)]),
                         C=torch.cat([C_f, flip(C_b)]), **scan)  # fmt: skip
            y_f, y_b = shift_right(y[:b]), flip(shift_right(y[b:]))
        else:
            y_f, y_b = self._split_scans(x, (dt_f, B_f, C_f), (dt_b, B_b, C_b), scan, split.group)
        diag = x * (self.fc_D(x.flatten(-2)) + self.D)[..., None]
        return self.out_proj(self.norm((y_f + y_b + diag).flatten(-2), z))

    @staticmethod
    def _split_scans(x: Tensor, forward: tuple, backward: tuple, scan: dict, group) -> tuple[Tensor, Tensor]:
        """Both directions on this rank's chunk x: (B, L_rank, H, P), each shifted one step away from the diagonal:
        y_f_t = f_{t-1} (the forward scan's output), y_b_t = r_{t+1} (the backward scan's), the step across a rank
        boundary taken from the neighbour. forward / backward: each direction's (dt, B, C)."""
        (dt_f, B_f, C_f), (dt_b, B_b, C_b) = forward, [t.flip(1) for t in backward]
        f = ssd_scan_sequence_parallel(x, dt_f, B=B_f, C=C_f, group=group, **scan)
        r = ssd_scan_sequence_parallel(x.flip(1), dt_b, B=B_b, C=C_b, group=group, reverse=True, **scan).flip(1)
        before, after = neighbour_edges(torch.stack([f, r]), 1, dim=2, group=group)  # (2, B, 1, H, P) each
        return torch.cat([before[0], f[:, :-1]], 1), torch.cat([r[:, 1:], after[1]], 1)
