"""One entry point for every cube source: sniff the file's content, then call the right reader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from astropy.io import fits

from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io.errors import FileFormatError

FileKind = Literal["cube", "events", "maps", "image", "array"]
_FITS_MAGIC = b"SIMPLE  ="
_GZIP_MAGIC = b"\x1f\x8b"


def _is_fits(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(len(_FITS_MAGIC))
    if head.startswith(_GZIP_MAGIC):
        import gzip

        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(len(_FITS_MAGIC))
        except (OSError, EOFError):
            return False
    return head == _FITS_MAGIC


def file_kind(path: str | os.PathLike) -> FileKind:
    """What a file holds: 'cube' (3-D FITS image with an energy axis), 'events', 'maps' (named 2-D map
    extensions, as napari-sushi writes), 'image' (any other FITS image: a 2-D picture in the primary
    HDU, a stack without energy axis), 'array' (.npy/.npz).

    A file napari-sushi wrote as maps (primary ``SUSHITYP = 'MAPS'``) is 'maps' even when it carries
    the fit's model and residual cubes: those are results, never counts to fit.

    Reads headers only. Raises ``FileNotFoundError`` for a missing path and :class:`FileFormatError`
    for anything else (not FITS, or FITS holding none of these).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; check the path.")
    if p.is_dir():
        raise FileFormatError(f"{p} is a folder; give a FITS, .npy or .npz file.")
    if p.suffix.lower() in (".npy", ".npz"):
        return "array"
    if not _is_fits(p):
        raise FileFormatError(
            f"{p} is not a FITS file (it does not start with 'SIMPLE  ='); give a FITS cube, an event "
            "list, or a .npy/.npz array."
        )
    from napari_sushi.core.io.fits_cube import _find_energy_axis, read_ebounds
    from napari_sushi.core.io.fits_file import column_names, open_fits

    with open_fits(p) as hdul:
        if hdul[0].header.get("SUSHITYP") == "MAPS":
            return "maps"
        images = []
        tables = []
        for i, hdu in enumerate(hdul):
            if isinstance(hdu, fits.BinTableHDU):
                tables.append(hdu.name or f"HDU {i}")
                names = [n.lower() for n in column_names(hdu)]
                if hdu.name.upper() == "EVENTS" or ("x" in names and "y" in names):
                    return "events"
            elif isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
                naxis = int(hdu.header.get("ZNAXIS", hdu.header.get("NAXIS", 0)) or 0)
                if naxis:
                    images.append((naxis, hdu.header, i))
        for naxis, header, _ in images:
            if naxis == 3:
                if _find_energy_axis(header, 3) is not None:
                    return "cube"
                ebounds = read_ebounds(hdul) if "EBOUNDS" in hdul else None
                if ebounds is not None and ebounds[1].size in [int(header.get(f"NAXIS{i}", -1)) for i in (1, 2, 3)]:
                    return "cube"
        if images and all(n == 2 and i > 0 for n, _, i in images):
            return "maps"
        if images:
            return "image"
        detail = f"only the tables {', '.join(tables)}" if tables else "no data at all"
        raise FileFormatError(
            f"{p} is FITS but holds no image, cube or event list ({detail}); an event list needs a table "
            "with sky x and y columns, an image needs data in an image HDU."
        )


def _has_cube_extension(path: str | os.PathLike) -> bool:
    """Whether a FITS file has a 3-D image extension (headers only)."""
    from napari_sushi.core.io.fits_file import open_fits

    with open_fits(Path(path)) as hdul:
        return any(
            int(h.header.get("ZNAXIS", h.header.get("NAXIS", 0)) or 0) == 3
            for h in hdul[1:]
            if isinstance(h, (fits.ImageHDU, fits.CompImageHDU))
        )


def read_cube(path: str | os.PathLike, **binning: Any) -> HyperCube:
    """Read any supported cube source into a :class:`HyperCube`.

    FITS image cubes are read as they are; event lists are binned with
    :func:`~napari_sushi.core.io.events.bin_events` using ``binning`` (band, channel_width, native,
    group, binning, cutout, rmf, arf, progress), the options not given taken from
    :func:`~napari_sushi.core.io.events.default_event_options` (0.5-8 keV on native channels, image
    within 512 pixels), as the napari reader does; ``.npy``/``.npz`` arrays via
    :func:`~napari_sushi.core.io.arrays.read_array_cube`.
    """
    kind = file_kind(path)
    if binning and kind != "events":
        raise CubeError(f"binning options {sorted(binning)} apply to event lists only; {path} is a {kind} file.")
    if kind == "events":
        from napari_sushi.core.io.events import bin_events, default_event_options

        progress = binning.pop("progress", None)
        return bin_events(path, progress=progress, **default_event_options(path, **binning))
    if kind == "array":
        from napari_sushi.core.io.arrays import read_array_cube

        return read_array_cube(path)
    if kind == "maps":
        if _has_cube_extension(path):
            raise FileFormatError(
                f"{path} is a napari-sushi maps file (fit results: maps with model/residual cubes), not counts to "
                "fit; read it with read_maps_fits, or read the cube the fit was made on."
            )
        raise FileFormatError(
            f"{path} holds 2-D maps, not a cube (it has no energy axis); read it with read_maps_fits."
        )
    if kind == "image":
        raise FileFormatError(
            f"{path} holds an image with no energy axis, not a cube; a cube needs CTYPE 'ENER' (CUNIT eV/keV) "
            "or a channel axis with EBOUNDS. Read it with read_fits_image."
        )
    from napari_sushi.core.io.fits_cube import read_fits_cube

    return read_fits_cube(path)
