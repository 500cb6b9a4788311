"""Tabulated spectra onto any energy grid, Doppler-shifted exactly (photon-conserving).

A tabulated model (the APEC emulator's points, an XSPEC table's bins) gives photons per source bin.
Within a source bin the density is taken as constant, so the cumulative photon count is piecewise
linear in energy; the flux in a target bin [E_lo, E_hi] seen with Doppler factor s = E_obs/E_rest is
the cumulative count between E_lo/s and E_hi/s. Nothing is lost or created by the shift except what
moves across the table's ends.
"""

from __future__ import annotations

import numpy as np


def shifted_bins(src_edges: np.ndarray, photons: np.ndarray, dst_edges: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Photons per target bin (n, D) from photons per source bin (n, K) on ``src_edges`` (K+1, keV),
    observed with Doppler factors ``factor`` (n,) (E_obs = factor x E_rest; 1 = no shift)."""
    src = np.asarray(src_edges, float)
    ph = np.atleast_2d(np.asarray(photons, float))
    n, k = ph.shape
    if src.size != k + 1:
        raise ValueError(f"source edges ({src.size}) must be one more than source bins ({k}).")
    s = np.broadcast_to(np.asarray(factor, float).ravel(), (n,))
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(ph, axis=1)], axis=1)  # (n, K+1) at src edges
    rest = np.asarray(dst_edges, float)[None, :] / s[:, None]  # (n, D+1) rest-frame target edges
    j = np.clip(np.searchsorted(src, rest, side="right") - 1, 0, k - 1)
    frac = np.clip((rest - src[j]) / (src[j + 1] - src[j]), 0.0, 1.0)
    rows = np.arange(n)[:, None]
    at = cum[rows, j] + frac * ph[rows, j]
    return np.diff(at, axis=1)
