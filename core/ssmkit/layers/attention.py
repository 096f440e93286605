"""Multi-head attention with rotary position embeddings (Su et al., RoFormer), through PyTorch's
`scaled_dot_product_attention`, with optional local patterns for hybrids (H3 paper; SeqBoat):

    q, k, v = W_qkv x;   q, k = rope(q), rope(k);   y = W_o softmax(q k^T / sqrt(d_head) + mask) v

`rope=False` leaves out the rotary embedding (for models that add absolute positions themselves).
`causal=True` masks the future and has a KV-cache `step`; `causal=False` attends both ways (no `step`).
`window=w`: sliding-window attention, each query sees the keys at distance < w (the step keeps a ring buffer
of w keys: constant memory). `chunk_size=c`: block-diagonal attention within consecutive chunks of c
positions (the step's cache is reset at each chunk boundary). With `lengths`, padded keys are masked out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.mixer import Mixer, State, padding_mask
from ssmkit.ops.sequence_parallel import current_split, gather_sequence
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


def rotary(x: Tensor, positions: Tensor, base: float = 10_000.0) -> Tensor:
    """Rotate pairs (i, i + d/2) of `x: (B, H, L, d)` by angle position * base^(-2i/d); positions: (L,) or (B, L)."""
    half = x.shape[-1] // 2
    work = torch.promote_types(x.dtype, torch.float32)
    freqs = base ** (-torch.arange(half, device=x.device, dtype=work) / half)
    angles = positions.to(work)[..., None] * freqs  # (L, d/2) or (B, L, d/2)
    if angles.dim() == 3:
        angles = angles[:, None]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, x[..., 2 * half :]], dim=-1)


@register_mixer("attention")
class Attention(Mixer):
    sequence_parallel = True  # causal: keys and values all-gathered across ranks (LASP-2H)
    tiny_kwargs = {"n_heads": 2}
    noncausal_kwargs = {"causal": False}
    tags_dynamics = False

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        causal: bool = True,
        rope_base: float = 10_000.0,
        dropout: float = 0.0,
        bias: bool = False,
        window: int | None = None,
        chunk_size: int | None = None,
        rope: bool = True,
    ) -> None:
        super().__init__(d_model)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if window is not None and chunk_size is not None:
            raise ValueError("give window (sliding) or chunk_size (block-diagonal) attention, not both")
        if (window or 1) < 1 or (chunk_size or 1) < 1:
            raise ValueError(f"window and chunk_size must be >= 1, got {window} and {chunk_size}")
        self.window, self.chunk_size, self.rope = window, chunk_size, rope
        self.causal, self.n_heads, self.d_head = causal, n_heads, d_model // n_heads
        self.rope_base, self.dropout = rope_base, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, L, D) -> q, k, v: (B, H, L, d_head), rotary applied to q and k (unless rope=False)."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.n_heads, self.d_head)).permute(2, 0, 3, 1, 4)
        if not self.rope:  # positions come from elsewhere (e.g. a ViT's absolute position embedding)
            return q, k, v
        return rotary(q, positions, self.rope_base), rotary(k, positions, self.rope_base), v

    def _mask(self, queries: Tensor, keys: Tensor, lengths: Tensor | None) -> Tensor:
        """Boolean attention mask (True = attend) of query positions (Lq,) against key positions (Lk,) = 0..Lk-1,
        broadcastable to (B, H, Lq, Lk)."""
        offset = queries[:, None] - keys[None, :]  # query - key
        mask = offset >= 0 if self.causal else torch.ones_like(offset, dtype=torch.bool)
        if self.window is not None:
            mask = mask & (offset.abs() < self.window)
        if self.chunk_size is not None:
            mask = mask & (queries[:, None] // self.chunk_size == keys[None, :] // self.chunk_size)
        if lengths is not None:
            mask = mask & padding_mask(lengths, keys.shape[0])[:, None, None, :]  # keys
        return mask

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        return self._attend(x, lengths)[0]

    def _attend(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, L, D) -> (output (B, L, D), k, v: (B, H, L, d_head)). Inside `sequence_parallel` x is this rank's
        chunk: its queries attend to the keys and values of the whole sequence, all-gathered (LASP-2H)."""
        batch, seq_len, _ = x.shape
        split = current_split()
        start = 0 if split is None else split.start(seq_len)
        queries = torch.arange(start, start + seq_len, device=x.device)
        q, k, v = self._heads(x, queries)
        if split is not None:
            k, v = (gather_sequence(t, split.group, dim=2) for t in (k, v))
        plain = split is None and lengths is None and self.window is None and self.chunk_size is None
        mask = None if plain else self._mask(queries, torch.arange(k.shape[2], device=x.device), lengths)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=self.causal and mask is None,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(y.transpose(1, 2).reshape(batch, seq_len, self.d_model)), k, v

    def _prefill(self, x: Tensor) -> tuple[Tensor, State]:
        """One parallel pass, then the cache `step` expects: every key (capacity a power of two >= 64) or, for
        local attention, the last `window` / `chunk_size` positions in their ring slots t % local."""
        batch, seq_len, _ = x.shape
        y, k, v = self._attend(x, None)
        local = self.window or self.chunk_size
        if local is None:
            capacity = max(64, 1 << (seq_len - 1).bit_length())
            state = {name: F.pad(t, (0, 0, 0, capacity - seq_len)) for name, t in (("k", k), ("v", v))}
        else:
            state = self.allocate_state(batch, x.device, x.dtype)
            kept = torch.arange(max(0, seq_len - local), seq_len, device=x.device)
            state["k"][:, :, kept % local] = k[:, :, kept].to(state["k"].dtype)  # bf16 keys under autocast
            state["v"][:, :, kept % local] = v[:, :, kept].to(state["v"].dtype)
        state["length"] = torch.full((batch,), seq_len, dtype=torch.long, device=x.device)
        return y, state

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """A KV cache: `window` or `chunk_size` slots for local attention, else 64 slots doubling when full."""
        f = self._factory(device, dtype)
        shape = (batch_size, self.n_heads, self.window or self.chunk_size or 64, self.d_head)
        return {
            "k": torch.zeros(shape, **f),
            "v": torch.zeros(shape, **f),
            "length": torch.zeros(batch_size, dtype=torch.long, device=f["device"]),
        }

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        return self.step_rows(x_t, state, torch.ones(x_t.shape[0], dtype=torch.bool, device=x_t.device))

    def step_rows(self, x_t: Tensor, state: State, rows: Tensor) -> tuple[Tensor, State]:
        """A step for the sequences where `rows: (B,)` is true; the others keep their cache and position (their
        outputs are meaningless). Each sequence may be at its own position (SeqBoat's sparse activation)."""
        length = state["length"]  # (B,)
        k_cache, v_cache = state["k"], state["v"]
        local = self.window or self.chunk_size
        if local is None and int(length.max()) >= k_cache.shape[2]:
            k_cache = torch.cat([k_cache, torch.zeros_like(k_cache)], dim=2)
            v_cache = torch.cat([v_cache, torch.zeros_like(v_cache)], dim=2)
        slot = length if local is None else length % local
        # the slots holding visible keys: all so far, a ring of the last `window`, or the current chunk so far
        if local is None:
            visible = length + 1
        else:
            visible = torch.minimum(length + 1, torch.full_like(length, local)) if self.window else slot + 1
        q, k, v = self._heads(x_t[:, None, :], length[:, None])  # (B, H, 1, d_head)
        batch = torch.arange(x_t.shape[0], device=x_t.device)[rows]
        # the cache keeps its dtype (float32 under autocast when the state was allocated from float32 parameters)
        k_cache[batch, :, slot[rows]] = k[rows, :, 0].to(k_cache.dtype)
        v_cache[batch, :, slot[rows]] = v[rows, :, 0].to(v_cache.dtype)
        width = int(visible.max())
        mask = (torch.arange(width, device=x_t.device)[None, :] < visible[:, None])[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k_cache[:, :, :width], v_cache[:, :, :width], attn_mask=mask)
        state.update(k=k_cache, v=v_cache, length=length + rows.long())
        return self.out_proj(y.reshape(x_t.shape[0], self.d_model)), state
