"""The Pixel spectrum dock in a real viewer: a click on the cube plots that pixel against the run's model.

A real SUSHI fit (small analytic models, 16x16x40 cube, 2x2 binning) runs in the fit dock; the click
goes through the viewer's own mouse-callback machinery, and the plotted arrays are compared with
:func:`napari_sushi.core.pixel_spectrum.pixel_spectrum`.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.events import Event
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

from napari_sushi._napari import fit_dock as fd
from napari_sushi._napari import spectrum_view as sv
from napari_sushi._napari.layers import cube_layer
from napari_sushi.core.pixel_spectrum import pixel_spectrum

from app_helpers import LineModel, PowerLawModel, analytic_fit_dock, capture_notifications, make_cube, run_fit

pytestmark = pytest.mark.gui


@pytest.fixture
def spec_notes(monkeypatch):
    """The notifications of both docks."""
    return capture_notifications(monkeypatch, sv, fd)


def _setup(make_napari_viewer, qtbot, binning=2, mask_block=True):
    viewer = make_napari_viewer()
    cube, _ = make_cube(16, 16)
    data, kwargs, _ = cube_layer(cube)
    kwargs["scale"] = (kwargs["scale"][0], 2.0, 2.0)
    kwargs["translate"] = (kwargs["translate"][0], 10.0, 10.0)
    layer = viewer.add_image(data, **kwargs)
    if mask_block:  # a Labels mask leaving out the top-left 4x4 cube pixels (binned (0..1, 0..1))
        m = np.ones((16, 16), np.int32)
        m[:4, :4] = 0
        viewer.add_labels(m, name="fit region", scale=(2.0, 2.0), translate=(10.0, 10.0))
    fit = analytic_fit_dock(viewer, binning=binning)
    if mask_block:
        fit.mask_combo.setCurrentIndex(fit.mask_combo.findText("labels: fit region"))
        assert fit.mask_combo.currentData() == ("labels", "fit region")
    spec = sv.PixelSpectrumDock(viewer)
    viewer.window.add_dock_widget(spec, name="Pixel spectrum")
    viewer.layers.selection.active = layer
    return viewer, layer, cube, fit, spec


def _run(qtbot, fit, method="sushi"):
    return run_fit(qtbot, fit, method).label


def _canvas_click(viewer, world_yx):
    """A left click on the vispy canvas at the pixel showing world (y, x): napari computes the position."""
    canvas = viewer.window._qt_viewer.canvas
    view = canvas.view
    pos = tuple(float(v) for v in (view.transform * view.scene.transform).map([world_yx[1], world_yx[0]])[:2])
    canvas._scene_canvas.events.mouse_press(pos=pos, button=1, modifiers=())
    canvas._scene_canvas.events.mouse_release(pos=pos, button=1, modifiers=())


def _click(viewer, position, drag_to=None):
    """Press and release at a world position through napari's mouse-callback machinery."""
    press = ReadOnlyWrapper(Event("mouse_press", position=position, button=1, modifiers=()), exceptions=("handled",))
    mouse_press_callbacks(viewer, press)
    if drag_to is not None:
        move = ReadOnlyWrapper(
            Event("mouse_move", position=drag_to, button=1, modifiers=(), is_dragging=True), exceptions=("handled",)
        )
        mouse_move_callbacks(viewer, move)
    release = ReadOnlyWrapper(
        Event("mouse_release", position=drag_to or position, button=1, modifiers=()), exceptions=("handled",)
    )
    mouse_release_callbacks(viewer, release)


