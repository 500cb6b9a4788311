"""One map (a mask, a background, a fixed or initial parameter map) from a ``.npy`` or FITS file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_sushi.core.io.errors import FileFormatError


def read_map_array(path: str | os.PathLike, what: str, error: type[Exception] = FileFormatError) -> np.ndarray:
    """The array of ``path`` as floats: a ``.npy`` (loaded without pickle) or the first image HDU of a FITS
    file. Every failure raises ``error`` with a message naming ``what`` and the file."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} file {path} does not exist.")
    if path.is_dir():
        raise error(f"{what} file {path} is a folder; give a .npy or FITS file.")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:  # object arrays need pickle, which we never load
            raise error(
                f"{what} file {path} cannot be read without pickle ({exc}); save it as a numeric "
                "array (np.save(path, mask.astype(bool)))."
            ) from None
        except (OSError, EOFError, SyntaxError) as exc:
            raise error(f"{what} file {path} is not a readable .npy file ({exc}).") from None
        if arr.dtype.kind not in "biuf":
            raise error(f"{what} file {path} holds {arr.dtype} values; give numbers or booleans.")
        return np.asarray(arr, float)
    from napari_sushi.core.io.fits_file import open_fits

    with open_fits(path, error=error) as hdul:
        for hdu in hdul:
            if hdu.data is not None and getattr(hdu, "is_image", False):
                return np.asarray(hdu.data, float)
    raise error(f"{what} file {path} holds no image data.")
