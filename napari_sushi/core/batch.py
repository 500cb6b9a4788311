"""Batches: many cubes (epochs, pointings, binnings, strengths), each fitted and written to its own maps file.

A batch is described by a TOML file (``napari-sushi batch SPEC.toml``)::

    [defaults]                        # optional: what every [[cube]] gets unless it says otherwise
    models = ["toy-thermal-emulator", "toy-powerlaw-emulator"]
    output_dir = "maps"               # where outputs without an explicit path go (default: the spec's folder)
    settings = { kmad = 5.0, max_iter = 300 }

    [[cube]]
    input = "epoch1.fits"             # a cube file; relative paths are relative to the spec file
    output = "maps/epoch1_maps.fits"  # default: <output_dir>/<name>_maps.fits

    [[cube]]
    name = "msh-bin4"
    input = "acisf05562_repro_evt2.fits"
    events = { binning = 4, band = [0.5, 8.0], cutout = [3700, 4500, 3700, 4500] }  # an event list, binned
    settings = { kmad = { "thermal.kT" = 3.0 } }
    fixed = { "powerlaw.index" = 2.0 }   # numbers, or a .npy/FITS map file
    tiles = { size = 96, halo = 16 }     # a tiled fit (core.solver.tiled) instead of the whole-cube one

Other keys of a cube: ``method`` ("sushi" or "pixelfit"), ``init`` (like ``fixed``), ``mask`` and
``background`` (files), ``with_cubes`` (also write model and residual cubes). ``settings`` takes the
fields of :class:`~napari_sushi.core.solver.settings.FitSettings` that are plain values.

Each output is written atomically (a complete file or none), so a batch is resumable: a cube whose
output exists is skipped. A cube that fails is reported and the others go on. Cubes run here, one after
another, or on a Dask cluster (:mod:`napari_sushi.core.cluster`), each read on the worker that fits it.
"""

from __future__ import annotations

import dataclasses
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from napari_sushi.core.solver.settings import FitSettings


class BatchSpecError(ValueError):
    """The batch file is not a valid batch (message says which entry and what to change)."""


# FitSettings fields a batch file may set (arrays, a warm start and the snapshot cadence are not plain values)
SETTING_KEYS = tuple(
    f.name
    for f in dataclasses.fields(FitSettings)
    if f.name not in ("sigma", "background", "mask", "warm_start", "snapshot_every")
)
CUBE_KEYS = (
    "name",
    "input",
    "output",
    "events",
    "models",
    "method",
    "settings",
    "fixed",
    "init",
    "mask",
    "background",
    "tiles",
    "with_cubes",
)
EVENT_KEYS = ("binning", "band", "group", "cutout", "rmf", "arf")
TILE_KEYS = ("size", "halo", "rounds")
METHODS = ("sushi", "pixelfit")


@dataclass
class Job:
    """One cube of a batch: where it is, how to read and fit it, where its maps go (plain, picklable values)."""

    name: str
    input: Path
    output: Path
    method: str = "sushi"
    events: dict[str, Any] | None = None  # event-list binning options (core.io.read.read_cube's)
    models: list[str] = field(default_factory=list)  # names or files; empty: the models matching the cube
    settings: dict[str, Any] = field(default_factory=dict)  # FitSettings fields
    fixed: dict[str, float | str] = field(default_factory=dict)  # "comp.param" -> value or map file
    init: dict[str, float | str] = field(default_factory=dict)
    mask: Path | None = None
    background: Path | None = None
    tiles: dict[str, int] | None = None  # size, halo, rounds of a tiled fit
    with_cubes: bool = False


@dataclass
class Outcome:
    """What became of one job: status "done", "skipped" (its output existed) or "failed" (``message`` says why)."""

    name: str
    output: Path
    status: str
    message: str = ""
    seconds: float = 0.0
    n_iter: int = 0
    stop_reason: str = ""


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise BatchSpecError(f"{where} must be a table (key = value pairs); got {type(value).__name__}.")
    return value


def _unknown(keys, allowed, where: str) -> None:
    bad = sorted(set(keys) - set(allowed))
    if bad:
        raise BatchSpecError(f"{where}: unknown key(s) {', '.join(bad)}; allowed: {', '.join(allowed)}.")


