"""The morphology zoo: SUSHI (and the per-pixel fit) on remnants it was never tuned on.

Cases (``napari_sushi.core.zoo.zoo_cases``): 6 morphology seeds at 1x and 0.1x the toy's counts, plus
2 seeds each at 3x and 0.3x (16 cases, 64x64 pixels, toy instrument). Each case is scored with
``napari_sushi.core.scoring`` (skill = RMSE / RMSE of the constant map at the truth's median; slope of
fitted on true; coverage of the sigmas; share of each component's counts), per method:

- ``sushi`` with the settings given (``--settings`` JSON, ``--label`` names the row set), models
  ``--family emulator`` (default) or ``iae``;
- ``pixelfit``: the per-pixel fit with the same models (stored; re-run with ``--pixelfit``).

Rows of other labels already in the JSON are kept, so settings are compared side by side in zoo.md.
Writes benchmarks/results/zoo.json (after every fit) and zoo.md.

Run:  .venv/bin/python benchmarks/bench_zoo.py [--label default] [--settings '{"kmad": 3}']
      [--family emulator|iae] [--cases 0-15] [--pixelfit] [--threads 1] [--shape 64]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spin-waiting on a shared machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_sushi.core.scoring import score_result  # noqa: E402
from napari_sushi.core.solver.pixelfit import pixelfit  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.spectral.registry import load_model  # noqa: E402
from napari_sushi.core.zoo import ZooCase, simulate_zoo, zoo_cases  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "zoo"
PARAMS = ["thermal kT", "thermal velocity", "powerlaw index"]
SHARES = ["thermal share", "powerlaw share"]
PIXEL = dict(max_iter=40, n_starts=4)


def components(family: str = "emulator") -> list[Component]:
    return [
        Component("thermal", load_model(f"toy-thermal-{family}")),
        Component("powerlaw", load_model(f"toy-powerlaw-{family}")),
    ]


def truth_problem(sim, comps, **settings):
    """The problem built at a zoo case's true maps (float64, the truth as warm start; ``settings`` more
    FitSettings fields): where the noiseless model's own Fisher information and costs are taken."""
    from types import SimpleNamespace

    from napari_sushi.core.solver.problem import build_problem

    params = {k: sim.truth[k] for k in PARAMS}
    amps = {c.name: sim.truth[f"{c.name} amplitude"] for c in comps}
    warm = SimpleNamespace(params=params, amplitudes=amps)
    return build_problem(sim.cube, comps, FitSettings(dtype="float64", warm_start=warm, **settings))


IDENTIFIED = 1.0 / 3.0  # identified: Cramer-Rao sigma at the truth <= this x the box's spread (bench_coverage)


def identifiability(sim, comps, binning: int = 1) -> dict[str, float]:
    """Share of scored pixels whose Cramer-Rao sigma AT THE TRUTH is <= IDENTIFIED x the box spread.

    What the data can say at all: where the noiseless model's own Fisher information leaves a
    parameter's 1-sigma near the box's spread, no estimate (regularised or not) can follow the truth
    pixel by pixel; only what neighbours share. At ``binning`` b the pixels are b x b bins of the
    cube (the truth binned as the solver bins a warm start: parameters averaged, amplitudes summed).
    """
    from napari_sushi.core.scoring import selected
    from napari_sushi.core.solver.problem import _bin_map
    from napari_sushi.core.solver.uncertainty import fisher_sigmas

    prob = truth_problem(sim, comps, binning=binning)
    cr = fisher_sigmas(prob, prob.A0, prob.U0)
    truth = (
        sim.truth
        if binning == 1
        else {k: _bin_map(v, binning, "sum" if k.endswith(" amplitude") else "mean") for k, v in sim.truth.items()}
    )
    out = {}
    for k in PARAMS:
        fp = next(f for f in prob.free if f.keys[0] == k.replace(" ", ".", 1))
        sel = selected(truth, k)
        ratio = cr[k][sel] / (fp.width / 12**0.5)
        out[k] = float(np.mean(ratio <= IDENTIFIED)) if sel.any() else float("nan")
        out[f"{k} median ratio"] = float(np.median(ratio)) if sel.any() else float("nan")
    return out


