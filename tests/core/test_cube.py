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


@pytest.mark.parametrize("style", ["spbin", "ltv"])
def test_crop_and_rebin_keep_sky_and_physical_coordinates_on_the_same_pixels(style):
    from astropy.io import fits
    from astropy.wcs import WCS

    from napari_sushi.core.regions import sky_to_image

    rng = np.random.default_rng(0)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.5, -59.1]
    w.wcs.crpix = [10.5, 12.0]
    w.wcs.cdelt = [-1e-3, 1e-3]
    h = fits.Header()
    if style == "spbin":
        h["SPBIN"], h["FIELDX0"], h["FIELDY0"] = 8, 3900.0, 4010.0
    else:
        h["LTM1_1"], h["LTM2_2"], h["LTV1"], h["LTV2"] = 0.125, 0.125, -487.0, -500.5
    cube = HyperCube(rng.poisson(2.0, (4, 24, 20)).astype(float), np.linspace(1, 5, 5), wcs=w, header=h)
    phys = np.array([3951.3, 4077.9])  # a physical (sky-pixel, 1-based) position inside the field

    def image0(c):
        sx, ox, sy, oy = sky_to_image(c.header)
        return np.array([sx * (phys[0] - 1) + ox, sy * (phys[1] - 1) + oy])

    full = image0(cube)
    np.testing.assert_allclose(image0(cube.crop(5, 20, 3, 17)), full - [3, 5], atol=1e-9)
    np.testing.assert_allclose(image0(cube.rebin_spatial(2)), (full + 0.5) / 2 - 0.5, atol=1e-9)
    # the celestial WCS moves the same way
    sky = cube.wcs.pixel_to_world(*full)
    np.testing.assert_allclose(cube.crop(5, 20, 3, 17).wcs.world_to_pixel(sky), full - [3, 5], atol=1e-6)
    np.testing.assert_allclose(cube.rebin_spatial(2).wcs.world_to_pixel(sky), (full + 0.5) / 2 - 0.5, atol=1e-6)


def test_tiles_cover_the_image_once_with_halos():
    cube = HyperCube(np.arange(3 * 23 * 17, dtype=float).reshape(3, 23, 17), np.linspace(1, 4, 4))
    seen = np.zeros((23, 17), int)
    stitched = np.zeros((3, 23, 17))
    for core, inner, t in cube.tiles(8, halo=3):
        seen[core] += 1
        stitched[:, core[0], core[1]] = t.counts[:, inner[0], inner[1]]
        assert t.shape[1] <= 8 + 6 and t.shape[2] <= 8 + 6
    assert np.all(seen == 1)
    np.testing.assert_array_equal(stitched, cube.counts)
    with pytest.raises(CubeError):
        cube.crop(0, 0, 0, 5)
    with pytest.raises(CubeError):
        cube.tiles(0)
