"""The fit dock in a real viewer: runs, live layers, cancel, side-by-side runs, export, errors.

These use small analytic models and a 16x16x40 cube so they run in seconds; test_sample_app.py
runs the same workflow on the toy remnant sample with the shipped models.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from napari_sushi._napari import fit_dock as fd
from napari_sushi._napari import result_layers as L
from napari_sushi._napari.layers import cube_layer
from napari_sushi._napari.result_layers import DIVERGING

from app_helpers import LineModel, analytic_fit_dock, make_cube, run_fit

pytestmark = pytest.mark.gui


def _wcs(ny: int, nx: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.5, -59.1]
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    w.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    return w


def _viewer_with_cube(make_napari_viewer, ny=16, nx=16, scale=2.0, translate=10.0):
    viewer = make_napari_viewer()
    cube, truth = make_cube(ny, nx)
    cube.wcs = _wcs(ny, nx)
    data, kwargs, _ = cube_layer(cube)
    kwargs["scale"] = (kwargs["scale"][0], scale, scale)
    kwargs["translate"] = (kwargs["translate"][0], translate, translate)
    layer = viewer.add_image(data, **kwargs)
    return viewer, layer, truth


def test_cube_combo_follows_layers(make_napari_viewer):
    viewer, layer, _ = _viewer_with_cube(make_napari_viewer)
    dock = fd.SushiFitDock(viewer)
    assert dock.cube_combo.currentText() == layer.name
    layer.name = "renamed cube"
    assert [dock.cube_combo.itemText(i) for i in range(dock.cube_combo.count())] == ["renamed cube"]
    viewer.add_image(np.zeros((8, 8)), name="plain image")  # 2-D: not a cube
    assert dock.cube_combo.count() == 1
    viewer.layers.remove(layer)
    assert dock.cube_combo.count() == 0


def test_run_makes_named_scaled_unit_layers(make_napari_viewer, qtbot, notes):
    viewer, cube_layer_, _ = _viewer_with_cube(make_napari_viewer, scale=2.0, translate=10.0)
    dock = analytic_fit_dock(viewer, max_iter=6, snapshot_every=2, binning=2)
    seen_live: list[str] = []
    viewer.layers.events.inserted.connect(lambda e: seen_live.append(e.value.name) if dock.job else None)
    run_fit(qtbot, dock)
    assert not notes["error"], notes["error"]
    run = "S1"
    assert run in dock.runs
    names = set(dock.runs[run].layer_names)
    expected = {
        "thermal amplitude · S1",
        "thermal kT [keV] · S1",
        "thermal velocity · S1",
        "powerlaw amplitude · S1",
        "powerlaw index · S1",
        "thermal kT σ [keV] · S1",
        "thermal velocity σ · S1",
        "powerlaw index σ · S1",
        "model · S1",
        "residual · S1",
        "cstat/dof · S1",
    }
    assert expected <= names, expected - names
    # no name is cut in the layer list: each fits its default width
    assert all(len(n) <= L.MAX_NAME for n in names), [n for n in names if len(n) > L.MAX_NAME]
    # live maps appeared while the fit ran (before the final set)
    assert "thermal kT [keV] · S1" in seen_live
    kt = viewer.layers["thermal kT [keV] · S1"]
    assert kt.data.shape == (8, 8)  # 16x16 binned 2x2
    np.testing.assert_allclose(kt.scale, [4.0, 4.0])
    np.testing.assert_allclose(kt.translate, [11.0, 11.0])  # centre of the first 2x2 block
    assert kt.metadata["unit"] == "keV" and kt.metadata["run"] == run
    assert kt.metadata["wcs"] is not None and kt.metadata["provenance"]["method"] == "sushi"
    # arranged to be read: parameter maps (and their 'unmeasured' overlays) on top and visible, the first
    # selected; σ, goodness of fit, model and residual hidden
    top = [ly.name for ly in viewer.layers][::-1]
    n_top = sum(1 for n in names if viewer.layers[n].metadata["kind"] in ("parameter", "unmeasured"))
    assert {viewer.layers[n].metadata["kind"] for n in top[:n_top]} <= {"parameter", "unmeasured"}
    first_param = next(n for n in top if viewer.layers[n].metadata["kind"] == "parameter")
    assert first_param == "thermal kT [keV] · S1" and viewer.layers.selection.active.name == first_param
    for n in names:
        kind = viewer.layers[n].metadata["kind"]
        assert viewer.layers[n].visible == (kind in ("parameter", "unmeasured", "amplitude")), n
    res = dock.runs[run].result
    measured = res.measured()["thermal kT"]
    assert kt.metadata["measured"] is not None and np.array_equal(kt.metadata["measured"], measured)
    if not measured.all():
        over = viewer.layers["kT unmeasured · S1"]
        np.testing.assert_array_equal(over.data > 0.5, ~measured)
    vel = viewer.layers["thermal velocity · S1"]
    assert vel.colormap.name == DIVERGING and vel.metadata["unit"] == "km/s"
    lo, hi = vel.contrast_limits
    assert lo == pytest.approx(-hi)
    model = viewer.layers["model · S1"]
    assert model.data.shape == (40, 8, 8)
    np.testing.assert_allclose(model.scale, [cube_layer_.scale[0], 4.0, 4.0])
    np.testing.assert_allclose(model.translate[0], cube_layer_.translate[0])
    np.testing.assert_allclose(kt.data, res.params["thermal kT"], rtol=1e-6)
    assert dock.export_button.isEnabled()


def test_cancel_stops_within_one_iteration_and_leaves_nothing(make_napari_viewer, qtbot, notes):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=5000, snapshot_every=1)
    before = [ly.name for ly in viewer.layers]
    job = dock.start("sushi")
    assert job is not None
    qtbot.waitUntil(lambda: job.last_iteration >= 3 and len(viewer.layers) > len(before), timeout=60_000)
    dock.cancel_button.click()
    qtbot.waitUntil(lambda: dock.job is None and not job.solver_running, timeout=30_000)
    assert job.cancel_iteration is not None
    assert job.last_iteration <= job.cancel_iteration + 1
    qtbot.wait(50)  # let any queued signal land
    assert [ly.name for ly in viewer.layers] == before
    assert not dock.runs
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()


def test_second_run_sits_beside_first_and_pixelfit(make_napari_viewer, qtbot, notes):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=4, kmad=1.0)
    run_fit(qtbot, dock)
    first = viewer.layers["thermal kT [keV] · S1"].data.copy()
    dock.kmad.setValue(3.0)
    run_fit(qtbot, dock)
    assert "thermal kT [keV] · S2" in viewer.layers
    np.testing.assert_array_equal(viewer.layers["thermal kT [keV] · S1"].data, first)
    run_fit(qtbot, dock, "pixelfit")
    assert "thermal kT [keV] · P3" in viewer.layers
    assert dock.runs["P3"].result.method == "pixelfit"
    # the per-pixel fit restarts from 4 points: its count says so and the cost plot marks each restart
    res = dock.runs["P3"].result
    assert f"{res.n_iter} iterations over 4 starting points (at most 4 each)" in dock.status.text()
    assert len(dock.cost_plot.restarts) == 3 and dock.cost_plot.restarts == sorted(dock.cost_plot.restarts)
    assert list(dock.runs) == ["S1", "S2", "P3"]


def test_fixed_and_linked_parameters_reach_the_core(make_napari_viewer, monkeypatch):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)
    th = dock.editors[0]
    th.set_parameter("kT", "fixed", 3.0)
    th.set_parameter("velocity", "free", 500.0)
    other = dock.add_component(LineModel())
    assert other.name == "thermal2"
    other.set_parameter("velocity", "linked", link="thermal.velocity")
    req = dock.build_request("sushi")
    comps = {c.name: c for c in req.components}
    assert comps["thermal"].fixed == {"kT": 3.0}
    assert comps["thermal"].init["velocity"] == 500.0
    assert req.settings.links == [("thermal.velocity", "thermal2.velocity")]


def test_untouched_values_leave_the_start_to_the_fit(make_napari_viewer):
    # a free parameter left at the model's default is not an initial guess: SUSHI then starts it from
    # the coarse (4x4-binned) fit, as the CLI and the Python API do; a value the user entered is used
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)
    th = dock.editors[0]
    req = dock.build_request("sushi")
    assert req.components[0].init == {} and req.components[0].fixed == {}
    th.set_parameter("kT", "free", 2.75)
    th.set_parameter("velocity", "free", th.row("velocity").info.default)  # back at the default
    req = dock.build_request("sushi")
    assert req.components[0].init == {"kT": 2.75}


def test_start_shares_and_uncertainty_choices_reach_the_settings(make_napari_viewer):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)
    req = dock.build_request("sushi")
    s = req.settings
    assert (s.start, s.regularise_shares, s.anchor, s.uncertainty) == ("scan", True, "auto", "fisher")
    assert dock.anchor_combo.currentText() == "chosen per map (auto)"
    dock.shares_check.setChecked(False)
    dock.anchor_combo.setCurrentIndex(dock.anchor_combo.findData("coarse"))
    s = dock.build_request("sushi").settings
    assert (s.regularise_shares, s.anchor) == (False, "coarse")
    dock.scan_check.setChecked(False)
    dock.shares_check.setChecked(True)
    dock.anchor_combo.setCurrentIndex(dock.anchor_combo.findData("free"))
    dock.sigma_combo.setCurrentIndex(dock.sigma_combo.findData("bootstrap"))
    s = dock.build_request("sushi").settings
    assert (s.start, s.regularise_shares, s.anchor, s.uncertainty) == ("default", True, "free", "bootstrap")
    # 'kT and shares': the thermal kT and the shares set by the data, the shares regularised with them
    dock.shares_check.setChecked(False)
    dock.anchor_combo.setCurrentIndex(dock.anchor_combo.findData("kT+share"))
    s = dock.build_request("sushi").settings
    # (the other maps held to their start: the option as measured, not "auto")
    assert s.regularise_shares and s.anchor == {
        "thermal.kT": "free",
        "thermal.velocity": "start",
        "powerlaw.index": "start",
        "share": "free",
    }


def test_export_reopens_with_same_values_and_wcs(make_napari_viewer, qtbot, notes, tmp_path):
    from napari_sushi.core.io.maps import read_maps_fits

    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=3, binning=2)
    run_fit(qtbot, dock)
    run = "S1"
    out = dock.export(run, str(tmp_path / "maps.fits"), include_cubes=True)
    assert out is not None and out.exists(), notes["error"]
    ms = read_maps_fits(out)
    assert ms.provenance["provenance"]["run"] == run  # so the file re-opens as run S1
    reopened = viewer.open(str(out), plugin="napari-sushi")
    assert reopened and all(ly.metadata.get("run") == run for ly in reopened)
    res = dock.runs[run].result
    key = next(k for k in ms.maps if "kT" in k and "σ" not in k and "sigma" not in k.lower())
    np.testing.assert_allclose(ms.maps[key], res.params["thermal kT"], rtol=1e-6)
    assert ms.units[key] == "keV"
    layer_wcs = viewer.layers["thermal kT [keV] · S1"].metadata["wcs"]
    np.testing.assert_allclose(ms.wcs.wcs.crval, layer_wcs.wcs.crval)
    np.testing.assert_allclose(ms.wcs.wcs.crpix, layer_wcs.wcs.crpix)
    np.testing.assert_allclose(ms.wcs.pixel_scale_matrix, layer_wcs.pixel_scale_matrix)


def test_no_cube_layer_is_a_notification(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    dock = fd.SushiFitDock(viewer)
    assert dock.start("sushi") is None
    assert notes["error"] and "no cube layer" in notes["error"][0]
    assert dock.job is None and len(viewer.layers) == 0


def test_model_for_another_band_is_a_notification(make_napari_viewer, notes):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)
    dock.remove_component(dock.editors[0])
    dock.add_component(LineModel(edges=np.linspace(0.5, 2.0, 31)))  # soft-band model, 3-8 keV cube
    n = len(viewer.layers)
    assert dock.start("sushi") is None
    assert notes["error"] and "0.5" in notes["error"][0] and "cube" in notes["error"][0]
    assert len(viewer.layers) == n and dock.job is None


def test_memory_estimate_too_large_is_a_notification(make_napari_viewer, notes, monkeypatch):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)
    monkeypatch.setattr(fd, "available_memory", lambda device: 1000)
    assert dock.start("sushi") is None
    assert notes["error"] and "binning" in notes["error"][0]


def test_background_and_mask_from_layers(make_napari_viewer):
    viewer, layer, _ = _viewer_with_cube(make_napari_viewer, scale=2.0, translate=10.0)
    dock = analytic_fit_dock(viewer)
    # rectangle over cube pixels y 2..5, x 3..6 (world = 10 + 2 * pixel)
    viewer.add_shapes([np.array([[13.0, 15.0], [13.0, 23.0], [21.0, 23.0], [21.0, 15.0]])], name="bkg")
    labels = np.zeros((16, 16), int)
    labels[4:12, 4:12] = 1
    viewer.add_labels(labels, name="roi")
    dock.background_combo.setCurrentText("region: bkg")
    dock.mask_combo.setCurrentText("labels: roi")
    req = dock.build_request("sushi")
    region = np.zeros((16, 16), bool)
    region[2:6, 3:7] = True
    expected = layer.data[:, region].sum(axis=1) / region.sum()
    np.testing.assert_allclose(req.settings.background, expected)
    np.testing.assert_array_equal(req.settings.mask, labels != 0)


def test_errors_during_fit_become_notifications(make_napari_viewer, qtbot, notes, monkeypatch):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)

    def broken(cube, components, settings, callback=None, cancel=None):
        raise ValueError("the solver says no: try fewer components")

    monkeypatch.setattr(fd, "solver_function", lambda method: broken)
    n = len(viewer.layers)
    assert dock.start("sushi") is not None
    qtbot.waitUntil(lambda: dock.job is None, timeout=10_000)
    assert any("the solver says no" in m for m in notes["error"])
    assert len(viewer.layers) == n


def test_a_result_map_layer_saves_with_the_writer(make_napari_viewer, qtbot, notes, tmp_path):
    """The napari writer contribution saves one result map with its unit, WCS and values."""
    from napari_sushi.core.io.maps import read_maps_fits

    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=2, binning=2)
    run_fit(qtbot, dock)
    layer = viewer.layers["thermal velocity · S1"]
    written = layer.save(str(tmp_path / "velocity.fits"), plugin="napari-sushi")
    ms = read_maps_fits(written[0])
    ((name, arr),) = ms.maps.items()
    np.testing.assert_allclose(arr, layer.data)
    assert ms.units[name] == "km/s"
    np.testing.assert_allclose(ms.wcs.wcs.crpix, layer.metadata["wcs"].wcs.crpix)


def test_live_updates_keep_a_contrast_range_the_user_chose(make_napari_viewer):
    from napari_sushi._napari.result_layers import Geometry, RunLayers

    viewer, cube, _ = _viewer_with_cube(make_napari_viewer)
    live = RunLayers(viewer, "S9", Geometry.from_cube_layer(cube, 1), {"thermal kT": "keV"})
    rng = np.random.default_rng(1)
    live.update_maps({"thermal kT": 2 + rng.random((16, 16)), "thermal amplitude": 10 * rng.random((16, 16))})
    kt, amp = viewer.layers["thermal kT [keV] · S9"], viewer.layers["thermal amplitude · S9"]
    kt.contrast_limits = (1.0, 5.0)  # the user's choice
    live.update_maps({"thermal kT": 3 + rng.random((16, 16)), "thermal amplitude": 100 * rng.random((16, 16))})
    assert tuple(kt.contrast_limits) == (1.0, 5.0)
    assert amp.contrast_limits[1] > 50  # untouched layers follow the data
    live.remove()
    assert [ly.name for ly in viewer.layers] == [cube.name]


def test_start_from_a_finished_run(make_napari_viewer, qtbot):
    # 'start from' lists finished runs; choosing one warm-starts the next fit from its result, also
    # at another binning (the fit bins its maps)
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer)
    assert dock.build_request("sushi").settings.warm_start is None  # automatic
    run_fit(qtbot, dock)
    label = "S1"
    assert dock.start_combo.findData(label) >= 0
    dock.start_combo.setCurrentIndex(dock.start_combo.findData(label))
    req = dock.build_request("sushi")
    assert req.settings.warm_start is dock.runs[label].result
    dock.binning.setValue(2)
    req2 = dock.build_request("sushi")
    assert req2.settings.warm_start is dock.runs[label].result and req2.settings.binning == 2
    run_fit(qtbot, dock)
    binned = dock.runs["S2"].result
    assert binned.stop_reason != "error" and binned.provenance["settings"]["warm_start"] == "previous result"
    full = dock.runs[label].result.params["thermal kT"]
    assert binned.params["thermal kT"].shape == (full.shape[0] // 2, full.shape[1] // 2)
    dock.start_combo.setCurrentIndex(dock.start_combo.findData(label))
    dock.binning.setValue(1)
    dock.kmad.setValue(3.0)
    run_fit(qtbot, dock)
    second = dock.runs["S3"].result
    assert second.provenance["settings"]["warm_start"] == "previous result"
    assert dock.runs[label].result.provenance["settings"]["warm_start"] is None
    assert dock.start_combo.findData("S3") >= 0


def test_runtime_error_in_the_solver_is_reported_and_the_dock_recovers(make_napari_viewer, qtbot, notes, monkeypatch):
    """superqt drops a RuntimeError from a worker silently (no errored, no finished): torch's errors,
    out-of-memory included, are RuntimeErrors, so the dock must still hear of them and end the run."""
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=4)

    def failing_fit(cube, components, settings, callback=None, cancel=None):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(fd, "solver_function", lambda method: failing_fit)
    run_fit(qtbot, dock, timeout=20_000)
    assert dock.job is None and dock.run_button.isEnabled()
    assert any("CUDA out of memory" in m for m in notes["error"]), notes
    assert "CUDA out of memory" in dock.status.text()
    assert not any(L.run_of(ly.name) for ly in viewer.layers)


def test_run_summary_names_statistic_and_start_dependence(make_napari_viewer, qtbot, notes):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=3)
    run_fit(qtbot, dock)
    first = dock.status.text()
    assert "median cstat/dof" in first and "another start" not in first
    dock.scan_check.setChecked(False)
    run_fit(qtbot, dock)
    assert "not the global scan: another start can give other maps" in dock.status.text()


def test_a_loaded_model_file_on_the_cube_grid_is_not_marked_other_grid(make_napari_viewer, tmp_path):
    import shutil

    from napari_sushi.core.spectral.registry import pretrained_dir

    viewer = make_napari_viewer()
    viewer.open_sample("napari-sushi", "toy_remnant")
    dock = fd.SushiFitDock(viewer)
    path = shutil.copy(pretrained_dir() / "toy-powerlaw-emulator.safetensors", tmp_path / "mine.safetensors")
    e = next(x for x in dock.editors if x.name == "powerlaw")
    e.load_model_file(str(path))
    dock._cube_selected()
    assert e.model_combo.currentText() == "file: mine.safetensors"
    texts = [e.model_combo.itemText(i) for i in range(e.model_combo.count())]
    assert "wide-powerlaw-emulator  (other grid)" in texts  # the wide models are on another grid


def test_session_round_trip_recreates_runs_cube_and_warm_start(make_napari_viewer, qtbot, notes, tmp_path):
    from napari_sushi._napari.spectrum_view import PixelSpectrumDock
    from napari_sushi.core.io import write_cube_fits

    cube, _ = make_cube(16, 16)
    cube.wcs = _wcs(16, 16)
    write_cube_fits(cube, tmp_path / "cube.fits")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "cube.fits"), plugin="napari-sushi")
    dock = analytic_fit_dock(viewer, max_iter=3, binning=2)
    run_fit(qtbot, dock)
    run = dock.runs["S1"]
    out = dock.save_session(str(tmp_path / "work"))
    assert out is not None and out.name == "work.sushi", notes["error"]

    fresh = make_napari_viewer()  # a new napari: the session brings back the cube and the run
    other = analytic_fit_dock(fresh, max_iter=3)
    assert other.load_session(str(out)) == ["S1"], notes["error"]
    assert "cube" in fresh.layers  # re-opened from its file
    assert set(other.runs["S1"].layer_names) == set(run.layer_names)
    for name in run.layer_names:
        a, b = viewer.layers[name], fresh.layers[name]
        np.testing.assert_allclose(b.data, a.data, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b.scale, a.scale)
        np.testing.assert_allclose(b.translate, a.translate)
        assert b.metadata["unit"] == a.metadata["unit"] and b.visible == a.visible
    kt = fresh.layers["thermal kT [keV] · S1"]
    np.testing.assert_allclose(
        kt.metadata["wcs"].wcs.crval, viewer.layers["thermal kT [keV] · S1"].metadata["wcs"].wcs.crval
    )
    assert other.runs["S1"].result.provenance["settings"] == run.result.provenance["settings"]
    # the pixel spectrum dock works on the loaded run, and it can warm-start a new fit
    spec = PixelSpectrumDock(fresh)
    fresh.window.add_dock_widget(spec, name="Pixel spectrum")
    spec.refresh_runs(select="S1")
    got = spec.show_pixel(3, 4)
    assert got is not None, spec.info.text()
    other.binning.setValue(2)
    other.start_combo.setCurrentIndex(other.start_combo.findData("S1"))
    run_fit(qtbot, other)
    assert "S2" in other.runs and not notes["error"], notes["error"]


def test_free_anchors_without_regularised_shares_are_flagged_in_a_notification(make_napari_viewer, qtbot, notes):
    viewer, _, _ = _viewer_with_cube(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=4)
    dock.anchor_combo.setCurrentIndex(dock.anchor_combo.findData("free"))
    dock.shares_check.setChecked(False)  # (checked by default)
    run_fit(qtbot, dock)
    assert any("regularise the components' shares" in m for m in notes["warning"]), notes
    notes["warning"].clear()
    dock.shares_check.setChecked(True)  # the measured combination: no warning
    run_fit(qtbot, dock)
    assert not any("free anchors" in m for m in notes["warning"]), notes
