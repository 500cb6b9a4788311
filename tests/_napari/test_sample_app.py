"""The app end to end on the real sample with the shipped models: File > Open Sample, the dock from
the Plugins menu, a short real fit (binned 4x4, few iterations), cancel, a second run, export."""

from __future__ import annotations

import numpy as np
import pytest


pytestmark = pytest.mark.gui


@pytest.fixture
def sample_session(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-sushi", "toy_remnant")
    _, dock = viewer.window.add_plugin_dock_widget("napari-sushi", "SUSHI fit")  # the Plugins menu entry
    dock.binning.setValue(4)
    dock.tol.setText("0")
    dock.snapshot_every.setValue(1)
    return viewer, dock


def test_sample_fit_layers_second_run_and_export(sample_session, qtbot, notes, tmp_path):
    from napari_sushi.core.io.maps import read_maps_fits

    viewer, dock = sample_session
    cube_name = dock.cube_combo.currentText()
    cube = viewer.layers[cube_name]
    assert cube.data.shape == (375, 94, 94)
    assert [e.name for e in dock.editors] == ["thermal", "powerlaw"]
    assert [e.choice.source for e in dock.editors] == ["toy-thermal-emulator", "toy-powerlaw-emulator"]

    dock.max_iter.setValue(3)
    job = dock.start("sushi")
    assert job is not None, notes["error"]
    qtbot.waitUntil(lambda: dock.job is None, timeout=120_000)
    assert not notes["error"], notes["error"]
    run = "S1"
    assert f"kmad {dock.kmad.value():g}" in dock.status.text()  # the dock's default strength (FitSettings)
    res = dock.runs[run].result
    assert res.n_iter == 3
    for name, unit in [
        ("thermal kT [keV] · S1", "keV"),
        ("thermal velocity · S1", "km/s"),
        ("powerlaw index · S1", ""),
        ("thermal amplitude · S1", "counts"),
    ]:
        layer = viewer.layers[name]
        assert layer.data.shape == (23, 23)
        np.testing.assert_allclose(layer.scale, np.asarray(cube.scale[1:]) * 4)
        np.testing.assert_allclose(layer.translate, np.asarray(cube.translate[1:]) + 1.5 * np.asarray(cube.scale[1:]))
        assert layer.metadata["unit"] == unit
        assert layer.metadata["provenance"]["cube_layer"] == cube_name
    kt = viewer.layers["thermal kT [keV] · S1"]
    np.testing.assert_allclose(kt.data, res.params["thermal kT"], rtol=1e-6)
    assert 0.5 < np.median(kt.data) < 8.0
    assert viewer.layers["thermal kT σ [keV] · S1"].visible is False
    # honest maps: kT is unmeasured wherever the plasma has too few counts (the remnant's empty outskirts),
    # greyed by an overlay; the truth kT map shares the fit's colormap and range
    measured = kt.metadata["measured"]
    th = res.amplitudes["thermal"]
    assert not measured[th < 20].any() and (th < 20).sum() > 20
    over = viewer.layers["kT unmeasured · S1"]
    np.testing.assert_array_equal(over.data > 0.5, ~measured)
    assert over.visible and [ly.name for ly in viewer.layers].index(over.name) > [
        ly.name for ly in viewer.layers
    ].index(kt.name)
    truth = next(ly for ly in viewer.layers if ly.metadata.get("truth") and "kT" in ly.name)
    assert truth.colormap.name == kt.colormap.name and tuple(truth.contrast_limits) == tuple(kt.contrast_limits)
    vt = next(ly for ly in viewer.layers if ly.metadata.get("truth") and "velocity" in ly.name)
    assert vt.colormap.name == "RdBu_r" and vt.contrast_limits[0] == pytest.approx(-vt.contrast_limits[1])
    resid = viewer.layers["residual · S1"]
    assert resid.data.shape == (375, 23, 23)
    np.testing.assert_allclose(resid.scale[0], cube.scale[0])
    np.testing.assert_allclose(resid.translate[0], cube.translate[0])

    # a second run with another strength sits beside the first
    dock.kmad.setValue(2.5)
    dock.max_iter.setValue(2)
    assert dock.start("sushi") is not None
    qtbot.waitUntil(lambda: dock.job is None, timeout=120_000)
    assert "thermal kT [keV] · S2" in viewer.layers
    np.testing.assert_array_equal(viewer.layers["thermal kT [keV] · S1"].data, kt.data)

    # export: re-opens with the same values and WCS; the WCS is the cube's, binned 4x4
    out = dock.export(run, str(tmp_path / "toy_maps.fits"), include_cubes=False)
    assert out is not None, notes["error"]
    ms = read_maps_fits(out)
    np.testing.assert_allclose(ms.maps["thermal kT"], res.params["thermal kT"], rtol=1e-6)
    np.testing.assert_allclose(ms.maps["thermal velocity"], res.params["thermal velocity"], rtol=1e-6)
    assert ms.units["thermal velocity"] == "km/s"
    cube_wcs = cube.metadata["wcs"]
    # centre of binned pixel (i, j) is original pixel (4i + 1.5, 4j + 1.5)
    for i, j in [(0, 0), (10, 3), (22, 22)]:
        a = ms.wcs.pixel_to_world_values(j, i)
        b = cube_wcs.pixel_to_world_values(4 * j + 1.5, 4 * i + 1.5)
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_sample_fit_cancel_leaves_no_layers(sample_session, qtbot, notes):
    viewer, dock = sample_session
    dock.max_iter.setValue(2000)
    before = [ly.name for ly in viewer.layers]
    job = dock.start("sushi")
    assert job is not None, notes["error"]
    qtbot.waitUntil(lambda: job.last_iteration >= 2 and len(viewer.layers) > len(before), timeout=120_000)
    dock.cancel()
    qtbot.waitUntil(lambda: dock.job is None and not job.solver_running, timeout=60_000)
    assert job.last_iteration <= job.cancel_iteration + 1
    qtbot.wait(50)
    assert [ly.name for ly in viewer.layers] == before
    assert not dock.runs and not notes["error"]


def test_wide_band_model_on_toy_cube_is_a_notification(sample_session, notes):
    viewer, dock = sample_session
    wide = [c.source for c in dock._choices if c.source.startswith("wide-thermal")]
    if not wide:
        pytest.skip("no wide-band thermal model shipped")
    dock.editors[0].select_model(wide[0])
    n = len(viewer.layers)
    assert dock.start("sushi") is None
    assert notes["error"] and "cube" in notes["error"][0]
    assert len(viewer.layers) == n


def test_demo_command_opens_sample_and_dock(capsys):
    from napari_sushi.cli import main

    assert main(["demo", "--no-show", "--binning", "2"]) == 0
    out = capsys.readouterr().out
    assert "toy remnant" in out and "thermal (toy-thermal-emulator)" in out and "Run SUSHI" in out


def test_demo_without_a_display_says_what_to_do(monkeypatch, capsys):
    from napari_sushi._napari import demo
    from napari_sushi.cli import main

    monkeypatch.setattr(demo, "has_display", lambda: False)
    assert main(["demo"]) == 2
    assert "xvfb-run" in capsys.readouterr().err