def _check_settings(values: dict, where: str) -> dict:
    _unknown(values, SETTING_KEYS, where)
    defaults = FitSettings()
    out = {}
    for key, v in values.items():
        d = getattr(defaults, key)
        if key == "kmad":
            if isinstance(v, dict):
                v = {str(k): _number(x, f"{where} kmad.{k}") for k, x in v.items()}
            else:
                v = _number(v, f"{where} kmad")
        elif key == "links":
            if not isinstance(v, list) or not all(isinstance(g, list) and len(g) >= 2 for g in v):
                raise BatchSpecError(f'{where} links must be a list of lists of names, e.g. [["a.v", "b.v"]].')
            v = [tuple(str(x) for x in g) for g in v]
        elif key == "band":
            if not (isinstance(v, list) and len(v) == 2):
                raise BatchSpecError(f"{where} band must be [emin, emax] in keV; got {v!r}.")
            v = (_number(v[0], f"{where} band"), _number(v[1], f"{where} band"))
        elif isinstance(d, bool):
            if not isinstance(v, bool):
                raise BatchSpecError(f"{where} {key} must be true or false; got {v!r}.")
        elif isinstance(d, int) or key == "threads":
            if not isinstance(v, int) or isinstance(v, bool):
                raise BatchSpecError(f"{where} {key} must be a whole number; got {v!r}.")
        elif isinstance(d, float) or key == "fixed_step":
            v = _number(v, f"{where} {key}")
        elif isinstance(d, str) and not isinstance(v, str):
            raise BatchSpecError(f"{where} {key} must be a string; got {v!r}.")
        out[key] = v
    return out


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BatchSpecError(f"{where} must be a number; got {v!r}.")
    return float(v)


def _path(v: Any, base: Path, where: str) -> Path:
    if not isinstance(v, str) or not v:
        raise BatchSpecError(f"{where} must be a file path (a string); got {v!r}.")
    p = Path(v).expanduser()
    return p if p.is_absolute() else base / p


def _values(v: Any, base: Path, where: str) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for key, x in _table(v, where).items():
        if "." not in key:
            raise BatchSpecError(f'{where}: keys are "component.parameter" (quote them); got {key!r}.')
        out[key] = str(_path(x, base, f"{where} {key}")) if isinstance(x, str) else _number(x, f"{where} {key}")
    return out


