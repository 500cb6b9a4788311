"""The event-list dock: re-bin an event list from the app (band, native-channel grouping, spatial
binning, cut-out, response), so a user never needs ``napari-sushi bin`` in a terminal.

Thin by design: the dock collects the options and calls the reader's
:func:`napari_sushi._napari.reader.event_layers` (itself :func:`napari_sushi.core.io.bin_events`);
the new cube layer carries its response and the binning options in its metadata. A cut-out can be
typed in sky pixels or taken from a rectangle drawn (Shapes layer) on a cube binned from the list.
"""

# No ``from __future__ import annotations`` here: napari injects the viewer by the annotation.
import math
from pathlib import Path
from typing import Any, Optional

import napari
import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning  # noqa: F401 (tests capture all three)
from napari_sushi._napari.form_rows import band_row, file_row
from napari_sushi._napari.sizing import keep_text_visible, keep_width
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

FULL_FIELD = "whole field"
TYPED = "typed below (sky pixels)"


def events_meta(layer: Any) -> dict | None:
    """The event-list binning record of a cube layer (``metadata['events']``), or None."""
    meta = getattr(layer, "metadata", None) or {}
    ev = meta.get("events")
    return ev if isinstance(ev, dict) and ev.get("path") else None


def rectangle_cutout(shapes: Any, cube_layer: Any) -> tuple[float, float, float, float]:
    """The sky-pixel cut-out (x0, x1, y0, y1) of the last shape drawn on a cube binned from an event list.

    The cube's image pixel ``i`` (data coordinates, napari pixel centres at integers) covers sky pixels
    ``FIELDX0 + i * SPBIN`` to ``FIELDX0 + (i + 1) * SPBIN`` (same for y), as the binning recorded them.
    """
    if shapes is None or len(shapes.data) == 0:
        raise ValueError("the Shapes layer holds no shape; draw a rectangle over the region to cut out.")
    header = cube_layer.metadata.get("header")
    keys = ("FIELDX0", "FIELDY0", "SPBIN")
    if header is None or not all(k in header for k in keys):
        raise ValueError(
            f"cube '{cube_layer.name}' has no record of how it was binned (FIELDX0/FIELDY0/SPBIN); "
            "open the event list again with napari-sushi."
        )
    pts = np.asarray(shapes.data[-1], float)
    world = np.asarray([shapes.data_to_world(p) for p in pts], float)
    data = np.asarray(
        [cube_layer.world_to_data(np.r_[0.0, w[-2:]] if cube_layer.ndim == 3 else w) for w in world], float
    )
    iy, ix = data[:, -2], data[:, -1]
    b, x0, y0 = float(header["SPBIN"]), float(header["FIELDX0"]), float(header["FIELDY0"])
    xs = x0 + (np.array([ix.min(), ix.max()]) + np.array([-0.5, 0.5]) + 0.5) * b
    ys = y0 + (np.array([iy.min(), iy.max()]) + np.array([-0.5, 0.5]) + 0.5) * b
    return float(xs[0]), float(xs[1]), float(ys[0]), float(ys[1])


