"""Simulator: presets, folded spectra for training, toy cube statistics, truth maps, reproducibility."""

from pathlib import Path

import numpy as np
import pytest

from napari_sushi.core.io.fits_cube import read_fits_cube
from napari_sushi.core.simulate import (
    PRESETS,
    SimulationError,
    folded_spectra,
    simulate_remnant,
    unit_spectra,
    write_simulation,
)


@pytest.fixture(scope="module")
def toy():
    return simulate_remnant("toy", 0)


def test_presets_describe_training_sets():
    toy = PRESETS["toy"]
    assert toy.response == "chandra-acis-i-cy0"
    assert toy.n_channels == 375 and toy.channel_edges.size == 376
    assert (toy.channels[0], toy.channels[-1]) == (207, 581)
    th = toy.components["thermal"]
    assert th.param_names == ["kT", "velocity"]
    kt = th.parameters[0]
    assert kt.unit == "keV" and kt.low <= 0.5 and kt.high >= 5.0
    v = th.parameters[1]
    assert v.unit == "km/s" and v.low <= -6000 and v.high >= 6000
    assert th.fixed["abundance"] == 1.0
    idx = toy.components["powerlaw"].parameters[0]
    assert idx.low <= 1.5 and idx.high >= 4.0
    wide = PRESETS["wide"]
    assert wide.components["thermal"].fixed["nH"] == wide.components["powerlaw"].fixed["nH"] == 0.5
    assert wide.channel_edges[0] >= 0.5 - 1e-4 and wide.channel_edges[-1] <= 8.0 + 1e-4


def test_folded_spectra_shapes_and_speed_path():
    toy = PRESETS["toy"]
    n = 600
    rng = np.random.default_rng(3)
    params = {"kT": rng.uniform(0.5, 5, n), "velocity": rng.uniform(-6000, 6000, n)}
    s = folded_spectra("thermal", params, toy.response, toy.band)
    assert s.shape == (n, 375) and np.all(s >= 0) and np.all(s.sum(axis=1) > 0)
    # same numbers through the preset helper and through a Response object
    s2 = toy.folded_spectra("thermal", params)
    s3 = folded_spectra("thermal", params, toy.restricted_response, toy.band, exposure=2.0)
    assert np.allclose(s, s2) and np.allclose(2 * s, s3)
    # a hotter plasma has a harder spectrum; absorption removes soft counts in the wide band
    hot, cold = folded_spectra("thermal", {"kT": [4.0, 1.0], "velocity": 0.0}, toy.response, toy.band)
    c = 0.5 * (toy.channel_edges[1:] + toy.channel_edges[:-1])
    assert (hot * c).sum() / hot.sum() > (cold * c).sum() / cold.sum()
    wide = PRESETS["wide"]
    absorbed = wide.folded_spectra("powerlaw", {"index": 2.0})
    bare = folded_spectra("powerlaw", {"index": 2.0}, wide.response, wide.band)
    cw = 0.5 * (wide.channel_edges[1:] + wide.channel_edges[:-1])
    assert absorbed[0][cw < 1].sum() < 0.6 * bare[0][cw < 1].sum()
    assert absorbed[0][cw > 6].sum() == pytest.approx(bare[0][cw > 6].sum(), rel=0.02)


def test_folded_spectra_errors():
    toy = PRESETS["toy"]
    with pytest.raises(SimulationError, match="unknown component"):
        folded_spectra("apec", {"kT": 1.0}, toy.response, toy.band)
    with pytest.raises(SimulationError, match="kT"):
        folded_spectra("thermal", {"kT": -1.0}, toy.response, toy.band)
    with pytest.raises(SimulationError, match="needs parameters"):
        folded_spectra("thermal", {"velocity": 0.0}, toy.response, toy.band)
    with pytest.raises(SimulationError, match="nH"):
        folded_spectra("powerlaw", {"index": 2.0, "nH": -1.0}, toy.response, toy.band)
    with pytest.raises(ValueError, match="not covered"):
        folded_spectra("powerlaw", {"index": 2.0}, "chandra-acis-i-cy0", (3.0, 30.0))
    with pytest.raises(SimulationError, match="unknown preset"):
        simulate_remnant("huge", 0)


def test_toy_counts_statistics(toy):
    img = toy.cube.image()
    assert toy.cube.shape == (375, 94, 94)
    assert np.array_equal(toy.cube.channels, PRESETS["toy"].channels)
    lo, med, hi = img.min(), np.median(img), img.max()
    # design: a few hundred counts in the brightest pixels (documented: 0 / 51 / 413 for seed 0)
    assert lo == 0 and 20 <= med <= 120 and 250 <= hi <= 700
    assert (lo, med, hi) == (0, 51, 413)
    # amplitudes are expected counts: the cube's total matches their sum within Poisson noise
    amp = toy.truth["thermal amplitude"] + toy.truth["powerlaw amplitude"]
    assert np.allclose(toy.expected.sum(axis=0), amp)
    assert abs(img.sum() - amp.sum()) < 5 * np.sqrt(amp.sum())


