"""The training dock in a real viewer: train a quick model on any OGIP response, see it in the fit
dock at once, cancel, and get clear errors for bad choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sushi._napari import fit_dock as fd
from napari_sushi._napari import training_dock as td
from napari_sushi.core.response import gaussian_response, write_arf, write_rmf

from app_helpers import capture_notifications

pytestmark = pytest.mark.gui


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("NAPARI_SUSHI_MODEL_DIR", str(folder))
    return folder


@pytest.fixture
def gaussian_pair(tmp_path):
    """A Gaussian CCD-like response (60 eV channels, 0.3-11 keV) written as an OGIP RMF + ARF pair."""
    r = gaussian_response(0.15, 0.5, 0.3, 11.0, channel_width=0.06, name="gauss60")
    return write_rmf(r, tmp_path / "gauss60.rmf"), write_arf(r, tmp_path / "gauss60.arf")


@pytest.fixture
def tnotes(monkeypatch):
    return capture_notifications(monkeypatch, td, fd)


def _train(qtbot, dock, timeout=120_000):
    job = dock.start()
    assert job is not None, dock.status.text()
    qtbot.waitUntil(lambda: dock.job is None, timeout=timeout)
    return job


def test_quick_powerlaw_on_a_gaussian_response_appears_in_the_fit_dock(
    make_napari_viewer, qtbot, model_dir, gaussian_pair, tnotes
):
    viewer = make_napari_viewer()
    fit = fd.SushiFitDock(viewer)
    before = {c.source for c in fit._choices}
    dock = td.TrainingDock(viewer)
    assert dock.cube_combo.currentText() == td.NO_CUBE  # no cube open: response and band from the form
    rmf, arf = gaussian_pair
    dock.rmf_edit.setText(str(rmf))
    dock.arf_edit.setText(str(arf))
    dock.emin.setValue(1.0)
    dock.emax.setValue(7.0)
    dock.component_combo.setCurrentIndex(dock.component_combo.findData("powerlaw"))
    dock.nh.setValue(0.8)
    dock.set_box("index", low=1.2, high=3.2)
    dock.quick_check.setChecked(True)
    dock.name_edit.setText("gauss test powerlaw")
    _train(qtbot, dock)
    assert not tnotes["error"], tnotes["error"]
    name = "gauss-test-powerlaw"  # made file-name safe
    path = model_dir / f"{name}.safetensors"
    assert dock.last_path == path and path.is_file()
    m = dock.last_model
    assert m.meta.parameters[0].low == pytest.approx(1.2) and m.meta.parameters[0].high == pytest.approx(3.2)
    assert m.meta.extra["fixed"]["nH"] == pytest.approx(0.8)
    e = m.energy_edges
    assert e[0] >= 1.0 - 1e-9 and e[-1] <= 7.0 + 1e-9 and np.allclose(np.diff(e), 0.06, atol=1e-6)
    # the live loss plot got the refinement levels and the read-out quotes the held-out accuracy
    assert dock.loss_plot.n_points >= 1
    acc = m.meta.extra["accuracy"]
    assert "Held-out accuracy" in dock.result_label.text() and f"{acc['median']:.2g}" in dock.result_label.text()
    # the fit dock (opened before) lists it now, and it reloads by name
    assert name in {c.source for c in fit._choices} - before
    assert all(e.has_choice(name) for e in fit.editors)
    from napari_sushi.core.spectral.registry import list_models, load_model

    entry = next(x for x in list_models() if x.name == name)
    assert entry.origin == "user"
    again = load_model(name)
    theta = torch.tensor([[2.0]], dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(again.spectrum(theta).numpy(), m.spectrum(theta).numpy(), rtol=1e-6)
    # the same name again is refused before any training, unless 'replace' is ticked
    assert dock.start() is None and "already called" in dock.status.text()


def test_cancel_saves_nothing(make_napari_viewer, qtbot, model_dir, gaussian_pair, tnotes):
    viewer = make_napari_viewer()
    dock = td.TrainingDock(viewer)
    rmf, arf = gaussian_pair
    dock.rmf_edit.setText(str(rmf))
    dock.arf_edit.setText(str(arf))
    dock.family_combo.setCurrentIndex(dock.family_combo.findData("iae"))  # epochs: time to cancel
    dock.quick_check.setChecked(True)
    dock.name_edit.setText("to-cancel")
    job = dock.start()
    assert job is not None
    qtbot.waitUntil(lambda: dock.loss_plot.n_points > 0 or dock.job is None, timeout=120_000)
    dock.cancel()
    qtbot.waitUntil(lambda: dock.job is None, timeout=120_000)
    assert "cancelled" in dock.status.text() and "nothing was saved" in dock.status.text()
    assert not (model_dir / "to-cancel.safetensors").exists()
    assert dock.train_button.isEnabled() and not dock.cancel_button.isEnabled()


def test_bad_choices_say_what_to_fix(make_napari_viewer, qtbot, model_dir, tmp_path, gaussian_pair, tnotes):
    viewer = make_napari_viewer()
    dock = td.TrainingDock(viewer)
    assert dock.start() is None and "no response" in tnotes["error"][-1]
    dock.rmf_edit.setText(str(tmp_path / "missing.rmf"))
    assert dock.start() is None and "does not exist" in dock.status.text()
    rmf, arf = gaussian_pair
    dock.rmf_edit.setText(str(rmf))
    dock.arf_edit.setText(str(arf))
    dock.set_box("kT", low=3.0, high=2.0)
    assert dock.start() is None and "box of kT is empty" in dock.status.text()
    dock.set_box("kT", low=0.5, high=4.0)
    dock.set_box("kT", fixed=2.0)
    dock.set_box("velocity", fixed=0.0)
    assert dock.start() is None and "every parameter is fixed" in dock.status.text()
    dock.set_box("velocity", low=-3000, high=3000)
    text = tmp_path / "not_a_response.rmf"
    text.write_text("hello")
    dock.rmf_edit.setText(str(text))
    dock.name_edit.setText("bad-response")
    dock.quick_check.setChecked(True)
    job = dock.start()  # the response is read in the worker: its error comes back as a notification
    if job is not None:
        qtbot.waitUntil(lambda: dock.job is None, timeout=60_000)
    assert "not_a_response.rmf" in dock.status.text(), dock.status.text()
    assert not (model_dir / "bad-response.safetensors").exists()


def test_layer_changes_keep_the_users_choices(make_napari_viewer, model_dir, gaussian_pair, tnotes):
    from napari_sushi._napari.layers import cube_layer

    from app_helpers import make_cube

    viewer = make_napari_viewer()
    dock = td.TrainingDock(viewer)
    rmf, _ = gaussian_pair
    dock.rmf_edit.setText(str(rmf))
    dock.name_edit.setText("my-own-name")
    data, kwargs, _ = cube_layer(make_cube(8, 8)[0])
    viewer.add_image(data, **kwargs)  # a cube appears: 'none' stays chosen, the typed fields stay
    viewer.add_points(np.zeros((1, 2)))
    assert dock.cube_combo.currentText() == td.NO_CUBE
    assert dock.name_edit.text() == "my-own-name" and dock.rmf_edit.text() == str(rmf)
    # a name the model folder would refuse is refused before any training
    dock.name_edit.setText("_abc")
    assert dock.start() is None and dock.job is None and "not allowed" in dock.status.text()


def test_retraining_under_the_same_name_replaces_the_model_in_the_fit_dock(
    make_napari_viewer, qtbot, model_dir, gaussian_pair, tnotes
):
    viewer = make_napari_viewer()
    fit = fd.SushiFitDock(viewer)
    dock = td.TrainingDock(viewer)
    rmf, arf = gaussian_pair
    dock.rmf_edit.setText(str(rmf))
    dock.arf_edit.setText(str(arf))
    dock.component_combo.setCurrentIndex(dock.component_combo.findData("powerlaw"))
    dock.quick_check.setChecked(True)
    dock.name_edit.setText("mine")
    dock.set_box("index", low=1.5, high=3.0)
    _train(qtbot, dock)
    pl = next(e for e in fit.editors if e.name == "powerlaw")
    pl.select_model("mine")
    assert pl.model.meta.parameters[0].high == pytest.approx(3.0)
    dock.overwrite_check.setChecked(True)
    dock.set_box("index", low=1.0, high=3.5)
    _train(qtbot, dock)
    assert not tnotes["error"], tnotes["error"]
    assert pl.choice.source == "mine" and pl.model.meta.parameters[0].high == pytest.approx(3.5)
    assert pl.row("index").info.high == pytest.approx(3.5)


def test_apec_physics_choice(make_napari_viewer, qtbot, model_dir, gaussian_pair, tnotes, monkeypatch):
    from napari_sushi.core.physics import apec

    viewer = make_napari_viewer()
    dock = td.TrainingDock(viewer)
    rmf, arf = gaussian_pair
    dock.rmf_edit.setText(str(rmf))
    dock.arf_edit.setText(str(arf))
    dock.emin.setValue(0.5)
    dock.emax.setValue(7.0)
    dock.component_combo.setCurrentIndex(dock.component_combo.findData("powerlaw"))
    assert not dock.physics_combo.isEnabled()  # a power law has one physics
    dock.component_combo.setCurrentIndex(dock.component_combo.findData("thermal"))
    assert dock.physics_combo.isEnabled()
    dock.physics_combo.setCurrentIndex(dock.physics_combo.findData("apec"))
    dock.set_box("velocity", fixed=0.0)
    dock.quick_check.setChecked(True)
    dock.name_edit.setText("apec-quick")
    if apec.available():
        _train(qtbot, dock)
        assert not tnotes["error"], tnotes["error"]
        m = dock.last_model
        assert m.meta.extra["physics"] == "apec" and "APEC" in m.meta.description
    monkeypatch.setenv(apec.WEIGHTS_ENV, str(model_dir / "missing.h5"))  # as without the extra
    dock.name_edit.setText("apec-missing")
    assert dock.start() is None
    assert "pip install 'napari-sushi[apec]'" in dock.status.text()
    assert not (model_dir / "apec-missing.safetensors").exists()
