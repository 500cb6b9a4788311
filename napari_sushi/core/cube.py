"""The hyperspectral cube: counts on (energy, y, x) with energy edges, celestial WCS and exposure.

Everything in the project (readers, simulator, solver, widgets) passes cubes around as
:class:`HyperCube`, so its invariants are checked once, here, with errors that say what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.band import band_slice

if TYPE_CHECKING:  # the response module lives in core.io, which builds on this one
    from napari_sushi.core.io.response_files import ResponseFiles


class CubeError(ValueError):
    """Raised when data cannot form a valid hyperspectral cube (message says what to fix)."""


@dataclass
class HyperCube:
    """Counts with axes (energy, y, x).

    Attributes
    ----------
    counts:
        Array of shape (n_energy, ny, nx): non-negative, finite (counts per bin, float or int).
    energy_edges:
        Strictly increasing bin edges in keV, length n_energy + 1.
    wcs:
        Celestial WCS of the (y, x) image plane (2-D, FITS order x then y), or None.
    exposure:
        Exposure time in seconds (None when unknown).
    header:
        The source header (provenance; keywords of the file the cube came from).
    channels:
        Optional instrument channel number (e.g. PI) of each energy bin, so a cube binned on native
        channels can be matched to a response/model on the same channels.
    name:
        A short label (file stem, preset name).
    response:
        The instrument response (RMF, ARF) the counts were recorded with, when known
        (:class:`~napari_sushi.core.io.response_files.ResponseFiles`); travels with every copy of the cube
        and is written to FITS as ``RESPFILE``/``ANCRFILE``.
    """

    counts: np.ndarray
    energy_edges: np.ndarray
    wcs: WCS | None = None
    exposure: float | None = None
    header: fits.Header = field(default_factory=fits.Header)
    channels: np.ndarray | None = None
    name: str = "cube"
    response: ResponseFiles | None = None

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts)
        if counts.ndim != 3:
            raise CubeError(
                f"a hyperspectral cube needs 3 axes (energy, y, x); got an array of shape "
                f"{counts.shape} ({counts.ndim}-D). Give a 3-D array, energy first."
            )
        if not np.issubdtype(counts.dtype, np.number) or np.issubdtype(counts.dtype, np.complexfloating):
            raise CubeError(f"counts must be real numbers; got dtype {counts.dtype}.")
        if min(counts.shape) == 0:
            raise CubeError(f"the cube is empty (shape {counts.shape}).")
        if np.issubdtype(counts.dtype, np.floating):
            bad = ~np.isfinite(counts)
            if bad.any():
                raise CubeError(
                    f"counts contain {int(bad.sum())} NaN or infinite values; counts must be finite. "
                    "Replace them (e.g. with 0) and mask those pixels instead."
                )
        if (counts < 0).any():
            raise CubeError(
                f"counts contain {int((counts < 0).sum())} negative values (minimum {counts.min()}); "
                "counts must be >= 0. Background-subtracted data cannot be fitted with Poisson "
                "statistics: give raw counts and a background instead."
            )
        self.counts = counts
        edges = np.asarray(self.energy_edges, dtype=float).ravel()
        n_e = counts.shape[0]
        if edges.size != n_e + 1:
            raise CubeError(
                f"energy_edges must have n_energy + 1 = {n_e + 1} values (one more than the energy "
                f"axis of the counts); got {edges.size}."
            )
        if not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
            raise CubeError("energy_edges must be finite and strictly increasing (keV).")
        if edges[0] < 0:
            raise CubeError(f"energy_edges must be >= 0 keV; got a first edge of {edges[0]}.")
        self.energy_edges = edges
        if self.wcs is not None:
            if not isinstance(self.wcs, WCS):
                raise CubeError(f"wcs must be an astropy.wcs.WCS; got {type(self.wcs).__name__}.")
            if self.wcs.naxis != 2:
                raise CubeError(f"wcs must describe the 2-D image plane (x, y); got a {self.wcs.naxis}-axis WCS.")
        if self.exposure is not None:
            exp = float(self.exposure)
            if not np.isfinite(exp) or exp <= 0:
                raise CubeError(f"exposure must be a positive number of seconds; got {self.exposure}.")
            self.exposure = exp
        if self.channels is not None:
            ch = np.asarray(self.channels).ravel()
            if ch.size != n_e:
                raise CubeError(f"channels must have one entry per energy bin ({n_e}); got {ch.size}.")
            self.channels = ch.astype(np.int64)
        if self.header is None:
            self.header = fits.Header()
        if self.response is not None and not hasattr(self.response, "rmf"):
            raise CubeError(
                f"response must be a ResponseFiles (rmf, arf, how) or None; got {type(self.response).__name__}."
            )

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.counts.shape)

    @property
    def n_energy(self) -> int:
        return self.counts.shape[0]

    @property
    def energy_centers(self) -> np.ndarray:
        """Bin centres in keV."""
        return 0.5 * (self.energy_edges[:-1] + self.energy_edges[1:])

    @property
    def energy_widths(self) -> np.ndarray:
        return np.diff(self.energy_edges)

    @property
    def total_counts(self) -> float:
        return float(self.counts.sum())

    def image(self) -> np.ndarray:
        """Counts summed over energy, shape (ny, nx)."""
        return self.counts.sum(axis=0)

    def spectrum(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Counts summed over all pixels (or those where ``mask`` is true), shape (n_energy,)."""
        if mask is None:
            return self.counts.reshape(self.n_energy, -1).sum(axis=1)
        return self.counts[:, np.asarray(mask, bool)].sum(axis=1)

    def select_band(self, emin: float, emax: float) -> "HyperCube":
        """The bins lying entirely within [emin, emax] keV (rule and tolerance of :mod:`.band`)."""
        sl = band_slice(self.energy_edges, emin, emax)
        if sl.start == sl.stop:
            raise CubeError(
                f"no energy bin of the cube ({self.energy_edges[0]:.3f}-{self.energy_edges[-1]:.3f} keV) "
                f"lies within the band {emin}-{emax} keV."
            )
        return replace(
            self,
            counts=self.counts[sl],
            energy_edges=self.energy_edges[sl.start : sl.stop + 1],
            channels=None if self.channels is None else self.channels[sl],
        )

    def rebin_spatial(self, factor: int) -> "HyperCube":
        """Sum ``factor`` x ``factor`` blocks of pixels (edges that do not fill a block are dropped)."""
        factor = int(factor)
        if factor < 1:
            raise CubeError(f"spatial binning factor must be >= 1; got {factor}.")
        if factor == 1:
            return self
        ne, ny, nx = self.shape
        ny2, nx2 = ny // factor, nx // factor
        if ny2 == 0 or nx2 == 0:
            raise CubeError(f"binning factor {factor} is larger than the image ({ny}x{nx}).")
        c = self.counts[:, : ny2 * factor, : nx2 * factor]
        c = c.reshape(ne, ny2, factor, nx2, factor).sum(axis=(2, 4))
        wcs = None
        if self.wcs is not None:
            wcs = _bin_wcs(self.wcs, factor)
        return replace(self, counts=c, wcs=wcs, header=_binned_sky_keywords(self.header, factor))

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> "HyperCube":
        """The pixels [y0:y1, x0:x1] (0-based, end excluded), with the celestial WCS and the sky-pixel
        binning record (LTV or FIELDX0/FIELDY0) moved so that sky and physical coordinates still land
        on the same pixels."""
        _, ny, nx = self.shape
        y0, y1, x0, x1 = (int(v) for v in (y0, y1, x0, x1))
        if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise CubeError(f"crop [{y0}:{y1}, {x0}:{x1}] is not a non-empty part of the {ny}x{nx} image.")
        wcs = None if self.wcs is None else self.wcs[y0:y1, x0:x1]
        return replace(
            self,
            counts=self.counts[:, y0:y1, x0:x1],
            wcs=wcs,
            header=_cropped_sky_keywords(self.header, y0, x0),
        )

    def tile_regions(self, tile: int, halo: int = 0) -> list[tuple[tuple[slice, slice], ...]]:
        """``(core, inner, extent)`` slices per tile of :meth:`tiles`: the tile's own pixels in the image,
        the same pixels inside its extent, and the extent (``halo`` pixels further on each side, less at
        the image's borders) in the image."""
        tile, halo = int(tile), int(halo)
        if tile < 1 or halo < 0:
            raise CubeError(f"tiles need a tile size >= 1 and a halo >= 0; got {tile} and {halo}.")
        _, ny, nx = self.shape
        out: list[tuple[tuple[slice, slice], ...]] = []
        for ya in range(0, ny, tile):
            for xa in range(0, nx, tile):
                yb, xb = min(ny, ya + tile), min(nx, xa + tile)
                y0, x0 = max(0, ya - halo), max(0, xa - halo)
                y1, x1 = min(ny, yb + halo), min(nx, xb + halo)
                core = (slice(ya, yb), slice(xa, xb))
                inner = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
                out.append((core, inner, (slice(y0, y1), slice(x0, x1))))
        return out

    def tiles(self, tile: int, halo: int = 0) -> list[tuple[tuple[slice, slice], tuple[slice, slice], "HyperCube"]]:
        """Overlapping tiles covering the image: ``(core, inner, cube)`` per tile, where ``core`` is
        the tile's own pixels in the full image, ``inner`` the same pixels inside the tile's cube,
        and the cube reaches ``halo`` pixels further on each side (less at the image's borders).
        Stitching the ``inner`` parts of the tiles' maps into ``core`` gives the full image once."""
        return [
            (core, inner, self.crop(ys.start, ys.stop, xs.start, xs.stop))
            for core, inner, (ys, xs) in self.tile_regions(tile, halo)
        ]


