"""Conversions between core objects (HyperCube, map sets) and napari layer data/metadata.

Layer metadata keys used across the plugin: ``energy_edges`` (keV, E + 1), ``energy_axis`` (how the
slider maps to energy), ``wcs`` (astropy WCS or None), ``wcs_header`` (its FITS header text),
``exposure`` (s), ``channels``, ``header`` (source FITS header), ``unit`` (maps), ``provenance``,
``truth`` (maps), ``source`` (file path), ``response`` (``{"rmf", "arf", "how"}`` path strings of the
instrument response, or None), ``events`` (for a cube binned from an event list: ``{"path", "band",
"native", "channel_width", "group", "binning", "cutout"}``, so the app can re-bin it with other options).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io.fits_cube import is_uniform
from napari_sushi.core.io.images import FitsImage
from napari_sushi.core.io.maps import MapSet
from napari_sushi.core.io.response_files import ResponseFiles

CUBE_AXIS_LABELS = ("energy", "y", "x")


def energy_axis_geometry(edges: np.ndarray) -> tuple[float, float, str, str]:
    """(scale, translate, unit, description) of the energy axis of a cube layer."""
    edges = np.asarray(edges, dtype=float)
    if is_uniform(edges):
        width = float(np.mean(np.diff(edges)))
        return width, float(edges[0] + 0.5 * width), "keV", "keV (bin centres; uniform bins)"
    return 1.0, 0.0, "dimensionless", "bin index: non-uniform bins, see metadata['energy_edges'] for keV"


def wcs_from_meta(value: Any) -> WCS | None:
    """Accept a WCS, a FITS header, or header text, and return a 2-D celestial WCS (or None)."""
    if value is None or value == "":
        return None
    if isinstance(value, WCS):
        return value
    header = value if isinstance(value, fits.Header) else fits.Header.fromstring(str(value), sep="\n")
    w = WCS(header, naxis=2)
    return w if w.has_celestial else None


def cube_layer(cube: HyperCube, source: str | None = None) -> tuple[np.ndarray, dict[str, Any], str]:
    """The napari image layer data tuple of a cube (energy slider in keV when bins are uniform)."""
    scale_e, translate_e, unit_e, description = energy_axis_geometry(cube.energy_edges)
    meta = {
        "kind": "cube",
        "energy_edges": cube.energy_edges.copy(),
        "energy_axis": description,
        "wcs": cube.wcs,
        "wcs_header": None if cube.wcs is None else cube.wcs.to_header_string(relax=True),
        "exposure": cube.exposure,
        "channels": None if cube.channels is None else cube.channels.copy(),
        "header": cube.header,
        "name": cube.name,
        "source": source,
        "response": None if cube.response is None else cube.response.as_meta(),
    }
    kwargs = {
        "name": cube.name,
        "scale": (scale_e, 1.0, 1.0),
        "translate": (translate_e, 0.0, 0.0),
        "axis_labels": CUBE_AXIS_LABELS,
        "units": (unit_e, "pixel", "pixel"),
        "colormap": "magma",
        "contrast_limits": cube_contrast(cube.counts),
        "gamma": CUBE_GAMMA,
        "metadata": meta,
    }
    return cube.counts, kwargs, "image"


CUBE_GAMMA = 0.6  # counts are sparse per channel: a gamma below 1 shows faint structure in one slice


def cube_contrast(counts: np.ndarray) -> tuple[float, float]:
    """A display range for one energy slice of a counts cube: 0 to the 99.9th percentile of the
    non-empty bins (at least 1), so a single slice is not almost black under the brightest pixel."""
    c = np.asarray(counts)
    sample = c.ravel()[:: max(1, c.size // 2_000_000)]  # enough for a percentile, cheap on big cubes
    nz = sample[sample > 0]
    hi = float(np.percentile(nz, 99.9)) if nz.size else 1.0
    return (0.0, max(hi, 1.0))


def map_layer(ms: MapSet, name: str) -> tuple[np.ndarray, dict[str, Any], str]:
    """One map of a map set as a 2-D image layer (hidden when its header says ``TRUTH = T``)."""
    header = ms.headers.get(name, fits.Header())
    truth = bool(header.get("TRUTH", False))
    unit = ms.units.get(name, "")
    meta = {
        "kind": "map",
        "unit": unit,
        "truth": truth,
        "wcs": ms.wcs,
        "wcs_header": None if ms.wcs is None else ms.wcs.to_header_string(relax=True),
        "header": header,
        "provenance": ms.provenance,
    }
    kwargs = {
        "name": f"{name} (truth)" if truth and "truth" not in name.lower() else name,
        "scale": (1.0, 1.0),
        "translate": (0.0, 0.0),
        "axis_labels": ("y", "x"),
        "units": ("pixel", "pixel"),
        "visible": not truth,
        "metadata": meta,
    }
    kwargs.update(map_style(name, unit, ms.maps[name]))
    return ms.maps[name], kwargs, "image"


def map_style(name: str, unit: str, data: np.ndarray) -> dict[str, Any]:
    """Colormap and range of a map by what it holds, the same convention as the fit's result layers
    (magma for keV, diverging and symmetric for velocities, inferno for amplitudes), so a truth map and
    the fitted map of the same quantity look alike."""
    from napari_sushi._napari.result_layers import colormap_for, contrast_for

    key = name.replace("(truth)", "").strip()
    kind = "amplitude" if key.endswith("amplitude") else "sigma" if key.endswith(("sigma", "σ")) else "parameter"
    return {"colormap": colormap_for(key, unit, kind), "contrast_limits": contrast_for(data, key, unit, kind)}


def image_layer(img: FitsImage, source: str | None = None) -> tuple[np.ndarray, dict[str, Any], str]:
    """A plain FITS image as an image layer: pixels in arcsec when its WCS is celestial (so two images
    of the same sky line up), else in pixels; no energy axis (it cannot be fitted)."""
    nd = img.data.ndim
    lead = (1.0,) * (nd - 2)
    if img.pixel_scale_arcsec is not None:
        scale, units = (*lead, *img.pixel_scale_arcsec), (*(("pixel",) * (nd - 2)), "arcsec", "arcsec")
    else:
        scale, units = (1.0,) * nd, ("pixel",) * nd
    meta = {
        "kind": "image",
        "wcs": img.wcs,
        "wcs_header": None if img.wcs is None else img.wcs.to_header_string(relax=True),
        "header": img.header,
        "unit": str(img.header.get("BUNIT", "")),
        "source": source,
    }
    kwargs = {"name": img.name, "scale": scale, "translate": (0.0,) * nd, "units": units, "metadata": meta}
    return img.data, kwargs, "image"


def cube_from_layer(data: Any, attributes: dict[str, Any]) -> HyperCube:
    """Rebuild a :class:`HyperCube` from a 3-D image layer's data and state/attributes.

    Energy edges come from ``metadata['energy_edges']``; failing that, from the energy axis scale and
    translate when its unit is keV. Raises :class:`CubeError` when the layer has no energy axis.
    """
    arr = np.asarray(data[0] if isinstance(data, list) else data)
    meta = dict(attributes.get("metadata") or {})
    edges = meta.get("energy_edges")
    if edges is None:
        units = attributes.get("units") or ()
        unit0 = str(units[0]) if len(units) else ""
        scale = attributes.get("scale")
        translate = attributes.get("translate")
        if arr.ndim == 3 and unit0 in ("keV", "kiloelectron_volt") and scale is not None and translate is not None:
            edges = float(translate[0]) - 0.5 * float(scale[0]) + float(scale[0]) * np.arange(arr.shape[0] + 1)
        else:
            raise CubeError(
                "this layer has no energy axis (no metadata['energy_edges'] and no keV energy scale); "
                "only cubes opened or made by napari-sushi can be saved as cubes."
            )
    return HyperCube(
        arr,
        np.asarray(edges, dtype=float),
        wcs=wcs_from_meta(meta.get("wcs") if meta.get("wcs") is not None else meta.get("wcs_header")),
        exposure=meta.get("exposure"),
        header=meta.get("header") if isinstance(meta.get("header"), fits.Header) else fits.Header(),
        channels=meta.get("channels"),
        name=str(attributes.get("name") or meta.get("name") or "cube"),
        response=ResponseFiles.from_meta(meta.get("response")),
    )
