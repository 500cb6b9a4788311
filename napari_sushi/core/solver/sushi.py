"""SUSHI: regularised non-stationary unmixing into physical parameter maps (the main fit)."""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch

from napari_sushi.core.solver.assemble import assemble
from napari_sushi.core.solver.bootstrap import check_settings, fit_uncertainty
from napari_sushi.core.solver.engine import State, iterate
from napari_sushi.core.solver.anchor_rule import shrink_to_level
from napari_sushi.core.solver.objective import (
    Penalty,
    anchor_advice,
    anchor_mode,
    check_anchor,
    minimise,
    resolve_anchor,
)
from napari_sushi.core.solver.grid_start import grid_scan
from napari_sushi.core.solver.problem import FitSetupError, build_problem, build_sushi_problem, share_form
from napari_sushi.core.solver.result import FitResult
from napari_sushi.core.solver.threads import under_thread_policy
from napari_sushi.core.solver.settings import Component, FitSettings, ProgressCallback
from napari_sushi.core.solver.stopping import is_cancelled


# Iterations the thresholding phase may use before the objective's minimisation takes over. It only has
# to reach the basin. Measured: on faint at kmad 3, 300 iterations of it alone gave an index RMSE of 0.66
# (both phases: 0.37). At kmad 5, capping it at 30 instead of 50 left the toy and faint ratios unchanged
# to 0.002 and cut the toy fit from 76 to 64 iterations. 30 -> 15 (issue 19, with the guard's
# GUARD_MIN_STEP): toy 13.7 -> 10.5 s, objective +8e-6 relative (faint -6e-7), the 16 zoo cases' medians
# within 0.01 (91 s instead of 113 s for all); at 10 the toy's objective rose by 2.8e-5, at 5 by 1.9e-4.
THRESHOLD_MAX_ITER = 15


