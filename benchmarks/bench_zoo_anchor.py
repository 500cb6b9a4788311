"""Where the zoo's errors come from: the level of the maps' anchor, not the detail the fit adds.

SUSHI's objective penalises departures from its starting maps (the anchor: the global scan and the
4x4-binned fit, see README "How the solver works", step 6). This benchmark asks, on every zoo case,
how much of each parameter's error is set by that anchor:

1. **Error decomposition of the default fit** (scored as ``napari_sushi.core.scoring``): the skill of
   the fitted map, its bias, the skill of a constant map at the *fitted* median ("level only": if
   this is as bad as the fit, the error is a wrong level, not missing structure), and the skill of
   the fitted map smoothed (amplitude-weighted Gaussian, 4 pixels).
2. **Fits from other anchors** (same objective and settings; ``coarse_init=1`` and the anchor given
   as the initial maps): ``oracle level`` = constant maps at the truth's median (what a perfect
   estimate of the field's level alone would give), ``oracle level + coarse/2`` = that level plus
   half the default coarse start's departures from its own median, ``coarse/2`` = the coarse start
   shrunk halfway to its own median (no oracle).
3. **Can the data give the level?** A fit of one constant value per parameter to the whole
   (4x4-binned) cube, amplitudes free per pixel, against the truth's median.
4. **Is a global shift identified when the structure is known?** With the truth maps offset by
   (dkT, dindex) and the amplitudes re-fitted per pixel, the change of the C-statistic (1x cases).

Writes benchmarks/results/zoo_anchor.json (after every case) and zoo_anchor.md.

Run:  .venv/bin/python benchmarks/bench_zoo_anchor.py [--cases 0-15] [--threads 1] [--shape 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spin-waiting on a shared machine

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_zoo import PARAMS, components, load_rows, parse_cases, truth_problem, write_json  # noqa: E402

from napari_sushi.core.scoring import error_stats, score_result, selected  # noqa: E402
from napari_sushi.core.solver.problem import build_problem  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import coarse_start, fit  # noqa: E402
from napari_sushi.core.zoo import simulate_zoo, zoo_cases  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "zoo_anchor"
KEYS = PARAMS + ["thermal share"]
ANCHORS = ("default", "oracle level", "oracle level + coarse/2", "coarse/2")
SHIFTS_KT = (-0.4, 0.0, 0.3, 0.6)
SHIFTS_INDEX = (-0.3, 0.0, 0.25, 0.5, 0.75)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` with non-negative ``weights`` (the first value past half the total weight)."""
    ok = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
    if not ok.any():
        return float(np.nanmedian(values))
    v, w = values[ok], weights[ok]
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, 0.5 * cw[-1])])


def decompose(fitted: np.ndarray, amplitude: np.ndarray, true: np.ndarray, sel: np.ndarray) -> dict[str, float]:
    """Skill and bias of a fitted map, of a constant at its median over ``sel`` and of its smoothed self."""
    r = error_stats(fitted[sel], true[sel])
    level = np.full(int(sel.sum()), np.median(fitted[sel]))
    w = np.nan_to_num(amplitude).clip(min=0.0)
    smooth = gaussian_filter(np.nan_to_num(fitted) * w, 4.0) / np.maximum(gaussian_filter(w, 4.0), 1e-12)
    return {
        "skill": r["skill"],
        "bias": r["bias"],
        "level_only_skill": error_stats(level, true[sel])["skill"],
        "smoothed_skill": error_stats(smooth[sel], true[sel])["skill"],
    }


def anchored(components_: list[Component], coarse: list[Component], level: dict[str, float], alpha: float):
    """Components whose initial maps are ``level + alpha (coarse start - level)`` for every free parameter."""
    out = []
    for c, cc in zip(components_, coarse):
        init = {}
        for p in c.model.param_names:
            if p in c.fixed:
                continue
            lvl = level[f"{c.name} {p}"]
            m = np.asarray(cc.init.get(p, lvl), float)  # no coarse map (image too small for one): the level
            init[p] = lvl + alpha * (m - lvl)
        out.append(replace(c, init=init))
    return out


