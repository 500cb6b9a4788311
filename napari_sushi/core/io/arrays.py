"""NumPy ``.npy`` / ``.npz`` cubes (loaded without pickle, so a data file cannot run code).

An ``.npz`` may carry ``counts`` (E, Y, X) plus ``energy_edges`` (keV, E + 1) and ``exposure`` (s);
a bare ``.npy`` (or an ``.npz`` without edges) gets channel-index edges 0..E, with a warning.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io.errors import FileFormatError


class NoEnergyEdgesWarning(UserWarning):
    """The array file has no energy edges: the energy axis is the channel index."""


def _read_npz(p: Path, loaded: "np.lib.npyio.NpzFile") -> tuple:
    edges = exposure = None
    with loaded:
        keys = list(loaded.files)
        if "counts" in keys:
            counts = loaded["counts"]
        elif len(keys) == 1:
            counts = loaded[keys[0]]
        else:
            raise FileFormatError(
                f"{p} holds arrays {keys} but none named 'counts'; save the cube as counts=..., "
                "with optional energy_edges=... (keV) and exposure=... (s)."
            )
        if "energy_edges" in keys:
            edges = np.asarray(loaded["energy_edges"], dtype=float)
        if "exposure" in keys:
            exposure = float(np.asarray(loaded["exposure"]).ravel()[0])
    return counts, edges, exposure


def read_array_cube(path: str | os.PathLike) -> HyperCube:
    """Read a cube from ``.npy`` or ``.npz`` (``counts`` [+ ``energy_edges``, ``exposure``])."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; check the path.")
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused on purpose
        raise FileFormatError(f"{p} holds Python objects (pickled data), which are never loaded: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a damaged header can raise SyntaxError, tokenize.TokenError, ...
        raise FileFormatError(f"{p} is not a readable NumPy .npy/.npz file ({exc}).") from exc
    edges = exposure = None
    try:
        if isinstance(loaded, np.lib.npyio.NpzFile):
            counts, edges, exposure = _read_npz(p, loaded)
        else:
            counts = loaded
        counts = np.asarray(counts)
        if counts.dtype.kind not in "biuf":
            raise FileFormatError(
                f"{p} holds {counts.dtype} values; a cube needs numbers (counts). Save it as float or int."
            )
    except FileFormatError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise FileFormatError(
            f"{p} is a damaged NumPy .npy/.npz file ({type(exc).__name__}: {exc}); save it again."
        ) from exc
    counts = np.asarray(counts)
    if edges is None and counts.ndim == 3:
        edges = np.arange(counts.shape[0] + 1, dtype=float)
        warnings.warn(
            f"{p.name} has no energy_edges: the energy axis is the channel index 0..{counts.shape[0]} "
            "(not keV). Save an .npz with energy_edges to get energies.",
            NoEnergyEdgesWarning,
            stacklevel=2,
        )
    if edges is None:
        edges = np.arange(2.0)
    try:
        return HyperCube(counts, edges, exposure=exposure, name=p.stem)
    except CubeError as exc:
        raise CubeError(f"{p}: {exc}") from exc
