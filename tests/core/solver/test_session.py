"""Sessions: runs saved in one folder (FITS + JSON) load back with the same maps, units, WCS and settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.wcs import WCS

from napari_sushi.core.session import SessionError, SessionRun, load_session, save_session
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit

from .analytic import make_cube


@pytest.fixture(scope="module")
def small_fit():
    cube, _, models, _ = make_cube(8, 8, 40, counts=300.0, seed=1)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.5, -59.1]
    w.wcs.crpix = [4.5, 4.5]
    w.wcs.cdelt = [-1e-4, 1e-4]
    cube.wcs = w
    comps = [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]
    return cube, fit(cube, comps, FitSettings(max_iter=4, kmad=2.0))


def test_round_trip_keeps_maps_units_wcs_settings(small_fit, tmp_path):
    cube, res = small_fit
    out = save_session(
        tmp_path / "mine", [SessionRun("S1", res, "testcube", str(tmp_path / "cube.fits"), "S1 (SUSHI)")]
    )
    assert out.name == "mine.sushi" and (out / "session.json").is_file()
    index = json.loads((out / "session.json").read_text())
    assert index["version"] == 1 and index["runs"][0]["settings"]["kmad"] == res.provenance["settings"]["kmad"]
    s = load_session(out)
    (run,) = s.runs
    back = run.result
    assert run.label == "S1" and run.cube_name == "testcube" and run.title == "S1 (SUSHI)"
    assert back.method == "sushi" and back.n_iter == res.n_iter and back.stop_reason == res.stop_reason
    for k in res.params:
        np.testing.assert_allclose(back.params[k], res.params[k], rtol=1e-6)
        assert back.units[k] == res.units[k]
    for k in res.amplitudes:
        np.testing.assert_allclose(back.amplitudes[k], res.amplitudes[k], rtol=1e-6)
    for k in res.sigmas:
        np.testing.assert_allclose(back.sigmas[k], res.sigmas[k], rtol=1e-6)
    np.testing.assert_allclose(back.model_total, res.model_total, rtol=1e-6)
    np.testing.assert_allclose(back.residual, res.residual, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(back.cost_history, res.cost_history)
    np.testing.assert_allclose(back.wcs.wcs.crval, cube.wcs.wcs.crval)
    assert back.provenance["settings"] == res.provenance["settings"]
    assert back.provenance["boxes"] == res.provenance["boxes"]
    for k, m in res.measured().items():
        np.testing.assert_array_equal(back.measured()[k], m)


def test_refusals_and_damage_are_clear(small_fit, tmp_path):
    _, res = small_fit
    run = SessionRun("S1", res)
    with pytest.raises(SessionError, match="no finished run"):
        save_session(tmp_path / "a", [])
    with pytest.raises(SessionError, match="does not exist"):
        save_session(tmp_path / "missing" / "a", [run])
    out = save_session(tmp_path / "a", [run])
    with pytest.raises(SessionError, match="already exists"):
        save_session(out, [run])
    assert save_session(out, [run, SessionRun("S2", res)], overwrite=True) == out
    assert [r.label for r in load_session(out).runs] == ["S1", "S2"]
    other = tmp_path / "notes.sushi"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    with pytest.raises(SessionError, match="not a napari-sushi session"):
        save_session(other, [run], overwrite=True)
    assert (other / "mine.txt").read_text() == "keep"
    with pytest.raises(SessionError, match="no session.json"):
        load_session(other)
    index = json.loads((out / "session.json").read_text())
    (out / "session.json").write_text(json.dumps(dict(index, version=99)))
    with pytest.raises(SessionError, match="newer napari-sushi"):
        load_session(out)
    (out / "session.json").write_text("{not json")
    with pytest.raises(SessionError, match="damaged"):
        load_session(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