def constant_fit(sim, comps: list[Component], binning: int = 4) -> dict[str, float]:
    """One value per free parameter for the whole cube (amplitudes free per pixel, by EM), best of 6 starts."""
    prob = build_problem(sim.cube, comps, FitSettings(dtype="float64", binning=binning))
    X = prob.X[prob.signal]

    def cost(u: np.ndarray) -> float:
        u = np.clip(u, 0.0, 1.0)
        S = []
        for spec in prob.comps:
            th = [prob.free[v].low + prob.free[v].width * u[v] if k == "free" else float(v) for k, v in spec.sources]
            S.append(spec.model.spectrum(torch.tensor([th], dtype=torch.float64)).double()[0])
        St = torch.stack(S)
        A = X.sum(1, keepdim=True).repeat(1, len(S)) / len(S) + 1e-3
        for _ in range(60):
            A = A * ((X / (A @ St + 1e-12)) @ St.T)
        m = A @ St + 1e-12
        return float(2 * (m - X * torch.log(m)).sum())

    best = None
    for k0 in (0.2, 0.5, 0.8):
        for i0 in (0.3, 0.7):
            r = minimize(cost, [k0, 0.5, i0], method="Nelder-Mead", options=dict(xatol=1e-3, fatol=0.5, maxfev=300))
            best = r if best is None or r.fun < best.fun else best
    u = np.clip(best.x, 0.0, 1.0)
    return {fp.keys[0].replace(".", " ", 1): fp.low + fp.width * u[j] for j, fp in enumerate(prob.free)}


def shift_table(sim, comps: list[Component]) -> list[list[float]]:
    """C(truth maps + (dkT, dindex), amplitudes re-fitted per pixel) - C(truth maps), on SHIFTS_KT x SHIFTS_INDEX."""
    prob = truth_problem(sim, comps)
    names = [f.keys[0] for f in prob.free]
    ik, ii = names.index("thermal.kT"), names.index("powerlaw.index")

    def cost(U: torch.Tensor) -> float:
        S = []
        for c in range(prob.n_comp):
            e = torch.zeros_like(prob.A0)
            e[c] = 1.0
            S.append(prob.model(e, U))
        St = torch.stack(S)
        A = prob.A0.clamp(min=1e-3)
        for _ in range(150):
            A = A * (St * (prob.X / (A[:, :, None] * St).sum(0).clamp(min=1e-12))[None]).sum(-1)
        m = (A[:, :, None] * St).sum(0).clamp(min=1e-12)
        return float(2 * (m - prob.X * torch.log(m)).sum())

    c0 = cost(prob.U0)
    table = []
    for dkt in SHIFTS_KT:
        row = []
        for di in SHIFTS_INDEX:
            U = prob.U0.clone()
            U[ik] = (U[ik] + dkt / prob.free[ik].width).clamp(0, 1)
            U[ii] = (U[ii] + di / prob.free[ii].width).clamp(0, 1)
            row.append(cost(U) - c0)
        table.append(row)
    return table


def run_case(case, shifts: bool) -> dict:
    sim, kinds = simulate_zoo(case)
    comps = components()
    truth_level = {k: float(np.median(sim.truth[k][selected(sim.truth, k)])) for k in PARAMS}
    coarse = coarse_start(sim.cube, comps, FitSettings())
    coarse_level = {
        k: float(np.median(next(c for c in coarse if c.name == k.split()[0]).init.get(k.split()[1], np.nan)))
        for k in PARAMS
    }
    starts = {
        "oracle level": anchored(comps, coarse, truth_level, 0.0),
        "oracle level + coarse/2": anchored(comps, coarse, truth_level, 0.5),
        "coarse/2": anchored(comps, coarse, coarse_level, 0.5),
    }
    row: dict = {"case": case.name, "counts_scale": case.counts_scale, "kinds": kinds, "fits": {}}
    for name in ANCHORS:
        t = time.perf_counter()
        if name == "default":
            res = fit(sim.cube, comps, FitSettings())
        else:
            res = fit(sim.cube, starts[name], FitSettings(coarse_init=1, start="default"))
        sc = score_result(sim, res)
        entry = {"seconds": time.perf_counter() - t, "skill": {k: sc[k]["skill"] for k in KEYS}}
        entry["velocity slope"] = sc["thermal velocity"]["slope"]
        if name == "default":
            entry["decomposition"] = {
                k: decompose(res.params[k], res.amplitudes[k.split()[0]], sim.truth[k], selected(sim.truth, k))
                for k in PARAMS
            }
        row["fits"][name] = entry
    row["truth_level"] = truth_level
    row["coarse_level"] = coarse_level
    row["constant_fit"] = constant_fit(sim, comps)
    if shifts:
        row["shift_table"] = shift_table(sim, comps)
    return row


