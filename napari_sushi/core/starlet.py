"""Batched isotropic undecimated starlet (B3-spline "a trous") transform and soft-thresholding.

Runs as tensor ops on whatever device the input lives on, for many maps at once, so the solver's
proximal step never leaves the device. Detail_j = smooth_j - smooth_{j+1}; the reconstruction is the
plain sum of all detail planes and the coarse plane (exact by construction). Borders are mirrored
(reflection without repeating the edge pixel), valid for any image size and any number of scales.
"""

from __future__ import annotations

import functools

import torch

_B3 = (1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16)


@functools.lru_cache(maxsize=512)
def _mirror_index(n: int, offset: int, device: torch.device) -> torch.Tensor:
    """Indices i + offset for i in 0..n-1, folded back into [0, n) by mirror reflection.

    Cached: the solver smooths maps of the same few sizes thousands of times per iteration, and
    rebuilding the indices was two thirds of the tensor operations of a smoothing (each a kernel launch
    on a GPU).
    """
    idx = torch.arange(n, device=device) + offset
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


@functools.lru_cache(maxsize=512)
def _tap_index(n: int, step: int, device: torch.device) -> torch.Tensor:
    """The five taps' mirrored indices (5 n,), tap by tap: where each output pixel reads its inputs."""
    return torch.cat([_mirror_index(n, k * step, device) for k in range(-2, 3)])


