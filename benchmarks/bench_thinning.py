"""Can the data choose the regularisation strength? Poisson thinning on zoo cases.

For each zoo case and each kmad (applied to kT, velocity and index; other maps at their setting):
fit the full cube and score it against truth (skill, slope), and fit a binomial half of the counts
(X1 ~ Binomial(X, 1/2), seed 1) and score the other half X2 = X - X1 by the Poisson deviance of the
half-fit's model (the two halves are independent Poisson draws of the same expected counts / 2).
A strength rule "pick the kmad of least held-out deviance" is useful only if that kmad also has
the best skill.

Writes benchmarks/results/thinning.json and .md.
Run:  .venv/bin/python benchmarks/bench_thinning.py [--cases 0,3,4,6,9] [--kmad 1.5,3,5,8]
      [--settings JSON]   (about 2 fits per case and kmad; ~12 minutes for the defaults)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_zoo import components, parse_cases  # noqa: E402

from napari_sushi.core.scoring import score_result  # noqa: E402
from napari_sushi.core.solver.settings import FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.zoo import simulate_zoo, zoo_cases  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "thinning"
KEYS = ["thermal kT", "thermal velocity", "powerlaw index", "thermal share"]


def held_out_deviance(model: np.ndarray, counts: np.ndarray) -> float:
    m = np.maximum(model.astype(float), 1e-9)
    x = counts.astype(float)
    return float(2 * np.sum(m - x + np.where(x > 0, x * np.log(np.maximum(x, 1) / m), 0.0)))


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="0,3,4,6,9")
    ap.add_argument("--kmad", default="1.5,3,5,8")
    ap.add_argument("--settings", default="{}")
    args = ap.parse_args(argv)
    base = json.loads(args.settings)
    rows = []
    for case in parse_cases(args.cases, zoo_cases()):
        sim, _ = simulate_zoo(case)
        rng = np.random.default_rng(1)
        x1 = rng.binomial(sim.cube.counts, 0.5)
        x2 = sim.cube.counts - x1
        half = replace(sim.cube, counts=x1.astype(np.int32))
        for km in (float(k) for k in args.kmad.split(",")):
            kw = dict(base)
            kw["kmad"] = {**kw.get("kmad", {}), "thermal.kT": km, "thermal.velocity": km, "powerlaw.index": km}
            full = fit(sim.cube, components(), FitSettings(max_iter=300, **kw))
            sc = score_result(sim, full)
            part = fit(half, components(), FitSettings(max_iter=300, **kw))
            rows.append(
                {
                    "case": case.name,
                    "kmad": km,
                    "held_out_deviance": held_out_deviance(part.model_total, x2),
                    "skill": {k: sc[k]["skill"] for k in KEYS},
                    "slope": {k: sc[k]["slope"] for k in KEYS},
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    write(rows, base)
    return rows


def write(rows: list[dict], base: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps({"settings": base, "rows": rows}, indent=1))
    lines = [
        "# Poisson thinning: does the held-out deviance pick the best strength?",
        "",
        f"Other settings: `{json.dumps(base)}`. The picked kmad (least held-out deviance) is in bold.",
        "",
        "| case | kmad | held-out deviance | " + " | ".join(f"{k} skill" for k in KEYS) + " |",
        "|---" * (3 + len(KEYS)) + "|",
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        sel = [r for r in rows if r["case"] == case]
        best = min(sel, key=lambda r: r["held_out_deviance"])
        for r in sel:
            km = f"**{r['kmad']:g}**" if r is best else f"{r['kmad']:g}"
            lines.append(
                f"| {case} | {km} | {r['held_out_deviance']:.1f} | "
                + " | ".join(f"{r['skill'][k]:.2f}" for k in KEYS)
                + " |"
            )
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
