"""Fused numba Vandermonde kernel of a diagonal SSM (S4D) for CPU: forward and a hand-written backward.

Same semantics as `ssmkit.ops.s4d_kernel_ref`: with dtA = exp(log_dt) A and W = C B_bar (both (H, N) complex,
formed in torch, which differentiates them),

    K[h, l] = 2 Re( sum_n W[h, n] z[h, n]^l ),    z = exp(dtA),    l = 0 .. L-1.

The reference materialises the (H, N, L) powers (and autograd keeps them); here no (H, N, L) tensor exists. A task is
one channel h (run in parallel, `prange`): it walks l, multiplying the N powers by z once per step (the inner loop
over modes is independent lanes that LLVM vectorises), and every `_RESYNC` steps recomputes them as exp(l dtA), so
rounding does not accumulate along l. The backward reads dK (H, L) real and accumulates, in the same walk,

    S0[h, n] = sum_l dK[h, l] conj(z^l),    S1[h, n] = sum_l dK[h, l] l conj(z^l),
    dW = 2 S0,    d(dtA) = 2 conj(W) S1

(PyTorch's conjugate Wirtinger convention, as `linear_scan`'s kernel). Compute is float64 for complex128 inputs,
float32 for complex64.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from ssmkit_kernels.cpu import JIT_OPTIONS
from ssmkit_kernels.cpu.threads import with_torch_threads
from ssmkit_kernels.scan_api import s4d_kernel_backend

Tensor = torch.Tensor

_RESYNC = 64  # steps between powers recomputed from exp(l dtA)


@njit(**JIT_OPTIONS)
def _powers_at(l0, sr, si, pr, pi):
    """pr + i pi <- exp(l0 (sr + i si)) for every mode of one channel: (N,) each."""
    for n in range(sr.shape[0]):
        mag = np.exp(l0 * sr[n])
        pr[n], pi[n] = mag * np.cos(l0 * si[n]), mag * np.sin(l0 * si[n])


@with_torch_threads
@njit(parallel=True, **JIT_OPTIONS)
def _forward_kernel(wr, wi, sr, si, out):
    """out: (H, L) <- 2 Re(sum_n W z^l); W = wr + i wi, dtA = sr + i si: (H, N)."""
    channels, length = out.shape
    modes = wr.shape[1]
    for h in prange(channels):
        zr, zi = np.exp(sr[h]) * np.cos(si[h]), np.exp(sr[h]) * np.sin(si[h])
        pr, pi = np.empty(modes, wr.dtype), np.empty(modes, wr.dtype)
        for l0 in range(0, length, _RESYNC):
            _powers_at(l0, sr[h], si[h], pr, pi)
            for step in range(l0, min(l0 + _RESYNC, length)):
                acc = wr.dtype.type(0)
                for n in range(modes):
                    acc += wr[h, n] * pr[n] - wi[h, n] * pi[n]
                    pr[n], pi[n] = pr[n] * zr[n] - pi[n] * zi[n], pr[n] * zi[n] + pi[n] * zr[n]
                out[h, step] = 2 * acc


@with_torch_threads
@njit(parallel=True, **JIT_OPTIONS)
def _backward_kernel(grad, sr, si, s0r, s0i, s1r, s1i):
    """S0, S1 (H, N) real and imaginary parts <- sums over l of dK (H, L) times conj(z^l) and times l conj(z^l)."""
    channels, length = grad.shape
    modes = sr.shape[1]
    for h in prange(channels):
        zr, zi = np.exp(sr[h]) * np.cos(si[h]), np.exp(sr[h]) * np.sin(si[h])
        pr, pi = np.empty(modes, sr.dtype), np.empty(modes, sr.dtype)
        a0r, a0i = np.zeros(modes, sr.dtype), np.zeros(modes, sr.dtype)
        a1r, a1i = np.zeros(modes, sr.dtype), np.zeros(modes, sr.dtype)
        for l0 in range(0, length, _RESYNC):
            _powers_at(l0, sr[h], si[h], pr, pi)
            for step in range(l0, min(l0 + _RESYNC, length)):
                g = grad[h, step]
                gl = g * step
                for n in range(modes):
                    a0r[n] += g * pr[n]
                    a0i[n] -= g * pi[n]
                    a1r[n] += gl * pr[n]
                    a1i[n] -= gl * pi[n]
                    pr[n], pi[n] = pr[n] * zr[n] - pi[n] * zi[n], pr[n] * zi[n] + pi[n] * zr[n]
        s0r[h], s0i[h], s1r[h], s1i[h] = a0r, a0i, a1r, a1i


def _parts(z: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A complex tensor's real and imaginary parts as contiguous numpy arrays."""
    return z.real.detach().contiguous().numpy(), z.imag.detach().contiguous().numpy()


# The kernels as torch.library custom ops with fake implementations, so torch.compile traces one op each way.


@torch.library.custom_op("ssmkit::vandermonde_numba", mutates_args=())
def _vandermonde(W: Tensor, dtA: Tensor, L: int) -> Tensor:
    """K (H, L) = 2 Re(sum_n W z^l), z = exp(dtA); W, dtA (H, N) complex."""
    real = W.real.dtype
    out = torch.empty(W.shape[0], L, dtype=real)
    _forward_kernel(*_parts(W), *_parts(dtA.to(W.dtype)), out.numpy())
    return out


@_vandermonde.register_fake
def _(W, dtA, L):
    return W.new_empty((W.shape[0], L), dtype=W.real.dtype)


@torch.library.custom_op("ssmkit::vandermonde_numba_backward", mutates_args=())
def _vandermonde_backward(grad: Tensor, dtA: Tensor) -> tuple[Tensor, Tensor]:
    """(S0, S1) (H, N) complex: the sums of dK conj(z^l) and dK l conj(z^l) over l."""
    sums = [np.zeros(dtA.shape, dtype=grad.numpy().dtype) for _ in range(4)]
    _backward_kernel(grad.contiguous().numpy(), *_parts(dtA), *sums)
    s0r, s0i, s1r, s1i = (torch.from_numpy(s) for s in sums)
    return torch.complex(s0r, s0i), torch.complex(s1r, s1i)


@_vandermonde_backward.register_fake
def _(grad, dtA):
    return dtA.new_empty(dtA.shape), dtA.new_empty(dtA.shape)


def _save(ctx, inputs: tuple, output: Tensor) -> None:
    W, dtA, _ = inputs
    ctx.save_for_backward(W, dtA)


def _gradients(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
    W, dtA = ctx.saved_tensors
    s0, s1 = _vandermonde_backward(grad.to(W.real.dtype), dtA.to(W.dtype))
    return 2 * s0, (2 * W.conj() * s1).to(dtA.dtype), None


_vandermonde.register_autograd(_gradients, setup_context=_save)


@s4d_kernel_backend
def s4d_kernel_numba(W: Tensor, dtA: Tensor, L: int) -> Tensor:
    """The fused CPU S4D kernel; same signature, shapes and dtypes as `ssmkit.ops.s4d_kernel_ref`."""
    return _vandermonde(W, dtA.to(W.dtype), L)
