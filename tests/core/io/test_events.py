"""Event-list binning: counts conservation, bin membership, WCS, channels, cut-outs and bad inputs."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io import FileFormatError, bin_events, event_summary
from napari_sushi.core.io.synthetic import synthetic_events, write_event_file

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
MSH = DATA / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
needs_msh = pytest.mark.skipif(not MSH.exists(), reason=f"real data not found at {MSH} (../shared/data absent)")


def _columns(path):
    with fits.open(path) as h:
        d = h["EVENTS"].data
        return {n: np.asarray(d[n], dtype=float) for n in d.columns.names}, h["EVENTS"].header


def _independent_wcs(header, names, xcol="x", ycol="y"):
    """Sky-pixel WCS built here from the TC* keywords, independently of the code under test."""
    ix, iy = names.index(xcol) + 1, names.index(ycol) + 1
    w = WCS(naxis=2)
    w.wcs.ctype = [header[f"TCTYP{ix}"], header[f"TCTYP{iy}"]]
    w.wcs.crval = [header[f"TCRVL{ix}"], header[f"TCRVL{iy}"]]
    w.wcs.crpix = [header[f"TCRPX{ix}"], header[f"TCRPX{iy}"]]
    w.wcs.cdelt = [header[f"TCDLT{ix}"], header[f"TCDLT{iy}"]]
    return w


@pytest.fixture
def evt(tmp_path):
    return write_event_file(tmp_path / "evt.fits")


def test_every_event_lands_in_its_energy_and_pixel_bin(evt):
    cols, header = _columns(evt)
    cube = bin_events(evt, band=(1.0, 7.0), channel_width=0.5, binning=8)
    e = cols["energy"] / 1000
    inband = (e >= 1.0) & (e < 7.0)
    assert cube.total_counts == inband.sum()
    assert cube.n_energy == 12 and np.allclose(cube.energy_edges, np.arange(1.0, 7.01, 0.5))
    # rebuild the cube by an explicit loop over events with the field documented in the header
    x0, y0 = cube.header["FIELDX0"], cube.header["FIELDY0"]
    assert x0 <= cols["x"].min() and y0 <= cols["y"].min()
    expected = np.zeros(cube.shape, dtype=int)
    for xi, yi, ei in zip(cols["x"][inband], cols["y"][inband], e[inband]):
        expected[int((ei - 1.0) // 0.5), int((yi - y0) // 8), int((xi - x0) // 8)] += 1
    np.testing.assert_array_equal(cube.counts, expected)
    assert cube.exposure == 10000.0
    assert cube.header["SPBIN"] == 8


def test_wcs_of_binned_image_puts_each_event_in_its_pixel(tmp_path):
    # events spread widely so each one is alone in its (coarse) bin of a short band
    cols = synthetic_events(n=60, seed=3, spread=300.0, energy_range=(2.0, 3.0))
    path = write_event_file(tmp_path / "sparse.fits", cols)
    stored, header = _columns(path)
    sky_wcs = _independent_wcs(header, ["x", "y", "energy", "pi"])
    cube = bin_events(path, band=(2.0, 3.0), channel_width=1.0, binning=4)
    image = cube.counts[0]
    for x, y in zip(stored["x"], stored["y"]):
        sky = sky_wcs.pixel_to_world(x - 1, y - 1)  # column values are 1-based FITS sky pixels
        px, py = cube.wcs.world_to_pixel(sky)
        ix, iy = int(np.round(px)), int(np.round(py))
        assert image[iy, ix] >= 1
    # each pixel centre maps back to a sky pixel inside the block of 4x4 sky pixels it covers
    sky = cube.wcs.pixel_to_world(0, 0)
    sx, sy = sky_wcs.world_to_pixel(sky)
    assert np.isclose(sx + 1, cube.header["FIELDX0"] + 2.0, atol=1e-6)
    assert np.isclose(sy + 1, cube.header["FIELDY0"] + 2.0, atol=1e-6)


def test_cutout_keeps_only_events_in_the_field(evt):
    cols, _ = _columns(evt)
    cube = bin_events(evt, band=(0.5, 8.0), channel_width=0.5, binning=5, cutout=(4080, 4120, 4070, 4110))
    assert cube.shape[1:] == (8, 8)
    e = cols["energy"] / 1000
    keep = (e >= 0.5) & (e < 8) & (cols["x"] >= 4080) & (cols["x"] < 4120) & (cols["y"] >= 4070) & (cols["y"] < 4110)
    assert cube.total_counts == keep.sum() > 0


def test_native_channels_with_grouping_record_channel_numbers(evt):
    cols, _ = _columns(evt)
    cube = bin_events(evt, band=(1.0, 2.0), native=True, group=3, binning=16)
    # ACIS channel i covers (i-1)*14.6 .. i*14.6 eV; first channel wholly above 1 keV is 70 (1.0074 keV)
    assert cube.channels[0] == 70 and np.all(np.diff(cube.channels) == 3)
    assert np.isclose(cube.energy_edges[0], 69 * 0.0146)
    assert np.allclose(np.diff(cube.energy_edges), 3 * 0.0146)
    assert cube.energy_edges[-1] <= 2.0
    pi = cols["pi"]
    last = cube.channels[-1] + 2
    assert cube.total_counts == ((pi >= 70) & (pi <= last)).sum()


def test_pi_only_list_uses_acis_mapping_and_refuses_unknown_instruments(tmp_path):
    c = synthetic_events(n=500, seed=1)
    cols = {"x": c["x"], "y": c["y"], "pi": c["pi"]}
    acis = write_event_file(tmp_path / "acis.fits", cols)
    cube = bin_events(acis, band=(1.0, 3.0), channel_width=0.2, binning=16)
    centres = (c["pi"] - 0.5) * 0.0146
    assert cube.total_counts == ((centres >= 1.0) & (centres < 3.0)).sum()
    other = write_event_file(tmp_path / "other.fits", cols, telescope="XMM", instrument="EPN")
    with pytest.raises(FileFormatError, match="RMF"):
        bin_events(other, band=(1.0, 3.0), channel_width=0.2, binning=16)
    # with an EBOUNDS table (here 10 eV channels) the mapping comes from it
    ch = np.arange(1, 1025)
    ebounds = (np.arange(1025) * 0.01, ch)
    withmap = write_event_file(tmp_path / "eb.fits", cols, telescope="XMM", ebounds=ebounds)
    cube = bin_events(withmap, band=(1.0, 3.0), channel_width=0.2, binning=16)
    centres = (c["pi"] - 0.5) * 0.01
    assert cube.total_counts == ((centres >= 1.0) & (centres < 3.0)).sum()


def test_progress_is_reported(evt):
    calls = []
    bin_events(evt, band=(0.5, 8), channel_width=0.5, binning=8, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] == 2000


def test_summary(evt):
    s = event_summary(evt)
    cols, _ = _columns(evt)
    assert s.n_events == 2000
    assert np.isclose(s.energy_range[0], cols["energy"].min() / 1000)
    assert np.isclose(s.x_range[1], cols["x"].max())
    assert s.exposure == 10000.0 and s.wcs is not None


@pytest.mark.parametrize("missing", ["x", "y", "energy_and_pi"])
def test_table_without_needed_columns_is_refused(tmp_path, missing):
    c = synthetic_events(n=50)
    if missing == "energy_and_pi":
        c.pop("energy"), c.pop("pi")
        c["time"] = np.arange(50.0)
    else:
        c.pop(missing)
    path = write_event_file(tmp_path / "bad.fits", c)
    want = "energy or pi" if missing == "energy_and_pi" else f"column\\(s\\) {missing}"
    with pytest.raises(FileFormatError, match=want):
        bin_events(path, band=(0.5, 8), channel_width=0.5)


def test_band_with_no_events_and_bad_options(evt):
    with pytest.raises(CubeError, match="no events fall in the band"):
        bin_events(evt, band=(11.0, 12.0), channel_width=0.5, binning=8)
    with pytest.raises(CubeError, match="no events"):
        bin_events(evt, band=(0.5, 8.0), channel_width=0.5, binning=4, cutout=(100, 200, 100, 200))
    with pytest.raises(CubeError, match="invalid"):
        bin_events(evt, band=(5.0, 2.0))
    with pytest.raises(CubeError, match="whole number of"):
        bin_events(evt, band=(0.5, 8.0), channel_width=0.7)
    with pytest.raises(CubeError, match="binning"):
        bin_events(evt, binning=0)
    with pytest.raises(CubeError, match="not both"):
        bin_events(evt, channel_width=0.1, native=True)
    with pytest.raises(CubeError, match="too large"):
        bin_events(evt, band=(0.5, 8.0), channel_width=0.5, binning=1, cutout=(0, 20000, 0, 20000))


def test_missing_and_non_fits_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bin_events(tmp_path / "nope.fits")
    junk = tmp_path / "junk.fits"
    junk.write_text("not a fits file at all\n" * 10)
    with pytest.raises(FileFormatError, match="not a readable FITS"):
        bin_events(junk)


@needs_msh
def test_msh1552_counts_equal_events_in_band_and_field():
    cube = bin_events(MSH, band=(0.5, 8.0), channel_width=0.1, binning=4)
    with fits.open(MSH, memmap=True) as h:
        d = h["EVENTS"].data
        e, x, y = (np.asarray(d[c], dtype=float) for c in ("energy", "x", "y"))
    inband = (e >= 500) & (e < 8000)
    assert cube.total_counts == inband.sum() == 214423  # the README count of 0.5-8 keV events
    # a cut-out: the field is [x0, x0 + nx*4) x [y0, y0 + ny*4)
    cut = bin_events(MSH, band=(0.5, 8.0), channel_width=0.1, binning=4, cutout=(3800, 4400, 3700, 4300))
    assert cut.shape == (75, 150, 150)
    field = (x >= 3800) & (x < 4400) & (y >= 3700) & (y < 4300)
    assert cut.total_counts == (inband & field).sum()


@needs_msh
def test_msh1552_wcs_puts_events_in_the_pixels_that_hold_them():
    cube = bin_events(MSH, band=(0.5, 8.0), channel_width=0.1, binning=4)
    with fits.open(MSH, memmap=True) as h:
        hdu = h["EVENTS"]
        names = [n.lower() for n in hdu.columns.names]
        sky_wcs = _independent_wcs(hdu.header, names)
        rng = np.random.default_rng(7)
        idx = rng.choice(len(hdu.data), 400, replace=False)
        x = np.asarray(hdu.data["x"][idx], dtype=float)
        y = np.asarray(hdu.data["y"][idx], dtype=float)
        e = np.asarray(hdu.data["energy"][idx], dtype=float) / 1000
    keep = (e >= 0.5) & (e < 8.0)
    sky = sky_wcs.pixel_to_world(x[keep] - 1, y[keep] - 1)
    px, py = cube.wcs.world_to_pixel(sky)
    ix, iy = np.round(px).astype(int), np.round(py).astype(int)
    k = np.floor((e[keep] - 0.5) / 0.1 + 1e-9).astype(int)
    assert np.all(cube.counts[k, iy, ix] >= 1)
    # and the event's own block of 4x4 sky pixels is that pixel (field origin from the header)
    np.testing.assert_array_equal(ix, np.floor((x[keep] - cube.header["FIELDX0"]) / 4).astype(int))
    np.testing.assert_array_equal(iy, np.floor((y[keep] - cube.header["FIELDY0"]) / 4).astype(int))
