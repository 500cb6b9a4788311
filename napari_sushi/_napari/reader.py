"""napari reader contribution: FITS cubes, event lists, .npy/.npz arrays and map files as layers.

A cube opens as one image layer (energy, y, x) whose energy slider reads in keV: the energy axis has
``scale`` = bin width and ``translate`` = centre of the first bin when the bins are uniform (otherwise
the bin index, said in ``metadata['energy_axis']``). Metadata keep the energy edges, the WCS (object
and header text), exposure, channels and the source header, so widgets can rebuild the
:class:`~napari_sushi.core.cube.HyperCube` with :func:`napari_sushi._napari.layers.cube_from_layer`.
Extra 2-D map extensions become image layers with the same spatial scale, hidden when ``TRUTH = T``.
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
from napari_sushi.core.io.read import _is_fits
from napari_sushi._napari.layers import cube_layer, image_layer, map_layer
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
    opts = default_event_options(p, band=band, native=native, channel_width=channel_width, group=group,
                                 binning=binning, cutout=cutout, rmf=rmf, arf=arf, summary=summary)
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


def read_layers(path: str | os.PathLike) -> list[LayerData]:
    """Read one file into napari layer data tuples (raises clear errors on bad content)."""
    p = Path(path)
    kind = file_kind(p)
    caught: list[warnings.WarningMessage] = []
    if kind == "maps":
        ms = read_maps_fits(p)
        layers = [map_layer(ms, name) for name in ms.maps]
        return layers
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
