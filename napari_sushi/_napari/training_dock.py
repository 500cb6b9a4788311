"""The training dock: train a spectral model for one's own source and instrument, in the app.

Thin by design: the dock collects the component, its parameter boxes, absorption, abundance, the
response (the open cube's, or RMF/ARF files) and the model family, builds a simulator preset with
:func:`napari_sushi.core.simulate.preset_for_cube` / :func:`~napari_sushi.core.simulate.response_preset`,
and runs :func:`napari_sushi.core.spectral.training.train_model` in a background worker that reports
each step (live loss plot) and stops on Cancel. The model is saved in the per-user model folder
(:mod:`napari_sushi.core.spectral.user_models`) and announced, so fit docks list it at once.
"""

# No ``from __future__ import annotations`` here: napari injects the viewer by the annotation.
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import napari
from napari.utils.notifications import show_error, show_info, show_warning  # noqa: F401 (tests capture all three)
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
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
from napari_sushi._napari.form_rows import band_row, file_row
from napari_sushi._napari.loss_plot import LossPlot
from napari_sushi._napari.model_events import model_events
from napari_sushi._napari.worker import FitJob, make_background_job, unwrap

NO_CUBE = "none: give the response and band below"
COMPONENTS = {
    "thermal": "thermal plasma (kT, velocity), absorbed",
    "powerlaw": "power law (photon index), absorbed",
}
FAMILIES = {
    "emulator": "emulator (grid + PCA; seconds to a minute, recommended)",
    "iae": "IAE (interpolatory auto-encoder; minutes)",
}


def component_parameters(component: str) -> list[Any]:
    """The free parameters (ParameterInfo) a component is trained with by default, with their boxes."""
    from napari_sushi.core.simulate import PRESETS

    return list(PRESETS["wide"].components[component].parameters)


def safe_model_name(text: str) -> str:
    """A file-name-safe model name from free text ('MSH 15-52 thermal' -> 'MSH-15-52-thermal')."""
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", text.strip()).strip("-.")
    return name[:80]


@dataclass
class TrainingRequest:
    """Everything one training run needs, checked before it starts."""

    component: str
    family: str
    quick: bool
    name: str
    rmf: str
    arf: str | None
    nH: float | None
    abundance: float | None
    physics: str = "builtin"  # thermal emission code: "builtin" or "apec" (optional extra)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    cube: Any = None  # the HyperCube the model must match (its band and channels), or None
    band: tuple[float, float] = (0.5, 8.0)
    group: int = 1
    overwrite: bool = False

    def preset(self) -> Any:
        """The simulator preset: the response and grid, this component's boxes, absorption and fixed values."""
        from napari_sushi.core.simulate import preset_for_cube, response_preset

        kw = dict(
            nH=self.nH,
            abundance=self.abundance if self.component == "thermal" else None,
            ranges={k: v for k, v in self.ranges.items() if k not in self.fixed} or None,
            fixed=dict(self.fixed) or None,
            components=(self.component,),
            physics=self.physics if self.component == "thermal" else "builtin",
        )
        if self.cube is not None:
            return preset_for_cube(self.cube, self.rmf, self.arf, **kw)
        return response_preset(self.rmf, self.arf, band=self.band, group=self.group, **kw)


def run_training(req: TrainingRequest, callback: Any, cancel: Any) -> tuple[Any, Path]:
    """Train (in a worker thread), then save in the user model folder; returns (model, path)."""
    from napari_sushi.core.spectral.training import train_model
    from napari_sushi.core.spectral.user_models import save_user_model

    preset = req.preset()

    def report(info: dict) -> bool:
        callback(dict(info))
        return cancel.is_set()

    model = train_model(
        req.family, preset=preset, component=req.component, progress=False, callback=report, quick=req.quick
    )
    path = save_user_model(model, req.name, overwrite=req.overwrite)
    return model, path


