"""X-ray event lists (Chandra/XMM ``EVENTS`` tables) binned into (energy, y, x) cubes.

Only the needed columns are read from a memory-mapped file, in chunks, and binned with
``np.bincount`` on a flat index, so the 258k-event MSH 15-52 list bins in well under a second.
Energies come from the ``energy`` column (eV unless ``TUNIT`` says keV) or from ``pi`` through a
channel-to-energy mapping: an ``EBOUNDS`` table in the file or in a given RMF, or, for Chandra ACIS
only, the documented 14.6 eV per PI channel (channel i spans (i-1)*14.6 .. i*14.6 eV). The response
(RMF, ARF) is found as X-ray tools find it (:func:`~napari_sushi.core.io.response_files.find_response`):
its EBOUNDS then map the channels, and the cube records it (``HyperCube.response``).
The image keeps a celestial WCS built from the ``TCTYP/TCRVL/TCRPX/TCDLT`` keywords of the sky
``x`` and ``y`` columns, shifted and scaled for the cut-out and the spatial binning.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.band import band_slice
from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.fits_cube import _exposure, read_ebounds
from napari_sushi.core.io.fits_file import column_names, open_fits
from napari_sushi.core.io.keywords import copy_provenance
from napari_sushi.core.io.response_files import ResponseFiles, find_response

ACIS_PI_KEV = 0.0146  # Chandra ACIS: PI channel width (CIAO documentation), channel i = [(i-1), i] * 14.6 eV
CHUNK = 2_000_000  # events per chunk while binning
MAX_BINS = 300_000_000  # refuse cubes larger than this (about 1.2 GB as int32)
DEFAULT_BAND = (0.5, 8.0)  # keV: the band of an event list opened without options
DEFAULT_IMAGE_PIXELS = 512  # ... and the largest image side
DEFAULT_MAX_BINS = 64_000_000  # ... and the largest cube (256 MB as int32): coarser pixels beyond it
FALLBACK_CHANNEL_WIDTH = 0.1  # keV, when the list has no PI channels with a known energy mapping

ProgressCallback = Callable[[int, int], None]


@dataclass
class EventTable:
    """Where the needed columns of an event list are, and how to turn them into energies."""

    path: Path
    hdu_index: int
    header: fits.Header
    primary_header: fits.Header
    n_events: int
    x_col: str
    y_col: str
    energy_col: str | None  # the energy column, if any
    energy_scale: float  # multiply the energy column by this to get keV
    pi_col: str | None
    channel_edges: np.ndarray | None = None  # keV edges of channels ``first_channel`` + 0, 1, ...
    first_channel: int = 1
    energy_source: str = ""
    wcs: WCS | None = None  # sky-pixel WCS (FITS 1-based pixel = column value)
    columns: list[str] = field(default_factory=list)


def _column(names: list[str], wanted: str) -> str | None:
    for n in names:
        if n.lower() == wanted:
            return n
    return None


def _sky_wcs(header: fits.Header, ix: int, iy: int) -> WCS | None:
    """Celestial WCS whose pixel coordinates are the sky x/y column values (TC* keywords)."""
    keys = [
        f"TCTYP{ix}",
        f"TCTYP{iy}",
        f"TCRVL{ix}",
        f"TCRVL{iy}",
        f"TCRPX{ix}",
        f"TCRPX{iy}",
        f"TCDLT{ix}",
        f"TCDLT{iy}",
    ]
    if not all(k in header for k in keys):
        return None
    w = WCS(naxis=2)
    w.wcs.ctype = [str(header[f"TCTYP{ix}"]), str(header[f"TCTYP{iy}"])]
    w.wcs.crval = [float(header[f"TCRVL{ix}"]), float(header[f"TCRVL{iy}"])]
    w.wcs.crpix = [float(header[f"TCRPX{ix}"]), float(header[f"TCRPX{iy}"])]
    w.wcs.cdelt = [float(header[f"TCDLT{ix}"]), float(header[f"TCDLT{iy}"])]
    w.wcs.cunit = [str(header.get(f"TCUNI{ix}", "deg")) or "deg", str(header.get(f"TCUNI{iy}", "deg")) or "deg"]
    radesys = header.get("RADESYS", header.get("RADECSYS"))
    if radesys:
        w.wcs.radesys = str(radesys).strip()
    if "EQUINOX" in header and str(radesys).strip().upper() in ("FK5", "FK4"):
        w.wcs.equinox = float(header["EQUINOX"])
    if "MJD-OBS" in header:
        w.wcs.mjdobs = float(header["MJD-OBS"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w.wcs.set()
        except Exception:
            return None
    return w if w.has_celestial else None


def open_event_table(path: str | os.PathLike, rmf: str | os.PathLike | None = None) -> EventTable:
    """Locate the events table and its columns, and decide how energies are obtained.

    Raises :class:`FileFormatError` naming the missing columns when the table lacks sky ``x``/``y``
    or both ``energy`` and ``pi``.
    """
    p = Path(path)
    with open_fits(p) as hdul:
        index = None
        for i, hdu in enumerate(hdul):
            if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == "EVENTS":
                index = i
                break
        if index is None:
            tables = [i for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU)]
            for i in tables:
                names = [n.lower() for n in column_names(hdul[i])]
                if "x" in names and "y" in names:
                    index = i
                    break
        if index is None:
            raise FileFormatError(f"{p} has no EVENTS table (a binary table with sky x and y columns).")
        hdu = hdul[index]
        header = hdu.header.copy()
        names = column_names(hdu)
        ebounds = read_ebounds(hdul)
        primary = hdul[0].header.copy()
    x_col, y_col = _column(names, "x"), _column(names, "y")
    energy_col, pi_col = _column(names, "energy"), _column(names, "pi")
    missing = [n for n, c in (("x", x_col), ("y", y_col)) if c is None]
    if energy_col is None and pi_col is None:
        missing.append("energy or pi")
    if missing:
        raise FileFormatError(
            f"the events table of {p} lacks the column(s) {', '.join(missing)} (it has: {', '.join(names)}). "
            "An event list needs sky x, y and either energy (eV) or pi."
        )
    assert x_col is not None and y_col is not None  # else listed in ``missing`` above
    table = EventTable(
        path=p,
        hdu_index=index,
        header=header,
        primary_header=primary,
        n_events=int(header.get("NAXIS2", 0)),
        x_col=x_col,
        y_col=y_col,
        energy_col=energy_col,
        energy_scale=1e-3,
        pi_col=pi_col,
        columns=names,
    )
    if energy_col is not None:
        unit = str(header.get(f"TUNIT{names.index(energy_col) + 1}", "eV")).strip().lower() or "ev"
        scales = {"ev": 1e-3, "kev": 1.0}
        if unit not in scales:
            raise FileFormatError(f"the energy column of {p} is in {unit!r}; expected eV or keV.")
        table.energy_scale = scales[unit]
        table.energy_source = f"energy column ({'eV' if unit == 'ev' else 'keV'})"
    if pi_col is not None:
        mapping = None
        if rmf is not None:
            with open_fits(rmf) as rh:
                mapping = read_ebounds(rh)
            if mapping is None:
                raise FileFormatError(f"{rmf} has no EBOUNDS extension to map PI channels to energies.")
            source = f"EBOUNDS of {Path(rmf).name}"
        elif ebounds is not None:
            mapping, source = ebounds, "EBOUNDS in the event file"
        elif str(header.get("TELESCOP", "")).strip().upper() == "CHANDRA" and str(
            header.get("INSTRUME", "")
        ).strip().upper().startswith("ACIS"):
            tlmax = int(header.get(f"TLMAX{names.index(pi_col) + 1}", 1024))
            ch = np.arange(1, tlmax + 1)
            mapping, source = (
                (np.append((ch - 1) * ACIS_PI_KEV, tlmax * ACIS_PI_KEV), ch),
                "Chandra ACIS PI, 14.6 eV/channel",
            )
        if mapping is not None:
            edges, channels = mapping
            if channels.size and not np.all(np.diff(channels) == 1):
                raise FileFormatError("the EBOUNDS channels are not consecutive; cannot map PI to energy.")
            table.channel_edges, table.first_channel = edges, int(channels[0])
            if energy_col is None:
                table.energy_source = f"pi column via {source}"
            table.energy_source += f"; channels via {source}" if energy_col is not None else ""
        elif energy_col is None:
            raise FileFormatError(
                f"{p} has a pi column but no energy column, and no channel-to-energy mapping is known "
                "(no EBOUNDS in the file; the 14.6 eV/channel rule is only documented for Chandra ACIS). "
                "Give the instrument RMF (rmf=... / --rmf) so its EBOUNDS maps channels to energies."
            )
    table.wcs = _sky_wcs(header, names.index(x_col) + 1, names.index(y_col) + 1)
    return table


def _read_xy(t: EventTable, hdu: fits.BinTableHDU, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    data = hdu.data
    x = np.asarray(data.field(t.x_col)[start:stop], dtype=np.float64)
    y = np.asarray(data.field(t.y_col)[start:stop], dtype=np.float64)
    return x, y


def _read_pi(t: EventTable, hdu: fits.BinTableHDU, start: int, stop: int) -> np.ndarray:
    return np.asarray(hdu.data.field(t.pi_col)[start:stop], dtype=np.int64)


def _read_energy(t: EventTable, hdu: fits.BinTableHDU, start: int, stop: int) -> np.ndarray:
    """Event energies in keV: the energy column, else PI channel centres."""
    if t.energy_col is not None:
        return np.asarray(hdu.data.field(t.energy_col)[start:stop], dtype=np.float64) * t.energy_scale
    return _pi_to_energy(t, _read_pi(t, hdu, start, stop))


def _pi_to_energy(table: EventTable, pi: np.ndarray) -> np.ndarray:
    """Channel centre energies (keV) of PI values; NaN outside the mapped channels."""
    edges = table.channel_edges
    assert edges is not None  # open_event_table refuses a pi column without a channel mapping
    idx = pi - table.first_channel
    ok = (idx >= 0) & (idx < edges.size - 1)
    out = np.full(pi.shape, np.nan)
    out[ok] = 0.5 * (edges[idx[ok]] + edges[idx[ok] + 1])
    return out


@dataclass
class EventSummary:
    """What an event list holds (for ``napari-sushi info`` and for choosing binning)."""

    path: Path
    n_events: int
    energy_range: tuple[float, float] | None  # keV
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    columns: list[str]
    energy_source: str
    exposure: float | None
    wcs: WCS | None
    header: fits.Header
    response: ResponseFiles | None = None
    channel_edges: np.ndarray | None = None  # keV edges of the pi channels, when a mapping is known

    @property
    def native_channels(self) -> bool:
        """Whether the list can be binned on native channels (a pi column with an energy mapping)."""
        return self.channel_edges is not None


def event_summary(
    path: str | os.PathLike, rmf: str | os.PathLike | None = None, arf: str | os.PathLike | None = None
) -> EventSummary:
    """Count the events and find their energy and sky x/y ranges (reads only those columns), and the
    response that goes with them (:func:`.find_response`)."""
    response = find_response(path, rmf=rmf, arf=arf)
    t = _open_with_response(path, response)
    lo = np.array([np.inf, np.inf, np.inf])
    hi = -lo
    with open_fits(t.path) as hdul:
        hdu = hdul[t.hdu_index]
        n = len(hdu.data) if hdu.data is not None else 0
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            x, y = _read_xy(t, hdu, start, stop)
            e = _read_energy(t, hdu, start, stop)
            for k, v in enumerate((x, y, e)):
                v = v[np.isfinite(v)]
                if v.size:
                    lo[k], hi[k] = min(lo[k], v.min()), max(hi[k], v.max())
    erange = (float(lo[2]), float(hi[2])) if n and np.isfinite(lo[2]) else None
    blank = [name for name, k in (("x", 0), ("y", 1)) if n and not np.isfinite(lo[k])]
    if blank:
        raise FileFormatError(
            f"{t.path}: the sky {' and '.join(blank)} column{'s hold' if len(blank) > 1 else ' holds'} no finite "
            "value (all NaN or inf), so no event has a position; the event list is damaged: reprocess or "
            "download it again."
        )
    return EventSummary(
        path=t.path,
        n_events=n,
        energy_range=erange,
        x_range=(float(lo[0]), float(hi[0])) if n else (math.nan, math.nan),
        y_range=(float(lo[1]), float(hi[1])) if n else (math.nan, math.nan),
        columns=t.columns,
        energy_source=t.energy_source,
        exposure=_exposure(t.header, t.primary_header),
        wcs=t.wcs,
        header=t.header,
        response=response,
        channel_edges=t.channel_edges if t.pi_col is not None else None,
    )


def default_event_options(
    path: str | os.PathLike,
    band: tuple[float, float] | None = None,
    channel_width: float | None = None,
    native: bool | None = None,
    group: int = 1,
    binning: int | None = None,
    cutout: tuple[float, float, float, float] | None = None,
    rmf: str | os.PathLike | None = None,
    arf: str | os.PathLike | None = None,
    summary: EventSummary | None = None,
) -> dict:
    """The :func:`bin_events` options for opening an event list, defaults filled in for what is not given.

    Band 0.5-8 keV; the instrument's native channels when a pi column with a channel mapping exists
    (else 0.1 keV channels, with a ``UserWarning`` saying why); a spatial binning that keeps the image
    within 512 pixels a side and the cube within 64 M bins. The readers (``read_cube``, the napari
    reader) use it, so an event list opens the same way everywhere.
    """
    if summary is None:
        with warnings.catch_warnings():  # bin_events reports the response warnings itself
            warnings.simplefilter("ignore", UserWarning)
            summary = event_summary(path, rmf=rmf, arf=arf)
    emin, emax = (float(v) for v in (band or DEFAULT_BAND))
    group = int(group)
    if native is None and channel_width is None:
        native = summary.native_channels
        if not native:
            channel_width = FALLBACK_CHANNEL_WIDTH
            warnings.warn(
                f"{Path(path).name}: binned on {FALLBACK_CHANNEL_WIDTH} keV channels, not native ones: "
                + (
                    "it has no pi column"
                    if "pi" not in [c.lower() for c in summary.columns]
                    else "no channel-to-energy mapping is known for its pi column (give the RMF: rmf=... / --rmf)"
                )
                + ".",
                UserWarning,
                stacklevel=2,
            )
    native = bool(native)
    if binning is None:
        if native:
            assert summary.channel_edges is not None  # native_channels
            sl = band_slice(summary.channel_edges, emin, emax)
            n_e = max(1, (sl.stop - sl.start) // max(group, 1))
        else:
            width = float(channel_width if channel_width is not None else FALLBACK_CHANNEL_WIDTH)
            n_e = max(1, int(round((emax - emin) / width))) if width > 0 else 1
        if cutout is not None and len(cutout) == 4:
            sx, sy = float(cutout[1]) - float(cutout[0]), float(cutout[3]) - float(cutout[2])
        else:
            sx = summary.x_range[1] - summary.x_range[0] + 1
            sy = summary.y_range[1] - summary.y_range[0] + 1
        binning = 1
        if math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0:
            binning = max(1, math.ceil(max(sx, sy) / DEFAULT_IMAGE_PIXELS))
            while n_e * (math.ceil(sx / binning) + 1) * (math.ceil(sy / binning) + 1) > DEFAULT_MAX_BINS:
                binning += 1
    opts: dict = {
        "band": (emin, emax),
        "group": group,
        "binning": int(binning),
        "cutout": cutout,
        "rmf": rmf,
        "arf": arf,
    }
    if native:
        opts["native"] = True
    else:
        opts["channel_width"] = channel_width
    return opts


def _field(lo: float, hi: float, binning: int, cutout: tuple[float, float] | None, axis: str) -> tuple[float, int]:
    """Origin (sky pixels, a pixel edge) and number of binned pixels covering the field."""
    if cutout is not None:
        a, b = float(cutout[0]), float(cutout[1])
        if not (np.isfinite(a) and np.isfinite(b)) or b <= a:
            raise CubeError(f"cut-out {axis} range {a}..{b} is empty: give {axis}0 < {axis}1 (sky pixels).")
        n = max(1, math.ceil((b - a) / binning - 1e-9))
        return a, n
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise CubeError(
            "no events with finite sky coordinates (the x/y columns are all NaN or inf); check the event list."
        )
    origin = math.floor(lo - 0.5) + 0.5  # sky pixel p covers p-0.5 .. p+0.5: start on a pixel edge
    n = int(math.floor((hi - origin) / binning)) + 1
    return origin, n


def bin_events(
    path: str | os.PathLike,
    band: tuple[float, float] = (0.5, 8.0),
    channel_width: float | None = None,
    native: bool = False,
    group: int = 1,
    binning: int = 1,
    cutout: tuple[float, float, float, float] | None = None,
    rmf: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    arf: str | os.PathLike | None = None,
) -> HyperCube:
    """Bin an event list into a :class:`HyperCube` of counts (energy, y, x).

    Parameters
    ----------
    band: (emin, emax) in keV; events with emin <= E < emax are kept (native channels: the channels
        lying entirely inside the band).
    channel_width: energy bin width in keV (the band must hold a whole number of bins). Give this or
        ``native=True``; with neither, 0.1 keV is used.
    native: bin on the instrument's PI channels, ``group`` consecutive channels per bin (the number of
        the first channel of each bin is kept in ``HyperCube.channels``).
    binning: spatial binning factor (sky pixels per image pixel, per axis).
    cutout: (x0, x1, y0, y1) in sky pixels; events with x0 <= x < x0 + nx*binning (same for y) are kept,
        nx = ceil((x1 - x0) / binning). Without it the field covers all events.
    rmf, arf: the response files (RMF, ARF). Without them the response is looked for in the event
        file's RESPFILE/ANCRFILE keywords and beside it (:func:`.find_response`); a known RMF's EBOUNDS
        map PI channels to energies (needed for ``pi``-only lists that are not Chandra ACIS), and the
        response is recorded in ``HyperCube.response``.
    progress: called as ``progress(events_done, events_total)`` after each chunk.
    """
    emin, emax = (float(v) for v in band)
    if not (np.isfinite(emin) and np.isfinite(emax)) or emin < 0 or emax <= emin:
        raise CubeError(f"energy band {emin}-{emax} keV is invalid: give 0 <= emin < emax (keV).")
    for what, v in (("spatial binning", binning), ("channel grouping", group)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer, float, np.floating)) or float(v) != int(float(v)):
            raise CubeError(f"{what} must be a whole number >= 1; got {v!r}.")
    binning, group = int(binning), int(group)
    if binning < 1:
        raise CubeError(f"spatial binning must be a whole number >= 1; got {binning}.")
    if group < 1:
        raise CubeError(f"channel grouping must be a whole number >= 1; got {group}.")
    if native and channel_width is not None:
        raise CubeError("give either a channel width or native channels, not both.")
    if cutout is not None and len(cutout) != 4:
        raise CubeError("cut-out must be four numbers: x0 x1 y0 y1 (sky pixels).")

    response = find_response(path, rmf=rmf, arf=arf)
    t = _open_with_response(path, response)
    channels = None
    if native:
        if t.pi_col is None or t.channel_edges is None:
            raise CubeError(
                f"{t.path}: native channels need a pi column with a channel-to-energy mapping "
                "(EBOUNDS in the file, --rmf, or Chandra ACIS); use a channel width instead."
            )
        ce = t.channel_edges
        inside = band_slice(ce, emin, emax)
        if inside.stop - inside.start < group:
            raise CubeError(
                f"no {'group of ' + str(group) + ' ' if group > 1 else ''}channel lies entirely in the band {emin}-{emax} keV."
            )
        n_e = (inside.stop - inside.start) // group
        first = inside.start
        edges = ce[first : first + n_e * group + 1 : group]
        channels = t.first_channel + first + group * np.arange(n_e)
        chan_lo = t.first_channel + first  # events with chan_lo <= pi < chan_lo + n_e*group are kept
    else:
        width = 0.1 if channel_width is None else float(channel_width)
        if not np.isfinite(width) or width <= 0:
            raise CubeError(f"channel width must be a positive number of keV; got {channel_width}.")
        n_float = (emax - emin) / width
        n_e = int(round(n_float))
        if n_e < 1 or abs(n_float - n_e) > 1e-6 * max(1.0, n_float):
            raise CubeError(
                f"the band {emin}-{emax} keV is not a whole number of {width} keV channels "
                f"({n_float:.4g}); adjust the band or the channel width."
            )
        edges = emin + width * np.arange(n_e + 1)
        edges[-1] = emax

    with open_fits(t.path) as hdul:
        hdu = hdul[t.hdu_index]
        n_total = len(hdu.data) if hdu.data is not None else 0
        if n_total == 0:
            raise CubeError(f"{t.path}: the events table is empty.")
        # the field: from the cut-out, or from the range of all events
        if cutout is None:
            x_lo = y_lo = np.inf
            x_hi = y_hi = -np.inf
            for start in range(0, n_total, CHUNK):
                x, y = _read_xy(t, hdu, start, min(n_total, start + CHUNK))
                fx, fy = x[np.isfinite(x)], y[np.isfinite(y)]
                if fx.size:
                    x_lo, x_hi = min(x_lo, fx.min()), max(x_hi, fx.max())
                if fy.size:
                    y_lo, y_hi = min(y_lo, fy.min()), max(y_hi, fy.max())
            try:
                x0, nx = _field(x_lo, x_hi, binning, None, "x")
                y0, ny = _field(y_lo, y_hi, binning, None, "y")
            except CubeError as exc:
                raise CubeError(f"{t.path}: {exc}") from None
        else:
            x0, nx = _field(0, 0, binning, (cutout[0], cutout[1]), "x")
            y0, ny = _field(0, 0, binning, (cutout[2], cutout[3]), "y")
        if nx < 4 or ny < 4:
            warnings.warn(
                f"{t.path}: binning by {binning} leaves an image of only {nx} x {ny} pixels; "
                "use a smaller spatial binning for a spatially resolved cube.",
                UserWarning,
                stacklevel=2,
            )
        n_bins = n_e * ny * nx
        if n_bins > MAX_BINS:
            raise CubeError(
                f"the cube would have {n_e} x {ny} x {nx} = {n_bins:,} bins (too large for memory); "
                "use a larger spatial binning, a cut-out, coarser channels or a narrower band."
            )
        n_finite_e = 0
        counts = np.zeros(n_bins, dtype=np.int32 if n_total < 2**31 else np.int64)
        for start in range(0, n_total, CHUNK):
            stop = min(n_total, start + CHUNK)
            x, y = _read_xy(t, hdu, start, stop)
            if native:
                k = _read_pi(t, hdu, start, stop) - chan_lo
                ok = (k >= 0) & (k < n_e * group)
                k = k // group
            else:
                e = _read_energy(t, hdu, start, stop)
                n_finite_e += int(np.count_nonzero(np.isfinite(e)))
                k = np.searchsorted(edges, e, side="right") - 1
                ok = np.isfinite(e) & (k >= 0) & (k < n_e)
            ix = np.floor((x - x0) / binning)
            iy = np.floor((y - y0) / binning)
            ok &= np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
            flat = (k[ok] * ny + iy[ok].astype(np.int64)) * nx + ix[ok].astype(np.int64)
            cells, hits = np.unique(flat, return_counts=True)  # sparse: no full-size temporary per chunk
            counts[cells] += hits.astype(counts.dtype)
            if progress is not None:
                progress(stop, n_total)
    total = int(counts.sum())
    if total == 0 and not native and n_finite_e == 0:
        raise CubeError(
            f"{t.path}: the energy column holds no finite value (all NaN or inf); the event list is damaged "
            "or its energies are in another column: check it with `napari-sushi info`."
        )
    if total == 0:
        raise CubeError(
            f"{t.path}: no events fall in the band {emin}-{emax} keV"
            + (" and the cut-out" if cutout is not None else "")
            + "; check the band (keV) and the cut-out (sky pixels) against `napari-sushi info`."
        )
    counts = counts.reshape(n_e, ny, nx)
    if counts.dtype != np.int32 and counts.max() < 2**31:
        counts = counts.astype(np.int32)

    wcs = None
    if t.wcs is not None:
        wcs = t.wcs.deepcopy()
        # image pixel p (FITS, 1-based) has its centre at sky x = x0 + (p - 0.5) * binning
        crpix = np.asarray(t.wcs.wcs.crpix, dtype=float)
        wcs.wcs.crpix = [(crpix[0] - x0) / binning + 0.5, (crpix[1] - y0) / binning + 0.5]
        wcs.wcs.cdelt = np.asarray(t.wcs.wcs.cdelt, dtype=float) * binning
        wcs.wcs.set()

    header = fits.Header()
    copy_provenance(t.header, header)
    copy_provenance(t.primary_header, header)
    header["SRCFILE"] = (t.path.name[-68:], "event list this cube was binned from")
    header["ENERSRC"] = (t.energy_source[:68], "event energies from")
    header["BAND_LO"] = (float(edges[0]), "[keV] lower edge of the first energy bin")
    header["BAND_HI"] = (float(edges[-1]), "[keV] upper edge of the last energy bin")
    if native:
        header["NATIVE"] = (True, "energy bins are instrument channels")
        header["CHGROUP"] = (group, "channels per energy bin")
    else:
        header["CHANWID"] = (round(float(edges[1] - edges[0]), 12), "[keV] energy bin width")
    header["SPBIN"] = (binning, "sky pixels per image pixel (per axis)")
    header["FIELDX0"] = (float(x0), "[sky pixel] left edge of the binned field")
    header["FIELDX1"] = (float(x0 + nx * binning), "[sky pixel] right edge of the binned field")
    header["FIELDY0"] = (float(y0), "[sky pixel] bottom edge of the binned field")
    header["FIELDY1"] = (float(y0 + ny * binning), "[sky pixel] top edge of the binned field")
    name = t.path.name.split(".")[0]
    return HyperCube(
        counts,
        edges,
        wcs=wcs,
        exposure=_exposure(t.header, t.primary_header),
        header=header,
        channels=channels,
        name=name,
        response=response,
    )


def _open_with_response(path: str | os.PathLike, response: ResponseFiles | None) -> EventTable:
    """The event table with channels mapped by the response's EBOUNDS; a found (not given) RMF that
    cannot map them is reported in a warning and the file's own mapping is used instead."""
    if response is None:
        return open_event_table(path)
    try:
        return open_event_table(path, rmf=response.rmf)
    except FileFormatError as exc:
        if response.how == "given":
            raise
        warnings.warn(
            f"{Path(path).name}: the response found ({response.how}) cannot map its channels ({exc}); "
            "using the event file's own channel mapping.",
            UserWarning,
            stacklevel=3,
        )
        return open_event_table(path)
