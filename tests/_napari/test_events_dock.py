"""The Bin event list dock: re-binning from the app, a cut-out drawn as a rectangle, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi._napari import events_dock as ed
from napari_sushi._napari.reader import event_layers

from app_helpers import capture_notifications

pytestmark = pytest.mark.gui


@pytest.fixture
def event_file(tmp_path):
    """A small Chandra-like event list: sky x 1000-1200, y 2000-2100 (0.5 sky px), PI channels, energies."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.uniform(1000.5, 1200.5, n)
    y = rng.uniform(2000.5, 2100.5, n)
    pi = rng.integers(35, 548, n)
    energy = (pi - 0.5) * 14.6
    cols = [
        fits.Column("x", "E", array=x),
        fits.Column("y", "E", array=y),
        fits.Column("energy", "E", unit="eV", array=energy),
        fits.Column("pi", "J", array=pi),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    hdu.header["TELESCOP"] = "CHANDRA"
    hdu.header["INSTRUME"] = "ACIS"
    hdu.header["EXPOSURE"] = 1000.0
    path = tmp_path / "small_evt2.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path, x, y


@pytest.fixture
def enotes(monkeypatch):
    return capture_notifications(monkeypatch, ed)


def _add(viewer, layers):
    return [viewer.add_image(d, **k) for d, k, _ in layers]


def test_rebin_with_a_drawn_rectangle_keeps_the_events_inside(make_napari_viewer, event_file, enotes):
    path, x, y = event_file
    viewer = make_napari_viewer()
    whole = _add(viewer, event_layers(path, binning=4))[0]
    dock = ed.BinEventsDock(viewer)
    assert dock.path_edit.text() == str(path) and dock.binning.value() == 4  # taken from the open cube
    assert "20,000 events" in dock.info.text()
    # a rectangle over image pixels 5..14 (x) and 2..9 (y) of the 4x-binned cube, in world coordinates
    box = np.array([[2, 5], [2, 14], [9, 14], [9, 5]], float) * np.array(whole.scale[1:]) + np.array(
        whole.translate[1:]
    )
    viewer.add_shapes([box], shape_type="rectangle", name="cut")
    dock.cutout_combo.setCurrentText("rectangle: cut")
    x0, x1, y0, y1 = dock.cutout()
    fx0, fy0 = float(whole.metadata["header"]["FIELDX0"]), float(whole.metadata["header"]["FIELDY0"])
    assert (x0, x1) == pytest.approx((fx0 + 5 * 4, fx0 + 15 * 4)) and (y0, y1) == pytest.approx(
        (fy0 + 2 * 4, fy0 + 10 * 4)
    )
    dock.binning.setValue(2)
    dock.group.setValue(8)
    cube = dock.bin()[0]
    assert not enotes["error"], enotes["error"]
    assert cube.data.shape[1:] == (16, 20) and cube.metadata["events"]["group"] == 8
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    e = cube.metadata["energy_edges"]
    pi = fits.getdata(path, "EVENTS")["pi"]
    lo_ch, hi_ch = int(cube.metadata["channels"][0]), int(cube.metadata["channels"][-1]) + 8
    assert int(cube.data.sum()) == int((inside & (pi >= lo_ch) & (pi < hi_ch)).sum())
    assert float(e[0]) >= 0.5 - 1e-9 and float(e[-1]) <= 8.0 + 1e-9
    assert cube.name != whole.name and "cut-out" in cube.name


def test_bad_options_are_notifications_not_layers(make_napari_viewer, event_file, tmp_path, enotes):
    path, _, _ = event_file
    viewer = make_napari_viewer()
    dock = ed.BinEventsDock(viewer)
    assert dock.bin() == [] and "no event list" in enotes["error"][-1]
    dock.path_edit.setText(str(path))
    dock._path_changed()
    dock.emin.setValue(9.0)
    dock.emax.setValue(9.5)
    assert dock.bin() == [] and "small_evt2.fits" in dock.status.text()
    dock.emin.setValue(0.5)
    dock.emax.setValue(8.0)
    dock.cutout_combo.setCurrentText(ed.TYPED)
    for sb, v in zip(dock.cut, (1100, 1050, 0, 10)):
        sb.setValue(v)
    assert dock.bin() == [] and "cut-out" in enotes["error"][-1] and "empty" in enotes["error"][-1]
    viewer.add_shapes([np.array([[0, 0], [0, 5], [5, 5], [5, 0]], float)], shape_type="rectangle", name="box")
    dock.cutout_combo.setCurrentText("rectangle: box")
    assert dock.bin() == [] and "needs a cube of this event list" in enotes["error"][-1]
    dock.rmf_edit.setText(str(tmp_path / "missing.rmf"))
    dock.cutout_combo.setCurrentText(ed.FULL_FIELD)
    assert dock.bin() == [] and "missing.rmf" in enotes["error"][-1]
    assert len(viewer.layers) == 1  # only the Shapes layer: nothing half-made was added