class ParameterBox:
    """One free parameter of the component: its validity box (low, high) or a fixed value."""

    def __init__(self, grid: QGridLayout, row: int, info: Any) -> None:
        self.info = info
        unit = f" [{info.unit}]" if info.unit else ""
        self.label = QLabel(f"{info.name}{unit}")
        self.label.setToolTip(info.description or info.name)
        span = float(info.high - info.low)
        decimals = 0 if span >= 1000 else 2
        self.low, self.high, self.value = QDoubleSpinBox(), QDoubleSpinBox(), QDoubleSpinBox()
        lim = max(abs(info.low), abs(info.high)) * 10 + 10
        for sb, v in ((self.low, info.low), (self.high, info.high), (self.value, info.default)):
            sb.setDecimals(decimals)
            sb.setRange(-lim, lim)
            sb.setSingleStep(span / 50 if span > 0 else 0.1)
            sb.setValue(float(v))
            sb.setMinimumWidth(90)
        self.low.setToolTip("lowest value the model learns; the fit keeps the map inside the box")
        self.high.setToolTip("highest value the model learns")
        self.fix = QCheckBox("fix at")
        self.fix.setToolTip("hold this parameter at one value (it is then not a map of the fit)")
        self.value.setEnabled(False)
        self.fix.toggled.connect(self._fix_toggled)
        r = 2 * row  # the box on one line, the fixed value under it: narrow enough for the dock
        for col, w in enumerate([self.label, self.low, QLabel("to"), self.high]):
            grid.addWidget(w, r, col)
        grid.addWidget(self.fix, r + 1, 1)
        grid.addWidget(self.value, r + 1, 3)
        self.widgets = [grid.itemAtPosition(r, c).widget() for c in range(4)] + [self.fix, self.value]

    def _fix_toggled(self, on: bool) -> None:
        self.value.setEnabled(on)
        self.low.setEnabled(not on)
        self.high.setEnabled(not on)

    def remove(self) -> None:
        for w in self.widgets:
            w.hide()
            w.setParent(None)
            w.deleteLater()


