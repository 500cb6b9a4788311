"""The global start: a grid scan finds the right box region per pixel, and the fit no longer depends on its start."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_sushi.core.simulate import get_preset, simulate_from_maps, simulate_remnant
from napari_sushi.core.solver.grid_start import grid_nodes, grid_points, grid_scan
from napari_sushi.core.solver.problem import FitSetupError, build_problem
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.spectral.registry import load_model


@pytest.fixture(scope="module")
def models():
    return {c: load_model(f"toy-{c}-emulator") for c in ("thermal", "powerlaw")}


def _comps(models, init=None):
    init = init or {}
    return [
        Component("thermal", models["thermal"], init=init.get("thermal", {})),
        Component("powerlaw", models["powerlaw"], init=init.get("powerlaw", {})),
    ]


def test_grid_is_cell_centres_within_the_budget():
    assert grid_nodes(3) == [12, 12, 12] and grid_nodes(4) == [6] * 4 and grid_nodes(0) == []
    g = grid_points([2, 3])
    assert g.shape == (6, 2) and torch.allclose(g[:, 0].unique(), torch.tensor([0.25, 0.75], dtype=g.dtype))
    assert float(g.min()) > 0 and float(g.max()) < 1  # no node on a box edge


@pytest.mark.parametrize("bright", ["thermal", "powerlaw"])
def test_scan_finds_the_true_parameters_of_bright_pixels(models, bright):
    """Pixels of one bright component (20,000 counts; the other at 1 %): the scan's node lies within
    2 grid spacings of the truth, and it fits better than the models' defaults."""
    shape = (4, 4)
    amp = {"thermal": 20000.0 if bright == "thermal" else 200.0, "powerlaw": 20000.0 if bright == "powerlaw" else 200.0}
    maps = {
        "thermal amplitude": np.full(shape, amp["thermal"]),
        "thermal kT": np.full(shape, 3.2),
        "thermal velocity": np.full(shape, 2000.0),
        "powerlaw amplitude": np.full(shape, amp["powerlaw"]),
        "powerlaw index": np.full(shape, 2.2),
    }
    sim = simulate_from_maps("toy", maps, seed=0)
    pb = build_problem(sim.cube, _comps(models), FitSettings(dtype="float64"))
    best = grid_scan(pb)
    assert best.nodes == [12, 12, 12] and bool(best.scanned.all())
    th = pb.thetas(best.U)
    if bright == "thermal":
        assert np.all(np.abs(th[0][:, 0].numpy() - 3.2) <= 2 * 4.5 / 12)
    else:
        assert np.all(np.abs(th[1][:, 0].numpy() - 2.2) <= 2 * 2.5 / 12)
    # the winner's amplitudes add up to the counts, most of them in the bright component
    assert np.allclose(best.A.sum(0).numpy(), sim.cube.counts.sum(0).ravel(), rtol=0.02)
    c = 0 if bright == "thermal" else 1
    assert float((best.A[c] / best.A.sum(0)).min()) > 0.7  # (a hot plasma and a power law trade counts)
    # the scan's best cost is no worse than the model defaults' with the same amplitudes
    assert float(best.cost.sum()) <= float(pb.costs(best.A, pb.U0).sum())


def test_held_maps_stay_where_they_are(models):
    sim = simulate_remnant(replace(get_preset("toy"), shape=(6, 6)), 0)
    pb = build_problem(sim.cube, _comps(models), FitSettings(dtype="float64"))
    best = grid_scan(pb, held=[1])  # thermal velocity held
    assert torch.equal(best.U[1], pb.U0[1])
    assert best.rows == [0, 2] and best.nodes == [12, 12]


def test_the_start_no_longer_decides_the_answer(models):
    sim = simulate_remnant(replace(get_preset("toy"), shape=(32, 32)), 0)
    lo = {"thermal": {"kT": 1.4, "velocity": -3600.0}, "powerlaw": {"index": 2.0}}  # 0.2 of each box
    hi = {"thermal": {"kT": 4.1, "velocity": 3600.0}, "powerlaw": {"index": 3.5}}  # 0.8 of each box
    out = {}
    for start in ("default", "scan"):
        st = FitSettings(max_iter=60, start=start)
        if start == "scan":
            with pytest.warns(UserWarning, match="not used with the global scan"):
                a = fit(sim.cube, _comps(models, lo), st)
            with pytest.warns(UserWarning, match="start='default'"):
                b = fit(sim.cube, _comps(models, hi), st)
        else:
            a = fit(sim.cube, _comps(models, lo), st)
            b = fit(sim.cube, _comps(models, hi), st)
        out[start] = max(
            float(np.nanmax(np.abs(a.params[k] - b.params[k]))) / w
            for k, w in (("thermal kT", 4.5), ("thermal velocity", 12000.0), ("powerlaw index", 2.5))
        )
    assert out["scan"] < 1e-6  # the same maps from either start
    assert out["default"] > 0.05  # while the plain start moves them by more than 5 % of a box


def test_unknown_start_is_refused(models):
    sim = simulate_remnant(replace(get_preset("toy"), shape=(8, 8)), 0)
    with pytest.raises(FitSetupError, match="start must be"):
        build_problem(sim.cube, _comps(models), FitSettings(start="random"))


def _bright_cube(shape=(4, 4), velocity=2000.0, powerlaw=200.0, counts=20000.0):
    """A cube of bright thermal pixels (``counts``, kT 3.2 keV) with a faint power law (index 2.2)."""
    vel = np.broadcast_to(np.asarray(velocity, float), shape).copy()
    maps = {
        "thermal amplitude": np.full(shape, counts),
        "thermal kT": np.full(shape, 3.2),
        "thermal velocity": vel,
        "powerlaw amplitude": np.full(shape, powerlaw),
        "powerlaw index": np.full(shape, 2.2),
    }
    return simulate_from_maps("toy", maps, seed=1).cube


