"""Tiled fits of a large field against the whole-cube fit (issue 20): accuracy, agreement, seams, time.

A 192x192 zoo remnant (``--seeds``; toy instrument, 1x counts) is fitted whole and in tiles of
``--tiles`` pixels (96 -> 4 tiles, 64 -> 9 tiles) with the default halo, in this process or on a Dask
LocalCluster (``--workers N``). Per parameter: RMSE against the truth over the scoring selection
(``core.scoring``), the tiled RMSE's change relative to the whole fit's (target within 2 %), the RMS
difference between the tiled and whole maps as a fraction of the whole fit's RMSE (target < 0.1), the
seams (largest disagreement between neighbouring tiles next to their border) and wall times side by side.
Writes benchmarks/results/tiled.json and tiled.md.

Run:  .venv/bin/python benchmarks/bench_tiled.py [--shape 192] [--tiles 96 64] [--seeds 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from napari_sushi.core.cluster import dask_client  # noqa: E402
from napari_sushi.core.scoring import score_result  # noqa: E402
from napari_sushi.core.solver.settings import FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.solver.tiled import tiled_fit  # noqa: E402
from napari_sushi.core.zoo import ZooCase, simulate_zoo  # noqa: E402
from bench_zoo import components  # noqa: E402  (the toy emulators, as the zoo benchmark fits them)

OUT = ROOT / "benchmarks" / "results" / "tiled"
PARAMS = ["thermal kT", "thermal velocity", "powerlaw index"]
SHARES = ["thermal share", "powerlaw share"]


def compare(sim, whole, tiled) -> dict:
    """Per map: RMSE of each against truth, relative RMSE change, RMS(tiled - whole) / RMSE(whole)."""
    sw, st = score_result(sim, whole), score_result(sim, tiled)
    out = {}
    for key in PARAMS + SHARES:
        if key not in sw:
            continue
        if key in PARAMS:
            sel = np.isfinite(whole.params[key]) & np.isfinite(tiled.params[key])
            diff = float(np.sqrt(np.mean((tiled.params[key][sel] - whole.params[key][sel]) ** 2)))
        else:
            comp = key.split()[0]
            tw = sum(whole.amplitudes.values())
            tt = sum(tiled.amplitudes.values())
            lit = tw > 0
            diff = float(
                np.sqrt(np.mean((tiled.amplitudes[comp][lit] / tt[lit] - whole.amplitudes[comp][lit] / tw[lit]) ** 2))
            )
        r_w, r_t = float(sw[key]["rmse"]), float(st[key]["rmse"])
        out[key] = {
            "rmse_whole": r_w,
            "rmse_tiled": r_t,
            "rmse_change": (r_t - r_w) / r_w,
            "diff_rms": diff,
            "diff_over_rmse": diff / r_w,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, default=192)
    ap.add_argument("--tiles", type=int, nargs="+", default=[96, 64])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--workers", type=int, default=None, help="Dask LocalCluster workers for the tiles")
    ap.add_argument("--rounds", type=int, default=3, help="tiled_fit's rounds (passes over the tiles) at most")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the whole-cube fit's own reproducibility rows (float64; tol 1e-6), two more whole fits",
    )
    args = ap.parse_args()
    rows = []
    st = FitSettings()
    with dask_client(workers=args.workers) as client:
        for seed in args.seeds:
            sim, kinds = simulate_zoo(ZooCase(seed, 1.0, (args.shape, args.shape)))
            t = time.perf_counter()
            whole = fit(sim.cube, components(), st)
            t_whole = time.perf_counter() - t
            print(f"seed {seed}: whole {t_whole:.1f} s, {whole.n_iter} iterations ({whole.stop_reason})", flush=True)
            refs = {}
            if not args.no_reference:  # how far the whole fit itself moves with rounding and convergence
                for label, other in (("float64", {"dtype": "float64"}), ("tol 1e-6", {"tol": 1e-6, "max_iter": 600})):
                    ref = fit(sim.cube, components(), FitSettings(**other))
                    refs[label] = compare(sim, whole, ref)
                    print(f"reference {label}: {json.dumps(refs[label])}", flush=True)
            for tile in args.tiles:
                t = time.perf_counter()
                tiled = tiled_fit(sim.cube, components(), st, tile=tile, rounds=args.rounds, client=client)
                t_tiled = time.perf_counter() - t
                tiling = tiled.provenance["tiling"]
                row = {
                    "seed": seed,
                    "kinds": kinds,
                    "shape": args.shape,
                    "tile": tile,
                    "halo": tiling["halo"],
                    "n_tiles": tiling["n_tiles"],
                    "workers": args.workers or 0,
                    "max_rounds": args.rounds,
                    "seconds_whole": t_whole,
                    "seconds_tiled": t_tiled,
                    "iterations_whole": int(whole.n_iter),
                    "rounds": tiling["rounds"],
                    "seams": tiling["seams"],
                    "maps": compare(sim, whole, tiled),
                    "reference": refs,
                }
                rows.append(row)
                print(json.dumps(row["maps"], indent=1), flush=True)
                Path(args.out + ".json").write_text(json.dumps(rows, indent=1))
    write_md(rows, Path(args.out + ".md"), " ".join(sys.argv[1:]))


def write_md(rows: list[dict], path: Path, argv: str) -> None:
    lines = [
        "# Tiled fits against the whole-cube fit (benchmarks/bench_tiled.py)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_tiled.py {argv}`; one CPU thread per fit (per worker).",
        "Targets (issue 20): tiled RMSE within 2 % of the whole fit's; RMS(tiled - whole) < 0.1 x RMSE.",
        "",
        "| seed | tiles (x size + halo) | map | RMSE whole | RMSE tiled | change | RMS(tiled-whole) | / RMSE | seam |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for key, m in r["maps"].items():
            seam = r["seams"].get(key)
            lines.append(
                f"| {r['seed']} | {r['n_tiles']} x {r['tile']}+{r['halo']} | {key} | {m['rmse_whole']:.4g} | "
                f"{m['rmse_tiled']:.4g} | {100 * m['rmse_change']:+.2f} % | {m['diff_rms']:.3g} | "
                f"{m['diff_over_rmse']:.3f} | {'' if seam is None else f'{seam:.3g}'} |"
            )
    refs = [(r["seed"], label, m) for r in rows[:1] for label, m in r.get("reference", {}).items()]
    if refs:
        lines += [
            "",
            "For scale, the whole-cube fit against itself with another rounding (float64) or a tighter stopping",
            "test (tol 1e-6, max_iter 600): RMS(other - default) / RMSE of the default, per map.",
            "",
            "| seed | whole fit with | " + " | ".join(rows[0]["maps"]) + " |",
            "|---|---|" + "---|" * len(rows[0]["maps"]),
        ]
        for seed, label, m in refs:
            lines.append(f"| {seed} | {label} | " + " | ".join(f"{m[k]['diff_over_rmse']:.3f}" for k in m) + " |")
    lines += [
        "",
        "| seed | tiles | workers | whole (s) | tiled (s) | rounds (at most): seconds, border move (box units) |",
    ]
    lines += ["|---|---|---|---|---|---|"]
    for r in rows:
        rounds = "; ".join(
            f"{x['seconds']:.0f} s" + ("" if x["border_move"] is None else f", {x['border_move']:.4f}")
            for x in r["rounds"]
        )
        lines.append(
            f"| {r['seed']} | {r['n_tiles']} | {r['workers'] or 'in process'} | {r['seconds_whole']:.1f} | "
            f"{r['seconds_tiled']:.1f} | ({r.get('max_rounds', 3)}) {rounds} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