class BinEventsDock(QWidget):
    """Dock widget: bin (or re-bin) an event list into a cube layer with chosen options."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._build_ui()
        ev = self.viewer.layers.events
        for e in (ev.inserted, ev.removed, ev.reordered):
            e.connect(lambda *_: self.refresh_layers())
        self.refresh_layers()

    # ================================================================================ UI
    def _build_ui(self) -> None:
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(4, 4, 4, 4)

        src = QGroupBox("Event list")
        form = QFormLayout(src)
        self.path_edit, row = file_row(
            self,
            "the event list (FITS EVENTS table)",
            "*.fits *.fits.gz *.evt *.evt2",
            "Event list",
            self._path_changed,
        )
        form.addRow("file", row)
        self.rmf_edit, row = file_row(
            self, "RMF: maps PI channels to energies, and is the model's response", "*.rmf *.rsp *.fits", "Response"
        )
        form.addRow("RMF", row)
        self.arf_edit, row = file_row(self, "ARF (effective area)", "*.arf *.fits", "Response")
        form.addRow("ARF", row)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: gray; font-size: 10px;")
        form.addRow(self.info)
        col.addWidget(src)

        opts = QGroupBox("Binning")
        f2 = QFormLayout(opts)
        self.emin, self.emax, band = band_row(0.5, 8.0)
        f2.addRow("band", band)
        self.native_check = QCheckBox("native instrument channels")
        self.native_check.setChecked(True)
        self.native_check.setToolTip("bin on the PI channels of the instrument, which is what trained models match")
        f2.addRow("", self.native_check)
        self.group = QSpinBox()
        self.group.setRange(1, 64)
        self.group.setToolTip("consecutive native channels summed per energy bin")
        f2.addRow("channel group", self.group)
        self.channel_width = QDoubleSpinBox()
        self.channel_width.setRange(0.001, 5.0)
        self.channel_width.setDecimals(3)
        self.channel_width.setValue(0.1)
        self.channel_width.setSuffix(" keV")
        self.channel_width.setEnabled(False)
        f2.addRow("channel width", self.channel_width)
        self.native_check.toggled.connect(lambda on: (self.group.setEnabled(on), self.channel_width.setEnabled(not on)))
        self.binning = QSpinBox()
        self.binning.setRange(1, 4096)
        self.binning.setValue(8)
        self.binning.setToolTip("sky pixels per image pixel, per axis (Chandra: 0.492 arcsec per sky pixel)")
        f2.addRow("spatial binning", self.binning)
        self.cutout_combo = QComboBox()
        self.cutout_combo.setToolTip(
            "the whole field, a rectangle drawn in a Shapes layer over a cube of this "
            "list, or sky-pixel limits typed below"
        )
        f2.addRow("cut-out", self.cutout_combo)
        self.cut = []
        for pair in (("x0", "x1"), ("y0", "y1")):
            limits = QHBoxLayout()
            for label in pair:
                sb = QDoubleSpinBox()
                sb.setRange(-1e6, 1e6)
                sb.setDecimals(1)
                sb.setToolTip(f"{label} in sky pixels")
                self.cut.append(sb)
                limits.addWidget(QLabel(label))
                limits.addWidget(sb)
            limits.addStretch(1)
            f2.addRow("", limits)
        col.addWidget(opts)

        self.bin_button = QPushButton("Bin into a new cube layer")
        col.addWidget(self.bin_button)
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        keep_text_visible(inner)
        keep_width(self, inner, 440)
        self.bin_button.clicked.connect(self.bin)

    # ================================================================================ state
    def event_cube_layers(self) -> list[Any]:
        return [ly for ly in self.viewer.layers if events_meta(ly) is not None]

    def refresh_layers(self) -> None:
        from napari.layers import Shapes

        current = self.cutout_combo.currentText()
        self.cutout_combo.clear()
        self.cutout_combo.addItem(FULL_FIELD, None)
        for ly in self.viewer.layers:
            if isinstance(ly, Shapes):
                self.cutout_combo.addItem(f"rectangle: {ly.name}", ly.name)
        self.cutout_combo.addItem(TYPED, TYPED)
        i = self.cutout_combo.findText(current)
        self.cutout_combo.setCurrentIndex(max(i, 0))
        if not self.path_edit.text():
            layers = self.event_cube_layers()
            if layers:
                self.use_layer(layers[-1])

    def use_layer(self, layer: Any) -> None:
        """Take the event list, response and options from a cube layer binned from an event list."""
        ev = events_meta(layer)
        if ev is None:
            return
        self._source_layer = layer
        self.path_edit.setText(str(ev["path"]))
        resp = (layer.metadata or {}).get("response") or {}
        self.rmf_edit.setText(str(resp.get("rmf") or ""))
        self.arf_edit.setText(str(resp.get("arf") or ""))
        band = ev.get("band") or (0.5, 8.0)
        self.emin.setValue(float(band[0]))
        self.emax.setValue(float(band[1]))
        self.native_check.setChecked(bool(ev.get("native", True)))
        self.group.setValue(int(ev.get("group") or 1))
        self.binning.setValue(int(ev.get("binning") or 1))
        self._path_changed()

    def _path_changed(self) -> None:
        path = self.path_edit.text().strip()
        if not path:
            self.info.setText("")
            return
        from napari_sushi.core.io.events import event_summary

        try:
            s = event_summary(path, rmf=self.rmf_edit.text().strip() or None, arf=self.arf_edit.text().strip() or None)
        except (ValueError, OSError) as exc:
            self.info.setText(f"cannot read this event list: {exc}")
            return
        er = "-" if s.energy_range is None else f"{s.energy_range[0]:.2f}-{s.energy_range[1]:.2f} keV"
        resp = (
            "no response found: give the RMF/ARF"
            if s.response is None
            else (
                f"response {Path(s.response.rmf).name}"
                + (f" + {Path(s.response.arf).name}" if s.response.arf else "")
                + f" ({s.response.how})"
            )
        )
        self.info.setText(
            f"{s.n_events:,} events, energies {er}, sky x {s.x_range[0]:.0f}-{s.x_range[1]:.0f}, "
            f"y {s.y_range[0]:.0f}-{s.y_range[1]:.0f}; {resp}."
        )
        if s.response is not None and not self.rmf_edit.text().strip():
            self.rmf_edit.setText(str(s.response.rmf))
            self.arf_edit.setText("" if s.response.arf is None else str(s.response.arf))
        if math.isfinite(s.x_range[0]):
            for sb, v in zip(self.cut, (*s.x_range, *s.y_range)):
                if sb.value() == 0.0:
                    sb.setValue(float(v))

    def cutout(self) -> tuple[float, float, float, float] | None:
        """The chosen cut-out in sky pixels, or None for the whole field (raises ValueError on a bad one)."""
        choice = self.cutout_combo.currentData()
        if choice is None:
            return None
        if choice == TYPED:
            x0, x1, y0, y1 = (float(sb.value()) for sb in self.cut)
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"the cut-out x {x0:g}-{x1:g}, y {y0:g}-{y1:g} is empty; x1 and y1 must be larger.")
            return x0, x1, y0, y1
        if choice not in self.viewer.layers:
            raise ValueError(f"Shapes layer '{choice}' no longer exists; pick another cut-out.")
        path = self.path_edit.text().strip()
        cubes = [ly for ly in self.event_cube_layers() if Path(events_meta(ly)["path"]) == Path(path)]
        if not cubes:
            raise ValueError(
                "a drawn cut-out needs a cube of this event list in the viewer to draw it on; "
                "bin the whole field first, or type the limits."
            )
        return rectangle_cutout(self.viewer.layers[choice], cubes[-1])

    # ================================================================================ run
    def bin(self) -> list[Any]:
        """Bin with the chosen options and add the cube layer; problems become notifications."""
        from napari_sushi._napari.reader import event_layers

        path = self.path_edit.text().strip()
        try:
            if not path:
                raise ValueError("no event list: pick the file with Browse….")
            cut = self.cutout()
            native = self.native_check.isChecked()
            layers = event_layers(
                path,
                band=(float(self.emin.value()), float(self.emax.value())),
                native=native,
                group=int(self.group.value()) if native else 1,
                channel_width=None if native else float(self.channel_width.value()),
                binning=int(self.binning.value()),
                cutout=cut,
                rmf=self.rmf_edit.text().strip() or None,
                arf=self.arf_edit.text().strip() or None,
            )
        except (ValueError, OSError) as exc:
            msg = f"napari-sushi: cannot bin {Path(path).name or 'the event list'}: {exc}"
            self.status.setText(msg)
            show_error(msg)
            return []
        added = []
        for data, kwargs, kind in layers:
            kwargs = dict(kwargs)
            kwargs["name"] = self._unique(kwargs.get("name", "events"))
            added.append(getattr(self.viewer, f"add_{kind}")(data, **kwargs))
        if added:
            cube = added[0]
            e = cube.metadata.get("energy_edges")
            self.status.setText(
                f"added '{cube.name}': {cube.data.shape[0]} energy bins "
                f"{float(e[0]):.3f}-{float(e[-1]):.3f} keV, {cube.data.shape[1]} x {cube.data.shape[2]} "
                f"pixels, {int(np.asarray(cube.data).sum()):,} counts."
            )
            show_info(f"napari-sushi: {self.status.text()}")
        return added

    def _unique(self, base: str) -> str:
        b = self.binning.value()
        name = f"{base} b{b} {self.emin.value():g}-{self.emax.value():g} keV"
        if self.cutout_combo.currentData() is not None:
            name += " cut-out"
        out, k = name, 2
        while out in self.viewer.layers:
            out, k = f"{name} ({k})", k + 1
        return out
