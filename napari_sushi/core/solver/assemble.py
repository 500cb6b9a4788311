"""Build a FitResult (maps, uncertainties, model cubes, provenance) from a solver's final state."""

from __future__ import annotations

import dataclasses
import platform
import time

import numpy as np
import torch

from napari_sushi.core.solver.engine import State
from napari_sushi.core.solver.problem import MODEL_FLOOR, Problem
from napari_sushi.core.solver.result import FitResult
from napari_sushi.core.solver.settings import FitSettings
from napari_sushi.core.solver.uncertainty import fisher_sigmas, gof_map, profile_sigmas


def settings_summary(settings: FitSettings) -> dict:
    """JSON-able record of the settings (arrays summarised by their shape)."""
    out = {}
    for f in dataclasses.fields(settings):
        v = getattr(settings, f.name)
        if isinstance(v, np.ndarray):
            v = f"array{list(v.shape)}"
        elif f.name == "warm_start":
            v = None if v is None else "previous result"
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, list):
            v = [list(x) if isinstance(x, tuple) else x for x in v]
        out[f.name] = v
    return out


def model_cubes(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-component model cubes and the total (background included), each (E, Y, X)."""
    ny, nx = problem.shape
    E = problem.X.shape[1]
    cubes = {}
    total = np.zeros((problem.n_pix, E), np.float32)
    with torch.no_grad():
        ths = problem.thetas(U)
        Ac = problem.amplitudes(A, U)
        for c, spec in enumerate(problem.comps):
            arr = np.empty((problem.n_pix, E), np.float32)
            for s in range(0, problem.n_pix, problem.chunk):
                sl = slice(s, min(s + problem.chunk, problem.n_pix))
                arr[sl] = (Ac[c, sl, None] * spec.model.spectrum(ths[c][sl])).float().cpu().numpy()
            total += arr
            cubes[spec.name] = arr.T.reshape(E, ny, nx)
        if problem.bkg is not None:
            b = problem.bkg.float().cpu().numpy()
            total += b if b.shape[0] > 1 else np.broadcast_to(b, total.shape)
    return cubes, total.T.reshape(E, ny, nx)


def assemble(
    problem: Problem,
    state: State,
    settings: FitSettings,
    method: str,
    wall_time: float,
    extra: dict | None = None,
    profile: bool = False,
    sigmas: dict[str, np.ndarray] | None = None,
    biases: dict[str, np.ndarray] | None = None,
) -> FitResult:
    """All FitResult fields from the final iterate; maps are NaN outside the mask (not fitted).

    ``profile``: parameter sigmas and intervals from the per-pixel profile likelihood (the per-pixel
    fit, whose values are the pixels' maximum-likelihood estimates) instead of the Fisher matrix.
    ``wall_time`` is the solver's time so far; the result's is that plus this assembly (the profile
    likelihood alone is 40 % of a per-pixel fit), so it is the time the user waited.
    ``sigmas`` / ``biases``: 1-sigma and bias maps computed by the caller (SUSHI's parametric bootstrap,
    :mod:`bootstrap`; keyed as the Fisher sigmas, physical units) instead of the Fisher ones; the
    caller then records their ``sigma_method`` and ``sigma_seconds`` in ``extra``.
    """
    from napari_sushi import __version__

    t_start = time.perf_counter()

    A, U = state.A, state.U
    maps = problem.unpack(A, U)
    t_sig = time.perf_counter()
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]
    if sigmas is not None:
        sig, intervals = dict(sigmas), {}
        sigma_method = "given by the caller"
    elif profile:
        sig, intervals = profile_sigmas(problem, A, U)
        sigma_method = "profile likelihood (Delta C = 1 half-width; amplitudes: Fisher)"
    else:
        sig, intervals = fisher_sigmas(problem, A, U), {}
        sigma_method = "Fisher (Cramer-Rao, per pixel, ignores the regulariser)"
    t_sig = time.perf_counter() - t_sig
    gof, gof_name = gof_map(problem, A, U)
    out_mask = ~problem.mask

    def blank(a: np.ndarray) -> np.ndarray:  # a float32 copy, NaN where not fitted
        a = a.astype(np.float32)
        a[out_mask] = np.nan
        return a

    maps, sig, bias = ({k: blank(v) for k, v in d.items()} for d in (maps, sig, biases or {}))
    intervals = {k: (blank(lo), blank(hi)) for k, (lo, hi) in intervals.items()}
    gof = blank(gof)
    amplitudes = {spec.name: maps.pop(f"{spec.name} amplitude") for spec in problem.comps}
    units = {f"{s.name} amplitude": "counts" for s in problem.comps}
    for spec in problem.comps:
        for name, unit in zip(spec.model.param_names, spec.model.param_units):
            units[f"{spec.name} {name}"] = unit
    cubes, total = model_cubes(problem, A, U)
    residual = problem.cube.counts.astype(np.float32) - total
    prov = {
        "method": method,
        "settings": settings_summary(settings),
        "models": {
            s.name: {
                "identity": s.model.identity(),
                "component": s.model.component,
                "family": s.model.meta.family,
                "response": s.model.meta.response_id,
            }
            for s in problem.comps
        },
        "links": [fp.keys for fp in problem.free if len(fp.keys) > 1],
        "package_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "cube": {
            "name": problem.cube.name,
            "shape": list(problem.cube.shape),
            "band_keV": [float(problem.cube.energy_edges[0]), float(problem.cube.energy_edges[-1])],
        },
        "n_backtracks": state.n_backtracks,
        "n_rejected_pixel_steps": state.n_rejected_pixels,
        "model_floor": MODEL_FLOOR,
        "sigma_method": sigma_method,
        "sigma_seconds": t_sig,
        # a parameter sigma at this value is the box's spread (width / sqrt(12)): the pixel's data do not
        # constrain it (see uncertainty.py); viewers say "unconstrained" rather than quoting it as an error
        "sigma_caps": {k.replace(".", " ", 1): fp.width / np.sqrt(12.0) for fp in problem.free for k in fp.keys},
        # each free map's validity box, so viewers can flag values pinned at an edge (FitResult.edge_shares)
        "boxes": {k.replace(".", " ", 1): [float(fp.low), float(fp.high)] for fp in problem.free for k in fp.keys},
    }
    prov.update(extra or {})
    return FitResult(
        method=method,
        amplitudes=amplitudes,
        params=maps,
        sigmas=sig,
        units=units,
        gof=gof,
        gof_name=gof_name,
        model_cubes=cubes,
        model_total=total,
        residual=residual,
        energy_edges=problem.cube.energy_edges.copy(),
        cost_history=np.asarray(state.history, float),
        n_iter=state.n_iter,
        stop_reason=state.stop_reason,
        wall_time=wall_time + (time.perf_counter() - t_start),
        device=str(problem.device),
        provenance=prov,
        wcs=problem.cube.wcs,
        mask=problem.mask.copy(),
        intervals=intervals,
        biases=bias,
    )
