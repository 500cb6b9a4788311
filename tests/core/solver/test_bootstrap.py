"""Parametric bootstrap of the regularised fit: deterministic, informative, exported, cancellable."""

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_sushi.core.io.maps import read_maps_fits
from napari_sushi.core.simulate import get_preset, simulate_remnant
from napari_sushi.core.solver import bootstrap as boot
from napari_sushi.core.solver.engine import State, iterate
from napari_sushi.core.solver.objective import Penalty, minimise
from napari_sushi.core.solver.problem import FitSetupError, build_problem
from napari_sushi.core.solver.result import split_maps
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.spectral.registry import load_model

KEYS = ["thermal kT", "thermal velocity", "powerlaw index"]


def _comps():
    return [
        Component("thermal", load_model("toy-thermal-emulator")),
        Component("powerlaw", load_model("toy-powerlaw-emulator")),
    ]


@pytest.fixture(scope="module")
def toy32():
    """A 32x32 toy remnant (big enough for the coarse start, so the anchor is redrawn per replica)."""
    sim = simulate_remnant(replace(get_preset("toy"), shape=(32, 32)), 0)
    fisher = fit(sim.cube, _comps(), FitSettings(max_iter=60))
    boots = fit(sim.cube, _comps(), FitSettings(max_iter=60, uncertainty="bootstrap", n_bootstrap=4))
    return sim, fisher, boots


@pytest.fixture(scope="module")
def small():
    """A 24x24 toy problem and its two-phase solution, with the penalty the second phase used."""
    sim = simulate_remnant(replace(get_preset("toy"), shape=(24, 24)), 0)
    st = FitSettings(max_iter=60)
    problem = build_problem(sim.cube, _comps(), st)
    state = iterate(problem, st, regularise=True, max_iter=20)
    pen = Penalty(problem, st)
    state = minimise(problem, st, state, max_iter=20, penalty=pen)
    return problem, state, st, pen


def test_same_seed_same_maps_other_seed_other_maps(small):
    problem, state, st, pen = small
    st2 = replace(st, n_bootstrap=2)
    a = boot.bootstrap(problem, state, st2, penalty=pen, max_iter=15)
    b = boot.bootstrap(problem, state, st2, penalty=pen, max_iter=15)
    c = boot.bootstrap(problem, state, replace(st2, seed=1), penalty=pen, max_iter=15)
    for k in KEYS + ["thermal amplitude"]:
        np.testing.assert_array_equal(a.sigmas[k], b.sigmas[k])
        np.testing.assert_array_equal(a.biases[k], b.biases[k])
        assert not np.array_equal(a.sigmas[k], c.sigmas[k]), k
    # the reported sigma is the bias-aware one, capped at the box's spread
    for k in KEYS:
        fp = next(f for f in problem.free if f.keys[0] == k.replace(" ", "."))
        expect = np.minimum(np.sqrt(a.spreads[k] ** 2 + a.biases[k] ** 2), fp.width / np.sqrt(12.0))
        np.testing.assert_allclose(a.sigmas[k], expect)


def test_replicas_keep_the_runs_weights(small, monkeypatch):
    problem, state, st, pen = small
    # weights taken at another point (here: the solution) differ, so sharing them is a real choice
    fresh = Penalty(problem, st)
    minimise(problem, st, State(A=state.A.clone(), U=state.U.clone()), max_iter=1, penalty=fresh)
    assert not torch.allclose(fresh.lam, pen.lam)
    # continuing with the run's Penalty minimises the same Phi: the line search never raises it
    lam = pen.lam.clone()
    s2 = minimise(problem, st, State(A=state.A.clone(), U=state.U.clone()), max_iter=1, penalty=pen)
    assert torch.equal(pen.lam, lam)
    assert s2.objective[-1] <= state.objective[-1] + 1e-6 * abs(state.objective[-1])
    # every replica refit gets the run's weights (with its own anchor), none recomputes them
    seen = []
    real = boot.minimise

    def spy(prob, settings, s, **kw):
        seen.append((kw["penalty"].lam, kw["penalty"].Uref, prob.U0))
        return real(prob, settings, s, **kw)

    def refuse(self, fisher_diag):
        raise AssertionError("the bootstrap recomputed the weights")

    monkeypatch.setattr(boot, "minimise", spy)
    monkeypatch.setattr(Penalty, "set_weights", refuse)
    shifted = problem.U0 + 0.01
    boot.bootstrap(problem, state, replace(st, n_bootstrap=2), penalty=pen, max_iter=2, anchor=lambda X: shifted)
    assert len(seen) == 2
    for lam_r, uref, u0 in seen:
        assert lam_r is pen.lam and torch.equal(uref, shifted) and u0 is shifted


