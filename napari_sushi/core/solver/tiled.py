"""Tiled SUSHI fits of one large field: overlapping tiles that all solve the whole field's problem.

A field too large for one device (or one worker's time) is cut into overlapping tiles
(:meth:`HyperCube.tiles`), each fitted on its own (here or on Dask workers, :mod:`napari_sushi.core.cluster`)
and stitched by keeping each tile's own pixels and discarding its halo. Fitting tiles independently
would make every tile its own problem: its own coarse start (the objective's anchor), its own penalty
weights, so seams appear and the maps move (measured before this module: kT by up to 0.61 keV on a
32x32 cube). Here the quantities that are not local are the whole field's:

1. the **coarse start** (``sushi.coarse_start``, the global scan included) runs once on the whole field,
   binned, which is cheap; each tile starts from, and is anchored to, its part of it;
2. round 1 fits every tile with both of SUSHI's phases; the Fisher information each tile's objective
   weights came from is stitched into the field's, and the **penalty weights** of the whole field
   are computed from it once (``objective.penalty_weights``: the one non-local term, the relative
   floor, becomes the field's);
3. each further round re-fits every tile from the stitched maps (its halo included, so a tile sees its
   neighbours' solution), minimising the objective with the field's weights and anchor, until the
   stitched maps near tile borders move by less than ``seam_tol`` of each parameter's box width.

What remains different from a whole-cube fit is the starlet's mirrored borders at tile edges (the
halo, by default the reach of the coarsest plane's filter plus 2 pixels, keeps them out of the kept
pixels) and each tile's own stopping test. ``benchmarks/bench_tiled.py`` measures the difference.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import torch

from napari_sushi.core.cube import HyperCube, as_cube
from napari_sushi.core.solver.assemble import assemble, settings_summary
from napari_sushi.core.solver.bootstrap import check_settings, fit_uncertainty
from napari_sushi.core.solver.engine import State, penalty_strengths
from napari_sushi.core.solver.objective import (
    Penalty,
    anchor_mode,
    check_anchor,
    free_map_keys,
    penalty_weights,
    resolve_anchor,
)
from napari_sushi.core.solver.problem import FitSetupError, build_sushi_problem
from napari_sushi.core.solver.result import FitResult
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.stopping import is_cancelled
from napari_sushi.core.solver.threads import fit_threads

DEFAULT_ROUNDS = 3  # round 1 (independent tiles) + up to 2 rounds with the field's weights
SEAM_TOL = 0.01  # stop when the maps near tile borders move by less than this fraction of the box width


def starlet_reach(n_scales: int) -> int:
    """Half-width in pixels of the coarsest starlet plane's filter (B3 taps at +-2 * 2^j, j < J)."""
    return 2 * (2 ** int(n_scales) - 1)


def default_halo(n_scales: int) -> int:
    """The halo a tile needs so that its kept pixels see no mirrored border: the starlet's reach plus 2."""
    return starlet_reach(n_scales) + 2


@dataclass
class Maps:
    """Parameter and amplitude maps keyed like a FitResult's (what a warm start needs)."""

    params: dict[str, np.ndarray]
    amplitudes: dict[str, np.ndarray]


@dataclass
class TileTask:
    """One tile's fit: its cube (halo included), the components with their start cropped, and, after
    round 1, the stitched maps to start from and the field's weights (each cropped to the tile)."""

    cube: HyperCube
    components: list[Component]
    settings: FitSettings
    inner: tuple[slice, slice]
    warm: Maps | None = None
    weights: tuple[np.ndarray, np.ndarray] | None = None  # (local information, lambda), (K, J + 1, y, x)


@dataclass
class TileResult:
    """A tile's fit cropped to its own pixels, its parameter maps with the halo (for the seams), and the
    Fisher information its weights came from (K, y, x) with the strengths (K,)."""

    result: FitResult
    inner: tuple[slice, slice]
    halo_params: dict[str, np.ndarray]
    information: np.ndarray | None
    kmad: np.ndarray | None


