"""The SUSHI fit dock: choose cube, components and settings; run in the background; export.

Thin by design: the dock collects choices into ``Component`` + ``FitSettings`` and calls the core
(``core.solver.sushi.fit`` or ``core.solver.pixelfit.pixelfit``) in a napari thread worker. Result
layers are named, placed and styled by :mod:`.layers`; regions by :mod:`.regions`; export by
:mod:`.export`. Problems become napari notifications that say what to do, never tracebacks.
"""

# No ``from __future__ import annotations`` here: napari injects the viewer by the annotation.
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import napari
import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QPointF, Qt, QTimer
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_sushi._napari.sizing import keep_text_visible, keep_width
from napari_sushi._napari import result_layers as L
from napari_sushi._napari.components import ComponentEditor, ModelChoice
from napari_sushi._napari.export import default_export_name, export_run
from napari_sushi._napari.regions import ds9_to_mask, labels_to_mask, shapes_to_mask
from napari_sushi._napari.worker import FitJob, make_fit_job, unwrap

NONE = "none"
DS9 = "ds9 region file…"


def solver_function(method: str):
    """The core solver for a method name ("sushi" or "pixelfit")."""
    if method == "sushi":
        from napari_sushi.core.solver.sushi import fit

        return fit
    from napari_sushi.core.solver.pixelfit import pixelfit

    return pixelfit


def _on_cluster(scheduler: str, fit_fn):
    """A solver with the core's signature that runs ``fit_fn`` on the Dask cluster at ``scheduler``."""
    from napari_sushi.core.cluster import submit_fit

    def run(cube, components, settings, callback=None, cancel=None):
        return submit_fit(scheduler, fit_fn, cube, components, settings, callback, cancel)

    return run


def available_devices() -> dict[str, str]:
    """Device name -> description ("" when not available on this machine)."""
    import torch

    out = {"cpu": "CPU"}
    out["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = "Apple GPU" if (mps is not None and mps.is_available()) else ""
    return out


def _auto_device() -> str:
    """The device "auto" picks, as the solver resolves it."""
    from napari_sushi.core.solver.problem import resolve_device

    return resolve_device("auto").type


def available_memory(device: str) -> int:
    """Free memory in bytes on the device the fit will use."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def _entry_description(entry: Any) -> str:
    """A registry entry as a tooltip: whose it is, its description, fixed values, boxes and band."""
    origin = getattr(entry, "origin", "shipped")
    fixed = getattr(entry, "fixed", None) or {}
    parts = ["[yours]" if origin == "user" else "[shipped]", entry.description]
    if fixed:
        parts.append("fixed " + ", ".join(f"{k}={v:g}" for k, v in fixed.items()))
    if entry.parameters:
        parts.append("boxes " + "; ".join(entry.parameters))
    if entry.band:
        parts.append(f"band {entry.band[0]:g}-{entry.band[1]:g} keV")
    return " · ".join(p for p in parts if p)


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class CostPlot(QWidget):
    """A tiny live plot of the cost per iteration (relative to its minimum, log scale)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.costs: list[float] = []
        self.restarts: list[int] = []
        self.setMinimumHeight(70)
        self.setToolTip("cost (negative log-likelihood) per iteration, minus its lowest value, log scale")

    def clear(self) -> None:
        self.costs = []
        self.restarts: list[int] = []
        self.update()

    def add(self, cost: float) -> None:
        if math.isfinite(cost):
            self.costs.append(float(cost))
            self.update()

    def mark_restart(self) -> None:
        """The per-pixel fit starts again from other points: a jump up is a new start, not a divergence."""
        self.restarts.append(len(self.costs))
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w, h, QColor(30, 33, 40))
            p.setPen(QColor(150, 150, 150))
            if len(self.costs) < 2:
                p.drawText(6, h // 2, "cost: waiting for iterations")
                return
            c = np.asarray(self.costs)
            span = float(c.max() - c.min())
            y = np.log10(c - c.min() + max(1e-3 * span, 1e-12))  # log scale that tolerates bumps
            lo, hi = float(y.min()), float(y.max())
            hi = hi if hi > lo else lo + 1.0
            pad = 6
            xs = pad + (w - 2 * pad) * np.arange(len(c)) / max(len(c) - 1, 1)
            ys = pad + (h - 2 * pad - 12) * (1.0 - (y - lo) / (hi - lo))
            p.setPen(QPen(QColor(255, 170, 60), 1.5))
            p.drawPolyline(QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys)]))
            pen = QPen(QColor(120, 170, 255), 1.0)
            pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            for k, i in enumerate(getattr(self, "restarts", [])):
                x = float(pad + (w - 2 * pad) * i / max(len(c) - 1, 1))
                p.drawLine(QPointF(x, pad), QPointF(x, h - 14))
                p.drawText(QPointF(x + 2, pad + 10), f"start {k + 2}")
            p.setPen(QColor(200, 200, 200))
            p.drawText(pad, h - 3, f"it {len(c)}  cost {c[-1]:.6g}")
        finally:
            p.end()


@dataclass
class RunRecord:
    """A finished run: its result, layers and what it was run on."""

    label: str
    method: str
    result: Any
    layer_names: list[str]
    cube_name: str
    settings: Any = None


@dataclass
class FitRequest:
    """Everything a run needs, checked before starting."""

    method: str
    cube: Any
    components: list
    settings: Any
    cube_layer: Any
    band_offset: int = 0
    units: dict = field(default_factory=dict)


