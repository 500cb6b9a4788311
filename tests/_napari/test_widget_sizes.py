"""No text is clipped in the docks at their default width: every spin box shows its whole value and
suffix ('3.00 keV', not '3.00 l'), in a real window under Xvfb."""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import QAbstractSpinBox, QScrollArea

from napari_sushi._napari.events_dock import BinEventsDock
from napari_sushi._napari.fit_dock import SushiFitDock
from napari_sushi._napari.training_dock import TrainingDock

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("dock_class", [SushiFitDock, TrainingDock, BinEventsDock])
def test_spin_boxes_show_their_whole_text(make_napari_viewer, qtbot, dock_class):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-sushi", "toy_remnant")
    dock = dock_class(viewer)
    viewer.window.add_dock_widget(dock, name=dock_class.__name__)
    qtbot.wait(50)
    boxes = [b for b in dock.findChildren(QAbstractSpinBox) if b.isVisibleTo(dock)]
    assert len(boxes) >= 4
    scroll = dock.findChild(QScrollArea)
    assert scroll.widget().width() <= scroll.viewport().width()  # nothing cut at the right edge
    for b in boxes:
        text = b.text()
        need = b.fontMetrics().horizontalAdvance(text)
        assert b.lineEdit().width() >= need, (dock_class.__name__, text, b.lineEdit().width(), need)