def load_spec(path: str | os.PathLike) -> list[Job]:
    """The jobs of a batch file (TOML; see the module docstring), checked before anything runs."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BatchSpecError(f"batch file {path} does not exist (or is not a file).")
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise BatchSpecError(f"batch file {path} is not valid TOML: {exc}.") from None
    except UnicodeDecodeError:
        raise BatchSpecError(f"batch file {path} is not a text (TOML) file.") from None
    _unknown(spec, ("defaults", "cube"), str(path))
    base = path.resolve().parent
    defaults = dict(_table(spec.get("defaults", {}), "[defaults]"))
    out_dir = _path(defaults.pop("output_dir", "."), base, "[defaults] output_dir")
    _unknown(defaults, [k for k in CUBE_KEYS if k not in ("name", "input", "output")], "[defaults]")
    cubes = spec.get("cube")
    if not isinstance(cubes, list) or not cubes:
        raise BatchSpecError(f'batch file {path} lists no cubes: add one or more [[cube]] tables with input = "FILE".')
    jobs: list[Job] = []
    seen: dict[Path, str] = {}
    for i, raw in enumerate(cubes, start=1):
        where = f"[[cube]] #{i}"
        entry = _table(raw, where)
        _unknown(entry, CUBE_KEYS, where)
        if "input" not in entry:
            raise BatchSpecError(f'{where} has no input: give input = "FILE" (a cube or an event list).')
        merged = {**defaults, **entry}
        settings = {**_table(defaults.get("settings", {}), "[defaults] settings")}
        settings.update(_table(entry.get("settings", {}), f"{where} settings"))
        src = _path(entry["input"], base, f"{where} input")
        name = str(entry.get("name") or src.name.split(".")[0])
        where = f"[[cube]] #{i} ({name})"
        output = _path(entry["output"], base, f"{where} output") if "output" in entry else out_dir / f"{name}_maps.fits"
        if output.resolve() in seen:
            raise BatchSpecError(
                f"{where} writes {output}, as cube {seen[output.resolve()]} does; give each its own output."
            )
        if output.resolve() == src.resolve():
            raise BatchSpecError(f"{where}: output {output} is the input; writing it would replace your data.")
        seen[output.resolve()] = name
        method = merged.get("method", "sushi")
        if method not in METHODS:
            raise BatchSpecError(f"{where} method must be one of {', '.join(METHODS)}; got {method!r}.")
        events = None
        if "events" in merged:
            events = dict(_table(merged["events"], f"{where} events"))
            _unknown(events, EVENT_KEYS, f"{where} events")
            for key in ("band", "cutout"):
                if key in events:
                    events[key] = tuple(_number(x, f"{where} events {key}") for x in events[key])
            for key in ("rmf", "arf"):
                if key in events:
                    events[key] = _path(events[key], base, f"{where} events {key}")
        models = merged.get("models", [])
        if isinstance(models, str):
            models = [models]
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise BatchSpecError(f"{where} models must be a list of model names or files.")
        models = [str(base / m) if (base / m).is_file() else m for m in models]
        tiles = None
        if "tiles" in merged:
            tiles = _table(merged["tiles"], f"{where} tiles")
            _unknown(tiles, TILE_KEYS, f"{where} tiles")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in tiles.values()) or "size" not in tiles:
                raise BatchSpecError(f"{where} tiles wants whole numbers: size (required), halo, rounds.")
            if method != "sushi":
                raise BatchSpecError(f"{where}: tiles apply to SUSHI fits only (the per-pixel fit needs no tiling).")
        jobs.append(
            Job(
                name=name,
                input=src,
                output=output,
                method=method,
                events=events,
                models=models,
                settings=_check_settings(settings, f"{where} settings"),
                fixed=_values(merged.get("fixed", {}), base, f"{where} fixed"),
                init=_values(merged.get("init", {}), base, f"{where} init"),
                mask=_path(merged["mask"], base, f"{where} mask") if "mask" in merged else None,
                background=_path(merged["background"], base, f"{where} background") if "background" in merged else None,
                tiles=tiles,
                with_cubes=bool(merged.get("with_cubes", False)),
            )
        )
    return jobs


def build_request(job: Job):
    """(cube, components, settings) of a job: the cube read (an event list binned), its models loaded."""
    import numpy as np

    from napari_sushi.core.io.map_file import read_map_array
    from napari_sushi.core.io.read import read_cube
    from napari_sushi.core.solver.links import merge_links
    from napari_sushi.core.solver.settings import Component, unique_name
    from napari_sushi.core.spectral.defaults import default_models
    from napari_sushi.core.spectral.registry import load_model

    from napari_sushi.core.cluster import worker_device

    cube = read_cube(job.input, **(job.events or {}))
    comps: list[Component] = []
    for ref in job.models or default_models(cube).paths:
        model = load_model(ref)
        comps.append(Component(unique_name(model.component, {c.name for c in comps}), model))
    by_name = {c.name: c for c in comps}
    for what, given in (("fixed", job.fixed), ("init", job.init)):
        for key, v in given.items():
            comp, _, param = key.partition(".")
            if comp not in by_name:
                raise BatchSpecError(f"{what} {key}: no component {comp!r} (components: {', '.join(by_name)}).")
            getattr(by_name[comp], what)[param] = v if isinstance(v, float) else read_map_array(v, f"{what} {key}")
    values: dict[str, Any] = dict(job.settings)
    if "links" in values:
        values["links"] = merge_links(values["links"])
    if isinstance(values.get("kmad"), float):  # one number: the default of every map, as the CLI's --kmad K
        values.setdefault("kmad_default", values["kmad"])
    if job.method == "pixelfit":
        values["kmad"] = 0.0
    st = FitSettings(**values)
    st.device = worker_device(st.device)
    if job.mask is not None:
        st.mask = read_map_array(job.mask, "mask") != 0
    if job.background is not None:
        st.background = np.asarray(read_map_array(job.background, "background"))
    return cube, comps, st


def run_job(job: Job) -> Outcome:
    """Fit one job and write its maps (atomically); any error becomes a "failed" outcome, never an exception."""
    t0 = time.perf_counter()
    try:
        from napari_sushi.core.solver.pixelfit import pixelfit
        from napari_sushi.core.solver.sushi import fit
        from napari_sushi.core.solver.tiled import tiled_fit

        cube, comps, st = build_request(job)
        if job.tiles is not None:
            t = job.tiles
            res = tiled_fit(cube, comps, st, tile=t["size"], halo=t.get("halo", 16), rounds=t.get("rounds", 3))
        else:
            res = (fit if job.method == "sushi" else pixelfit)(cube, comps, st)
        if isinstance(res.provenance, dict):
            res.provenance["data_response"] = None if cube.response is None else cube.response.as_meta()
            res.provenance["data_file"] = str(job.input)
            res.provenance["batch_job"] = job.name
        job.output.parent.mkdir(parents=True, exist_ok=True)
        res.to_fits(job.output, include_cubes=job.with_cubes, overwrite=True)
    except Exception as exc:  # one cube's failure is reported, the batch goes on
        return failed(job, exc, time.perf_counter() - t0)
    return Outcome(job.name, job.output, "done", "", time.perf_counter() - t0, int(res.n_iter), str(res.stop_reason))


def failed(job: Job, exc: BaseException, seconds: float = 0.0) -> Outcome:
    """The "failed" outcome of ``job`` for ``exc``: its message, with the error's type unless it is a user error."""
    user = isinstance(exc, (ValueError, OSError))
    msg = str(exc) if user else f"{type(exc).__name__}: {exc}"
    return Outcome(job.name, job.output, "failed", msg or type(exc).__name__, seconds)


def run_batch(
    jobs: list[Job],
    client: Any = None,
    redo: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every job whose output does not exist yet (all of them with ``redo``), here or on ``client``.

    Returns one Outcome per job, in the jobs' order; ``on_done`` receives each as it is known (skipped
    ones first).
    """
    from napari_sushi.core.cluster import run_tasks

    outcomes: list[Outcome | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        if job.output.exists() and not redo:
            skipped = outcomes[i] = Outcome(job.name, job.output, "skipped", "output exists")
            if on_done is not None:
                on_done(skipped)
        else:
            todo.append(i)

    def done(k: int, outcome: Outcome) -> None:
        outcomes[todo[k]] = outcome
        if on_done is not None:
            on_done(outcome)

    run_tasks(run_job, [jobs[i] for i in todo], client=client, on_done=done, on_error=failed)
    return [o for o in outcomes if o is not None]
