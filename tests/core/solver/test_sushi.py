"""SUSHI fit and per-pixel fit on small analytic cubes with known truth."""

import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_sushi.core.cube import HyperCube
from napari_sushi.core.solver.engine import gradient_fisher
from napari_sushi.core.solver.memory import estimate_fit_memory
from napari_sushi.core.solver.pixelfit import pixelfit
from napari_sushi.core.solver.problem import FitSetupError, build_problem, derivative_kind
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.stopping import converged, relative_change
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.spectral.base import ModelGridError

from .analytic import LineModel, edges, make_cube

KEYS = ["thermal kT", "thermal velocity", "powerlaw index"]


def _comps(models):
    return [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]


def _rmse(a, b):
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


@pytest.fixture(scope="module")
def fits_small(small_case):
    cube, truth, models, _ = small_case
    s = fit(cube, _comps(models), FitSettings(kmad=3.0, max_iter=200))
    p = pixelfit(cube, _comps(models), FitSettings(max_iter=60, n_starts=2))
    return s, p


def test_sushi_beats_pixelfit_and_converges(small_case, fits_small):
    _, truth, _, _ = small_case
    s, p = fits_small
    assert s.stop_reason == "converged" and s.n_iter < 200
    for k in KEYS:
        assert _rmse(s.params[k], truth[k]) < 0.7 * _rmse(p.params[k], truth[k]), k
    # amplitudes are recovered to a few per cent in total
    tot = s.amplitudes["thermal"] + s.amplitudes["powerlaw"]
    assert abs(tot.mean() / 300.0 - 1) < 0.03


def test_result_fields_consistent(small_case, fits_small):
    cube, _, models, _ = small_case
    for r in fits_small:
        assert set(r.params) == set(KEYS)
        assert set(r.sigmas) == set(KEYS) | {"thermal amplitude", "powerlaw amplitude"}
        assert r.units["thermal kT"] == "keV" and r.units["thermal amplitude"] == "counts"
        assert r.model_total.shape == cube.shape and r.residual.shape == cube.shape
        np.testing.assert_allclose(r.model_total + r.residual, cube.counts, atol=1e-3)
        np.testing.assert_allclose(r.model_cubes["thermal"].sum(0), r.amplitudes["thermal"], rtol=1e-4)
        assert np.all(np.isfinite(r.cost_history)) and r.cost_history.size == r.n_iter
        assert r.provenance["models"]["thermal"]["identity"] == models["thermal"].identity()
        assert r.gof_name == "cstat/dof" and 0.7 < float(np.median(r.gof)) < 1.5
        for k in KEYS:  # inside the validity box
            lo, hi = (1.0, 4.0) if k != "thermal velocity" else (-5000, 5000)
            assert np.all(r.params[k] >= lo) and np.all(r.params[k] <= hi)


def test_line_search_costs_round_like_the_gradient_pass(small_case):
    """The proximal Newton line search compares a candidate's cost (Problem.costs) with the current
    point's (from gradient_fisher): both must be the same numbers at the same point, or rounding alone
    makes the accepted objective rise. Blocks of other sizes may round the Fisher matrix differently,
    but only at float32 rounding."""
    cube, _, models, _ = small_case
    prob = build_problem(cube, _comps(models), FitSettings())
    U = torch.rand(prob.U0.shape, generator=torch.Generator().manual_seed(1)).to(prob.dtype)
    g, F, c = gradient_fisher(prob, prob.A0, U)
    assert torch.equal(c, prob.costs(prob.A0, U))
    small = replace(prob, chunk=37)  # many blocks, the last one short
    g2, F2, c2 = gradient_fisher(small, prob.A0, U)
    assert torch.equal(c2, small.costs(prob.A0, U))
    torch.testing.assert_close(c2, c, rtol=1e-6, atol=0.0)
    torch.testing.assert_close(g2, g, rtol=1e-4, atol=1e-4 * float(g.abs().max()))
    torch.testing.assert_close(F2, F, rtol=1e-4, atol=1e-5 * float(F.abs().max()))


