"""The ``napari-sushi`` command line: a thin layer over the Qt-free core.

Each subcommand lives in its own module of this package with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``; ``SUBCOMMANDS`` lists them in help order.
User errors (bad files, bad options) raise :class:`CLIError` or a ``ValueError``/``OSError``
subclass and are printed as one clear line with exit code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ["info", "bin", "simulate", "models", "train", "fit", "pixelfit", "demo"]


class CLIError(Exception):
    """An error the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    from napari_sushi import __version__

    parser = argparse.ArgumentParser(
        prog="napari-sushi",
        description="Physical parameter maps from X-ray hyperspectral cubes (SUSHI).",
    )
    parser.add_argument("--version", action="version", version=f"napari-sushi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"napari_sushi.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"napari_sushi.cli.{name}":
                continue  # subcommand not built yet
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("napari-sushi: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError) as exc:
        print(f"napari-sushi {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
