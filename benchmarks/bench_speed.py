"""The solver's speed, old against new in one process (issue 19), with the emulators' lower bound.

The baseline is an earlier commit of this repository (``--baseline``, default 114782b: the solver before
issue 19), extracted with ``git archive`` into a temporary folder and imported as the package
``napari_sushi_base`` (its imports rewritten), so that both solvers run on the same cube in the same
process, interleaved (old, new, old, new, ...) at each thread count: the machine's load then affects
both alike. Per run: wall time to convergence (coarse start and uncertainties included), iterations,
the median time of one iteration (between two progress callbacks, so the start is excluded), the
final objective and the RMSE of each parameter against the truth. The lower bound is one forward and
one backward pass of both shipped emulators over all pixels (median of 7), measured in the same run.

``--baseline ""`` runs the new solver alone (e.g. on a machine without the git history: the device
session). Larger images (``--sizes``, default 256,512) run the new solver only, each in a subprocess of its own so
that its peak resident memory is its own (ru_maxrss).

Writes benchmarks/results/speed.{json,md}.
Run:  .venv/bin/python benchmarks/bench_speed.py [--baseline 114782b] [--repeats 3] [--threads 1,2]
      [--sizes 256,512]      (about 12 minutes on the 2-core CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "speed"
PARAMS = ("thermal kT", "thermal velocity", "powerlaw index")


def extract_baseline(commit: str, dest: Path) -> str:
    """The package at ``commit`` as ``napari_sushi_base`` under ``dest`` (imports rewritten); returns its name."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "napari_sushi"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    pkg = dest / "napari_sushi_base"
    (dest / "napari_sushi").rename(pkg)
    word = re.compile(r"\bnapari_sushi\b")
    for py in pkg.rglob("*.py"):
        py.write_text(word.sub("napari_sushi_base", py.read_text()))
    sys.path.insert(0, str(dest))
    return "napari_sushi_base"


class Solver:
    """One implementation's entry points (fit, models, simulator), imported from package ``pkg``."""

    def __init__(self, pkg: str) -> None:
        self.name = pkg
        self.simulate = importlib.import_module(f"{pkg}.core.simulate")
        self.settings = importlib.import_module(f"{pkg}.core.solver.settings")
        self.sushi = importlib.import_module(f"{pkg}.core.solver.sushi")
        self.registry = importlib.import_module(f"{pkg}.core.spectral.registry")

    def components(self) -> list:
        C = self.settings.Component
        return [C(c, self.registry.load_model(f"toy-{c}-emulator")) for c in ("thermal", "powerlaw")]

    def run(self, sim) -> dict:
        stamps: list[float] = []
        t0 = time.perf_counter()
        # the solver's own thread policy (where it has one) is told the count this run measures
        names = {f.name for f in dataclasses.fields(self.settings.FitSettings)}
        kw = {"threads": torch.get_num_threads()} if "threads" in names else {}
        res = self.sushi.fit(
            sim.cube,
            self.components(),
            self.settings.FitSettings(**kw),
            callback=lambda p: stamps.append(time.perf_counter()),
        )
        wall = time.perf_counter() - t0
        per_iter = float(np.median(np.diff(stamps))) if len(stamps) > 1 else float("nan")
        truth = sim.truth
        rmse = {}
        for k in PARAMS:
            err = np.asarray(res.params[k], float) - np.asarray(truth[k], float)
            rmse[k] = float(np.sqrt(np.nanmean(err**2)))
        return {
            "seconds": wall,
            "n_iter": int(res.n_iter),
            "per_iter": per_iter,
            "objective": float(res.provenance.get("objective", float("nan"))),
            "rmse_all_pixels": rmse,
        }


def emulator_bound(solver: Solver, sim) -> float:
    """Median time of one forward + backward pass of both emulators over every pixel of ``sim``."""
    n = int(np.prod(sim.cube.shape[1:]))
    gen = torch.Generator().manual_seed(0)
    times = []
    models = [c.model for c in solver.components()]
    thetas = []
    for m in models:
        lo = torch.as_tensor(m.bounds[:, 0], dtype=torch.float32)
        hi = torch.as_tensor(m.bounds[:, 1], dtype=torch.float32)
        thetas.append(lo + (hi - lo) * torch.rand(n, len(lo), generator=gen))
    for _ in range(7):
        t0 = time.perf_counter()
        for m, th in zip(models, thetas):
            x = th.clone().requires_grad_(True)
            s = m.spectrum(x)
            s.backward(torch.ones_like(s))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


