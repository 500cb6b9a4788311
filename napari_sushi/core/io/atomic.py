"""Atomic file output: write to a temporary file beside the target, then rename it into place.

A reader (or a crash) never sees a half-written output file: either the old state (no file, or the
previous file when overwriting) or the complete new file exists.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _full_suffix(name: str) -> str:
    """The suffixes that select a format (``.fits.gz`` for ``cube.fits.gz``), kept on the temp file."""
    suffixes = Path(name).suffixes
    return "".join(suffixes[-2:]) if len(suffixes) >= 2 and suffixes[-1] == ".gz" else "".join(suffixes[-1:])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` when the block succeeds.

    Raises ``FileExistsError`` (before anything is written) when ``path`` exists and ``overwrite``
    is false, and ``FileNotFoundError`` when the target folder does not exist. If the block raises,
    the temporary file is removed and ``path`` is left untouched. The temporary file keeps the
    target's suffix (e.g. ``.fits.gz``) so writers that pick a format by extension behave the same.
    """
    target = Path(path).expanduser()
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {folder} does not exist; create it first.")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {target}: it is a folder; give a file name.")
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; choose another name or pass overwrite=True (on the command line: --overwrite)."
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + _full_suffix(target.name), dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as astropy refuse to write onto an existing file
    try:
        yield tmp
        if not tmp.exists():
            raise OSError(f"nothing was written for {target}")
        if overwrite:
            os.replace(tmp, target)
        else:
            # link() fails if the target appeared meanwhile: never clobber a file we were told to keep
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise FileExistsError(
                    f"{target} appeared while writing; choose another name or pass overwrite=True."
                ) from None
            except OSError:  # file systems without hard links
                if target.exists():
                    raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.") from None
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
