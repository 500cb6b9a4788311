"""``napari-sushi bin``: bin an X-ray event list into an (energy, y, x) FITS cube."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_sushi.cli import CLIError


def add_response_options(p: argparse.ArgumentParser) -> None:
    """--rmf / --arf, shared with ``fit --bin-events``."""
    p.add_argument(
        "--rmf",
        type=Path,
        help="response matrix (RMF); its EBOUNDS map PI channels to energy. Default: "
        "the event file's RESPFILE keyword, else the RMF beside it",
    )
    p.add_argument(
        "--arf",
        type=Path,
        help="ancillary response (ARF). Default: the ANCRFILE keyword, else the ARF beside the event list",
    )


def describe_response(cube) -> str:
    """One line saying which response the cube carries and where it was found."""
    r = cube.response
    if r is None:
        return "response: none found (no RESPFILE keyword, no RMF beside the event list); give --rmf/--arf"
    return f"response: {r.rmf}" + (f" + {r.arf}" if r.arf is not None else " (no ARF)") + f" ({r.how})"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bin",
        help="bin an event list into a FITS cube",
        description=(
            "Bin an X-ray event list (EVENTS table with sky x, y and energy or pi) into a FITS cube "
            "(energy, y, x) with a celestial WCS from the event file's TC* keywords and an EBOUNDS table."
        ),
        epilog="example: napari-sushi bin evt2.fits -o cube.fits --band 0.5 8 --channel-width 0.1 --binning 4",
    )
    p.add_argument("events", type=Path, help="event list (FITS)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output cube (FITS)")
    p.add_argument(
        "--band",
        nargs=2,
        type=float,
        metavar=("EMIN", "EMAX"),
        default=(0.5, 8.0),
        help="energy band in keV (default: 0.5 8)",
    )
    chan = p.add_mutually_exclusive_group()
    chan.add_argument("--channel-width", type=float, metavar="KEV", help="energy bin width in keV (default 0.1)")
    chan.add_argument("--native", action="store_true", help="bin on the instrument PI channels")
    p.add_argument("--group", type=int, default=1, metavar="N", help="with --native: N channels per bin (default 1)")
    p.add_argument("--binning", type=int, default=1, metavar="F", help="spatial binning: F x F sky pixels per pixel")
    p.add_argument(
        "--cutout",
        nargs=4,
        type=float,
        metavar=("X0", "X1", "Y0", "Y1"),
        help="keep sky pixels X0 <= x < X1, Y0 <= y < Y1 (see `napari-sushi info` for the ranges)",
    )
    add_response_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    return p


def run(args: argparse.Namespace) -> int:
    from napari_sushi.core.io import bin_events, write_cube_fits

    if args.group != 1 and not args.native:
        raise CLIError("--group needs --native (it groups instrument channels).")
    from napari_sushi.cli.paths import check_output

    check_output(args.output, args.overwrite, inputs=(args.events, args.rmf, args.arf))
    if not args.events.exists():
        raise CLIError(f"{args.events} does not exist; check the path.")

    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="ev", unit_scale=True, desc="binning", file=sys.stderr, disable=None, leave=False)

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    try:
        cube = bin_events(
            args.events,
            band=tuple(args.band),
            channel_width=args.channel_width,
            native=args.native,
            group=args.group,
            binning=args.binning,
            cutout=None if args.cutout is None else tuple(args.cutout),
            rmf=args.rmf,
            arf=args.arf,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    write_cube_fits(cube, args.output, overwrite=args.overwrite)
    if not args.quiet:
        ne, ny, nx = cube.shape
        print(
            f"wrote {args.output}: {ne} energy bins ({cube.energy_edges[0]:.4g}-{cube.energy_edges[-1]:.4g} keV) "
            f"x {ny} x {nx} pixels, {int(cube.total_counts):,} counts"
        )
        print(describe_response(cube))
    return 0
