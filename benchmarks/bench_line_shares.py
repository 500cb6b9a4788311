"""Line shares of the built-in thermal physics against APEC (the nnapec emulator).

Share of a line complex = line photons of the metals in the complex's window / all photons in
0.5-7 keV, at the plasma's rest frame, no absorption, no instrument. Metal photons = spectrum at
abundance 1 minus abundance 0; their smooth continuum (free-free and free-bound of the metals, which
APEC has and the built-in physics lacks) is removed as the straight line between the window's
sidebands. The same estimator is applied to both codes.

    .venv/bin/python benchmarks/bench_line_shares.py      # writes benchmarks/results/line_shares.{json,md}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from napari_sushi.core.physics import apec as A
from napari_sushi.core.physics.thermal import thermal

WINDOWS = {  # keV, rest frame: He-like + H-like complexes (Fe-L: Fe XVII-XXIV with Ne IX/X inside)
    "Fe-L/Ne 0.70-1.25": (0.70, 1.25),
    "Si 1.78-2.06": (1.78, 2.06),
    "S 2.40-2.66": (2.40, 2.66),
    "Ar 3.08-3.36": (3.08, 3.36),
    "Ca 3.84-4.14": (3.84, 4.14),
    "Fe K 6.55-7.05": (6.55, 7.05),
}
BAND = (0.5, 7.0)
KTS = (0.5, 0.7, 0.85, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
#: shares below this (a hundredth of a percent of the photons) are not compared
MIN_SHARE = 1e-4
EDGES = np.arange(0.4, 7.2 + 1e-9, 0.005)  # the band plus room for the sidebands


def spectrum(code: str, kt: float, abundance: float) -> np.ndarray:
    """Photons per bin of EDGES for one plasma of the given code ("apec" or "builtin")."""
    if code == "apec":
        return A.apec(EDGES, kt, abundance=abundance)[0]
    return thermal(EDGES, kt, abundance=abundance)[0]


def window_shares(full: np.ndarray, bare: np.ndarray, windows: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Metal line photons (``full`` - ``bare``, sideband continuum removed) per window / all
    photons of ``full`` in BAND."""
    c = 0.5 * (EDGES[1:] + EDGES[:-1])
    total = full[(c > BAND[0]) & (c < BAND[1])].sum()
    d = full - bare
    out = {}
    for k, (lo, hi) in windows.items():
        # the metals' own continuum (free-free, free-bound) is smooth: take it as the straight line
        # between the window's sidebands (lower quintile of 50 eV beside each end) and remove it
        left = np.percentile(d[(c > lo - 0.05) & (c < lo)], 20)
        right = np.percentile(d[(c > hi) & (c < hi + 0.05)], 20)
        w = (c > lo) & (c < hi)
        cont = left + (right - left) * (c[w] - lo) / (hi - lo)
        out[k] = float(max((d[w] - cont).sum(), 0.0) / total)
    return out


def shares(code: str, kt: float, windows: dict[str, tuple[float, float]] = WINDOWS) -> dict[str, float]:
    return window_shares(spectrum(code, kt, 1.0), spectrum(code, kt, 0.0), windows)


def main(out_dir: Path = Path(__file__).parent / "results") -> int:
    if not A.available():
        print(f"APEC emulator not available: {A.INSTALL_HINT}", file=sys.stderr)
        return 2
    table = {kt: {"builtin": shares("builtin", kt), "apec": shares("apec", kt)} for kt in KTS}
    (out_dir / "line_shares.json").write_text(json.dumps({str(k): v for k, v in table.items()}, indent=1))
    lines = [
        "# Line shares of 0.5-7 keV photons: built-in physics vs APEC (nnapec emulator)",
        "",
        "`benchmarks/bench_line_shares.py`; share = metal line photons (abundance 1 - abundance 0, sideband continuum "
        "removed) in the window / all photons 0.5-7 keV; built-in / APEC (ratio, shown where APEC's share is "
        f">= {MIN_SHARE:g}; target 0.8-1.2). The line table was calibrated with `scripts/calibrate_lines.py`; "
        "the shares before that are in `line_shares_before_calibration.md`.",
        "",
        "| kT keV | " + " | ".join(WINDOWS) + " |",
        "|---" * (len(WINDOWS) + 1) + "|",
    ]
    for kt, row in table.items():
        cells = [
            f"{row['builtin'][w]:.4f} / {row['apec'][w]:.4f} ({row['builtin'][w] / row['apec'][w]:.2f})"
            if row["apec"][w] >= MIN_SHARE
            else f"{row['builtin'][w]:.4f} / {row['apec'][w]:.1e}"
            for w in WINDOWS
        ]
        lines.append(f"| {kt:g} | " + " | ".join(cells) + " |")
    (out_dir / "line_shares.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
