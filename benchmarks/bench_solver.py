"""Solver benchmarks: accuracy vs truth (SUSHI vs per-pixel fit), uncertainty coverage, speed, memory,
and the objective curves of the reference fixed step vs proximal Newton on the same objective.

Writes benchmarks/results/solver.json and solver.md, and docs/images/cost_curves.png.
Run:  .venv/bin/python benchmarks/bench_solver.py [--parts accuracy,curves,speed,big] [--repeats 3]
      (--parts sushi re-runs only SUSHI of the accuracy part, keeping the stored per-pixel figures)
      (--parts pixel re-runs only the per-pixel fit of the accuracy part, keeping the stored SUSHI figures)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_sushi.core.simulate import simulate_remnant  # noqa: E402
from napari_sushi.core.solver.engine import State, iterate  # noqa: E402
from napari_sushi.core.solver.objective import minimise  # noqa: E402
from napari_sushi.core.solver.pixelfit import pixelfit  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.stopping import converged  # noqa: E402
from napari_sushi.core.solver.sushi import fit, prepare  # noqa: E402
from napari_sushi.core.spectral.registry import load_model  # noqa: E402

KEYS = ["thermal kT", "thermal velocity", "powerlaw index"]
SUSHI = dict(kmad=5.0, n_scales=3, max_iter=300)  # the defaults of FitSettings (kmad 5, J 3)
PIXEL = dict(max_iter=40, n_starts=4)
OUT = ROOT / "benchmarks" / "results"


def components(preset: str = "toy") -> list[Component]:
    return [
        Component("thermal", load_model(f"{preset}-thermal-emulator")),
        Component("powerlaw", load_model(f"{preset}-powerlaw-emulator")),
    ]


BOX_STD = {"thermal kT": 4.5 / 12**0.5, "thermal velocity": 12000.0 / 12**0.5, "powerlaw index": 2.5 / 12**0.5}
BOX_WIDTH = {k: v * 12**0.5 for k, v in BOX_STD.items()}
SELECTION = "truth: component amplitude >= 0.2 x total expected counts, and total expected counts > 0"


def selected(sim, key: str) -> np.ndarray:
    """(Y, X) bool: the pixels ``key`` is scored on (``SELECTION``)."""
    tot = sim.truth["thermal amplitude"] + sim.truth["powerlaw amplitude"]
    return (sim.truth[f"{key.split()[0]} amplitude"] >= 0.2 * tot) & (tot > 0)


def accuracy(sim, res) -> dict:
    """RMSE / bias / 1-sigma coverage per parameter over the pixels where the component holds >= 20 % of the counts.

    Selection (``SELECTION``): truth amplitude of the component >= 0.2 x the pixel's total expected
    counts AND total expected counts > 0 (a component does not hold 20 % of the counts of a pixel that
    has none; ``0 >= 0.2 * 0`` alone selected those too). Coverage: fraction of selected pixels with
    |estimate - truth| <= sigma; where the result has intervals (per-pixel fit), also the fraction with
    truth inside [lower, upper] and the fraction whose interval spans the whole box. Also the coverage
    over selected pixels with >= 1 expected count, and the fraction whose sigma is at the box std.
    """
    tot = sim.truth["thermal amplitude"] + sim.truth["powerlaw amplitude"]
    out = map_errors(sim, res.params)
    for k in KEYS:
        sel = selected(sim, k)
        e = (res.params[k] - sim.truth[k])[sel]
        sig = res.sigmas[k][sel]
        inside = np.abs(e) <= sig
        lit = tot[sel] >= 1.0
        r = {
            **out[k],
            "coverage": float(np.mean(inside)),
            "n_pixels": int(sel.sum()),
            "selection": SELECTION,
            "frac_sigma_at_cap": float(np.mean(sig >= 0.999 * BOX_STD[k])),
            "coverage_ge1count": float(np.mean(inside[lit])) if lit.any() else float("nan"),
        }
        if k in getattr(res, "intervals", {}):
            lo, hi = (b[sel] for b in res.intervals[k])
            t = sim.truth[k][sel]
            r["interval_coverage"] = float(np.mean((t >= lo) & (t <= hi)))
            r["frac_box_wide"] = float(np.mean(hi - lo >= 0.99 * BOX_WIDTH[k]))
        out[k] = r
    return out


def part_accuracy(report: dict, presets: list[str], sushi: bool = True, pixel: bool = True) -> None:
    """SUSHI and per-pixel fit on each preset; ``sushi=False`` / ``pixel=False`` re-run only the other
    one and keep the stored figures of the skipped one (from an earlier ``accuracy`` run), e.g. to
    measure a change of the SUSHI defaults without re-running the per-pixel fit."""
    for preset in presets:
        sim = simulate_remnant(preset, 0)
        comps = components("toy")
        old = report.get("accuracy", {}).get(preset, {})
        if not pixel and "pixelfit" not in old:
            raise SystemExit(f"no stored per-pixel figures for {preset!r}: run --parts accuracy first")
        if sushi or "sushi" not in old:
            t = time.perf_counter()
            s = fit(sim.cube, comps, FitSettings(**SUSHI))
            ts = time.perf_counter() - t
            rs = {"metrics": accuracy(sim, s), "n_iter": s.n_iter, "stop": s.stop_reason, "seconds": ts}
        else:
            rs = old["sushi"]
        if pixel:
            t = time.perf_counter()
            p = pixelfit(sim.cube, comps, FitSettings(**PIXEL))
            tp = time.perf_counter() - t
            rp = {
                "metrics": accuracy(sim, p),
                "n_iter": p.n_iter,
                "stop": p.stop_reason,
                "seconds": tp,
                "sigma_seconds": p.provenance.get("sigma_seconds"),
            }
        else:
            rp = old["pixelfit"]
        acc_s, acc_p = rs["metrics"], rp["metrics"]
        report.setdefault("accuracy", {})[preset] = {
            "sushi": rs,
            "pixelfit": rp,
            "rmse_ratio": {k: acc_s[k]["rmse"] / acc_p[k]["rmse"] for k in KEYS},
        }
        print(preset, json.dumps(report["accuracy"][preset]["rmse_ratio"]), flush=True)


def map_errors(sim, maps: dict) -> dict:
    """RMSE and bias against truth per parameter, over the accuracy selection (no sigmas needed)."""
    out = {}
    for k in KEYS:
        e = (maps[k] - sim.truth[k])[selected(sim, k)]
        out[k] = {"rmse": float(np.sqrt(np.mean(e**2))), "bias": float(np.mean(e))}
    return out


def part_curves(report: dict, iters_fixed: int, iters_newton: int) -> None:
    """Both step rules on the same objective Phi from the same start (the thresholding phase's result).

    Phi (see napari_sushi/core/solver/objective.py) is fixed once the start is: same weights, same
    anchor. "newton" is the default second phase (proximal Newton); "fixed" is the reference scheme's
    steps (0.1 / max(counts)) in the same primal-dual iteration. Records Phi per iteration, the final
    maps' errors and how far apart the two rules' maps end (RMS difference over the selection).
    """
    sim = simulate_remnant("toy", 0)
    settings = FitSettings(**SUSHI)
    t = time.perf_counter()
    problem, settings = prepare(sim.cube, components(), settings)  # as sushi.fit starts
    start = iterate(problem, settings, regularise=True)
    t_start = time.perf_counter() - t
    curves = {
        "start": {
            "seconds": t_start,
            "n_iter": start.n_iter,
            "accuracy": map_errors(sim, problem.unpack(start.A, start.U)),
        }
    }
    maps = {}
    for rule, n in (("newton", iters_newton), ("fixed", iters_fixed)):
        st = State(A=start.A.clone(), U=start.U.clone())
        trace = []
        run = replace(settings, max_iter=n, tol=0.0, snapshot_every=0)
        t = time.perf_counter()
        minimise(
            problem,
            run,
            st,
            step_rule=rule,
            callback=lambda p: trace.append((p.iteration, p.elapsed, p.objective, p.cost)),
        )
        maps[rule] = problem.unpack(st.A, st.U)
        curves[rule] = {
            "iteration": [x[0] for x in trace],
            "elapsed": [x[1] for x in trace],
            "objective": [x[2] for x in trace],
            "cost": [x[3] for x in trace],
            "seconds": time.perf_counter() - t,
            "accuracy": map_errors(sim, maps[rule]),
        }
        print(rule, n, curves[rule]["objective"][-1], json.dumps(curves[rule]["accuracy"]), flush=True)
    curves["map_difference"] = {}
    for k in KEYS:
        d = (maps["newton"][k] - maps["fixed"][k])[selected(sim, k)]
        curves["map_difference"][k] = float(np.sqrt(np.mean(d**2)))
    # where fit()'s stopping rule (tol, window of the defaults) would have stopped the newton rule
    obj_n = curves["newton"]["objective"]
    stop = next((i for i in range(1, len(obj_n) + 1) if converged(obj_n[:i], settings.tol, settings.window)), None)
    curves["newton"]["default_stop"] = (
        None
        if stop is None
        else {"iteration": stop, "objective": obj_n[stop - 1], "seconds": curves["newton"]["elapsed"][stop - 1]}
    )
    # the iteration at which each rule first comes within 1e-5 (relative) of the lower final objective
    best = min(curves[r]["objective"][-1] for r in ("newton", "fixed"))
    for r in ("newton", "fixed"):
        obj = np.asarray(curves[r]["objective"])
        hit = np.nonzero(obj <= best + 1e-5 * abs(best))[0]
        curves[r]["iterations_to_1e-5"] = int(curves[r]["iteration"][hit[0]]) if hit.size else None
    report["curves"] = curves
    plot_curves(curves)


def plot_curves(curves: dict) -> None:
    """docs/images/cost_curves.png from the ``curves`` part's figures (objective - lowest + 1, log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = min(min(curves[r]["objective"]) for r in ("newton", "fixed"))
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for rule in ("newton", "fixed"):
        c = curves[rule]
        label = {
            "newton": "proximal Newton (new)",
            "fixed": "fixed step: 0.1/max(counts) capped at 1/max curvature (reference)",
        }[rule]
        y = np.asarray(c["objective"]) - best + 1.0
        ax[0].loglog(c["iteration"], y, label=label)
        ax[1].loglog(c["elapsed"], y, label=label)
    ax[0].set_xlabel("iteration")
    ax[1].set_xlabel("seconds (2-core CPU)")
    for a in ax:
        a.set_ylabel("objective - lowest + 1")
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8)
    fig.suptitle("SUSHI objective on the toy cube (94x94x375), both step rules from the same start")
    fig.tight_layout()
    (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "images" / "cost_curves.png", dpi=110)


