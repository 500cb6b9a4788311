"""The whole real-data path in the app, without a terminal: the MSH 15-52 event list -> a cube on
native channels with its response -> models trained for it in the Train models dock -> SUSHI maps ->
a pixel's spectrum -> FITS export. Skips without ../shared/data (the real Chandra files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_sushi._napari import events_dock as ed
from napari_sushi._napari import fit_dock as fd
from napari_sushi._napari import spectrum_view as sv
from napari_sushi._napari import training_dock as td

from app_helpers import capture_notifications, run_fit

pytestmark = pytest.mark.gui

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EVENTS = SHARED / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
RMF = SHARED / "responses" / "acisi_aimpt_cy0.rmf"
ARF = SHARED / "responses" / "acisi_aimpt_cy0.arf"
needs_data = pytest.mark.skipif(
    not EVENTS.exists() or not RMF.exists(), reason="the real Chandra event list and response are not in ../shared/data"
)


@pytest.fixture
def own_notes(monkeypatch):
    return capture_notifications(monkeypatch, fd, td, ed, sv)


@needs_data
def test_event_file_to_trained_models_to_maps_to_pixel_to_fits(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, own_notes
):
    monkeypatch.setenv("NAPARI_SUSHI_MODEL_DIR", str(tmp_path / "models"))
    from napari_sushi._napari.preferences import prefer_our_reader

    viewer = make_napari_viewer()
    prefer_our_reader()
    # 1. open as File > Open does (plugin=None): our reader, no reader-choice dialog, native channels
    opened = viewer.open(str(EVENTS), plugin=None)
    assert len(opened) == 1 and opened[0].data.ndim == 3
    whole = opened[0]
    assert whole.metadata["events"]["native"] and whole.metadata["channels"] is not None

    # 2. re-bin from the app: the response, coarse binning, 4-channel groups, a cut-out over RCW 89 + PWN
    bins = ed.BinEventsDock(viewer)
    viewer.window.add_dock_widget(bins, name="Bin event list")
    assert bins.path_edit.text() == str(EVENTS)
    bins.rmf_edit.setText(str(RMF))
    bins.arf_edit.setText(str(ARF))
    bins.binning.setValue(32)
    bins.group.setValue(4)
    bins.cutout_combo.setCurrentText(ed.TYPED)
    for sb, v in zip(bins.cut, (3200.0, 5200.0, 3000.0, 5000.0)):
        sb.setValue(v)
    cube_layer = bins.bin()[0]
    assert cube_layer.data.shape[1:] == (63, 63) and cube_layer.data.shape[0] == 128
    assert cube_layer.metadata["response"]["rmf"] == str(RMF)

    # 3. the fit dock says no model is built for this cube and offers to train one
    fit = fd.SushiFitDock(viewer)
    viewer.window.add_dock_widget(fit, name="SUSHI fit")
    fit.cube_combo.setCurrentText(cube_layer.name)
    assert fit.match_info.isVisibleTo(fit) and "No thermal or powerlaw model" in fit.match_info.text()
    trainer = fit.open_training_dock()
    assert isinstance(trainer, td.TrainingDock) and trainer.cube_combo.currentText() == cube_layer.name
    assert trainer.rmf_edit.text() == str(RMF) and "native channels" in trainer.data_info.text()

    # 4. train quick absorbed thermal and power-law emulators for this cube (N_H of MSH 15-52)
    for comp in ("thermal", "powerlaw"):
        trainer.component_combo.setCurrentIndex(trainer.component_combo.findData(comp))
        trainer.nh.setValue(0.95)
        trainer.quick_check.setChecked(True)
        if comp == "powerlaw":
            trainer.set_box("index", low=1.0, high=3.5)
        assert trainer.start() is not None, trainer.status.text()
        qtbot.waitUntil(lambda: trainer.job is None, timeout=180_000)
        assert trainer.last_model is not None and trainer.last_model.meta.component == comp, trainer.status.text()
    # the fit dock switched to them at once and no longer warns
    assert not fit.match_info.isVisibleTo(fit)
    chosen = {e.name: e.choice.source for e in fit.editors}
    assert chosen["thermal"].endswith("thermal-emulator") and chosen["powerlaw"].endswith("powerlaw-emulator")
    assert all(cube_layer.name.split(" ")[0] in s for s in chosen.values())
    assert "nH = 0.95" in fit.editors[0].model_info.text()

    # 5. SUSHI maps
    fit.max_iter.setValue(30)
    label = run_fit(qtbot, fit, timeout=300_000).label
    assert label in fit.runs, fit.status.text()
    result = fit.runs[label].result
    assert result.params["thermal kT"].shape == (63, 63)
    assert f"{result.n_iter} iterations" in fit.status.text()

    # 6. a pixel's spectrum against the fit
    spec = sv.PixelSpectrumDock(viewer)
    viewer.window.add_dock_widget(spec, name="Pixel spectrum")
    total = result.amplitudes["thermal"] + result.amplitudes["powerlaw"]
    y, x = np.unravel_index(int(np.argmax(total)), total.shape)
    sp = spec.show_pixel(int(y), int(x))
    assert sp is not None and sp.counts.sum() > 100
    assert "thermal kT =" in spec.info.text() and "powerlaw index =" in spec.info.text()

    # 7. maps to FITS, read back as maps
    out = fit.export(label, str(tmp_path / "msh_maps.fits"), include_cubes=False)
    assert out is not None and out.exists()
    from napari_sushi.core.io import read_maps_fits

    ms = read_maps_fits(out)
    np.testing.assert_allclose(ms.maps["thermal kT"], result.params["thermal kT"], rtol=1e-6, equal_nan=True)
    assert not own_notes["error"], own_notes["error"]
