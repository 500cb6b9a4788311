"""FITS image cubes in and out: (energy, y, x) counts with a spectral and a celestial WCS.

Reading accepts a 3-D primary or IMAGE extension whose energy axis is given by the WCS (``CTYPE``
``ENER...`` or ``CUNIT`` eV/keV) or by channels (``CTYPE`` CHANNEL/PI/PHA) with an ``EBOUNDS``
extension; the other two axes give the celestial WCS when they carry one. Writing puts the cube in
the primary HDU with both WCSs, an OGIP ``EBOUNDS`` table with the exact bin edges (and channel
numbers), and optional 2-D maps as IMAGE extensions (the simulator stores its truth maps this way).
The cube's instrument response travels as the OGIP ``RESPFILE``/``ANCRFILE`` keywords of the primary
header (paths relative to the file's folder when the response lies there or below, absolute otherwise).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io.atomic import atomic_path
from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.fits_file import column_names, open_fits
from napari_sushi.core.io.keywords import add_keywords, copy_provenance
from napari_sushi.core.io.response_files import response_from_header, response_keywords

_ENERGY_UNITS = {"ev": 1e-3, "kev": 1.0, "mev": 1e3}
_CHANNEL_TYPES = ("CHANNEL", "CHAN", "PI", "PHA", "PHA_CHAN", "PI_CHAN")


# ------------------------------------------------------------------------------------ helpers
def celestial_wcs(header: fits.Header, axes: tuple[int, int] | None = None) -> WCS | None:
    """The celestial WCS of two image axes (1-based FITS axis numbers, x then y), or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            full = WCS(header)
        except Exception:  # malformed WCS keywords: no WCS rather than no cube
            return None
        w = full.sub(list(axes)) if axes is not None else full
    if w.naxis != 2 or not w.has_celestial:
        return None
    return w


def _axis_scale(header: fits.Header, i: int) -> float:
    """The pixel-to-world increment of axis ``i`` (CDi_i, or CDELTi x PCi_i)."""
    if f"CD{i}_{i}" in header:
        return float(header[f"CD{i}_{i}"])
    return float(header.get(f"CDELT{i}", 1.0)) * float(header.get(f"PC{i}_{i}", 1.0))


def _axis_edges(header: fits.Header, i: int, n: int) -> np.ndarray:
    """World values at the n+1 pixel edges of linear (or ``-LOG``) axis ``i`` (FITS 1-based)."""
    crval = float(header.get(f"CRVAL{i}", 0.0))
    crpix = float(header.get(f"CRPIX{i}", 0.0))
    delta = _axis_scale(header, i)
    p = np.arange(n + 1, dtype=float) + 0.5  # FITS pixel p covers p-0.5 .. p+0.5
    ctype = str(header.get(f"CTYPE{i}", "")).upper()
    if ctype.endswith("-LOG"):
        return crval * np.exp(delta * (p - crpix) / crval)
    if "-" in ctype[4:] and not ctype.endswith("-LIN"):
        raise FileFormatError(
            f"spectral axis {i} has the non-linear type {ctype!r}, which is not supported; "
            "resample the cube to a linear energy axis or add an EBOUNDS extension."
        )
    return crval + delta * (p - crpix)


def _find_energy_axis(header: fits.Header, naxis: int) -> tuple[int, str] | None:
    """(FITS axis number, 'energy' | 'channel') of the spectral axis, or None."""
    for i in range(1, naxis + 1):
        ctype = str(header.get(f"CTYPE{i}", "")).strip().upper()
        cunit = str(header.get(f"CUNIT{i}", "")).strip().lower()
        if ctype.startswith("ENER") or cunit in _ENERGY_UNITS:
            return i, "energy"
    for i in range(1, naxis + 1):
        ctype = str(header.get(f"CTYPE{i}", "")).strip().upper().split("-")[0]
        cunit = str(header.get(f"CUNIT{i}", "")).strip().lower()
        if ctype in _CHANNEL_TYPES or cunit in ("chan", "channel"):
            return i, "channel"
    return None


