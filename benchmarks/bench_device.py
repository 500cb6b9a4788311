"""SUSHI speed on one device (GPU or CPU): the toy cube and larger simulated remnants, to convergence.

For the issue-5 GPU figures: time per iteration and to convergence for the toy (94x94x375) and for
512x512 pixels, with the peak device memory. Each size runs once to warm up (CUDA context, kernel
selection, the models' AD-or-differences choice), then ``--repeats`` timed runs; the median is kept.
The fit loop reads a scalar cost back every iteration, so the host clock measures the device work.

Writes benchmarks/results/device_<device>.json and .md.
Run:  .venv/bin/python benchmarks/bench_device.py [--device auto|cuda|mps|cpu] [--sizes 94,512] [--repeats 3]
                                                   [--compare] [--pixelfit]
      (--compare: the toy fit also on the CPU, both against truth, and the largest map difference;
       --pixelfit: also time the per-pixel fit of the toy on the device)
      (auto, the default: the GPU if there is one; without one it skips, so `make benchmarks` stays quick)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_solver import KEYS, PIXEL, SUSHI, components, map_errors  # noqa: E402
from napari_sushi.core.simulate import get_preset, simulate_remnant  # noqa: E402
from napari_sushi.core.solver.pixelfit import pixelfit  # noqa: E402
from napari_sushi.core.solver.settings import FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
TOY = 94  # the toy preset's image size


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def time_size(n: int, device: str, repeats: int) -> dict:
    """Median wall time, iterations and time per iteration of ``repeats`` fits of an n x n remnant."""
    pre = get_preset("toy") if n == TOY else replace(get_preset("toy"), shape=(n, n))
    cube = simulate_remnant(pre, 0).cube
    settings = FitSettings(**SUSHI, device=device)
    cuda = device.startswith("cuda")
    fit(cube, components(), replace(settings, max_iter=4))  # warm-up, not timed
    runs = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        r = fit(cube, components(), settings)
        if cuda:
            torch.cuda.synchronize()
        s = time.perf_counter() - t
        runs.append(
            {
                "seconds": s,
                "n_iter": r.n_iter,
                "per_iter": s / max(r.n_iter, 1),
                "stop": r.stop_reason,
                "device": r.device,
                "peak_device_MB": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
            }
        )
    med = {k: float(np.median([x[k] for x in runs])) for k in ("seconds", "n_iter", "per_iter")}
    return {"size": n, "runs": runs, **{f"median_{k}": v for k, v in med.items()}}


def compare_with_cpu(sim, device: str) -> dict:
    """The toy fit on ``device`` and on the CPU: RMSE/bias against truth for both, and how far the maps differ.

    The device path must give the CPU's answer (same objective, same minimiser); float reductions run
    in another order, so the maps agree to rounding, not bit for bit.
    """
    out = {}
    maps = {}
    for dev in (device, "cpu"):
        t = time.perf_counter()
        r = fit(sim.cube, components(), FitSettings(**SUSHI, device=dev))
        out[dev] = {
            "seconds": time.perf_counter() - t,
            "n_iter": r.n_iter,
            "stop": r.stop_reason,
            "errors": map_errors(sim, r.params),
        }
        maps[dev] = r.params
    out["max_abs_diff"] = {k: float(np.nanmax(np.abs(maps[device][k] - maps["cpu"][k]))) for k in KEYS}
    out["median_abs_diff"] = {k: float(np.nanmedian(np.abs(maps[device][k] - maps["cpu"][k]))) for k in KEYS}
    return out


def time_pixelfit(sim, device: str) -> dict:
    """One per-pixel fit of the toy cube on ``device`` (after a small warm-up), with its interval time."""
    pixelfit(sim.cube, components(), FitSettings(**{**PIXEL, "max_iter": 2}, device=device))
    t = time.perf_counter()
    r = pixelfit(sim.cube, components(), FitSettings(**PIXEL, device=device))
    return {
        "seconds": time.perf_counter() - t,
        "n_iter": r.n_iter,
        "sigma_seconds": r.provenance.get("sigma_seconds"),
        "errors": map_errors(sim, r.params),
    }


def write(report: dict, path_stem: Path) -> None:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = path_stem.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path_stem.with_suffix(".json"))
    lines = [
        f"# SUSHI on {report['device_name']} (`--device {report['device']}`)",
        "",
        f"torch {report['torch']}; defaults kmad {SUSHI['kmad']}, J {SUSHI['n_scales']}, "
        f"max_iter {SUSHI['max_iter']}; median of {report['repeats']} runs after one warm-up run.",
        "",
        "| image | iterations | seconds to convergence | seconds per iteration | peak device memory |",
        "|---|---|---|---|---|",
    ]
    for r in report["sizes"]:
        peak = r["runs"][-1]["peak_device_MB"]
        lines.append(
            f"| {r['size']}x{r['size']}x375 | {r['median_n_iter']:.0f} | {r['median_seconds']:.2f} | "
            f"{r['median_per_iter']:.4f} | {'-' if peak is None else f'{peak:.0f} MB'} |"
        )
    if "compare" in report:
        c, dev = report["compare"], report["device"]
        lines += [
            "",
            f"Toy fit on `{dev}` and on the CPU of the same machine, against truth "
            "(RMSE / bias over the accuracy selection of bench_solver):",
            "",
            f"| parameter | {dev} RMSE | {dev} bias | CPU RMSE | CPU bias | max abs map difference | median |",
            "|---|---|---|---|---|---|---|",
        ]
        for k in KEYS:
            a, b = c[dev]["errors"][k], c["cpu"]["errors"][k]
            lines.append(
                f"| {k} | {a['rmse']:.4g} | {a['bias']:.3g} | {b['rmse']:.4g} | {b['bias']:.3g} | "
                f"{c['max_abs_diff'][k]:.3g} | {c['median_abs_diff'][k]:.3g} |"
            )
        lines += [
            "",
            f"Iterations: {dev} {c[dev]['n_iter']} ({c[dev]['stop']}, {c[dev]['seconds']:.1f} s); "
            f"CPU {c['cpu']['n_iter']} ({c['cpu']['stop']}, {c['cpu']['seconds']:.1f} s, "
            f"{report['cpu_threads']} threads).",
        ]
    if "pixelfit" in report:
        p = report["pixelfit"]
        lines += [
            "",
            f"Per-pixel fit of the toy on `{report['device']}`: {p['seconds']:.1f} s "
            f"({p['n_iter']} iterations; of which intervals {p['sigma_seconds'] or 0:.1f} s).",
        ]
    tmp = path_stem.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path_stem.with_suffix(".md"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (a GPU, else skip), cuda, cuda:1, mps or cpu")
    ap.add_argument("--sizes", default=f"{TOY},512", help=f"image sizes n (n x n pixels; {TOY} = the toy cube)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compare", action="store_true", help="also fit the toy on the CPU and compare the maps")
    ap.add_argument("--pixelfit", action="store_true", help="also time the per-pixel fit of the toy")
    ap.add_argument("--out", type=Path, default=None, help="output stem (default benchmarks/results/device_<dev>)")
    args = ap.parse_args(argv)
    if args.device == "auto":
        if torch.cuda.is_available():
            args.device = "cuda"
        elif torch.backends.mps.is_available():
            args.device = "mps"
        else:
            print("bench_device: no GPU here, skipped (pass --device cpu to time the CPU).")
            return {}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; run on a GPU machine or pass --device cpu.")
    report = {
        "device": args.device,
        "device_name": device_name(args.device),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "cpu_threads": torch.get_num_threads(),
        "sizes": [],
    }
    if args.compare and args.device == "cpu":
        raise SystemExit("--compare compares a GPU with the CPU; with --device cpu there is nothing to compare.")
    stem = args.out or OUT / f"device_{args.device.replace(':', '')}"
    for n in (int(x) for x in args.sizes.split(",") if x):
        report["sizes"].append(time_size(n, args.device, args.repeats))
        print(
            json.dumps(
                {k: v for k, v in report["sizes"][-1].items() if k != "runs"}
                | {"peak_device_MB": report["sizes"][-1]["runs"][-1]["peak_device_MB"]}
            ),
            flush=True,
        )
        write(report, stem)  # after each part, so a run stopped at a time limit keeps what it measured
    toy = simulate_remnant("toy", 0) if args.compare or args.pixelfit else None
    if args.compare:
        report["compare"] = compare_with_cpu(toy, args.device)
        print(json.dumps(report["compare"]), flush=True)
        write(report, stem)
    if args.pixelfit:
        report["pixelfit"] = time_pixelfit(toy, args.device)
        print(json.dumps(report["pixelfit"]), flush=True)
        write(report, stem)
    return report


if __name__ == "__main__":
    main()
