"""The second phase of SUSHI: exact minimisation of the objective Phi (core/solver/objective.py)."""

from dataclasses import replace

import numpy as np
import torch

from napari_sushi.core.solver.engine import State, iterate
from napari_sushi.core.solver.objective import Penalty, minimise
from napari_sushi.core.solver.problem import build_problem
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import THRESHOLD_MAX_ITER, fit


def _comps(models):
    return [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]


def _start(small_case, **kw):
    cube, _, models, _ = small_case
    settings = FitSettings(kmad=3.0, n_scales=2, coarse_init=1, **kw)
    problem = build_problem(cube, _comps(models), settings)
    return problem, settings, iterate(problem, settings, regularise=True)


def _objective(problem, settings, st):
    trace = []
    minimise(problem, settings, st, callback=lambda p: trace.append(p.objective))
    return np.asarray(trace)


def test_newton_rule_never_raises_the_objective(small_case):
    problem, settings, start = _start(small_case, max_iter=40, tol=0.0)
    obj = _objective(problem, settings, State(A=start.A.clone(), U=start.U.clone()))
    assert obj.size == 40 and np.all(np.isfinite(obj))
    assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1]))  # the line search accepts no rise
    assert obj[-1] < obj[0]


def test_both_step_rules_reach_the_same_objective(small_case):
    """From the same start, the reference's fixed steps and proximal Newton minimise the same Phi."""
    problem, settings, start = _start(small_case, max_iter=60, tol=1e-9)
    newton = State(A=start.A.clone(), U=start.U.clone())
    phi_newton = _objective(problem, settings, newton)[-1]
    fixed = State(A=start.A.clone(), U=start.U.clone())
    trace = []
    minimise(
        problem,
        replace(settings, max_iter=3000, tol=1e-10),
        fixed,
        step_rule="fixed",
        callback=lambda p: trace.append(p.objective),
    )
    phi_fixed = trace[-1]
    assert abs(phi_fixed - phi_newton) <= 1e-5 * abs(phi_newton), (phi_newton, phi_fixed)
    assert len(trace) > 10 * newton.n_iter  # the reference is much slower to get there
    diff = (fixed.U - newton.U).abs()  # normalised parameters: 1 = the whole validity box
    assert float(diff.median()) < 1e-3 and float(diff.max()) < 0.05  # a few flat pixels differ a little


def test_a_huge_penalty_keeps_the_starting_maps(small_case):
    """Phi penalises every starlet plane of U - U0, the coarse one too: with a huge kmad the
    parameter maps cannot leave the start, while the amplitudes (not penalised) are still fitted."""
    cube, _, models, _ = small_case
    settings = FitSettings(kmad=1e6, n_scales=2, coarse_init=1, max_iter=20)
    problem = build_problem(cube, _comps(models), settings)
    st = State(A=problem.A0.clone(), U=problem.U0.clone())
    c0 = float(problem.costs(st.A, st.U).sum())
    minimise(problem, settings, st)
    np.testing.assert_allclose(st.U.cpu().numpy(), problem.U0.cpu().numpy(), atol=1e-4)
    assert float(problem.costs(st.A, st.U).sum()) < c0


def test_penalty_is_zero_at_the_start_and_positive_away(small_case):
    cube, _, models, _ = small_case
    settings = FitSettings(kmad=3.0, n_scales=2, coarse_init=1)
    problem = build_problem(cube, _comps(models), settings)
    pen = Penalty(problem, settings)
    pen.set_weights(torch.ones(problem.n_free, problem.n_pix, device=problem.device))
    assert pen.penalty_of(pen.coefficients(problem.U0)) == 0.0
    assert pen.penalty_of(pen.coefficients((problem.U0 + 0.01).clamp(0, 1))) > 0.0


