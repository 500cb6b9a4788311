"""The classic per-pixel fit: same models and cost, no spatial regularisation, all pixels batched.

Each pixel is fitted independently by damped Gauss-Newton (Levenberg-Marquardt with per-pixel
damping and acceptance), from ``settings.n_starts`` starting points (the model default / init, then
seeded random points of the validity box); each pixel keeps its best start. It returns the same
FitResult fields as SUSHI, so the two can be compared map for map.

A parameter whose every component has zero fitted amplitude in a pixel is not identified there (the
likelihood does not depend on it; the iterate just stops wherever the amplitude reached zero, often
on a box edge). It is reported at the centre of its validity box, with the box's standard deviation
as its sigma (see uncertainty.py): the mean and spread of the uniform box prior when the data say
nothing, instead of an arbitrary edge value with the same sigma.

The parameters' 1-sigma maps are not the Fisher ones: they come from the profile likelihood of each
pixel (the Delta C = 1 interval, profiled over all the pixel's other variables and truncated at the
box; sigma = half its width, the interval's bounds are in ``FitResult.intervals``): see
``uncertainty.profile_sigmas``. The value itself stays the maximum-likelihood estimate.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import torch

from napari_sushi.core.solver.assemble import assemble
from napari_sushi.core.solver.engine import State, iterate
from napari_sushi.core.solver.problem import build_problem
from napari_sushi.core.solver.result import FitResult
from napari_sushi.core.solver.threads import under_thread_policy
from napari_sushi.core.solver.settings import Component, FitSettings, Progress, ProgressCallback
from napari_sushi.core.solver.stopping import is_cancelled
from napari_sushi.core.solver.uncertainty import identified


@under_thread_policy
def pixelfit(
    cube,
    components: list[Component],
    settings: FitSettings | None = None,
    callback: ProgressCallback | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> FitResult:
    """Fit every pixel on its own (multi-start LM, batched); same result fields as :func:`fit`. Runs with the CPU thread policy of :mod:`threads` (``settings.threads``)."""
    assert settings is not None  # under_thread_policy passes the defaults when none are given
    if settings.step_rule != "newton":
        raise ValueError("the per-pixel fit uses the newton step rule only; leave step_rule at 'newton'.")
    n_starts = max(1, int(settings.n_starts))
    t0 = time.perf_counter()
    problem = build_problem(cube, components, settings)
    gen = torch.Generator().manual_seed(int(settings.seed))
    K, N = problem.U0.shape
    best_A, best_U, best_c = None, None, None
    total = State(A=problem.A0, U=problem.U0)
    offset = 0
    per_start = int(settings.max_iter)

    for s in range(n_starts if K > 0 else 1):
        if s == 0:
            U0 = problem.U0
        else:
            U0 = (0.05 + 0.9 * torch.rand(K, 1, generator=gen)).to(problem.device, problem.dtype).expand(K, N)

        def cb(p: Progress, _o=offset, _s=s) -> None:
            if callback is not None:
                callback(
                    Progress(
                        _o + p.iteration,
                        per_start * n_starts,
                        p.cost,
                        time.perf_counter() - t0,
                        p.snapshot,
                        start=_s,
                        n_starts=n_starts,
                    )
                )

        st = iterate(problem, settings, regularise=False, A=problem.A0, U=U0, callback=cb, cancel=cancel)
        offset += st.n_iter
        c = problem.costs(st.A, st.U)
        if best_c is None:
            best_A, best_U, best_c = st.A, st.U, c
        else:
            assert best_A is not None and best_U is not None  # set with best_c
            better = c < best_c
            best_A = torch.where(better[None], st.A, best_A)
            best_U = torch.where(better[None], st.U, best_U)
            best_c = torch.where(better, c, best_c)
        total.history.extend(st.history)
        total.n_backtracks += st.n_backtracks
        total.n_rejected_pixels += st.n_rejected_pixels
        total.stop_reason = st.stop_reason
        if st.stop_reason == "cancelled" or is_cancelled(cancel):
            total.stop_reason = "cancelled"
            break
    assert best_A is not None and best_U is not None  # the loop runs at least once
    total.A, total.U, total.n_iter = best_A, unidentified_to_centre(problem, best_A, best_U), offset
    return assemble(
        problem, total, settings, "pixelfit", time.perf_counter() - t0, {"n_starts": n_starts}, profile=True
    )


def unidentified_to_centre(problem, A: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """U with every free parameter that no component with a positive amplitude uses set to 0.5."""
    return torch.where(identified(problem, A), U, torch.full_like(U, 0.5))
