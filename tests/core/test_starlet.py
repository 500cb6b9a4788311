"""Starlet transform: exact reconstruction, kernel, mirror borders, batched = per-map, thresholding."""

import numpy as np
import pytest
import torch

from napari_sushi.core.starlet import (
    plane_gains,
    starlet_adjoint,
    starlet_reconstruct,
    mad_sigma,
    soft_threshold,
    starlet_denoise,
    starlet_smooth,
    starlet_transform,
)


def _smooth_numpy(img: np.ndarray, step: int) -> np.ndarray:
    """Independent reference: explicit loops with symmetric (reflect) borders."""
    k = np.array([1, 4, 6, 4, 1]) / 16.0
    ny, nx = img.shape

    def refl(i, n):
        if n == 1:
            return 0
        p = 2 * (n - 1)
        i = i % p
        return p - i if i >= n else i

    tmp = np.zeros_like(img)
    for y in range(ny):
        for x in range(nx):
            tmp[y, x] = sum(k[t] * img[y, refl(x + (t - 2) * step, nx)] for t in range(5))
    out = np.zeros_like(img)
    for y in range(ny):
        for x in range(nx):
            out[y, x] = sum(k[t] * tmp[refl(y + (t - 2) * step, ny), x] for t in range(5))
    return out


@pytest.mark.parametrize("shape", [(12, 9), (5, 7), (1, 6)])
def test_smooth_matches_loop_reference(shape):
    rng = np.random.default_rng(0)
    img = rng.normal(size=shape)
    for j in range(3):  # holes larger than the image exercise repeated mirroring
        got = starlet_smooth(torch.tensor(img), j).numpy()
        np.testing.assert_allclose(got, _smooth_numpy(img, 2**j), atol=1e-12)


def test_reconstruction_exact_and_batched():
    rng = np.random.default_rng(1)
    maps = torch.tensor(rng.normal(size=(3, 20, 17)))
    w = starlet_transform(maps, 4)
    assert w.shape == (3, 5, 20, 17)
    torch.testing.assert_close(w.sum(dim=-3), maps)
    for b in range(3):  # batched equals one map at a time
        torch.testing.assert_close(starlet_transform(maps[b], 4), w[b])


def test_constant_map_has_no_details_and_smooth_preserves_mean():
    w = starlet_transform(torch.full((1, 16, 16), 2.5, dtype=torch.float64), 3)
    assert torch.allclose(w[0, :3], torch.zeros(3, 16, 16, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(w[0, 3], torch.full((16, 16), 2.5, dtype=torch.float64))


def test_soft_threshold_and_mad():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 2.0])
    torch.testing.assert_close(soft_threshold(x, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 1.0]))
    g = torch.tensor(np.random.default_rng(2).normal(0, 2.0, size=20000))
    assert abs(float(mad_sigma(g)) - 2.0) < 0.06
    mask = torch.zeros(20000, dtype=torch.bool)
    mask[:11] = True  # values 0..10: median 5, median absolute deviation 3
    assert float(mad_sigma(g * 0 + torch.arange(20000.0), mask)) == pytest.approx(3 / 0.6745, rel=1e-6)


def test_denoise_keeps_coarse_and_removes_noise():
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:32, 0:32]
    clean = np.sin(x / 8.0) + np.cos(y / 10.0)
    noisy = clean + rng.normal(0, 0.3, size=clean.shape)
    t = torch.tensor(noisy)[None]
    den = starlet_denoise(t, torch.tensor(3 * 0.3), 2)[0].numpy()
    assert np.sqrt(np.mean((den - clean) ** 2)) < 0.6 * np.sqrt(np.mean((noisy - clean) ** 2))
    # infinite threshold: only the coarse plane remains; zero threshold: identity
    huge = starlet_denoise(t, torch.tensor(1e9), 2)
    torch.testing.assert_close(huge, starlet_transform(t, 2)[:, 2])
    torch.testing.assert_close(starlet_denoise(t, torch.tensor(0.0), 2), t)


@pytest.mark.parametrize("shape", [(5, 7), (20, 23), (1, 9), (3, 2)])
def test_adjoint_is_exact_with_mirror_borders(shape):
    """<W x, c> = <x, W^T c> for random x and c (the primal-dual solver relies on the true adjoint)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    c = torch.randn(2, 4, *shape, generator=g, dtype=torch.float64)
    lhs = float((starlet_transform(x, 3) * c).sum())
    rhs = float((x * starlet_adjoint(c)).sum())
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    # and it is not the reconstruction R (the sum of the planes, a left inverse of W): W is redundant
    assert not torch.allclose(starlet_adjoint(c), starlet_reconstruct(c))


def test_adjoint_is_the_transpose_of_the_transform_matrix():
    """Column by column: W^T built from the adjoint equals the transpose of W built from the transform."""
    shape, J = (4, 6), 2
    n = shape[0] * shape[1]
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    W = starlet_transform(basis, J).reshape(n, -1).T  # (coefficients, pixels)
    m = W.shape[0]
    cbasis = torch.eye(m, dtype=torch.float64).reshape(m, J + 1, *shape)
    Wt = starlet_adjoint(cbasis).reshape(m, n).T  # column i = W^T e_i
    torch.testing.assert_close(Wt, W.T, rtol=0, atol=1e-15)


def test_plane_gains_are_the_noise_gains():
    """White noise of std 1 has std ||h_j|| in plane j (the regulariser's weights rest on this)."""
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(1, 256, 256, generator=g, dtype=torch.float64)
    w = starlet_transform(noise, 3)[0, :, 16:-16, 16:-16]  # away from the mirrored borders
    gains = plane_gains(3)
    assert len(gains) == 4 and gains[0] > gains[1] > gains[2]
    for j in range(4):
        assert abs(float(w[j].std()) / gains[j] - 1.0) < 0.1, j