_BIG = """
import json, os, resource, sys, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
from dataclasses import replace
from napari_sushi.core.simulate import get_preset, simulate_remnant
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.spectral.registry import load_model
sim = simulate_remnant(replace(get_preset("toy"), shape=({n}, {n})), 0)
del sim.expected
comps = [Component(c, load_model(f"toy-{{c}}-emulator")) for c in ("thermal", "powerlaw")]
t0 = time.perf_counter()
r = fit(sim.cube, comps, FitSettings(threads={threads}))
print(json.dumps({{"seconds": time.perf_counter() - t0, "n_iter": r.n_iter, "stop": r.stop_reason,
                  "maxrss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_big(n: int, threads: int) -> dict:
    code = _BIG.format(root=str(ROOT), n=n, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["per_iter"] = res["seconds"] / max(res["n_iter"], 1)
    res["pixels"] = n * n
    return res


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def write_markdown(report: dict, out: Path) -> None:
    lines = [
        "# Solver speed, old against new (benchmarks/bench_speed.py)",
        "",
        f"Machine: {report['machine']}. Baseline: {('commit ' + report['baseline'] + ' (imported as a second package)') if report['baseline'] else 'none'}; "
        f"toy cube 94x94x375, shipped emulators, default settings, {report['repeats']} interleaved runs each. "
        "Time to convergence includes the coarse start and the uncertainties; one iteration = median time "
        "between two progress callbacks.",
        "",
        "| threads | solver | seconds to convergence (median) | iterations (median) | s / iteration | "
        "iteration / emulators' fwd+bwd | final objective (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, block in report["toy"].items():
        bound = block["bound"]
        for name in ("old", "new"):
            runs = block[name]
            if not runs:
                continue
            lines.append(
                f"| {t} | {name} | {_median(runs, 'seconds'):.1f} | {_median(runs, 'n_iter'):.0f} | "
                f"{_median(runs, 'per_iter'):.3f} | {_median(runs, 'per_iter') / bound:.1f} | "
                f"{_median(runs, 'objective'):.1f} |"
            )
        if block["old"]:
            lines.append(
                f"| {t} | ratio old / new | {_median(block['old'], 'seconds') / _median(block['new'], 'seconds'):.2f} | "
                f"| {_median(block['old'], 'per_iter') / _median(block['new'], 'per_iter'):.2f} | | |"
            )
    lines += ["", "Emulators' forward + backward over all 8,836 pixels (the lower bound), median of 7:"]
    lines += [f"- {t} thread(s): {block['bound'] * 1e3:.1f} ms" for t, block in report["toy"].items()]
    lines += [
        "",
        "RMSE against the truth over all pixels (median of the runs; the accuracy tables use the scored selection):",
        "",
    ]
    lines += ["| threads | solver | " + " | ".join(PARAMS) + " |", "|---|---|" + "---|" * len(PARAMS)]
    for t, block in report["toy"].items():
        for name in ("old", "new"):
            if not block[name]:
                continue
            vals = [float(np.median([r["rmse_all_pixels"][k] for r in block[name]])) for k in PARAMS]
            lines.append(f"| {t} | {name} | " + " | ".join(f"{v:.4g}" for v in vals) + " |")
    if report.get("big"):
        lines += ["", "## Larger images (new solver, one subprocess each)", ""]
        lines += [
            "| image | threads | seconds | iterations | s / iteration | s / iteration / megapixel | peak RSS MB |"
        ]
        lines += ["|---|---|---|---|---|---|---|"]
        for b in report["big"]:
            n = int(round(b["pixels"] ** 0.5))
            lines.append(
                f"| {n}x{n} | {b['threads']} | {b['seconds']:.1f} | {b['n_iter']} | {b['per_iter']:.3f} | "
                f"{b['per_iter'] / (b['pixels'] / 1e6):.2f} | {b['maxrss_MB']:.0f} |"
            )
    lines += [f"\n{note}" for note in report.get("notes", [])]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="114782b", help="commit to compare with ('' for the new solver alone)")
    ap.add_argument("--out", type=Path, default=OUT, help="results path without suffix")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sizes", default="256,512", help="larger images for the new solver ('' for none)")
    ap.add_argument("--big-threads", default="1", help="thread counts of the larger images")
    args = ap.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",") if t]
    report: dict = {
        "machine": f"{os.uname().machine}, torch {torch.__version__}, device "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}",
        "baseline": args.baseline,
        "repeats": args.repeats,
        "toy": {},
        "big": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        old = Solver(extract_baseline(args.baseline, Path(tmp))) if args.baseline else None
        new = Solver("napari_sushi")
        sim_new = new.simulate.simulate_remnant("toy", 0)
        sim_old = old.simulate.simulate_remnant("toy", 0) if old is not None else None
        for t in threads:
            torch.set_num_threads(t)
            block: dict = {"old": [], "new": [], "bound": emulator_bound(new, sim_new)}
            for _ in range(args.repeats):
                if old is not None:
                    block["old"].append(old.run(sim_old))
                block["new"].append(new.run(sim_new))
                print(
                    t,
                    "old",
                    block["old"][-1]["seconds"] if old else "-",
                    "new",
                    block["new"][-1]["seconds"],
                    flush=True,
                )
            report["toy"][str(t)] = block
    for n in [int(s) for s in args.sizes.split(",") if s]:
        for t in [int(x) for x in args.big_threads.split(",") if x]:
            res = run_big(n, t)
            res["threads"] = t
            report["big"].append(res)
            print("big", n, t, res, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    write_markdown(report, args.out)
    return report


if __name__ == "__main__":
    main()
