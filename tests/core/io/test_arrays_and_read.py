"""npy/npz cubes and the content-sniffing read_cube entry point, with the bad inputs of issue 2."""

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io import FileFormatError, file_kind, read_cube, write_cube_fits, write_maps_fits
from napari_sushi.core.io.arrays import NoEnergyEdgesWarning
from napari_sushi.core.io.synthetic import write_event_file


def test_npz_with_edges_and_npy_without(tmp_path):
    counts = np.random.default_rng(0).poisson(1.0, (5, 4, 3))
    np.savez(tmp_path / "c.npz", counts=counts, energy_edges=np.linspace(1, 6, 6), exposure=100.0)
    cube = read_cube(tmp_path / "c.npz")
    np.testing.assert_array_equal(cube.counts, counts)
    assert np.allclose(cube.energy_edges, np.linspace(1, 6, 6)) and cube.exposure == 100.0
    np.save(tmp_path / "c.npy", counts)
    with pytest.warns(NoEnergyEdgesWarning, match="channel index"):
        cube = read_cube(tmp_path / "c.npy")
    np.testing.assert_array_equal(cube.energy_edges, np.arange(6.0))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5)])
def test_2d_and_4d_arrays_are_refused(tmp_path, shape):
    np.save(tmp_path / "a.npy", np.ones(shape))
    with pytest.raises(CubeError, match="3 axes"):
        read_cube(tmp_path / "a.npy")


def test_nan_negative_and_pickled_arrays_are_refused(tmp_path):
    a = np.ones((3, 2, 2))
    a[0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", counts=a, energy_edges=np.arange(4.0))
    with pytest.raises(CubeError, match="NaN"):
        read_cube(tmp_path / "nan.npz")
    a[0, 0, 0] = -1
    np.savez(tmp_path / "neg.npz", counts=a, energy_edges=np.arange(4.0))
    with pytest.raises(CubeError, match="negative"):
        read_cube(tmp_path / "neg.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="never loaded"):
        read_cube(tmp_path / "obj.npy")


def test_read_cube_dispatches_by_content(tmp_path):
    evt = write_event_file(tmp_path / "events.fits")
    assert file_kind(evt) == "events"
    cube = read_cube(evt, band=(0.5, 8.0), channel_width=0.5, binning=8)
    assert cube.n_energy == 15 and cube.total_counts > 0
    path = write_cube_fits(cube, tmp_path / "cube.fits")
    assert file_kind(path) == "cube"
    assert read_cube(path).total_counts == cube.total_counts
    with pytest.raises(CubeError, match="event lists only"):
        read_cube(path, binning=2)
    maps = write_maps_fits(tmp_path / "maps.fits", {"a": np.ones((3, 3))})
    assert file_kind(maps) == "maps"
    with pytest.raises(FileFormatError, match="no energy axis"):
        read_cube(maps)


def test_missing_path_non_fits_and_fits_without_energy_axis(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_cube(tmp_path / "missing.fits")
    text = tmp_path / "notes.fits"
    text.write_text("hello")
    with pytest.raises(FileFormatError, match="not a FITS file"):
        read_cube(text)
    fits.PrimaryHDU(np.ones((3, 4, 4))).writeto(tmp_path / "noaxis.fits")
    with pytest.raises(FileFormatError, match="no energy"):
        read_cube(tmp_path / "noaxis.fits")