def test_click_plots_the_core_spectrum(make_napari_viewer, qtbot, spec_notes):
    viewer, layer, cube, fit, spec = _setup(make_napari_viewer, qtbot)
    label = _run(qtbot, fit)
    assert not spec_notes["error"], spec_notes["error"]
    qtbot.waitUntil(lambda: spec.run_combo.currentText() == label, timeout=5_000)  # follows the new run

    # cube pixel (y=5, x=2) lies at world (20, 14): binned pixel (2, 1)
    active = viewer.layers.selection.active
    _canvas_click(viewer, (20.0, 14.0))
    assert not spec_notes["warning"], spec_notes["warning"]
    assert spec.pixel == (2, 1)
    res = fit.runs[label].result
    core = pixel_spectrum(res, 2, 1, cube_counts=cube.counts, binning=2, min_counts=spec.min_counts.value())
    # the data are the cube's 2x2 block, grouped for display, in counts/keV
    np.testing.assert_allclose(core.counts.sum(), cube.counts[:, 4:6, 2:4].sum())
    data_line = spec.artists["data"].lines[0]
    np.testing.assert_allclose(data_line.get_xdata(), core.energy_centres)
    np.testing.assert_allclose(data_line.get_ydata(), core.density(core.counts))
    total = spec.artists["total"].get_data()
    np.testing.assert_allclose(total.values, core.density(core.model), rtol=1e-12)
    np.testing.assert_allclose(total.edges, core.energy_edges)
    assert set(spec.artists["components"]) == {"thermal", "powerlaw"}
    for name, patch in spec.artists["components"].items():
        np.testing.assert_allclose(patch.get_data().values, core.density(core.components[name]), rtol=1e-12)
    np.testing.assert_allclose(spec.artists["residual"].lines[0].get_ydata(), core.residuals, rtol=1e-12)
    assert spec.artists["top"].get_yscale() == "log"
    # the text line gives the parameters with sigma and C-stat/dof
    text = spec.info.text()
    assert "thermal kT = " in text and "±" in text and "keV" in text and "dof" in text
    # a marker the size of the binned pixel sits on it; the active layer stays the same
    marker = viewer.layers[sv.MARKER_NAME]
    np.testing.assert_allclose(marker.data, [[11.0 + 2 * 4.0, 11.0 + 1 * 4.0]])
    np.testing.assert_allclose(marker.size, [4.0])
    assert viewer.layers.selection.active is active

    # display options re-plot the same pixel from the core
    spec.min_counts.setValue(0)
    ungrouped = pixel_spectrum(res, 2, 1)
    np.testing.assert_allclose(
        spec.artists["data"].lines[0].get_ydata(), ungrouped.density(ungrouped.counts), rtol=1e-5
    )
    spec.residual_combo.setCurrentIndex(spec.residual_combo.findData("pearson"))
    np.testing.assert_allclose(
        spec.artists["residual"].lines[0].get_ydata(),
        pixel_spectrum(res, 2, 1, residual_kind="pearson").residuals,
        rtol=1e-4,
    )


def test_drag_does_not_select_and_bad_pixels_notify(make_napari_viewer, qtbot, spec_notes):
    viewer, layer, cube, fit, spec = _setup(make_napari_viewer, qtbot)
    # before any run: a click says what to do
    _click(viewer, (5.0, 20.0, 14.0))
    assert spec_notes["info"] and "run a fit" in spec_notes["info"][-1]
    _run(qtbot, fit)
    qtbot.waitUntil(lambda: spec.run_combo.count() == 1, timeout=5_000)
    _click(viewer, (5.0, 20.0, 14.0), drag_to=(5.0, 30.0, 30.0))  # a pan, not a click
    assert spec.pixel is None
    _click(viewer, (5.0, 11.0, 11.0))  # binned (0, 0): outside the mask
    assert "not fitted" in spec_notes["warning"][-1]
    _click(viewer, (5.0, 11.0, 200.0))  # beyond the image
    assert "outside the fitted image" in spec_notes["warning"][-1]
    assert "outside the fitted image" in spec.info.text()  # the whole message stays in the dock
    assert spec.pixel is None and not spec_notes["error"]


def test_follows_new_runs_on_their_own_grid(make_napari_viewer, qtbot, spec_notes):
    viewer, layer, cube, fit, spec = _setup(make_napari_viewer, qtbot, mask_block=False)
    first = _run(qtbot, fit)
    qtbot.waitUntil(lambda: spec.run_combo.currentText() == first, timeout=5_000)
    _click(viewer, (5.0, 20.0, 14.0))
    assert spec.pixel == (2, 1)
    # a second run without binning: the dock switches to it and shows the same place on its grid
    fit.binning.setValue(1)
    second = _run(qtbot, fit, "pixelfit")
    qtbot.waitUntil(lambda: spec.run_combo.currentText() == second, timeout=5_000)
    assert spec.pixel == (5, 2)
    core = pixel_spectrum(fit.runs[second].result, 5, 2, min_counts=spec.min_counts.value())
    np.testing.assert_allclose(spec.artists["total"].get_data().values, core.density(core.model), rtol=1e-12)
    np.testing.assert_allclose(core.counts.sum(), cube.counts[:, 5, 2].sum(), atol=1e-3)
    np.testing.assert_allclose(viewer.layers[sv.MARKER_NAME].data, [[20.0, 14.0]])
    # and back to the first run by the combo
    spec.run_combo.setCurrentText(first)
    assert spec.pixel == (2, 1)
    assert [spec.run_combo.itemText(i) for i in range(spec.run_combo.count())] == [first, second]
    # the per-pixel fit pins some kT at the analytic model's upper edge: that warning is the fit dock's own
    assert not spec_notes["error"] and not [w for w in spec_notes["warning"] if "box edge" not in w]
    # without the cube layer the run's own maps place the click and model + residual give the data
    viewer.layers.remove(layer)
    _click(viewer, (20.0, 14.0))
    assert spec.pixel == (2, 1) and not [w for w in spec_notes["warning"] if "box edge" not in w]
    core = pixel_spectrum(fit.runs[first].result, 2, 1, min_counts=spec.min_counts.value())
    np.testing.assert_allclose(spec.artists["data"].lines[0].get_ydata(), core.density(core.counts))