@pytest.mark.parametrize("deriv,tol", [("ad", 1e-6), ("fd", 3e-3), ("auto", 3e-3)])
def test_gradient_and_fisher_match_autograd(small_case, deriv, tol):
    cube, _, models, _ = small_case
    # forward-mode AD, one-sided differences, or "auto" (differences for these models, which have no own)
    st = FitSettings(dtype="float64", derivative=deriv)
    prob = build_problem(cube, _comps(models), st)
    A = prob.A0.clone()
    U = torch.rand(prob.U0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(prob.device)
    g, F, c = gradient_fisher(prob, A, U)
    A_ = A.clone().requires_grad_(True)
    U_ = U.clone().requires_grad_(True)
    total = prob.pixel_cost(prob.model(A_, U_)).sum()
    total.backward()
    torch.testing.assert_close(g[:, :2].T, A_.grad, rtol=1e-6, atol=1e-6)
    scale = U_.grad.abs().max()
    torch.testing.assert_close(g[:, 2:].T / scale, U_.grad / scale, rtol=tol, atol=tol)
    # the method asked for is the one used (it used to be picked by timing, so a loaded machine could
    # switch it and change the maps): one-sided differences are visibly inexact, autodiff is not
    err = float(((g[:, 2:].T - U_.grad) / scale).abs().max())
    assert (err > 1e-5) if deriv != "ad" else (err < 1e-6)
    # the analytic test models have no derivatives of their own: "auto" differences them
    assert {derivative_kind(deriv, c.model) for c in prob.comps} == ({"ad"} if deriv == "ad" else {"fd"})
    # Fisher = J^T diag(1/m) J with J from finite differences on one pixel
    i = 7

    def m_of(v):
        A2, U2 = A.clone(), U.clone()
        A2[:, i], U2[:, i] = v[:2], v[2:]
        return prob.model(A2, U2)[i]

    v0 = torch.cat([A[:, i], U[:, i]])
    Jfd = torch.autograd.functional.jacobian(m_of, v0)
    m = m_of(v0)
    Fref = Jfd.T @ (Jfd / m[:, None])
    torch.testing.assert_close(F[i], Fref, rtol=10 * tol, atol=tol * Fref.abs().max())


@pytest.mark.parametrize("deriv", ["auto", "ad"])
def test_emulator_derivatives_are_exact(deriv):
    # the shipped grid emulators differentiate their own spectra ("own"): the gradient equals reverse-mode
    # autograd's to rounding in float64, where one-sided differences are off by ~1e-3
    from dataclasses import replace as dc_replace

    from napari_sushi.core.simulate import get_preset, simulate_remnant
    from napari_sushi.core.spectral.registry import load_model

    sim = simulate_remnant(dc_replace(get_preset("toy"), shape=(10, 12)), 3)
    comps = [Component(c, load_model(f"toy-{c}-emulator")) for c in ("thermal", "powerlaw")]
    errors = {}
    for d in (deriv, "fd"):
        prob = build_problem(sim.cube, comps, FitSettings(dtype="float64", derivative=d))
        U = torch.rand(prob.U0.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        U = U.clamp(0.02, 0.98)  # inside the grids, away from the box edges
        g, F, _ = gradient_fisher(prob, prob.A0, U)
        U_ = U.clone().requires_grad_(True)
        prob.pixel_cost(prob.model(prob.A0, U_)).sum().backward()
        scale = float(U_.grad.abs().max())
        errors[d] = float((g[:, prob.n_amp :].T - U_.grad).abs().max()) / scale
        kinds = {derivative_kind(d, c.model) for c in prob.comps}
        assert kinds == ({"fd"} if d == "fd" else {"own"})
        assert torch.allclose(F, F.transpose(1, 2))
    assert errors[deriv] < 1e-8 < 1e-5 < errors["fd"]


def test_unknown_derivative_is_refused(small_case):
    cube, _, models, _ = small_case
    with pytest.raises(FitSetupError, match="derivative must be 'auto'.*got 'spline'"):
        build_problem(cube, _comps(models), FitSettings(derivative="spline"))


def test_pixelfit_uncertainty_coverage():
    # one component, 24x24 pixels with the same truth: coverage of the Fisher 1-sigma must be ~68 %
    cube, truth, models, _ = make_cube(24, 24, 40, counts=400.0, seed=3, with_powerlaw=False)
    r = pixelfit(cube, [Component("thermal", models["thermal"])], FitSettings(max_iter=40, n_starts=1))
    for k in ["thermal kT", "thermal velocity"]:
        cov = np.mean(np.abs(r.params[k] - truth[k]) < r.sigmas[k])
        assert 0.58 <= cov <= 0.78, (k, cov)


def test_robust_to_extreme_pixels_and_mask():
    cube, _, models, _ = make_cube(12, 12, 40, counts=50.0, seed=1)
    counts = cube.counts.copy()
    counts[:, 0, :4] = 0  # all-zero pixels
    counts[:, 1, :4] = 0
    counts[10, 1, :4] = 1  # single-count pixels
    counts[:, 5, 5] *= 2000  # ~1e5 counts
    assert counts[:, 5, 5].sum() > 5e4
    c2 = HyperCube(counts, cube.energy_edges)
    mask = np.ones((12, 12), bool)
    mask[:, 6:] = False
    for fn, st in [(fit, FitSettings(kmad=3.0, max_iter=40)), (pixelfit, FitSettings(max_iter=20, n_starts=2))]:
        for m in (None, mask):
            st.mask = m
            r = fn(c2, _comps(models), st)
            sel = np.ones((12, 12), bool) if m is None else mask
            for d in (r.params, r.sigmas, r.amplitudes):
                for k, v in d.items():
                    assert np.all(np.isfinite(v[sel])), (fn.__name__, k)
                    if m is not None:
                        assert np.all(np.isnan(v[~sel]))  # not fitted: blank
            assert np.all(np.isfinite(r.cost_history))
            assert np.isfinite(r.model_total).all()
            assert r.amplitudes["thermal"][0, 0] + r.amplitudes["powerlaw"][0, 0] < 1.0


def test_diverging_fixed_step_is_recovered(small_case):
    cube, _, models, _ = small_case
    r = fit(
        cube,
        _comps(models),
        FitSettings(step_rule="fixed", fixed_step=1e3, max_iter=15, tol=0, minimise_objective=False),
    )  # the thresholding phase's guard
    assert r.provenance["n_backtracks"] > 0  # the step was reduced
    h = r.cost_history
    assert np.all(np.isfinite(h)) and np.all(np.diff(h) <= 1e-4 * np.abs(h[:-1]) + 1e-6)
    assert all(np.isfinite(v).all() for v in r.params.values())


def test_newton_step_into_nan_region_is_rejected(small_case):
    cube, _, models, _ = small_case
    trap = LineModel(models["thermal"].energy_edges, nan_above=2.6)  # NaN spectra for kT > 2.6
    r = fit(
        cube,
        [Component("thermal", trap), Component("powerlaw", models["powerlaw"])],
        FitSettings(kmad=1.0, max_iter=20),
    )
    assert r.provenance["n_rejected_pixel_steps"] > 0
    assert all(np.isfinite(v).all() for v in r.params.values())
    assert np.nanmax(r.params["thermal kT"]) <= 2.6 + 1e-4
    assert np.all(np.isfinite(r.cost_history))


def test_cancel_within_one_iteration(small_case):
    cube, _, models, _ = small_case
    ev = threading.Event()
    seen = []

    def cb(p):
        seen.append(p.iteration)
        if p.iteration == 3:
            ev.set()

    r = fit(cube, _comps(models), FitSettings(max_iter=100, tol=0), callback=cb, cancel=ev)
    assert r.stop_reason == "cancelled" and r.n_iter == 3 and seen == [1, 2, 3]
    r2 = pixelfit(cube, _comps(models), FitSettings(max_iter=100, tol=0), cancel=lambda: True)
    assert r2.stop_reason == "cancelled" and r2.n_iter == 0


def test_callback_snapshots(small_case):
    cube, _, models, _ = small_case
    got = []
    fit(cube, _comps(models), FitSettings(max_iter=6, tol=0, snapshot_every=3), callback=got.append)
    # 3 thresholding iterations (half the budget), then 3 of the objective's minimisation, numbered on
    assert [p.iteration for p in got] == list(range(1, 7))
    assert [p.objective is not None for p in got] == [False] * 3 + [True] * 3
    assert all(p.max_iter == 6 for p in got)
    assert [p.snapshot is not None for p in got] == [False, False, True, False, False, True]
    snap = got[2].snapshot
    assert set(snap) == set(KEYS) | {"thermal amplitude", "powerlaw amplitude"}
    assert snap["thermal kT"].shape == (16, 16)
    assert got[-1].max_iter == 6 and got[-1].elapsed > 0


def test_grid_mismatch_refused(small_case):
    cube, _, models, _ = small_case
    other = LineModel(edges(50))
    with pytest.raises(ModelGridError, match="keV"):
        fit(cube, [Component("thermal", other)], FitSettings(max_iter=2))


def test_fixed_and_linked_parameters():
    cube, truth, models, _ = make_cube(12, 12, 40, counts=300.0, seed=2)
    fixed_v = truth["thermal velocity"]
    comps = [
        Component("thermal", models["thermal"], fixed={"velocity": fixed_v}),
        Component("powerlaw", models["powerlaw"]),
    ]
    r = fit(cube, comps, FitSettings(max_iter=40, kmad=2.0))
    np.testing.assert_allclose(r.params["thermal velocity"], fixed_v, rtol=1e-5, atol=1e-2)
    assert np.all(r.sigmas["thermal velocity"] == 0)
    # two line components sharing one velocity map
    e = models["thermal"].energy_edges
    comps = [Component("hot", LineModel(e)), Component("cool", LineModel(e), init={"kT": 1.2})]
    r = fit(cube, comps, FitSettings(max_iter=20, kmad=2.0, links=[("hot.velocity", "cool.velocity")]))
    np.testing.assert_array_equal(r.params["hot velocity"], r.params["cool velocity"])
    assert r.provenance["links"] == [["hot.velocity", "cool.velocity"]]
    with pytest.raises(FitSetupError, match="no such parameter"):
        fit(cube, comps, FitSettings(links=[("hot.velocity", "cool.speed")]))
    with pytest.raises(FitSetupError, match="no parameter"):
        fit(cube, [Component("hot", LineModel(e), fixed={"Z": 1.0})])


def test_warm_start_binning_band_chi2(small_case, fits_small):
    cube, truth, models, _ = small_case
    s, _ = fits_small
    r = fit(cube, _comps(models), FitSettings(kmad=3.0, max_iter=200, warm_start=s))
    # starts where the previous fit ended (a cold start begins far from it)
    assert abs(r.cost_history[0] - s.cost_history[-1]) < 0.1 * abs(s.cost_history[0] - s.cost_history[-1])
    assert r.stop_reason == "converged" and r.n_iter < 200
    rb = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=10, binning=2))
    assert rb.params["thermal kT"].shape == (8, 8)
    rc = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=30, cost="chi2"))
    assert rc.gof_name == "chi2/dof" and _rmse(rc.params["thermal kT"], truth["thermal kT"]) < 0.6