def test_sigmas_finite_positive_capped_and_informative(toy32):
    sim, fisher, res = toy32
    assert res.provenance["sigma_method"].startswith("parametric bootstrap, 4 replicas")
    assert "anchor: the coarse start redone" in res.provenance["sigma_method"]
    assert res.provenance["sigma_seconds"] > 0 and len(res.provenance["bootstrap_iterations"]) == 4
    caps = res.provenance["sigma_caps"]
    bright = sim.cube.counts.sum(axis=0) >= 50  # pixels with many counts
    assert bright.sum() > 100
    for k in KEYS:
        s = res.sigmas[k]
        assert np.all(np.isfinite(s)) and np.all(s > 0) and np.all(s <= caps[k] * (1 + 1e-6)), k
        at_cap_boot = np.mean(s[bright] >= 0.999 * caps[k])
        at_cap_fisher = np.mean(fisher.sigmas[k][bright] >= 0.999 * caps[k])
        assert at_cap_fisher > 0.5 and at_cap_boot < 0.2 * at_cap_fisher, (k, at_cap_fisher, at_cap_boot)
    # the same fit otherwise: only the sigmas differ
    for k in KEYS:
        np.testing.assert_array_equal(res.params[k], fisher.params[k])
    assert set(res.biases) == set(KEYS) | {"thermal amplitude", "powerlaw amplitude"}
    assert fisher.biases == {}


def test_bias_maps_round_trip_through_fits(toy32, tmp_path):
    _, _, res = toy32
    path = res.to_fits(tmp_path / "maps.fits")
    ms = read_maps_fits(path)
    assert ms.units["thermal velocity bias"] == "km/s"
    fm = split_maps(ms.maps)
    assert set(fm.params) == set(KEYS)  # "<key> bias" is not taken for a parameter
    assert set(fm.biases) == set(res.biases)
    for k, b in res.biases.items():
        np.testing.assert_allclose(fm.biases[k], b)
    assert ms.provenance["provenance"]["sigma_method"] == res.provenance["sigma_method"]


def test_cancelled_bootstrap_falls_back_to_fisher(monkeypatch):
    sim = simulate_remnant(replace(get_preset("toy"), shape=(24, 24)), 0)
    cancel = threading.Event()
    real = boot.replica

    def replica_then_cancel(*args, **kwargs):  # the request arrives while the bootstrap runs
        cancel.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(boot, "replica", replica_then_cancel)
    res = fit(sim.cube, _comps(), FitSettings(max_iter=40, uncertainty="bootstrap", n_bootstrap=3), cancel=cancel)
    assert cancel.is_set() and res.stop_reason != "cancelled"  # the main fit had finished
    monkeypatch.setattr(boot, "replica", real)
    ref = fit(sim.cube, _comps(), FitSettings(max_iter=40))
    assert res.provenance["sigma_method"] == ref.provenance["sigma_method"]
    assert "cancelled" in res.provenance["bootstrap"] and res.biases == {}
    for k in KEYS:
        np.testing.assert_array_equal(res.sigmas[k], ref.sigmas[k])


def test_bad_settings_are_refused():
    sim = simulate_remnant(replace(get_preset("toy"), shape=(16, 16)), 0)
    with pytest.raises(FitSetupError, match="n_bootstrap must be >= 2"):
        fit(sim.cube, _comps(), FitSettings(max_iter=2, uncertainty="bootstrap", n_bootstrap=1))
    with pytest.raises(FitSetupError, match="uncertainty must be"):
        fit(sim.cube, _comps(), FitSettings(max_iter=2, uncertainty="jackknife"))


def test_cli_bootstrap_option(tmp_path, capsys):
    from napari_sushi.cli import main
    from napari_sushi.core.io.fits_cube import write_cube_fits

    sim = simulate_remnant(replace(get_preset("toy"), shape=(12, 12)), 0)
    cube = tmp_path / "c.fits"
    write_cube_fits(sim.cube, cube)
    models = ["--model", "toy-thermal-emulator", "--model", "toy-powerlaw-emulator"]
    out = tmp_path / "m.fits"
    assert (
        main(["fit", str(cube), *models, "--uncertainty", "bootstrap", "--bootstrap", "1", "-o", str(out), "-q"]) == 2
    )
    err = capsys.readouterr().err
    assert "--bootstrap wants at least 2" in err and "Traceback" not in err and not out.exists()
    assert (
        main(
            [
                "fit",
                str(cube),
                *models,
                "--max-iter",
                "6",
                "--uncertainty",
                "bootstrap",
                "--bootstrap",
                "2",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    ms = read_maps_fits(out)
    assert "thermal kT bias" in ms.maps and "powerlaw amplitude bias" in ms.maps
    assert ms.provenance["provenance"]["sigma_method"].startswith("parametric bootstrap, 2 replicas")
