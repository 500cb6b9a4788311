"""Predict the memory a fit needs before running it (so the GUI/CLI can warn or pick a binning)."""

from __future__ import annotations

from napari_sushi.core.solver.problem import CHUNK_ELEMENTS
from napari_sushi.core.solver.settings import Component, FitSettings


def estimate_fit_memory(cube_shape: tuple[int, int, int], components: list[Component], settings: FitSettings) -> int:
    """Approximate peak bytes of a fit of a cube (E, Y, X): data, iterate, Jacobian chunk, outputs.

    Counts the solver's device tensors (counts, model, per-pixel Fisher matrices, the Jacobian of
    one pixel chunk and its forward-mode AD intermediates) plus the float32 result cubes (one model
    cube per component, the total and the residual). Spectral-model activations are approximated as
    four times the Jacobian chunk. Interpreter and library overhead (~0.5 GB) is not included.
    """
    E, Y, X = (int(v) for v in cube_shape)
    f = max(1, int(settings.binning))
    ny, nx = Y // f, X // f
    n = ny * nx
    itemsize = 8 if settings.dtype == "float64" else 4
    n_comp = len(components)
    n_par = sum(c.model.n_params for c in components)
    d = n_comp + n_par
    data = n * E * itemsize * (2 if settings.cost == "chi2" else 1)
    work = 4 * n * E * itemsize  # model, ratios and cost terms of one evaluation
    fisher = n * d * d * 8 * 3 + n * d * 8 * 4  # float64 matrices, inverse, gradient, steps
    chunk = min(n * E * d, CHUNK_ELEMENTS) * itemsize
    chunk_total = chunk * (1 + 4)  # Jacobian + model activations / tangents
    starlet = (n_par + 1) * (settings.n_scales + 2) * n * itemsize * 3
    outputs = (n_comp + 3) * n * E * 4 + (2 * d + 4) * n * 8
    return int(data + work + fisher + chunk_total + starlet + outputs)