def part_speed(report: dict, repeats: int) -> None:
    sim = simulate_remnant("toy", 0)
    comps = components()
    runs = []
    for _ in range(repeats):
        r = fit(sim.cube, comps, FitSettings(**SUSHI))
        runs.append(
            {
                "seconds": r.wall_time,
                "n_iter": r.n_iter,
                "per_iter": r.wall_time / max(r.n_iter, 1),
                "stop": r.stop_reason,
            }
        )
    report["speed_toy"] = {
        "runs": runs,
        "median_seconds": float(np.median([x["seconds"] for x in runs])),
        "median_iterations": float(np.median([x["n_iter"] for x in runs])),
        "median_per_iter": float(np.median([x["per_iter"] for x in runs])),
    }
    print("speed", report["speed_toy"], flush=True)


_BIG = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from dataclasses import replace
from napari_sushi.core.simulate import get_preset, simulate_remnant
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.spectral.registry import load_model
pre = replace(get_preset("toy"), shape=({n}, {n}))
sim = simulate_remnant(pre, 0)
del sim.expected
comps = [Component("thermal", load_model("toy-thermal-emulator")), Component("powerlaw", load_model("toy-powerlaw-emulator"))]
r = fit(sim.cube, comps, FitSettings(**{sushi!r}))
print(json.dumps({{"seconds": r.wall_time, "n_iter": r.n_iter, "stop": r.stop_reason,
                  "maxrss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def part_big(report: dict, n: int) -> None:
    code = _BIG.format(root=str(ROOT), n=n, sushi=SUSHI)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["per_iter"] = res["seconds"] / max(res["n_iter"], 1)
    report[f"big_{n}"] = res
    print("big", res, flush=True)


def write_markdown(report: dict) -> None:
    lines = ["# Solver benchmark", "", f"Machine: {report['machine']}", ""]
    for preset, a in report.get("accuracy", {}).items():
        lines += [
            f"## Accuracy, `{preset}` preset (seed 0), pixels where the component has >= 20 % of the counts",
            "",
            f"Selection: {SELECTION}."
            + (
                ""
                if a["sushi"]["metrics"][KEYS[0]].get("selection") == SELECTION
                else " **The SUSHI columns were measured with the older selection (pixels with no expected counts "
                "included); re-run `--parts sushi`.**"
            ),
            "",
            "| parameter | SUSHI RMSE | SUSHI bias | per-pixel RMSE | per-pixel bias | ratio | per-pixel 1-sigma coverage |",
            "|---|---|---|---|---|---|---|",
        ]
        for k in KEYS:
            s, p = a["sushi"]["metrics"][k], a["pixelfit"]["metrics"][k]
            lines.append(
                f"| {k} | {s['rmse']:.3g} | {s['bias']:+.3g} | {p['rmse']:.3g} | {p['bias']:+.3g} | "
                f"{a['rmse_ratio'][k]:.2f} | {p['coverage']:.2f} |"
            )
        p0 = a["pixelfit"]["metrics"][KEYS[0]]
        if "interval_coverage" in p0:
            lines += [
                "",
                "Per-pixel 1-sigma diagnostics (sigma = half-width of the profile-likelihood Delta C = 1 "
                "interval; box std for unidentified parameters): coverage of the interval itself (truth in "
                "[lower, upper]); pixels whose interval spans the whole box (the pixel's data do not constrain "
                "the parameter); coverage over selected pixels with >= 1 expected count.",
                "",
                "| parameter | selected | sigma coverage | interval coverage | box-wide interval | "
                "sigma coverage (>= 1 count) |",
                "|---|---|---|---|---|---|",
            ]
            for k in KEYS:
                p = a["pixelfit"]["metrics"][k]
                lines.append(
                    f"| {k} | {p['n_pixels']} | {p['coverage']:.2f} | {p['interval_coverage']:.2f} | "
                    f"{p['frac_box_wide']:.2f} | {p['coverage_ge1count']:.2f} |"
                )
        sig_s = a["pixelfit"].get("sigma_seconds")
        lines += [
            "",
            f"SUSHI: {a['sushi']['n_iter']} iterations ({a['sushi']['stop']}), {a['sushi']['seconds']:.1f} s; "
            f"per-pixel fit: {a['pixelfit']['n_iter']} iterations over {PIXEL['n_starts']} starts, "
            f"{a['pixelfit']['seconds']:.1f} s"
            + (f" (of which {sig_s:.1f} s for the profile-likelihood uncertainties)" if sig_s is not None else "")
            + ".",
            "",
        ]
    if "speed_toy" in report:
        s = report["speed_toy"]
        lines += [
            "## Speed, toy cube 94x94x375",
            "",
            f"median {s['median_seconds']:.1f} s to convergence, "
            f"{s['median_iterations']:.0f} iterations, {s['median_per_iter']:.2f} s per iteration "
            f"({len(s['runs'])} runs).",
            "",
        ]
    for key in [k for k in report if k.startswith("big_")]:
        b = report[key]
        lines += [
            f"## {key.split('_')[1]}x{key.split('_')[1]}x375",
            "",
            f"{b['seconds']:.1f} s, {b['n_iter']} iterations "
            f"({b['per_iter']:.2f} s/iteration), peak RSS {b['maxrss_MB']:.0f} MB.",
            "",
        ]
    if "curves" in report:
        c = report["curves"]
        best_obj = min(c[r]["objective"][-1] for r in ("newton", "fixed"))
        lines += [
            "## Step rules on the toy cube: the same objective from the same start",
            "",
            f"Start: the thresholding phase ({c['start']['n_iter']} iterations, {c['start']['seconds']:.1f} s).",
            "",
            "| rule | iterations | seconds | final objective | iterations to within 1e-5 of the best | kT RMSE | velocity RMSE | index RMSE |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for rule in ("newton", "fixed"):
            v = c[rule]
            acc = v["accuracy"]
            lines.append(
                f"| {rule} | {v['iteration'][-1]} | {v['seconds']:.1f} | {v['objective'][-1]:.1f} | "
                f"{v['iterations_to_1e-5']} | " + " | ".join(f"{acc[k]['rmse']:.3g}" for k in KEYS) + " |"
            )
        ds = c["newton"].get("default_stop")
        if ds:
            lines += [
                "",
                f"fit()'s stopping rule (tol {SUSHI.get('tol', 1e-5)}, default) stops the newton rule at iteration "
                f"{ds['iteration']} ({ds['seconds']:.1f} s), objective {ds['objective']:.1f}: "
                f"{ds['objective'] - best_obj:.1f} above the lowest value found ({best_obj:.1f}).",
            ]
        lines += [
            "",
            "RMS difference between the two rules' final maps (same selection): "
            + ", ".join(f"{k} {v:.3g}" for k, v in c["map_difference"].items()),
        ]
        lines += ["", "![cost curves](../../docs/images/cost_curves.png)", ""]
    (OUT / "solver.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parts", default="accuracy,curves,speed,big")
    ap.add_argument("--presets", default="toy,faint")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fixed-iters", type=int, default=2000)
    ap.add_argument("--newton-iters", type=int, default=300)
    ap.add_argument("--big", type=int, default=256)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "solver.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report["machine"] = (
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    report["settings"] = {"sushi": SUSHI, "pixelfit": PIXEL}
    jobs = {
        "accuracy": lambda: part_accuracy(report, args.presets.split(",")),
        "pixel": lambda: part_accuracy(report, args.presets.split(","), sushi=False),
        "sushi": lambda: part_accuracy(report, args.presets.split(","), pixel=False),
        "curves": lambda: part_curves(report, args.fixed_iters, args.newton_iters),
        "speed": lambda: part_speed(report, args.repeats),
        "big": lambda: part_big(report, args.big),
    }
    for part in args.parts.split(","):
        jobs[part]()
        path.write_text(json.dumps(report, indent=1))  # after each part, so partial runs keep results
        write_markdown(report)


if __name__ == "__main__":
    main()
