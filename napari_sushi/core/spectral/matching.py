"""Check that a spectral model and a cube share an energy grid (or select the model's band)."""

from __future__ import annotations

import numpy as np

from napari_sushi.core.cube import HyperCube
from napari_sushi.core.spectral.base import ModelGridError, SpectralModel


def _describe(edges: np.ndarray, channels: np.ndarray | None) -> str:
    ch = "" if channels is None or len(channels) == 0 else f", channels {int(channels[0])}-{int(channels[-1])}"
    return f"{len(edges) - 1} bins {edges[0]:.4f}-{edges[-1]:.4f} keV{ch}"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-4)


def match_model_to_cube(model: SpectralModel, cube: HyperCube) -> tuple[HyperCube, str | None]:
    """Return ``(cube, None)`` when the grids agree, ``(cube_in_band, message)`` when the cube covers the
    model's band on the same channels (the band is selected and the message says so); otherwise raise
    :class:`ModelGridError` naming both grids."""
    me = np.asarray(model.energy_edges, float)
    mc = model.meta.channels
    ce = cube.energy_edges
    cc = cube.channels
    if _same(me, ce) and (mc is None or cc is None or np.array_equal(mc, cc)):
        return cube, None
    if ce.size > me.size and ce[0] <= me[0] + 1e-4 and ce[-1] >= me[-1] - 1e-4:
        i0 = int(np.argmin(np.abs(ce - me[0])))
        sub = ce[i0 : i0 + me.size]
        if sub.size == me.size and _same(sub, me):
            sub_ch = None if cc is None else cc[i0 : i0 + me.size - 1]
            if mc is None or sub_ch is None or np.array_equal(sub_ch, mc):
                out = cube.select_band(float(me[0]), float(me[-1]))
                msg = (
                    f"cube ({_describe(ce, cc)}) restricted to the band of model '{model.component}' "
                    f"({_describe(me, mc)}): {cube.n_energy - out.n_energy} bins outside it are not used."
                )
                return out, msg
    raise ModelGridError(
        f"spectral model '{model.component}' ({model.meta.family}) was built for {_describe(me, mc)} "
        f"(response {model.meta.response_id or '?'}), but the cube has {_describe(ce, cc)}. Bin the data on "
        "the model's channels (e.g. `napari-sushi bin --native` over the model's band) or train a model for "
        "the cube's grid (`napari-sushi train --rmf RMF --arf ARF --band EMIN EMAX --group N`, or "
        "`simulate.preset_for_cube(cube, rmf, arf)` in Python)."
    )