def run_case(case: ZooCase, method: str, settings: dict, family: str = "emulator") -> dict:
    """Fit one zoo case and score it; the row written to zoo.json."""
    sim, kinds = simulate_zoo(case)
    comps = components(family)
    t = time.perf_counter()
    if method == "pixelfit":
        res = pixelfit(sim.cube, comps, FitSettings(**PIXEL))
    else:
        res = fit(sim.cube, comps, FitSettings(**settings))
    seconds = time.perf_counter() - t
    return {
        "case": case.name,
        "seed": case.seed,
        "counts_scale": case.counts_scale,
        "kinds": kinds,
        "method": method,
        "family": family,
        "settings": settings,
        "n_iter": res.n_iter,
        "stop": res.stop_reason,
        "seconds": seconds,
        "scores": score_result(sim, res),
        "sigma_method": res.provenance.get("sigma_method"),
        "identified": {f"binning {b}": identifiability(sim, comps, b) for b in (1, 4)},
    }


def load_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def write_json(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(path)


def summarise(rows: list[dict], label: str, scale: float) -> dict[str, dict[str, float]]:
    """Median / worst skill, median slope, coverage and sigma-at-cap per key for one label at one count level."""
    sel = [r for r in rows if r["label"] == label and abs(r["counts_scale"] - scale) < 1e-9]
    out = {}
    for k in PARAMS + SHARES:
        sk = [r["scores"][k]["skill"] for r in sel if np.isfinite(r["scores"][k]["skill"])]
        sl = [r["scores"][k]["slope"] for r in sel if np.isfinite(r["scores"][k]["slope"])]
        cov = [r["scores"][k].get("coverage", np.nan) for r in sel]
        cap = [r["scores"][k].get("frac_sigma_at_cap_bright", np.nan) for r in sel]
        out[k] = {
            "n": len(sk),
            "skill_median": float(np.median(sk)) if sk else np.nan,
            "skill_worst": float(np.max(sk)) if sk else np.nan,
            "slope_median": float(np.median(sl)) if sl else np.nan,
            "coverage_median": float(np.nanmedian(cov)) if np.isfinite(cov).any() else np.nan,
            "cap_median": float(np.nanmedian(cap)) if np.isfinite(cap).any() else np.nan,
        }
    return out


def ratio_to_pixelfit(rows: list[dict], label: str) -> dict[str, float]:
    """Median over cases of SUSHI RMSE / per-pixel RMSE, per parameter."""
    pix = {r["case"]: r for r in rows if r["label"] == "pixelfit"}
    out = {}
    for k in PARAMS:
        q = [
            r["scores"][k]["rmse"] / pix[r["case"]]["scores"][k]["rmse"]
            for r in rows
            if r["label"] == label and r["case"] in pix
        ]
        out[k] = float(np.median(q)) if q else np.nan
    return out


COMPARE = ("start from model defaults (before)", "global scan (default)")  # the change the per-case table shows


def _comparison(rows: list[dict], before: str, after: str, f) -> list[str]:
    """Per case: skill before -> after and the ratio of RMSE to the per-pixel fit, per parameter and share."""
    by = {(r["label"], r["case"]): r for r in rows}
    cases = [r["case"] for r in rows if r["label"] == after and (before, r["case"]) in by]
    keys = PARAMS + SHARES[:1]
    out = [
        "",
        f"## Every case: '{after}' against '{before}'",
        "",
        "Skill before -> after (in brackets: RMSE / per-pixel fit's RMSE after); 'better' counts the keys "
        "whose skill fell.",
        "",
        "| case | " + " | ".join(keys) + " | better |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for c in cases:
        b, a, p = by[(before, c)], by[(after, c)], by.get(("pixelfit", c))
        cells, better = [], 0
        for k in keys:
            sb, sa = b["scores"][k]["skill"], a["scores"][k]["skill"]
            better += sa < sb
            ratio = a["scores"][k]["rmse"] / p["scores"][k]["rmse"] if p else float("nan")
            cells.append(f"{f(sb)} -> {f(sa)} ({f(ratio)})")
        out.append(f"| {c} | " + " | ".join(cells) + f" | {better} of {len(keys)} |")
    return out


def write_markdown(rows: list[dict], path: Path) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows))
    scales = sorted({r["counts_scale"] for r in rows}, reverse=True)
    f = lambda v, p=2: "-" if v is None or not np.isfinite(v) else f"{v:.{p}f}"  # noqa: E731
    lines = [
        "# Morphology zoo",
        "",
        "Scored with `napari_sushi.core.scoring`: skill = RMSE / RMSE of a constant map at the truth's median "
        "(parameters over pixels where the component holds >= 20 % of the counts; shares of the counts over "
        "pixels with counts); slope = least-squares slope of fitted on true; coverage = share of scored pixels "
        "with |error| <= sigma; 'at cap' = share of sigmas at the box spread where the component holds >= 50 "
        "expected counts. 64x64 pixels, toy instrument (ACIS-I 3-8.5 keV).",
        "",
        "Run: `.venv/bin/python benchmarks/bench_zoo.py --label NAME --settings JSON`",
        "",
    ]
    for scale in scales:
        lines += [
            f"## {scale:g}x the toy's counts: medians over cases (worst case in brackets)",
            "",
            "| label | cases | "
            + " | ".join(f"{k} skill" for k in PARAMS + SHARES)
            + " | velocity slope | coverage kT / v / index | at cap kT / v / index | seconds |",
            "|---" * (len(PARAMS + SHARES) + 6) + "|",
        ]
        for label in labels:
            s = summarise(rows, label, scale)
            sel = [r for r in rows if r["label"] == label and abs(r["counts_scale"] - scale) < 1e-9]
            if not sel:
                continue
            lines.append(
                f"| {label} | {len(sel)} | "
                + " | ".join(f"{f(s[k]['skill_median'])} ({f(s[k]['skill_worst'])})" for k in PARAMS + SHARES)
                + f" | {f(s['thermal velocity']['slope_median'])} | "
                + " / ".join(f(s[k]["coverage_median"]) for k in PARAMS)
                + " | "
                + " / ".join(f(s[k]["cap_median"]) for k in PARAMS)
                + f" | {np.median([r['seconds'] for r in sel]):.1f} |"
            )
        lines.append("")
    lines += [
        "## Ratio of RMSE to the per-pixel fit (median over all cases)",
        "",
        "| label | " + " | ".join(PARAMS) + " |",
        "|---" * (len(PARAMS) + 1) + "|",
    ]
    for label in labels:
        if label == "pixelfit":
            continue
        q = ratio_to_pixelfit(rows, label)
        lines.append(f"| {label} | " + " | ".join(f(q[k]) for k in PARAMS) + " |")
    lines += [
        "",
        "## Each component's counts in all: fitted / true (median over cases, worst in brackets)",
        "",
        "How the fit splits the counts between the components over the whole image (1 = right; the "
        "per-pixel share skill above says where).",
        "",
        "| label | " + " | ".join(f"{s:g}x {c}" for s in scales for c in ("thermal", "powerlaw")) + " |",
        "|---" * (2 * len(scales) + 1) + "|",
    ]
    for label in labels:
        cells = []
        for scale in scales:
            sel = [r for r in rows if r["label"] == label and abs(r["counts_scale"] - scale) < 1e-9]
            for c in ("thermal", "powerlaw"):
                q = [r["scores"][f"{c} share"]["counts_fit"] / r["scores"][f"{c} share"]["counts_true"] for r in sel]
                worst = max(q, key=lambda v: abs(np.log(v))) if q else np.nan
                cells.append(f"{f(float(np.median(q)))} ({f(worst)})" if q else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if all(any(r["label"] == lab for r in rows) for lab in COMPARE):
        lines += _comparison(rows, *COMPARE, f)
    lines += [
        "",
        "## What the data identify at all (Cramer-Rao sigma at the truth <= 1/3 of the box spread)",
        "",
        "Share of scored pixels, per pixel and in 4x4 bins (in brackets: the median Cramer-Rao sigma at the "
        "truth over the box spread; Fisher sigmas are capped at 1): where it is small, no estimate can follow "
        "the truth pixel by pixel, only what neighbours share.",
        "",
        "| case | kT 1x1 | velocity 1x1 | index 1x1 | kT 4x4 | velocity 4x4 | index 4x4 |",
        "|---" * 7 + "|",
    ]
    seen = set()
    for r in rows:
        if r["case"] in seen or "identified" not in r:
            continue
        seen.add(r["case"])
        idf = r["identified"]
        lines.append(
            f"| {r['case']} | "
            + " | ".join(
                f"{f(idf[b][k])} ({f(idf[b].get(k + ' median ratio'))})"
                for b in ("binning 1", "binning 4")
                for k in PARAMS
            )
            + " |"
        )
    lines += [
        "",
        "## Every case",
        "",
        "| label | case | kinds (thermal / synchrotron / kT / velocity / index) | iterations | "
        + " | ".join(f"{k} skill" for k in PARAMS + SHARES)
        + " | velocity slope | seconds |",
        "|---" * (len(PARAMS + SHARES) + 6) + "|",
    ]
    for r in rows:
        kd = " / ".join(r["kinds"].values())
        lines.append(
            f"| {r['label']} | {r['case']} | {kd} | {r['n_iter']} | "
            + " | ".join(f(r["scores"][k]["skill"]) for k in PARAMS + SHARES)
            + f" | {f(r['scores']['thermal velocity']['slope'])} | {r['seconds']:.1f} |"
        )
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def parse_cases(spec: str | None, cases: list[ZooCase]) -> list[ZooCase]:
    if not spec:
        return cases
    idx: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        idx += list(range(int(lo), int(hi or lo) + 1))
    return [cases[i] for i in idx]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="default")
    ap.add_argument("--settings", default="{}", help="FitSettings keyword arguments as JSON")
    ap.add_argument("--family", default="emulator", choices=["emulator", "iae"])
    ap.add_argument("--cases", default=None, help="indices into the case list, e.g. 0-5,12")
    ap.add_argument("--pixelfit", action="store_true", help="(re-)run the per-pixel fit rows")
    ap.add_argument("--no-sushi", action="store_true", help="skip the SUSHI rows (e.g. with --pixelfit)")
    ap.add_argument("--shape", type=int, default=64, help="image size n (n x n) of every case")
    ap.add_argument(
        "--identify", action="store_true", help="only add the identifiability figures to stored rows that lack them"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {"max_iter": 300, **json.loads(args.settings)}
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    rows = load_rows(json_path)
    if args.identify:
        for case in parse_cases(args.cases, zoo_cases(shape=(args.shape, args.shape))):
            if any(r["case"] == case.name and "identified" not in r for r in rows):
                sim, _ = simulate_zoo(case)
                idf = {f"binning {b}": identifiability(sim, components(), b) for b in (1, 4)}
                rows = load_rows(json_path)
                for r in rows:
                    if r["case"] == case.name:
                        r["identified"] = idf
                write_json(rows, json_path)
        write_markdown(rows, md_path)
        return rows
    todo = []
    if args.pixelfit:
        todo.append(("pixelfit", "pixelfit", PIXEL, "emulator"))
    if not args.no_sushi:
        todo.append((args.label, "sushi", settings, args.family))
    for case in parse_cases(args.cases, zoo_cases(shape=(args.shape, args.shape))):
        for label, method, st, family in todo:
            row = {"label": label, **run_case(case, method, st, family)}
            rows = load_rows(json_path)  # re-read: several runs (other labels) may share the file
            rows = [r for r in rows if not (r["label"] == label and r["case"] == case.name)] + [row]
            print(
                json.dumps(
                    {k: row[k] for k in ("label", "case", "n_iter", "seconds")}
                    | {k: round(row["scores"][k]["skill"], 3) for k in PARAMS + SHARES}
                ),
                flush=True,
            )
            write_json(rows, json_path)
            write_markdown(rows, md_path)
    return rows


if __name__ == "__main__":
    main()