def _cropped_sky_keywords(header: fits.Header, y0: int, x0: int) -> fits.Header:
    """The header with its physical -> image record shifted by a crop starting at (y0, x0)."""
    h = header.copy()
    if "LTV1" in h or "LTM1_1" in h:  # image (1-based) = LTM * physical + LTV
        h["LTV1"] = float(h.get("LTV1", 0.0)) - x0
        h["LTV2"] = float(h.get("LTV2", 0.0)) - y0
    if "SPBIN" in h and "FIELDX0" in h and "FIELDY0" in h:
        b = float(h["SPBIN"])
        h["FIELDX0"] = float(h["FIELDX0"]) + x0 * b
        h["FIELDY0"] = float(h["FIELDY0"]) + y0 * b
    return h


def _binned_sky_keywords(header: fits.Header, factor: int) -> fits.Header:
    """The header with its physical -> image record for ``factor`` x ``factor`` blocks of pixels."""
    h = header.copy()
    if "LTV1" in h or "LTM1_1" in h:  # new image1 = (old image1 - 0.5) / factor + 0.5
        for i in (1, 2):
            h[f"LTM{i}_{i}"] = float(h.get(f"LTM{i}_{i}", 1.0)) / factor
            h[f"LTV{i}"] = (float(h.get(f"LTV{i}", 0.0)) - 0.5) / factor + 0.5
    if "SPBIN" in h:
        h["SPBIN"] = float(h["SPBIN"]) * factor
    return h


