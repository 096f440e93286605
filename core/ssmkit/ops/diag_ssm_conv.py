"""The output of a diagonal SSM run as a convolution: H3's and S4D's long-convolution path, with
FlashConv's state passing (Fu et al., 2023, "Hungry Hungry Hippos", section 4).

    y = K * u + D u,     K = s4d_kernel(log_dt, A, C, L)        (ZOH discretisation)

Shapes: u (B, H, L); log_dt (H,); A, C (H, N) complex; D (H,); initial_state (B, H, N) complex. Returns
y (B, H, L) [, final_state (B, H, N)], the state of the recurrence h_t = A_bar h_{t-1} + B_bar u_t.

`reference` builds the full-length kernel and runs one FFT convolution, with the recurrence for the state.
`blocked` is FlashConv's state passing: the sequence is cut into blocks of `block_size`; inside a block an
FFT convolution with a block-length kernel, and the state carried between blocks adds
2 Re(sum_n C_n A_bar_n^(t+1) h_n) to each output. FFT sizes stay bounded by the block, whatever L is.
"""

from __future__ import annotations

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.ops.fft_conv import fft_conv
from ssmkit.ops.s4d_kernel import random_diagonal_ssm, s4d_kernel
from ssmkit.shapes import check_shape
from ssmkit_kernels.scan_api import zoh_discretise

Tensor = torch.Tensor


def diag_ssm_conv(
    u: Tensor,
    log_dt: Tensor,
    A: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
    block_size: int = 1024,
    *,
    backend: str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Diagonal SSM over `u: (B, H, L)`; see the module docstring."""
    check_shape("u", u, "(B, H, L)", None, None, None)
    b, h, _ = u.shape
    check_shape("log_dt", log_dt, "(H,)", h)
    check_shape("A", A, "(H, N)", h, None)
    check_shape("C", C, "(H, N)", h, A.shape[1])
    if not (A.is_complex() and C.is_complex()):
        raise ValueError(f"A and C must be complex tensors, got {A.dtype} and {C.dtype}")
    if D is not None:
        check_shape("D", D, "(H,)", h)
    if initial_state is not None:
        check_shape("initial_state", initial_state, "(B, H, N)", b, h, A.shape[1])
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    fn = resolve("diag_ssm_conv", u.device.type, backend)
    return fn(u, log_dt, A, C, D, initial_state, return_final_state, block_size)


def diag_ssm_conv_ref(u, log_dt, A, C, D=None, initial_state=None, return_final_state=False, block_size=1024):
    """Full-length kernel and one FFT convolution; the carried-in state and the final state by recurrence."""
    length = u.shape[-1]
    y = fft_conv(u, s4d_kernel(log_dt, A, C, length), D)
    A_bar, B_bar = zoh_discretise(log_dt, A)
    h = _zero_state(u, A) if initial_state is None else initial_state
    if initial_state is not None:  # its contribution decays through the sequence
        powers = A_bar[..., None] ** torch.arange(1, length + 1, device=u.device)  # (H, N, L)
        y = y + 2 * torch.einsum("hn,bhn,hnl->bhl", C, h, powers).real.to(y.dtype)
    if not return_final_state:
        return y
    for u_t in u.unbind(-1):
        h = A_bar * h + B_bar * u_t[..., None]
    return y, h


def diag_ssm_conv_blocked(u, log_dt, A, C, D=None, initial_state=None, return_final_state=False, block_size=1024):
    """FlashConv state passing: FFT convolution within blocks, the SSM state carried across them."""
    length = u.shape[-1]
    T = min(block_size, length)
    kernel = s4d_kernel(log_dt, A, C, T)  # (H, T)
    A_bar, B_bar = zoh_discretise(log_dt, A)
    steps = torch.arange(T, device=u.device)
    into_block = A_bar[..., None] ** (steps + 1)  # (H, N, T): effect of the carried state at t
    to_end = A_bar[..., None] ** (T - 1 - steps) * B_bar[..., None]  # (H, N, T): input at s -> block end
    h = _zero_state(u, A) if initial_state is None else initial_state
    outputs = []
    for start in range(0, length, T):
        block = u[..., start : start + T]
        n = block.shape[-1]
        y = fft_conv(block, kernel[:, :n], D)
        y = y + 2 * torch.einsum("hn,bhn,hnt->bht", C, h, into_block[..., :n]).real.to(y.dtype)
        # state at the block's end: A_bar^n h + sum_s A_bar^(n-1-s) B_bar u_s
        h = A_bar**n * h + torch.einsum("hns,bhs->bhn", to_end[..., T - n :], block.to(to_end.dtype))
        outputs.append(y)
    y = torch.cat(outputs, dim=-1)
    return (y, h) if return_final_state else y


def _zero_state(u: Tensor, A: Tensor) -> Tensor:
    return torch.zeros(u.shape[0], *A.shape, dtype=A.dtype, device=u.device)


@example_inputs("diag_ssm_conv")
def diag_ssm_conv_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """A diagonal SSM (H=3, N=4) with a carried-in state and the final state, in blocks of 1 (L=9), 7 (L=30, the
    last block partial) and 64 (one block); then without a state in or out."""
    cases = []
    for block, length, with_state in ((1, 9, True), (7, 30, True), (64, 30, True), (7, 30, False)):
        log_dt, A, C = random_diagonal_ssm(g, dtype, 3, 4)
        u, D = torch.randn(2, 3, length, generator=g, dtype=dtype), torch.randn(3, generator=g, dtype=dtype)
        h0 = torch.randn(2, 3, 4, generator=g, dtype=C.dtype)
        leaves = [t.requires_grad_() for t in (u, log_dt, A, C, D, h0)]
        cases.append((*leaves[:5], leaves[5] if with_state else None, with_state, block))
    return cases