def read_ebounds(hdul: fits.HDUList) -> tuple[np.ndarray, np.ndarray] | None:
    """(edges keV (n+1), channels (n)) from an OGIP ``EBOUNDS`` extension, or None when absent."""
    if "EBOUNDS" not in hdul:
        return None
    hdu = hdul["EBOUNDS"]
    names = [c.upper() for c in column_names(hdu)]
    if not {"E_MIN", "E_MAX"} <= set(names):
        raise FileFormatError("the EBOUNDS extension lacks the E_MIN/E_MAX columns.")
    data = hdu.data
    emin = np.asarray(data["E_MIN"], dtype=float)
    emax = np.asarray(data["E_MAX"], dtype=float)
    unit = (hdu.columns["E_MIN"].unit or "keV").strip().lower()
    scale = _ENERGY_UNITS.get(unit)
    if scale is None:
        raise FileFormatError(f"EBOUNDS energies are in {unit!r}; expected keV or eV.")
    emin, emax = emin * scale, emax * scale
    if emin.size == 0:
        raise FileFormatError("the EBOUNDS extension is empty.")
    if not np.allclose(emax[:-1], emin[1:], rtol=1e-5, atol=1e-7):
        raise FileFormatError("the EBOUNDS bins are not contiguous (gaps or overlaps between E_MAX and E_MIN).")
    channels = np.asarray(data["CHANNEL"], dtype=np.int64) if "CHANNEL" in names else np.arange(1, emin.size + 1)
    return np.append(emin, emax[-1]), channels


def instrument_channels(hdul: fits.HDUList) -> bool:
    """False when the EBOUNDS CHANNEL column only numbers the bins (files written without channels)."""
    return "EBOUNDS" in hdul and bool(hdul["EBOUNDS"].header.get("INSTCHAN", True))


def _exposure(*headers: fits.Header) -> float | None:
    for h in headers:
        for key in ("EXPOSURE", "LIVETIME", "ONTIME"):
            try:
                v = float(h[key])
            except (KeyError, TypeError, ValueError):
                continue
            if np.isfinite(v) and v > 0:
                return v
    return None


def _find_cube_hdu(hdul: fits.HDUList, path: Path) -> int:
    shapes = []
    for i, hdu in enumerate(hdul):
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            naxis = int(hdu.header.get("NAXIS", 0) or 0)
            if isinstance(hdu, fits.CompImageHDU):
                naxis = int(hdu.header.get("ZNAXIS", naxis))
            if naxis == 3:
                return i
            if naxis:
                shapes.append(f"HDU {i} is {naxis}-D")
    if any(isinstance(h, fits.BinTableHDU) and h.name == "EVENTS" for h in hdul):
        raise FileFormatError(
            f"{path} is an event list, not an image cube: bin it with bin_events / `napari-sushi bin`."
        )
    detail = "; ".join(shapes) if shapes else "it holds no image data"
    raise FileFormatError(
        f"{path} holds no 3-D image cube ({detail}); a cube needs an energy axis plus two image axes. "
        "A 2-D image has no energy axis."
    )


