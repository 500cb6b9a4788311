"""Grid emulator: accuracy against the generator, unit sum, gradients, dtype/device handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import standin
from napari_sushi.core.spectral.emulator import catmull_rom_weights, grid_nodes
from napari_sushi.core.spectral.training import random_draws, spectral_errors, train_emulator


def test_catmull_rom_reproduces_cubics():
    # Catmull-Rom interpolation is exact for quadratics on a uniform grid
    x = torch.arange(-1.0, 3.0)
    f = torch.tensor([0.0, 0.3, 0.77, 1.0])
    w = catmull_rom_weights(f)
    q = lambda t: 2 * t**2 - 3 * t + 1  # noqa: E731
    assert torch.allclose(w @ q(x), q(f), atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(4))


def test_grid_nodes_have_margins():
    n = grid_nodes(0.5, 5.0, 4, "log")
    assert len(n) == 7 and n[1] == pytest.approx(0.5) and n[-2] == pytest.approx(5.0) and n[0] < 0.5 < 5 < n[-1]


@pytest.mark.parametrize("comp", ["thermal", "powerlaw"])
def test_accuracy_on_unseen_draws(comp, thermal_emulator, powerlaw_emulator):
    em = thermal_emulator if comp == "thermal" else powerlaw_emulator
    th = random_draws(em.meta, 300, seed=5)
    err = spectral_errors(em, th, standin.generator(comp)(th))
    assert np.median(err) < 0.005 and np.percentile(err, 99) < 0.02


def test_interpolates_between_nodes_not_nearest(thermal_emulator):
    # a coarse emulator must still be much better than the nearest node (checks the weights are used)
    th = np.array([[1.7, 1234.0]])
    ref = standin.thermal(th)
    err = spectral_errors(thermal_emulator, th, ref)[0]
    assert err < 2e-3


def test_unit_sum_batched_and_differentiable(thermal_emulator):
    th = torch.tensor([[1.0, -300.0], [3.0, 2500.0], [0.6, 0.0]], dtype=torch.float64, requires_grad=True)
    s = thermal_emulator.spectrum(th)
    assert s.shape == (3, 375) and s.dtype == torch.float64
    assert torch.allclose(s.sum(1), torch.ones(3, dtype=torch.float64))
    # gradient matches finite differences of the same model
    w = torch.linspace(0, 1, 375, dtype=torch.float64)
    f = lambda t: (thermal_emulator.spectrum(t) * w).sum()  # noqa: E731
    f(th).backward()
    g = th.grad[1].clone()
    for j, h in enumerate([1e-5, 1e-2]):
        d = torch.zeros_like(th)
        d[1, j] = h
        fd = (f(th.detach() + d) - f(th.detach() - d)) / (2 * h)
        assert float(g[j]) == pytest.approx(float(fd), rel=1e-3, abs=1e-10)


def test_float32_and_shape_errors(thermal_emulator):
    s = thermal_emulator.spectrum(torch.tensor([[2.0, 0.0]]))
    assert s.dtype == torch.float32
    with pytest.raises(ValueError, match="shape"):
        thermal_emulator.spectrum(torch.zeros(3))


def test_follows_device(thermal_emulator):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    m = thermal_emulator.to(dev)
    s = m.spectrum(torch.tensor([[2.0, 100.0]], device=dev))
    assert s.device.type == dev
    thermal_emulator.to("cpu")


def test_training_refines_until_target():
    m = standin.meta("thermal")
    em = train_emulator(m, standin.thermal, n_val=100, start_cells=[2, 2], target=(1e-3, 5e-3), progress=False)
    curve = em.meta.extra["loss_curve"]
    assert len(curve) >= 2 and curve[-1]["val_p99"] < curve[0]["val_p99"]
    assert (curve[-1]["val_median"] < 1e-3 and curve[-1]["val_p99"] < 5e-3) or curve[-1]["val_p99"] > 0.8 * curve[-2][
        "val_p99"
    ]


def test_forward_mode_ad_matches_reverse(thermal_emulator):
    # the solver may differentiate with forward-mode AD: the fused decode must support it
    import torch.autograd.forward_ad as fwAD

    th = torch.tensor([[1.3, -700.0], [3.5, 2100.0]], dtype=torch.float64)
    tangent = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    with fwAD.dual_level():
        d = fwAD.unpack_dual(thermal_emulator.spectrum(fwAD.make_dual(th, tangent))).tangent
    J0 = torch.autograd.functional.jacobian(lambda t: thermal_emulator.spectrum(t[None])[0], th[0])
    J1 = torch.autograd.functional.jacobian(lambda t: thermal_emulator.spectrum(t[None])[0], th[1])
    assert torch.allclose(d[0], J0[:, 0], rtol=1e-6, atol=1e-12)
    assert torch.allclose(d[1], J1[:, 1], rtol=1e-6, atol=1e-12)


def _plain_spectrum(em, theta: torch.Tensor) -> torch.Tensor:
    """The emulator written with plain autograd ops (dense Catmull-Rom weights over all nodes, natural
    softmax): the reference the fused kernels must reproduce."""
    from napari_sushi.core.spectral.emulator import _to_grid_coord

    t = _to_grid_coord(theta, em.scales)
    u = (t - em.t0.to(theta.dtype)) / em.step.to(theta.dtype) + 1.0
    u = torch.minimum(torch.clamp(u, min=1.0), (em.cells + 1).to(theta.dtype))
    i = torch.minimum(torch.floor(u.detach()).long(), em.cells)
    w = catmull_rom_weights(u - i)  # (n, P, 4)
    coef = em.coef.to(theta.dtype)
    P = theta.shape[1]
    W = None
    for j in range(P):  # dense weights over axis j's nodes, (n, d_j)
        Wj = torch.zeros(theta.shape[0], coef.shape[j], dtype=theta.dtype)
        Wj = Wj.scatter(1, i[:, j : j + 1] + torch.arange(-1, 3), w[:, j])
        W = Wj if W is None else (W[:, :, None] * Wj[:, None, :]).reshape(theta.shape[0], -1)
    c = W @ coef.reshape(-1, coef.shape[-1])
    return torch.softmax(em.mean.to(theta.dtype) + c @ em.basis.to(theta.dtype), dim=1)


@pytest.mark.parametrize("comp", ["thermal", "powerlaw"])
def test_fused_kernels_match_plain_autograd_across_blocks(comp, thermal_emulator, powerlaw_emulator):
    # more rows than one cache block, float32 as in the solver: values, reverse- and forward-mode
    # derivatives of the fused interpolation/decode equal those of the plain formula
    em = thermal_emulator if comp == "thermal" else powerlaw_emulator
    th = torch.as_tensor(random_draws(em.meta, 700, seed=11), dtype=torch.float32)
    g = torch.rand(700, em.meta.n_channels, generator=torch.Generator().manual_seed(1))
    a = th.clone().requires_grad_(True)
    b = th.clone().requires_grad_(True)
    sa, sb = em.spectrum(a), _plain_spectrum(em, b)
    assert torch.allclose(sa, sb, rtol=1e-4, atol=1e-9)
    (ga,) = torch.autograd.grad(sa, a, g)
    (gb,) = torch.autograd.grad(sb, b, g)
    assert torch.allclose(ga, gb, rtol=2e-3, atol=1e-4 * float(gb.abs().max()))
    import torch.autograd.forward_ad as fwAD

    tangent = torch.randn(th.shape, generator=torch.Generator().manual_seed(2)) * th.abs().mean(0)
    with fwAD.dual_level():
        d = fwAD.unpack_dual(em.spectrum(fwAD.make_dual(th, tangent))).tangent
    _, jv = torch.autograd.functional.jvp(lambda t: _plain_spectrum(em, t), th, tangent)
    assert torch.allclose(d, jv, rtol=2e-3, atol=1e-4 * float(jv.abs().max()))


def test_simulator_source_takes_a_preset_of_ones_own():
    """A user's own preset (here: the wide one absorbed by twice the N_H) trains models of that source:
    its spectra carry the stronger absorption, its metadata its name and fixed values."""
    from dataclasses import replace

    from napari_sushi.core.simulate import get_preset
    from napari_sushi.core.spectral.training import simulator_source

    wide = get_preset("wide")
    pl = wide.components["powerlaw"]
    mine = replace(wide, name="mine", components={"powerlaw": replace(pl, fixed={**pl.fixed, "nH": 1.0})})
    meta, gen = simulator_source(mine, "powerlaw")
    _, gen_wide = simulator_source("wide", "powerlaw")
    assert meta.extra["preset"] == "mine" and meta.extra["fixed"]["nH"] == 1.0
    theta = np.array([[2.0]])
    a, b = gen(theta)[0], gen_wide(theta)[0]
    soft = meta.energy_edges[1:] <= 1.0  # below 1 keV the extra absorption removes most of the flux
    assert a[soft].sum() < 0.6 * b[soft].sum()
    np.testing.assert_allclose(a[-50:], b[-50:], rtol=0.05)  # near 8 keV both are almost unabsorbed


@pytest.mark.parametrize("comp", ["thermal", "powerlaw"])
def test_own_tangents_equal_forward_mode_autodiff(comp, thermal_emulator, powerlaw_emulator):
    # the emulator's hand-written derivatives (the solver's default, derivative="auto") are the
    # forward-mode derivatives of its spectrum along each asked column, times the column's scale, in
    # float64 across more rows than one decode block (a log axis and a linear one for the thermal)
    import torch.autograd.forward_ad as fwAD

    em = thermal_emulator if comp == "thermal" else powerlaw_emulator
    assert em.exact_tangents
    th = torch.as_tensor(random_draws(em.meta, 700, seed=5), dtype=torch.float64)
    cols = list(range(em.n_params))
    scales = [0.5 + p for p in cols]
    S, T = em.spectrum_and_tangents(th, cols, scales)
    assert T.shape == (len(cols), 700, em.meta.n_channels)
    assert torch.equal(S, em.spectrum(th))
    for q, (p, sc) in enumerate(zip(cols, scales)):
        tangent = torch.zeros_like(th)
        tangent[:, p] = sc
        with fwAD.dual_level():
            d = fwAD.unpack_dual(em.spectrum(fwAD.make_dual(th, tangent))).tangent
        torch.testing.assert_close(T[q], d, rtol=1e-9, atol=1e-12 * float(d.abs().max()))
        assert float(T[q].abs().max()) > 0  # the spectrum does change along every parameter


def test_own_tangents_vanish_outside_the_grid(powerlaw_emulator):
    # beyond the grid the coordinate is clamped, so the spectrum no longer changes: zero derivative
    em = powerlaw_emulator
    high = float(em.bounds[0, 1])
    th = torch.tensor([[high + 50.0], [high - 0.1]], dtype=torch.float64)
    _, T = em.spectrum_and_tangents(th, [0], [1.0])
    assert float(T[0, 0].abs().max()) == 0.0 and float(T[0, 1].abs().max()) > 0.0


@pytest.mark.parametrize("name", ["toy-thermal", "toy-powerlaw", "wide-thermal", "wide-powerlaw"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_own_tangents_at_the_box_edges(name, dtype):
    # a parameter exactly on its box's edge (where the solver's box projection puts it) keeps a non-zero
    # derivative, that of the grid's last cell: rounding used to put the grid coordinate a few ulps past
    # the grid's end (toy thermal kT = 5 keV in float64), which zeroed it, and such a pixel never left the edge
    from napari_sushi.core.spectral.registry import load_model

    em = load_model(f"{name}-emulator").to(dtype)
    lo = torch.as_tensor(em.bounds[:, 0], dtype=dtype)
    hi = torch.as_tensor(em.bounds[:, 1], dtype=dtype)
    mid = 0.5 * (lo + hi)
    for p in range(em.n_params):
        for edge in (lo[p], hi[p]):
            th = mid.clone()[None]
            th[0, p] = edge
            _, T = em.spectrum_and_tangents(th, [p], [float(hi[p] - lo[p])])
            assert float(T.abs().max()) > 0, (name, em.meta.param_names[p], float(edge))
