"""Responses travel with the data: found as X-ray tools find them, kept by cube copies, written as
OGIP RESPFILE/ANCRFILE and read back, and their EBOUNDS map PI channels."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.core.cube import HyperCube
from napari_sushi.core.io import (
    ResponseFiles,
    bin_events,
    find_response,
    read_cube,
    read_fits_cube,
    write_cube_fits,
)
from napari_sushi.core.io.synthetic import synthetic_events, write_event_file

SHIPPED = Path(__file__).resolve().parents[3] / "napari_sushi" / "data"
RMF, ARF = SHIPPED / "acisi_aimpt_cy0.rmf", SHIPPED / "acisi_aimpt_cy0.arf"


def _with_keywords(path, **keys):
    with fits.open(path, mode="update") as h:
        for k, v in keys.items():
            h["EVENTS"].header[k] = v
    return path


def _fake_response(path, ebounds=True):
    """A small file named like a response (only its EBOUNDS matter to the binning)."""
    hdus = [fits.PrimaryHDU()]
    if ebounds:
        ch = np.arange(1, 101)
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column(name="CHANNEL", format="J", array=ch),
                    fits.Column(name="E_MIN", format="E", unit="keV", array=(ch - 1) * 0.1),
                    fits.Column(name="E_MAX", format="E", unit="keV", array=ch * 0.1),
                ],
                name="EBOUNDS",
            )
        )
    fits.HDUList(hdus).writeto(path)
    return path


def test_explicit_files_win_over_keywords_and_neighbours(tmp_path):
    evt = _with_keywords(write_event_file(tmp_path / "evt.fits"), RESPFILE="other.rmf")
    _fake_response(tmp_path / "other.rmf")
    r = find_response(evt, rmf=RMF, arf=ARF)
    assert r == ResponseFiles(RMF.resolve(), ARF.resolve(), "given")
    with pytest.raises(FileNotFoundError, match="the RMF .*nope.rmf does not exist"):
        find_response(evt, rmf=tmp_path / "nope.rmf")


def test_keywords_relative_to_the_event_folder_and_none_ignored(tmp_path):
    (tmp_path / "resp").mkdir()
    _fake_response(tmp_path / "resp" / "a.rmf")
    _fake_response(tmp_path / "resp" / "a.arf", ebounds=False)
    evt = _with_keywords(write_event_file(tmp_path / "evt.fits"), RESPFILE="resp/a.rmf[1]", ANCRFILE="resp/a.arf")
    r = find_response(evt)
    assert r.rmf == (tmp_path / "resp" / "a.rmf").resolve() and r.arf == (tmp_path / "resp" / "a.arf").resolve()
    assert r.how == "RESPFILE keyword and ANCRFILE keyword"
    # an explicit ARF replaces only the ARF
    assert find_response(evt, arf=ARF).arf == ARF.resolve() and find_response(evt, arf=ARF).rmf == r.rmf
    # 'NONE' means none; a single response beside the list is then used
    evt2 = _with_keywords(write_event_file(tmp_path / "resp" / "evt2.fits"), RESPFILE="NONE", ANCRFILE="none")
    r2 = find_response(evt2)
    assert r2.rmf == (tmp_path / "resp" / "a.rmf").resolve() and r2.how == "beside the event list"


def test_missing_keyword_file_is_named_in_a_warning(tmp_path):
    evt = _with_keywords(write_event_file(tmp_path / "evt.fits"), RESPFILE="gone.rmf")
    with pytest.warns(UserWarning, match="RESPFILE = 'gone.rmf' names .*gone.rmf, which does not exist"):
        assert find_response(evt) is None


def test_files_beside_the_list_by_stem_or_obsid(tmp_path):
    evt = write_event_file(tmp_path / "acisf00754_evt2.fits")
    assert find_response(evt) is None  # nothing beside it
    _fake_response(tmp_path / "acisf00754_src.rmf")
    _fake_response(tmp_path / "acisf00999_src.rmf")
    _fake_response(tmp_path / "acisf00754_src.arf", ebounds=False)
    r = find_response(evt)  # two RMFs: the one sharing the ObsID prefix; the only ARF
    assert r.rmf.name == "acisf00754_src.rmf" and r.arf.name == "acisf00754_src.arf"
    # an unrelated pair: ambiguous, said in a warning, no guess
    _fake_response(tmp_path / "zzz.rmf")
    other = write_event_file(tmp_path / "obs2.fits")
    with pytest.warns(UserWarning, match="several RMF files lie beside it"):
        assert find_response(other) is None


def test_bin_events_records_the_response_and_maps_pi_through_its_ebounds(tmp_path):
    cols = synthetic_events(n=3000, energy_range=(0.3, 9.5))
    cols.pop("energy")  # pi only, and an instrument without a documented channel width
    cols["pi"] = np.floor(np.random.default_rng(1).uniform(1, 100, cols["pi"].size)).astype(np.int64)
    evt = write_event_file(tmp_path / "evt.fits", columns=cols, telescope="OTHER", instrument="XYZ")
    with pytest.raises(ValueError, match="no channel-to-energy mapping"):
        bin_events(evt, native=True, binning=16)
    rmf = _fake_response(tmp_path / "inst.rmf")  # beside it: found, and its EBOUNDS give 0.1 keV channels
    cube = bin_events(evt, band=(1.0, 5.0), native=True, binning=16)
    assert cube.response.rmf == rmf.resolve() and cube.response.how == "beside the event list"
    np.testing.assert_allclose(cube.energy_edges, np.arange(1.0, 5.01, 0.1), atol=1e-6)
    np.testing.assert_array_equal(cube.channels, np.arange(11, 51))  # channel i spans (i-1)..i x 0.1 keV
    assert cube.total_counts == np.sum((cols["pi"] >= 11) & (cols["pi"] <= 50))
    assert "EBOUNDS of inst.rmf" in cube.header["ENERSRC"]


def test_cube_copies_keep_the_response_and_fits_round_trip(tmp_path):
    resp = ResponseFiles(RMF.resolve(), ARF.resolve(), "given")
    cube = HyperCube(np.ones((4, 6, 6)), np.linspace(1, 3, 5), response=resp)
    assert cube.select_band(1.5, 3.0).response == resp and cube.rebin_spatial(2).response == resp
    # far from the output: absolute paths; read back as the same files
    out = write_cube_fits(cube, tmp_path / "c.fits")
    h = fits.getheader(out)
    assert h["RESPFILE"] == str(RMF.resolve()) and h["ANCRFILE"] == str(ARF.resolve())
    back = read_fits_cube(out)
    assert back.response.rmf == RMF.resolve() and back.response.arf == ARF.resolve()
    assert "RESPFILE keyword" in back.response.how
    # beside the output: relative, so the folder can move as a whole
    (tmp_path / "resp").mkdir()
    local = _fake_response(tmp_path / "resp" / "x.rmf")
    out2 = write_cube_fits(
        HyperCube(np.ones((4, 6, 6)), np.linspace(1, 3, 5), response=ResponseFiles(local.resolve(), None)),
        tmp_path / "d.fits",
    )
    h2 = fits.getheader(out2)
    assert h2["RESPFILE"] == "resp/x.rmf" and h2["ANCRFILE"] == "NONE"
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "resp").rename(moved / "resp")
    out2.rename(moved / "d.fits")
    assert read_fits_cube(moved / "d.fits").response.rmf == (moved / "resp" / "x.rmf").resolve()
    # no response: NONE, read back as None
    out3 = write_cube_fits(HyperCube(np.ones((4, 6, 6)), np.linspace(1, 3, 5)), tmp_path / "e.fits")
    assert fits.getheader(out3)["RESPFILE"] == "NONE" and read_fits_cube(out3).response is None
    with pytest.raises(ValueError, match="response must be a ResponseFiles"):
        HyperCube(np.ones((4, 6, 6)), np.linspace(1, 3, 5), response="x.rmf")


def test_long_absolute_paths_survive_the_header(tmp_path):
    deep = tmp_path.joinpath(*["a_rather_long_folder_name"] * 4)
    deep.mkdir(parents=True)
    rmf = _fake_response(deep / "response_with_a_long_name.rmf")
    out = tmp_path / "out" / "c.fits"
    out.parent.mkdir()
    cube = HyperCube(np.ones((4, 6, 6)), np.linspace(1, 3, 5), response=ResponseFiles(rmf.resolve(), None))
    write_cube_fits(cube, out)
    assert len(str(rmf.resolve())) > 68
    assert read_fits_cube(out).response.rmf == rmf.resolve()


def test_read_cube_defaults_to_native_channels_and_512_pixels(tmp_path):
    cols = synthetic_events(n=4000, spread=400.0)  # ~2400 sky pixels wide
    evt = write_event_file(tmp_path / "evt.fits", columns=cols)
    cube = read_cube(evt)
    np.testing.assert_array_equal(cube.channels, np.arange(36, 548))  # ACIS channels in 0.5-8 keV
    assert max(cube.shape[1:]) <= 512 and cube.header["NATIVE"] and cube.header["SPBIN"] >= 5
    e = cols["energy"] / 1000
    assert cube.total_counts <= np.sum((e >= 0.5) & (e < 8.0))
    # options given are kept, the others defaulted
    c2 = read_cube(evt, channel_width=0.5, binning=64)
    assert c2.n_energy == 15 and c2.header["SPBIN"] == 64
