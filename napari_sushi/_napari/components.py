"""Component editor of the fit dock: one emission component, its spectral model and its parameters.

Each parameter is free (with an initial value), fixed (to a value) or linked to a parameter of
another component (one shared map). The editor only collects choices; it builds a
:class:`~napari_sushi.core.solver.settings.Component` and the link pairs for ``FitSettings.links``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

FREE, FIXED, LINKED = "free", "fixed", "linked"

_CACHE: dict[tuple[str, int], Any] = {}


def load_cached(source: str) -> Any:
    """``registry.load_model(source)``, loaded once per registry name or per file version."""
    from pathlib import Path

    from napari_sushi.core.spectral.registry import load_model

    p = Path(source)
    if not p.is_file():  # a registry name: the user's file of that name, re-read when it is saved again
        from napari_sushi.core.spectral.registry import pretrained_dir
        from napari_sushi.core.spectral.user_models import user_model_dir

        for folder in (pretrained_dir(), user_model_dir()):
            cand = folder / f"{source}.safetensors"
            if cand.is_file():
                p = cand
                break
    key = (source, p.stat().st_mtime_ns if p.is_file() else 0)
    if key not in _CACHE:
        _CACHE[key] = load_model(source)
    return _CACHE[key]


@dataclass
class ModelChoice:
    """A model offered in the combo: a registry name or a file path, loaded on first use."""

    label: str
    source: str  # registry name or path; "" for a model given as an object
    description: str = ""
    component: str = ""
    model: Any = None  # the loaded SpectralModel (cached)


@dataclass
class ComponentSpec:
    """What the editor says about one component."""

    name: str
    model: Any
    fixed: dict[str, float] = field(default_factory=dict)
    init: dict[str, float] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)


def _decimals(low: float, high: float) -> int:
    span = abs(high - low)
    if span >= 1000:
        return 0
    if span >= 10:
        return 2
    return 3


def model_summary(model: Any) -> str:
    """What a model was built for: its description (boxes, channels, response) and its fixed values (N_H, abundance)."""
    meta = model.meta
    fixed = meta.extra.get("fixed") or {}
    units = {"nH": "×10²² cm⁻²", "abundance": "× solar", "velocity": "km/s", "sigma_v": "km/s"}
    parts = [model.describe()]
    if fixed:
        parts.append(
            "fixed: " + ", ".join(f"{k} = {v:g}" + (f" {units[k]}" if k in units else "") for k, v in fixed.items())
        )
    return "; ".join(parts)


class ParameterRow:
    """Widgets of one parameter: label with unit, range, mode, value and link target."""

    def __init__(self, grid: QGridLayout, row: int, info: Any, on_change: Callable[[], None]) -> None:
        self.info = info
        unit = f" [{info.unit}]" if info.unit else ""
        self.label = QLabel(f"{info.name}{unit}")
        tip = info.description or info.name
        self.label.setToolTip(f"{tip}\nvalid range {info.low:g} to {info.high:g} {info.unit}".strip())
        self.range = QLabel(f"{info.low:g} … {info.high:g}")
        self.range.setToolTip("validity box of the model: the fit keeps the parameter inside it")
        self.mode = QComboBox()
        self.mode.addItems([FREE, FIXED, LINKED])
        self.mode.setToolTip(
            "free: fitted map (a value you enter is the initial guess everywhere; left at the model's "
            "default, the map starts from a fit of the 4x4-binned cube)\nfixed: held at the value everywhere\n"
            "linked: one map shared with the chosen parameter of another component"
        )
        self.value = QDoubleSpinBox()
        self.value.setDecimals(_decimals(info.low, info.high))
        self.value.setRange(float(info.low), float(info.high))
        span = float(info.high - info.low)
        self.value.setSingleStep(span / 100 if span > 0 else 0.1)
        self.value.setValue(float(info.default))
        self.default_shown = self.value.value()  # the default as the spin box rounds it
        self.value.setToolTip(
            "initial value (free; at the model's default the fit starts from a coarse fit instead) "
            "or the value it is held at (fixed)"
        )
        self.link = QComboBox()
        self.link.setToolTip("the parameter this one shares its map with")
        self.link.setVisible(False)
        for col, w in enumerate([self.label, self.range, self.mode, self.value, self.link]):
            grid.addWidget(w, row, col)
        self.mode.currentTextChanged.connect(self._mode_changed)
        self.mode.currentTextChanged.connect(lambda *_: on_change())

    def _mode_changed(self, mode: str) -> None:
        self.link.setVisible(mode == LINKED)

    def set_link_targets(self, targets: list[str]) -> None:
        current = self.link.currentText()
        self.link.blockSignals(True)
        self.link.clear()
        self.link.addItems(targets)
        if current in targets:
            self.link.setCurrentText(current)
        self.link.blockSignals(False)

    def widgets(self) -> list[QWidget]:
        return [self.label, self.range, self.mode, self.value, self.link]

    def initial_value(self) -> float | None:
        """The value as an initial guess, or None where it was left at the model's default.

        None lets the fit choose its start (SUSHI: a fit of the 4x4-binned cube, as in the CLI and the
        Python API); passing the untouched default instead made every GUI fit start from the
        defaults (e.g. velocity 0 everywhere), which the regularised fit then largely kept.
        """
        v = float(self.value.value())
        return None if v == self.default_shown else v


class ComponentEditor(QGroupBox):
    """One component: name, model (registry or file) and per-parameter choices."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, choices: list[ModelChoice], name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Component")
        self._choices: list[ModelChoice] = []
        self.rows: list[ParameterRow] = []
        self._load_error: Callable[[str], None] | None = None

        self.name_edit = QLineEdit(name)
        self.name_edit.setToolTip("name of the component in layer names and outputs (unique)")
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("spectral model of this component (shipped models or a model file)")
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("load a napari-sushi model file (.safetensors) for this component")
        self.remove_button = QPushButton("✕")
        self.remove_button.setToolTip("remove this component")
        self.remove_button.setFixedWidth(28)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        self.model_info.setStyleSheet("color: gray; font-size: 10px;")

        top = QHBoxLayout()
        top.addWidget(QLabel("name"))
        top.addWidget(self.name_edit, 1)
        top.addWidget(self.remove_button)
        mid = QHBoxLayout()
        mid.addWidget(QLabel("model"))
        mid.addWidget(self.model_combo, 1)
        mid.addWidget(self.load_button)
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(mid)
        lay.addWidget(self.model_info)
        lay.addLayout(self.grid)

        for c in choices:
            self.add_choice(c, select=False)
        self.model_combo.currentIndexChanged.connect(self._model_selected)
        self.name_edit.editingFinished.connect(self.changed.emit)
        self.load_button.clicked.connect(self._load_dialog)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))

    # -- models ------------------------------------------------------------------------------
    def set_error_handler(self, handler: Callable[[str], None]) -> None:
        self._load_error = handler

    def add_choice(self, choice: ModelChoice, select: bool = True) -> None:
        self._choices.append(choice)
        self.model_combo.blockSignals(True)
        self.model_combo.addItem(choice.label)
        self.model_combo.setItemData(self.model_combo.count() - 1, choice.description, 3)  # ToolTipRole
        self.model_combo.blockSignals(False)
        if select:
            self._select_index(self.model_combo.count() - 1)

    def order_choices(self, matching: set[str]) -> None:
        """List the models whose grid matches the cube first; the others say "(other grid)"."""
        current = self.choice
        keyed = sorted(
            range(len(self._choices)),
            key=lambda i: (self._choices[i].source not in matching and self._choices[i].source != "", i),
        )
        self._choices = [self._choices[i] for i in keyed]
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for c in self._choices:
            other = bool(matching) and c.source and c.source not in matching
            self.model_combo.addItem(c.label + ("  (other grid)" if other else ""))
            self.model_combo.setItemData(self.model_combo.count() - 1, c.description, 3)  # ToolTipRole
        if current is not None:
            self.model_combo.setCurrentIndex(self._choices.index(current))
        self.model_combo.blockSignals(False)

    def has_choice(self, source: str) -> bool:
        return any(c.source == source for c in self._choices)

    def file_choices(self) -> list[ModelChoice]:
        """The models loaded into this component from files (not from the registry)."""
        return [c for c in self._choices if c.label.startswith("file: ")]

    def reload(self, source: str) -> None:
        """Forget the loaded model of ``source`` (it was saved again); rebuild the rows if it is in use."""
        for c in self._choices:
            if c.source == source:
                c.model = None
        cur = self.choice
        if cur is not None and cur.source == source:
            self._model_selected(self.model_combo.currentIndex())

    def set_model(self, model: Any, label: str | None = None) -> None:
        """Use an already loaded SpectralModel (e.g. from a script) for this component."""
        label = label or f"{model.meta.component} ({model.meta.family})"
        self.add_choice(ModelChoice(label=label, source="", description=model.describe(), model=model))

    def select_model(self, label_or_source: str) -> None:
        """Select a model by its label or registry name / path."""
        for i, c in enumerate(self._choices):
            if label_or_source in (c.label, c.source):
                self._select_index(i)
                return
        raise ValueError(f"no model {label_or_source!r} in this component's list")

    def _select_index(self, i: int) -> None:
        if self.model_combo.currentIndex() != i:
            self.model_combo.setCurrentIndex(i)  # builds the rows through the signal
        else:
            self._model_selected(i)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load spectral model", "", "napari-sushi models (*.safetensors);;All files (*)"
        )
        if path:
            self.load_model_file(path)

    def load_model_file(self, path: str) -> None:
        """Load a model file and select it (errors go to the dock's notification handler)."""
        from pathlib import Path

        choice = ModelChoice(label=f"file: {Path(path).name}", source=str(path))
        try:
            self._ensure_loaded(choice)
        except (ValueError, OSError) as exc:
            self._report(str(exc))
            return
        self.add_choice(choice)

    def _ensure_loaded(self, choice: ModelChoice) -> Any:
        if choice.model is None:
            choice.model = load_cached(choice.source)
            choice.description = choice.model.describe()
        return choice.model

    def _report(self, message: str) -> None:
        if self._load_error is not None:
            self._load_error(message)
        else:  # pragma: no cover - always set by the dock
            raise ValueError(message)

    @property
    def choice(self) -> ModelChoice | None:
        i = self.model_combo.currentIndex()
        return self._choices[i] if 0 <= i < len(self._choices) else None

    @property
    def model(self) -> Any:
        c = self.choice
        return None if c is None else c.model

    def _model_selected(self, index: int) -> None:
        c = self.choice
        if c is None:
            return
        try:
            model = self._ensure_loaded(c)
        except (ValueError, OSError) as exc:
            self._report(f"cannot load model {c.label}: {exc}")
            model = None
        self._build_rows(model)
        if model is not None:
            self.model_info.setText(model_summary(model))
            if not self.name_edit.text().strip():
                self.name_edit.setText(model.meta.component)
        self.changed.emit()

    def _build_rows(self, model: Any) -> None:
        for r in self.rows:
            for w in r.widgets():
                self.grid.removeWidget(w)
                w.hide()
                w.setParent(None)  # gone now, not at the next event-loop turn
                w.deleteLater()
        self.rows = []
        if model is None:
            return
        for i, info in enumerate(model.meta.parameters):
            self.rows.append(ParameterRow(self.grid, i, info, self.changed.emit))
        from napari_sushi._napari.sizing import keep_text_visible

        keep_text_visible(self)

    # -- state -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.name_edit.text().strip()

    def param_keys(self) -> list[str]:
        return [f"{self.name}.{r.info.name}" for r in self.rows]

    def row(self, param: str) -> ParameterRow:
        for r in self.rows:
            if r.info.name == param:
                return r
        raise KeyError(f"component {self.name!r} has no parameter {param!r}")

    def set_parameter(self, param: str, mode: str = FREE, value: float | None = None, link: str = "") -> None:
        """Programmatic equivalent of the parameter row (scripts and tests)."""
        r = self.row(param)
        r.mode.setCurrentText(mode)
        if value is not None:
            r.value.setValue(float(value))
        if link:
            r.link.setCurrentText(link)

    def spec(self) -> ComponentSpec:
        """The component as the core wants it (raises ValueError with what to fix)."""
        if not self.name:
            raise ValueError("a component has no name; type one (e.g. 'thermal').")
        if self.model is None:
            raise ValueError(f"component '{self.name}' has no model; pick one or load a model file.")
        spec = ComponentSpec(name=self.name, model=self.model)
        for r in self.rows:
            mode = r.mode.currentText()
            v = float(r.value.value())
            if mode == FIXED:
                spec.fixed[r.info.name] = v
            elif r.initial_value() is not None:
                spec.init[r.info.name] = v
            if mode == LINKED:
                target = r.link.currentText()
                if not target:
                    raise ValueError(
                        f"{self.name}.{r.info.name} is 'linked' but there is no other parameter to link it "
                        "to; add a second component or set it to free."
                    )
                spec.links.append((f"{self.name}.{r.info.name}", target))
        return spec