def test_stopping_rule_sign_independent():
    assert relative_change(-100.0, -101.0) == pytest.approx(1 / 101)
    assert converged([-5.0] * 3 + [-5.0000001], 1e-6, 2)
    assert not converged([-5.0, -4.0, -3.0], 1e-6, 1)
    assert converged([0.0, 0.0], 1e-6, 1)  # zero cost: no division by zero


def test_memory_estimate_scales(small_case):
    _, _, models, _ = small_case
    comps = _comps(models)
    small = estimate_fit_memory((375, 94, 94), comps, FitSettings())
    big = estimate_fit_memory((375, 256, 256), comps, FitSettings())
    assert 2 * small < big < 7.5 * small and big < 3e9
    assert estimate_fit_memory((375, 256, 256), comps, FitSettings(binning=2)) < big / 2


def test_warm_start_starts_from_the_previous_maps_and_init_wins():
    from dataclasses import replace

    cube, _, models, _ = make_cube(16, 16, counts=150.0, seed=4)
    prev = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=10, coarse_init=1))
    comps = _comps(models)
    comps[1] = replace(comps[1], init={"index": 3.0})
    p = build_problem(cube, comps, FitSettings(warm_start=prev))
    start = p.unpack(p.A0, p.U0)
    for key in ("thermal kT", "thermal velocity"):  # the previous maps (to float32 rounding)
        np.testing.assert_allclose(start[key], prev.params[key], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(start["thermal amplitude"], prev.amplitudes["thermal"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(start["powerlaw index"], 3.0, rtol=1e-6)  # the explicit init wins
    # and SUSHI skips its coarse start when warm-started: the maps keep the previous run's values
    again = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=1, warm_start=prev))
    assert _rmse(again.params["thermal kT"], prev.params["thermal kT"]) < 0.05


def test_warm_start_from_another_binning():
    """A run at one binning starts a fit at another: binned exactly (parameters averaged, amplitudes
    summed) when going coarser, resampled bilinearly (amplitudes per pixel scaled by the area) when finer."""
    cube, _, models, _ = make_cube(16, 16, counts=150.0, seed=4)
    fine = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=5, coarse_init=1))
    p2 = build_problem(cube, _comps(models), FitSettings(binning=2, warm_start=fine))
    start = p2.unpack(p2.A0, p2.U0)
    kT = fine.params["thermal kT"].astype(float)
    np.testing.assert_allclose(start["thermal kT"], kT.reshape(8, 2, 8, 2).mean(axis=(1, 3)), rtol=1e-5)
    amp = fine.amplitudes["powerlaw"].astype(float)
    np.testing.assert_allclose(start["powerlaw amplitude"], amp.reshape(8, 2, 8, 2).sum(axis=(1, 3)), rtol=1e-5)
    # and back: the binned run starts a full-resolution fit near its own maps, a quarter of the counts a pixel
    coarse = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=5, binning=2, coarse_init=1))
    p1 = build_problem(cube, _comps(models), FitSettings(warm_start=coarse))
    up = p1.unpack(p1.A0, p1.U0)
    assert up["thermal kT"].shape == (16, 16)
    np.testing.assert_allclose(up["thermal kT"][::2, ::2].mean(), coarse.params["thermal kT"].mean(), rtol=0.05)
    np.testing.assert_allclose(up["thermal amplitude"].sum(), coarse.amplitudes["thermal"].sum(), rtol=0.02)
    # a map that is no binning of the cube's image is refused with what it should be
    bad = SimpleNamespace(params={"thermal kT": np.full((5, 7), 2.0)}, amplitudes={})
    with pytest.raises(FitSetupError, match=r"map of the cube's image \(16, 16\) \(or that image binned"):
        build_problem(cube, _comps(models), FitSettings(warm_start=bad))