def write_markdown(rows: list[dict], path: Path) -> None:
    f = lambda v, p=2: "-" if v is None or not np.isfinite(v) else f"{v:.{p}f}"  # noqa: E731
    scales = sorted({r["counts_scale"] for r in rows}, reverse=True)
    lines = [
        "# The zoo's errors and the anchor of the fit",
        "",
        "Run: `.venv/bin/python benchmarks/bench_zoo_anchor.py --threads 1` (what each part measures: the "
        "script's docstring). Skill = RMSE / RMSE of the constant map at the truth's median "
        "(`napari_sushi.core.scoring`); 64x64 zoo cases, toy instrument, SUSHI defaults.",
        "",
        "## 1. The default fit's error: level or structure? (median over cases, per count level)",
        "",
        "'level only' = a constant map at the fitted map's median over the scored pixels; 'smoothed' = "
        "the fitted map smoothed by a 4-pixel Gaussian (amplitude-weighted).",
        "",
        "| counts | cases | parameter | skill | bias | level only | smoothed |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scales:
        sel = [r for r in rows if r["counts_scale"] == s]
        for k in PARAMS:
            d = [r["fits"]["default"]["decomposition"][k] for r in sel]
            med = {q: float(np.median([x[q] for x in d])) for q in d[0]}
            lines.append(
                f"| {s:g}x | {len(sel)} | {k} | {f(med['skill'])} | {f(med['bias'], 3 if 'velocity' not in k else 0)} "
                f"| {f(med['level_only_skill'])} | {f(med['smoothed_skill'])} |"
            )
    lines += [
        "",
        "## 2. The same objective from other anchors: median skill (worst case)",
        "",
        "| counts | anchor | " + " | ".join(KEYS) + " | velocity slope |",
        "|---" * (len(KEYS) + 3) + "|",
    ]
    for s in scales:
        sel = [r for r in rows if r["counts_scale"] == s]
        for a in ANCHORS:
            cells = []
            for k in KEYS:
                v = [r["fits"][a]["skill"][k] for r in sel]
                cells.append(f"{f(float(np.median(v)))} ({f(float(np.max(v)))})")
            slope = float(np.median([r["fits"][a]["velocity slope"] for r in sel]))
            lines.append(f"| {s:g}x | {a} | " + " | ".join(cells) + f" | {f(slope)} |")
    lines += [
        "",
        "## 3. The level from the data alone: one value per parameter for the whole cube",
        "",
        "| case | kT fit / truth median (keV) | velocity fit / truth median (km/s) | index fit / truth median | "
        "coarse start's median kT / index |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cf, tl, cl = r["constant_fit"], r["truth_level"], r["coarse_level"]
        lines.append(
            f"| {r['case']} | {f(cf['thermal kT'])} / {f(tl['thermal kT'])} | {f(cf['thermal velocity'], 0)} / "
            f"{f(tl['thermal velocity'], 0)} | {f(cf['powerlaw index'])} / {f(tl['powerlaw index'])} | "
            f"{f(cl['thermal kT'])} / {f(cl['powerlaw index'])} |"
        )
    tables = [r for r in rows if "shift_table" in r]
    if tables:
        lines += [
            "",
            "## 4. A global shift of the truth maps: change of C (amplitudes re-fitted per pixel)",
            "",
            "Rows dkT (keV), columns dindex; one table per case (1x counts).",
        ]
        for r in tables:
            lines += [
                "",
                f"**{r['case']}**",
                "",
                "| dkT \\ dindex | " + " | ".join(f"{d:+g}" for d in SHIFTS_INDEX) + " |",
                "|---" * (len(SHIFTS_INDEX) + 1) + "|",
            ]
            for dkt, row in zip(SHIFTS_KT, r["shift_table"]):
                lines.append(f"| {dkt:+g} | " + " | ".join(f"{v:+.0f}" for v in row) + " |")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=None, help="indices into the case list, e.g. 0-5,12")
    ap.add_argument("--shape", type=int, default=64, help="image size n (n x n) of every case")
    ap.add_argument("--no-shifts", action="store_true", help="skip part 4 (the shift tables of the 1x cases)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="JSON files of other runs (e.g. another process's cases) to merge in first",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    if args.merge:
        merged = {r["case"]: r for r in load_rows(json_path)}
        merged.update({r["case"]: r for p in args.merge for r in load_rows(p)})
        order = {c.name: i for i, c in enumerate(zoo_cases(shape=(args.shape, args.shape)))}
        write_json(sorted(merged.values(), key=lambda r: order.get(r["case"], 99)), json_path)
        write_markdown(load_rows(json_path), md_path)
    for case in (
        parse_cases(args.cases, zoo_cases(shape=(args.shape, args.shape))) if args.cases or not args.merge else []
    ):
        row = run_case(case, shifts=not args.no_shifts and case.counts_scale == 1.0)
        order = {c.name: i for i, c in enumerate(zoo_cases(shape=(args.shape, args.shape)))}
        rows = [r for r in load_rows(json_path) if r["case"] != case.name] + [row]
        rows.sort(key=lambda r: order.get(r["case"], 99))
        print(
            case.name, {a: {k: round(v, 2) for k, v in e["skill"].items()} for a, e in row["fits"].items()}, flush=True
        )
        write_json(rows, json_path)
        write_markdown(rows, md_path)
    return load_rows(json_path)


if __name__ == "__main__":
    main()
