"""``napari-sushi pixelfit``: the classic per-pixel fit (no spatial regularisation), same outputs as fit."""

from __future__ import annotations

import argparse

from napari_sushi.cli.fit import add_common, run_fit


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pixelfit",
        help="per-pixel fit (no regularisation), for comparison",
        description="Fit every pixel on its own with the same spectral models (batched Levenberg-Marquardt, "
        "multi-start) and write the same maps as `napari-sushi fit`.",
        epilog="example: napari-sushi pixelfit toy.fits --model toy-thermal-emulator --model toy-powerlaw-emulator "
        "-o pixel_maps.fits",
    )
    add_common(p, regularised=False)
    return p


def run(args: argparse.Namespace) -> int:
    return run_fit(args, regularised=False)
