"""Power law (e.g. synchrotron) with an optional exponential cut-off.

dN/dE = norm * E^(-index) [* exp(-E / e_cut)]  photons / cm2 / s / keV, norm at 1 keV.
Without a cut-off the per-bin flux is the exact integral; with one, Simpson's rule per bin.
"""

from __future__ import annotations

import numpy as np

from napari_sushi.core.physics.grid import as_param, batch_size, check_edges, simpson_bins


def powerlaw(
    edges: np.ndarray,
    index: float | np.ndarray,
    norm: float | np.ndarray = 1.0,
    e_cut: float | np.ndarray | None = None,
) -> np.ndarray:
    """Photon flux per bin (n, E) [photons/cm2/s] of a (cut-off) power law of photon ``index``."""
    edges = check_edges(edges)
    n = batch_size(index, norm, e_cut)
    g = as_param(index, "index", n, low=-10.0, high=10.0)[:, None]
    nm = as_param(norm, "norm", n, low=0.0)[:, None]
    if e_cut is not None:
        ec = as_param(e_cut, "e_cut", n, low=0.0, low_inclusive=False)[:, None]
        return nm * simpson_bins(edges, lambda e: e[None, :] ** (-g) * np.exp(-e[None, :] / ec))
    lo, hi = np.log(edges[:-1])[None, :], np.log(edges[1:])[None, :]
    a = 1.0 - g  # integral of E^-g = (hi^a - lo^a) / a, -> ln(hi/lo) as a -> 0
    small = np.abs(a) < 1e-8
    a_safe = np.where(small, 1.0, a)
    exact = (np.exp(a_safe * hi) - np.exp(a_safe * lo)) / a_safe
    return nm * np.where(small, hi - lo, exact)
