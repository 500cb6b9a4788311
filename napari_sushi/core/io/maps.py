"""Parameter maps in and out: a set of 2-D maps (and optionally cubes) as multi-extension FITS.

Each map is an IMAGE extension named by ``EXTNAME`` with the celestial WCS and ``BUNIT``; the
primary HDU carries provenance keywords (``HIERARCH`` for long keys) and ``SUSHITYP = 'MAPS'``,
and a ``PROVENANCE`` table keeps the complete provenance as JSON (nested values included).
Optional cubes (e.g. model and residual cubes) are 3-D extensions with an energy axis and a
shared ``EBOUNDS`` table.
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io.atomic import atomic_path
from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.fits_cube import (
    _check_map,
    celestial_wcs,
    ebounds_hdu,
    image_header,
    map_hdu,
    open_fits,
    read_ebounds,
)
from napari_sushi.core.io.keywords import add_keywords, is_structural, provenance_hdu, read_provenance_hdu

_RESERVED = {"PRIMARY", "EBOUNDS", "PROVENANCE"}


@dataclass
class MapSet:
    """Maps read back from a FITS file (see :func:`read_maps_fits`)."""

    maps: dict[str, np.ndarray]
    units: dict[str, str]
    header: fits.Header
    wcs: WCS | None
    cubes: dict[str, np.ndarray] = field(default_factory=dict)
    energy_edges: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, fits.Header] = field(default_factory=dict)  # per-extension headers (e.g. TRUTH)


@dataclass(frozen=True)
class FitExport:
    """What fit a maps file holds when :meth:`FitResult.to_fits` wrote it (see :func:`fit_export`)."""

    method: str  # "sushi" or "pixelfit"
    run: str | None  # the app's run label ("SUSHI#1 kmad=5") when the export recorded it
    n_iter: int
    stop_reason: str
    wall_time: float | None
    device: str
    gof_name: str
    provenance: dict[str, Any]  # the fit's own provenance (settings, models, boxes, ...)

    @property
    def binning(self) -> int:
        """The spatial binning the fit used (1 when not recorded)."""
        settings = self.provenance.get("settings") or {}
        try:
            return max(int(settings.get("binning") or 1), 1)
        except (TypeError, ValueError):
            return 1

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """Component -> model identity record (family, identity hash, response)."""
        models = self.provenance.get("models") or {}
        return {str(k): dict(v) for k, v in models.items() if isinstance(v, Mapping)}


def fit_export(ms: MapSet) -> FitExport | None:
    """The fit behind a map set written by ``FitResult.to_fits`` (primary ``METHOD`` and ``NITER``), else
    None: plain maps (simulator truth, one saved layer) are not fit runs."""
    h = ms.header
    if h.get("SUSHITYP") != "MAPS" or "METHOD" not in h or "NITER" not in h:
        return None
    nested = ms.provenance.get("provenance")
    inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    run = inner.get("run", ms.provenance.get("run"))
    wall = h.get("WALLTIME")
    return FitExport(
        method=str(h["METHOD"]),
        run=None if run in (None, "") else str(run),
        n_iter=int(h["NITER"]),
        stop_reason=str(h.get("STOPREAS", "")),
        wall_time=None if wall is None else float(wall),
        device=str(h.get("DEVICE", "")),
        gof_name=str(h.get("GOFNAME", "")),
        provenance=dict(inner),
    )


def _creator() -> str:
    from napari_sushi import __version__

    return f"napari-sushi {__version__}"


def write_maps_fits(
    path: str | os.PathLike,
    maps: Mapping[str, np.ndarray],
    wcs: WCS | None = None,
    units: Mapping[str, str] | None = None,
    header: Mapping[str, Any] | fits.Header | None = None,
    cubes: Mapping[str, np.ndarray] | None = None,
    energy_edges: np.ndarray | None = None,
    overwrite: bool = False,
    map_header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``maps`` (name -> 2-D array, all the same shape) to a multi-extension FITS file atomically.

    ``units`` gives each map's BUNIT; ``header`` is the provenance (a dict: scalars become keywords,
    everything is also stored as JSON in the ``PROVENANCE`` extension; or a FITS header);
    ``cubes`` (name -> (E, Y, X)) are stored with an energy axis from ``energy_edges`` (keV);
    ``map_header`` adds keywords to every map extension. Refuses to overwrite unless asked.
    """
    if not isinstance(maps, Mapping) or not maps:
        raise CubeError("write_maps_fits needs a non-empty dict of name -> 2-D map.")
    units = dict(units or {})
    first = np.asarray(next(iter(maps.values())))
    if first.ndim != 2:
        raise CubeError(f"maps must be 2-D (y, x); {next(iter(maps))!r} has shape {first.shape}.")
    shape = first.shape
    if wcs is not None and (not isinstance(wcs, WCS) or wcs.naxis != 2):
        raise CubeError("wcs must be a 2-D celestial astropy WCS (or None).")
    primary = fits.PrimaryHDU()
    ph = primary.header
    ph["SUSHITYP"] = ("MAPS", "napari-sushi product type")
    ph["CREATOR"] = (_creator(), "software that wrote this file")
    ph["DATE"] = (_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "file creation time (UTC)")
    hdus: list[Any] = [primary]
    if isinstance(header, fits.Header):
        add_keywords(ph, header)
    elif header:
        skipped = add_keywords(ph, header)
        if skipped:
            ph["COMMENT"] = "Some provenance entries are only in the PROVENANCE extension (JSON): " + ", ".join(
                skipped[:20]
            )
    seen = set(_RESERVED)
    for name, array in maps.items():
        if str(name).upper() in seen:
            raise CubeError(f"map name {name!r} is used twice or is reserved (names are case-insensitive in FITS).")
        seen.add(str(name).upper())
        hdus.append(map_hdu(name, _check_map(name, array, shape), wcs, units.get(name), map_header))
    if cubes:
        edges = None if energy_edges is None else np.asarray(energy_edges, dtype=float)
        for name, cube in cubes.items():
            c = np.asarray(cube)
            if c.ndim != 3 or c.shape[1:] != shape:
                raise CubeError(f"cube {name!r} must have shape (E, {shape[0]}, {shape[1]}); got {c.shape}.")
            if edges is not None and edges.size != c.shape[0] + 1:
                raise CubeError(f"energy_edges has {edges.size} values; cube {name!r} needs {c.shape[0] + 1}.")
            if str(name).upper() in seen:
                raise CubeError(f"cube name {name!r} is used twice or is reserved.")
            seen.add(str(name).upper())
            hdu = fits.ImageHDU(data=c, header=image_header(wcs, edges), name=name)
            hdu.header["EXTNAME"] = name
            if units.get(name):
                hdu.header["BUNIT"] = units[name]
            hdus.append(hdu)
        if edges is not None:
            hdus.append(ebounds_hdu(edges))
    if header and not isinstance(header, fits.Header):
        hdus.append(provenance_hdu(header))
    out = Path(path)
    with atomic_path(out, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long comments are shortened
        fits.HDUList(hdus).writeto(tmp, output_verify="exception")
    return out


def read_maps_fits(path: str | os.PathLike) -> MapSet:
    """Read every named 2-D IMAGE extension (and 3-D extension cubes) of a FITS file.

    Works on files from :func:`write_maps_fits` and on the map extensions of a cube file written by
    :func:`~napari_sushi.core.io.fits_cube.write_cube_fits`. Raises :class:`FileFormatError` when the
    file holds no 2-D map.
    """
    p = Path(path)
    maps: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    headers: dict[str, fits.Header] = {}
    cubes: dict[str, np.ndarray] = {}
    wcs = None
    provenance: dict[str, Any] = {}
    with open_fits(p) as hdul:
        primary = hdul[0].header.copy()
        for i, hdu in enumerate(hdul):
            if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == "PROVENANCE":
                try:
                    provenance = read_provenance_hdu(hdu)
                except (ValueError, KeyError) as exc:
                    raise FileFormatError(f"{p}: the PROVENANCE extension is not valid JSON ({exc}).") from exc
                continue
            if i == 0 or not isinstance(hdu, (fits.ImageHDU, fits.CompImageHDU)) or hdu.data is None:
                continue
            name = str(hdu.header.get("EXTNAME", f"HDU{i}"))
            data = np.asarray(hdu.data)
            data = data.astype(data.dtype.newbyteorder("=")) if data.dtype.byteorder not in ("=", "|") else data.copy()
            if data.ndim == 2:
                maps[name] = data
                units[name] = str(hdu.header.get("BUNIT", ""))
                headers[name] = hdu.header.copy()
                if wcs is None:
                    wcs = celestial_wcs(hdu.header)
            elif data.ndim == 3:
                cubes[name] = data
                headers[name] = hdu.header.copy()
                units[name] = str(hdu.header.get("BUNIT", ""))
        ebounds = read_ebounds(hdul) if cubes else None
    if not maps:
        raise FileFormatError(f"{p} holds no 2-D map extensions; write maps with write_maps_fits.")
    if not provenance:
        provenance = {c.keyword: c.value for c in primary.cards if c.keyword and not is_structural(c.keyword)}
    return MapSet(
        maps=maps,
        units=units,
        header=primary,
        wcs=wcs,
        cubes=cubes,
        energy_edges=None if ebounds is None else ebounds[0],
        provenance=provenance,
        headers=headers,
    )
