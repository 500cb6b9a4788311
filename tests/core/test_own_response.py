"""Presets for one's own response: models trained on them have exactly the channels that native
binning of an event list gives (the shipped Chandra pair with the real MSH 15-52 list, and a Gaussian
response written to OGIP files with a synthetic list)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.core.io.events import bin_events
from napari_sushi.core.response import ResponseError, gaussian_response, write_arf, write_rmf
from napari_sushi.core.simulate import SimulationError, preset_for_cube, response_preset
from napari_sushi.core.spectral.matching import match_model_to_cube
from napari_sushi.core.spectral.training import train_model

DATA = Path(__file__).resolve().parents[2] / "napari_sushi" / "data"
RMF, ARF = DATA / "acisi_aimpt_cy0.rmf", DATA / "acisi_aimpt_cy0.arf"
EVENTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"


def _grid(obj) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(obj.energy_edges, float), np.asarray(obj.channels)


@pytest.fixture(scope="module")
def msh_cubes():
    if not EVENTS.is_file():
        pytest.skip(f"the MSH 15-52 event list {EVENTS} is absent (../shared/data not mounted)")
    return {
        (g, rmf): bin_events(EVENTS, band=(0.5, 8.0), native=True, group=g, binning=64, rmf=rmf)
        for g in (1, 3)
        for rmf in (None, RMF)
    }


@pytest.mark.parametrize("group", [1, 3])
def test_preset_on_the_shipped_pair_has_the_event_lists_channels(msh_cubes, group):
    """The 14.6 eV/channel rule bin_events uses for ACIS and the RMF's own EBOUNDS give the same grid."""
    pre = response_preset(RMF, ARF, band=(0.5, 8.0), group=group, nH=0.95)
    for rmf in (None, RMF):
        cube = msh_cubes[(group, rmf)]
        assert pre.n_channels == cube.n_energy == (512 if group == 1 else 170)
        assert np.array_equal(pre.channels, cube.channels)
        assert np.allclose(pre.channel_edges, cube.energy_edges, rtol=0, atol=1e-6)
    assert pre.response_id == "acisi_aimpt_cy0.rmf+acisi_aimpt_cy0.arf"
    assert pre.components["powerlaw"].fixed["nH"] == 0.95 and pre.components["thermal"].fixed["nH"] == 0.95


def test_quick_thermal_model_for_a_cube_matches_it(msh_cubes):
    cube = msh_cubes[(3, None)]
    pre = preset_for_cube(cube, RMF, ARF, nH=0.95, ranges={"kT": (0.2, 5.0)}, components=("thermal",))
    assert pre.group == 3 and np.array_equal(pre.channels, cube.channels)
    model = train_model("emulator", pre, "thermal", quick=True, progress=False)
    same, msg = match_model_to_cube(model, cube)
    assert same is cube and msg is None
    assert model.meta.extra["fixed"]["nH"] == 0.95 and model.meta.extra["group"] == 3
    assert model.meta.extra["accuracy"]["p99"] < 0.02
    # a cube on 0.1 keV bins is not on native channels: a clear error, not a model that cannot fit it
    rebinned = bin_events(EVENTS, band=(0.5, 8.0), channel_width=0.1, binning=64)
    with pytest.raises(SimulationError, match="not on native channels of acisi_aimpt_cy0.rmf"):
        preset_for_cube(rebinned, RMF, ARF)


def _event_list(path: Path, pi: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    cols = [
        fits.Column("x", "E", array=rng.uniform(100, 120, pi.size)),
        fits.Column("y", "E", array=rng.uniform(100, 120, pi.size)),
        fits.Column("pi", "J", array=pi),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    hdu.header["TELESCOP"] = "TEST"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_gaussian_response_files_and_a_synthetic_event_list(tmp_path):
    resp = gaussian_response(0.13, 0.5, 0.3, 9.0, channel_width=0.02, name="ccd")
    rmf, arf = write_rmf(resp, tmp_path / "ccd.rmf"), write_arf(resp, tmp_path / "ccd.arf")
    events = _event_list(tmp_path / "evt.fits", np.random.default_rng(1).integers(0, resp.n_channels, 20000))
    cube = bin_events(events, band=(1.0, 7.0), native=True, group=2, binning=4, rmf=rmf)
    pre = response_preset(rmf, arf, band=(1.0, 7.0), group=2, components=("powerlaw",))
    assert np.array_equal(pre.channels, cube.channels) and cube.channels[0] == 35  # 1.00-1.02 keV is channel 35
    assert np.allclose(pre.channel_edges, cube.energy_edges, rtol=0, atol=1e-6)
    via_cube = preset_for_cube(cube, rmf, arf, components=("powerlaw",))
    assert np.array_equal(via_cube.channels, cube.channels) and via_cube.group == 2
    model = train_model("emulator", via_cube, "powerlaw", quick=True, progress=False)
    assert match_model_to_cube(model, cube) == (cube, None)
    assert model.meta.response_id == "ccd.rmf+ccd.arf"
    assert model.meta.extra["response"] == {"rmf": str(rmf.resolve()), "arf": str(arf.resolve())}


def test_response_preset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.rmf"):
        response_preset(tmp_path / "missing.rmf", ARF)
    bad = tmp_path / "notes.rmf"
    bad.write_text("not a response\n")
    with pytest.raises(ResponseError, match="notes.rmf"):
        response_preset(bad, ARF)
    with pytest.raises(ResponseError, match="not covered"):
        response_preset(RMF, ARF, band=(0.5, 30.0))
    with pytest.raises(SimulationError, match="group"):
        response_preset(RMF, ARF, group=0)
    with pytest.raises(SimulationError, match="no component .* 'index'"):
        response_preset(RMF, ARF, components=("thermal",), ranges={"index": (1.0, 3.0)})
    pre = response_preset(RMF, ARF, ranges={"thermal kT": (0.3, 2.0)}, fixed={"velocity": 0.0})
    th = pre.components["thermal"]
    assert th.param_names == ["kT"] and (th.parameters[0].low, th.parameters[0].high) == (0.3, 2.0)
    assert th.fixed["velocity"] == 0.0 and pre.kt_range == (0.6, 2.0)
