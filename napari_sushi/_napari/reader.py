"""napari reader contribution: FITS cubes, event lists, .npy/.npz arrays and map files as layers.

A cube opens as one image layer (energy, y, x) whose energy slider reads in keV: the energy axis has
``scale`` = bin width and ``translate`` = centre of the first bin when the bins are uniform (otherwise
the bin index, said in ``metadata['energy_axis']``). Metadata keep the energy edges, the WCS (object
and header text), exposure, channels and the source header, so widgets can rebuild the
:class:`~napari_sushi.core.cube.HyperCube` with :func:`napari_sushi._napari.layers.cube_from_layer`.
Extra 2-D map extensions become image layers with the same spatial scale, hidden when ``TRUTH = T``.
Event lists are binned with 0.1 keV channels over 0.5-8 keV and a spatial binning that keeps the
image within about 512 pixels (use ``napari-sushi bin`` for other choices).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io import (
    FileFormatError,
    bin_events,
    event_summary,
    file_kind,
    read_array_cube,
    read_fits_cube,
    read_maps_fits,
)
from napari_sushi._napari.layers import cube_layer, map_layer
from napari_sushi.core.io.arrays import NoEnergyEdgesWarning

LayerData = tuple[Any, dict[str, Any], str]
EVENT_IMAGE_PIXELS = 512  # target image size when opening an event list without options
EVENT_BAND = (0.5, 8.0)
EVENT_CHANNEL_WIDTH = 0.1


def _bin_for_viewer(path: Path) -> HyperCube:
    summary = event_summary(path)
    span = max(summary.x_range[1] - summary.x_range[0], summary.y_range[1] - summary.y_range[0])
    binning = max(1, math.ceil(span / EVENT_IMAGE_PIXELS)) if math.isfinite(span) else 1
    try:
        return bin_events(path, band=EVENT_BAND, channel_width=EVENT_CHANNEL_WIDTH, binning=binning)
    except CubeError:
        if summary.energy_range is None:
            raise
        lo = math.floor(summary.energy_range[0] * 10) / 10
        hi = math.ceil(summary.energy_range[1] * 10) / 10 + EVENT_CHANNEL_WIDTH
        hi = lo + round((hi - lo) / EVENT_CHANNEL_WIDTH) * EVENT_CHANNEL_WIDTH
        return bin_events(path, band=(lo, hi), channel_width=EVENT_CHANNEL_WIDTH, binning=binning)


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
        cube = _bin_for_viewer(p)
    elif kind == "array":
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
    """Return a reader for ``path`` if it is a cube, event list, array or map file we handle, else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path) if isinstance(path, (list, tuple)) else []
    if not paths:
        return None
    for p in paths:
        try:
            file_kind(p)
        except (OSError, ValueError):
            return None

    def reader(arg: Any) -> list[LayerData]:
        items = [arg] if isinstance(arg, (str, os.PathLike)) else list(arg)
        out: list[LayerData] = []
        for item in items:
            out += read_layers(item)
        return out

    return reader
