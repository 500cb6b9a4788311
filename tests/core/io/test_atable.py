"""XSPEC additive table models: written from our physics, read back, interpolated, trained on and
fitted; malformed or unsupported tables refused with errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.core.io.atable import TableError, TableParameter, physics_table, read_atable, write_atable
from napari_sushi.core.physics import Thermal

EDGES = np.round(np.arange(0.3, 10.0001, 0.01), 6)
KT = TableParameter("kT", np.geomspace(0.3, 6.0, 25), log=True, initial=2.0, unit="keV")
AB = TableParameter("abundance", np.array([0.5, 1.0, 1.5]), initial=1.0)


@pytest.fixture(scope="module")
def table_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("atable") / "thermal_table.fits"
    spectra = physics_table(Thermal(), [KT, AB], EDGES)
    write_atable(path, "sushith", [KT, AB], EDGES, spectra)
    return path


def test_round_trip_and_interpolation(table_file):
    tm = read_atable(table_file)
    assert tm.name == "sushith" and [p.name for p in tm.parameters] == ["kT", "abundance"]
    assert tm.parameters[0].log and not tm.parameters[1].log
    np.testing.assert_allclose(tm.parameters[0].values, KT.values, rtol=1e-6)
    # at a grid node the table gives our physics back (float32 storage), on its own bins
    node = tm(EDGES, {"kT": KT.values[10], "abundance": 1.0})[0]
    want = Thermal()(EDGES, {"kT": KT.values[10], "abundance": 1.0})[0]
    np.testing.assert_allclose(node, want, rtol=1e-5, atol=1e-9 * want.max())
    # between nodes: log-linear interpolation in kT, linear in abundance, close to the physics
    mid = tm(EDGES, {"kT": 1.7, "abundance": 1.25})[0]
    truth = Thermal()(EDGES, {"kT": 1.7, "abundance": 1.25})[0]
    err = np.abs(mid - truth).sum() / truth.sum()
    i = np.searchsorted(KT.values, 1.7)
    for node_kt in KT.values[i - 1 : i + 1]:  # better than either neighbouring grid spectrum
        near = Thermal()(EDGES, {"kT": node_kt, "abundance": 1.25})[0]
        assert err < 0.5 * np.abs(near - truth).sum() / truth.sum()
    assert err < 0.04  # linear in the spectra between nodes 13 % apart in kT, as XSPEC interpolates
    # our velocity is an exact shift of the table's spectrum
    coarse = np.linspace(0.5, 8.0, 301)
    s = 1 - 3000.0 / 299792.458
    np.testing.assert_allclose(
        tm(coarse * s, {"kT": 2.0, "velocity": 3000.0})[0], tm(coarse, {"kT": 2.0})[0], rtol=1e-9, atol=1e-15
    )
    with pytest.raises(ValueError, match="outside its grid"):
        tm(EDGES, {"kT": 9.0})


def test_train_on_a_table_and_fit(table_file, tmp_path):
    from napari_sushi.core.response import gaussian_response, write_arf, write_rmf
    from napari_sushi.core.simulate import response_preset, simulate_from_maps, table_preset
    from napari_sushi.core.solver.settings import Component, FitSettings
    from napari_sushi.core.solver.sushi import fit
    from napari_sushi.core.spectral.training import train_model

    resp = gaussian_response(0.13, 0.5, 0.3, 9.0, channel_width=0.04, name="ccd")
    rmf, arf = write_rmf(resp, tmp_path / "ccd.rmf"), write_arf(resp, tmp_path / "ccd.arf")
    pre = table_preset(table_file, rmf, arf, band=(0.8, 7.0), group=2, nH=0.3, velocity=False, fixed={"abundance": 1.0})
    spec = pre.components["thermal"]
    assert spec.param_names == ["kT"] and spec.physics.startswith("table:")
    thermal = train_model("emulator", pre, "thermal", quick=True, progress=False)
    assert "sushith" in thermal.meta.description
    pl_pre = response_preset(rmf, arf, band=(0.8, 7.0), group=2, nH=0.3, components=("powerlaw",))
    powerlaw = train_model("emulator", pl_pre, "powerlaw", quick=True, progress=False)
    ny = nx = 10
    yy, xx = np.mgrid[0:ny, 0:nx] / (ny - 1)
    truth_t = {"thermal amplitude": np.full((ny, nx), 800.0), "thermal kT": 0.8 + 2.4 * xx}
    truth_p = {"powerlaw amplitude": np.full((ny, nx), 300.0), "powerlaw index": np.full((ny, nx), 2.2)}
    cube_t = simulate_from_maps(pre, truth_t, seed=1).cube
    cube_p = simulate_from_maps(pl_pre, truth_p, seed=2).cube
    cube = cube_t.__class__(
        cube_t.counts + cube_p.counts, cube_t.energy_edges, exposure=cube_t.exposure, channels=cube_t.channels
    )
    res = fit(cube, [Component("thermal", thermal), Component("powerlaw", powerlaw)], FitSettings(max_iter=60))
    err = res.params["thermal kT"] - truth_t["thermal kT"]
    const = truth_t["thermal kT"] - np.median(truth_t["thermal kT"])
    assert np.sqrt(np.mean(err**2)) < 0.5 * np.sqrt(np.mean(const**2))


def _rewrite(src, dst, edit):
    with fits.open(src) as h:
        hdul = fits.HDUList([x.copy() for x in h])
    edit(hdul)
    hdul.writeto(dst)
    return dst


@pytest.mark.parametrize(
    "case, edit, message",
    [
        ("mtable", lambda h: h[0].header.__setitem__("ADDMODEL", False), "multiplicative"),
        ("addparm", lambda h: h["PARAMETERS"].header.__setitem__("NADDPARM", 1), "additional"),
        ("noenergies", lambda h: h.pop(2), "ENERGIES"),
        ("order", lambda h: h["SPECTRA"].data.__setitem__("PARAMVAL", h["SPECTRA"].data["PARAMVAL"][::-1]), "order"),
        ("negative", lambda h: h["SPECTRA"].data["INTPSPEC"].__imul__(-1), ">= 0"),
    ],
)
def test_bad_tables_are_refused_naming_the_file(table_file, tmp_path, case, edit, message):
    bad = _rewrite(table_file, tmp_path / f"{case}.fits", edit)
    with pytest.raises(TableError, match=message) as exc:
        read_atable(bad)
    assert bad.name in str(exc.value)


def test_truncated_table_and_writer_checks(table_file, tmp_path):
    raw = table_file.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TableError, match="cut.fits"):
        read_atable(cut)
    with pytest.raises(TableError, match="shape"):
        write_atable(tmp_path / "x.fits", "x", [KT], EDGES, np.ones((3, EDGES.size - 1)))
    assert not (tmp_path / "x.fits").exists()
    with pytest.raises(TableError, match="no parameters"):
        physics_table(Thermal(), [TableParameter("Abundanc", np.array([1.0, 2.0]))], EDGES)
