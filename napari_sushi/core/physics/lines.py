"""Emission lines of a hot plasma: line list and an approximate temperature-dependent emissivity.

Line list: the K-shell lines of He-like (resonance r, intercombination i, forbidden f) and H-like
(Ly-alpha) O, Ne, Mg, Si, S, Ar, Ca, Fe and Ni, the Fe XXV He-beta and Fe XXVI Ly-beta lines, and
an Fe-L blend (Fe XVII-XXIV, 0.73-1.13 keV) that matters below 2 keV. Rest energies are laboratory
values rounded to ~1 eV.

Emissivity approximation (documented, not a plasma code). A line of energy E_l from ion X^q of
element Z is excited by electron collisions, so its photon flux per unit emission measure is

    F_l(T) = norm * a_Z * K_l * f_q(T) * kT^(-1/2) * exp(-E_l / kT)

- ``f_q(T) = exp(-(log10 T - log10 T_peak)^2 / (2 w^2))``, with ``w = width_below`` under the peak
  and ``width_above`` over it, stands for the ion's fraction in collisional ionisation equilibrium
  together with everything the constant-collision-strength rate below leaves out;
- ``kT^(-1/2) exp(-E_l/kT)`` is the Maxwellian-averaged collisional excitation rate with a constant
  collision strength (the Boltzmann factor of the van Regemorter rate);
- ``a_Z`` is the abundance relative to solar (the ``abundance`` parameter, one value for all metals);
- ``K_l`` sets each line's strength: at T = T_peak its equivalent width against the bremsstrahlung
  continuum of :mod:`continuum` equals ``ew_peak`` (eV, solar abundance). Since the continuum has the
  same kT^(-1/2) exp(-E/kT) dependence, K_l = ew_peak * g_ff(E_l / kT_peak) / E_l.

Source of the numbers (:data:`IONS`). T_peak started at the ionisation-balance peaks of Bryans et
al. (2009) rounded to 0.1 dex, widths at 0.3 (He-like) / 0.25 dex, EWs at rounded values of the
order of standard CIE models. All four numbers per ion were then re-fitted
(``scripts/calibrate_lines.py``) so that the share of 0.5-7 keV photons in each line complex agrees
with APEC (AtomDB, as emulated by the ``nnapec`` network: facts and numbers, no code) over kT
0.3-10 keV: within 20 % at kT 0.5-5 keV for the Fe-L/Ne, Si, S, Ar, Ca and Fe K complexes wherever
they hold >= 1e-4 of the photons (``benchmarks/bench_line_shares.py``; the He-like/H-like split of
each element is fitted too, less tightly). T_peak is therefore a parameter of this approximation,
not the ion-fraction peak. Ni XXVII keeps its starting values (outside every calibrated window).
The continuum is pure hydrogen/helium bremsstrahlung: the metals' free-bound continuum, which APEC
has, is not modelled.

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
class Ion:
    """An emitting ion: the temperature of its emissivity peak, how fast it falls off below and
    above it (dex of log10 T), and its strength (equivalent width in eV of all its listed lines
    together, at T_peak, solar abundance)."""

    name: str  # spectroscopic label, e.g. "Fe XXV"
    element: str
    log_t_peak: float
    width_below: float
    width_above: float
    ew_peak: float


@dataclass(frozen=True)
class Line:
    """One emission line (or one member of a multiplet)."""

    ion: str  # spectroscopic label, e.g. "Fe XXV"
    transition: str  # e.g. "He-alpha r", "Ly-alpha"
    element: str
    mass: float  # atomic mass (u), for thermal broadening
    energy: float  # rest energy (keV)
    log_t_peak: float  # log10 T (K) of the emissivity peak
    width_below: float  # width (dex) of the emissivity Gaussian in log10 T below the peak
    width_above: float  # and above it
    ew_peak: float  # equivalent width (eV) of this line at T_peak for solar abundance


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

#: Ions: (name, element, log10 T_peak [K], width below, width above [dex], EW at T_peak [eV]).
#: Calibrated against APEC line shares by ``scripts/calibrate_lines.py`` (see the module docstring).
IONS: tuple[Ion, ...] = tuple(
    Ion(*row)
    for row in [
        ("O VII", "O", 6.28, 0.30, 0.81, 9.336),
        ("O VIII", "O", 6.72, 0.19, 0.66, 93.5),
        ("Ne IX", "Ne", 6.59, 0.30, 0.29, 218.4),
        ("Ne X", "Ne", 6.79, 0.30, 0.30, 145.8),
        ("Mg XI", "Mg", 6.55, 0.30, 0.53, 137),
        ("Mg XII", "Mg", 7.16, 0.29, 0.41, 67.09),
        ("Si XIII", "Si", 6.81, 0.44, 0.33, 302.7),
        ("Si XIV", "Si", 7.03, 0.20, 0.53, 98.63),
        ("S XV", "S", 7.10, 0.27, 0.24, 182.4),
        ("S XVI", "S", 7.28, 0.16, 0.44, 77.61),
        ("Ar XVII", "Ar", 7.24, 0.27, 0.28, 87.21),
        ("Ar XVIII", "Ar", 7.48, 0.21, 0.47, 23.15),
        ("Ca XIX", "Ca", 7.30, 0.27, 0.28, 72.68),
        ("Ca XX", "Ca", 7.66, 0.23, 0.38, 15.69),
        ("Fe XVII", "Fe", 6.85, 0.18, 0.30, 419.2),
        ("Fe XX", "Fe", 6.89, 0.30, 0.30, 141.1),
        ("Fe XXII", "Fe", 7.05, 0.31, 0.28, 94.79),
        ("Fe XXIV", "Fe", 7.32, 0.23, 0.37, 179.8),
        ("Fe XXV", "Fe", 7.39, 0.20, 0.49, 2410),
        ("Fe XXVI", "Fe", 8.03, 0.25, 0.30, 367.1),
        ("Ni XXVII", "Ni", 7.80, 0.30, 0.30, 50),
    ]
)

#: Lines: (ion, transition, rest energy keV, share of the ion's EW). He-like triplets split
#: r : i : f = 0.55 : 0.20 : 0.25 (low density); beta lines at the ratio to alpha of CIE models.
_LINE_TABLE = [
    ("O VII", "He-alpha r", 0.5740, 0.55),
    ("O VII", "He-alpha i", 0.5686, 0.20),
    ("O VII", "He-alpha f", 0.5610, 0.25),
    ("O VIII", "Ly-alpha", 0.6536, 300.0 / 360.0),
    ("O VIII", "Ly-beta", 0.7746, 60.0 / 360.0),
    ("Ne IX", "He-alpha r", 0.9220, 0.55),
    ("Ne IX", "He-alpha i", 0.9148, 0.20),
    ("Ne IX", "He-alpha f", 0.9051, 0.25),
    ("Ne X", "Ly-alpha", 1.0215, 1.0),
    ("Mg XI", "He-alpha r", 1.3523, 0.55),
    ("Mg XI", "He-alpha i", 1.3433, 0.20),
    ("Mg XI", "He-alpha f", 1.3312, 0.25),
    ("Mg XII", "Ly-alpha", 1.4726, 1.0),
    ("Si XIII", "He-alpha r", 1.8650, 0.55),
    ("Si XIII", "He-alpha i", 1.8540, 0.20),
    ("Si XIII", "He-alpha f", 1.8394, 0.25),
    ("Si XIV", "Ly-alpha", 2.0056, 1.0),
    ("S XV", "He-alpha r", 2.4606, 0.55),
    ("S XV", "He-alpha i", 2.4476, 0.20),
    ("S XV", "He-alpha f", 2.4303, 0.25),
    ("S XVI", "Ly-alpha", 2.6227, 1.0),
    ("Ar XVII", "He-alpha r", 3.1396, 0.55),
    ("Ar XVII", "He-alpha i", 3.1237, 0.20),
    ("Ar XVII", "He-alpha f", 3.1042, 0.25),
    ("Ar XVIII", "Ly-alpha", 3.3230, 1.0),
    ("Ca XIX", "He-alpha r", 3.9024, 0.55),
    ("Ca XIX", "He-alpha i", 3.8860, 0.20),
    ("Ca XIX", "He-alpha f", 3.8611, 0.25),
    ("Ca XX", "Ly-alpha", 4.1075, 1.0),
    # Fe-L blend: strongest 3d-2p / 3s-2p complexes of Fe XVII .. Fe XXIV
    ("Fe XVII", "3s-2p", 0.7270, 0.375),
    ("Fe XVII", "3d-2p", 0.8260, 0.625),
    ("Fe XX", "3d-2p", 0.9650, 1.0),
    ("Fe XXII", "3d-2p", 1.0530, 1.0),
    ("Fe XXIV", "3d-2p", 1.1290, 1.0),
    ("Fe XXV", "He-alpha r", 6.7004, 0.55 * 700.0 / 800.0),
    ("Fe XXV", "He-alpha i", 6.6730, 0.20 * 700.0 / 800.0),
    ("Fe XXV", "He-alpha f", 6.6366, 0.25 * 700.0 / 800.0),
    ("Fe XXV", "He-beta", 7.8810, 100.0 / 800.0),
    ("Fe XXVI", "Ly-alpha", 6.9662, 300.0 / 350.0),
    ("Fe XXVI", "Ly-beta", 8.2530, 50.0 / 350.0),
    ("Ni XXVII", "He-alpha r", 7.8050, 0.55),
    ("Ni XXVII", "He-alpha i", 7.7860, 0.20),
    ("Ni XXVII", "He-alpha f", 7.7310, 0.25),
]


def build_lines(ions: tuple[Ion, ...] = IONS) -> tuple[Line, ...]:
    """The line list for an ion table (the calibration script builds it for trial tables)."""
    by_name = {ion.name: ion for ion in ions}
    out = []
    for name, transition, energy, share in _LINE_TABLE:
        ion = by_name[name]
        out.append(
            Line(
                name,
                transition,
                ion.element,
                _MASS[ion.element],
                energy,
                ion.log_t_peak,
                ion.width_below,
                ion.width_above,
                ion.ew_peak * share,
            )
        )
    return tuple(sorted(out, key=lambda ln: ln.energy))


LINES: tuple[Line, ...] = build_lines()


class LineArrays:
    """A line list as arrays, for vectorised emissivities (the module's own, or a trial table's)."""

    def __init__(self, lines: tuple[Line, ...]) -> None:
        self.energy = np.array([ln.energy for ln in lines])
        self.log_t = np.array([ln.log_t_peak for ln in lines])
        self.below = np.array([ln.width_below for ln in lines])
        self.above = np.array([ln.width_above for ln in lines])
        self.mass = np.array([ln.mass for ln in lines])
        kt_peak = 10.0**self.log_t / K_PER_KEV
        # EW in keV against the bremsstrahlung continuum at T_peak (see the module docstring)
        self.k = np.array([ln.ew_peak for ln in lines]) * 1e-3 * gaunt_ff(self.energy / kt_peak) / self.energy

    def fluxes(self, kt: np.ndarray, sel: slice | np.ndarray) -> np.ndarray:
        """Photon flux (n, L) per unit norm and abundance of the selected lines at ``kt`` (n, 1)."""
        d = np.log10(kt * K_PER_KEV) - self.log_t[sel]
        width = np.where(d < 0, self.below[sel], self.above[sel])
        return self.k[sel] * np.exp(-0.5 * (d / width) ** 2) * np.exp(-self.energy[sel] / kt) / np.sqrt(kt)


_ARR = LineArrays(LINES)


def line_energies() -> np.ndarray:
    """Rest energies (keV) of :data:`LINES`, ascending."""
    return _ARR.energy.copy()


def line_fluxes(
    kT: np.ndarray, abundance: np.ndarray, norm: np.ndarray, select: np.ndarray | None = None
) -> np.ndarray:
    """Photon flux (n, L) of each line [photons/cm2/s] from the emissivity approximation above."""
    sel = slice(None) if select is None else select
    kt = np.asarray(kT, dtype=float)[:, None]
    return (np.asarray(norm, float) * np.asarray(abundance, float))[:, None] * _ARR.fluxes(kt, sel)


def line_sigma(kT: np.ndarray, sigma_v: np.ndarray, select: np.ndarray | None = None) -> np.ndarray:
    """Gaussian width (n, L) in keV of each line: thermal ion motion at kT plus sigma_v (km/s)."""
    sel = slice(None) if select is None else select
    kt = np.asarray(kT, dtype=float)[:, None]
    sv = np.asarray(sigma_v, dtype=float)[:, None]
    return _ARR.energy[sel] * np.sqrt(kt / (_ARR.mass[sel] * AMU_KEV) + (sv / C_KMS) ** 2)


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
