"""napari reader contribution: FITS cubes, event lists, .npy/.npz arrays and map files as layers.

A cube opens as one image layer (energy, y, x) whose energy slider reads in keV: the energy axis has
``scale`` = bin width and ``translate`` = centre of the first bin when the bins are uniform (otherwise
the bin index, said in ``metadata['energy_axis']``). Metadata keep the energy edges, the WCS (object
and header text), exposure, channels and the source header, so widgets can rebuild the
:class:`~napari_sushi.core.cube.HyperCube` with :func:`napari_sushi._napari.layers.cube_from_layer`.
Extra 2-D map extensions become image layers with the same spatial scale, hidden when ``TRUTH = T``.
A maps file exported from a fit (``FitResult.to_fits``, with or without its cubes) re-opens as that
run (:func:`run_layers`): layers named as the live run names them, result metadata, so none of them
is offered as data to fit; other map files (truth maps, one saved layer) open map by map.
Event lists are binned on the instrument's native channels over 0.5-8 keV (0.1 keV channels, with a
warning, when the list has no PI channels with an energy mapping) with a spatial binning that keeps
the image within 512 pixels (:func:`~napari_sushi.core.io.events.default_event_options`); their
response (RMF, ARF) is found as X-ray tools find it and put in ``metadata['response']``, and the
binning in ``metadata['events']`` so :func:`event_layers` can re-bin the list with other options.
Any other FITS image (a 2-D picture, a stack without energy axis) opens as a plain image layer, so
preferring this reader for ``*.fits`` (:mod:`.preferences`) loses nothing napari's own reader shows.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io import (
    FileFormatError,
    bin_events,
    default_event_options,
    event_summary,
    file_kind,
    read_array_cube,
    read_fits_cube,
    read_fits_image,
    read_maps_fits,
)
from napari_sushi.core.io.maps import MapSet, fit_export
from napari_sushi.core.io.read import _is_fits
from napari_sushi._napari import result_layers as L
from napari_sushi._napari.layers import CUBE_AXIS_LABELS, cube_layer, energy_axis_geometry, image_layer, map_layer
from napari_sushi.core.io.arrays import NoEnergyEdgesWarning

LayerData = tuple[Any, dict[str, Any], str]
FALLBACK_WIDTH = 0.1  # keV: channels of the band fitted to the events when none fall in 0.5-8 keV


def event_layers(
    path: str | os.PathLike,
    band: tuple[float, float] | None = None,
    native: bool | None = None,
    channel_width: float | None = None,
    group: int = 1,
    binning: int | None = None,
    cutout: tuple[float, float, float, float] | None = None,
    rmf: str | os.PathLike | None = None,
    arf: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[LayerData]:
    """Bin an event list into one cube layer; options not given take the reader's defaults.

    ``metadata['events']`` records the file and the options used (``path``, ``band``, ``native``,
    ``channel_width``, ``group``, ``binning``, ``cutout``) and ``metadata['response']`` the response
    files, so the app can offer the same list re-binned. Raises :class:`CubeError` with what to change.
    """
    p = Path(path).expanduser()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bin_events says the same again below
        summary = event_summary(p, rmf=rmf, arf=arf)
    opts = default_event_options(
        p,
        band=band,
        native=native,
        channel_width=channel_width,
        group=group,
        binning=binning,
        cutout=cutout,
        rmf=rmf,
        arf=arf,
        summary=summary,
    )
    try:
        cube = bin_events(p, progress=progress, **opts)
    except CubeError:
        if band is not None or summary.energy_range is None or opts.get("native"):
            raise
        # no event in 0.5-8 keV (e.g. a simulated list): the band of the events on 0.1 keV channels
        lo = math.floor(summary.energy_range[0] * 10) / 10
        hi = math.ceil(summary.energy_range[1] * 10) / 10 + FALLBACK_WIDTH
        hi = lo + round((hi - lo) / FALLBACK_WIDTH) * FALLBACK_WIDTH
        opts.update(band=(lo, hi), channel_width=FALLBACK_WIDTH)
        cube = bin_events(p, progress=progress, **opts)
    data, kwargs, kind = cube_layer(cube, source=str(p))
    kwargs["metadata"]["events"] = {
        "path": str(p.resolve()),
        "band": tuple(float(v) for v in opts["band"]),
        "native": bool(opts.get("native", False)),
        "channel_width": None if opts.get("native") else float(opts["channel_width"]),
        "group": int(opts["group"]),
        "binning": int(opts["binning"]),
        "cutout": None if opts["cutout"] is None else tuple(float(v) for v in opts["cutout"]),
    }
    return [(data, kwargs, kind)]


def _run_label(ms: MapSet, path: Path) -> str:
    """The run's label as the app named it (recorded in the export's provenance), else the file stem."""
    info = fit_export(ms)
    return info.run if info is not None and info.run else path.stem


def run_layers(ms: MapSet, path: str | os.PathLike) -> list[LayerData]:
    """The layers of an exported fit, as the live run makes them: names from :mod:`.result_layers`,
    metadata like ``RunLayers`` (``kind``, ``run``, ``key``, ``unit``, ``wcs``, ``provenance``,
    ``napari_sushi_result``) plus ``maps_file`` (the path, so the Pixel spectrum dock can find the
    run's cubes). Parameter and amplitude maps are visible and on top; σ, bias, interval, goodness of fit
    and cubes hidden below. ``"<key> measured"`` masks go to their parameter layer's
    ``metadata['measured']`` (bool), not to layers of their own. Maps sit on the fit's binned grid
    over a cube layer read from file (pixel scale 1): scale ``binning``, centred on the binned block.
    """
    from napari_sushi.core.solver.result import split_maps

    p = Path(path)
    info = fit_export(ms)
    if info is None:
        raise FileFormatError(f"{p} is not a fit export (no METHOD/NITER in its primary header).")
    run = _run_label(ms, p)
    b = info.binning
    t = (b - 1) / 2.0
    provenance = dict(info.provenance, run=run, method=info.method)
    wcs = ms.wcs
    wcs_header = None if wcs is None else wcs.to_header_string(relax=True)
    done = {"live": False, "stop_reason": info.stop_reason, "n_iter": info.n_iter, "maps_file": str(p.resolve())}
    fm = split_maps(ms.maps)
    amp_comps = set(fm.amplitudes)

    def unit_of(name: str, fallback: str = "") -> str:
        return ms.units.get(name) or fallback

    def layer(
        name: str,
        data: Any,
        key: str,
        kind: str,
        unit: str,
        visible: bool,
        extra: dict | None = None,
        cube: bool = False,
    ) -> LayerData:
        md = {
            "kind": kind,
            "run": run,
            "key": key,
            "unit": unit,
            "wcs": wcs,
            "wcs_header": wcs_header,
            "provenance": provenance,
            "napari_sushi_result": True,
            **done,
            **(extra or {}),
        }
        arr = np.asarray(data, dtype=np.float32)
        kw: dict[str, Any] = {
            "name": name,
            "visible": visible,
            "metadata": md,
            "colormap": L.colormap_for(key, unit, kind),
            "contrast_limits": L.contrast_for(arr, key, unit, kind),
        }
        if cube:
            se, te, ue, description = energy_axis_geometry(ms.energy_edges)
            md["energy_edges"] = np.asarray(ms.energy_edges, dtype=float)
            md["energy_axis"] = description
            kw.update(
                scale=(se, float(b), float(b)),
                translate=(te, t, t),
                axis_labels=CUBE_AXIS_LABELS,
                units=(ue, "pixel", "pixel"),
            )
        else:
            kw.update(scale=(float(b), float(b)), translate=(t, t), axis_labels=("y", "x"), units=("pixel", "pixel"))
        md["auto_contrast"] = tuple(kw["contrast_limits"])
        return arr, kw, "image"

    hidden: list[LayerData] = []
    if ms.energy_edges is not None:
        for what, kind in (("model", "model"), ("residual", "residual")):
            if what in ms.cubes:
                hidden.append(
                    layer(
                        L.cube_layer_name(run, what),
                        ms.cubes[what],
                        what,
                        kind,
                        unit_of(what, L.AMPLITUDE_UNIT),
                        False,
                        cube=True,
                    )
                )
        for what, cube in ms.cubes.items():
            if what.endswith(" model") and what != "model":
                hidden.append(
                    layer(
                        L.cube_layer_name(run, what),
                        cube,
                        what,
                        "model",
                        unit_of(what, L.AMPLITUDE_UNIT),
                        False,
                        cube=True,
                    )
                )
    if fm.gof is not None:
        gof_name = info.gof_name or "cstat/dof"
        hidden.append(layer(L.gof_layer_name(run, gof_name), fm.gof, "gof", "gof", gof_name, False))
    for key, arr in fm.sigmas.items():
        amp = key.endswith(" amplitude") or key in amp_comps
        full = f"{key} amplitude" if key in amp_comps else key
        unit = unit_of(f"{key} sigma") or unit_of(full, L.AMPLITUDE_UNIT if amp else "")
        hidden.append(layer(L.map_layer_name(run, full, unit, sigma=True), arr, full, "sigma", unit, False))
    for key, arr in fm.biases.items():
        unit = unit_of(f"{key} bias")
        hidden.append(layer(L.map_layer_name(run, f"{key} bias", unit), arr, key, "bias", unit, False))
    for key, (lo, hi) in fm.intervals.items():
        for side, arr in (("lower", lo), ("upper", hi)):
            unit = unit_of(f"{key} {side}")
            hidden.append(
                layer(
                    L.map_layer_name(run, f"{key} {side}", unit),
                    arr,
                    key,
                    "interval",
                    unit,
                    False,
                    extra={"bound": side},
                )
            )
    amplitudes: list[LayerData] = []
    for comp, arr in fm.amplitudes.items():
        key = f"{comp} amplitude"
        unit = unit_of(key, L.AMPLITUDE_UNIT)
        amplitudes.append(layer(L.map_layer_name(run, key, unit), arr, key, "amplitude", unit, True))
    params: list[LayerData] = []
    shorts = L.short_keys(list(fm.params))
    for key, arr in fm.params.items():
        unit = unit_of(key)
        mask = fm.measured.get(key)
        group = [
            layer(
                L.map_layer_name(run, key, unit),
                arr,
                key,
                "parameter",
                unit,
                True,
                extra={"measured": None if mask is None else np.asarray(mask, dtype=bool)},
            )
        ]
        if mask is not None and not np.all(mask):  # the live run's grey overlay, just above its map
            data, kw, kind = layer(
                L.unmeasured_layer_name(run, key, shorts[key]),
                ~np.asarray(mask, bool),
                key,
                "unmeasured",
                "",
                True,
                extra={"help": L.UNMEASURED_HELP},
            )
            kw.update(colormap=L.unmeasured_colormap(), contrast_limits=(0.0, 1.0), blending="translucent")
            kw["metadata"]["auto_contrast"] = (0.0, 1.0)
            group.append((data, kw, kind))
        params.append(group)
    # napari stacks layers in list order (the last on top); as after a live fit, the first parameter is on top
    return hidden + amplitudes + [ld for group in params[::-1] for ld in group]


def maps_file_layers(path: str | os.PathLike) -> list[LayerData]:
    """A maps file as layers: a fit export as its run (:func:`run_layers`), other map sets map by map."""
    p = Path(path)
    ms = read_maps_fits(p)
    if fit_export(ms) is not None:
        return run_layers(ms, p)
    return [map_layer(ms, name) for name in ms.maps]


def read_layers(path: str | os.PathLike) -> list[LayerData]:
    """Read one file into napari layer data tuples (raises clear errors on bad content)."""
    p = Path(path)
    kind = file_kind(p)
    caught: list[warnings.WarningMessage] = []
    if kind == "maps":
        return maps_file_layers(p)
    if kind == "events":
        return event_layers(p)
    if kind == "image":
        return [image_layer(read_fits_image(p), source=str(p))]
    if kind == "array":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cube = read_array_cube(p)
        for w in caught:
            warnings.warn(str(w.message), w.category, stacklevel=2)
    else:
        cube = read_fits_cube(p)
    layers = [cube_layer(cube, source=str(p))]
    if kind == "array" and any(issubclass(w.category, NoEnergyEdgesWarning) for w in caught):
        kw = layers[0][1]
        kw["units"] = ("dimensionless", "pixel", "pixel")
        kw["metadata"]["energy_axis"] = "channel index: the file has no energy_edges (not keV)"
    if kind == "cube":
        try:
            ms = read_maps_fits(p)
        except FileFormatError:
            ms = None
        if ms is not None:
            layers += [map_layer(ms, name) for name in ms.maps if ms.maps[name].shape == cube.shape[1:]]
    return layers


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return a reader for ``path`` if it is a FITS file or a .npy/.npz array, else None.

    Every FITS file is accepted, so that when napari-sushi is the preferred reader a FITS holding no
    image or event list gets our clear error (raised by the reader) instead of napari's generic one.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path) if isinstance(path, (list, tuple)) else []
    if not paths:
        return None
    for p in paths:
        q = Path(p)
        try:
            if not q.is_file() or not (q.suffix.lower() in (".npy", ".npz") or _is_fits(q)):
                return None
        except OSError:
            return None

    def reader(arg: Any) -> list[LayerData]:
        items = [arg] if isinstance(arg, (str, os.PathLike)) else list(arg)
        out: list[LayerData] = []
        for item in items:
            out += read_layers(item)
        return out

    return reader
