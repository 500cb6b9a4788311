"""The exact-Doppler IAE: the shift operator against the physics, and the model's structure (the
velocity enters only through the exact shift, lambda <-> theta carry it exactly, files round-trip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sushi.core.physics.continuum import bremsstrahlung
from napari_sushi.core.physics.grid import C_KMS
from napari_sushi.core.spectral.files import load_model_file, save_model
from napari_sushi.core.spectral.iae import shifted_bin_masses
from napari_sushi.core.spectral.training import adaptive_rest_edges, train_model


@pytest.mark.parametrize("v", [-5500.0, 0.0, 1234.0])
def test_shift_operator_matches_physics_continuum(v):
    """Rest-frame bremsstrahlung on a 2 eV grid, shifted, equals the physics' shifted continuum."""
    rest = np.linspace(2.5, 9.5, 3501)
    obs = np.linspace(3.0, 8.5, 551)
    m = torch.as_tensor(bremsstrahlung(rest, np.array([2.0]), 0.0), dtype=torch.float64)
    s = torch.tensor([1.0 - v / C_KMS], dtype=torch.float64, requires_grad=True)
    got = shifted_bin_masses(m, torch.as_tensor(rest), torch.as_tensor(obs), s)
    ref = bremsstrahlung(obs, np.array([2.0]), v)
    assert np.allclose(got.detach().numpy(), ref, rtol=2e-5)
    (g,) = torch.autograd.grad(got.sum(), s)
    assert torch.isfinite(g).all() and float(g.abs()) > 0


def test_shift_operator_moves_a_line_exactly():
    """All the mass of one rest bin lands on [a s, b s], split by overlap; identity at s = 1."""
    rest = torch.linspace(0.0, 10.0, 11, dtype=torch.float64)
    m = torch.zeros(1, 10, dtype=torch.float64)
    m[0, 5] = 1.0  # uniform on [5, 6]
    assert torch.equal(shifted_bin_masses(m, rest, rest, torch.ones(1, dtype=torch.float64)), m)
    obs = torch.linspace(0.0, 10.0, 41, dtype=torch.float64)  # 0.25 bins
    got = shifted_bin_masses(m, rest, obs, torch.tensor([1.1], dtype=torch.float64))[0]
    lo, hi = obs[:-1], obs[1:]
    want = (torch.minimum(hi, torch.tensor(6.6)) - torch.maximum(lo, torch.tensor(5.5))).clamp_min(0) / 1.1
    assert torch.allclose(got, want, atol=1e-12)


def test_adaptive_rest_edges_refines_only_lines():
    coarse = np.linspace(0.0, 1.0, 11)
    fine = np.ones((1, 10 * 8))
    fine[0, 8 * 3 + 5] += 50.0  # a narrow line inside coarse bin 3
    edges = adaptive_rest_edges(coarse, fine, 8, 1e-3)
    assert np.all(np.isin(np.round(coarse, 12), np.round(edges, 12)))
    assert np.all(np.diff(edges)[np.r_[0:3, 9 : len(edges) - 1]] == pytest.approx(0.1))
    assert np.isclose(np.diff(edges).min(), 0.1 / 8)


@pytest.fixture(scope="module")
def doppler_iae():
    torch.set_num_threads(1)
    return train_model(
        "iae",
        preset="toy",
        component="thermal",
        n_random=60,
        max_epochs=2,
        progress=False,
        width=32,
        latent=8,
        head_width=16,
    )


def _rest_and_spectrum(m, th):
    lam = m.lambda_from_theta(th)
    rest, u = m.decode_coefficients(lam)
    return torch.softmax(rest, 1), u, m.spectrum(th)


def test_doppler_iae_velocity_is_exact(doppler_iae):
    m = doppler_iae.double()
    assert m.config()["doppler"]["velocity_index"] == 1 and m.meta.extra["training"]["doppler"]["rest_bins"] > 800
    th = torch.tensor([[1.3, -4200.0], [1.3, 0.0], [1.3, 3700.0], [3.5, 250.0]], dtype=torch.float64)
    with torch.no_grad():
        lam = m.lambda_from_theta(th)
        assert torch.allclose(lam.sum(1), torch.ones(4, dtype=torch.float64))
        back = m.theta_from_lambda(lam)
        assert torch.allclose(back[:, 1], th[:, 1], atol=1e-6)  # velocity read out exactly
        rest, u, spec = _rest_and_spectrum(m, th)
    # the rest-frame spectrum does not depend on the velocity
    assert torch.allclose(rest[0], rest[1], rtol=1e-12) and torch.allclose(rest[1], rest[2], rtol=1e-12)
    # the observed spectrum is the rest spectrum shifted (independent NumPy evaluation) and folded
    r, e = m.rest_edges.numpy(), m.obs_edges.numpy()
    for i in range(4):
        cum = np.r_[0.0, np.cumsum(rest[i].numpy())]
        s = 1.0 - th[i, 1].item() / C_KMS
        counts = np.diff(np.interp(e / s, r, cum)) @ m.fold.numpy()
        assert np.allclose(spec[i].numpy(), counts / counts.sum(), rtol=1e-9, atol=1e-15)
    assert not torch.allclose(spec[0], spec[2], rtol=1e-3)


def test_doppler_iae_lambda_api_and_roundtrip(doppler_iae, tmp_path):
    m = doppler_iae.float()
    th = torch.tensor([[2.0, -1000.0], [4.0, 3000.0]])
    with torch.no_grad():
        spec = m.spectrum(th)
        lam = m.lambda_from_spectrum(spec)
        assert torch.allclose(lam.sum(1), torch.ones(2), atol=1e-5)
        assert m.spectrum_from_lambda(lam).shape == spec.shape
    back = load_model_file(save_model(m, tmp_path / "d.safetensors"))
    assert back.identity() == m.identity() and back.config() == m.config()
    with torch.no_grad():
        assert torch.equal(back.spectrum(th), spec)


def test_lbfgs_polish_keeps_only_an_improvement():
    """The float64 L-BFGS phase lowers the validation loss or leaves the model as it was (float32)."""
    torch.set_num_threads(1)
    m = train_model(
        "iae",
        preset="toy",
        component="thermal",
        n_random=40,
        max_epochs=1,
        progress=False,
        width=16,
        latent=4,
        head_width=8,
        polish_seconds=1.0,
    )
    rec = m.meta.extra["training"]["polish"]
    assert rec["lbfgs_steps"] >= 1 and m.fold.dtype == torch.float32 and m.basis.dtype == torch.float32
    assert rec["kept"] == (rec["val_after"] < rec["val_before"])
