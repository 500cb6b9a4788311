"""SUSHI over several noise realisations: is a change better, or did seed 0 happen to favour it?

For each preset and seed, and each setting compared, the RMSE and bias of every parameter map against
truth (the accuracy selection of bench_solver) and the count of single-pixel spikes: pixels more than
SPIKE (kT 0.5 keV, velocity 1500 km/s, index 0.3) off the median of their 3x3 neighbourhood, where the
simulated truth is smooth. Means over the seeds are reported per setting.

Settings compared: each ``--kmad`` value with the shipped penalty weights, and with ``--plain-weights``
also the weights without the few-photon floor (``engine.noise_weights`` before it: kmad ||h_j||
sqrt(information)), to reproduce the figures that motivated the floor.

Writes benchmarks/results/seeds.json (after every fit) and seeds.md.
Run:  .venv/bin/python benchmarks/bench_seeds.py [--seeds 0,1,2,3] [--presets toy,faint] [--kmad 5]
      [--plain-weights]
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
from scipy.ndimage import median_filter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_solver import KEYS, SUSHI, components, map_errors  # noqa: E402
import napari_sushi.core.solver.engine as engine  # noqa: E402
import napari_sushi.core.solver.objective as objective  # noqa: E402
from napari_sushi.core.simulate import get_preset, simulate_remnant  # noqa: E402
from napari_sushi.core.solver.settings import FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
SPIKE = {"thermal kT": 0.5, "thermal velocity": 1500.0, "powerlaw index": 0.3}
SHIPPED = (engine.noise_weights, objective.floored_information)


def plain_weights(kmad: torch.Tensor, hnorm: list[float], info: torch.Tensor) -> torch.Tensor:
    """The weights before the few-photon floor: kmad ||h_j|| sqrt(information)."""
    hn = torch.tensor(hnorm, dtype=info.dtype, device=info.device)[None, :, None, None]
    return kmad[:, None, None, None] * hn * info.sqrt()


def no_floor(kmad: torch.Tensor, hnorm: list[float], info: torch.Tensor) -> torch.Tensor:
    return info


def use_weights(rule: tuple) -> None:
    """(noise_weights, floored_information) for both phases."""
    engine.noise_weights = objective.noise_weights = rule[0]
    objective.floored_information = rule[1]


def spikes(maps: dict) -> dict[str, int]:
    """Pixels more than SPIKE off their 3x3 median, per parameter map."""
    return {k: int((np.abs(maps[k] - median_filter(maps[k], 3)) > SPIKE[k]).sum()) for k in KEYS}


def write(rows: list[dict], stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = stem.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(stem.with_suffix(".json"))
    lines = [
        "# SUSHI over noise realisations",
        "",
        "RMSE against truth (accuracy selection of bench_solver) and single-pixel spikes (kT > 0.5 keV, "
        "velocity > 1500 km/s, index > 0.3 off the 3x3 median), per fit and as means over the seeds.",
        "",
        "| preset | setting | seed | iterations | kT RMSE | velocity RMSE | index RMSE | spikes kT / v / index |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['setting']} | {r['seed']} | {r['n_iter']} | "
            + " | ".join(f"{r['rmse'][k]:.4g}" for k in KEYS)
            + " | "
            + " / ".join(str(r["spikes"][k]) for k in KEYS)
            + " |"
        )
    lines += [
        "",
        "Means over the seeds:",
        "",
        "| preset | setting | seeds | iterations | kT RMSE | velocity RMSE | index RMSE | spikes kT / v / index |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["setting"]), []).append(r)
    for (preset, setting), g in groups.items():
        lines.append(
            f"| {preset} | {setting} | {len(g)} | {np.mean([r['n_iter'] for r in g]):.0f} | "
            + " | ".join(f"{np.mean([r['rmse'][k] for r in g]):.4g}" for k in KEYS)
            + " | "
            + " / ".join(f"{np.mean([r['spikes'][k] for r in g]):.1f}" for k in KEYS)
            + " |"
        )
    tmp = stem.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(stem.with_suffix(".md"))


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--presets", default="toy,faint")
    ap.add_argument("--kmad", default="5", help="comma-separated kmad values")
    ap.add_argument("--plain-weights", action="store_true", help="also fit with the weights without the floor")
    ap.add_argument("--shape", type=int, default=None, help="image size n (n x n) instead of the preset's")
    ap.add_argument("--out", type=Path, default=OUT / "seeds")
    args = ap.parse_args(argv)
    rules = [("", SHIPPED)] + ([(" plain weights", (plain_weights, no_floor))] if args.plain_weights else [])
    rows: list[dict] = []
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            for name in args.presets.split(","):
                preset = get_preset(name) if args.shape is None else replace(get_preset(name), shape=(args.shape,) * 2)
                sim = simulate_remnant(preset, seed)
                for kmad in (float(k) for k in args.kmad.split(",")):
                    for label, rule in rules:
                        use_weights(rule)
                        t = time.perf_counter()
                        r = fit(sim.cube, components(), FitSettings(**{**SUSHI, "kmad": kmad}))
                        err = map_errors(sim, r.params)
                        rows.append(
                            {
                                "preset": name,
                                "seed": seed,
                                "setting": f"kmad {kmad:g}{label}",
                                "n_iter": r.n_iter,
                                "seconds": time.perf_counter() - t,
                                "rmse": {k: err[k]["rmse"] for k in KEYS},
                                "bias": {k: err[k]["bias"] for k in KEYS},
                                "spikes": spikes(r.params),
                            }
                        )
                        print(json.dumps(rows[-1]), flush=True)
                        write(rows, args.out)
    finally:
        use_weights(SHIPPED)
    return rows


if __name__ == "__main__":
    main()
