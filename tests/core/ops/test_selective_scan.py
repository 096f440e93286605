import pytest
import torch
import torch.nn.functional as F

from ssmkit.ops import backends, selective_scan, selective_scan_ref, selective_state_update

D64 = torch.float64


def dense_scan(u, delta, A, B, C):
    """An independent formulation: h_t = sum_{s<=t} exp(A * sum_{s<r<=t} delta_r) delta_s B_s u_s (float64)."""
    b, d, L = u.shape
    cum = torch.cumsum(delta, -1)  # (b, d, L)
    out = torch.zeros(b, d, L, dtype=u.dtype)
    for t in range(L):
        decay = torch.exp((cum[..., t : t + 1] - cum[..., : t + 1])[..., None] * A[:, None, :])  # (b,d,s,n)
        x = (delta[..., : t + 1] * u[..., : t + 1])[..., None] * B[:, None, :, : t + 1].transpose(-1, -2)
        h = (decay * x).sum(2)  # (b, d, n)
        out[..., t] = (h * C[:, None, :, t]).sum(-1)
    return out


def rand_args(b=2, d=3, L=11, n=5, dtype=D64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, d, L, generator=g, dtype=dtype)
    delta = torch.rand(b, d, L, generator=g, dtype=dtype)
    A = -torch.rand(d, n, generator=g, dtype=dtype) * 2
    B = torch.randn(b, n, L, generator=g, dtype=dtype)
    C = torch.randn(b, n, L, generator=g, dtype=dtype)
    return u, delta, A, B, C


def test_matches_independent_formulation():
    u, delta, A, B, C = rand_args()
    torch.testing.assert_close(selective_scan(u, delta, A, B, C), dense_scan(u, delta, A, B, C))


def test_bias_softplus_D_and_gate_semantics():
    u, delta, A, B, C = rand_args(seed=1)
    d = u.shape[1]
    D, z, bias = torch.randn(d, dtype=D64), torch.randn_like(u), torch.randn(d, dtype=D64)
    y = selective_scan(u, delta, A, B, C, D, z, delta_bias=bias, delta_softplus=True)
    dt = F.softplus(delta + bias[:, None])
    expected = (dense_scan(u, dt, A, B, C) + D[:, None] * u) * F.silu(z)
    torch.testing.assert_close(y, expected)


def test_layouts_of_B_and_C_agree():
    u, delta, A, B, C = rand_args(d=4)
    y = selective_scan(u, delta, A, B, C)
    grouped = selective_scan(u, delta, A, B[:, None].expand(-1, 2, -1, -1), C[:, None].expand(-1, 2, -1, -1))
    torch.testing.assert_close(grouped, y)
    # time-invariant B, C equal the variable ones held constant
    Bti, Cti = torch.randn(4, 5, dtype=D64), torch.randn(4, 5, dtype=D64)
    y_ti = selective_scan(u, delta, A, Bti, Cti)
    per_channel = torch.stack(
        [
            selective_scan(
                u[:, i : i + 1],
                delta[:, i : i + 1],
                A[i : i + 1],
                Bti[i][None, :, None].expand(2, -1, 11),
                Cti[i][None, :, None].expand(2, -1, 11),
            )[:, 0]
            for i in range(4)
        ],
        1,
    )
    torch.testing.assert_close(y_ti, per_channel)


def test_last_state_and_step_continue_the_scan():
    u, delta, A, B, C = rand_args(L=12)
    y_full = selective_scan(u, delta, A, B, C)
    y_head, state = selective_scan(u[..., :11], delta[..., :11], A, B[..., :11], C[..., :11], return_last_state=True)
    y_last = selective_state_update(state, u[..., 11], delta[..., 11], A, B[..., 11], C[..., 11])
    torch.testing.assert_close(y_head, y_full[..., :11])
    torch.testing.assert_close(y_last, y_full[..., 11])


@pytest.mark.parametrize("backend", backends()["selective_scan"]["available"])
def test_a_scan_read_in_two_pieces_equals_one_scan_with_gradients(backend):
    """The second piece starts from the first's last state (`initial_state`); the gradients of the whole sequence's
    inputs reach the first piece through that state."""
    u, delta, A, B, C = (t.requires_grad_() for t in rand_args(L=12))
    y_full = selective_scan(u, delta, A, B, C, backend=backend)
    y_head, state = selective_scan(
        u[..., :7], delta[..., :7], A, B[..., :7], C[..., :7], return_last_state=True, backend=backend
    )
    y_tail = selective_scan(u[..., 7:], delta[..., 7:], A, B[..., 7:], C[..., 7:], initial_state=state, backend=backend)
    torch.testing.assert_close(torch.cat([y_head, y_tail], -1), y_full)
    weights = torch.randn(y_full.shape, dtype=D64)
    pieces = torch.autograd.grad((torch.cat([y_head, y_tail], -1) * weights).sum(), (u, delta, A, B))
    for got, want in zip(pieces, torch.autograd.grad((y_full * weights).sum(), (u, delta, A, B)), strict=True):
        torch.testing.assert_close(got, want)


def test_gradients_flow_to_every_input():
    args = [t.requires_grad_() for t in rand_args(dtype=torch.float32)]
    D = torch.randn(3, requires_grad=True)
    z = torch.randn(2, 3, 11, requires_grad=True)
    selective_scan(*args, D, z, delta_softplus=True).sum().backward()
    for t in (*args, D, z):
        assert t.grad is not None and bool(torch.isfinite(t.grad).all())


def test_gradcheck_float64():
    args = [t.requires_grad_() for t in rand_args(b=1, d=2, L=5, n=3)]
    assert torch.autograd.gradcheck(lambda *a: selective_scan_ref(*a, delta_softplus=True), args)


def test_half_precision_input_computes_in_float32():
    u, delta, A, B, C = rand_args(dtype=torch.float32)
    y16 = selective_scan(u.bfloat16(), delta.bfloat16(), A, B, C)
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(
        y16.float(),
        selective_scan(u.bfloat16().float(), delta.bfloat16().float(), A, B, C),
        atol=2e-2,
        rtol=2e-2,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"u": torch.randn(2, 3)}, r"u must have shape \(b, d, l\)"),
        ({"delta": torch.rand(2, 3, 10)}, r"delta must have shape \(b, d, l\) with b=2, d=3, l=11"),
        ({"A": torch.rand(4, 5)}, r"A must have shape \(d, n\) with d=3"),
        ({"B": torch.rand(2, 6, 11)}, r"B must have shape \(b, n, l\)"),
        ({"u": torch.ones(2, 3, 11, dtype=torch.long)}, "floating-point"),
    ],
)
def test_bad_arguments_raise_clear_errors(change, message):
    args = dict(zip("u delta A B C".split(), rand_args(dtype=torch.float32), strict=True))
    args.update(change)
    with pytest.raises(ValueError, match=message):
        selective_scan(**args)


def test_dispatch_is_visible_and_forcing_unknown_backend_raises():
    report = backends()
    assert report["selective_scan"]["default"]["cpu"] in report["selective_scan"]["available"]
    with pytest.raises(ValueError, match="unknown backend 'cutlass'"):
        selective_scan(*rand_args(), backend="cutlass")
