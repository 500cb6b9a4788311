"""``napari-sushi demo``: open napari with the toy remnant and the SUSHI fit dock, ready to press Run."""

from __future__ import annotations

import argparse

from napari_sushi.cli import CLIError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="open napari with the toy supernova remnant and the fit dock",
        description="Open napari with the toy supernova remnant (File > Open Sample) loaded and the "
        "SUSHI fit dock docked: press 'Run SUSHI' to map temperature, velocity and photon index.",
    )
    p.add_argument(
        "--binning",
        type=int,
        default=None,
        metavar="B",
        help="preset the dock's spatial binning (2 = four times faster)",
    )
    p.add_argument("--max-iter", type=int, default=None, metavar="N", help="preset the dock's iteration limit")
    p.add_argument(
        "--no-show",
        action="store_true",
        help="build the session without showing a window or waiting (checks and CI), then close",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from napari_sushi._napari.demo import has_display, open_demo

    if not has_display():
        raise CLIError(
            "no display: napari needs a screen. Run it on a desktop, over `ssh -X`, or headless with "
            "`xvfb-run -a napari-sushi demo --no-show`."
        )
    if args.binning is not None and args.binning < 1:
        raise CLIError(f"--binning must be >= 1; got {args.binning}.")
    if args.max_iter is not None and args.max_iter < 1:
        raise CLIError(f"--max-iter must be >= 1; got {args.max_iter}.")
    try:
        viewer, dock = open_demo(show=not args.no_show, binning=args.binning, max_iter=args.max_iter)
    except (RuntimeError, KeyError) as exc:
        raise CLIError(str(exc)) from exc
    cube = dock.cube_combo.currentText()
    comps = ", ".join(f"{e.name} ({e.choice.label if e.choice else '-'})" for e in dock.editors)
    print(f"napari-sushi demo: cube '{cube}' with components {comps}; press 'Run SUSHI' in the dock.")
    if args.no_show:
        viewer.close()
        return 0
    import napari

    napari.run()
    return 0
