"""Re-fit the built-in thermal line table (napari_sushi/core/physics/lines.py) to APEC line shares.

For every ion of ``lines.IONS`` the emissivity curve has four numbers: log10 T_peak, the widths of
its log-T Gaussian below and above the peak, and the equivalent width at the peak. They are fitted
so that the share of 0.5-7 keV photons in each ion's window (He-like and H-like K-alpha of O, Ne,
Mg, Si, S, Ar, Ca, Fe separately; the Fe-L/Ne complex 0.70-1.25 keV as one; and, weighted 3x, the
complexes the benchmark reports) matches the APEC
emulator (``pip install 'napari-sushi[apec]'``) over kT 0.3-10 keV, log-spaced, with 0.5-5 keV
weighted fully. The same share estimator as ``benchmarks/bench_line_shares.py`` is applied to
APEC; the built-in shares are computed from the line emissivities directly (its lines are narrow
Gaussians inside their windows). The fit starts from the table as it was before calibration
(``LITERATURE``); soft priors keep each T_peak within ~0.15 dex of it, each EW within ~0.5 dex and
the widths near 0.3 dex, so the result does not depend on what lines.py holds now.

    .venv/bin/python scripts/calibrate_lines.py        # prints the new IONS rows and the fit quality

Only facts and numbers go into lines.py: the printed rows are pasted into its ``IONS`` table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_line_shares as shares_bench  # noqa: E402

from napari_sushi.core.physics import apec  # noqa: E402
from napari_sushi.core.physics import lines as L  # noqa: E402
from napari_sushi.core.physics.continuum import bremsstrahlung  # noqa: E402

#: fit windows (rest keV) and the ions whose lines fall in them
FIT_WINDOWS = {
    "O VII": (0.55, 0.585),
    "O VIII": (0.645, 0.665),
    "Fe-L/Ne": (0.70, 1.25),
    "Mg XI": (1.30, 1.37),
    "Mg XII": (1.45, 1.50),
    "Si XIII": (1.80, 1.90),
    "Si XIV": (1.97, 2.04),
    "S XV": (2.40, 2.49),
    "S XVI": (2.59, 2.66),
    "Ar XVII": (3.08, 3.17),
    "Ar XVIII": (3.29, 3.36),
    "Ca XIX": (3.84, 3.93),
    "Ca XX": (4.07, 4.14),
    "Fe XXV": (6.55, 6.80),
    "Fe XXVI": (6.88, 7.05),
    **shares_bench.WINDOWS,  # the complexes the benchmark reports, fitted as such too
}
KTS = np.geomspace(0.3, 10.0, 36)
CORE = (KTS >= 0.5) & (KTS <= 5.0)
FITTED = [ion.name for ion in L.IONS if ion.name != "Ni XXVII"]  # Ni lies outside every window
#: the table before calibration (T_peak: ionisation-balance peaks of Bryans et al. 2009 rounded to
#: 0.1 dex; EW: rounded values of the order of standard CIE models): start and prior of the fit
LITERATURE = {  # ion: (log10 T_peak, width in dex on both sides, EW at the peak in eV)
    "O VII": (6.3, 0.30, 400.0),
    "O VIII": (6.5, 0.25, 360.0),
    "Ne IX": (6.6, 0.30, 200.0),
    "Ne X": (6.8, 0.25, 150.0),
    "Mg XI": (6.8, 0.30, 120.0),
    "Mg XII": (7.0, 0.25, 80.0),
    "Si XIII": (7.0, 0.30, 250.0),
    "Si XIV": (7.2, 0.25, 150.0),
    "S XV": (7.2, 0.30, 180.0),
    "S XVI": (7.4, 0.25, 100.0),
    "Ar XVII": (7.3, 0.30, 80.0),
    "Ar XVIII": (7.5, 0.25, 50.0),
    "Ca XIX": (7.5, 0.30, 70.0),
    "Ca XX": (7.7, 0.25, 40.0),
    "Fe XVII": (6.7, 0.25, 400.0),
    "Fe XX": (6.9, 0.25, 150.0),
    "Fe XXII": (7.05, 0.25, 100.0),
    "Fe XXIV": (7.25, 0.25, 80.0),
    "Fe XXV": (7.7, 0.30, 800.0),
    "Fe XXVI": (8.1, 0.25, 350.0),
}
PRIOR_T_DEX, PRIOR_W_DEX, PRIOR_EW_DEX, PRIOR_WEIGHT = 0.15, 0.15, 0.5, 0.2
assert set(FITTED) == set(LITERATURE)


def apec_targets() -> np.ndarray:
    """APEC share (len(KTS), windows) per fit window."""
    rows = [shares_bench.shares("apec", kt, FIT_WINDOWS) for kt in KTS]
    return np.array([[s[w] for w in FIT_WINDOWS] for s in rows])


def table(x: np.ndarray) -> tuple[L.Ion, ...]:
    """The ion table for parameter vector ``x`` (4 per fitted ion)."""
    fitted = dict(zip(FITTED, x.reshape(-1, 4), strict=True))
    out = []
    for ion in L.IONS:
        if ion.name in fitted:
            t, wb, wa, lew = fitted[ion.name]
            out.append(L.Ion(ion.name, ion.element, t, wb, wa, 10.0**lew))
        else:
            out.append(ion)
    return tuple(out)


class BuiltinShares:
    """Window shares of the built-in physics for a trial ion table, from the line emissivities."""

    def __init__(self) -> None:
        e = shares_bench.EDGES
        c = 0.5 * (e[1:] + e[:-1])
        band = (c > shares_bench.BAND[0]) & (c < shares_bench.BAND[1])
        self.continuum = bremsstrahlung(e, KTS, 0.0, 1.0)[:, band].sum(axis=1)
        self.kt = KTS[:, None]

    def __call__(self, ions: tuple[L.Ion, ...]) -> np.ndarray:
        arr = L.LineArrays(L.build_lines(ions))
        f = arr.fluxes(self.kt, slice(None))  # (kT, lines)
        in_band = (arr.energy > shares_bench.BAND[0]) & (arr.energy < shares_bench.BAND[1])
        total = self.continuum + f[:, in_band].sum(axis=1)
        cols = [f[:, (arr.energy > lo) & (arr.energy < hi)].sum(axis=1) for lo, hi in FIT_WINDOWS.values()]
        return np.stack(cols, axis=1) / total[:, None]


def main() -> int:
    if not apec.available():
        print(f"APEC emulator not available: {apec.INSTALL_HINT}", file=sys.stderr)
        return 2
    target = apec_targets()
    floor = 0.02 * target.max(axis=0) + 1e-6  # relative errors below 2 % of a window's peak share do not count
    reported = np.array([w in shares_bench.WINDOWS for w in FIT_WINDOWS])
    weight = np.where(CORE, 1.0, 0.3)[:, None] * np.where(reported, 3.0, 1.0)
    model = BuiltinShares()
    x0 = np.concatenate(
        [[LITERATURE[n][0], LITERATURE[n][1], LITERATURE[n][1], np.log10(LITERATURE[n][2])] for n in FITTED]
    )
    prior_t, prior_ew = x0[0::4].copy(), x0[3::4].copy()

    def residuals(x: np.ndarray) -> np.ndarray:
        s = model(table(x))
        r = weight * (np.log(s + floor) - np.log(target + floor))
        priors = [
            (x[0::4] - prior_t) / PRIOR_T_DEX,
            (x[1::4] - 0.3) / PRIOR_W_DEX,
            (x[2::4] - 0.3) / PRIOR_W_DEX,
            (x[3::4] - prior_ew) / PRIOR_EW_DEX,
        ]
        return np.concatenate([r.ravel(), PRIOR_WEIGHT * np.concatenate(priors)])

    lo = np.tile([5.8, 0.08, 0.08, -1.0], len(FITTED))
    hi = np.tile([8.6, 1.2, 1.2, 4.0], len(FITTED))
    fit = least_squares(residuals, np.clip(x0, lo, hi), bounds=(lo, hi), x_scale="jac", max_nfev=4000)
    ions = table(fit.x)
    after = model(ions)
    before = model(table(x0))
    print("# fitted ion table (paste into lines.IONS)")
    for ion in ions:
        print(
            f'        ("{ion.name}", "{ion.element}", {ion.log_t_peak:.2f}, {ion.width_below:.2f}, '
            f"{ion.width_above:.2f}, {ion.ew_peak:.4g}),"
        )
    print("\n# built-in / APEC share per fit window, kT 0.5-5 keV where APEC > 2 % of the window's peak")
    for j, w in enumerate(FIT_WINDOWS):
        ok = CORE & (target[:, j] > floor[j])
        rb, ra = before[ok, j] / target[ok, j], after[ok, j] / target[ok, j]
        print(f"{w:8s} before {rb.min():.2f}-{rb.max():.2f}  after {ra.min():.2f}-{ra.max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
