"""Form rows the docks share: a file path with Browse…, and an energy band of two spin boxes."""

from __future__ import annotations

from typing import Any, Callable

from qtpy.QtWidgets import QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget


def file_row(
    parent: QWidget, tip: str, pattern: str, title: str = "Open", on_change: Callable[[], Any] | None = None
) -> tuple[QLineEdit, QHBoxLayout]:
    """A path field with a Browse… button (``pattern``: the file dialog's filter); ``on_change`` runs when
    the path is typed or picked."""
    edit = QLineEdit("")
    edit.setToolTip(tip)
    if on_change is not None:
        edit.editingFinished.connect(on_change)

    def browse() -> None:
        path, _ = QFileDialog.getOpenFileName(parent, title, "", f"{title} ({pattern});;All files (*)")
        if path:
            edit.setText(path)
            if on_change is not None:
                on_change()

    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return edit, row


def band_row(low: float = 0.5, high: float = 8.0) -> tuple[QDoubleSpinBox, QDoubleSpinBox, QHBoxLayout]:
    """Two keV spin boxes 'low to high keV' in one row."""
    row = QHBoxLayout()
    boxes = []
    for v in (low, high):
        sb = QDoubleSpinBox()
        sb.setRange(0.0, 100.0)
        sb.setDecimals(2)
        sb.setSingleStep(0.1)
        sb.setValue(v)
        sb.setMinimumWidth(80)
        boxes.append(sb)
    row.addWidget(boxes[0])
    row.addWidget(QLabel("to"))
    row.addWidget(boxes[1])
    row.addWidget(QLabel("keV"))
    return boxes[0], boxes[1], row
