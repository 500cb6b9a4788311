"""Tensor operations per SUSHI iteration (issue 19's launch-light target), counted on the CPU.

Every ATen operation dispatched while the solver runs is counted by a ``TorchDispatchMode``; the fit's
per-iteration callback records the running count, so the difference between two callbacks is the cost
of one iteration in operations (each one a kernel launch on a GPU). Reported for the thresholding
phase (``Progress.objective is None``) and the objective phase, as medians over their iterations, plus
the operations spent before the first iteration (coarse start, problem set-up).

Writes benchmarks/results/op_count.{json,md}.
Run:  .venv/bin/python benchmarks/bench_op_count.py [--preset toy] [--max-iter 40]   (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_sushi.core.simulate import simulate_remnant  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.spectral.registry import load_model  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "op_count"


class OpCounter(TorchDispatchMode):
    """Counts every dispatched ATen operation (total and by name)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.by_name: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.total += 1
        self.by_name[str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--max-iter", type=int, default=40)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sim = simulate_remnant(args.preset, 0)
    comps = [Component(c, load_model(f"{args.preset}-{c}-emulator")) for c in ("thermal", "powerlaw")]
    marks: list[tuple[int, bool]] = []
    counter = OpCounter()

    def callback(p) -> None:
        marks.append((counter.total, p.objective is not None))

    with counter:
        res = fit(sim.cube, comps, FitSettings(max_iter=args.max_iter, tol=0.0), callback=callback)
    totals = np.array([m[0] for m in marks])
    phase = np.array([m[1] for m in marks])
    per_iter = np.diff(totals)
    second = phase[1:]
    row = {
        "preset": args.preset,
        "pixels": int(np.prod(sim.cube.shape[1:])),
        "channels": int(sim.cube.shape[0]),
        "iterations": int(res.n_iter),
        "before_first_iteration": int(totals[0]) if totals.size else 0,
        "thresholding_median": float(np.median(per_iter[~second])) if np.any(~second) else None,
        "objective_median": float(np.median(per_iter[second])) if np.any(second) else None,
        "top_ops_per_iteration": {k: round(v / max(len(marks), 1), 1) for k, v in counter.by_name.most_common(12)},
        "torch": torch.__version__,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(row, indent=1))
    lines = [
        "# Tensor operations per SUSHI iteration (benchmarks/bench_op_count.py)",
        "",
        f"{row['preset']} cube ({row['pixels']} pixels x {row['channels']} channels), shipped emulators, "
        f"{row['iterations']} iterations (tol 0), one thread, torch {row['torch']}. Every dispatched ATen op counted.",
        "",
        "| phase | ops per iteration (median) |",
        "|---|---|",
        f"| thresholding | {row['thresholding_median']:.0f} |" if row["thresholding_median"] is not None else "",
        f"| objective | {row['objective_median']:.0f} |" if row["objective_median"] is not None else "",
        f"| before the first iteration (start, set-up) | {row['before_first_iteration']} in all |",
        "",
        "Most frequent ops (per recorded iteration, start included): "
        + ", ".join(f"{k} {v:g}" for k, v in row["top_ops_per_iteration"].items()),
    ]
    OUT.with_suffix(".md").write_text("\n".join(x for x in lines if x is not None) + "\n")
    print("\n".join(lines))
    return row


if __name__ == "__main__":
    main()
