"""SUSHI's sigma maps: per-pixel Fisher against the parametric bootstrap of the regularised fit.

For small simulated remnants (seeded; shipped toy emulators, default settings, max_iter 300) it fits
once and reports, per parameter map, over the scoring selection of ``napari_sushi.core.scoring``
(the component holds >= 20 % of the expected counts):
* coverage: share of pixels with |fit - truth| <= sigma (a 1-sigma should give about 68 %);
* coverage over the bright pixels only (component >= 50 expected counts);
* the share of sigmas at the box's spread (width / sqrt(12)) among the bright pixels;
* the median sigma against the map's RMSE;
and the bootstrap's wall time against the fit's. ``--fixed-anchor`` adds the variant whose replicas
keep the data's anchor U0 instead of redoing the coarse start on each replica.

Writes benchmarks/results/bootstrap.json and bootstrap.md.
Run:  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_bootstrap.py [--cases toy:48:0,faint:48:0]
      [--replicas 8] [--fixed-anchor]      (about 3 minutes for the two default cases on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_sushi.core.scoring import BRIGHT_COUNTS, score_result, selected  # noqa: E402
from napari_sushi.core.simulate import get_preset, simulate_remnant  # noqa: E402
from napari_sushi.core.solver import bootstrap as boot  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.spectral.registry import load_model  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
KEYS = ["thermal kT", "thermal velocity", "powerlaw index"]


def components() -> list[Component]:
    return [
        Component("thermal", load_model("toy-thermal-emulator")),
        Component("powerlaw", load_model("toy-powerlaw-emulator")),
    ]


def scores(sim, res) -> dict[str, dict]:
    """Coverage (all selected / bright), share at the cap (bright), median sigma and RMSE per map."""
    sc = score_result(sim, res)
    out = {}
    for k in KEYS:
        sel = selected(sim.truth, k)
        bright = sel & (sim.truth[f"{k.split(' ', 1)[0]} amplitude"] >= BRIGHT_COUNTS)
        err = np.abs(res.params[k] - sim.truth[k])
        cap = res.provenance["sigma_caps"][k]
        cov_b = float(np.mean(err[bright] <= res.sigmas[k][bright])) if bright.any() else float("nan")
        out[k] = {
            "coverage": sc[k]["coverage"],
            "coverage_bright": cov_b,
            "frac_sigma_at_cap": float(np.mean(res.sigmas[k][sel] >= 0.999 * cap)),
            "frac_sigma_at_cap_bright": sc[k].get("frac_sigma_at_cap_bright"),
            "n_bright": int(bright.sum()),
            "median_sigma": float(np.median(res.sigmas[k][sel])),
            "rmse": sc[k]["rmse"],
            "bias": sc[k]["bias"],
        }
    return out


def run_case(preset: str, size: int, seed: int, replicas: int, fixed_anchor: bool) -> dict:
    sim = simulate_remnant(replace(get_preset(preset), shape=(size, size)), seed)
    st = FitSettings(max_iter=300, n_bootstrap=replicas, seed=seed)
    t = time.perf_counter()
    fisher = fit(sim.cube, components(), st)
    row = {
        "case": f"{preset} {size}x{size} seed {seed}",
        "fit_seconds": time.perf_counter() - t,
        "n_iter": fisher.n_iter,
        "methods": {"fisher": scores(sim, fisher)},
    }
    variants = [("bootstrap", False)] + ([("bootstrap, fixed anchor", True)] if fixed_anchor else [])
    for name, fixed in variants:
        real = boot.coarse_anchor
        if fixed:
            boot.coarse_anchor = lambda *a, **k: None
        try:
            res = fit(sim.cube, components(), replace(st, uncertainty="bootstrap"))
        finally:
            boot.coarse_anchor = real
        row["methods"][name] = scores(sim, res)
        row[f"{name} seconds"] = res.provenance["sigma_seconds"]
        row[f"{name} iterations"] = res.provenance["bootstrap_iterations"]
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "# SUSHI sigma maps: Fisher vs parametric bootstrap",
        "",
        "Coverage = share of selected pixels with |fit - truth| <= sigma (68 % for an honest 1-sigma); "
        "'bright' = component >= 50 expected counts; 'at cap' = sigma at the box's spread (selected / bright pixels).",
        "",
        "| case | method | map | coverage | coverage bright | at cap | at cap bright | median sigma | RMSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for m, per in r["methods"].items():
            for k, v in per.items():
                cap = v["frac_sigma_at_cap_bright"]
                lines.append(
                    f"| {r['case']} | {m} | {k} | {v['coverage']:.3f} | {v['coverage_bright']:.3f} | "
                    f"{v['frac_sigma_at_cap']:.3f} | "
                    f"{'n/a' if cap is None else f'{cap:.3f}'} | {v['median_sigma']:.4g} | {v['rmse']:.4g} |"
                )
    lines += [
        "",
        "| case | fit (s) | " + " | ".join(k for k in rows[0] if k.endswith("seconds") and k != "fit_seconds") + " |",
        "|---|---|" + "---|" * sum(k.endswith("seconds") and k != "fit_seconds" for k in rows[0]),
    ]
    for r in rows:
        extra = [f"{r[k]:.1f}" for k in r if k.endswith("seconds") and k != "fit_seconds"]
        lines.append(f"| {r['case']} | {r['fit_seconds']:.1f} | " + " | ".join(extra) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="toy:48:0,faint:48:0", help="preset:size:seed, comma-separated")
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--fixed-anchor", action="store_true", help="also the variant keeping the data's anchor")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for case in args.cases.split(","):
        preset, size, seed = case.split(":")
        rows.append(run_case(preset, int(size), int(seed), args.replicas, args.fixed_anchor))
        print(markdown(rows[-1:]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bootstrap.json").write_text(json.dumps(rows, indent=1))
    (OUT / "bootstrap.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
