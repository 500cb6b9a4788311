"""``napari-sushi models``: list the shipped pretrained spectral models (or describe one file)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="list shipped spectral models", description=__doc__)
    p.add_argument("model", nargs="?", help="a model name or file to describe (default: list all)")
    return p


def run(args: argparse.Namespace) -> int:
    from napari_sushi.core.spectral.registry import list_models, load_model

    if args.model:
        m = load_model(args.model)
        print(f"{args.model}: {m.describe()}")
        print(f"  identity {m.identity()}; band {m.meta.band}; channels "
              f"{'-' if m.meta.channels is None else f'{m.meta.channels[0]}-{m.meta.channels[-1]}'}")
        for p in m.meta.parameters:
            print(f"  {p.name:<10} [{p.unit or '-'}] {p.low:g}..{p.high:g} (default {p.default:g}) {p.description}")
        tr = m.meta.extra.get("training", {})
        if tr:
            print("  training: " + ", ".join(f"{k}={v}" for k, v in tr.items() if not isinstance(v, (list, dict))))
        return 0
    entries = list_models()
    if not entries:
        print("no shipped models found (napari_sushi/pretrained is empty); run scripts/train_pretrained.py")
        return 1
    rows = [("NAME", "COMPONENT", "FAMILY", "PARAMETERS", "BAND keV")]
    for e in entries:
        band = "-" if e.band is None else f"{e.band[0]:g}-{e.band[1]:g}"
        rows.append((e.name, e.component, e.family, "; ".join(e.parameters), band))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    return 0
