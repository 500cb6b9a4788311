"""The fit dock's cluster path: a run sent to a Dask scheduler, and a batch's outputs opened as runs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sushi._napari.layers import cube_layer

from app_helpers import analytic_fit_dock, make_cube, run_fit

pytestmark = pytest.mark.gui


def _viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    cube, _ = make_cube(16, 16)
    data, kwargs, _ = cube_layer(cube)
    viewer.add_image(data, **kwargs)
    return viewer


def test_a_run_sent_to_a_dask_scheduler_gives_the_local_maps(make_napari_viewer, qtbot, notes):
    distributed = pytest.importorskip("distributed")
    viewer = _viewer(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=6)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        dock.scheduler_edit.setText(cl.scheduler_address)
        run_fit(qtbot, dock)
        assert "Dask cluster" in dock.status.text() or "S1" in dock.status.text()
    assert not notes["error"], notes["error"]
    dock.scheduler_edit.setText("")
    run_fit(qtbot, dock)
    remote, local = dock.runs["S1"].result, dock.runs["S2"].result
    for key, v in local.params.items():
        np.testing.assert_allclose(remote.params[key], v, rtol=1e-6, err_msg=key)
    assert any(ly.name.endswith("· S1") for ly in viewer.layers)


def test_an_unreachable_scheduler_is_a_notification(make_napari_viewer, qtbot, notes):
    pytest.importorskip("distributed")
    viewer = _viewer(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=3)
    dock.scheduler_edit.setText("tcp://127.0.0.1:1")
    run_fit(qtbot, dock, timeout=60_000)
    assert notes["error"] and "cannot reach the Dask scheduler" in notes["error"][-1]
    assert dock.job is None and not dock.runs


def test_open_batch_outputs_as_runs(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = _viewer(make_napari_viewer)
    dock = analytic_fit_dock(viewer, max_iter=4)
    run_fit(qtbot, dock)
    dock.runs["S1"].result.to_fits(tmp_path / "first_maps.fits")
    spec = tmp_path / "b.toml"
    spec.write_text('[[cube]]\ninput = "first.fits"\n[[cube]]\ninput = "second.fits"\n')
    n_layers = len(viewer.layers)
    opened = dock.open_batch(str(spec))
    assert opened == [str(tmp_path / "first_maps.fits")]
    assert len(viewer.layers) > n_layers
    assert any("thermal kT" in ly.name for ly in list(viewer.layers)[n_layers:])
    assert "not fitted yet: second" in dock.status.text() and notes["warning"]
    spec.write_text("[[cube]]\n")  # no input
    assert dock.open_batch(str(spec)) == [] and "has no input" in notes["error"][-1]
