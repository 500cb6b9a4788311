"""Interstellar photoelectric absorption: transmission exp(-N_H sigma(E)) from real cross sections.

sigma(E) per hydrogen atom = sum_Z a_Z * sigma_Z(E), with sigma_Z the atomic photoabsorption cross
section of element Z from the Elam, Ravel & Sieber (2002) tables shipped offline by ``xraydb``
(``mu_elam(kind="photo")`` in cm2/g times the atomic mass / Avogadro), and a_Z the number abundance
relative to H of a solar/interstellar table:

- ``"angr"``: Anders & Grevesse (1989), Geochim. Cosmochim. Acta 53, 197 (photospheric);
- ``"wilm"``: Wilms, Allen & McCray (2000), ApJ 542, 914 (interstellar medium).

All elements are taken as neutral atomic gas: no H2 molecules and no grain depletion (tbabs includes
both), so this is close to XSPEC's ``phabs`` with the same abundance table. At 1 keV it gives
sigma ~ 2.4e-22 cm2 (angr, cf. Morrison & McCammon 1983) and ~ 1.8e-22 cm2 (wilm).
N_H is given in units of 1e22 cm-2 (parameter ``nH``), as in XSPEC.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from napari_sushi.core.physics.grid import PhysicsError, as_param, batch_size, check_edges

AVOGADRO = 6.022_140_76e23

# Number abundances relative to H (elements H..Zn; only those > 0 are used).
ABUNDANCES: dict[str, dict[str, float]] = {
    "angr": {
        "H": 1.0,
        "He": 9.77e-2,
        "Li": 1.45e-11,
        "Be": 1.41e-11,
        "B": 3.98e-10,
        "C": 3.63e-4,
        "N": 1.12e-4,
        "O": 8.51e-4,
        "F": 3.63e-8,
        "Ne": 1.23e-4,
        "Na": 2.14e-6,
        "Mg": 3.80e-5,
        "Al": 2.95e-6,
        "Si": 3.55e-5,
        "P": 2.82e-7,
        "S": 1.62e-5,
        "Cl": 3.16e-7,
        "Ar": 3.63e-6,
        "K": 1.32e-7,
        "Ca": 2.29e-6,
        "Sc": 1.26e-9,
        "Ti": 9.77e-8,
        "V": 1.00e-8,
        "Cr": 4.68e-7,
        "Mn": 2.45e-7,
        "Fe": 4.68e-5,
        "Co": 8.32e-8,
        "Ni": 1.78e-6,
        "Cu": 1.62e-8,
        "Zn": 3.98e-8,
    },
    "wilm": {
        "H": 1.0,
        "He": 9.77e-2,
        "C": 2.40e-4,
        "N": 7.59e-5,
        "O": 4.90e-4,
        "Ne": 8.71e-5,
        "Na": 1.45e-6,
        "Mg": 2.51e-5,
        "Al": 2.14e-6,
        "Si": 1.86e-5,
        "P": 2.63e-7,
        "S": 1.23e-5,
        "Cl": 1.32e-7,
        "Ar": 2.57e-6,
        "Ca": 1.58e-6,
        "Ti": 6.46e-8,
        "Cr": 3.24e-7,
        "Mn": 2.19e-7,
        "Fe": 2.69e-5,
        "Co": 8.32e-8,
        "Ni": 1.12e-6,
    },
}
DEFAULT_TABLE = "wilm"
_E_MIN_TABLE = 0.1  # keV: the Elam tables start at 100 eV


def _check_table(table: str) -> str:
    if table not in ABUNDANCES:
        raise PhysicsError(f"unknown abundance table {table!r}; choose one of {sorted(ABUNDANCES)}.")
    return table


@lru_cache(maxsize=32)
def _cross_section_cached(energies: tuple[float, ...], table: str) -> np.ndarray:
    import xraydb

    e_ev = np.clip(np.asarray(energies), _E_MIN_TABLE, None) * 1e3
    sigma = np.zeros(e_ev.size)
    for el, abund in ABUNDANCES[table].items():
        if abund <= 0:
            continue
        mass_g = xraydb.atomic_mass(el) / AVOGADRO
        sigma += abund * np.asarray(xraydb.mu_elam(el, e_ev, kind="photo"), dtype=float) * mass_g
    sigma.setflags(write=False)
    return sigma


def cross_section(energy: np.ndarray, table: str = DEFAULT_TABLE) -> np.ndarray:
    """Photoabsorption cross section per H atom (cm2) at ``energy`` (keV, > 0) for ``table``."""
    e = np.atleast_1d(np.asarray(energy, dtype=float))
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise PhysicsError("cross_section needs finite energies > 0 keV.")
    return _cross_section_cached(tuple(e.ravel().tolist()), _check_table(table)).reshape(e.shape).copy()


def transmission(edges: np.ndarray, nH: float | np.ndarray, table: str = DEFAULT_TABLE) -> np.ndarray:
    """Bin-averaged transmission (n, E) for columns ``nH`` (1e22 cm-2, >= 0); Simpson over each bin."""
    edges = check_edges(edges)
    n = batch_size(nH)
    nh = as_param(nH, "nH", n, low=0.0)[:, None] * 1e22
    mid = 0.5 * (edges[:-1] + edges[1:])
    s_edges = cross_section(edges, table)[None, :]
    s_mid = cross_section(mid, table)[None, :]
    t_edges = np.exp(-nh * s_edges)
    return (t_edges[:, :-1] + 4.0 * np.exp(-nh * s_mid) + t_edges[:, 1:]) / 6.0