@functools.lru_cache(maxsize=16)
def _weights(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The B3 taps as a (1, 5) row, made once per dtype and device (no host-to-device copy per call)."""
    return torch.tensor([_B3], dtype=dtype, device=device)


def _smooth_axis(x: torch.Tensor, step: int, dim: int) -> torch.Tensor:
    """Convolve along ``dim`` (-1 or -2) with the B3 kernel whose taps are ``step`` pixels apart.

    One gather of all five taps' inputs and one batched product with the weights: two kernels per axis
    (the rest are views) instead of fourteen (an index_select, multiply and add per tap). Along the rows
    the maps are transposed (a view) so that the product is one per map, not one per row. One thread,
    3 maps, J = 3, transform / adjoint: 94x94 0.56 / 0.45 ms -> 0.31 / 0.56 ms; 512x512 120 / 95 ms ->
    27 / 19 ms.
    """
    if dim == -1:  # along the rows: the same on the transposed maps (views), so the product is one per map
        return _smooth_axis(x.transpose(-1, -2), step, -2).transpose(-1, -2)
    n, m = x.shape[-2], x.shape[-1]
    taps = torch.index_select(x, -2, _tap_index(n, step, x.device)).reshape(-1, 5, n * m)  # (maps, tap, pixels)
    return torch.bmm(_weights(x.dtype, x.device).expand(taps.shape[0], 1, 5), taps).reshape(x.shape)


def starlet_smooth(x: torch.Tensor, scale: int) -> torch.Tensor:
    """One separable B3 smoothing of (..., Y, X) maps with holes 2**scale."""
    step = 2**scale
    return _smooth_axis(_smooth_axis(x, step, -1), step, -2)


def starlet_transform(x: torch.Tensor, n_scales: int) -> torch.Tensor:
    """Starlet coefficients of maps ``x`` (..., Y, X): returns (..., n_scales + 1, Y, X).

    Planes 0..n_scales-1 are the detail scales (finest first); the last plane is the coarse scale.
    """
    if n_scales < 0:
        raise ValueError(f"n_scales must be >= 0; got {n_scales}")
    planes = []
    c = x
    for j in range(n_scales):
        s = starlet_smooth(c, j)
        planes.append(c - s)
        c = s
    planes.append(c)
    return torch.stack(planes, dim=-3)


def starlet_reconstruct(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`starlet_transform`: the sum over the scale axis (-3)."""
    return coeffs.sum(dim=-3)


def _smooth_axis_adjoint(y: torch.Tensor, step: int, dim: int) -> torch.Tensor:
    """Adjoint of :func:`_smooth_axis`: each tap's weighted values are added back where they were read
    (one product with the weights and one scatter-add over all five taps)."""
    n = y.shape[dim]
    w = _weights(y.dtype, y.device).T  # (5, 1)
    if dim == -1:
        spread = (w * y.reshape(-1, 1, n)).reshape(*y.shape[:-1], 5 * n)
    else:
        spread = (w * y.reshape(-1, 1, n * y.shape[-1])).reshape(*y.shape[:-2], 5 * n, y.shape[-1])
    return torch.zeros_like(y).index_add_(y.ndim + dim, _tap_index(n, step, y.device), spread)


def starlet_smooth_adjoint(y: torch.Tensor, scale: int) -> torch.Tensor:
    """Adjoint of :func:`starlet_smooth` (the axes in the reverse order)."""
    step = 2**scale
    return _smooth_axis_adjoint(_smooth_axis_adjoint(y, step, -2), step, -1)


def starlet_adjoint(coeffs: torch.Tensor) -> torch.Tensor:
    """Exact adjoint W^T of :func:`starlet_transform`: (..., J + 1, Y, X) -> (..., Y, X).

    Mirror borders make the smoothing matrix S_j non-symmetric, so ``W^T`` is not the transform with
    flipped kernels. With detail_j = (I - S_j) c_j, c_{j+1} = S_j c_j and the coarse plane c_J, the
    adjoint is the Horner sum r = y_J, then r = y_j + S_j^T (r - y_j) for j = J-1 .. 0, each S_j^T
    scattering the taps back (:func:`starlet_smooth_adjoint`). A primal-dual solver needs the true
    adjoint: its fixed point is the minimiser of ``L(x) + sum lambda |W x|`` only if ``W^T`` is the
    adjoint of ``W``. (Written out rather than taken by autograd, which re-ran the forward transform
    on every call: 2.8x faster, and half the kernel launches on a GPU.)
    """
    J = coeffs.shape[-3] - 1
    r = coeffs[..., J, :, :]
    for j in range(J - 1, -1, -1):
        y = coeffs[..., j, :, :]
        r = y + starlet_smooth_adjoint(r - y, j)
    return r


def plane_gains(n_scales: int) -> list[float]:
    """||h_j|| for each plane of :func:`starlet_transform` (the J detail filters, then the coarse one).

    The noise gain of plane j: white noise of std s has std ``||h_j|| s`` in plane j (away from borders).
    """
    delta = torch.zeros(1, 33, 33, dtype=torch.float64)
    delta[0, 16, 16] = 1.0
    w = starlet_transform(delta, n_scales)[0]
    return [float(w[j].norm()) for j in range(n_scales + 1)]


def soft_threshold(x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """sign(x) * max(|x| - t, 0), with ``t`` broadcast against ``x``."""
    return torch.sign(x) * torch.clamp(torch.abs(x) - t, min=0.0)


def mad_sigma(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Robust noise level median|z - median z| / 0.6745 over the last axis (restricted to ``mask``)."""
    if mask is not None:
        x = x[..., mask]
    if x.shape[-1] == 0:
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    med = x.median(dim=-1, keepdim=True).values
    return (x - med).abs().median(dim=-1).values / 0.6745


def starlet_denoise(
    maps: torch.Tensor,
    thresholds: torch.Tensor,
    n_scales: int,
) -> torch.Tensor:
    """Soft-threshold the ``n_scales`` finest detail scales of maps (B, Y, X) and reconstruct.

    ``thresholds`` broadcasts against the detail coefficients (B, n_scales, Y, X): e.g. (B, J, 1, 1)
    for one value per map and scale, or (B, J, Y, X) for a per-pixel threshold. The coarse scale is
    never thresholded.
    """
    if n_scales == 0:
        return maps
    w = starlet_transform(maps, n_scales)
    detail = soft_threshold(w[..., :n_scales, :, :], thresholds)
    return detail.sum(dim=-3) + w[..., n_scales, :, :]