def test_scan_costs_are_the_problems_own(models):
    # the winner's cost is the problem's pixel cost at (A, U), Poisson and chi-square alike
    cube = _bright_cube()
    for cost in ("poisson", "chi2"):
        pb = build_problem(cube, _comps(models), FitSettings(dtype="float64", cost=cost))
        best = grid_scan(pb)
        assert torch.allclose(best.cost, pb.costs(best.A, best.U), rtol=1e-9, atol=1e-6), cost
        kT = pb.thetas(best.U)[0][:, 0].numpy()
        assert np.all(np.abs(kT - 3.2) <= 2 * 4.5 / 12), (cost, kT)


def test_fixed_parameters_are_no_axis_and_fixed_maps_are_used_per_pixel(models):
    shape = (4, 4)
    vel = np.where(np.arange(4)[None, :] < 2, -4000.0, 4000.0) * np.ones(shape)
    cube = _bright_cube(shape, velocity=vel)

    def scan(fixed):
        comps = [
            Component("thermal", models["thermal"], fixed={"velocity": fixed}),
            Component("powerlaw", models["powerlaw"]),
        ]
        pb = build_problem(cube, comps, FitSettings(dtype="float64"))
        return pb, grid_scan(pb)

    pb, best = scan(vel)  # a fixed map that varies across pixels: spectra per pixel and combination
    assert best.rows == [0, 1] and best.nodes == [12, 12]
    assert np.allclose(pb.thetas(best.U)[0][:, 1].numpy(), vel.ravel())
    kT = pb.thetas(best.U)[0][:, 0].numpy()
    assert np.all(np.abs(kT - 3.2) <= 2 * 4.5 / 12), kT
    # the same winners as scanning each half with its velocity fixed to a number (shared spectra)
    for v in (-4000.0, 4000.0):
        _, ref = scan(v)
        sel = torch.as_tensor(vel.ravel() == v)
        assert torch.equal(best.U[:, sel], ref.U[:, sel]), v
        assert torch.allclose(best.cost[sel], ref.cost[sel], rtol=1e-9), v
    # fixing the velocity to the wrong value costs more than the right map (it is used, not ignored)
    _, wrong = scan(-vel)
    assert float(wrong.cost.sum()) > float(best.cost.sum()) + 100.0


def test_linked_parameters_are_one_axis(models):
    # two thermal components sharing one velocity map: 3 free maps (hot kT, velocity, cold kT), and
    # both components' velocity columns come from the same node. (With the toy instrument a velocity
    # needs ~1e5 counts to be known to a grid spacing: at 20,000 single-component pixels scatter to 5500.)
    cube = _bright_cube(velocity=3000.0, powerlaw=0.0, counts=1e5)
    comps = [Component("hot", models["thermal"]), Component("cold", models["thermal"])]
    pb = build_problem(cube, comps, FitSettings(dtype="float64", links=[("hot.velocity", "cold.velocity")]))
    assert pb.n_free == 3
    best = grid_scan(pb)
    assert best.nodes == [12, 12, 12]
    th = pb.thetas(best.U)
    assert torch.equal(th[0][:, 1], th[1][:, 1])
    assert np.all(np.abs(th[0][:, 1].numpy() - 3000.0) <= 2 * 12000.0 / 12), th[0][:, 1]


def test_two_stage_scan_matches_poisson_em_on_every_combination(models):
    # the least-squares preselection of the 24 combinations refined by EM loses next to nothing
    # against Poisson EM on all 216 combinations (300 updates from the counts split evenly): less than
    # Delta C = 1 in every pixel (measured: at most 0.51, mean 0.026)
    sim = simulate_remnant(replace(get_preset("toy"), shape=(24, 24)), 0)
    pb = build_problem(sim.cube, _comps(models), FitSettings(binning=4))
    fast = grid_scan(pb, max_combinations=216)
    ref = grid_scan(pb, max_combinations=216, keep=None, n_em=300)
    assert fast.nodes == [6, 6, 6] and torch.equal(fast.scanned, ref.scanned)
    d = (fast.cost - ref.cost)[fast.scanned]
    assert float(d.max()) < 1.0 and float(d.mean()) < 0.05, (float(d.max()), float(d.mean()))


def test_pixels_without_counts_take_the_scanned_median(models):
    shape = (4, 4)
    amp = np.full(shape, 20000.0)
    amp[0, :] = 0.0  # an empty row: nothing to scan there
    maps = {
        "thermal amplitude": amp,
        "thermal kT": np.full(shape, 3.2),
        "thermal velocity": np.zeros(shape),
        "powerlaw amplitude": np.zeros(shape),
        "powerlaw index": np.full(shape, 2.2),
    }
    cube = simulate_from_maps("toy", maps, seed=2).cube
    pb = build_problem(cube, _comps(models), FitSettings(dtype="float64"))
    best = grid_scan(pb)
    empty = torch.as_tensor(amp.ravel() == 0)
    assert torch.equal(best.scanned, ~empty)
    med = best.U[:, ~empty].median(dim=1).values
    assert torch.equal(best.U[:, empty], med[:, None].expand(-1, int(empty.sum())))
    assert float(best.A[:, empty].abs().max()) == 0.0 and bool(torch.isinf(best.cost[empty]).all())
