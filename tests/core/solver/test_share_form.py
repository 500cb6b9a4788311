"""The share form: amplitudes as a total and regularised shares, the same model, the right derivatives."""

import numpy as np
import torch

from napari_sushi.core.solver.engine import gradient_fisher
from napari_sushi.core.solver.problem import build_problem, share_form
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.solver.uncertainty import fisher_sigmas

from .analytic import make_cube


def _comps(models, n=2):
    out = [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]
    if n == 3:
        out.append(Component("powerlaw2", models["powerlaw"]))
    return out


def test_share_form_is_the_same_model(small_case):
    cube, truth, models, _ = small_case
    settings = FitSettings(dtype="float64", kmad={"share": 2.0})
    base = build_problem(cube, _comps(models, 3), settings)
    g = torch.Generator().manual_seed(0)
    A = torch.rand(base.A0.shape, generator=g, dtype=torch.float64) * 50
    sp = share_form(base, settings)
    assert sp.n_share == 2 and sp.n_amp == 1 and sp.A0.shape[0] == 1
    assert [f.keys for f in sp.free[-2:]] == [["thermal.share"], ["powerlaw.share"]]
    assert [f.kmad for f in sp.free[-2:]] == [2.0, 2.0]
    # the start's split: the equal split of the counts gives shares 1/3 and then 1/2 of the rest
    assert torch.allclose(sp.U0[-2], torch.full_like(sp.U0[-2], 1 / 3))
    assert torch.allclose(sp.U0[-1], torch.full_like(sp.U0[-1], 0.5))
    # shares that reproduce A (stick-breaking) give the same model
    tot = A.sum(0)
    s0 = A[0] / tot
    s1 = A[1] / (tot - A[0])
    U = torch.cat([base.U0, torch.stack([s0, s1])])
    assert torch.allclose(sp.amplitudes(tot[None], U), A)
    assert torch.allclose(sp.model(tot[None], U), base.model(A, base.U0))


def test_share_jacobian_matches_autograd(small_case):
    cube, _, models, _ = small_case
    sp = share_form(build_problem(cube, _comps(models, 3), FitSettings(dtype="float64")), FitSettings())
    U = sp.U0.clone()
    U[-2:] = torch.rand(2, U.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jac = sp.share_jacobian(U)
    for j in range(2):
        for c in range(3):
            Ug = U.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(sp.shares(Ug)[c].sum(), Ug)
            assert torch.allclose(jac[c, j], grad[sp.n_phys + j])


def test_share_form_gradient_matches_finite_differences(small_case):
    cube, _, models, _ = small_case
    sp = share_form(build_problem(cube, _comps(models), FitSettings(dtype="float64")), FitSettings())
    A, U = sp.A0.clone(), sp.U0.clone()
    U[-1] = 0.3
    g, F, _ = gradient_fisher(sp, A, U)
    k = sp.n_amp + sp.n_phys  # the share's variable
    h = 1e-6
    Up, Um = U.clone(), U.clone()
    Up[-1] += h
    Um[-1] -= h
    fd = (sp.costs(A, Up) - sp.costs(A, Um)) / (2 * h)
    assert torch.allclose(g[:, k], fd, rtol=1e-4, atol=1e-6)
    assert (torch.diagonal(F, dim1=1, dim2=2)[:, k] > 0).all()


def test_sushi_with_regularised_shares_recovers_the_split():
    cube, truth, models, _ = make_cube(16, 16, 40, counts=300.0, seed=3)
    free = fit(cube, _comps(models), FitSettings(kmad=3.0, max_iter=120, regularise_shares=False))
    shared = fit(cube, _comps(models), FitSettings(kmad=3.0, max_iter=120, regularise_shares=True))
    tot_true = truth["thermal amplitude"] + truth["powerlaw amplitude"]
    err = {}
    for name, r in (("free", free), ("shared", shared)):
        tot = r.amplitudes["thermal"] + r.amplitudes["powerlaw"]
        assert np.allclose(tot, cube.counts.sum(axis=0), rtol=0.1, atol=15)  # the total follows the counts
        err[name] = np.sqrt(np.mean((r.amplitudes["powerlaw"] / tot - truth["powerlaw amplitude"] / tot_true) ** 2))
        assert all(np.isfinite(r.sigmas[f"{c} amplitude"]).all() for c in ("thermal", "powerlaw"))
    # the regularised share is closer to the true split than free per-pixel amplitudes
    assert err["shared"] < err["free"]
    assert "thermal share" not in shared.params


def test_share_amplitude_sigmas_are_those_of_the_free_amplitudes(small_case):
    """The Cramer-Rao bound is invariant under the change of variables (A_1, A_2) -> (total, share):
    the delta method on the share form's covariance gives the free amplitudes' Fisher sigmas."""
    cube, truth, models, _ = small_case
    base = build_problem(cube, _comps(models), FitSettings(dtype="float64"))
    A = torch.stack(
        [torch.as_tensor(truth["thermal amplitude"].ravel()), torch.as_tensor(truth["powerlaw amplitude"].ravel())]
    ).double()
    sp = share_form(base, FitSettings())
    U = torch.cat([base.U0, (A[0] / A.sum(0))[None]])
    ref = fisher_sigmas(base, A, base.U0)
    sig = fisher_sigmas(sp, A.sum(0, keepdim=True), U)
    for c in ("thermal", "powerlaw"):
        assert np.allclose(sig[f"{c} amplitude"], ref[f"{c} amplitude"], rtol=1e-5)
    for k in ("thermal kT", "powerlaw index"):
        assert np.allclose(sig[k], ref[k], rtol=1e-5)
