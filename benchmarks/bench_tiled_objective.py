"""Is a tiled fit's answer as good a minimum of the whole field's objective as the whole-cube fit's?

For each 192x192 zoo field (``--seeds``): the whole-cube SUSHI fit, keeping its objective Phi (anchor =
the coarse start, weights from its own first phase); then Phi evaluated at the maps of (a) the whole
fit itself, (b) the tiled fit (``--tile``, default halo, on ``--workers``), (c) the same whole fit run in
float64, each brought back to the solver's variables the same way (a warm start from the float32 maps),
so that (a) measures the conversion's own rounding. Reported: Phi - Phi(a), absolute and relative.
Writes benchmarks/results/tiled_objective.json and .md.

Run:  .venv/bin/python benchmarks/bench_tiled_objective.py [--seeds 1 2] [--tile 96] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from napari_sushi.core.cluster import dask_client  # noqa: E402
from napari_sushi.core.solver.engine import _sum  # noqa: E402
from napari_sushi.core.solver.problem import build_sushi_problem  # noqa: E402
from napari_sushi.core.solver.settings import FitSettings  # noqa: E402
from napari_sushi.core.solver.assemble import assemble  # noqa: E402
from napari_sushi.core.solver.sushi import fit, prepare, solve  # noqa: E402
from napari_sushi.core.solver.threads import fit_threads  # noqa: E402
from napari_sushi.core.solver.tiled import Maps, tiled_fit  # noqa: E402
from napari_sushi.core.zoo import ZooCase, simulate_zoo  # noqa: E402
from bench_zoo import components  # noqa: E402  (the toy emulators, as the zoo benchmark fits them)

OUT = ROOT / "benchmarks" / "results" / "tiled_objective"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shape", type=int, default=192)
    ap.add_argument("--tile", type=int, default=96)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    st = FitSettings()
    rows = []
    with dask_client(workers=args.workers) as client:
        for seed in args.seeds:
            cube = simulate_zoo(ZooCase(seed, 1.0, (args.shape, args.shape)))[0].cube
            with fit_threads(st):  # the whole fit, step by step as sushi.fit runs it, keeping its objective
                problem, st_f = prepare(cube, components(), st)
                state, pen, phases = solve(problem, st_f)
                whole = assemble(problem, state, st_f, "sushi", 0.0, phases)
            assert pen is not None
            tiled = tiled_fit(cube, components(), st, tile=args.tile, client=client)
            f64 = fit(cube, components(), replace(st, dtype="float64"))
            bare = components()  # (no init: the warm start gives every map)

            def phi(res) -> float:
                with fit_threads(st):
                    wp = build_sushi_problem(cube, bare, replace(st, warm_start=Maps(res.params, res.amplitudes)))
                    return _sum(problem.costs(wp.A0, wp.U0)) + pen.penalty_of(pen.coefficients(wp.U0))

            ref = phi(whole)
            row = {"seed": seed, "tile": args.tile, "phi_solver": state.objective[-1], "phi_whole_maps": ref}
            for label, res in (("tiled", tiled), ("float64", f64)):
                v = phi(res)
                row[label] = {"phi": v, "minus_whole": v - ref, "relative": (v - ref) / abs(ref)}
            print(json.dumps(row), flush=True)
            rows.append(row)
            Path(str(OUT) + ".json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# The whole field's objective at tiled and whole-cube maps (benchmarks/bench_tiled_objective.py)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_tiled_objective.py {' '.join(sys.argv[1:])}`. Phi is the",
        "whole-cube fit's objective (its anchor and weights); each map set is brought back to the solver's",
        "variables the same way, so the whole fit's own row is the reference (0).",
        "",
        "| seed | Phi (whole maps) | tiled: Phi - whole | relative | whole fit in float64: Phi - whole | relative |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, f = r["tiled"], r["float64"]
        lines.append(
            f"| {r['seed']} | {r['phi_whole_maps']:.6g} | {t['minus_whole']:+.4g} | {t['relative']:+.2e} | "
            f"{f['minus_whole']:+.4g} | {f['relative']:+.2e} |"
        )
    Path(str(OUT) + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
