"""``napari-sushi simulate``: write a simulated remnant cube with its truth maps to one FITS file."""

from __future__ import annotations

import argparse
import time

import numpy as np


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from napari_sushi.core.simulate import PRESETS

    p = subparsers.add_parser(
        "simulate",
        help="simulate a supernova-remnant cube with ground-truth maps",
        description="Simulate a toy supernova remnant (Poisson counts folded through an instrument "
        "response) and write the cube plus its truth maps (hidden TRUTH=T extensions) to one FITS file.",
    )
    p.add_argument(
        "--preset",
        default="toy",
        choices=sorted(PRESETS),
        help="; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()),
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file bit for bit)")
    p.add_argument("-o", "--output", required=True, help="output FITS file (e.g. toy.fits or toy.fits.gz)")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    return p


def run(args: argparse.Namespace) -> int:
    from napari_sushi.cli import CLIError
    from napari_sushi.core.simulate import simulate_remnant, write_simulation

    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0; got {args.seed}.")
    from napari_sushi.cli.paths import check_output

    check_output(args.output, args.overwrite)
    t0 = time.perf_counter()
    sim = simulate_remnant(args.preset, args.seed)
    path = write_simulation(sim, args.output, overwrite=args.overwrite)
    img = sim.cube.image()
    e = sim.cube.energy_edges
    print(
        f"wrote {path}: preset {args.preset}, seed {args.seed}, cube {sim.cube.shape} "
        f"({e[0]:.3f}-{e[-1]:.3f} keV), counts per pixel min/median/max "
        f"{img.min():.0f}/{np.median(img):.0f}/{img.max():.0f}, truth maps: {', '.join(sim.truth)} "
        f"[{time.perf_counter() - t0:.1f} s]"
    )
    return 0
