"""Plain FITS images (a counts or exposure map, a stack without energy axis), read as they are.

So that napari-sushi can be the reader of every ``*.fits`` file without losing anything napari's own
reader would show: the first image HDU with data, its celestial WCS and pixel scale when it has one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.fits_cube import celestial_wcs
from napari_sushi.core.io.fits_file import open_fits


@dataclass
class FitsImage:
    """An image HDU's data (numpy axis order), header, celestial WCS of its last two axes, and the
    pixel scale in arcsec (y, x) when the WCS is celestial."""

    data: np.ndarray
    header: fits.Header
    wcs: WCS | None
    pixel_scale_arcsec: tuple[float, float] | None
    name: str
    hdu: int


def read_fits_image(path: str | os.PathLike) -> FitsImage:
    """The first image HDU holding data, as an array in native byte order (raises FileFormatError when
    the file has no image data)."""
    p = Path(path)
    with open_fits(p) as hdul:
        for i, hdu in enumerate(hdul):
            if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) or hdu.data is None:
                continue
            data = np.asarray(hdu.data)
            if data.ndim < 2:
                continue
            data = data.astype(data.dtype.newbyteorder("=")) if data.dtype.byteorder not in ("=", "|") else data.copy()
            header = hdu.header.copy()
            wcs = celestial_wcs(header, (1, 2)) if data.ndim > 2 else celestial_wcs(header)
            scale = None
            if wcs is not None:
                sx, sy = (float(v) * 3600.0 for v in proj_plane_pixel_scales(wcs))
                if np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0:
                    scale = (sy, sx)
            name = str(header.get("EXTNAME", "")).strip() if i else ""
            return FitsImage(data, header, wcs, scale, name or p.name.split(".")[0], i)
    raise FileFormatError(f"{p} holds no image data (no image HDU with 2 or more axes).")