def fit_tile(task: TileTask) -> TileResult:
    """Fit one tile (round 1: both phases from the start; later rounds: the objective with the field's
    weights, from the stitched maps), on whatever process runs it; one CPU thread unless set."""
    from napari_sushi.core.solver.sushi import solve

    t0 = time.perf_counter()
    st = task.settings
    with fit_threads(st):
        torch.manual_seed(st.seed)
        problem = build_sushi_problem(task.cube, task.components, st)
        start = pen = None
        if task.weights is not None and task.warm is not None:
            bare = [replace(c, init={}) for c in task.components]  # so that the warm start is what starts
            warm = build_sushi_problem(task.cube, bare, replace(st, warm_start=task.warm))
            start = State(A=warm.A0.clone(), U=warm.U0.clone())
            del warm
            pen = Penalty(problem, st)
            local, lam = (torch.as_tensor(a, dtype=problem.dtype, device=problem.device) for a in task.weights)
            pen.use_weights(local, lam)
        state, pen, phases = solve(problem, st, start=start, penalty=pen)
        sig, bias, info = fit_uncertainty(problem, state, st, pen, None, None)
        phases.update(info)
        res = assemble(problem, state, st, "sushi", time.perf_counter() - t0, phases, sigmas=sig, biases=bias)
        information = kmad = None
        if pen is not None and pen.information is not None:
            information = pen.information.double().cpu().numpy()
            kmad = penalty_strengths(problem, st)[1].double().cpu().numpy()
    return TileResult(
        crop_result(res, task.inner),
        task.inner,
        {k: v.copy() for k, v in res.params.items()},
        information,
        kmad,
    )


def crop_result(res: FitResult, region: tuple[slice, slice]) -> FitResult:
    """The FitResult of the pixels ``region`` (maps and cubes cropped; the rest as it is)."""
    ys, xs = region

    def c2(d: dict) -> dict:
        return {k: np.ascontiguousarray(v[ys, xs]) for k, v in d.items()}

    return replace(
        res,
        amplitudes=c2(res.amplitudes),
        params=c2(res.params),
        sigmas=c2(res.sigmas),
        biases=c2(res.biases),
        intervals={k: (lo[ys, xs], hi[ys, xs]) for k, (lo, hi) in res.intervals.items()},
        gof=res.gof[ys, xs].copy(),
        model_cubes={k: np.ascontiguousarray(v[:, ys, xs]) for k, v in res.model_cubes.items()},
        model_total=np.ascontiguousarray(res.model_total[:, ys, xs]),
        residual=np.ascontiguousarray(res.residual[:, ys, xs]),
        mask=None if res.mask is None else res.mask[ys, xs].copy(),
        wcs=None if res.wcs is None else res.wcs[ys, xs],
    )


def _crop_value(v: Any, region: tuple[slice, slice], shape: tuple[int, int], what: str) -> Any:
    """A component's fixed/init value for a tile: scalars as they are, image maps cropped."""
    if np.ndim(v) == 0:
        return v
    a = np.asarray(v)
    if a.shape[-2:] != shape:
        raise FitSetupError(
            f"{what} is a {a.shape[-2]}x{a.shape[-1]} map; a tiled fit takes maps of the cube's image "
            f"({shape[0]}x{shape[1]}) or single values."
        )
    return a[..., region[0], region[1]]


def _tile_components(components: list[Component], region, shape) -> list[Component]:
    return [
        replace(
            c,
            fixed={k: _crop_value(v, region, shape, f"fixed {c.name}.{k}") for k, v in c.fixed.items()},
            init={k: _crop_value(v, region, shape, f"init {c.name}.{k}") for k, v in c.init.items()},
        )
        for c in components
    ]


def _field_anchor(cube, start, settings: FitSettings):
    """``settings.anchor`` with any "auto" left (when no coarse start ran) resolved at the whole field's start,
    binned 4x4 where the image allows (cheap; the choice is a median over pixels), so that the tiles do
    not each measure their own."""
    b = 4 if min(cube.shape[1:]) // 4 >= 8 else 1
    try:
        field = build_sushi_problem(cube, start, replace(settings, binning=b, warm_start=None))
    except FitSetupError:  # e.g. a background given only at full resolution
        field = build_sushi_problem(cube, start, replace(settings, warm_start=None))
    return resolve_anchor(settings.anchor, field, field.A0, field.U0)


def _tile_settings(settings: FitSettings, region, shape) -> FitSettings:
    """The settings of a tile: no coarse start of its own (the field's is in the components), arrays cropped."""

    def crop(a, what):
        if a is None:
            return None
        a = np.asarray(a)
        if a.ndim == 1:  # a background spectrum, the same everywhere
            return a
        return _crop_value(a, region, shape, what)

    return replace(
        settings,
        coarse_init=1,
        start="default",
        warm_start=None,
        snapshot_every=0,
        mask=crop(settings.mask, "mask"),
        background=crop(settings.background, "background"),
        sigma=crop(settings.sigma, "sigma"),
    )


