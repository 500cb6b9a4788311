"""Opening FITS files safely: every header read at once, damage turned into the project's own error.

astropy opens lazily and raises whatever the damaged byte triggers (``TypeError: buffer is too small``,
``OSError``, ``KeyError``...) at the first data access, often long after the file was "opened".
``open_fits`` reads all headers up front, refuses truncated or corrupt files, and returns an HDUList
whose ``with`` block turns any later failure of the data into ``FileFormatError`` naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from astropy.io import fits

from napari_sushi.core.io.errors import FileFormatError

_FOREIGN = (OSError, EOFError, TypeError, KeyError, IndexError, AttributeError, ValueError, fits.VerifyError)


def _is_project_error(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or type(exc).__module__.startswith("napari_sushi")


class _GuardedHDUList(fits.HDUList):
    """An HDUList whose ``with`` block turns errors of damaged data (read lazily) into the project's error."""

    _sushi_path: Path = Path()
    _sushi_error: type[Exception] = FileFormatError

    def __exit__(self, type_, value, traceback):
        super().__exit__(type_, value, traceback)
        if value is not None and isinstance(value, _FOREIGN) and not _is_project_error(value):
            raise damaged(self._sushi_path, value, self._sushi_error) from value
        return False


def damaged(path: Path, exc: BaseException, error: type[Exception] = FileFormatError) -> Exception:
    """The project error for a file whose contents fail to read (``exc``): names the file and what to do."""
    return error(
        f"{path} is damaged or not in the expected layout ({type(exc).__name__}: {exc}); it may be truncated "
        "or corrupt: copy or write it again."
    )


_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2"}


def _decompressed(p: Path, error: type[Exception]) -> bytes | None:
    """The whole content of a gzip/bzip2-compressed file, or None for an uncompressed one.

    astropy reads compressed FITS as a stream of unknown size: a damaged header there makes it seek
    backwards forever (a corrupt HDU's size is "file size - offset" < 0). Decompressing first gives
    it a buffer of known length (astropy reads compressed data into memory anyway).
    """
    with open(p, "rb") as fh:
        head = fh.read(3)
    kind = next((k for m, k in _COMPRESSED_MAGIC.items() if head.startswith(m)), None)
    if kind is None:
        return None
    import bz2
    import gzip
    import zlib

    opener = gzip.open if kind == "gzip" else bz2.open
    try:
        with opener(p, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise error(f"{p} is a damaged {kind} file ({exc}); it may be truncated: copy or download it again.") from exc
    if not raw.startswith(_FITS_SIGNATURE):
        raise error(f"{p} decompresses to something that is not FITS (no SIMPLE card at the start).")
    return raw


_FITS_SIGNATURE = b"SIMPLE  ="


def open_fits(path: str | os.PathLike, error: type[Exception] = FileFormatError) -> fits.HDUList:
    """Open a FITS file read-only (memory-mapped), turning format problems into FileFormatError.

    Every header is read now and a file shorter than its headers promise (truncated) is refused here;
    used as a context manager, errors from damaged data read later in the block become ``error`` too.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; check the path.")
    if p.is_dir():
        raise error(f"{p} is a folder, not a FITS file.")
    if p.stat().st_size == 0:
        raise error(f"{p} is empty (0 bytes); give a FITS file.")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            packed = _decompressed(p, error)
            if packed is not None:
                hdul = fits.HDUList.fromstring(packed, lazy_load_hdus=False)
            else:
                hdul = fits.open(p, memmap=True, mode="readonly", lazy_load_hdus=False)
    except _FOREIGN as exc:
        raise error(f"{p} is not a readable FITS file ({exc}); it may be truncated or not FITS at all.") from exc
    try:
        problems = [str(w.message) for w in caught if "truncated" in str(w.message).lower()]
        corrupted = [i for i, h in enumerate(hdul) if type(h).__name__ == "_CorruptedHDU"]
        if problems or corrupted:
            raise error(
                f"{p} is truncated or corrupt ({problems[0] if problems else f'HDU {corrupted[0]} is unreadable'}); "
                "copy or download it again."
            )
    except BaseException:
        hdul.close()
        raise
    hdul.__class__ = _GuardedHDUList
    hdul._sushi_path = p
    hdul._sushi_error = error
    return hdul


def column_names(hdu: fits.BinTableHDU) -> list[str]:
    """A table's column names, '' for a column without TTYPE (astropy gives None there)."""
    return [n if isinstance(n, str) else "" for n in (hdu.columns.names or [])]