class SushiFitDock(QWidget):
    """Dock widget: fit a cube layer with SUSHI (or the per-pixel fit) and show the maps live."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.job: FitJob | None = None
        self.runs: dict[str, RunRecord] = {}
        self._run_index = 0
        self._live: L.RunLayers | None = None
        self._request: FitRequest | None = None
        self._t0 = 0.0
        self._last_progress: Any = None
        self._ds9_path = ""
        self._choices = self._registry_choices()
        self.editors: list[ComponentEditor] = []

        self._build_ui()
        from napari_sushi._napari.model_events import model_events

        model_events().saved.connect(self.refresh_models)
        self._connect_viewer()
        self.refresh_layers()
        self._add_default_components()
        self._cube_selected()
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)

    # ================================================================================ UI
    def _build_ui(self) -> None:
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(4, 4, 4, 4)

        # -- data
        data = QGroupBox("Data")
        form = QFormLayout(data)
        self.cube_combo = QComboBox()
        self.cube_combo.setToolTip("the (energy, y, x) counts cube to fit (layers opened with napari-sushi)")
        form.addRow("cube", self.cube_combo)
        band_row = QHBoxLayout()
        self.band_check = QCheckBox("restrict to")
        self.band_check.setToolTip("unchecked: the band the models were built for")
        self.emin = QDoubleSpinBox()
        self.emax = QDoubleSpinBox()
        for sb, v in ((self.emin, 3.0), (self.emax, 8.0)):
            sb.setRange(0.0, 100.0)
            sb.setDecimals(2)
            sb.setSingleStep(0.1)
            sb.setSuffix(" keV")
            sb.setValue(v)
            sb.setEnabled(False)
        self.band_check.toggled.connect(self.emin.setEnabled)
        self.band_check.toggled.connect(self.emax.setEnabled)
        band_row.addWidget(self.emin)
        band_row.addWidget(QLabel("–"))
        band_row.addWidget(self.emax)
        band_row.addStretch(1)
        form.addRow("energy band", self.band_check)
        form.addRow("", band_row)
        self.binning = QSpinBox()
        self.binning.setRange(1, 16)
        self.binning.setValue(1)
        self.binning.setToolTip(
            "sum b x b pixels before the fit: b times more counts per pixel, b² less memory and time"
        )
        form.addRow("spatial binning", self.binning)
        self.background_combo = QComboBox()
        self.background_combo.setToolTip(
            "none; the mean spectrum inside a Shapes region drawn on the cube; a ds9 region file; "
            "or a cube layer of expected background counts (same shape as the cube)"
        )
        form.addRow("background", self.background_combo)
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("only pixels inside this Shapes region or with a non-zero label count")
        form.addRow("mask", self.mask_combo)
        col.addWidget(data)

        # -- components
        comps = QGroupBox("Components")
        self.comp_layout = QVBoxLayout(comps)
        self.match_info = QLabel("")
        self.match_info.setWordWrap(True)
        self.match_info.setStyleSheet("color: #e0a040;")
        self.match_info.setVisible(False)
        self.comp_layout.addWidget(self.match_info)
        self.train_button = QPushButton("Train models for this cube…")
        self.train_button.setToolTip("open the Train models dock for the selected cube's response and channels")
        self.train_button.setVisible(False)
        self.train_button.clicked.connect(self.open_training_dock)
        self.comp_layout.addWidget(self.train_button)
        self.add_button = QPushButton("Add component")
        self.add_button.setToolTip("add an emission component (e.g. a second thermal plasma)")
        self.add_button.clicked.connect(lambda: self.add_component())
        self.comp_layout.addWidget(self.add_button)
        col.addWidget(comps)

        # -- regularisation / statistics / stopping
        from napari_sushi.core.solver.settings import FitSettings

        defaults = FitSettings()  # one source of truth for the regularisation defaults
        reg = QGroupBox("Fit settings")
        f2 = QFormLayout(reg)
        self.kmad = QDoubleSpinBox()
        self.kmad.setRange(0.0, 100.0)
        self.kmad.setDecimals(2)
        self.kmad.setSingleStep(0.25)
        self.kmad.setValue(float(defaults.kmad_default))
        self.kmad.setToolTip(
            "regularisation strength kmad: wavelet coefficients of the parameter maps below kmad x the noise "
            "level of each scale (from the data's Fisher information) are removed. 0 = no spatial "
            f"regularisation; default {defaults.kmad_default:g}, 2-8 typical; larger gives smoother maps"
        )
        f2.addRow("strength (kmad)", self.kmad)
        self.n_scales = QSpinBox()
        self.n_scales.setRange(1, 8)
        self.n_scales.setValue(int(defaults.n_scales))
        self.n_scales.setToolTip(
            "number J of fine starlet scales that are thresholded (scale j ~ 2^j pixels); the coarse "
            "structure is only held near the fit's start. 2 suits 1-4 pixel noise; more smooths larger features"
        )
        f2.addRow("wavelet scales (J)", self.n_scales)
        self.cost_combo = QComboBox()
        self.cost_combo.addItem("Poisson (C-stat)", "poisson")
        self.cost_combo.addItem("chi-square", "chi2")
        self.cost_combo.setToolTip("Poisson is right for counts; chi-square uses sqrt(max(counts, 1)) errors")
        f2.addRow("cost", self.cost_combo)
        self.max_iter = QSpinBox()
        self.max_iter.setRange(1, 100000)
        self.max_iter.setValue(300)
        self.max_iter.setToolTip("the fit stops here at the latest")
        f2.addRow("iterations", self.max_iter)
        self.tol = QLineEdit(f"{defaults.tol:g}")
        self.tol.setToolTip("stop when the relative change of the cost over a window of iterations is below this")
        f2.addRow("tolerance", self.tol)
        self.snapshot_every = QSpinBox()
        self.snapshot_every.setRange(1, 1000)
        self.snapshot_every.setValue(5)
        self.snapshot_every.setToolTip("refresh the live maps every N iterations")
        f2.addRow("update maps every", self.snapshot_every)
        self.device_combo = QComboBox()
        self._fill_devices()
        f2.addRow("device", self.device_combo)
        self.start_combo = QComboBox()
        self.start_combo.addItem("automatic", None)
        self.start_combo.setToolTip(
            "where the parameter maps start. automatic: SUSHI starts from a fit of the 4x4-binned cube (the "
            "per-pixel fit from the values above); a finished run: its maps and amplitudes (same cube and "
            "binning), e.g. to refit with another strength. Values typed above still win for their parameter"
        )
        f2.addRow("start from", self.start_combo)
        self.scan_check = QCheckBox("global scan of the parameter boxes")
        self.scan_check.setChecked(defaults.start == "scan")
        self.scan_check.setToolTip(
            "SUSHI's automatic start begins, per binned pixel, from the best point of a grid over every "
            "parameter's box, so the answer does not depend on starting values (values typed above are then "
            "not used). Off: start from the models' defaults or the values typed above"
        )
        f2.addRow("", self.scan_check)
        self.shares_check = QCheckBox("regularise the components' shares")
        self.shares_check.setChecked(bool(defaults.regularise_shares))
        self.shares_check.setToolTip(
            "each pixel's split of the counts between components becomes a regularised map (amplitudes = "
            "total x shares); off: free per-pixel amplitudes. See the README's morphology-zoo figures"
        )
        f2.addRow("", self.shares_check)
        self.anchor_combo = QComboBox()
        self.anchor_combo.addItem("chosen per map (auto)", "auto")
        self.anchor_combo.addItem("held to the start", "start")
        self.anchor_combo.addItem("large scales held to the start", "coarse")
        self.anchor_combo.addItem("set by the data: kT and shares", "kT+share")
        self.anchor_combo.addItem("set by the data: every map", "free")
        self.anchor_combo.setCurrentIndex(max(0, self.anchor_combo.findData(defaults.anchor)))
        self.anchor_combo.setToolTip(
            "what SUSHI's penalty holds each map to where the data are weak. chosen per map: maps that trade off "
            "against others (temperature, photon index, shares) keep only the large scales of an automatic start "
            "shrunk to their level, independent ones (a velocity) their whole start. held to the start: every "
            "map's departure from the automatic start, large scales included. large scales held to the start: "
            "the map's own detail, and its large scales to the start's. set by the data: only the map's own detail "
            "is penalised and its level follows the data (the published scheme). Measured on the morphology zoo: "
            "see the README"
        )
        self.anchor_combo.currentIndexChanged.connect(self._anchor_changed)
        f2.addRow("large scales", self.anchor_combo)
        self.sigma_combo = QComboBox()
        self.sigma_combo.addItem("Fisher (per pixel)", "fisher")
        self.sigma_combo.addItem("bootstrap of the joint fit (slower)", "bootstrap")
        self.sigma_combo.setCurrentIndex(max(0, self.sigma_combo.findData(defaults.uncertainty)))
        self.sigma_combo.setToolTip(
            "SUSHI's sigma maps: per-pixel Cramer-Rao bounds (ignore the regulariser, often at the box's spread) "
            "or a parametric bootstrap of the regularised fit (8 refits; also gives bias maps)"
        )
        f2.addRow("uncertainties", self.sigma_combo)
        col.addWidget(reg)

        # -- run
        run = QGroupBox("Run")
        rl = QVBoxLayout(run)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run SUSHI")
        self.run_button.setToolTip("fit in the background; layers appear and update while it runs")
        self.pixel_button = QPushButton("Run per-pixel fit")
        self.pixel_button.setToolTip("the classic method for comparison: each pixel alone, no regularisation")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("stop within one iteration; the run's layers are removed")
        for b in (self.run_button, self.pixel_button, self.cancel_button):
            buttons.addWidget(b)
        rl.addLayout(buttons)
        where = QFormLayout()
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("this computer (or a Dask scheduler, tcp://host:8786)")
        self.scheduler_edit.setToolTip(
            "empty: fit here in a background thread (default). A Dask scheduler's address: send the fit to a "
            "worker of that cluster (needs napari-sushi[cluster]; the maps appear when it returns)"
        )
        where.addRow("run on", self.scheduler_edit)
        rl.addLayout(where)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        rl.addWidget(self.progress)
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        rl.addWidget(self.status)
        self.cost_plot = CostPlot()
        rl.addWidget(self.cost_plot)
        col.addWidget(run)

        # -- export
        exp = QGroupBox("Export")
        el = QFormLayout(exp)
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("finished run to export")
        el.addRow("run", self.run_combo)
        self.cubes_check = QCheckBox("include model and residual cubes")
        el.addRow(self.cubes_check)
        self.export_button = QPushButton("Export maps to FITS…")
        self.export_button.setToolTip(
            "one multi-extension FITS: every map, σ maps, goodness of fit, WCS, BUNIT, settings and model hashes"
        )
        self.export_button.setEnabled(False)
        el.addRow(self.export_button)
        sess = QHBoxLayout()
        self.save_session_button = QPushButton("Save session…")
        self.save_session_button.setToolTip(
            "every finished run (maps, σ, masks, model/residual cubes, settings, model identities) and the cube "
            "each was fitted on, in one .sushi folder (FITS + JSON)"
        )
        self.save_session_button.setEnabled(False)
        self.load_session_button = QPushButton("Load session…")
        self.load_session_button.setToolTip("re-create a saved session's runs as layers (and their cubes)")
        sess.addWidget(self.save_session_button)
        sess.addWidget(self.load_session_button)
        el.addRow(sess)
        self.batch_button = QPushButton("Open a batch's outputs…")
        self.batch_button.setToolTip(
            "a batch file of `napari-sushi batch` (TOML): open every finished output as a run (maps, σ, linked layers)"
        )
        el.addRow(self.batch_button)
        col.addWidget(exp)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        self._scroll = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        keep_text_visible(inner)
        keep_width(self, inner, 470)

        self.run_button.clicked.connect(lambda: self.start("sushi"))
        self.pixel_button.clicked.connect(lambda: self.start("pixelfit"))
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self._export_dialog)
        self.save_session_button.clicked.connect(self._save_session_dialog)
        self.load_session_button.clicked.connect(self._load_session_dialog)
        self.batch_button.clicked.connect(self._open_batch_dialog)
        self.background_combo.activated.connect(self._background_activated)
        self.cube_combo.currentTextChanged.connect(self._cube_selected)

    def _fill_devices(self) -> None:
        devs = available_devices()
        self.device_combo.addItem(f"auto ({_auto_device()})", "auto")
        for name in ("cpu", "cuda", "mps"):
            desc = devs[name]
            self.device_combo.addItem(f"{name} — {desc}" if desc else f"{name} (not available)", name)
            if not desc:
                item = self.device_combo.model().item(self.device_combo.count() - 1)
                item.setEnabled(False)
        self.device_combo.setToolTip("where the fit runs; auto picks a GPU when one is available")

    # ================================================================================ layers
    def _connect_viewer(self) -> None:
        ev = self.viewer.layers.events
        ev.inserted.connect(self._on_layers_changed)
        ev.removed.connect(self._on_layers_changed)
        ev.reordered.connect(self._on_layers_changed)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._on_layer_renamed)

    def _on_layer_renamed(self, event: Any = None) -> None:
        self.refresh_layers()

    def _on_layers_changed(self, event: Any = None) -> None:
        if event is not None and getattr(event, "type", "") == "inserted":
            layer = event.value
            layer.events.name.connect(self._on_layer_renamed)
        self.refresh_layers()

    @staticmethod
    def _set_items(combo: QComboBox, items: list[tuple[str, Any]], keep_first: bool = True) -> None:
        current = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        for text, data in items:
            combo.addItem(text, data)
        idx = combo.findText(current)
        if idx >= 0:
            combo.setCurrentIndex(idx)
        combo.blockSignals(False)

    def refresh_layers(self) -> None:
        """Refill the cube, background and mask choices from the viewer's layers."""
        from napari.layers import Image, Labels, Shapes

        layers = list(self.viewer.layers)
        cubes = [ly for ly in layers if L.is_cube_layer(ly)]
        before = self.cube_combo.currentText()
        self._set_items(self.cube_combo, [(ly.name, ly.name) for ly in cubes])
        if self.cube_combo.currentText() != before and getattr(self, "editors", None):
            self._cube_selected()
        bg = [(NONE, None)]
        bg += [(f"region: {ly.name}", ("shapes", ly.name)) for ly in layers if isinstance(ly, Shapes)]
        bg += [
            (f"cube: {ly.name}", ("cube", ly.name))
            for ly in layers
            if isinstance(ly, Image)
            and getattr(ly.data, "ndim", 0) == 3
            and ly.name != self.cube_combo.currentText()
            and not ly.metadata.get("napari_sushi_result")
        ]
        bg += [(DS9 if not self._ds9_path else f"ds9: {Path(self._ds9_path).name}", ("ds9", self._ds9_path))]
        self._set_items(self.background_combo, bg)
        masks = [(NONE, None)]
        masks += [(f"region: {ly.name}", ("shapes", ly.name)) for ly in layers if isinstance(ly, Shapes)]
        masks += [(f"labels: {ly.name}", ("labels", ly.name)) for ly in layers if isinstance(ly, Labels)]
        self._set_items(self.mask_combo, masks)

    def _background_activated(self, index: int) -> None:
        data = self.background_combo.itemData(index)
        if isinstance(data, tuple) and data[0] == "ds9":
            path, _ = QFileDialog.getOpenFileName(self, "ds9 region file", "", "ds9 regions (*.reg);;All files (*)")
            if path:
                self.set_ds9_background(path)

    def set_ds9_background(self, path: str) -> None:
        """Use the mean spectrum inside a ds9 region file as background."""
        self._ds9_path = str(path)
        self.refresh_layers()
        self.background_combo.setCurrentIndex(self.background_combo.count() - 1)

    # ================================================================================ components
    def _registry_choices(self) -> list[ModelChoice]:
        try:
            from napari_sushi.core.spectral.registry import list_models

            entries = list_models()
        except (ImportError, ValueError, OSError) as exc:
            show_warning(f"napari-sushi: shipped models are not available ({exc}); load a model file instead.")
            return []
        return [
            ModelChoice(label=e.name, source=e.name, description=_entry_description(e), component=e.component)
            for e in entries
        ]

    def refresh_models(self, saved: str = "", *_: Any) -> None:
        """Re-read the model registry (shipped and user-trained) and offer new models in every component;
        ``saved``: a model just written (again), whose old copy every component forgets."""
        fresh = self._registry_choices()
        known = {c.source for c in self._choices}
        added = [c for c in fresh if c.source not in known]
        self._choices += added
        for c in self._choices:
            if saved and c.source == saved:
                c.model = None
                c.description = next((f.description for f in fresh if f.source == saved), c.description)
        for e in self.editors:
            for c in added:
                if not e.has_choice(c.source):
                    e.add_choice(replace(c), select=False)
            if saved and saved not in {c.source for c in added}:
                e.reload(saved)
        self._cube_selected()

    def matching_sources(self, cube: Any) -> set[str]:
        """Registry names of the models whose energy grid matches ``cube`` (channels and band)."""
        from napari_sushi._napari.components import load_cached
        from napari_sushi.core.spectral.matching import match_model_to_cube

        out = set()
        for c in self._choices:
            try:
                match_model_to_cube(load_cached(c.source), cube)
            except (ValueError, OSError):
                continue
            out.add(c.source)
        return out

    def _current_cube_or_none(self) -> Any:
        try:
            return L.hypercube_of(self.current_cube_layer())
        except (ValueError, OSError):
            return None

    def _model_for(self, kind: str, cube: Any, matching: set[str] | None = None) -> ModelChoice | None:
        """The first registry model of a component kind whose grid matches ``cube`` (else the first).

        User-trained models come before shipped ones, so a model trained for this source wins."""
        cands = [c for c in self._choices if c.component == kind]
        if cube is not None:
            matching = self.matching_sources(cube) if matching is None else matching
            good = [c for c in cands if c.source in matching]
            good.sort(key=lambda c: not c.description.startswith("[yours]"))
            if good:
                return good[0]
        return cands[0] if cands else None

    def _add_default_components(self) -> None:
        """One component per kind of shipped model (thermal, power law, ...), matching the cube."""
        kinds = sorted(
            {c.component for c in self._choices if c.component}, key=lambda k: (k != "thermal", k != "powerlaw", k)
        )
        cube = self._current_cube_or_none()
        for kind in kinds:
            choice = self._model_for(kind, cube)
            if choice is not None:
                self.add_component(model=choice.source)
        if not self.editors:
            self.add_component()

    def _cube_selected(self, *_: Any) -> None:
        """List the models built for the selected cube's grid first, switch to them, or say none matches."""
        cube = self._current_cube_or_none()
        if cube is None:
            self.match_info.setVisible(False)
            self.train_button.setVisible(False)
            return
        from napari_sushi.core.spectral.matching import match_model_to_cube

        matching = self.matching_sources(cube)
        self._show_match_info(cube, matching)
        for e in self.editors:
            own = set()
            for c in e.file_choices():
                try:
                    match_model_to_cube(c.model, cube)
                    own.add(c.source)
                except (ValueError, OSError, AttributeError):
                    continue
            e.order_choices(matching | own)
        for e in self.editors:
            c = e.choice
            if c is None or not c.source or c.source not in {x.source for x in self._choices} or e.model is None:
                continue
            try:
                match_model_to_cube(e.model, cube)
            except (ValueError, OSError):
                better = self._model_for(c.component or e.model.meta.component, cube, matching)
                if better is not None and better.source != c.source:
                    e.select_model(better.source)

    def _show_match_info(self, cube: Any, matching: set[str]) -> None:
        """Say which components have a model for this cube, and what to do when one has none."""
        kinds = {c.component for c in self._choices if c.component}
        have = {c.component for c in self._choices if c.source in matching}
        missing = sorted(kinds - have, key=lambda k: (k != "thermal", k))
        note = self._response_note(cube, matching) if not missing else ""
        if not missing and not note:
            self.match_info.setVisible(False)
            self.train_button.setVisible(False)
            return
        e = cube.energy_edges
        grid = f"{cube.n_energy} bins {e[0]:.3f}-{e[-1]:.3f} keV" + (
            "" if cube.channels is None else f", channels {int(cube.channels[0])}-{int(cube.channels[-1])}"
        )
        if missing and cube.channels is None:
            text = (
                f"No {' or '.join(missing)} model is built for this cube's grid ({grid}). The cube is not on the "
                "instrument's native channels, so no model can be trained for it: re-bin the event list with "
                "native channels (Bin event list dock), then train models for that cube."
            )
        elif missing:
            text = (
                f"No {' or '.join(missing)} model is built for this cube's grid ({grid}). Train one for it in "
                "the Train models dock (it takes the cube's channels and response), or load a model file."
            )
        else:
            text = note
        self.match_info.setText(text)
        self.match_info.setVisible(True)
        self.train_button.setVisible(cube.channels is not None)

    def _response_note(self, cube: Any, matching: set[str]) -> str:
        """A warning when the models matching the cube's channels were built for another response than
        the cube's (or the cube's response is unknown): same channels, other effective area/absorption."""
        from pathlib import Path as _P

        from napari_sushi._napari.components import load_cached

        mine = getattr(cube, "response", None)
        theirs = set()
        for c in self._choices:
            if c.source in matching:
                try:
                    theirs.add(load_cached(c.source).meta.response_id or "?")
                except (ValueError, OSError):
                    continue
        if not theirs:
            return ""
        simulated_with = str((getattr(cube, "header", None) or {}).get("RESPONSE", "")).strip()
        if mine is None and simulated_with and simulated_with in theirs:  # simulated through the models' response
            return ""
        if mine is None:
            return (
                f"The models on this cube's channels were built for the response {', '.join(sorted(theirs))}; "
                "this cube's own response is unknown (no RESPFILE/ANCRFILE, none beside the event list). If the "
                "observation has another response, or another absorption than the models' N_H, give its RMF/ARF "
                "in the Bin event list dock and train models for it."
            )
        names = {_P(str(mine.rmf)).name, *([] if mine.arf is None else [_P(str(mine.arf)).name])}
        if any(all(n in t for n in names) for t in theirs):
            return ""
        return (
            f"This cube was recorded with {' + '.join(sorted(names))}, but the models on its channels were built "
            f"for {', '.join(sorted(theirs))}: train models for this cube's response."
        )

    def open_training_dock(self) -> Any:
        """Open (or show) the Train models dock, set to the current cube."""
        try:
            _, widget = self.viewer.window.add_plugin_dock_widget("napari-sushi", "Train models", tabify=True)
        except (KeyError, AttributeError, ValueError) as exc:
            self._report_error(f"napari-sushi: cannot open the training dock ({exc}); use Plugins > napari-sushi.")
            return None
        name = self.cube_combo.currentText()
        if name and hasattr(widget, "cube_combo") and widget.cube_combo.findText(name) >= 0:
            widget.cube_combo.setCurrentText(name)
        return widget

    def add_component(self, model: Any = None, name: str = "") -> ComponentEditor:
        """Add a component; ``model`` is a registry name, a file path or a SpectralModel."""
        editor = ComponentEditor([replace(c, model=c.model) for c in self._choices], name="")
        editor.set_error_handler(lambda msg: self._report_error(f"napari-sushi: {msg}"))
        editor.changed.connect(self._components_changed)
        editor.remove_requested.connect(self.remove_component)
        self.comp_layout.insertWidget(self.comp_layout.count() - 1, editor)
        self.editors.append(editor)
        if model is not None:
            if isinstance(model, str):
                try:
                    editor.select_model(model)
                except ValueError:
                    editor.load_model_file(model)
            else:
                editor.set_model(model)
        elif self._choices:
            editor.select_model(self._choices[0].source)
        editor.name_edit.setText(self._unique_name(name or editor.name or "component", editor))
        self._components_changed()
        return editor

    def _unique_name(self, base: str, editor: ComponentEditor) -> str:
        from napari_sushi.core.solver.settings import unique_name

        return unique_name(base, {e.name for e in self.editors if e is not editor})

    def remove_component(self, editor: ComponentEditor) -> None:
        if editor in self.editors:
            self.editors.remove(editor)
            self.comp_layout.removeWidget(editor)
            editor.deleteLater()
            self._components_changed()

    def _components_changed(self) -> None:
        keys = {e: e.param_keys() for e in self.editors}
        for e in self.editors:
            others = [k for o, ks in keys.items() if o is not e for k in ks]
            for r in e.rows:
                # offer parameters with the same unit first (same physical quantity)
                same = [k for k in others if k.split(".", 1)[1] == r.info.name]
                rest = [k for k in others if k not in same]
                r.set_link_targets(same + rest)

    # ================================================================================ request
    def current_cube_layer(self) -> Any:
        name = self.cube_combo.currentText()
        if not name or name not in self.viewer.layers:
            raise ValueError(
                "no cube layer: open an X-ray cube or event list (File > Open) or the toy remnant "
                "(File > Open Sample > napari-sushi), then pick it in 'cube'."
            )
        return self.viewer.layers[name]

    def _tolerance(self) -> float:
        try:
            tol = float(self.tol.text())
        except ValueError:
            raise ValueError(f"tolerance '{self.tol.text()}' is not a number; type e.g. 1e-6.") from None
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError("tolerance must be a non-negative number, e.g. 1e-6.")
        return tol

    def _region_mask(self, choice: Any, cube_layer: Any, shape: tuple) -> np.ndarray | None:
        if choice is None:
            return None
        kind, name = choice
        if kind == "ds9":
            if not name:
                raise ValueError("choose a ds9 region file first (pick 'ds9 region file…' again).")
            wcs = cube_layer.metadata.get("wcs")
            return ds9_to_mask(name, shape, wcs, header=cube_layer.metadata.get("header"))
        if name not in self.viewer.layers:
            raise ValueError(f"layer '{name}' no longer exists; pick another one.")
        layer = self.viewer.layers[name]
        if kind == "shapes":
            return shapes_to_mask(layer, cube_layer, shape)
        return labels_to_mask(layer, shape)

    def build_request(self, method: str) -> FitRequest:
        """Collect the dock's choices into core objects; raises ValueError saying what to fix."""
        from napari_sushi.core.solver.links import merge_links
        from napari_sushi.core.solver.settings import Component, FitSettings
        from napari_sushi.core.spectral.matching import match_model_to_cube

        cube_layer = self.current_cube_layer()
        cube = L.hypercube_of(cube_layer)
        if not self.editors:
            raise ValueError("no component: press 'Add component' and pick a model.")
        specs = [e.spec() for e in self.editors]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique; got {names}. Rename one.")
        band = (float(self.emin.value()), float(self.emax.value())) if self.band_check.isChecked() else None
        if band is not None and not band[1] > band[0]:
            raise ValueError(f"energy band {band[0]}-{band[1]} keV is empty; the upper end must be larger.")
        # does every model fit the cube (band, channels, response)? message names both grids
        check = cube.select_band(*band) if band is not None else cube
        in_band = None
        for s in specs:
            in_band, note = match_model_to_cube(s.model, check)
            if note:
                show_info(f"napari-sushi: {s.name}: {note}")
        offset = L.band_offset(cube.energy_edges, in_band.energy_edges) if in_band is not None else 0

        ny, nx = cube.shape[1:]
        mask_choice = self.mask_combo.currentData()
        mask = self._region_mask(mask_choice, cube_layer, (ny, nx))
        if mask is not None and not mask.any():
            raise ValueError("the mask selects no pixel of the cube; draw the region over the cube.")
        background = None
        bg_choice = self.background_combo.currentData()
        if bg_choice is not None:
            kind, name = bg_choice
            if kind == "cube":
                if name not in self.viewer.layers:
                    raise ValueError(f"background layer '{name}' no longer exists; pick another one.")
                background = np.asarray(self.viewer.layers[name].data, dtype=float)
                if background.shape != cube.shape:
                    raise ValueError(
                        f"background cube '{name}' has shape {background.shape}, the cube {cube.shape}; "
                        "give expected background counts on the same grid."
                    )
            else:
                region = self._region_mask(bg_choice, cube_layer, (ny, nx))
                if not region.any():
                    raise ValueError("the background region holds no pixel of the cube; draw it over the cube.")
                background = cube.spectrum(region) / float(region.sum())  # mean counts per pixel

        warm_start = self._warm_start(cube_layer.name)
        components, links = [], []
        units: dict[str, str] = {}
        for s in specs:
            components.append(Component(name=s.name, model=s.model, fixed=dict(s.fixed), init=dict(s.init)))
            links.extend(s.links)
            units[f"{s.name} amplitude"] = L.AMPLITUDE_UNIT
            for p in s.model.meta.parameters:
                units[f"{s.name} {p.name}"] = p.unit
        settings = FitSettings(
            kmad=float(self.kmad.value()),
            n_scales=int(self.n_scales.value()),
            links=merge_links(links),
            cost=str(self.cost_combo.currentData()),
            background=background,
            mask=mask,
            band=band,
            binning=int(self.binning.value()),
            max_iter=int(self.max_iter.value()),
            tol=self._tolerance(),
            device=str(self.device_combo.currentData()),
            snapshot_every=int(self.snapshot_every.value()),
            warm_start=warm_start,
            start="scan" if self.scan_check.isChecked() else "default",
            regularise_shares=self.shares_check.isChecked(),
            anchor=self._anchor(components),
            uncertainty=str(self.sigma_combo.currentData()),
        )
        return FitRequest(method, cube, components, settings, cube_layer, offset, units)

    def _anchor_changed(self) -> None:
        """'kT and shares' regularises the shares: the measured configuration (alone, free levels drift)."""
        if self.anchor_combo.currentData() == "kT+share":
            self.shares_check.setChecked(True)

    def _anchor(self, components: list[Any]) -> str | dict[str, str]:
        """FitSettings.anchor of the 'large scales' choice (kT of every component that has one, and the shares)."""
        from napari_sushi.core.solver.objective import free_map_keys

        choice = str(self.anchor_combo.currentData())
        if choice != "kT+share":
            return choice
        keys = free_map_keys(components, self.shares_check.isChecked())
        # the measured option: kT and the shares free, every other map held to its start
        return {k: "free" if k.endswith(".kT") or k == "share" else "start" for k in keys}

    def _warm_start(self, cube_name: str) -> Any:
        """The result of the run chosen in 'start from' (None: automatic), checked against this fit."""
        label = self.start_combo.currentData()
        if label is None:
            return None
        rec = self.runs.get(label)
        if rec is None:
            raise ValueError(f"run '{label}' to start from no longer exists; pick another start.")
        if rec.cube_name != cube_name:
            raise ValueError(
                f"run '{label}' was fitted on '{rec.cube_name}', not '{cube_name}'; "
                "start from a run on this cube, or 'automatic'."
            )
        # its maps may be at another binning: the fit bins or resamples them to this one; whether it
        # has these components' maps is checked by the fit too (FitSetupError)
        return rec.result

    def _check_memory(self, req: FitRequest) -> bool:
        from napari_sushi.core.solver.memory import estimate_fit_memory

        need = float(estimate_fit_memory(req.cube.shape, req.components, req.settings))
        device = req.settings.device
        if device == "auto":
            device = _auto_device()
        free = available_memory(device)
        if need > 0.8 * free:
            self._report_error(
                f"napari-sushi: this fit needs about {_fmt_bytes(need)} on {device} but only "
                f"{_fmt_bytes(free)} is free. Increase 'spatial binning' (2 needs 4x less), restrict the "
                "energy band, draw a mask, or use a device with more memory."
            )
            return False
        return True

    # ================================================================================ run
    def _next_label(self, method: str, kmad: float) -> str:
        existing = [ly.name for ly in self.viewer.layers]
        while True:
            self._run_index += 1
            label = L.run_label(method, self._run_index, kmad if method == "sushi" else None)
            if label not in self.runs and not any(L.run_of(n) == label for n in existing):
                return label

    def start(self, method: str = "sushi") -> FitJob | None:
        """Check the choices and start a background fit; problems become notifications."""
        if self.job is not None:
            self.status.setText("a fit is already running; wait for it or press Cancel.")
            show_warning("napari-sushi: a fit is already running; wait for it or press Cancel.")
            return None
        try:
            req = self.build_request(method)
            if not self._check_memory(req):
                return None
            fit_fn = solver_function(method)
            if method == "sushi":
                from napari_sushi.core.solver.objective import anchor_advice

                advice = anchor_advice(req.settings)
                if advice:
                    show_warning(f"napari-sushi: {advice}")
            scheduler = self.scheduler_edit.text().strip()
            if scheduler:
                fit_fn = _on_cluster(scheduler, fit_fn)
        except (ValueError, OSError, ImportError) as exc:
            self._report_error(f"napari-sushi: {exc}")
            return None
        label = self._next_label(method, req.settings.kmad)
        geometry = L.Geometry.from_cube_layer(req.cube_layer, req.settings.binning, req.band_offset)
        provenance = {"run": label, "method": method, "cube_layer": req.cube_layer.name}
        self._live = L.RunLayers(self.viewer, label, geometry, dict(req.units), provenance)
        self._request = req
        job = make_fit_job(method, label, fit_fn, req.cube, req.components, req.settings)
        w = job.worker
        w.yielded.connect(self._on_progress)
        w.returned.connect(self._on_returned)
        w.errored.connect(self._on_errored)
        w.aborted.connect(self._on_aborted)
        w.finished.connect(self._on_finished)
        self.job = job
        self._set_running(True)
        self.cost_plot.clear()
        self.progress.setRange(0, req.settings.max_iter)
        self.progress.setValue(0)
        self._t0 = time.perf_counter()
        self._last_progress = None
        if scheduler:
            self.progress.setRange(0, 0)  # busy: a cluster's worker reports no iterations back
            self.status.setText(f"{label}: sent to the Dask cluster at {scheduler}; the maps appear when it returns…")
        else:
            self.status.setText(f"{label}: starting on {self.device_combo.currentText()}…")
        w.start()
        self._timer.start()
        self._scroll.ensureWidgetVisible(self.cost_plot)  # progress in view while it runs
        return job

    def cancel(self) -> None:
        """Stop the running fit within one iteration; its layers are removed."""
        if self.job is None:
            return
        self.status.setText(f"{self.job.label}: cancelling…")
        self.job.cancel_fit()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.pixel_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _tick(self) -> None:
        if self.job is None or self._last_progress is None:
            return
        self._show_status(self._last_progress)

    def _show_status(self, p: Any) -> None:
        elapsed = time.perf_counter() - self._t0
        it, n = int(p.iteration), int(p.max_iter)
        per_it = elapsed / max(it, 1)
        eta = per_it * max(n - it, 0)
        starts = f"start {p.start + 1}/{p.n_starts}, " if p.n_starts > 1 else ""
        self.status.setText(
            f"{self.job.label if self.job else ''}: {starts}iteration {it}/{n} · cost {p.cost:.6g} · "
            f"elapsed {_fmt_time(elapsed)} · left ≤ {_fmt_time(eta)}"
        )

    def _on_progress(self, p: Any) -> None:
        if p is None or self.job is None or self._live is None:
            return
        last = self._last_progress
        if last is not None and p.start != last.start:
            self.cost_plot.mark_restart()
        self._last_progress = p
        self.progress.setMaximum(max(int(p.max_iter), 1))
        self.progress.setValue(int(p.iteration))
        self.cost_plot.add(float(p.cost))
        self._show_status(p)
        if p.snapshot and not self.job.cancel.is_set():
            self._live.update_maps(p.snapshot)

    def _on_returned(self, result: Any) -> None:
        live, job, req = self._live, self.job, self._request
        if live is None or job is None or req is None:
            return
        if result is None or job.cancel.is_set() or getattr(result, "stop_reason", "") == "cancelled":
            live.remove()
            self.status.setText(f"{job.label}: cancelled; its layers were removed.")
            return
        offset = L.band_offset(req.cube.energy_edges, result.energy_edges)
        live.geometry = L.Geometry.from_cube_layer(req.cube_layer, req.settings.binning, offset, result.wcs)
        result.provenance = dict(result.provenance or {}, run=job.label, cube_layer=req.cube_layer.name)
        live.provenance = dict(live.provenance, **result.provenance)  # exports re-open under this run label
        names = live.finalize(result)
        self._add_run(RunRecord(job.label, job.method, result, names, req.cube_layer.name, req.settings))
        if self.progress.maximum() == 0:  # a cluster's run: leave the busy state
            self.progress.setRange(0, 1)
        self.progress.setValue(self.progress.maximum())
        gof = np.asarray(result.gof, float)
        title = L.run_title(job.label, job.method, req.settings.kmad if job.method == "sushi" else None)
        shares = result.unconstrained_share()
        free = ", ".join(f"{k.split(' ', 1)[-1]} {100 * v:.0f} %" for k, v in shares.items())
        n_starts = int((result.provenance or {}).get("n_starts", 1) or 1)
        iters = (
            f"{result.n_iter} iterations over {n_starts} starting points (at most {req.settings.max_iter} each)"
            if job.method == "pixelfit" and n_starts > 1
            else f"{result.n_iter} iterations"
        )
        summary = (
            f"{title}: {result.stop_reason} after {iters} in "
            f"{_fmt_time(result.wall_time)} on {result.device}; median {result.gof_name} "
            f"{np.nanmedian(gof) if np.isfinite(gof).any() else float('nan'):.3f}"
            + (f"; unconstrained pixels: {free}" if free else "")
            + f"; {len(names)} layers."
        )
        if job.method == "sushi" and req.settings.start != "scan" and req.settings.warm_start is None:
            summary += (
                " Started from the models' defaults or your values, not the global scan: another start "
                "can give other maps (tick 'global scan' to remove that dependence)."
            )
        edges = result.edge_summary()
        if edges:
            summary += f" Warning: {edges}."
            show_warning(f"napari-sushi {job.label}: {edges}.")
        self.status.setText(summary)

    def _on_aborted(self) -> None:
        if self._live is not None:
            self._live.remove()
        label = self.job.label if self.job else ""
        self.status.setText(f"{label}: cancelled; its layers were removed.")

    def _on_errored(self, exc: BaseException) -> None:
        exc = unwrap(exc)
        if self._live is not None:
            self._live.remove()
        label = self.job.label if self.job else "fit"
        if isinstance(exc, (ValueError, OSError)):
            msg = f"napari-sushi {label}: {exc}"
        else:
            msg = f"napari-sushi {label} failed ({type(exc).__name__}: {exc}). Check the settings; if it persists, report it."
        self._report_error(msg)

    def _report_error(self, msg: str) -> None:
        """An error in full on the status line (the notification toast may cut it) and as a notification."""
        self.status.setText(msg)
        self.status.setToolTip(msg)
        show_error(msg)

    def _on_finished(self) -> None:
        self._timer.stop()
        self._live = None
        self._request = None
        job = self.job
        if job is not None and job.solver_running:  # a cancelled solver finishes its iteration
            QTimer.singleShot(50, self._on_finished)
            return
        self.job = None
        self._set_running(False)

    # ================================================================================ batches
    def _open_batch_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a batch's outputs", "", "batch files (*.toml);;all files (*)")
        if path:
            self.open_batch(path)

    def open_batch(self, path: str) -> list[str]:
        """Open every finished output of a batch file as a run (through the plugin's maps reader); the
        outputs not written yet are named in a notification. Returns the outputs opened."""
        from napari_sushi.core.batch import load_spec

        try:
            jobs = load_spec(path)
        except ValueError as exc:
            self._report_error(f"napari-sushi: {exc}")
            return []
        opened, missing = [], []
        for job in jobs:
            if not job.output.exists():
                missing.append(job.name)
                continue
            try:
                self.viewer.open(str(job.output), plugin="napari-sushi")
            except Exception as exc:  # noqa: BLE001 (a damaged output must not stop the others)
                show_warning(f"napari-sushi: cannot open {job.output} ({exc}).")
                continue
            opened.append(str(job.output))
        msg = f"batch {Path(path).name}: opened {len(opened)} of {len(jobs)} outputs"
        if missing:
            msg += f"; not fitted yet: {', '.join(missing)} (run `napari-sushi batch {path}`)"
        self.status.setText(msg + ".")
        (show_warning if missing else show_info)(f"napari-sushi: {msg}.")
        return opened

    # ================================================================================ export
    def _export_dialog(self) -> None:
        label = self.run_combo.currentText()
        if label not in self.runs:
            self._report_error("napari-sushi: no finished run to export; run a fit first.")
            return
        rec = self.runs[label]
        path, _ = QFileDialog.getSaveFileName(
            self, "Export maps to FITS", default_export_name(label, rec.cube_name), "FITS (*.fits)"
        )
        if path:
            self.export(label, path, self.cubes_check.isChecked())

    def export(self, label: str, path: str, include_cubes: bool = False) -> Path | None:
        """Write a finished run to one multi-extension FITS file (notifies on problems)."""
        if label not in self.runs:
            self._report_error(f"napari-sushi: no finished run called '{label}'; pick one in 'run'.")
            return None
        try:
            out = export_run(self.runs[label].result, path, include_cubes=include_cubes)
        except (ValueError, OSError) as exc:
            self._report_error(f"napari-sushi: export failed: {exc}")
            return None
        show_info(f"napari-sushi: wrote {out}")
        return out

    def _add_run(self, rec: RunRecord) -> None:
        self.runs[rec.label] = rec
        self.run_combo.addItem(rec.label)
        self.run_combo.setCurrentText(rec.label)
        self.start_combo.addItem(rec.label, rec.label)
        self.export_button.setEnabled(True)
        self.save_session_button.setEnabled(True)

    # ================================================================================ sessions
    def _save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.sushi", "napari-sushi session (*.sushi)")
        if path:
            self.save_session(path, overwrite=True)

    def _load_session_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Load session (.sushi folder)")
        if path:
            self.load_session(path)

    def save_session(self, path: str, overwrite: bool = False) -> Path | None:
        """Save every finished run and its cube reference in a session folder (notifies on problems)."""
        from napari_sushi.core.session import SessionError, SessionRun, save_session

        runs = []
        for label, rec in self.runs.items():
            source, events = None, None
            if rec.cube_name in self.viewer.layers:
                md = self.viewer.layers[rec.cube_name].metadata
                events = md.get("events")
                source = (events or {}).get("path") or md.get("source")
            kmad = rec.settings.kmad if rec.settings is not None and rec.method == "sushi" else None
            runs.append(
                SessionRun(
                    label,
                    rec.result,
                    rec.cube_name,
                    None if source is None else str(source),
                    L.run_title(label, rec.method, kmad if isinstance(kmad, (int, float)) else None),
                    events=events,
                )
            )
        try:
            out = save_session(path, runs, overwrite=overwrite)
        except (SessionError, ValueError, OSError) as exc:
            self._report_error(f"napari-sushi: cannot save the session: {exc}")
            return None
        self.status.setText(f"saved {len(runs)} run(s) to {out}")
        show_info(f"napari-sushi: saved {len(runs)} run(s) to {out}")
        return out

    def load_session(self, path: str) -> list[str]:
        """Re-create a session's runs: their cubes (re-opened from their files when not in the viewer) and
        their layers, as finished runs of this dock (export, pixel spectrum and warm start work on them)."""
        from napari_sushi.core.session import SessionError, load_session

        try:
            session = load_session(path)
        except (SessionError, ValueError, OSError) as exc:
            self._report_error(f"napari-sushi: cannot load the session: {exc}")
            return []
        loaded, notes = [], []
        for run in session.runs:
            cube_layer = self._session_cube(run, notes)
            label = run.label
            if label in self.runs or any(L.run_of(ly.name) == label for ly in self.viewer.layers):
                label = self._next_label(run.result.method, 0.0)
            res = run.result
            binning = int(((res.provenance or {}).get("settings") or {}).get("binning") or 1)
            if cube_layer is not None:
                offset = L.band_offset(cube_layer.metadata["energy_edges"], res.energy_edges)
                geometry = L.Geometry.from_cube_layer(cube_layer, binning, offset, res.wcs)
            else:
                geometry = L.Geometry(
                    map_scale=(float(binning),) * 2,
                    map_translate=((binning - 1) / 2.0,) * 2,
                    cube_scale=(1.0, float(binning), float(binning)),
                    cube_translate=(0.0, (binning - 1) / 2.0, (binning - 1) / 2.0),
                    wcs=res.wcs,
                )
            prov = dict(res.provenance or {}, run=label)
            live = L.RunLayers(self.viewer, label, geometry, dict(res.units), prov)
            names = live.finalize(res)
            cube_name = cube_layer.name if cube_layer is not None else run.cube_name
            self._add_run(RunRecord(label, res.method, res, names, cube_name, None))
            loaded.append(label)
        msg = f"loaded {len(loaded)} run(s) from {session.path}" + (f"; {'; '.join(notes)}" if notes else "")
        self.status.setText(msg)
        show_info(f"napari-sushi: {msg}")
        return loaded

    def _session_cube(self, run: Any, notes: list[str]) -> Any:
        """The cube layer a saved run was fitted on: in the viewer by name, else re-opened from its file."""
        if run.cube_name and run.cube_name in self.viewer.layers:
            return self.viewer.layers[run.cube_name]
        src = run.cube_source
        if not src or not Path(src).exists():
            notes.append(
                f"{run.label}: its cube {src or run.cube_name!r} is not available, so the maps are "
                "placed on their own pixels"
            )
            return None
        from napari_sushi._napari.reader import event_layers, read_layers

        try:
            ev = run.events
            layers = event_layers(src, **{k: v for k, v in ev.items() if k != "path"}) if ev else read_layers(src)
        except (ValueError, OSError) as exc:
            notes.append(f"{run.label}: cannot re-open its cube {src} ({exc})")
            return None
        data, kwargs, _ = layers[0]
        kwargs = dict(kwargs, name=run.cube_name or kwargs.get("name"))
        return self.viewer.add_image(data, **kwargs)

    # ================================================================================ lifetime
    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        if self.job is not None:
            self.job.cancel_fit()
        from napari_sushi._napari.model_events import model_events

        try:
            model_events().saved.disconnect(self.refresh_models)
        except (TypeError, RuntimeError):  # already disconnected
            pass
        super().closeEvent(event)
