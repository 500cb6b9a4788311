"""napari sample data: the toy remnant's layers, their alignment, and File > Open Sample in a viewer."""

import time

import numpy as np
import pytest

from napari_sushi._napari.sample_data import toy_remnant
from napari_sushi.core.simulate import simulate_remnant


def test_toy_layers_cube_then_hidden_truth():
    t0 = time.perf_counter()
    layers = toy_remnant()
    elapsed = time.perf_counter() - t0
    assert elapsed < 15  # ~2-3 s on a 2-core machine; generous for loaded CI runners
    data, kw, kind = layers[0]
    assert kind == "image" and data.shape == (375, 94, 94)
    assert kw["metadata"]["energy_edges"][0] == pytest.approx(3.0076, abs=1e-4)
    truth = layers[1:]
    assert len(truth) == 5
    for d, k, kd in truth:
        assert kd == "image" and d.shape == (94, 94)
        assert k["visible"] is False and k["metadata"]["truth"] is True
        # same spatial grid as the cube's y, x axes
        assert tuple(k["scale"]) == tuple(kw["scale"][1:]) and tuple(k["translate"]) == tuple(kw["translate"][1:])
    sim = simulate_remnant("toy", 0)
    assert np.array_equal(data, sim.cube.counts)
    names = [k["name"] for _, k, _ in truth]
    assert any("kT" in n for n in names) and any("index" in n for n in names)


@pytest.mark.gui
def test_open_sample_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-sushi", "toy_remnant")
    assert len(viewer.layers) == 6
    cube = viewer.layers[0]
    assert cube.data.shape == (375, 94, 94) and cube.visible
    assert all(not lyr.visible for lyr in list(viewer.layers)[1:])
    # world extents of the truth maps coincide with the cube's spatial extent
    for lyr in list(viewer.layers)[1:]:
        assert np.allclose(lyr.extent.world[:, -2:], cube.extent.world[:, -2:])
