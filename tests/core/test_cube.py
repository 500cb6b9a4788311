import numpy as np
import pytest
from astropy.wcs import WCS

from napari_sushi.core.cube import CubeError, HyperCube


def _cube(shape=(4, 6, 8)):
    rng = np.random.default_rng(0)
    return HyperCube(rng.poisson(3, size=shape).astype(float), np.linspace(1, 5, shape[0] + 1))


def test_valid_cube_properties():
    c = _cube()
    assert c.shape == (4, 6, 8)
    assert np.allclose(c.energy_centers, [1.5, 2.5, 3.5, 4.5])
    assert c.image().shape == (6, 8)
    assert c.spectrum().sum() == c.total_counts


@pytest.mark.parametrize("shape", [(5, 5), (2, 3, 4, 5)])
def test_wrong_dimensions_are_refused(shape):
    with pytest.raises(CubeError, match="3 axes"):
        HyperCube(np.zeros(shape), np.arange(shape[0] + 1.0))


def test_nan_and_negative_counts_are_refused():
    a = np.ones((3, 4, 4))
    a[0, 1, 1] = np.nan
    with pytest.raises(CubeError, match="NaN"):
        HyperCube(a, np.arange(4.0))
    a[0, 1, 1] = -1
    with pytest.raises(CubeError, match="negative"):
        HyperCube(a, np.arange(4.0))


def test_energy_edges_checked():
    with pytest.raises(CubeError, match="n_energy \\+ 1"):
        HyperCube(np.ones((3, 2, 2)), np.arange(3.0))
    with pytest.raises(CubeError, match="increasing"):
        HyperCube(np.ones((3, 2, 2)), np.array([1.0, 3.0, 2.0, 4.0]))


def test_band_selection_and_spatial_binning_keep_counts_and_wcs():
    c = _cube((4, 6, 8))
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, -20.0]
    w.wcs.crpix = [4.5, 3.5]
    w.wcs.cdelt = [-0.001, 0.001]
    c.wcs = w
    b = c.select_band(2.0, 4.0)
    assert b.n_energy == 2 and np.allclose(b.energy_edges, [2, 3, 4])
    r = c.rebin_spatial(2)
    assert r.shape == (4, 3, 4)
    assert r.total_counts == c.total_counts
    # the centre of binned pixel (0, 0) is the centre of original pixels (0..1, 0..1) -> (0.5, 0.5)
    sky_binned = r.wcs.pixel_to_world(0, 0)
    sky_orig = w.pixel_to_world(0.5, 0.5)
    assert sky_binned.separation(sky_orig).arcsec < 1e-6
