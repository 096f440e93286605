"""Functional ops. Each has a readable `*_ref` reference (the spec) and a dispatcher that picks the fastest
available backend for the device; `backend="reference"` forces the spec and `backends()` shows the choice."""

from ssmkit.ops.dense_ssm import bilinear_discretise, krylov_kernel, krylov_kernel_ref
from ssmkit.ops.diag_ssm_conv import diag_ssm_conv, diag_ssm_conv_ref
from ssmkit.ops.dispatch import backends
from ssmkit.ops.dplr_kernel import dplr_kernel, dplr_kernel_ref
from ssmkit.ops.dss_kernel import dss_kernel, dss_kernel_ref, dss_recurrence
from ssmkit.ops.fft_conv import fft_conv, fft_conv_ref
from ssmkit.ops.linear_scan import linear_scan, linear_scan_ref
from ssmkit.ops.s4d_kernel import s4d_kernel, s4d_kernel_ref
from ssmkit.ops.selective_scan import (
    selective_scan,
    selective_scan_ref,
    selective_state_update,
    selective_state_update_ref,
)
from ssmkit.ops.ssd_scan import ssd_scan, ssd_scan_chunked, ssd_scan_ref
from ssmkit_kernels.scan_api import zoh_discretise

__all__ = [
    "backends",
    "bilinear_discretise",
    "diag_ssm_conv",
    "diag_ssm_conv_ref",
    "dplr_kernel",
    "dplr_kernel_ref",
    "dss_kernel",
    "dss_kernel_ref",
    "dss_recurrence",
    "fft_conv",
    "fft_conv_ref",
    "krylov_kernel",
    "krylov_kernel_ref",
    "linear_scan",
    "linear_scan_ref",
    "s4d_kernel",
    "s4d_kernel_ref",
    "selective_scan",
    "selective_scan_ref",
    "selective_state_update",
    "selective_state_update_ref",
    "ssd_scan",
    "ssd_scan_chunked",
    "ssd_scan_ref",
    "zoh_discretise",
]
