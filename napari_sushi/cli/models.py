"""``napari-sushi models``: list the spectral models (shipped and your own), or describe one."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="list spectral models (shipped and yours)", description=__doc__)
    p.add_argument("model", nargs="?", help="a model name or file to describe (default: list all)")
    return p


def _fixed(fixed: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in fixed.items()) or "-"


def run(args: argparse.Namespace) -> int:
    from napari_sushi.core.spectral.registry import list_models, load_model
    from napari_sushi.core.spectral.user_models import user_model_dir

    if args.model:
        m = load_model(args.model)
        print(f"{args.model}: {m.describe()}")
        print(
            f"  identity {m.identity()}; band {m.meta.band}; channels "
            f"{'-' if m.meta.channels is None else f'{m.meta.channels[0]}-{m.meta.channels[-1]}'}"
        )
        for p in m.meta.parameters:
            print(f"  {p.name:<10} [{p.unit or '-'}] {p.low:g}..{p.high:g} (default {p.default:g}) {p.description}")
        fixed = m.meta.extra.get("fixed") or {}
        if fixed:
            print(f"  fixed: {_fixed(fixed)}")
        resp = m.meta.extra.get("response")
        if isinstance(resp, dict):
            print("  response files: " + ", ".join(f"{k} {v}" for k, v in resp.items() if v))
        tr = m.meta.extra.get("training", {})
        if tr:
            print("  training: " + ", ".join(f"{k}={v}" for k, v in tr.items() if not isinstance(v, (list, dict))))
        acc = m.meta.extra.get("accuracy") or {}
        if acc.get("median") is not None:
            print(
                f"  held-out accuracy: median {acc['median']:.3g}, p99 {acc['p99']:.3g} ({acc.get('metric', '')}, "
                f"n={acc.get('n')})"
            )
        return 0
    entries = list_models()
    if not entries:
        print(
            "no models found: napari_sushi/pretrained is empty and you have none in "
            f"{user_model_dir()}; train one with `napari-sushi train`"
        )
        return 1
    rows = [("NAME", "ORIGIN", "COMPONENT", "FAMILY", "PARAMETERS", "FIXED", "BAND keV")]
    for e in entries:
        band = "-" if e.band is None else f"{e.band[0]:g}-{e.band[1]:g}"
        rows.append((e.name, e.origin, e.component, e.family, "; ".join(e.parameters), _fixed(e.fixed), band))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
    if any(e.origin == "user" for e in entries):
        print(f"(your models are in {user_model_dir()}; set NAPARI_SUSHI_MODEL_DIR to use another folder)")
    return 0