def test_warm_start_without_these_components_is_refused():
    cube, _, models, _ = make_cube(12, 12, counts=100.0, seed=5)
    prev = fit(cube, _comps(models), FitSettings(kmad=1.0, max_iter=3, coarse_init=1))
    other = [Component("hot", models["thermal"])]
    with pytest.raises(FitSetupError, match="no maps of these components.*it has: .*thermal kT"):
        build_problem(cube, other, FitSettings(warm_start=prev))


def test_wall_time_includes_the_uncertainties(monkeypatch):
    """The reported time is what the user waited: the per-pixel profile likelihood (a large share of a
    per-pixel fit) included, not only the solver's iterations."""
    import time

    import napari_sushi.core.solver.assemble as assemble_mod

    real = assemble_mod.profile_sigmas

    def slow_profile(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(assemble_mod, "profile_sigmas", slow_profile)
    cube, _, models, _ = make_cube(8, 8, counts=100.0, seed=6)
    t0 = time.perf_counter()
    r = pixelfit(cube, _comps(models), FitSettings(max_iter=5, n_starts=1))
    elapsed = time.perf_counter() - t0
    assert elapsed - 0.2 <= r.wall_time <= elapsed
    assert r.provenance["sigma_seconds"] >= 0.5


def test_thread_policy_one_cpu_thread_by_default_and_restored(small_case):
    cube, _, models, _ = small_case
    before = torch.get_num_threads()
    seen: list[int] = []
    for threads, expect in ((None, 1), (2, 2)):
        seen.clear()
        st = FitSettings(max_iter=2, coarse_init=1, device="cpu", threads=threads)
        fit(cube, _comps(models), st, callback=lambda p: seen.append(torch.get_num_threads()))
        assert seen and set(seen) == {expect}
        assert torch.get_num_threads() == before  # the caller's setting is back
    with pytest.raises(FitSetupError, match="threads must be"):
        fit(cube, _comps(models), FitSettings(threads=0, device="cpu"))


def test_poisson_cost_over_the_bins_with_counts_equals_the_dense_sum(small_case, monkeypatch):
    import napari_sushi.core.solver.problem as problem_module

    cube, _, models, _ = small_case
    X = np.asarray(cube.counts, float)
    sparse = replace(cube, counts=np.where(np.arange(X.shape[0])[:, None, None] % 5 == 0, X, 0.0))  # 1 bin in 5
    prob = build_problem(sparse, _comps(models), FitSettings(dtype="float64"))
    assert prob._counts_support(slice(0, prob.n_pix)) is not None  # the sparse sum is the one used
    A_ = prob.A0.clone().requires_grad_(True)
    c = prob.pixel_cost(prob.model(A_, prob.U0))
    c.sum().backward()
    monkeypatch.setattr(problem_module, "SPARSE_COUNTS", 0.0)  # every block dense
    dense = build_problem(sparse, _comps(models), FitSettings(dtype="float64"))
    assert dense._counts_support(slice(0, dense.n_pix)) is None
    A2 = dense.A0.clone().requires_grad_(True)
    c2 = dense.pixel_cost(dense.model(A2, dense.U0))
    c2.sum().backward()
    torch.testing.assert_close(c, c2, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(A_.grad, A2.grad, rtol=1e-12, atol=1e-12)
