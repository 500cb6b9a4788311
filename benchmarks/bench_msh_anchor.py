"""MSH 15-52 with SUSHI's default anchors, the earlier default and kT and the shares set by the data.

The morphology zoo (README) measured three choices of what the objective holds the maps to: the
default ("auto" anchors with regularised shares: coupled maps keep only the large scales of a start
shrunk to their level), the earlier default (every map anchored to its thresholded coarse start, free
per-pixel amplitudes) and regularised shares with kT and the shares anchored "free". This asks what
the choices do on real data: the models and cube of bench_msh_physics.py (built-in thermal physics,
velocity held at 0, N_H = 0.95e22; ObsID 754, native channels 0.5-8 keV, 16x16 sky pixels), fitted
both ways. Reported: C-stat/dof over the field and over RCW 89's knots (bench_msh_starts.knots), the
knots' median kT and thermal share, the nebula's median index (thermal share < 0.3, >= 100 counts),
and each component's total counts.

Writes benchmarks/results/msh_anchor.json and .md, and docs/images/msh_anchor_maps.png.
Run:  .venv/bin/python benchmarks/bench_msh_anchor.py   (a few minutes; needs ../shared/data/chandra_msh1552/)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_msh_physics import save_figure  # noqa: E402
from bench_msh_starts import knots  # noqa: E402
from msh1552_demo import EVENTS, msh_preset  # noqa: E402

from napari_sushi.core.io.events import bin_events  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.spectral.training import train_model  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "msh_anchor"
FIGURE = ROOT / "docs" / "images" / "msh_anchor_maps.png"
CHOICES = [  # (label in the table, row title in the figure, FitSettings)
    ("default (auto anchors, shares regularised)", "default", {}),
    (
        "earlier default (anchored to the start, free amplitudes)",
        "earlier default",
        {"regularise_shares": False, "anchor": "start"},
    ),
    (
        "shares regularised, kT and shares anchor free",
        "kT, shares free",
        {"regularise_shares": True, "anchor": {"thermal.kT": "free", "share": "free", "powerlaw.index": "start"}},
    ),
]


def main() -> int:
    if not EVENTS.exists():
        print(f"needs {EVENTS}", file=sys.stderr)
        return 2
    pre = msh_preset()
    comps = [
        Component(c, train_model("emulator", preset=pre, component=c, progress=False)) for c in ("thermal", "powerlaw")
    ]
    cube = bin_events(EVENTS, band=(0.5, 8.0), native=True, binning=16)
    sel = knots(cube)
    counts = cube.counts.sum(0)
    rows, maps = [], {}
    for label, short, settings in CHOICES:
        t0 = time.perf_counter()
        res = fit(cube, comps, FitSettings(**settings))
        share = res.amplitudes["thermal"] / np.maximum(res.amplitudes["thermal"] + res.amplitudes["powerlaw"], 1e-9)
        nebula = (share < 0.3) & (counts >= 100)
        maps[short] = {
            "thermal kT": res.params["thermal kT"],
            "thermal share": share,
            "powerlaw index": res.params["powerlaw index"],
        }
        rows.append(
            {
                "label": label,
                "settings": settings,
                "fit_s": round(time.perf_counter() - t0, 1),
                "n_iter": res.n_iter,
                "cstat_dof": float(np.nanmean(res.gof)),
                "knots_cstat_dof": float(np.nanmean(res.gof[sel])),
                "knot_kT_median": float(np.nanmedian(res.params["thermal kT"][sel])),
                "knot_thermal_share": float(np.nanmedian(share[sel])),
                "nebula_index_median": float(np.nanmedian(res.params["powerlaw index"][nebula])),
                "n_knots": int(sel.sum()),
                "n_nebula": int(nebula.sum()),
                "counts": {c: float(np.nansum(res.amplitudes[c])) for c in ("thermal", "powerlaw")},
            }
        )
        print(rows[-1], flush=True)
    OUT.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    save_figure(counts, maps, FIGURE, title="SUSHI: default / earlier default / kT and shares set by the data")
    lines = [
        "# MSH 15-52: what the objective holds the maps to (benchmarks/bench_msh_anchor.py)",
        "",
        f"ObsID 754, native channels 0.5-8 keV, 16x16 sky pixels ({cube.shape[2]} x {cube.shape[1]} px, "
        f"{int(cube.counts.sum()):,} counts); built-in thermal physics; RCW 89's knots: {rows[0]['n_knots']} "
        "pixels (>= 100 counts, hardness ratio < -0.5); nebula: >= 100 counts and thermal share < 0.3 (each "
        "run's own). Maps: docs/images/msh_anchor_maps.png.",
        "",
        "| fit | C/dof field | C/dof knots | knots: median kT (keV) | knots: thermal share | nebula: median index "
        "(pixels) | thermal / power-law counts | iterations | fit (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['cstat_dof']:.5f} | {r['knots_cstat_dof']:.4f} | {r['knot_kT_median']:.2f} "
            f"| {r['knot_thermal_share']:.2f} | {r['nebula_index_median']:.2f} ({r['n_nebula']}) "
            f"| {r['counts']['thermal']:,.0f} / {r['counts']['powerlaw']:,.0f} | {r['n_iter']} | {r['fit_s']:.0f} |"
        )
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