def test_exported_fits_run_without_fit_dock(make_napari_viewer, qtbot, spec_notes, tmp_path):
    from napari_sushi.core.io.maps import read_maps_fits
    from napari_sushi.core.solver.pixelfit import pixelfit
    from napari_sushi.core.solver.settings import Component, FitSettings

    viewer = make_napari_viewer()
    cube, _ = make_cube(6, 6)
    data, kwargs, _ = cube_layer(cube)
    viewer.add_image(data, **kwargs)
    _, spec = viewer.window.add_plugin_dock_widget("napari-sushi", "Pixel spectrum")  # the Plugins menu entry
    assert isinstance(spec, sv.PixelSpectrumDock)
    res = pixelfit(
        cube,
        [Component("thermal", LineModel()), Component("powerlaw", PowerLawModel())],
        FitSettings(max_iter=4, n_starts=1),
    )
    ms = read_maps_fits(res.to_fits(tmp_path / "run.fits", include_cubes=True))
    spec.add_run("from file", ms, cube.name)
    assert spec.run_combo.currentText() == "from file"
    _click(viewer, (1.0, 3.2, 4.4))  # unit pixels at translate 0: pixel (3, 4)
    assert spec.pixel == (3, 4), spec_notes
    core = pixel_spectrum(res, 3, 4, min_counts=spec.min_counts.value())
    np.testing.assert_allclose(core.counts.sum(), cube.counts[:, 3, 4].sum())
    np.testing.assert_allclose(spec.artists["total"].get_data().values, core.density(core.model), rtol=1e-6)
    assert "[" in spec.info.text()  # the per-pixel fit's intervals are shown
    with pytest.raises(ValueError, match="include cubes"):
        spec.add_run("maps only", read_maps_fits(res.to_fits(tmp_path / "maps.fits")), cube.name)


def test_reopened_export_lists_its_run_and_shows_pixels(make_napari_viewer, qtbot, spec_notes, tmp_path):
    """A maps FITS exported with its cubes and opened from file is a run of the dock: no fit dock needed,
    the data come from the cube layer when it is open (its 2x2 blocks), else from model + residual."""
    from napari_sushi._napari import result_layers as L
    from napari_sushi.core.solver.settings import Component, FitSettings
    from napari_sushi.core.solver.sushi import fit

    cube, _ = make_cube(8, 8)
    res = fit(
        cube,
        [Component("thermal", LineModel()), Component("powerlaw", PowerLawModel())],
        FitSettings(max_iter=3, binning=2),
    )
    label = L.run_label("sushi", 1, 5.0)
    res.provenance = dict(res.provenance, run=label)
    path = res.to_fits(tmp_path / "run.fits", include_cubes=True)
    maps_only = res.to_fits(tmp_path / "maps.fits")
    viewer = make_napari_viewer()
    spec = sv.PixelSpectrumDock(viewer)
    viewer.window.add_dock_widget(spec, name="Pixel spectrum")
    viewer.open(str(maps_only), plugin="napari-sushi")
    qtbot.wait(10)
    assert spec.run_combo.count() == 0  # no cubes: nothing to show spectra from
    viewer.open(str(path), plugin="napari-sushi")
    qtbot.waitUntil(lambda: spec.run_combo.count() == 1, timeout=5_000)
    assert spec.run_combo.currentText() == label
    run = spec.current_run()
    assert run.maps_file == str(path.resolve()) and run.binning == 2
    # world (3.2, 4.6) at scale 2, translate 0.5: binned pixel (1, 2)
    _click(viewer, (3.2, 4.6))
    assert spec.pixel == (1, 2), spec_notes
    core = pixel_spectrum(res, 1, 2, min_counts=spec.min_counts.value())
    np.testing.assert_allclose(core.counts.sum(), cube.counts[:, 2:4, 4:6].sum(), rtol=1e-5)
    np.testing.assert_allclose(spec.artists["total"].get_data().values, core.density(core.model), rtol=1e-5)
    assert set(spec.artists["components"]) == {"thermal", "powerlaw"}
    # the file is read once: later refreshes use the cache
    cached = spec._file_cache[run.maps_file][1]
    spec.refresh_runs()
    assert spec.current_run().result is cached
    # with the counts cube open, its 2x2 block is the data (checked against model + residual)
    data, kwargs, _ = cube_layer(cube)
    viewer.add_image(data, **kwargs)
    spec.refresh_runs()
    assert spec._cube_layer(spec.current_run()) is not None
    sp = spec.show_pixel(1, 2)
    assert sp is not None and not spec_notes["warning"], spec_notes
    np.testing.assert_allclose(sp.counts.sum(), cube.counts[:, 2:4, 4:6].sum())
    # a second copy of the same run from another file does not hide the first
    viewer.open(str(res.to_fits(tmp_path / "copy.fits", include_cubes=True)), plugin="napari-sushi")
    qtbot.waitUntil(lambda: spec.run_combo.count() == 2, timeout=5_000)
    assert f"{label} (copy.fits)" in spec.available_runs()
