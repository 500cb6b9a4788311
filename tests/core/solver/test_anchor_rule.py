"""The "auto" anchor: coupling per map, empirical-Bayes shrinkage, the "coarse" penalty, resolution."""

import numpy as np
import pytest
import torch

from napari_sushi.core.solver.anchor_rule import COUPLED, auto_modes, coupling, empirical_bayes
from napari_sushi.core.solver.objective import Penalty, resolve_anchor
from napari_sushi.core.solver.problem import build_sushi_problem
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.starlet import starlet_transform


def _comps(models):
    return [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]


@pytest.fixture(scope="module")
def zoo32():
    """A 32x32 zoo remnant at the toy's counts with the shipped toy emulators (a real instrument's band,
    where a hot plasma and a steep power law trade counts)."""
    from napari_sushi.core.spectral.registry import load_model
    from napari_sushi.core.zoo import ZooCase, simulate_zoo

    sim, _ = simulate_zoo(ZooCase(1, 1.0, (32, 32)))
    models = {c: load_model(f"toy-{c}-emulator") for c in ("thermal", "powerlaw")}
    return sim.cube, models


def test_empirical_bayes_recovers_the_spread_and_beats_the_raw_estimates():
    rng = np.random.default_rng(3)
    n, m, tau = 4000, 0.4, 0.1
    true = m + tau * rng.standard_normal(n)
    s2 = rng.choice([0.05**2, 0.2**2, 1.0], size=n)  # well, poorly and not at all measured pixels
    u = torch.tensor(true + np.sqrt(s2) * rng.standard_normal(n))
    valid = torch.ones(n, dtype=torch.bool)
    valid[:10] = False
    shrunk, level, tau2 = empirical_bayes(u, torch.tensor(s2), valid)
    assert abs(level - m) < 0.02
    assert 0.75 * tau**2 < tau2 < 1.3 * tau**2
    err_raw = np.mean((u.numpy() - true)[10:] ** 2)
    err = np.mean((shrunk.numpy() - true)[10:] ** 2)
    assert err < 0.2 * err_raw  # the posterior mean, not the noisy estimate
    well = (s2 == 0.05**2) & (np.arange(n) >= 10)
    assert np.corrcoef(shrunk.numpy()[well], true[well])[0, 1] > 0.8  # a well measured pixel keeps its value
    assert torch.all(shrunk[:10] == level)  # invalid pixels take the level
    # nothing measured (no valid pixel, or only infinite variances): returned as given, no NaN
    for s2_bad, valid_bad in ((torch.tensor(s2), torch.zeros(n, dtype=torch.bool)), (torch.full((n,), np.inf), valid)):
        same, lvl, _ = empirical_bayes(u, s2_bad, valid_bad)
        assert torch.equal(same, u) and np.isnan(lvl)
    lost = s2 == 1.0
    assert np.max(np.abs(shrunk.numpy()[lost][10:] - level)) < 0.1  # an unmeasured one moves to it


def test_coupling_separates_the_line_shift_from_the_continuum_trade(zoo32, small_case):
    cube, models = zoo32
    prob = build_sushi_problem(cube, _comps(models), FitSettings())  # shares regularised by default
    vif = coupling(prob, prob.A0, prob.U0)
    keys = [fp.keys[0] for fp in prob.free]
    assert keys == ["thermal.kT", "thermal.velocity", "powerlaw.index", "thermal.share"]
    # measured: 18.0, 1.06, 30.7, 5.5
    assert float(vif[1]) < 1.2  # the line shift: no continuum mimics it
    assert min(float(vif[0]), float(vif[2]), float(vif[3])) > 2 * COUPLED  # continuum shapes and split trade off
    assert auto_modes(prob, prob.A0, prob.U0) == {
        "thermal.kT": "coarse",
        "thermal.velocity": "start",
        "powerlaw.index": "coarse",
        "thermal.share": "coarse",
    }
    # the analytic test models' narrow 5-8 keV band leaves every map nearly independent (all < 1.8): "start"
    cube, _, analytic, _ = small_case
    prob = build_sushi_problem(cube, _comps(analytic), FitSettings())
    assert set(auto_modes(prob, prob.A0, prob.U0).values()) == {"start"}


def test_resolve_anchor_keeps_given_values_and_measures_the_rest(zoo32):
    cube, models = zoo32
    prob = build_sushi_problem(cube, _comps(models), FitSettings())
    measured = auto_modes(prob, prob.A0, prob.U0)
    assert measured["powerlaw.index"] == "coarse"  # so a missing key resolving to "start" would show
    assert resolve_anchor("auto", prob, prob.A0, prob.U0) == measured
    given = {"thermal.kT": "free", "share": "start"}
    resolved = resolve_anchor(given, prob, prob.A0, prob.U0)
    assert resolved == measured | {"thermal.kT": "free", "thermal.share": "start"}
    assert resolve_anchor("coarse", prob, prob.A0, prob.U0) == "coarse"  # nothing to measure
    explicit = {"thermal.kT": "start", "thermal.velocity": "free", "powerlaw.index": "start", "share": "coarse"}
    assert resolve_anchor(explicit, prob, prob.A0, prob.U0) is explicit


