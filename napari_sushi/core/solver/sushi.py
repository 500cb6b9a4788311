"""SUSHI: regularised non-stationary unmixing into physical parameter maps (the main fit)."""

from __future__ import annotations

import threading
import time
from typing import Callable

import torch

from napari_sushi.core.solver.assemble import assemble
from napari_sushi.core.solver.engine import iterate
from napari_sushi.core.solver.problem import build_problem
from napari_sushi.core.solver.result import FitResult
from napari_sushi.core.solver.settings import Component, FitSettings, ProgressCallback


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
    current state with ``stop_reason == "cancelled"``.
    """
    settings = settings or FitSettings()
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    problem = build_problem(cube, components, settings)
    state = iterate(problem, settings, regularise=True, callback=callback, cancel=cancel)
    return assemble(problem, state, settings, "sushi", time.perf_counter() - t0)
