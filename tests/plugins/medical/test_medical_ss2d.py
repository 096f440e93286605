"""SS2D: the cross-scan / cross-merge exactness, and the four directions' own selective scans."""

import torch

from ssmkit.ops import selective_scan_ref
from ssmkit_medical.ss2d import SS2D, cross_merge, cross_scan


def test_cross_scan_then_cross_merge_returns_four_times_the_input():
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(cross_merge(cross_scan(x), 5, 7), 4 * x)


def test_cross_scan_reads_rows_columns_and_both_reversed():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    xs = cross_scan(x)[0, :, 0]
    assert xs.tolist() == [[0, 1, 2, 3, 4, 5], [0, 3, 1, 4, 2, 5], [5, 4, 3, 2, 1, 0], [5, 2, 4, 1, 3, 0]]


def test_an_identity_ssm_through_scan_and_merge_returns_four_times_the_input():
    ss2d = SS2D(d_model=4, d_state=3)
    with torch.no_grad():
        ss2d.x_proj_weight[:, ss2d.dt_rank + ss2d.d_state :] = 0  # C = 0: y = D * u with D = 1
    x = torch.randn(2, ss2d.d_inner, 4, 6)
    assert torch.equal(cross_merge(ss2d.scan(cross_scan(x)), 4, 6), 4 * x)


def test_each_direction_runs_its_own_selective_scan():
    torch.manual_seed(0)
    ss2d = SS2D(d_model=4, d_state=3).double()
    with torch.no_grad():
        ss2d.Ds.copy_(torch.randn_like(ss2d.Ds))
    xs = torch.randn(2, 4, ss2d.d_inner, 12, dtype=torch.float64)
    inner, rank, n = ss2d.d_inner, ss2d.dt_rank, ss2d.d_state
    expected = []
    for k in range(4):
        own = slice(k * inner, (k + 1) * inner)
        dt, B, C = (ss2d.x_proj_weight[k] @ xs[:, k]).split([rank, n, n], dim=1)
        y = selective_scan_ref(
            xs[:, k],
            ss2d.dt_projs_weight[k] @ dt,
            -torch.exp(ss2d.A_logs[own]),
            B,
            C,
            ss2d.Ds[own],
            delta_bias=ss2d.dt_projs_bias[own],
            delta_softplus=True,
        )
        expected.append(y)
    torch.testing.assert_close(ss2d.scan(xs), torch.stack(expected, 1))


def test_ss2d_keeps_the_shape_of_a_non_square_grid():
    assert SS2D(d_model=8, d_state=4)(torch.randn(2, 3, 5, 8)).shape == (2, 3, 5, 8)
