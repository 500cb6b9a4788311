"""Which shipped or user models to fit a cube with when none are named: a thermal and a power law on its grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_sushi.core.cube import HyperCube


class NoMatchingModelError(ValueError):
    """No installed model matches the cube's energy grid (message says how to get one)."""


@dataclass(frozen=True)
class DefaultModels:
    """The models chosen for a cube: file paths and registry names (thermal first), and the components
    for which no model matches (empty when both do)."""

    paths: list[str]
    names: list[str]
    missing: list[str]


def default_models(cube: HyperCube) -> DefaultModels:
    """The thermal and power-law models whose energy grid matches ``cube`` (exact grid first, then the
    grid offering both components, then the finest), emulators before other families, then by name.

    Raises :class:`NoMatchingModelError` when no thermal or power-law model matches at all.
    """
    from napari_sushi.core.spectral.base import ModelGridError
    from napari_sushi.core.spectral.files import ModelFileError
    from napari_sushi.core.spectral.registry import list_models, load_model, match_model_to_cube

    grids: dict[tuple, dict] = {}
    for entry in list_models():
        if entry.component not in ("thermal", "powerlaw"):
            continue
        try:
            model = load_model(entry.path)
            _, note = match_model_to_cube(model, cube)
        except (ModelGridError, ModelFileError, OSError):
            continue
        edges = np.asarray(model.energy_edges, float)
        g = grids.setdefault(tuple(np.round(edges, 4)), {"exact": note is None, "n": edges.size - 1, "by": {}})
        rank = (model.meta.family != "emulator", entry.name)
        g["by"].setdefault(entry.component, []).append((rank, str(entry.path), entry.name))
    if not grids:
        ne = cube.n_energy
        ch = "" if cube.channels is None else f", channels {cube.channels[0]}-{cube.channels[-1]}"
        raise NoMatchingModelError(
            f"no installed model matches the cube's energy grid ({ne} bins {cube.energy_edges[0]:.4g}-"
            f"{cube.energy_edges[-1]:.4g} keV{ch}): train one for it with `napari-sushi train --rmf RMF ...` "
            "or name the models (see `napari-sushi models`)."
        )
    best = max(grids.values(), key=lambda g: (len(g["by"]), g["exact"], g["n"]))
    picked = [min(best["by"][c]) for c in ("thermal", "powerlaw") if c in best["by"]]
    return DefaultModels(
        paths=[path for _, path, _ in picked],
        names=[name for _, _, name in picked],
        missing=[c for c in ("thermal", "powerlaw") if c not in best["by"]],
    )
