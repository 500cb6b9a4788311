"""Thermal plasma: bremsstrahlung continuum plus temperature-dependent K-shell and Fe-L lines.

An approximation of a collisional-ionisation-equilibrium plasma (see :mod:`continuum` and
:mod:`lines` for the formulas and their sources), vectorised over parameter sets:

    kT [keV] > 0, velocity [km/s] (line of sight, positive = receding: E_obs = E_rest (1 - v/c),
    applied to lines and continuum), abundance (metals relative to solar, >= 0),
    sigma_v [km/s] >= 0 (extra Gaussian line broadening), norm >= 0.
"""

from __future__ import annotations

import numpy as np

from napari_sushi.core.physics import lines as _lines
from napari_sushi.core.physics.continuum import bremsstrahlung
from napari_sushi.core.physics.grid import as_param, batch_size, check_edges, doppler_factor


def plasma_parameters(
    kT: float | np.ndarray,
    velocity: float | np.ndarray,
    abundance: float | np.ndarray,
    sigma_v: float | np.ndarray,
    norm: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A plasma's parameters as checked (n,) arrays: kT > 0, abundance, sigma_v, norm >= 0 (every
    thermal code takes the same five)."""
    n = batch_size(kT, velocity, abundance, sigma_v, norm)
    return (
        as_param(kT, "kT", n, low=0.0, low_inclusive=False),
        as_param(velocity, "velocity", n),
        as_param(abundance, "abundance", n, low=0.0),
        as_param(sigma_v, "sigma_v", n, low=0.0),
        as_param(norm, "norm", n, low=0.0),
    )


def thermal(
    edges: np.ndarray,
    kT: float | np.ndarray,
    velocity: float | np.ndarray = 0.0,
    abundance: float | np.ndarray = 1.0,
    sigma_v: float | np.ndarray = 0.0,
    norm: float | np.ndarray = 1.0,
    lines: bool = True,
) -> np.ndarray:
    """Photon flux per bin (n, E) [photons/cm2/s] of a thermal plasma on the keV ``edges``."""
    edges = check_edges(edges)
    kt, v, ab, sv, nm = plasma_parameters(kT, velocity, abundance, sigma_v, norm)
    s = doppler_factor(v)
    flux = bremsstrahlung(edges, kt, v, nm)
    if not lines:
        return flux
    e_rest = _lines.line_energies()
    # lines that can land on the grid for any |v| < 0.1 c and width (generous margin)
    sel = np.flatnonzero((e_rest * 0.85 < edges[-1]) & (e_rest * 1.15 > edges[0]))
    if sel.size == 0:
        return flux
    centre = e_rest[sel][None, :] * s[:, None]
    sigma = _lines.line_sigma(kt, sv, sel) * s[:, None]
    f = _lines.line_fluxes(kt, ab, nm, sel)
    return flux + _lines.gaussian_lines_binned(edges, centre, sigma, f)
