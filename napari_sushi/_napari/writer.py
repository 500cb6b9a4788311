"""napari writer contribution: image layers to FITS.

A 3-D layer with an energy axis (metadata from the reader, or a keV scale) becomes a cube FITS
(spectral + celestial WCS, EBOUNDS); a 2-D layer becomes a map FITS with its unit (``BUNIT``),
celestial WCS and provenance from ``metadata``. napari's save dialog has already asked before
replacing a file, so an existing file is overwritten (atomically).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io import write_cube_fits, write_maps_fits
from napari_sushi._napari.layers import cube_from_layer, wcs_from_meta


def write_image(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write one image layer to ``path`` (FITS) and return the list of written paths."""
    out = Path(path)
    if not out.name.lower().endswith((".fits", ".fit", ".fts", ".fits.gz")):
        out = out.with_name(out.name + ".fits")
    arr = np.asarray(data[0] if isinstance(data, list) else data)
    meta = dict(attributes.get("metadata") or {})
    name = str(attributes.get("name") or "map")
    if meta.get("napari_sushi_result") and meta.get("key"):  # a result map: its quantity, not the layer label
        name = str(meta["key"]) + (" sigma" if meta.get("kind") == "sigma" else "")
    name = name.replace("σ", "sigma").encode("ascii", "replace").decode().replace("?", "_")
    if arr.ndim == 3:
        if attributes.get("rgb"):
            raise CubeError("RGB images are not cubes or maps; save them with napari's builtin writer.")
        cube = cube_from_layer(arr, attributes)
        provenance = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else None
        write_cube_fits(cube, out, header=provenance, overwrite=True)
    elif arr.ndim == 2:
        unit = meta.get("unit") or meta.get("bunit") or ""
        wcs = wcs_from_meta(meta.get("wcs") if meta.get("wcs") is not None else meta.get("wcs_header"))
        provenance = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else None
        map_header = {"TRUTH": True} if meta.get("truth") else None
        write_maps_fits(
            out, {name: arr}, wcs=wcs, units={name: str(unit)}, header=provenance, overwrite=True, map_header=map_header
        )
    else:
        raise CubeError(f"layer {name!r} is {arr.ndim}-D; only 2-D maps and 3-D (energy, y, x) cubes are written.")
    return [str(out)]