def stitch(parts: list[TileResult], cores, cube: HyperCube, seconds: float) -> FitResult:
    """One FitResult of the field from the tiles' own pixels."""
    first = parts[0].result
    ny, nx = cube.shape[1:]
    E = first.model_total.shape[0]

    def maps(get) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for part, (ys, xs) in zip(parts, cores):
            for k, v in get(part.result).items():
                out.setdefault(k, np.full((ny, nx), np.nan, np.float32))[ys, xs] = v
        return out

    def cubes(get) -> np.ndarray:
        out = np.zeros((E, ny, nx), np.float32)
        for part, (ys, xs) in zip(parts, cores):
            out[:, ys, xs] = get(part.result)
        return out

    gof = maps(lambda r: {"gof": r.gof})["gof"]
    mask = np.zeros((ny, nx), bool)
    for part, (ys, xs) in zip(parts, cores):
        mask[ys, xs] = True if part.result.mask is None else part.result.mask
    total = cubes(lambda r: r.model_total)
    stops = {p.result.stop_reason for p in parts}
    prov = dict(first.provenance)
    prov["tile_stop_reasons"] = sorted(stops)
    return replace(
        first,
        amplitudes=maps(lambda r: r.amplitudes),
        params=maps(lambda r: r.params),
        sigmas=maps(lambda r: r.sigmas),
        biases=maps(lambda r: r.biases),
        intervals={},
        gof=gof,
        model_cubes={c: cubes(lambda r, c=c: r.model_cubes[c]) for c in first.model_cubes},
        model_total=total,
        residual=cube_counts(cube, first) - total,
        cost_history=np.asarray([sum(float(p.result.cost_history[-1]) for p in parts if len(p.result.cost_history))]),
        n_iter=max(int(p.result.n_iter) for p in parts),
        stop_reason="converged" if stops == {"converged"} else sorted(stops - {"converged"})[0],
        wall_time=seconds,
        provenance=prov,
        wcs=cube.wcs,
        mask=mask,
    )


def cube_counts(cube: HyperCube, res: FitResult) -> np.ndarray:
    """The field's counts on the fit's energy channels (the band the models cover), as float32."""
    edges = np.asarray(res.energy_edges)
    i0 = int(np.argmin(np.abs(cube.energy_edges - edges[0])))
    return cube.counts[i0 : i0 + edges.size - 1].astype(np.float32)


def _near_borders(shape: tuple[int, int], cores, width: int) -> np.ndarray:
    """Pixels within ``width`` of a border between two tiles (not the image's own edges)."""
    ny, nx = shape
    near = np.zeros(shape, bool)
    for ys, xs in cores:
        if ys.start > 0:
            near[max(0, ys.start - width) : ys.start + width, xs] = True
        if xs.start > 0:
            near[ys, max(0, xs.start - width) : xs.start + width] = True
    return near


def seams(parts: list[TileResult], regions, stitched: FitResult) -> dict[str, float]:
    """Per parameter map, the largest disagreement (physical units) between a tile's value on the pixels
    just outside its own (its halo's first ring) and the value the neighbouring tile kept there."""
    out: dict[str, float] = {}
    ny, nx = stitched.gof.shape
    for part, (core, _, ext) in zip(parts, regions):
        ring = np.zeros((ny, nx), bool)
        ys, xs = core
        ring[max(0, ys.start - 1) : min(ny, ys.stop + 1), max(0, xs.start - 1) : min(nx, xs.stop + 1)] = True
        ring[ys, xs] = False
        sub = ring[ext]
        if not sub.any():
            continue
        for key, own in part.halo_params.items():
            d = np.abs(own[sub] - stitched.params[key][ext][sub])
            d = d[np.isfinite(d)]
            if d.size:
                out[key] = max(out.get(key, 0.0), float(d.max()))
    return out