def _bin_wcs(wcs: WCS, factor: int) -> WCS:
    """WCS of an image whose pixels are ``factor`` x ``factor`` blocks of the original."""
    w = wcs.deepcopy()
    # Pixel i (0-based) of the binned image covers original pixels factor*i .. factor*i+factor-1;
    # its centre is at original 0-based coordinate factor*i + (factor-1)/2.
    # FITS 1-based: orig_p = factor*(p - 1) + (factor + 1)/2  =>  p = (orig_p - (factor+1)/2)/factor + 1
    w.wcs.crpix = (np.asarray(wcs.wcs.crpix) - (factor + 1) / 2.0) / factor + 1.0
    if w.wcs.has_cd():
        w.wcs.cd = np.asarray(wcs.wcs.cd) * factor
    else:
        w.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * factor
    return w


def as_cube(obj: Any) -> HyperCube:
    """Accept a HyperCube or a bare (E, Y, X) array (unit energy bins) and return a HyperCube."""
    if isinstance(obj, HyperCube):
        return obj
    arr = np.asarray(obj)
    if arr.ndim != 3:
        raise CubeError(f"expected a HyperCube or a 3-D array; got shape {arr.shape}.")
    return HyperCube(arr, np.arange(arr.shape[0] + 1, dtype=float))