def test_coarse_anchor_penalises_the_maps_detail_and_the_starts_large_scales(small_case):
    cube, _, models, _ = small_case
    st = FitSettings(n_scales=2, regularise_shares=False)
    prob = build_sushi_problem(cube, _comps(models), st)
    g = torch.Generator().manual_seed(0)
    U = torch.rand(prob.U0.shape, generator=g, dtype=prob.U0.dtype)

    def planes(u):
        return starlet_transform(u.reshape(u.shape[0], *prob.shape), 2)

    start = Penalty(prob, FitSettings(n_scales=2, anchor="start")).coefficients(U)
    free = Penalty(prob, FitSettings(n_scales=2, anchor="free")).coefficients(U)
    coarse = Penalty(prob, FitSettings(n_scales=2, anchor="coarse")).coefficients(U)
    torch.testing.assert_close(start, planes(U - prob.U0))
    torch.testing.assert_close(free, planes(U))
    torch.testing.assert_close(coarse[:, :2], planes(U)[:, :2])  # the map's own detail
    torch.testing.assert_close(coarse[:, 2], planes(U)[:, 2] - planes(prob.U0)[:, 2])  # level vs the start's
    mixed = Penalty(prob, FitSettings(n_scales=2, anchor={"thermal.kT": "coarse", "thermal.velocity": "start"}))
    assert mixed.coarse_maps is not None and mixed.coarse_maps[:2].tolist() == [True, False]
    # a new anchor (a bootstrap replica's) moves the coarse plane's reference, not the detail planes'
    pen = Penalty(prob, FitSettings(n_scales=2, anchor="coarse"))
    other = torch.rand(prob.U0.shape, generator=g, dtype=prob.U0.dtype)
    pen.Uref = other
    moved = pen.coefficients(U)
    torch.testing.assert_close(moved[:, :2], planes(U)[:, :2])
    torch.testing.assert_close(moved[:, 2], planes(U)[:, 2] - planes(other)[:, 2])


def test_fit_records_the_anchors_it_chose(zoo32):
    cube, models = zoo32
    res = fit(cube, _comps(models), FitSettings(max_iter=20))
    anchor = res.provenance["settings"]["anchor"]
    assert isinstance(anchor, dict) and "auto" not in anchor.values()
    assert set(anchor) == {"thermal.kT", "thermal.velocity", "powerlaw.index", "thermal.share"}
    assert anchor["thermal.velocity"] == "start" and anchor["thermal.kT"] == "coarse"


@pytest.mark.parametrize("bad", ["level", {"thermal.kT": "loose"}])
def test_unknown_anchor_names_the_choices(small_case, bad):
    from napari_sushi.core.solver.problem import FitSetupError

    cube, _, models, _ = small_case
    with pytest.raises(FitSetupError, match="'auto', 'start', 'coarse', 'free'"):
        fit(cube, _comps(models), FitSettings(max_iter=2, anchor=bad))


def test_coarse_start_fits_coarse_anchored_maps_per_pixel(zoo32):
    """A map anchored "coarse" is not thresholded in the coarse fit (its strength does not reach its start),
    while a "start"-anchored one is."""
    from napari_sushi.core.solver.sushi import start_and_anchor

    cube, models = zoo32

    def index_start(anchor, k):
        st = FitSettings(anchor={"powerlaw.index": anchor}, kmad={"powerlaw.index": k})
        comps, resolved = start_and_anchor(cube, _comps(models), st)
        assert resolved["powerlaw.index"] == anchor and resolved["thermal.velocity"] == "start"
        return comps[1].init["index"]

    np.testing.assert_array_equal(index_start("coarse", 1.0), index_start("coarse", 20.0))
    assert np.abs(index_start("start", 1.0) - index_start("start", 20.0)).max() > 0.05


def test_bootstrap_refits_with_the_chosen_anchors(zoo32):
    """The parametric bootstrap refits each replica with the resolved anchors (its own shrunk start for the
    "coarse" maps): finite, positive sigmas below the box's spread, and the fit's own maps unchanged."""
    cube, models = zoo32
    st = FitSettings(max_iter=20)
    plain = fit(cube, _comps(models), st)
    boot = fit(cube, _comps(models), FitSettings(max_iter=20, uncertainty="bootstrap", n_bootstrap=2))
    assert boot.provenance["settings"]["anchor"] == plain.provenance["settings"]["anchor"]
    for k in ("thermal kT", "powerlaw index", "thermal velocity"):
        np.testing.assert_array_equal(boot.params[k], plain.params[k])
        s = boot.sigmas[k]
        lo, hi = boot.provenance["boxes"][k]
        assert np.all(np.isfinite(s)) and np.all(s >= 0) and np.median(s) < (hi - lo) / 12**0.5, k
        assert np.any(s > 0), k
