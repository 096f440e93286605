"""MoM: Mixture-of-Memories (Du et al., 2025, "MoM: Linear Sequence Modeling with Mixture-of-Memories").

Several linear-attention memories, each a (d_k x d_v) matrix, and a router that sends each token to its
top-k memories; a shared memory sees every token:

    g_t      = softmax over the top-k of W_r x_t        (zero for the other memories)
    M_i(t)   = gamma_i M_i(t-1) + 1[i in topk(t)] k_{t,i} v_{t,i}^T      each memory its own k, v projections
    M_s(t)   = gamma_s M_s(t-1) + k_{t,s} v_{t,s}^T                         the shared memory
    o_t      = RMSNorm( sum_i g_{t,i} M_i(t)^T q_t  +  M_s(t)^T q_t );     y_t = W_o o_t

Each memory with a scalar decay is exactly an SSD head (x = routed v, B = k, C = q, dt A = log gamma), so
the memories run as one `ssd_scan` with n_memories + 1 heads: chunked in training, one position per `step`.
Decays are per memory, gamma = sigmoid(decay_logit), tagged as dynamics parameters. (The paper's
load-balancing auxiliary loss is not included.) Routing is per token, so on a sequence split across ranks only the
scan passes state (`ssd_scan_sequence_parallel`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.layers.norms import RMSNorm
from ssmkit.ops import ssd_scan
from ssmkit.ops.sequence_parallel import current_split, ssd_scan_sequence_parallel
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("mom")
class MoM(Mixer):
    sequence_parallel = True  # one SSD scan passes the memories' state between ranks; routing is per token
    tiny_kwargs = {"n_memories": 3, "top_k": 2, "head_dim": 4, "chunk_size": 4}

    def __init__(
        self,
        d_model: int,
        n_memories: int = 4,
        top_k: int = 2,
        head_dim: int = 64,
        chunk_size: int = 64,
        decay_init: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(d_model)
        if not 1 <= top_k <= n_memories:
            raise ValueError(f"top_k must lie in [1, n_memories={n_memories}], got {top_k}")
        self.n_memories, self.top_k, self.head_dim, self.chunk_size = n_memories, top_k, head_dim, chunk_size
        heads = n_memories + 1  # the last is the shared memory
        self.q_proj = nn.Linear(d_model, head_dim, bias=False)
        self.kv_proj = nn.Linear(d_model, 2 * heads * head_dim, bias=False)
        self.router = nn.Linear(d_model, n_memories, bias=False)
        self.norm = RMSNorm(head_dim)
        self.out_proj = nn.Linear(head_dim, d_model, bias=False)
        gamma = torch.linspace(*decay_init, heads)
        self.decay_logit = nn.Parameter(torch.log(gamma / (1 - gamma)))
        no_weight_decay(self.decay_logit)

    def route(self, x: Tensor) -> Tensor:
        """(..., D) -> gates (..., n_memories): softmax over each token's top-k router logits, zero elsewhere."""
        logits = self.router(x)
        top = logits.topk(self.top_k, dim=-1)
        return torch.zeros_like(logits).scatter(-1, top.indices, top.values.softmax(-1))

    def _memories(self, x: Tensor, state: Tensor | None = None):
        """x: (B, L, D) -> per-memory reads (B, L, heads, head_dim) [, final memories]."""
        b, length, _ = x.shape
        gates = self.route(x)  # (B, L, n_memories)
        written = torch.cat([(gates > 0).to(x.dtype), x.new_ones(b, length, 1)], dim=-1)  # routed + shared
        k, v = self.kv_proj(x).unflatten(-1, (2, self.n_memories + 1, self.head_dim)).unbind(2)
        q = self.q_proj(x)[:, :, None].expand(-1, -1, self.n_memories + 1, -1)
        args = (v * written[..., None], torch.ones_like(written), F.logsigmoid(self.decay_logit), k, q, self.chunk_size)
        split = current_split()
        if split is not None and state is None:
            return gates, ssd_scan_sequence_parallel(*args, group=split.group)
        return gates, ssd_scan(*args, initial_states=state, return_final_states=state is not None)

    def _combine(self, gates: Tensor, reads: Tensor) -> Tensor:
        """Router-weighted routed memories plus the shared one, normalised and projected: (B, L, D)."""
        weights = torch.cat([gates, gates.new_ones(*gates.shape[:-1], 1)], dim=-1)
        return self.out_proj(self.norm((reads * weights[..., None]).sum(-2)))

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        gates, reads = self._memories(x)
        return self._combine(gates, reads)

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        shape = (batch_size, self.n_memories + 1, self.head_dim, self.head_dim)
        return {
            "memories": torch.zeros(shape, device=f["device"], dtype=torch.promote_types(f["dtype"], torch.float32))
        }

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        gates, (reads, state["memories"]) = self._memories(x_t[:, None], state["memories"])
        return self._combine(gates, reads)[:, 0], state