def test_fit_records_both_phases_and_can_skip_the_second(small_case):
    cube, _, models, _ = small_case
    r = fit(cube, _comps(models), FitSettings(kmad=3.0, n_scales=2, max_iter=200))
    p = r.provenance
    assert p["threshold_stop"] == "converged" and r.stop_reason == "converged"
    assert p["threshold_iterations"] + p["objective_iterations"] == r.n_iter <= 200  # one budget for both
    assert p["threshold_iterations"] <= min(100, THRESHOLD_MAX_ITER)  # half the budget, and the cap
    assert p["objective_iterations"] > 0 and np.isfinite(p["objective"])
    r1 = fit(cube, _comps(models), FitSettings(kmad=3.0, n_scales=2, max_iter=200, minimise_objective=False))
    assert r1.provenance["objective_iterations"] == 0 and r1.n_iter == p["threshold_iterations"]


def test_a_free_anchor_penalises_the_maps_own_detail_and_leaves_their_level_free(small_case):
    """anchor="free" (the published penalty): a constant shift of a free map costs nothing, its own
    detail costs even at the start, and a map anchored to its start keeps today's penalty."""
    cube, _, models, _ = small_case
    settings = FitSettings(kmad=3.0, n_scales=2, coarse_init=1, anchor={"thermal.kT": "free"})
    problem = build_problem(cube, _comps(models), settings)
    U0 = problem.U0.clone()
    k = next(i for i, fp in enumerate(problem.free) if fp.keys == ["thermal.kT"])
    yy, xx = np.mgrid[0:16, 0:16]
    U0[k] = torch.as_tensor(0.3 + 0.02 * (yy + xx).ravel(), dtype=U0.dtype)  # a start with structure
    problem = replace(problem, U0=U0)
    pen = Penalty(problem, settings)
    pen.set_weights(torch.ones(problem.n_free, problem.n_pix, device=problem.device))
    assert float(pen.lam[k, pen.J].abs().max()) == 0.0  # the free map's coarse plane is not penalised
    assert float(pen.lam[[i for i in range(problem.n_free) if i != k]][:, pen.J].min()) > 0.0
    at_start = pen.penalty_of(pen.coefficients(U0))
    assert at_start > 0.0  # the gradient is detail of the map itself: penalised though it is the start
    shifted = U0.clone()
    shifted[k] += 0.1  # a constant shift of the free map: same detail, level free
    assert abs(pen.penalty_of(pen.coefficients(shifted)) - at_start) <= 1e-6 * at_start
    other = U0.clone()
    other[1 - k if k < 2 else 0] += 0.1  # the same shift of a map anchored to its start costs
    assert pen.penalty_of(pen.coefficients(other)) > at_start


def test_anchor_values_and_keys_are_checked_before_any_work(small_case):
    import pytest

    from napari_sushi.core.solver.problem import FitSetupError

    cube, _, models, _ = small_case
    with pytest.raises(FitSetupError, match="'auto', 'start', 'coarse', 'free'"):
        fit(cube, _comps(models), FitSettings(anchor="loose"))
    with pytest.raises(FitSetupError, match="thermal.kTT.*thermal.kT"):
        fit(cube, _comps(models), FitSettings(anchor={"thermal.kTT": "free"}))


def test_a_fit_with_free_anchors_runs_and_never_raises_its_objective(small_case):
    cube, _, models, _ = small_case
    settings = FitSettings(kmad=3.0, n_scales=2, coarse_init=1, anchor="free", max_iter=40, tol=0.0)
    problem = build_problem(cube, _comps(models), settings)
    start = iterate(problem, settings, regularise=True)
    obj = _objective(problem, settings, State(A=start.A.clone(), U=start.U.clone()))
    assert np.all(np.isfinite(obj)) and np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1]))
    r = fit(cube, _comps(models), FitSettings(kmad=3.0, n_scales=2, anchor="free", regularise_shares=True))
    assert r.stop_reason == "converged" and np.isfinite(r.params["thermal kT"]).all()


def test_free_anchors_without_regularised_shares_warn(small_case):
    import pytest

    cube, _, models, _ = small_case
    with pytest.warns(UserWarning, match="regularise_shares=True"):
        fit(
            cube,
            _comps(models),
            FitSettings(kmad=3.0, n_scales=2, anchor={"thermal.kT": "free"}, max_iter=4, regularise_shares=False),
        )
