"""napari reader and writer contributions (functions without a viewer, plus one real viewer)."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi._napari.reader import get_reader
from napari_sushi._napari.writer import write_image
from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io import read_fits_cube, read_maps_fits, write_cube_fits, write_maps_fits
from napari_sushi.core.io.synthetic import write_event_file


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.48, -59.13]
    w.wcs.crpix = [3.0, 2.0]
    w.wcs.cdelt = [-0.0005, 0.0005]
    return w


@pytest.fixture
def cube_file(tmp_path):
    counts = np.random.default_rng(1).poisson(3, (10, 6, 7)).astype(np.int32)
    cube = HyperCube(counts, np.linspace(3.0, 8.0, 11), wcs=_wcs(), exposure=500.0, name="toy")
    maps = {"kT": np.full((6, 7), 2.0), "brightness": np.ones((6, 7))}
    path = write_cube_fits(cube, tmp_path / "toy.fits", maps={"kT": maps["kT"]}, units={"kT": "keV"},
                           map_header={"TRUTH": True})
    return path, cube


def test_cube_opens_as_one_layer_with_energy_in_kev_and_hidden_truth_maps(cube_file):
    path, cube = cube_file
    reader = get_reader(str(path))
    assert callable(reader)
    layers = reader(str(path))
    data, kw, kind = layers[0]
    assert kind == "image" and data.shape == (10, 6, 7)
    np.testing.assert_array_equal(data, cube.counts)
    assert np.allclose(kw["scale"], (0.5, 1, 1)) and np.allclose(kw["translate"], (3.25, 0, 0))
    assert kw["axis_labels"] == ("energy", "y", "x") and kw["units"][0] == "keV"
    md = kw["metadata"]
    np.testing.assert_allclose(md["energy_edges"], cube.energy_edges)
    assert md["exposure"] == 500.0 and md["wcs"] is not None and "RA---TAN" in md["wcs_header"]
    truth = layers[1]
    assert truth[1]["visible"] is False and truth[1]["metadata"]["unit"] == "keV"
    assert np.allclose(truth[1]["scale"], (1, 1))


def test_non_uniform_bins_use_bin_index(tmp_path):
    cube = HyperCube(np.ones((3, 4, 4)), [1.0, 1.5, 2.5, 5.0])
    path = write_cube_fits(cube, tmp_path / "nu.fits")
    data, kw, _ = get_reader(str(path))(str(path))[0]
    assert kw["scale"][0] == 1.0 and "bin index" in kw["metadata"]["energy_axis"]


def test_event_list_and_arrays_open(tmp_path):
    evt = write_event_file(tmp_path / "evt.fits")
    layers = get_reader(str(evt))(str(evt))
    assert len(layers) == 1
    data, kw, _ = layers[0]
    assert data.shape[0] == 75 and np.isclose(kw["scale"][0], 0.1)
    np.savez(tmp_path / "c.npz", counts=np.ones((4, 3, 3)), energy_edges=[1, 2, 3, 4, 5])
    data, kw, _ = get_reader(str(tmp_path / "c.npz"))(str(tmp_path / "c.npz"))[0]
    assert np.isclose(kw["translate"][0], 1.5) and kw["units"][0] == "keV"
    np.save(tmp_path / "bare.npy", np.ones((4, 3, 3)))
    with pytest.warns(UserWarning, match="no energy_edges"):
        data, kw, _ = get_reader(str(tmp_path / "bare.npy"))(str(tmp_path / "bare.npy"))[0]
    assert kw["units"][0] == "dimensionless" and "channel index" in kw["metadata"]["energy_axis"]


def test_reader_declines_files_it_cannot_handle(tmp_path):
    fits.PrimaryHDU(np.ones((3, 4, 4))).writeto(tmp_path / "noaxis.fits")
    (tmp_path / "notes.fits").write_text("not fits")
    assert get_reader(str(tmp_path / "noaxis.fits")) is None
    assert get_reader(str(tmp_path / "notes.fits")) is None
    assert get_reader(str(tmp_path / "missing.fits")) is None
    assert get_reader(str(tmp_path)) is None


def test_writer_round_trips_cube_and_map(cube_file, tmp_path):
    path, cube = cube_file
    data, kw, _ = get_reader(str(path))(str(path))[0]
    out = write_image(str(tmp_path / "saved.fits"), data, kw)
    back = read_fits_cube(out[0])
    np.testing.assert_array_equal(back.counts, cube.counts)
    np.testing.assert_allclose(back.energy_edges, cube.energy_edges)
    assert back.wcs is not None and back.exposure == 500.0
    meta = {"unit": "km/s", "wcs": _wcs(), "provenance": {"component": "thermal", "seed": 1}}
    out = write_image(str(tmp_path / "v.fits"), np.full((6, 7), 300.0), {"name": "velocity", "metadata": meta})
    ms = read_maps_fits(out[0])
    assert ms.units["velocity"] == "km/s" and ms.provenance == meta["provenance"] and ms.wcs is not None
    with pytest.raises(CubeError, match="no energy axis"):
        write_image(str(tmp_path / "x.fits"), np.ones((3, 4, 4)), {"name": "stack", "metadata": {}})
    with pytest.raises(CubeError, match="4-D"):
        write_image(str(tmp_path / "y.fits"), np.ones((2, 3, 4, 4)), {"name": "t"})


def test_map_file_opens_as_layers(tmp_path):
    path = write_maps_fits(tmp_path / "m.fits", {"kT": np.ones((4, 4)), "norm": np.zeros((4, 4))},
                           wcs=_wcs(), units={"kT": "keV"})
    layers = get_reader(str(path))(str(path))
    assert [lay[1]["name"] for lay in layers] == ["kT", "norm"]
    assert all(lay[1]["visible"] for lay in layers)


def test_binned_cube_opens_in_a_real_viewer(make_napari_viewer, tmp_path):
    evt = write_event_file(tmp_path / "evt.fits")
    cube_path = tmp_path / "binned.fits"
    from napari_sushi.core.io import bin_events

    cube = bin_events(evt, band=(0.5, 8.0), channel_width=0.5, binning=8)
    write_cube_fits(cube, cube_path, maps={"truth kT": np.ones(cube.shape[1:])}, map_header={"TRUTH": True})
    viewer = make_napari_viewer(show=False)
    layers = viewer.open(str(cube_path), plugin="napari-sushi")
    assert [lay.name for lay in layers][0] == "binned"
    layer = layers[0]
    assert layer.data.shape == cube.shape and layers[1].visible is False
    # the energy slider reads keV: world coordinate of slice i is the centre of bin i
    assert viewer.dims.axis_labels[0] == "energy"
    lo, hi, step = viewer.dims.range[0]
    assert np.isclose(step, 0.5) and np.isclose(lo, 0.75)
    viewer.dims.set_point(0, 3.25)  # 3.0-3.5 keV -> bin 5
    assert viewer.dims.current_step[0] == 5
    np.testing.assert_allclose(layer.metadata["energy_edges"], cube.energy_edges)