def test_toy_truth_ranges(toy):
    t = toy.truth
    kt, v, g = t["thermal kT"], t["thermal velocity"], t["powerlaw index"]
    assert 1.0 <= kt.min() < 1.5 and 3.5 < kt.max() <= 4.0
    assert -5000 <= v.min() < -4000 and 4000 < v.max() <= 5000
    assert 2.0 <= g.min() < 2.3 and 3.2 < g.max() <= 3.5
    # velocity structure across the disk: both signs among bright thermal pixels
    bright = t["thermal amplitude"] > 0.3 * t["thermal amplitude"].max()
    assert (v[bright] > 1000).sum() > 20 and (v[bright] < -1000).sum() > 20
    # power law on the rim: its bright pixels lie farther out than the thermal ones
    yy, xx = np.mgrid[0:94, 0:94]
    r = np.hypot(yy - 47, xx - 46)
    pl_bright = t["powerlaw amplitude"] > 0.3 * t["powerlaw amplitude"].max()
    assert np.median(r[pl_bright]) > np.median(r[bright])


def test_faint_is_a_tenth_of_toy(toy):
    faint = simulate_remnant("faint", 0)
    ratio = faint.cube.total_counts / toy.cube.total_counts
    assert ratio == pytest.approx(0.1, rel=0.05)
    assert np.allclose(faint.truth["thermal kT"], toy.truth["thermal kT"])


def test_reproducible_bit_for_bit_and_seed_dependent(toy):
    again = simulate_remnant("toy", 0)
    assert np.array_equal(again.cube.counts, toy.cube.counts)
    for k in toy.truth:
        assert np.array_equal(again.truth[k], toy.truth[k])
    other = simulate_remnant("toy", 1)
    assert not np.array_equal(other.cube.counts, toy.cube.counts)


def test_unit_spectra_sum_to_one():
    s = unit_spectra(PRESETS["toy"], "powerlaw", {"index": [2.0, 3.0]})
    assert np.allclose(s.sum(axis=1), 1.0)


def test_write_and_read_back(toy, tmp_path):
    path = write_simulation(toy, tmp_path / "toy.fits")
    cube = read_fits_cube(path)
    assert np.array_equal(cube.counts, toy.cube.counts)
    assert np.array_equal(cube.channels, toy.cube.channels)
    assert np.allclose(cube.energy_edges, toy.cube.energy_edges)
    from astropy.io import fits

    with fits.open(path) as hdul:
        names = [h.name.lower() for h in hdul[1:]]
        for k in toy.truth:
            assert k.lower() in names
            assert hdul[k].header["TRUTH"] is True
        assert hdul["thermal kT"].header["BUNIT"] == "keV"
        assert np.allclose(hdul["thermal kT"].data, toy.truth["thermal kT"], rtol=1e-6)
    with pytest.raises(FileExistsError):
        write_simulation(toy, path)


def test_customise_preset_fixes_and_boxes_a_component():
    from napari_sushi.core.simulate import customise_preset, get_preset

    pre = customise_preset("wide", "thermal", fixed={"velocity": 0.0, "nH": 0.95}, ranges={"kT": (0.3, 1.5)})
    th = pre.components["thermal"]
    assert th.param_names == ["kT"] and th.fixed["velocity"] == 0.0 and th.fixed["nH"] == 0.95
    assert (th.parameters[0].low, th.parameters[0].high, th.parameters[0].default) == (0.3, 1.5, 1.5)
    assert pre.components["powerlaw"] is get_preset("wide").components["powerlaw"]  # the other one untouched
    assert "nH=0.95" in pre.name and get_preset("wide").components["thermal"].param_names == ["kT", "velocity"]
    with pytest.raises(SimulationError, match="no free parameter 'velocity'"):
        customise_preset("wide", "thermal", fixed={"velocity": 0.0}, ranges={"velocity": (-1.0, 1.0)})
    with pytest.raises(SimulationError, match="finite"):
        customise_preset("wide", "thermal", fixed={"nH": float("nan")})


def test_a_cube_simulated_on_ones_own_response_records_it():
    from napari_sushi.core.simulate import response_preset, simulate_from_maps

    data = Path(__file__).resolve().parents[2] / "napari_sushi" / "data"
    pre = response_preset(data / "acisi_aimpt_cy0.rmf", data / "acisi_aimpt_cy0.arf", band=(0.5, 8.0), group=3, nH=0.95)
    maps = {
        "thermal amplitude": np.full((4, 5), 50.0),
        "thermal kT": np.full((4, 5), 1.0),
        "thermal velocity": np.zeros((4, 5)),
        "powerlaw amplitude": np.full((4, 5), 20.0),
        "powerlaw index": np.full((4, 5), 2.0),
    }
    sim = simulate_from_maps(pre, maps, seed=1)
    assert sim.cube.n_energy == 170 and np.array_equal(sim.cube.channels, pre.channels)
    assert sim.cube.header["RESPONSE"] == "acisi_aimpt_cy0.rmf+acisi_aimpt_cy0.arf"
    assert sim.cube.header["CHGROUP"] == 3 and sim.cube.header["NH"] == 0.95
    assert np.allclose(sim.expected.sum(0), 70.0)  # amplitudes are the expected counts in the band