@under_thread_policy
def fit(
    cube,
    components: list[Component],
    settings: FitSettings | None = None,
    callback: ProgressCallback | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> FitResult:
    """Fit ``cube`` (a HyperCube) with the SUSHI solver; see :mod:`napari_sushi.core.solver.engine`.

    ``callback`` receives a Progress every iteration (maps every ``settings.snapshot_every``);
    ``cancel`` (Event or callable) is checked before every iteration: a cancelled fit returns its
    current state with ``stop_reason == "cancelled"``. Unless a warm start is given, the parameter
    maps start from a fit of the cube binned by ``settings.coarse_init`` (see :func:`coarse_start`).
    Two phases: the thresholding iteration of :mod:`engine` (fast, lands in the right basin), then,
    with ``settings.minimise_objective``, the exact minimisation of the objective from there
    (:mod:`objective`). With ``settings.uncertainty == "bootstrap"`` the sigma (and bias) maps come
    from a parametric bootstrap of that objective (:mod:`bootstrap`; ``cancel`` stops it too, and the
    sigmas are then the Fisher ones).

    Runs with the CPU thread policy of :mod:`threads` (``settings.threads``).
    """
    assert settings is not None  # under_thread_policy passes the defaults when none are given
    check_settings(settings)
    check_anchor(settings.anchor, components)
    advice = anchor_advice(settings)
    if advice:
        warnings.warn(advice, UserWarning, stacklevel=3)
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    requested = components  # as asked, before the coarse start (the bootstrap redoes that start per replica)
    problem, settings = prepare(cube, components, settings, cancel)
    state, pen, phases = solve(problem, settings, callback, cancel)
    sig, bias, info = fit_uncertainty(problem, state, settings, pen, cancel, requested)
    phases.update(info)
    return assemble(problem, state, settings, "sushi", time.perf_counter() - t0, phases, sigmas=sig, biases=bias)


def prepare(
    cube,
    components: list[Component],
    settings: FitSettings,
    cancel: threading.Event | Callable[[], bool] | None = None,
):
    """(problem, settings) that :func:`fit` solves: the problem built from the coarse start, and the
    settings with the anchors "auto" chose (at the coarse problem, or at this problem's start when there
    was no coarse start), so that the fit, its bootstrap replicas and the provenance share one objective.
    """
    components, anchor = start_and_anchor(cube, components, settings, cancel)
    problem = build_sushi_problem(cube, components, settings)
    if not is_cancelled(cancel):  # (a cancelled fit stops before any penalty is built)
        anchor = resolve_anchor(anchor, problem, problem.A0, problem.U0)
    return problem, replace(settings, anchor=anchor)


def solve(
    problem,
    settings: FitSettings,
    callback: ProgressCallback | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    start: State | None = None,
    penalty: Penalty | None = None,
) -> tuple[State, Penalty | None, dict[str, Any]]:
    """SUSHI's two phases on a built problem: (final state, the objective's Penalty or None, phase record).

    From ``problem``'s start: the thresholding iteration, then the objective's minimisation. Given
    ``start`` (an iterate near the solution) and ``penalty`` (an objective whose weights are set), only
    the minimisation runs, from ``start``, with that objective: how a tile of a tiled fit
    (:mod:`tiled`) refines its part of the stitched maps with the weights of the whole field.
    """
    total = int(settings.max_iter)  # max_iter bounds both phases together
    second = settings.minimise_objective and total > 1
    if start is not None and penalty is not None:
        state = start
        phases: dict[str, Any] = {"threshold_iterations": 0, "threshold_stop": "skipped", "objective_iterations": 0}
    else:
        # the thresholding phase only has to reach the basin: it gets at most half the budget and at most
        # THRESHOLD_MAX_ITER iterations (run long, it drifts)
        first_cb = None if callback is None else (lambda p: callback(replace(p, max_iter=total)))
        state = iterate(
            problem,
            settings,
            regularise=True,
            callback=first_cb,
            cancel=cancel,
            max_iter=min(max(1, total // 2), THRESHOLD_MAX_ITER) if second else total,
        )
        phases = {
            "threshold_iterations": state.n_iter,
            "threshold_stop": state.stop_reason,
            "objective_iterations": 0,
        }
    left = total - state.n_iter
    pen = None
    if second and state.stop_reason != "cancelled" and left > 0:
        # minimise sets the weights of a new Penalty; the bootstrap's refits (and a tiled fit's tiles) reuse them
        pen = Penalty(problem, settings) if penalty is None else penalty
        n0 = state.n_iter
        state = minimise(
            problem,
            settings,
            state,
            step_rule=settings.step_rule,
            callback=callback,
            cancel=cancel,
            max_iter=left,
            total=total,
            penalty=pen,
        )
        phases["objective_iterations"] = state.n_iter - n0
        if state.objective:
            phases["objective"] = state.objective[-1]
    return state, pen, phases


def coarse_scales(n_scales: int) -> int:
    """Starlet scales the coarse fit thresholds: one fewer than the main fit (at least 1, 0 stays 0).

    Each binned pixel already spans f x f pixels, so the coarse fit's scale j is the main fit's scale
    j + log2(f): with the same J it smooths the start over 4x larger scales at f = 4, and a start that
    is too smooth is kept by the objective, which anchors the maps to it. Measured with J = 3, kmad 5
    (RMSE kT / velocity / index; toy, then faint): coarse J 3: 0.227 / 2587 / 0.318, 0.288 / 3017 /
    0.417; coarse J 2: 0.263 / 1953 / 0.289, 0.309 / 2862 / 0.408; coarse J 1: 0.283 / 1812 / 0.424,
    0.342 / 2652 / 0.396. J - 1 recovers most of the velocity structure (toy slope against the truth
    0.23 -> 0.45) without the index and kT losses of J - 2.
    """
    return n_scales - 1 if n_scales > 1 else n_scales


def bilinear(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(R, h, w) maps resampled bilinearly to (R, *size) (how a binned start is brought to the fit's pixels)."""
    return torch.nn.functional.interpolate(maps[None], size=size, mode="bilinear", align_corners=False)[0]


SCAN_COUNTS = 2000.0  # counts a scanned pixel should hold (median over pixels with counts; see scan_start)


def scan_start(
    cube,
    components: list[Component],
    coarse: FitSettings,
    problem,
    cancel: threading.Event | Callable[[], bool] | None = None,
):
    """The global start of the coarse problem: (U0, A0) from :func:`grid_start.grid_scan`, or None if cancelled.

    The scan picks, per pixel, the best point of a grid over the parameter boxes; on a pixel with few
    counts that point is noise (``benchmarks/results/identifiability.md``: with the toy instrument kT
    scatters by 0.84 keV between pixels of 1,250 counts, 0.44 keV at 5,000), and the coarse fit then
    keeps much of it. So the scan runs on the cube binned further (x2, x4, ...) until the median
    pixel with counts holds ``SCAN_COUNTS`` (the counts at which kT's scatter is about half its box
    spread) or the image would fall below 4x4, and its maps are brought back bilinearly: parameters
    in box units, amplitudes as the coarse pixel's counts split by the scan's shares.
    """
    tot = problem.X.sum(dim=1)
    lit = tot[(tot > 0) & (problem.w > 0)]
    med = float(lit.median()) if lit.numel() else 0.0
    ny, nx = problem.shape
    s = 1
    while med * s * s < SCAN_COUNTS and min(ny, nx) // (2 * s) >= 4:
        s *= 2
    scanned = problem if s == 1 else build_problem(cube, components, replace(coarse, binning=coarse.binning * s))
    best = grid_scan(scanned, cancel=cancel)
    if best is None:
        return None
    if s == 1:
        return best.U, best.A
    sy, sx = scanned.shape

    def up(v: torch.Tensor) -> torch.Tensor:  # (R, sy*sx) -> (R, ny*nx)
        return bilinear(v.double().reshape(-1, sy, sx), (ny, nx)).reshape(v.shape[0], -1).to(problem.dtype)

    U0 = up(best.U).clamp(0.0, 1.0)
    tot_s = best.A.sum(dim=0, keepdim=True)
    share = torch.where(tot_s > 0, best.A / tot_s.clamp(min=1e-30), torch.full_like(best.A, 1.0 / best.A.shape[0]))
    share = up(share).clamp(min=0.0)
    share = share / share.sum(dim=0, keepdim=True).clamp(min=1e-30)
    net = tot if problem.bkg is None else (tot - problem.bkg.sum(dim=1)).clamp(min=0.0)
    return U0, share * net[None] * problem.w[None]


def coarse_start(
    cube,
    components: list[Component],
    settings: FitSettings,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> list[Component]:
    """Components whose free parameters without a user ``init`` start from a coarse fit's maps
    (:func:`start_and_anchor` without the anchors)."""
    return start_and_anchor(cube, components, settings, cancel)[0]


def start_and_anchor(
    cube,
    components: list[Component],
    settings: FitSettings,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> tuple[list[Component], str | dict[str, str]]:
    """Components whose free parameters without a user ``init`` start from a coarse fit's maps, and the
    anchors: ``settings.anchor`` with "auto" resolved at the coarse problem (:mod:`anchor_rule`; left
    "auto" when the coarse start is skipped, for the caller to resolve at its own problem).

    Why: where a component is faint, its parameters carry almost no Fisher information, so the
    regularised fit leaves them near their starting value (measured: the photon index of
    near-empty synchrotron pixels of the ``faint`` preset stayed near the model default 2.5 while the
    truth there is ~3.3, a -0.5 bias). A fit of the cube binned ``coarse_init`` x ``coarse_init``
    (16x fewer pixels at 4, so cheap) gives a data-driven local value instead; it is bilinearly
    interpolated back. Skipped when ``coarse_init <= 1``, with a warm start, or when the binned image
    would be smaller than 8x8 pixels. The objective minimised is unchanged: only the start moves, but
    the objective penalises departures from the start, so where the data are weak (velocity) the map
    stays close to it: the coarse fit thresholds fewer scales (:func:`coarse_scales`).

    Maps anchored "coarse" (the coupled ones under "auto", :mod:`anchor_rule`) are not thresholded
    in the coarse fit (it biases them along their valley): their start is the binned cube's per-pixel
    fit, shrunk towards each map's level by empirical Bayes (:func:`anchor_rule.shrink_to_level`).
    """
    anchor = settings.anchor
    f = int(getattr(settings, "coarse_init", 1) or 1)
    if f <= 1 or settings.warm_start is not None:
        return components, anchor
    b = max(int(settings.binning), 1)
    ny, nx = (int(n) // b for n in cube.shape[1:])
    if ny // f < 8 or nx // f < 8:
        return components, anchor
    scan = settings.start == "scan"
    if scan:  # a global start: initial values are not inputs, every free parameter is scanned
        given = [f"{c.name}.{k}" for c in components for k in c.init if k in c.model.param_names]
        if given:
            warnings.warn(
                f"initial values of {', '.join(given)} are not used with the global scan start "
                "(start='scan'); use start='default' (CLI: --start default) to start from them.",
                UserWarning,
                stacklevel=3,
            )
        components = [
            replace(c, init={k: v for k, v in c.init.items() if k not in c.model.param_names}) for c in components
        ]
    todo = {c.name: [p for p in c.model.param_names if p not in c.fixed and p not in c.init] for c in components}
    if not any(todo.values()):
        return components, anchor
    coarse = replace(
        settings,
        binning=b * f,
        coarse_init=1,
        warm_start=None,
        snapshot_every=0,
        n_scales=coarse_scales(settings.n_scales),
    )
    try:  # only the parameter maps are needed: no sigmas, goodness of fit or model cubes (assemble)
        problem = build_problem(cube, components, coarse)
        if scan:
            start = scan_start(cube, components, coarse, problem, cancel)
            if start is None:
                return components, anchor
            problem = replace(problem, U0=start[0], A0=start[1])
        if settings.regularise_shares:
            problem = share_form(problem, coarse)
        anchor = resolve_anchor(anchor, problem, problem.A0, problem.U0)
        # maps anchored at their coarse plane only: fitted per pixel here (kmad 0), then shrunk to their level
        shrunk = [k for k, fp in enumerate(problem.free) if anchor_mode(anchor, fp.keys) == "coarse"]
        fitted = replace(
            problem, free=[replace(fp, kmad=0.0) if k in shrunk else fp for k, fp in enumerate(problem.free)]
        )
        state = iterate(fitted, coarse, regularise=True, cancel=cancel)
        if is_cancelled(cancel):
            return components, settings.anchor
        U = shrink_to_level(problem, state.A, state.U, shrunk)
    except FitSetupError:  # e.g. a background/sigma given only at the fitted resolution: start as asked
        return components, settings.anchor
    params = problem.unpack(state.A, U)
    out = []
    for c in components:
        init = dict(c.init)
        for p in todo[c.name]:
            m = params[f"{c.name} {p}"].astype(np.float32).astype(float)  # float32, as a FitResult's maps
            m[~problem.mask] = np.nan  # not fitted
            ok = np.isfinite(m)
            if not ok.any():
                continue
            m = np.where(ok, m, np.median(m[ok]))
            up = bilinear(torch.as_tensor(m)[None], (ny, nx))[0].numpy()
            info = next(q for q in c.model.meta.parameters if q.name == p)
            init[p] = np.clip(up, info.low, info.high)
        if settings.regularise_shares and "amplitude" not in init:
            # the share form anchors the shares to their start too: start them from the coarse split
            a = np.nan_to_num(np.where(problem.mask, params[f"{c.name} amplitude"], 0.0), nan=0.0)
            up = bilinear(torch.as_tensor(a)[None], (ny, nx))[0].numpy()
            init["amplitude"] = np.clip(up, 0.0, None) / f**2
        out.append(replace(c, init=init))
    return out, anchor
