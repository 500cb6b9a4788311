"""Which bins of an energy grid lie in a band [emin, emax] keV: the one rule for cubes, responses and events.

A bin counts as inside the band when it lies entirely within it, up to :data:`BAND_TOL_KEV`:
``lo >= emin - tol`` and ``hi <= emax + tol``. The tolerance absorbs the rounding of edges stored
as float32 in FITS files (about 1e-6 keV at 10 keV) and bands typed with a few decimals, while being
far below any X-ray channel width (Chandra ACIS 14.6 eV, microcalorimeter channels 0.5 eV or more),
so it never admits a bin that really sticks out of the band.
"""

from __future__ import annotations

import numpy as np

BAND_TOL_KEV = 1e-4
"""How far (keV) a bin edge may lie outside the band and the bin still count as inside."""


def band_mask(edges: np.ndarray, emin: float, emax: float) -> np.ndarray:
    """Boolean mask (n_bins,) of the bins of ``edges`` (keV, non-decreasing) lying within [emin, emax].

    Each bin [edges[i], edges[i+1]] is inside when it lies entirely within the band, with the
    tolerance :data:`BAND_TOL_KEV` on both ends. Zero-width bins (some OGIP EBOUNDS start with one)
    are allowed; decreasing or non-finite edges are refused (ValueError).
    """
    e = np.asarray(edges, dtype=float).ravel()
    if e.size < 2:
        raise ValueError(f"an energy grid needs at least two edges; got {e.size}.")
    if not (np.all(np.isfinite(e)) and np.all(np.diff(e) >= 0)):
        raise ValueError("energy edges must be finite and increasing to select a band from them.")
    return (e[:-1] >= float(emin) - BAND_TOL_KEV) & (e[1:] <= float(emax) + BAND_TOL_KEV)


def band_slice(edges: np.ndarray, emin: float, emax: float) -> slice:
    """The bins of ``edges`` lying within [emin, emax] keV (rule of :func:`band_mask`) as a slice.

    Because the edges do not decrease, the selected bins are always contiguous. The slice is empty
    (``start == stop``) when no bin lies in the band: callers raise their own error then, naming
    what the grid belongs to.
    """
    idx = np.flatnonzero(band_mask(edges, emin, emax))
    if idx.size == 0:
        return slice(0, 0)
    return slice(int(idx[0]), int(idx[-1]) + 1)
