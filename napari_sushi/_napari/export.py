"""Export actions of the dock: a run's maps to one multi-extension FITS file (via the core)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def default_export_name(run_label: str, cube_name: str = "") -> str:
    """A file name for a run, e.g. ``toy_remnant_SUSHI1_kmad1.fits``."""
    stem = f"{cube_name}_{run_label}" if cube_name else run_label
    stem = stem.replace("#", "").replace("=", "").replace(".", "p")
    stem = re.sub(r"[^A-Za-z0-9_+-]+", "_", stem).strip("_")
    return f"{stem or 'sushi_maps'}.fits"


def export_run(result: Any, path: str | Path, include_cubes: bool = False, overwrite: bool = True) -> Path:
    """Write every map, σ map and the goodness of fit (and optionally the model and residual cubes)
    of a FitResult to ``path`` with WCS, BUNIT, settings and model hashes; atomic (core writer).
    ``overwrite`` defaults to True because the save dialog has already asked."""
    path = Path(path)
    if path.suffix.lower() not in {".fits", ".fit", ".fts"}:
        path = path.with_suffix(".fits")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist; choose an existing folder.")
    result.to_fits(path, include_cubes=include_cubes, overwrite=overwrite)
    return path