# ------------------------------------------------------------------------------------ reading
def read_fits_cube(path: str | os.PathLike, hdu: int | str | None = None) -> HyperCube:
    """Read a FITS image cube into a :class:`HyperCube` (energy first, edges in keV).

    ``hdu`` picks the HDU; by default the first 3-D primary or IMAGE HDU. Raises
    :class:`FileFormatError` when there is no 3-D image or no energy axis can be identified.
    """
    p = Path(path)
    with open_fits(p) as hdul:
        index = _find_cube_hdu(hdul, p) if hdu is None else hdu
        try:
            image = hdul[index]
        except (KeyError, IndexError) as exc:
            raise FileFormatError(f"{p} has no HDU {index!r}.") from exc
        header = image.header.copy()
        naxis = int(
            header.get("ZNAXIS", header.get("NAXIS", 0))
            if isinstance(image, fits.CompImageHDU)
            else header.get("NAXIS", 0)
        )
        if naxis != 3:
            raise FileFormatError(f"HDU {index!r} of {p} is {naxis}-D; a cube needs 3 axes (energy, y, x).")
        sizes = (
            {i: int(header[f"NAXIS{i}"]) for i in (1, 2, 3)}
            if "NAXIS3" in header
            else {i: int(header[f"ZNAXIS{i}"]) for i in (1, 2, 3)}
        )
        ebounds = read_ebounds(hdul)
        found = _find_energy_axis(header, 3)
        if found is None and ebounds is not None:
            matching = [i for i in (1, 2, 3) if sizes[i] == ebounds[1].size]
            if len(matching) == 1:
                found = (matching[0], "channel")
        if found is None:
            raise FileFormatError(
                f"{p}: no energy axis found in HDU {index!r} (no CTYPEn = 'ENER', no CUNITn in eV/keV, "
                "no channel axis with an EBOUNDS extension). Add the spectral WCS keywords, e.g. "
                "CTYPE3 = 'ENER', CUNIT3 = 'keV', CRVAL3/CRPIX3/CDELT3."
            )
        axis, kind = found
        n_e = sizes[axis]
        channels = None
        if ebounds is not None and ebounds[1].size == n_e:
            edges, channels = ebounds
            if not instrument_channels(hdul):
                channels = None
        elif kind == "channel":
            n_rows = None if ebounds is None else ebounds[1].size
            raise FileFormatError(
                f"{p}: axis {axis} counts channels, but "
                + (
                    "there is no EBOUNDS extension"
                    if ebounds is None
                    else f"EBOUNDS has {n_rows} rows for {n_e} channels"
                )
                + " to give their energies. Add an EBOUNDS table (CHANNEL, E_MIN, E_MAX in keV)."
            )
        else:
            cunit = str(header.get(f"CUNIT{axis}", "")).strip().lower()
            if cunit not in _ENERGY_UNITS:
                raise FileFormatError(
                    f"{p}: the energy axis {axis} has unit {cunit or 'none'!r}; set CUNIT{axis} to 'keV' or 'eV'."
                )
            edges = _axis_edges(header, axis, n_e) * _ENERGY_UNITS[cunit]
            if edges[0] > edges[-1]:
                raise FileFormatError(f"{p}: the energy axis decreases; flip it so energy increases with the index.")
        data = np.asarray(image.data)
        if data.dtype.byteorder not in ("=", "|"):
            data = data.astype(data.dtype.newbyteorder("="))
        data = np.moveaxis(data, 3 - axis, 0).copy()
        x_axis, y_axis = (i for i in (1, 2, 3) if i != axis)
        wcs = celestial_wcs(header, (x_axis, y_axis))
        exposure = _exposure(header, hdul[0].header)
        keyed = header if "RESPFILE" in header else hdul[0].header
        response = response_from_header(keyed, p)
    name = p.name.split(".")[0]
    try:
        return HyperCube(
            data, edges, wcs=wcs, exposure=exposure, header=header, channels=channels, name=name, response=response
        )
    except CubeError as exc:
        raise CubeError(f"{p}: {exc}") from exc


# ------------------------------------------------------------------------------------ writing
def is_uniform(edges: np.ndarray) -> bool:
    """True when all energy bins have the same width (so a linear WCS axis describes them)."""
    w = np.diff(np.asarray(edges, dtype=float))
    return bool(np.allclose(w, w[0], rtol=1e-6, atol=1e-9))


def image_header(wcs: WCS | None, energy_edges: np.ndarray | None = None) -> fits.Header:
    """WCS keywords of an image: celestial on axes 1-2, and an energy axis 3 when edges are given.

    Uniform bins get ``CTYPE3 = 'ENER'`` in keV; non-uniform bins get ``CTYPE3 = 'CHANNEL'`` counting
    the rows of the EBOUNDS extension written beside them (which holds the exact edges).
    """
    h = fits.Header()
    if wcs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h.update(wcs.to_header(relax=True))
        h.remove("WCSAXES", ignore_missing=True)
    if energy_edges is not None:
        edges = np.asarray(energy_edges, dtype=float)
        if is_uniform(edges):
            width = float(np.mean(np.diff(edges)))
            h["CTYPE3"] = ("ENER", "photon energy")
            h["CUNIT3"] = ("keV", "")
            h["CRPIX3"] = 1.0
            h["CRVAL3"] = (float(edges[0] + 0.5 * width), "centre of the first energy bin")
            h["CDELT3"] = (width, "energy bin width")
        else:
            h["CTYPE3"] = ("CHANNEL", "energy bin index: edges in EBOUNDS")
            h["CRPIX3"] = 1.0
            h["CRVAL3"] = 1.0
            h["CDELT3"] = 1.0
    return h


