"""napari sample data: File > Open Sample > "Toy supernova remnant" (generated on the fly, offline).

The ``toy`` preset with seed 0 is simulated from the installed package (its shipped Chandra ACIS-I
response; no network, no file in the repository needed): the counts cube opens as a 3-D layer with
the energy slider in keV, and each truth map (thermal amplitude / kT / velocity, power-law amplitude
/ index) as a hidden 2-D layer on the same spatial grid (scale 1, translate 0 on y and x).
"""

from __future__ import annotations

from typing import Any

from astropy.io import fits

from napari_sushi._napari.layers import cube_layer, map_layer
from napari_sushi.core.io.maps import MapSet

LayerData = tuple[Any, dict[str, Any], str]


def simulated_layers(preset: str = "toy", seed: int = 0) -> list[LayerData]:
    """Layer data tuples of a simulated remnant: the counts cube, then hidden truth maps."""
    from napari_sushi.core.simulate import simulate_remnant

    sim = simulate_remnant(preset, seed)
    cube = sim.cube
    cube.name = f"{preset} remnant (seed {seed})"
    truth_header = fits.Header()
    truth_header["TRUTH"] = (True, "simulated ground truth")
    ms = MapSet(
        maps={k: v.astype("float32") for k, v in sim.truth.items()},
        units=dict(sim.units),
        header=fits.Header(),
        wcs=cube.wcs,
        headers={k: truth_header.copy() for k in sim.truth},
        provenance={"simulation": {"preset": preset, "seed": seed}},
    )
    layers = [cube_layer(cube, source=f"napari-sushi simulate --preset {preset} --seed {seed}")]
    for name in sim.truth:
        data, kwargs, kind = map_layer(ms, name)
        kwargs["visible"] = False
        layers.append((data, kwargs, kind))
    return layers


def toy_remnant() -> list[LayerData]:
    """The toy supernova remnant (preset ``toy``, seed 0) with its truth maps."""
    return simulated_layers("toy", 0)