class TrainingDock(QWidget):
    """Dock widget: train a thermal or power-law model for the open cube's response, or any ARF/RMF pair."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.job: FitJob | None = None
        self.boxes: list[ParameterBox] = []
        self.last_model: Any = None
        self.last_path: Path | None = None
        self._t0 = 0.0
        self._request: TrainingRequest | None = None
        self._build_ui()
        self._connect_viewer()
        self.refresh_cubes()
        self._component_changed()

    # ================================================================================ UI
    def _build_ui(self) -> None:
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(4, 4, 4, 4)

        data = QGroupBox("Data and response")
        form = QFormLayout(data)
        self.cube_combo = QComboBox()
        self.cube_combo.setToolTip("the model is built on this cube's energy channels, with its response")
        form.addRow("for cube", self.cube_combo)
        self.rmf_edit, rmf_row = file_row(
            self, "RMF (redistribution matrix, OGIP)", "*.rmf *.rsp *.fits", "OGIP response"
        )
        form.addRow("RMF", rmf_row)
        self.arf_edit, arf_row = file_row(
            self, "ARF (effective area, OGIP); empty for an RSP", "*.arf *.fits", "OGIP response"
        )
        form.addRow("ARF", arf_row)
        self.emin, self.emax, band = band_row(0.5, 8.0)
        form.addRow("band", band)
        self.group = QSpinBox()
        self.group.setRange(1, 64)
        self.group.setToolTip("native channels per energy bin (as the cube was binned)")
        form.addRow("channel group", self.group)
        self.data_info = QLabel("")
        self.data_info.setWordWrap(True)
        self.data_info.setStyleSheet("color: gray; font-size: 10px;")
        form.addRow(self.data_info)
        col.addWidget(data)

        mod = QGroupBox("Model")
        f2 = QFormLayout(mod)
        self.component_combo = QComboBox()
        for k, text in COMPONENTS.items():
            self.component_combo.addItem(text, k)
        f2.addRow("component", self.component_combo)
        self.family_combo = QComboBox()
        for k, text in FAMILIES.items():
            self.family_combo.addItem(text, k)
        for combo in (self.component_combo, self.family_combo):  # long item texts must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(24)
        f2.addRow("family", self.family_combo)
        self.nh = QDoubleSpinBox()
        self.nh.setRange(0.0, 100.0)
        self.nh.setDecimals(3)
        self.nh.setSingleStep(0.05)
        self.nh.setValue(0.5)
        self.nh.setSuffix(" ×10²² cm⁻²")
        self.nh.setToolTip("interstellar absorption column towards the source (tbabs-like, wilm abundances)")
        f2.addRow("absorption N_H", self.nh)
        self.abundance = QDoubleSpinBox()
        self.abundance.setRange(0.01, 10.0)
        self.abundance.setDecimals(2)
        self.abundance.setSingleStep(0.1)
        self.abundance.setValue(1.0)
        self.abundance.setSuffix(" × solar")
        self.abundance.setToolTip("metal abundance of the plasma, held fixed (thermal only)")
        f2.addRow("abundance", self.abundance)
        self.physics_combo = QComboBox()
        self.physics_combo.addItem("built-in (approximate lines)", "builtin")
        self.physics_combo.addItem("APEC (nnapec emulator)", "apec")
        self.physics_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.physics_combo.setMinimumContentsLength(24)
        self.physics_combo.setToolTip(
            "emission code of the thermal plasma; APEC needs the optional extra: pip install 'napari-sushi[apec]'"
        )
        f2.addRow("plasma physics", self.physics_combo)
        boxes = QGroupBox("Parameter boxes")
        self.box_grid = QGridLayout(boxes)
        f2.addRow(boxes)
        self.quick_check = QCheckBox("quick: a coarse model in seconds")
        self.quick_check.setToolTip("fewer grid nodes / epochs: less accurate spectra, much faster training")
        f2.addRow("", self.quick_check)
        self.name_edit = QLineEdit("")
        self.name_edit.setToolTip("the name the model gets in the model lists (letters, digits, - _ . +)")
        f2.addRow("name", self.name_edit)
        self.overwrite_check = QCheckBox("replace a model of the same name")
        f2.addRow("", self.overwrite_check)
        col.addWidget(mod)

        run = QGroupBox("Train")
        rl = QVBoxLayout(run)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train model")
        self.train_button.setToolTip("train in the background; the model is saved in your model folder")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        rl.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        rl.addWidget(self.progress)
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        rl.addWidget(self.status)
        self.loss_plot = LossPlot()
        rl.addWidget(self.loss_plot)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        rl.addWidget(self.result_label)
        col.addWidget(run)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        keep_text_visible(inner)
        keep_width(self, inner, 470)

        self.cube_combo.currentTextChanged.connect(self._cube_selected)
        self.component_combo.currentIndexChanged.connect(self._component_changed)
        self.family_combo.currentIndexChanged.connect(lambda *_: self._suggest_name())
        self.train_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    # ================================================================================ state
    def _connect_viewer(self) -> None:
        ev = self.viewer.layers.events
        for e in (ev.inserted, ev.removed, ev.reordered):
            e.connect(lambda *_: self.refresh_cubes())

    def refresh_cubes(self) -> None:
        """Refill 'for cube' from the layers; the user's choice and typed fields stay unless it went away."""
        current = self.cube_combo.currentText()
        names = [ly.name for ly in self.viewer.layers if L.is_cube_layer(ly)]
        items = names + [NO_CUBE]
        if [self.cube_combo.itemText(i) for i in range(self.cube_combo.count())] == items:
            return  # another kind of layer came or went: nothing to change
        self.cube_combo.blockSignals(True)
        self.cube_combo.clear()
        self.cube_combo.addItems(items)
        keep = current in items
        if keep:
            self.cube_combo.setCurrentText(current)
        self.cube_combo.blockSignals(False)
        if not keep or not current:
            self._cube_selected()

    def selected_cube(self) -> Any:
        """The HyperCube chosen in 'for cube' (None for 'none')."""
        name = self.cube_combo.currentText()
        if not name or name == NO_CUBE or name not in self.viewer.layers:
            return None
        return L.hypercube_of(self.viewer.layers[name])

    def _cube_selected(self, *_: Any) -> None:
        try:
            cube = self.selected_cube()
        except (ValueError, OSError) as exc:
            self.data_info.setText(f"this cube cannot be used: {exc}")
            return
        on_cube = cube is not None
        for w in (self.emin, self.emax, self.group):
            w.setEnabled(not on_cube)
        if not on_cube:
            self.data_info.setText("the model is built on the RMF's native channels in this band, grouped as given.")
            self._suggest_name()
            return
        e = cube.energy_edges
        resp = getattr(cube, "response", None)
        filled = getattr(self, "_filled", ("", ""))
        if resp is not None:
            self._filled = (str(resp.rmf), "" if resp.arf is None else str(resp.arf))
            self.rmf_edit.setText(self._filled[0])
            self.arf_edit.setText(self._filled[1])
        elif (self.rmf_edit.text(), self.arf_edit.text()) == filled and any(filled):
            self.rmf_edit.setText("")  # the previous cube's response is not this one's
            self.arf_edit.setText("")
            self._filled = ("", "")
        self.emin.setValue(float(e[0]))
        self.emax.setValue(float(e[-1]))
        ch = cube.channels
        grid = f"{cube.n_energy} bins {e[0]:.3f}-{e[-1]:.3f} keV" + (
            "" if ch is None else f", native channels {int(ch[0])}-{int(ch[-1])}"
        )
        where = f"response {resp.how}" if resp is not None else "no response known for this cube: give its RMF/ARF"
        if ch is None:
            where += (
                "; the cube is not on native channels, so no response can be matched to it: re-bin the "
                "event list on native channels (Bin event list dock)"
            )
        self.data_info.setText(f"{grid}; {where}.")
        self._suggest_name()

    def _component_changed(self, *_: Any) -> None:
        comp = self.component
        for b in self.boxes:
            b.remove()
        self.boxes = [ParameterBox(self.box_grid, i, info) for i, info in enumerate(component_parameters(comp))]
        keep_text_visible(self)
        self.abundance.setEnabled(comp == "thermal")
        self.physics_combo.setEnabled(comp == "thermal")
        self._suggest_name()

    def _suggest_name(self) -> None:
        """'<source>-<channels>ch-<component>-<family>': the source and grid it is for, short enough to read."""
        try:
            cube = self.selected_cube()
        except (ValueError, OSError):
            cube = None
        if cube is not None:  # the source's name without the binning notes the Bin dock adds after a space
            base = f"{cube.name.split(' ')[0]}-{cube.n_energy}ch"
        else:
            base = f"{Path(self.rmf_edit.text()).stem or 'own'}-{self.emin.value():g}-{self.emax.value():g}keV"
        self.name_edit.setText(safe_model_name(f"{base}-{self.component}-{self.family_combo.currentData()}"))

    @property
    def component(self) -> str:
        return str(self.component_combo.currentData())

    def box(self, name: str) -> ParameterBox:
        for b in self.boxes:
            if b.info.name == name:
                return b
        raise KeyError(f"component {self.component!r} has no parameter {name!r}")

    def set_box(
        self, name: str, low: float | None = None, high: float | None = None, fixed: float | None = None
    ) -> None:
        """Programmatic equivalent of a parameter row (scripts and tests)."""
        b = self.box(name)
        if low is not None:
            b.low.setValue(float(low))
        if high is not None:
            b.high.setValue(float(high))
        b.fix.setChecked(fixed is not None)
        if fixed is not None:
            b.value.setValue(float(fixed))

    def build_request(self) -> TrainingRequest:
        """Collect the dock's choices; raises ValueError saying what to fix."""
        cube = self.selected_cube()
        rmf = self.rmf_edit.text().strip()
        arf = self.arf_edit.text().strip() or None
        if not rmf:
            raise ValueError(
                "no response: give the RMF (and ARF) of the observation, or open an event list whose "
                "response is known (RESPFILE/ANCRFILE keywords or files beside it)."
            )
        for what, p in (("RMF", rmf), ("ARF", arf)):
            if p is not None and not Path(p).is_file():
                raise ValueError(f"the {what} {p} does not exist; pick the file with Browse….")
        if cube is not None and cube.channels is None:
            raise ValueError(
                f"cube '{self.cube_combo.currentText()}' is not binned on native channels, so no model "
                "can match it; re-bin the event list on native channels, or choose 'none' and a band."
            )
        from napari_sushi.core.spectral.user_models import check_model_name

        name = check_model_name(safe_model_name(self.name_edit.text()))  # refused names fail now, not after training
        ranges, fixed = {}, {}
        for b in self.boxes:
            if b.fix.isChecked():
                fixed[b.info.name] = float(b.value.value())
            else:
                lo, hi = float(b.low.value()), float(b.high.value())
                if not hi > lo:
                    raise ValueError(
                        f"the box of {b.info.name} is empty ({lo:g} to {hi:g}); the upper end must be larger."
                    )
                ranges[b.info.name] = (lo, hi)
        if not ranges:
            raise ValueError("every parameter is fixed: leave at least one free for the model to learn.")
        band = (float(self.emin.value()), float(self.emax.value()))
        if cube is None and not band[1] > band[0]:
            raise ValueError(f"the band {band[0]:g}-{band[1]:g} keV is empty; the upper end must be larger.")
        nh = float(self.nh.value())
        physics = str(self.physics_combo.currentData()) if self.component == "thermal" else "builtin"
        if physics == "apec":
            from napari_sushi.core.physics import apec

            if not apec.available():
                raise ValueError(f"APEC physics needs its emulator: {apec.INSTALL_HINT}.")
        return TrainingRequest(
            component=self.component,
            family=str(self.family_combo.currentData()),
            quick=self.quick_check.isChecked(),
            name=name,
            rmf=rmf,
            arf=arf,
            nH=nh if nh > 0 else None,
            abundance=float(self.abundance.value()) if self.component == "thermal" else None,
            physics=physics,
            ranges=ranges,
            fixed=fixed,
            cube=cube,
            band=band,
            group=int(self.group.value()),
            overwrite=self.overwrite_check.isChecked(),
        )

    # ================================================================================ run
    def start(self) -> FitJob | None:
        """Check the choices and train in the background; problems become notifications."""
        if self.job is not None:
            self._report_error("napari-sushi: a model is already training; wait for it or press Cancel.")
            return None
        try:
            req = self.build_request()
            self._check_name_free(req)
        except (ValueError, OSError) as exc:
            self._report_error(f"napari-sushi: {exc}")
            return None
        job = make_background_job(
            f"training {req.name}", lambda cb, cancel: run_training(req, cb, cancel), method="train"
        )
        w = job.worker
        w.yielded.connect(self._on_progress)
        w.returned.connect(self._on_returned)
        w.errored.connect(self._on_errored)
        w.finished.connect(self._on_finished)
        self.job, self._request = job, req
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.loss_plot.clear("level" if req.family == "emulator" else "epoch")
        self.progress.setRange(0, 0)  # busy until the first step says how many
        self.result_label.setText("")
        self._t0 = time.perf_counter()
        self.status.setText(f"{job.label}: building the training spectra…")
        w.start()
        return job

    def _check_name_free(self, req: TrainingRequest) -> None:
        from napari_sushi.core.spectral.registry import list_models

        clash = [e for e in list_models() if e.name == req.name]
        if clash and (getattr(clash[0], "origin", "shipped") == "shipped" or not req.overwrite):
            what = "a shipped model" if getattr(clash[0], "origin", "shipped") == "shipped" else "a model"
            tail = "" if what == "a shipped model" else " or tick 'replace a model of the same name'"
            raise ValueError(f"{what} is already called '{req.name}'; choose another name{tail}.")

    def cancel(self) -> None:
        """Stop training at the next step; nothing is saved."""
        if self.job is None:
            return
        self.status.setText(f"{self.job.label}: cancelling…")
        self.job.cancel.set()

    def _on_progress(self, info: Any) -> None:
        if not isinstance(info, dict) or self.job is None:
            return
        step, total = int(info.get("step", 0)), info.get("total")
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(min(step, int(total)))
        self.loss_plot.add(step, info.get("train"), info.get("val"))
        val = info.get("val")
        self.status.setText(
            f"{self.job.label}: {info.get('stage', '')} step {step}"
            + (f"/{total}" if total else "")
            + (f" · validation {val:.3g}" if isinstance(val, float) else "")
            + f" · elapsed {time.perf_counter() - self._t0:.1f} s"
        )

    def _on_returned(self, value: Any) -> None:
        if value is None or self.job is None:
            return
        model, path = value
        self.last_model, self.last_path = model, Path(path)
        acc = model.meta.extra.get("accuracy", {})
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        text = (
            f"saved '{Path(path).stem}' ({model.describe()}) to {path}. Held-out accuracy: median "
            f"{acc.get('median', float('nan')):.2g}, 99th percentile {acc.get('p99', float('nan')):.2g} "
            f"relative spectral error over {acc.get('n', '?')} spectra the training never saw."
        )
        self.status.setText(
            f"trained in {time.perf_counter() - self._t0:.1f} s; it is now in the fit dock's model lists."
        )
        self.result_label.setText(text)
        show_info(f"napari-sushi: {text}")
        model_events().saved.emit(Path(path).stem)

    def _on_errored(self, exc: BaseException) -> None:
        from napari_sushi.core.spectral.training import TrainingCancelled

        exc = unwrap(exc)
        label = self.job.label if self.job else "training"
        if isinstance(exc, TrainingCancelled):
            self.status.setText(f"{label}: cancelled; nothing was saved.")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            return
        if isinstance(exc, (ValueError, OSError)):
            msg = f"napari-sushi {label}: {exc}"
        else:
            msg = f"napari-sushi {label} failed ({type(exc).__name__}: {exc}). Check the settings; if it persists, report it."
        self._report_error(msg)

    def _on_finished(self) -> None:
        self.job = None
        self._request = None
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _report_error(self, msg: str) -> None:
        self.status.setText(msg)
        self.status.setToolTip(msg)
        show_error(msg)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        if self.job is not None:
            self.job.cancel.set()
        super().closeEvent(event)
