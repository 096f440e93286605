"""Mamba-2 block (Dao & Gu, 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms
Through Structured State Space Duality").

    z, xBC, dt = in_proj(u)                       z, x: (B, L, E)   B, C: (B, L, G, N)   dt: (B, L, H)
    xBC        = silu(causal_depthwise_conv(xBC))
    y          = ssd_scan(x, dt, A, B, C, D, dt_bias, softplus)     A = -exp(A_log): one scalar per head
    out        = out_proj(GatedRMSNorm(y, z))                       E = expand * d_model = H * headdim

A is scalar-times-identity per head (the SSD restriction), so the scan runs as the chunked SSD algorithm;
B and C are shared by the heads of each of `ngroups` groups. A is initialised uniformly in `A_init_range`,
dt log-uniformly in [dt_min, dt_max] through the inverse softplus of dt_bias. A_log, D and dt_bias are
SSM dynamics parameters (no weight decay). The recurrent `step` runs the same scan for one position from
the carried state. `forward(x, resets=...)`: `resets (B, L)` bool restarts the conv window and the state before the
flagged steps (mamba_ssm's `seq_idx`), so a packed row of several sequences runs in one pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.conv import causal_conv_continued, causal_conv_step
from ssmkit.layers.dt_init import dt_bias_init
from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.layers.norms import GatedRMSNorm
from ssmkit.ops import ssd_scan
from ssmkit.ops.sequence_parallel import current_split, ssd_scan_sequence_parallel
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


def ssd_heads(d_model: int, expand: int, headdim: int, ngroups: int) -> tuple[int, int]:
    """(d_inner, nheads) of an SSD layer: d_inner = expand * d_model channels in nheads heads of `headdim`, whose
    B and C are shared by the heads of each of `ngroups` groups. A setting that does not divide is named."""
    d_inner = expand * d_model
    if d_inner % headdim:
        raise ValueError(f"expand * d_model = {d_inner} must be divisible by headdim={headdim}")
    if (d_inner // headdim) % ngroups:
        raise ValueError(f"ngroups={ngroups} must divide the number of heads {d_inner // headdim}")
    return d_inner, d_inner // headdim


def ssd_head_parameters(
    nheads: int, A_init_range: tuple[float, float], dt_min: float, dt_max: float, dt_init_floor: float = 1e-4
) -> tuple[nn.Parameter, nn.Parameter, nn.Parameter]:
    """(dt_bias, A_log, D), one per head, tagged as dynamics parameters: A uniform in A_init_range, D = 1."""
    dt_bias = nn.Parameter(dt_bias_init(nheads, dt_min, dt_max, dt_init_floor))
    A_log = nn.Parameter(torch.log(torch.empty(nheads).uniform_(*A_init_range)))
    D = nn.Parameter(torch.ones(nheads))
    no_weight_decay(dt_bias, A_log, D)
    return dt_bias, A_log, D


@register_mixer("mamba2")
class Mamba2(Mixer):
    sequence_parallel = True  # conv halo and state passing between ranks: ssmkit.ops.sequence_parallel
    takes_resets = True  # the conv window and the SSD scan restart in place: packed rows run in one pass
    tiny_kwargs = {"d_state": 4, "d_conv": 3, "expand": 2, "headdim": 4, "chunk_size": 4}

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        d_conv: int = 4,
        expand: int = 2,
        headdim: int = 64,
        ngroups: int = 1,
        chunk_size: int = 64,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__(d_model)
        self.d_inner, self.nheads = ssd_heads(d_model, expand, headdim, ngroups)
        self.d_state, self.d_conv, self.headdim, self.ngroups = d_state, d_conv, headdim, ngroups
        self.chunk_size = chunk_size
        self.conv_dim = self.d_inner + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d_model, self.d_inner + self.conv_dim + self.nheads, bias=bias)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim, bias=conv_bias)
        self.norm = GatedRMSNorm(self.d_inner, group_size=self.d_inner // ngroups)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

        self.dt_bias, self.A_log, self.D = ssd_head_parameters(self.nheads, A_init_range, dt_min, dt_max, dt_init_floor)

    def _split(self, xBC: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(..., conv_dim) -> x (..., H, P), B (..., G, N), C (..., G, N)."""
        gn = self.ngroups * self.d_state
        x, B, C = xBC.split([self.d_inner, gn, gn], dim=-1)
        return (
            x.unflatten(-1, (self.nheads, self.headdim)),
            B.unflatten(-1, (self.ngroups, self.d_state)),
            C.unflatten(-1, (self.ngroups, self.d_state)),
        )

    def _scan(
        self, x: Tensor, dt: Tensor, B: Tensor, C: Tensor, state: Tensor | None = None, resets: Tensor | None = None
    ):
        return ssd_scan(
            x, dt, -torch.exp(self.A_log), B, C, self.chunk_size, self.D,
            dt_bias=self.dt_bias, initial_states=state, dt_softplus=True,
            return_final_states=state is not None, resets=resets,
        )  # fmt: skip

    def _forward(self, u: Tensor, lengths: Tensor | None, resets: Tensor | None = None) -> Tensor:
        return self._mix(u, resets=resets)[0]

    def _prefill_from(self, u: Tensor, state: State, resets: Tensor | None = None) -> tuple[Tensor, State]:
        return self._mix(u, state, resets)

    def _mix(self, u: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State | None]:
        """u: (B, L, D) -> (B, L, D); with a `state` (fresh, or from earlier positions), u continues from it and the
        state is updated to the one after the last position; inside `sequence_parallel` the conv and the scan
        continue from the ranks before (`ssmkit.ops.sequence_parallel`); `resets: (B, L)` restarts both."""
        z, xBC, dt = self.in_proj(u).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)
        window = None if state is None else state["conv"]
        conv_out, window = causal_conv_continued(self.conv1d, xBC.transpose(1, 2), window, resets)  # (B, conv_dim, L)
        x, B, C = self._split(F.silu(conv_out.transpose(1, 2)))
        split = current_split()
        if split is not None and state is None:
            A = -torch.exp(self.A_log)
            y = ssd_scan_sequence_parallel(
                x, dt, A, B, C, self.chunk_size, self.D, dt_bias=self.dt_bias, dt_softplus=True, resets=resets,
                group=split.group,
            )  # fmt: skip
        else:
            y = self._scan(x, dt, B, C, None if state is None else state["ssm"], resets)
        if state is not None:
            y, ssm = y
            state.update(conv=window, ssm=ssm)
        return self.out_proj(self.norm(y.flatten(-2), z)), state

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        ssm_dtype = torch.promote_types(f["dtype"], torch.float32)
        return {
            "conv": torch.zeros(batch_size, self.conv_dim, self.d_conv, **f),
            "ssm": torch.zeros(
                batch_size, self.nheads, self.headdim, self.d_state, device=f["device"], dtype=ssm_dtype
            ),
        }

    def _step(self, u_t: Tensor, state: State) -> tuple[Tensor, State]:
        z, xBC, dt = self.in_proj(u_t).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)
        xBC, conv = causal_conv_step(self.conv1d, state["conv"], xBC)
        x, B, C = self._split(F.silu(xBC)[:, None])  # a sequence of length 1
        y, ssm = self._scan(x, dt[:, None], B, C, state["ssm"])
        state.update(conv=conv, ssm=ssm)
        return self.out_proj(self.norm(y[:, 0].flatten(-2), z)), state