def tiled_fit(
    cube,
    components: list[Component],
    settings: FitSettings | None = None,
    tile: int = 96,
    halo: int | None = None,
    rounds: int = DEFAULT_ROUNDS,
    seam_tol: float = SEAM_TOL,
    client: Any = None,
    on_tile: Callable[[int, int, int], None] | None = None,
    on_round: Callable[[int, FitResult], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> FitResult:
    """SUSHI on ``cube`` in ``tile`` x ``tile`` tiles with a ``halo`` (default :func:`default_halo`), sharing
    the field's start and weights (module docstring); tiles run here or on ``client`` (a Dask Client).

    ``rounds``: at most this many passes over the tiles (1 = independent tiles from the shared start).
    ``on_tile(round, done, n_tiles)`` reports progress; ``on_round(round, stitched)`` gives the stitched
    maps after each round. The result's provenance has ``tiling``: tile, halo, n_tiles, per round its
    seconds, border movement and seams, and the last round's seams. Cancelling returns None.
    """
    from napari_sushi.core.cluster import run_tasks
    from napari_sushi.core.solver.sushi import start_and_anchor

    t0 = time.perf_counter()
    settings = settings or FitSettings()
    check_settings(settings)
    check_anchor(settings.anchor, components)
    cube = as_cube(cube)
    if int(settings.binning) != 1:
        raise FitSetupError(
            f"a tiled fit works on the cube's own pixels; bin the cube first (HyperCube.rebin_spatial("
            f"{settings.binning}) or `napari-sushi bin --binning`) and fit it with binning 1."
        )
    if settings.warm_start is not None:
        raise FitSetupError("a tiled fit starts from the whole field's coarse start; it takes no warm start.")
    tile, rounds = int(tile), int(rounds)
    halo = default_halo(settings.n_scales) if halo is None else int(halo)
    if tile < 8 or halo < 0 or rounds < 1:
        raise FitSetupError(f"tiles need a size >= 8, a halo >= 0 and rounds >= 1; got {tile}, {halo}, {rounds}.")
    shape = cube.shape[1:]
    regions = cube.tile_regions(tile, halo)
    cores = [r[0] for r in regions]
    with fit_threads(settings):  # the field's coarse start (cheap: a binned cube), shared by every tile
        start, anchor = start_and_anchor(cube, components, settings, cancel)
        keys = free_map_keys(components, settings.regularise_shares)
        if any(anchor_mode(anchor, [k]) == "auto" for k in keys):  # the coarse start did not resolve it
            anchor = _field_anchor(cube, start, replace(settings, anchor=anchor))
    settings = replace(settings, anchor=anchor)  # resolved once on the field: every tile minimises one objective
    if is_cancelled(cancel):
        return None  # type: ignore[return-value]
    rounds_done: list[dict] = []  # per round: seconds, border movement, seams
    tasks = [
        TileTask(
            cube.crop(ext[0].start, ext[0].stop, ext[1].start, ext[1].stop),
            _tile_components(start, ext, shape),
            _tile_settings(settings, ext, shape),
            inner,
        )
        for _, inner, ext in regions
    ]
    near = _near_borders(shape, cores, halo)
    stitched = previous = None
    weights = None
    for rnd in range(1, rounds + 1):
        if is_cancelled(cancel):
            return None  # type: ignore[return-value]
        t_round = time.perf_counter()
        done = [0]

        def progress(_i: int, _r: Any, rnd: int = rnd) -> None:
            done[0] += 1
            if on_tile is not None:
                on_tile(rnd, done[0], len(tasks))

        parts = run_tasks(fit_tile, tasks, client=client, on_done=progress, cancel=lambda: is_cancelled(cancel))
        if is_cancelled(cancel):
            return None  # type: ignore[return-value]
        stitched = stitch(parts, cores, cube, time.perf_counter() - t0)
        if on_round is not None:
            on_round(rnd, stitched)
        move = None
        if previous is not None:
            widths = {k: float(b[1] - b[0]) for k, b in stitched.provenance["boxes"].items()}  # free maps' boxes
            move = max(
                (float(np.nanmax(np.abs(stitched.params[k] - previous.params[k])[near], initial=0.0)) / w)
                for k, w in widths.items()
                if k in stitched.params
            )
        rounds_done.append(
            {
                "round": rnd,
                "seconds": time.perf_counter() - t_round,
                "border_move": move,
                "seams": seams(parts, regions, stitched),
            }
        )
        if len(regions) == 1 or (move is not None and move < seam_tol):
            break
        if weights is None:  # the field's weights, from the information the round-1 tiles weighted with
            weights = field_weights(parts, cores, shape, settings)
            if weights is None:  # nothing regularised: the tiles are independent problems already
                break
        previous = stitched
        tasks = [
            replace(
                t,
                warm=Maps(
                    {k: v[ext] for k, v in stitched.params.items()},
                    {k: v[ext] for k, v in stitched.amplitudes.items()},
                ),
                weights=(weights[0][:, :, ext[0], ext[1]], weights[1][:, :, ext[0], ext[1]]),
            )
            for t, (_, _, ext) in zip(tasks, regions)
        ]
    assert stitched is not None
    stitched.provenance["settings"] = settings_summary(settings)
    stitched.provenance["tiling"] = {
        "tile": tile,
        "halo": halo,
        "n_tiles": len(regions),
        "rounds": rounds_done,
        "seams": rounds_done[-1]["seams"],
    }
    stitched.wall_time = time.perf_counter() - t0
    return stitched


def field_weights(parts: list[TileResult], cores, shape, settings: FitSettings):
    """The whole field's (local information, weights) from the tiles' stitched information, or None."""
    blocks = [p.information for p in parts]
    if any(b is None for b in blocks):
        return None
    info = np.zeros((blocks[0].shape[0], *shape))  # type: ignore[union-attr]
    for part, block, (ys, xs) in zip(parts, blocks, cores):
        info[:, ys, xs] = block[:, part.inner[0], part.inner[1]]  # type: ignore[index]
    kmad = torch.as_tensor(parts[0].kmad)
    local, lam = penalty_weights(torch.as_tensor(info), kmad, int(settings.n_scales))
    return local.numpy(), lam.numpy()
