"""MSH 15-52 with the built-in thermal physics and with APEC, side by side in one run.

The models of scripts/msh1552_demo.py (thermal: kT free, velocity held at 0, N_H = 0.95e22; power law:
index 1-3.5, same N_H) are trained twice, the thermal one from the built-in physics and from APEC
(`--physics apec`, the optional nnapec extra); the power law is the same. SUSHI (defaults: global scan
start) fits the ObsID 754 cube (native channels 0.5-8 keV, 16x16 sky pixels) with each pair. Reported:
mean C-stat/dof over the field and over RCW 89's knots (bench_msh_starts.knots: >= 100 counts,
hardness ratio < -0.5), the knots' median kT and thermal share, the C-stat/dof of the single
brightest knot pixel, and the nebula's median photon index where the power law holds >= 70 % of the
counts.

Writes benchmarks/results/msh_physics.json and .md, and docs/images/msh_physics_maps.png.
Run:  .venv/bin/python benchmarks/bench_msh_physics.py   (about 9 minutes on 2 cores; needs
      ../shared/data/chandra_msh1552/ and `pip install 'napari-sushi[apec]'`)
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

from bench_msh_starts import knots  # noqa: E402
from msh1552_demo import EVENTS, msh_preset  # noqa: E402

from napari_sushi.core.io.events import bin_events  # noqa: E402
from napari_sushi.core.physics import apec  # noqa: E402
from napari_sushi.core.simulate import customise_preset  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.spectral.training import train_model  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "msh_physics"
FIGURE = ROOT / "docs" / "images" / "msh_physics_maps.png"
MIN_COUNTS = 30  # pixels with fewer counts are blank in the figure


def save_figure(
    counts: np.ndarray, maps: dict[str, dict[str, np.ndarray]], path: Path = FIGURE, title: str = "SUSHI defaults"
) -> None:
    """kT, thermal share and photon index maps of each run, side by side (rows: physics, or fits)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("thermal kT", "kT (keV)", "inferno", (0.2, 2.0)),
        ("thermal share", "thermal share", "viridis", (0, 1)),
        ("powerlaw index", "photon index", "cividis", (1.0, 3.5)),
    ]
    fig, axes = plt.subplots(len(maps), len(panels), figsize=(4.2 * len(panels), 3.8 * len(maps)), squeeze=False)
    for i, (physics, m) in enumerate(maps.items()):
        for j, (key, label, cmap, (lo, hi)) in enumerate(panels):
            img = np.where(counts >= MIN_COUNTS, m[key], np.nan)
            im = axes[i, j].imshow(img, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
            axes[i, j].set_title(f"{physics}: {label}")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            fig.colorbar(im, ax=axes[i, j], shrink=0.8)
    fig.suptitle(f"MSH 15-52 (ObsID 754), {title}; pixels with >= {MIN_COUNTS} counts")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)


def main() -> int:
    if not apec.available():
        print(f"needs the APEC emulator: {apec.INSTALL_HINT}", file=sys.stderr)
        return 2
    if not EVENTS.exists():
        print(f"needs {EVENTS}", file=sys.stderr)
        return 2
    base = msh_preset()
    powerlaw = train_model("emulator", preset=base, component="powerlaw", progress=False)
    cube = bin_events(EVENTS, band=(0.5, 8.0), native=True, binning=16)
    sel = knots(cube)
    counts = cube.counts.sum(0)
    brightest = np.unravel_index(np.argmax(np.where(sel, counts, -1)), counts.shape)
    rows = []
    maps: dict[str, dict[str, np.ndarray]] = {}
    for physics in ("builtin", "apec"):
        pre = base if physics == "builtin" else customise_preset(base, "thermal", physics="apec")
        t0 = time.perf_counter()
        thermal = train_model("emulator", preset=pre, component="thermal", progress=False)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = fit(cube, [Component("thermal", thermal), Component("powerlaw", powerlaw)], FitSettings())
        t_fit = time.perf_counter() - t0
        share = res.amplitudes["thermal"] / np.maximum(res.amplitudes["thermal"] + res.amplitudes["powerlaw"], 1e-9)
        nebula = (share < 0.3) & (counts >= 100)
        maps["built-in lines" if physics == "builtin" else "APEC"] = {
            "thermal kT": res.params["thermal kT"],
            "thermal share": share,
            "powerlaw index": res.params["powerlaw index"],
        }
        rows.append(
            {
                "physics": physics,
                "train_s": round(t_train, 1),
                "fit_s": round(t_fit, 1),
                "n_iter": res.n_iter,
                "cstat_dof": float(np.nanmean(res.gof)),
                "knots_cstat_dof": float(np.nanmean(res.gof[sel])),
                "knot_kT_median": float(np.nanmedian(res.params["thermal kT"][sel])),
                "knot_thermal_share": float(np.nanmedian(share[sel])),
                "brightest_knot": [int(brightest[0]), int(brightest[1])],
                "brightest_knot_counts": int(counts[brightest]),
                "brightest_knot_cstat_dof": float(res.gof[brightest]),
                "brightest_knot_kT": float(res.params["thermal kT"][brightest]),
                "nebula_index_median": float(np.nanmedian(res.params["powerlaw index"][nebula])),
                "n_knots": int(sel.sum()),
                "n_nebula": int(nebula.sum()),
            }
        )
        print(rows[-1], flush=True)
    OUT.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    save_figure(counts, maps)
    lines = [
        "# MSH 15-52: built-in thermal physics vs APEC (benchmarks/bench_msh_physics.py)",
        "",
        f"ObsID 754, native channels 0.5-8 keV, 16x16 sky pixels ({cube.shape[2]} x {cube.shape[1]} px, "
        f"{int(cube.counts.sum()):,} counts); SUSHI defaults; RCW 89's knots: {rows[0]['n_knots']} pixels "
        "(>= 100 counts, hardness ratio < -0.5); nebula: >= 100 counts and thermal share < 0.3 (each run's own).",
        "",
        "| thermal physics | C/dof field | C/dof knots | knots: median kT (keV) | knots: thermal share "
        "| brightest knot pixel: C/dof, kT | nebula: median index (pixels) | iterations | fit (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['physics']} | {r['cstat_dof']:.5f} | {r['knots_cstat_dof']:.4f} | {r['knot_kT_median']:.2f} "
            f"| {r['knot_thermal_share']:.2f} | {r['brightest_knot_cstat_dof']:.3f}, {r['brightest_knot_kT']:.2f} keV "
            f"({r['brightest_knot_counts']} counts) | {r['nebula_index_median']:.2f} ({r['n_nebula']}) "
            f"| {r['n_iter']} | {r['fit_s']:.0f} |"
        )
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