def ebounds_hdu(energy_edges: np.ndarray, channels: np.ndarray | None = None) -> fits.BinTableHDU:
    """An OGIP ``EBOUNDS`` table (CHANNEL, E_MIN, E_MAX in keV) for the given bin edges."""
    edges = np.asarray(energy_edges, dtype=float)
    n = edges.size - 1
    ch = np.arange(1, n + 1) if channels is None else np.asarray(channels, dtype=np.int64)
    hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="CHANNEL", format="J", array=ch.astype(np.int32)),
            fits.Column(name="E_MIN", format="D", unit="keV", array=edges[:-1]),
            fits.Column(name="E_MAX", format="D", unit="keV", array=edges[1:]),
        ],
        name="EBOUNDS",
    )
    hdu.header["HDUCLASS"] = "OGIP"
    hdu.header["HDUCLAS1"] = "RESPONSE"
    hdu.header["HDUCLAS2"] = "EBOUNDS"
    hdu.header["DETCHANS"] = n
    hdu.header["INSTCHAN"] = (channels is not None, "CHANNEL holds instrument channels (else bin numbers)")
    return hdu


def _check_map(name: str, array: Any, shape: tuple[int, int]) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 2:
        raise CubeError(f"map {name!r} must be 2-D (y, x); got shape {a.shape}.")
    if a.shape != shape:
        raise CubeError(f"map {name!r} has shape {a.shape}; it must match the image plane {shape}.")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise CubeError(f"map {name!r} must be numeric; got dtype {a.dtype}.")
    return a.astype(np.uint8) if a.dtype == bool else a


def map_hdu(
    name: str, array: np.ndarray, wcs: WCS | None, unit: str | None, extra: Mapping[str, Any] | None = None
) -> fits.ImageHDU:
    """One 2-D map as an IMAGE extension named ``name`` with celestial WCS and ``BUNIT``."""
    if not isinstance(name, str) or not name.strip() or len(name) > 68 or not name.isascii():
        raise CubeError(f"map name {name!r} is not usable as a FITS EXTNAME (ASCII text, 1-68 characters).")
    hdu = fits.ImageHDU(data=array, header=image_header(wcs), name=name)
    hdu.header["EXTNAME"] = name  # keep the case the caller chose
    if unit:
        hdu.header["BUNIT"] = (str(unit), "physical unit of the map")
    add_keywords(hdu.header, extra)
    return hdu


def write_cube_fits(
    cube: HyperCube,
    path: str | os.PathLike,
    maps: Mapping[str, np.ndarray] | None = None,
    units: Mapping[str, str] | None = None,
    header: Mapping[str, Any] | fits.Header | None = None,
    overwrite: bool = False,
    map_header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``cube`` to FITS atomically and return the path.

    The primary HDU holds the counts (energy, y, x) with the celestial WCS on axes 1-2 and the energy
    axis 3; ``EBOUNDS`` holds the exact edges and channel numbers; each entry of ``maps`` becomes an
    IMAGE extension (EXTNAME = key, BUNIT from ``units``, keywords from ``map_header`` such as
    ``{"TRUTH": True}`` for simulated ground truth). ``header`` adds provenance keywords.
    Refuses to replace an existing file unless ``overwrite`` is true.
    """
    if not isinstance(cube, HyperCube):
        raise CubeError(f"write_cube_fits needs a HyperCube; got {type(cube).__name__}.")
    units = dict(units or {})
    counts = cube.counts
    if counts.dtype == bool:
        counts = counts.astype(np.uint8)
    primary = fits.PrimaryHDU(data=counts, header=image_header(cube.wcs, cube.energy_edges))
    h = primary.header
    h["BUNIT"] = ("count", "counts per bin")
    if cube.exposure is not None:
        h["EXPOSURE"] = (float(cube.exposure), "[s] exposure time")
    h["CUBENAME"] = (str(cube.name)[:60], "napari-sushi cube name")
    h["SUSHITYP"] = ("CUBE", "napari-sushi product type")
    copy_provenance(cube.header, h)
    add_keywords(h, header)
    out = Path(path)
    comments = {"RESPFILE": "redistribution matrix (RMF) of these counts", "ANCRFILE": "ancillary response (ARF)"}
    for key, value in response_keywords(cube.response, out).items():
        h[key] = (value, comments[key])
    hdus: list[Any] = [primary, ebounds_hdu(cube.energy_edges, cube.channels)]
    seen = {"PRIMARY", "EBOUNDS"}
    for name, array in (maps or {}).items():
        if str(name).upper() in seen:
            raise CubeError(f"map name {name!r} is used twice or is reserved (names are case-insensitive in FITS).")
        seen.add(str(name).upper())
        hdus.append(map_hdu(name, _check_map(name, array, cube.shape[1:]), cube.wcs, units.get(name), map_header))
    with atomic_path(out, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long comments are shortened
        fits.HDUList(hdus).writeto(tmp, output_verify="exception")
    return out
