"""Output paths checked before any work, so a long fit or binning never fails only at the end."""

from __future__ import annotations

import os
from pathlib import Path

from napari_sushi.cli import CLIError


def check_output(output: str | os.PathLike, overwrite: bool, inputs: tuple = (), option: str = "-o") -> Path:
    """``output`` if it can be written: its folder exists and is writable, it is not a folder, not one of
    ``inputs`` (even with --overwrite: that would replace the user's data), and new unless ``overwrite``."""
    out = Path(output).expanduser()
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise CLIError(f"{option} {out} is a folder; give a file name inside it, e.g. {out / 'out.fits'}.")
    if not folder.is_dir():
        raise CLIError(f"the folder of {option} {out} ({folder}) does not exist; create it or choose another path.")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"the folder {folder} is not writable; choose another path for {option}.")
    for src in inputs:
        if src is None:
            continue
        s = Path(src).expanduser()
        if s.exists() and out.exists() and os.path.samefile(s, out) or s.resolve() == out.resolve():
            raise CLIError(
                f"{option} {out} is also an input ({s}); writing it would replace your data. "
                "Choose another output name."
            )
    if out.exists() and not overwrite:
        raise CLIError(f"{out} already exists; choose another name or pass --overwrite.")
    return out
