"""FITS cubes: round trips with spectral/celestial WCS and maps, energy-axis detection, bad files."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io import FileFormatError, read_fits_cube, read_maps_fits, write_cube_fits


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.48, -59.13]
    w.wcs.crpix = [5.5, 4.0]
    w.wcs.cdelt = [-0.0005, 0.0005]
    return w


def _cube(edges=None, channels=None):
    rng = np.random.default_rng(0)
    edges = np.linspace(0.5, 2.5, 11) if edges is None else np.asarray(edges)
    counts = rng.poisson(2.0, size=(edges.size - 1, 6, 9)).astype(np.int32)
    return HyperCube(counts, edges, wcs=_wcs(), exposure=1234.5, channels=channels, name="toy")


def test_round_trip_uniform_cube_with_maps(tmp_path):
    cube = _cube()
    kt = np.linspace(1, 3, 54).reshape(6, 9)
    path = write_cube_fits(
        cube,
        tmp_path / "c.fits",
        maps={"thermal kT": kt},
        units={"thermal kT": "keV"},
        header={"SIMSEED": 42},
        map_header={"TRUTH": True},
    )
    back = read_fits_cube(path)
    np.testing.assert_array_equal(back.counts, cube.counts)
    np.testing.assert_allclose(back.energy_edges, cube.energy_edges)
    assert back.exposure == 1234.5 and back.channels is None
    assert back.wcs.pixel_to_world(3, 2).separation(cube.wcs.pixel_to_world(3, 2)).arcsec < 1e-6
    with fits.open(path) as h:
        assert h[0].header["CTYPE3"] == "ENER" and h[0].header["CUNIT3"] == "keV"
        assert np.isclose(h[0].header["CRVAL3"], 0.6) and np.isclose(h[0].header["CDELT3"], 0.2)
        assert h[0].header["SIMSEED"] == 42
        assert [hdu.name for hdu in h] == ["PRIMARY", "EBOUNDS", "thermal kT"]
    ms = read_maps_fits(path)
    np.testing.assert_allclose(ms.maps["thermal kT"], kt)
    assert ms.units["thermal kT"] == "keV" and ms.headers["thermal kT"]["TRUTH"] is True


def test_non_uniform_bins_and_channels_survive(tmp_path):
    edges = np.array([0.5, 0.6, 0.8, 1.2, 2.0])
    cube = _cube(edges, channels=[35, 42, 56, 83])
    back = read_fits_cube(write_cube_fits(cube, tmp_path / "c.fits"))
    np.testing.assert_allclose(back.energy_edges, edges)
    np.testing.assert_array_equal(back.channels, [35, 42, 56, 83])


def test_overwrite_refused_and_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    cube = _cube()
    path = tmp_path / "c.fits"
    write_cube_fits(cube, path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrit"):
        write_cube_fits(cube, path)
    original = fits.HDUList.writeto

    def failing(self, name, *args, **kwargs):
        original(self, name, *args, **kwargs)  # a complete temp file exists ...
        with open(name, "r+b") as fh:
            fh.truncate(2880)  # ... then gets cut short,
        raise OSError("No space left on device")  # and the write fails

    monkeypatch.setattr(fits.HDUList, "writeto", failing)
    with pytest.raises(OSError, match="No space"):
        write_cube_fits(cube, path, overwrite=True)
    with pytest.raises(OSError, match="No space"):
        write_cube_fits(cube, tmp_path / "new.fits")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.fits"]


def _write_raw(path, data, header_cards, ebounds=None):
    hdus = [fits.PrimaryHDU(data=data)]
    for k, v in header_cards.items():
        hdus[0].header[k] = v
    if ebounds is not None:
        e = np.asarray(ebounds, dtype=float)
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column(name="CHANNEL", format="J", array=np.arange(1, e.size)),
                    fits.Column(name="E_MIN", format="E", unit="keV", array=e[:-1]),
                    fits.Column(name="E_MAX", format="E", unit="keV", array=e[1:]),
                ],
                name="EBOUNDS",
            )
        )
    fits.HDUList(hdus).writeto(path)
    return path


def test_energy_axis_in_ev_on_the_first_fits_axis_is_moved_first(tmp_path):
    # numpy (y, x, E) = FITS axes E (1), x (2), y (3)
    data = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    path = _write_raw(
        tmp_path / "ev.fits",
        data,
        {
            "CTYPE1": "ENER",
            "CUNIT1": "eV",
            "CRPIX1": 1.0,
            "CRVAL1": 1500.0,
            "CDELT1": 1000.0,
            "CTYPE2": "RA---TAN",
            "CTYPE3": "DEC--TAN",
            "CRVAL2": 10.0,
            "CRVAL3": 20.0,
            "CRPIX2": 3.0,
            "CRPIX3": 2.5,
            "CDELT2": -0.001,
            "CDELT3": 0.001,
            "EXPOSURE": 50.0,
        },
    )
    cube = read_fits_cube(path)
    assert cube.shape == (3, 4, 5)
    np.testing.assert_allclose(cube.energy_edges, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(cube.counts, np.moveaxis(data, 2, 0))
    assert cube.wcs is not None and cube.exposure == 50.0
    sky = cube.wcs.pixel_to_world(2, 1.5)  # 0-based (x, y) = FITS (3, 2.5): the reference pixel
    assert abs(sky.ra.deg - 10.0) < 1e-9 and abs(sky.dec.deg - 20.0) < 1e-9


def test_channel_axis_with_ebounds(tmp_path):
    data = np.ones((4, 3, 3))
    path = _write_raw(tmp_path / "ch.fits", data, {"CTYPE3": "PI"}, ebounds=[0.3, 0.5, 1.0, 2.0, 4.0])
    cube = read_fits_cube(path)
    np.testing.assert_allclose(cube.energy_edges, [0.3, 0.5, 1.0, 2.0, 4.0], rtol=1e-6)
    assert cube.wcs is None
    no_eb = _write_raw(tmp_path / "ch2.fits", data, {"CTYPE3": "PI"})
    with pytest.raises(FileFormatError, match="no EBOUNDS"):
        read_fits_cube(no_eb)


def test_fits_without_energy_axis_or_2d_is_refused(tmp_path):
    plain = _write_raw(tmp_path / "plain.fits", np.ones((3, 4, 4)), {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"})
    with pytest.raises(FileFormatError, match="no energy axis"):
        read_fits_cube(plain)
    flat = _write_raw(tmp_path / "flat.fits", np.ones((4, 4)), {})
    with pytest.raises(FileFormatError, match="2-D image has no energy axis"):
        read_fits_cube(flat)
    nounit = _write_raw(tmp_path / "nounit.fits", np.ones((3, 4, 4)), {"CTYPE3": "ENER", "CRVAL3": 1.0})
    with pytest.raises(FileFormatError, match="CUNIT3"):
        read_fits_cube(nounit)


def test_nan_and_negative_counts_in_fits_are_refused(tmp_path):
    cards = {"CTYPE3": "ENER", "CUNIT3": "keV", "CRVAL3": 1.0, "CDELT3": 0.5, "CRPIX3": 1.0}
    a = np.ones((3, 4, 4))
    a[1, 2, 2] = np.nan
    with pytest.raises(CubeError, match="NaN"):
        read_fits_cube(_write_raw(tmp_path / "nan.fits", a, cards))
    a[1, 2, 2] = -3
    with pytest.raises(CubeError, match="negative"):
        read_fits_cube(_write_raw(tmp_path / "neg.fits", a, cards))


def test_bad_maps_are_refused(tmp_path):
    cube = _cube()
    with pytest.raises(CubeError, match="must match the image plane"):
        write_cube_fits(cube, tmp_path / "x.fits", maps={"m": np.ones((3, 3))})
    with pytest.raises(CubeError, match="reserved"):
        write_cube_fits(cube, tmp_path / "x.fits", maps={"ebounds": np.ones((6, 9))})
    assert not (tmp_path / "x.fits").exists()
