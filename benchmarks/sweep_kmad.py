"""Sweep of the SUSHI regularisation strength (kmad) and number of starlet scales (J) on the `toy` and
`faint` presets (seed 0, shipped toy emulators): RMSE / bias per parameter map against truth, over pixels
where the component holds >= 20 % of the counts, and the ratio to the per-pixel fit's RMSE read from
benchmarks/results/solver.json (the issue-5 criterion is ratio <= 0.7 for every map on both presets).

Writes benchmarks/results/kmad_sweep.json (after every fit, so a partial run keeps its rows) and kmad_sweep.md.
Run:  .venv/bin/python benchmarks/sweep_kmad.py [--kmad 1,3,5] [--scales 2,3,4] [--coarse 4]
      [--presets faint,toy] [--extra "powerlaw.index=6;*=3"] [--append]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_solver import KEYS, accuracy, components  # noqa: E402
from napari_sushi.core.simulate import simulate_remnant  # noqa: E402
from napari_sushi.core.solver.settings import FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "results"


def parse_kmad(text: str) -> float | dict[str, float]:
    """'3' -> 3.0; 'powerlaw.index=6;*=3' -> {"powerlaw.index": 6.0} with default 3 (key '*')."""
    if "=" not in text:
        return float(text)
    out = {}
    for item in text.split(";"):
        k, _, v = item.partition("=")
        out[k.strip()] = float(v)
    return out


def label(k: float | dict[str, float]) -> str:
    if isinstance(k, dict):
        return ", ".join(f"{a}={b:g}" for a, b in k.items())
    return f"{k:g}"


def run_one(sim, kmad, J: int, coarse: int) -> dict:
    st = dict(n_scales=J, max_iter=300, coarse_init=coarse)
    if isinstance(kmad, dict):
        st["kmad"] = {a: b for a, b in kmad.items() if a != "*"}
        st["kmad_default"] = kmad.get("*", 3.0)
    else:
        st["kmad"] = kmad
    t = time.perf_counter()
    r = fit(sim.cube, components("toy"), FitSettings(**st))
    return {"metrics": accuracy(sim, r), "n_iter": r.n_iter, "stop": r.stop_reason, "seconds": time.perf_counter() - t}


def write_markdown(rows: list[dict], pix: dict) -> None:
    lines = [
        "# SUSHI regularisation sweep (kmad x J)",
        "",
        "RMSE against truth over pixels where the component holds >= 20 % of the counts (seed 0, shipped "
        "toy emulators); `ratio` = SUSHI RMSE / per-pixel fit RMSE (from benchmarks/results/solver.json); "
        "issue 5 asks ratio <= 0.7 for every map on both presets. `coarse_init` = binning of the coarse fit the parameter maps start from (1 = the models' default values). `worst` is the largest ratio of a row.",
        "",
        "Per-pixel RMSE used: " + "; ".join(f"{p}: " + ", ".join(f"{k} {pix[p][k]:.3g}" for k in KEYS) for p in pix),
        "",
        "| preset | kmad | J | coarse_init | iters | s | "
        + " | ".join(f"{k} RMSE (bias) ratio" for k in KEYS)
        + " | worst |",
        "|---|---|---|---|---|---|" + "---|" * len(KEYS) + "---|",
    ]
    for r in rows:
        m = r["metrics"]
        ratios = [m[k]["rmse"] / pix[r["preset"]][k] for k in KEYS]
        cells = [f"{m[k]['rmse']:.3g} ({m[k]['bias']:+.2g}) {q:.2f}" for k, q in zip(KEYS, ratios)]
        lines.append(
            f"| {r['preset']} | {r['kmad']} | {r['J']} | {r.get('coarse_init', 1)} | {r['n_iter']} | {r['seconds']:.0f} | "
            + " | ".join(cells)
            + f" | {max(ratios):.2f} |"
        )
    (OUT / "kmad_sweep.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kmad", default="1,3,5", help="comma-separated kmad values")
    ap.add_argument("--scales", default="2,3,4", help="comma-separated J values")
    ap.add_argument("--presets", default="faint,toy")
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        help="a per-parameter kmad setting 'comp.param=K;*=DEFAULT', run with every J; repeatable",
    )
    ap.add_argument("--coarse", default="4", help="comma-separated coarse_init factors (1 = start from defaults)")
    ap.add_argument("--append", action="store_true", help="keep the rows already in kmad_sweep.json")
    args = ap.parse_args()
    path = OUT / "kmad_sweep.json"
    rows = json.loads(path.read_text())["rows"] if args.append and path.exists() else []
    solver = json.loads((OUT / "solver.json").read_text())
    pix = {p: {k: v["rmse"] for k, v in a["pixelfit"]["metrics"].items()} for p, a in solver["accuracy"].items()}
    grid = [parse_kmad(k) for k in args.kmad.split(",")] + [parse_kmad(e) for e in args.extra]
    for preset in args.presets.split(","):
        sim = simulate_remnant(preset, 0)
        for kmad in grid:
            for J, c in [(int(j), int(c)) for j in args.scales.split(",") for c in args.coarse.split(",")]:
                r = {"preset": preset, "kmad": label(kmad), "J": J, "coarse_init": c, **run_one(sim, kmad, J, c)}
                rows.append(r)
                print(
                    preset,
                    r["kmad"],
                    J,
                    c,
                    r["n_iter"],
                    f"{r['seconds']:.0f}s",
                    {k: round(r["metrics"][k]["rmse"] / pix[preset][k], 3) for k in KEYS},
                    flush=True,
                )
                path.write_text(json.dumps({"pixelfit_rmse": pix, "rows": rows}, indent=1))
                write_markdown(rows, pix)


if __name__ == "__main__":
    main()
