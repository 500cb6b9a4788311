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
import warnings

SUBCOMMANDS = ["info", "bin", "simulate", "models", "train", "fit", "pixelfit", "batch", "demo"]


class CLIError(Exception):
    """An error the user can fix; printed without a traceback."""


SUMMARIES = {  # the top-level help's one line per command, without importing the command's module
    "info": "describe a cube, event list or map file",
    "bin": "bin an event list into a FITS cube",
    "simulate": "simulate a supernova-remnant cube with ground-truth maps",
    "models": "list spectral models (shipped and yours)",
    "train": "train a spectral model (emulator, iae or reference)",
    "fit": "SUSHI fit: regularised physical parameter maps",
    "pixelfit": "per-pixel fit (no regularisation), for comparison",
    "batch": "fit many cubes listed in a TOML file, each to its own maps file",
    "demo": "open napari with the toy supernova remnant and the fit dock",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. ``command=None`` builds every subcommand; a name builds only that one and lists
    the others by their one-line summary (so ``--help`` and ``--version`` import no science: well under a
    second instead of seconds of torch start-up)."""
    from napari_sushi import __version__

    parser = argparse.ArgumentParser(
        prog="napari-sushi",
        description="Physical parameter maps from X-ray hyperspectral cubes (SUSHI).",
    )
    parser.add_argument("--version", action="version", version=f"napari-sushi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if command is not None and name != command:
            sub.add_parser(name, help=SUMMARIES[name])
            continue
        mod = importlib.import_module(f"napari_sushi.cli.{name}")
        p = mod.add_parser(sub)
        _plain_text(p)
        p.set_defaults(_run=mod.run)
    return parser


def _plain(text: str | None) -> str | None:
    """Help text as a terminal shows it: the docstrings' reStructuredText ``code`` quotes become '...'."""
    return None if text is None else text.replace("``", "'").replace("`", "'")


def _plain_text(p: argparse.ArgumentParser) -> None:
    p.description, p.epilog = _plain(p.description), _plain(p.epilog)
    for action in p._actions:
        if isinstance(action.help, str):
            action.help = _plain(action.help)


def _command_of(argv: list[str]) -> str:
    """The subcommand named on the command line ("" for none): the first argument that is one."""
    for a in argv:
        if a in SUBCOMMANDS:
            return a
        if not a.startswith("-"):
            return ""
    return ""


def _warning_line(cmd: str):
    """warnings.showwarning for the command line: a user warning as one 'napari-sushi CMD: warning:' line."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning):
            print(f"napari-sushi{' ' + cmd if cmd else ''}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser(_command_of(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line(_command_of(argv))
            return int(args._run(args) or 0)
    except KeyboardInterrupt:  # at any moment, start-up (imports) included
        print("napari-sushi: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError) as exc:
        cmd = _command_of(argv or [])
        print(f"napari-sushi{' ' + cmd if cmd else ''}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
