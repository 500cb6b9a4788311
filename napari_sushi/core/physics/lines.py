"""Emission lines of a hot plasma: line list and an approximate temperature-dependent emissivity.

Line list: the K-shell lines of He-like (resonance r, intercombination i, forbidden f) and H-like
(Ly-alpha) O, Ne, Mg, Si, S, Ar, Ca, Fe and Ni, the Fe XXV He-beta and Fe XXVI Ly-beta lines, and
an Fe-L blend (Fe XVII-XXIV, 0.73-1.13 keV) that matters below 2 keV. Rest energies are laboratory
values rounded to ~1 eV.

Emissivity approximation (documented, not a plasma code). A line of energy E_l from ion X^q of
element Z is excited by electron collisions, so its photon flux per unit emission measure is

    F_l(T) = norm * a_Z * K_l * f_q(T) * kT^(-1/2) * exp(-E_l / kT)

- ``f_q(T) = exp(-(log10 T - log10 T_peak)^2 / (2 w^2))`` approximates the ion fraction of X^q in
  collisional ionisation equilibrium by a Gaussian in log T peaking at the temperature where that
  ion is most abundant (T_peak from the equilibrium tables of Mazzotta et al. 1998 / Bryans et al.
  2009, rounded to 0.1 dex; closed-shell He-like ions survive over a wider range, w = 0.3 dex, than
  H-like ions, w = 0.25 dex);
- ``kT^(-1/2) exp(-E_l/kT)`` is the Maxwellian-averaged collisional excitation rate with a constant
  collision strength (the Boltzmann factor of the van Regemorter rate);
- ``a_Z`` is the abundance relative to solar (the ``abundance`` parameter, one value for all metals);
- ``K_l`` calibrates each line: at T = T_peak its equivalent width against the bremsstrahlung
  continuum of :mod:`continuum` equals ``ew_peak`` (eV, solar abundance), a rounded value of the
  order given by standard CIE models. Since the continuum has the same kT^(-1/2) exp(-E/kT)
  dependence, this gives K_l = ew_peak * g_ff(E_l / kT_peak) / E_l.

The line profile is a Gaussian of width sigma_E = E * sqrt(kT / (m_ion c^2) + (sigma_v / c)^2)
(thermal Doppler broadening with the ion temperature equal to kT, plus optional turbulent/bulk
broadening sigma_v in km/s), centred on E_l * (1 - v/c).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from napari_sushi.core.physics.continuum import gaunt_ff
from napari_sushi.core.physics.grid import AMU_KEV, C_KMS, K_PER_KEV


@dataclass(frozen=True)
class Line:
    """One emission line (or one member of a multiplet)."""

    ion: str  # spectroscopic label, e.g. "Fe XXV"
    transition: str  # e.g. "He-alpha r", "Ly-alpha"
    element: str
    mass: float  # atomic mass (u), for thermal broadening
    energy: float  # rest energy (keV)
    log_t_peak: float  # log10 T (K) of the ion-fraction peak
    width_dex: float  # width of the ion-fraction Gaussian in log10 T
    ew_peak: float  # equivalent width (eV) at T_peak for solar abundance


_MASS = {
    "O": 15.999,
    "Ne": 20.180,
    "Mg": 24.305,
    "Si": 28.085,
    "S": 32.06,
    "Ar": 39.948,
    "Ca": 40.078,
    "Fe": 55.845,
    "Ni": 58.693,
}

# He-like triplets: (element, ion, r, i, f energies keV, log T_peak, EW_peak eV of the whole triplet)
_HE_LIKE = [
    ("O", "O VII", 0.5740, 0.5686, 0.5610, 6.3, 400.0),
    ("Ne", "Ne IX", 0.9220, 0.9148, 0.9051, 6.6, 200.0),
    ("Mg", "Mg XI", 1.3523, 1.3433, 1.3312, 6.8, 120.0),
    ("Si", "Si XIII", 1.8650, 1.8540, 1.8394, 7.0, 250.0),
    ("S", "S XV", 2.4606, 2.4476, 2.4303, 7.2, 180.0),
    ("Ar", "Ar XVII", 3.1396, 3.1237, 3.1042, 7.3, 80.0),
    ("Ca", "Ca XIX", 3.9024, 3.8860, 3.8611, 7.5, 70.0),
    ("Fe", "Fe XXV", 6.7004, 6.6730, 6.6366, 7.7, 700.0),
    ("Ni", "Ni XXVII", 7.8050, 7.7860, 7.7310, 7.8, 50.0),
]
_TRIPLET_SHARE = {"r": 0.55, "i": 0.20, "f": 0.25}  # typical low-density share of r, i, f

# H-like Ly-alpha (doublet merged): (element, ion, energy keV, log T_peak, EW_peak eV)
_H_LIKE = [
    ("O", "O VIII", 0.6536, 6.5, 300.0),
    ("Ne", "Ne X", 1.0215, 6.8, 150.0),
    ("Mg", "Mg XII", 1.4726, 7.0, 80.0),
    ("Si", "Si XIV", 2.0056, 7.2, 150.0),
    ("S", "S XVI", 2.6227, 7.4, 100.0),
    ("Ar", "Ar XVIII", 3.3230, 7.5, 50.0),
    ("Ca", "Ca XX", 4.1075, 7.7, 40.0),
    ("Fe", "Fe XXVI", 6.9662, 8.1, 300.0),
]


def _build_lines() -> tuple[Line, ...]:
    out: list[Line] = []
    for el, ion, r, i, f, logt, ew in _HE_LIKE:
        for name, e in (("r", r), ("i", i), ("f", f)):
            out.append(Line(ion, f"He-alpha {name}", el, _MASS[el], e, logt, 0.30, ew * _TRIPLET_SHARE[name]))
    for el, ion, e, logt, ew in _H_LIKE:
        out.append(Line(ion, "Ly-alpha", el, _MASS[el], e, logt, 0.25, ew))
    out += [
        Line("Fe XXV", "He-beta", "Fe", _MASS["Fe"], 7.8810, 7.7, 0.30, 100.0),
        Line("Fe XXVI", "Ly-beta", "Fe", _MASS["Fe"], 8.2530, 8.1, 0.25, 50.0),
        Line("O VIII", "Ly-beta", "O", _MASS["O"], 0.7746, 6.5, 0.25, 60.0),
        # Fe-L blend: strongest 3d-2p / 3s-2p complexes of Fe XVII .. Fe XXIV
        Line("Fe XVII", "3s-2p", "Fe", _MASS["Fe"], 0.7270, 6.7, 0.25, 150.0),
        Line("Fe XVII", "3d-2p", "Fe", _MASS["Fe"], 0.8260, 6.7, 0.25, 250.0),
        Line("Fe XX", "3d-2p", "Fe", _MASS["Fe"], 0.9650, 6.9, 0.25, 150.0),
        Line("Fe XXII", "3d-2p", "Fe", _MASS["Fe"], 1.0530, 7.05, 0.25, 100.0),
        Line("Fe XXIV", "3d-2p", "Fe", _MASS["Fe"], 1.1290, 7.25, 0.25, 80.0),
    ]
    return tuple(sorted(out, key=lambda ln: ln.energy))


LINES: tuple[Line, ...] = _build_lines()

_E = np.array([ln.energy for ln in LINES])
_LOGT = np.array([ln.log_t_peak for ln in LINES])
_W = np.array([ln.width_dex for ln in LINES])
_MASS_ARR = np.array([ln.mass for ln in LINES])
_KT_PEAK = 10.0**_LOGT / K_PER_KEV
_K = np.array([ln.ew_peak for ln in LINES]) * 1e-3 * gaunt_ff(_E / _KT_PEAK) / _E  # EW in keV


def line_energies() -> np.ndarray:
    """Rest energies (keV) of :data:`LINES`, ascending."""
    return _E.copy()


def line_fluxes(
    kT: np.ndarray, abundance: np.ndarray, norm: np.ndarray, select: np.ndarray | None = None
) -> np.ndarray:
    """Photon flux (n, L) of each line [photons/cm2/s] from the emissivity approximation above."""
    sel = slice(None) if select is None else select
    kt = np.asarray(kT, dtype=float)[:, None]
    logt = np.log10(kt * K_PER_KEV)
    frac = np.exp(-0.5 * ((logt - _LOGT[sel]) / _W[sel]) ** 2)
    excitation = np.exp(-_E[sel] / kt) / np.sqrt(kt)
    return (np.asarray(norm, float) * np.asarray(abundance, float))[:, None] * _K[sel] * frac * excitation


def line_sigma(kT: np.ndarray, sigma_v: np.ndarray, select: np.ndarray | None = None) -> np.ndarray:
    """Gaussian width (n, L) in keV of each line: thermal ion motion at kT plus sigma_v (km/s)."""
    sel = slice(None) if select is None else select
    kt = np.asarray(kT, dtype=float)[:, None]
    sv = np.asarray(sigma_v, dtype=float)[:, None]
    return _E[sel] * np.sqrt(kt / (_MASS_ARR[sel] * AMU_KEV) + (sv / C_KMS) ** 2)


def gaussian_lines_binned(edges: np.ndarray, centre: np.ndarray, sigma: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Deposit Gaussian lines (n, L) into bins (n, E) exactly (CDF differences), in a local window.

    Each line is integrated over the bins within ~7 sigma of its centre only, so the cost is
    n * L * window rather than n * L * E; flux falling outside the grid is lost, as it should be.
    """
    n, n_lines = centre.shape
    n_bins = edges.size - 1
    out = np.zeros(n * n_bins)
    if n_lines == 0:
        return out.reshape(n, n_bins)
    min_width = float(np.min(np.diff(edges)))
    half = int(min(n_bins, np.ceil(7.0 * float(sigma.max()) / min_width) + 1))
    offsets = np.arange(-half, half + 1)
    i0 = np.searchsorted(edges, centre) - 1  # bin holding the centre (-1 / n_bins when outside)
    idx = i0[..., None] + offsets  # (n, L, W)
    valid = (idx >= 0) & (idx < n_bins)
    idx_c = np.clip(idx, 0, n_bins - 1)
    scale = 1.0 / (np.sqrt(2.0) * sigma[..., None])
    c = centre[..., None]
    cdf_hi = erf((edges[idx_c + 1] - c) * scale)
    cdf_lo = erf((edges[idx_c] - c) * scale)
    w = 0.5 * (cdf_hi - cdf_lo) * flux[..., None] * valid
    flat = (np.arange(n)[:, None, None] * n_bins + idx_c).ravel()
    out += np.bincount(flat, weights=w.ravel(), minlength=n * n_bins)
    return out.reshape(n, n_bins)
