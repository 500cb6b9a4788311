"""The "Pixel spectrum" dock: click a pixel, see its spectrum against the fit.

Thin by design: every number comes from :func:`napari_sushi.core.pixel_spectrum.pixel_spectrum`;
this file only finds the runs, maps a click to the fitted grid (with the run's
:class:`~napari_sushi._napari.result_layers.Geometry`), marks the pixel with a small Points layer and
draws the matplotlib figure (top: data with error bars, total and component models in counts/keV,
log scale; bottom: residuals). Problems become napari notifications, never tracebacks.

Runs come from the SUSHI fit dock(s) docked in the same viewer (their ``runs``), from maps files
exported with their cubes and re-opened (layers whose metadata has ``maps_file``; the file is read once
per path and modification time), plus any added with :meth:`PixelSpectrumDock.add_run` (scripts). The
dock follows new runs as their layers appear.
"""

# No ``from __future__ import annotations`` here: napari injects the viewer by the annotation.
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import napari
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_sushi._napari import result_layers as L
from napari_sushi.core.io.maps import read_maps_fits
from napari_sushi.core.pixel_spectrum import (
    PixelError,
    PixelSpectrum,
    fit_arrays_from_mapset,
    fit_pixel_at,
    pixel_spectrum,
)

MARKER_NAME = "pixel spectrum"
_DARK = {"bg": "#262930", "fg": "#d6d6d6", "grid": "#44464f", "data": "#f0f0f0", "total": "#ffd166"}
_NO_RUN = "napari-sushi: no finished run to compare with; run a fit in the SUSHI fit dock first."
_COMPONENT_COLORS = ("#4cc9f0", "#f72585", "#7bd88f", "#b388ff", "#ff9f1c", "#e0e0e0")


@dataclass
class SpectrumRun:
    """What the dock needs of a finished run: its result and the cube layer / binning it was fitted on."""

    label: str
    result: Any
    cube_name: str
    binning: int = 1
    maps_file: Optional[str] = None  # a run re-opened from an exported maps file: its path


class PixelSpectrumDock(QWidget):
    """Dock widget: the spectrum of the clicked pixel against the model of the chosen run."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._extra: dict[str, SpectrumRun] = {}
        self._file_cache: dict[str, tuple[Optional[int], Any]] = {}  # maps file -> (mtime_ns, FitArrays or None)
        self._runs: dict[str, SpectrumRun] = {}
        self._world: Optional[tuple[float, float]] = None  # last clicked position (y, x), world
        self.pixel: Optional[tuple[int, int]] = None  # fitted-grid pixel on display
        self.spectrum: Optional[PixelSpectrum] = None  # what is plotted (grouped as displayed)
        self.artists: dict[str, Any] = {}
        self._build_ui()
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self.refresh_runs()

    # ================================================================================ UI
    def _build_ui(self) -> None:
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 4, 4, 4)
        form = QFormLayout()
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("finished run whose model is shown")
        self.run_combo.currentIndexChanged.connect(lambda *_: self._redraw_current())
        form.addRow("run", self.run_combo)
        self.min_counts = QSpinBox()
        self.min_counts.setRange(0, 10_000)
        self.min_counts.setValue(20)
        self.min_counts.setToolTip(
            "display only: group adjacent channels until each holds at least this many counts "
            "(like XSPEC 'setplot rebin'); 0 shows every channel"
        )
        self.min_counts.valueChanged.connect(lambda *_: self._redraw_current())
        form.addRow("group ≥ counts", self.min_counts)
        self.residual_combo = QComboBox()
        self.residual_combo.addItem("Poisson deviance", "deviance")
        self.residual_combo.addItem("(data − model)/√model", "pearson")
        self.residual_combo.setToolTip(
            "deviance residuals: sign(d−m)·sqrt(2(m−d+d ln(d/m))); their squares sum to the C-statistic"
        )
        self.residual_combo.currentIndexChanged.connect(lambda *_: self._redraw_current())
        form.addRow("residuals", self.residual_combo)
        self.follow = QCheckBox("select the pixel under a click")
        self.follow.setChecked(True)
        form.addRow(self.follow)
        col.addLayout(form)

        self.figure = Figure(figsize=(5, 4.2), constrained_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(320)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        col.addWidget(self.canvas, stretch=1)
        self.info = QLabel("Click a fitted pixel in the viewer to see its spectrum.")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(self.info.textInteractionFlags() | _selectable())
        col.addWidget(self.info)
        self._empty_axes()

    # ================================================================================ runs
    def add_run(self, label: str, result: Any, cube_name: str, binning: int = 1) -> None:
        """Offer a run that no fit dock holds (a FitResult from a script, or the MapSet of a maps FITS
        exported with its cubes), fitted on cube layer ``cube_name``; it becomes the current run."""
        if not hasattr(result, "model_total"):  # a MapSet: its arrays, checked here rather than on click
            result = fit_arrays_from_mapset(result)
        self._extra[label] = SpectrumRun(label, result, cube_name, int(binning))
        self.refresh_runs(select=label)

    def _fit_docks(self) -> list:
        from napari_sushi._napari.fit_dock import SushiFitDock

        docks: list = []
        window = getattr(self.viewer, "window", None)
        try:
            widgets = list(window.dock_widgets.values()) if window is not None else []
        except Exception:  # noqa: BLE001 (older napari: no dock_widgets)
            widgets = []
        for w in widgets:
            found = [w] if isinstance(w, SushiFitDock) else list(w.findChildren(SushiFitDock))
            docks.extend(d for d in found if d not in docks)
        return docks

    def available_runs(self) -> dict[str, SpectrumRun]:
        """Finished runs of the fit docks in this viewer, runs re-opened from exported maps files with
        their cubes, and those added by :meth:`add_run`."""
        runs: dict[str, SpectrumRun] = {}
        for dock in self._fit_docks():
            for label, rec in getattr(dock, "runs", {}).items():
                if rec.settings is not None:
                    binning = int(getattr(rec.settings, "binning", 1) or 1)
                else:  # a run loaded from a session: the binning its provenance recorded
                    binning = int(((rec.result.provenance or {}).get("settings") or {}).get("binning") or 1)
                runs[label] = SpectrumRun(label, rec.result, rec.cube_name, binning)
        runs.update(self._file_runs(set(runs) | set(self._extra)))
        runs.update(self._extra)
        return runs

    def _file_runs(self, taken: set) -> dict[str, SpectrumRun]:
        """Runs whose layers came from an exported maps file holding the model and residual cubes (a run
        label already taken gets the file name appended)."""
        found: dict[str, dict[str, Any]] = {}
        for ly in self.viewer.layers:
            md = ly.metadata
            path = md.get("maps_file")
            if not path or not md.get("napari_sushi_result"):
                continue
            rec = found.setdefault(
                str(path),
                {"label": md.get("run") or Path(path).stem, "cubes": set(), "provenance": md.get("provenance") or {}},
            )
            if md.get("kind") in ("model", "residual") and getattr(ly.data, "ndim", 0) == 3:
                rec["cubes"].add(md.get("key"))
        runs: dict[str, SpectrumRun] = {}
        for path, rec in found.items():
            if not {"model", "residual"} <= rec["cubes"]:
                continue
            arrays = self._file_arrays(path)
            if arrays is None:
                continue
            label = str(rec["label"])
            if label in taken or label in runs:
                label = f"{label} ({Path(path).name})"
            prov = rec["provenance"]
            cube = prov.get("cube") if isinstance(prov.get("cube"), dict) else {}
            settings = prov.get("settings") if isinstance(prov.get("settings"), dict) else {}
            cube_name = str(prov.get("cube_layer") or cube.get("name") or "")
            runs[label] = SpectrumRun(label, arrays, cube_name, max(int(settings.get("binning") or 1), 1), path)
        return runs

    def _file_arrays(self, path: str) -> Any:
        """The FitArrays of an exported maps file, read once per path and modification time (None, said
        once, when the file cannot give them)."""
        try:
            mtime: Optional[int] = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        hit = self._file_cache.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        try:
            arrays = fit_arrays_from_mapset(read_maps_fits(path))
        except (OSError, ValueError) as exc:
            arrays = None
            show_warning(f"napari-sushi: cannot show spectra of the run in {path}: {exc}")
        self._file_cache[path] = (mtime, arrays)
        return arrays

    def refresh_runs(self, select: Optional[str] = None) -> None:
        """Refill the run combo; keep the current run, or pick ``select`` / the newest new run."""
        old = set(self._runs)
        self._runs = self.available_runs()
        current = self.run_combo.currentText()
        new = [k for k in self._runs if k not in old]
        target = select or (new[-1] if new else current)
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for label in self._runs:
            self.run_combo.addItem(label)
        if target in self._runs:
            self.run_combo.setCurrentText(target)
        self.run_combo.blockSignals(False)
        if self.run_combo.currentText() != current or new:
            self._redraw_current()

    def _on_layers_changed(self, event: Any = None) -> None:
        layer = getattr(event, "value", None)
        md = getattr(layer, "metadata", {}) or {}
        if event is None or md.get("napari_sushi_result") or event.type == "removed":
            # the fit dock records the run right after adding its final layers: look after that
            QTimer.singleShot(0, self._refresh_if_alive)

    def _refresh_if_alive(self) -> None:
        try:
            self.refresh_runs()
        except RuntimeError:  # the dock's Qt widgets were deleted (viewer closing)
            pass

    def current_run(self) -> Optional[SpectrumRun]:
        return self._runs.get(self.run_combo.currentText())

    # ================================================================================ geometry
    def _cube_layer(self, run: SpectrumRun) -> Any:
        if run.cube_name in self.viewer.layers:
            layer = self.viewer.layers[run.cube_name]
            if L.is_cube_layer(layer) and (run.maps_file is None or _fits_grid(layer, run)):
                return layer
        return None

    def geometry(self, run: SpectrumRun) -> tuple[L.Geometry, Any, int]:
        """(Geometry of the run's maps, its cube layer or None, band offset) for mapping clicks."""
        res = run.result
        layer = self._cube_layer(run)
        if layer is not None:
            offset = L.band_offset(np.asarray(layer.metadata["energy_edges"], float), res.energy_edges)
            return L.Geometry.from_cube_layer(layer, run.binning, offset), layer, offset
        # the cube layer is gone or renamed (or a re-opened file's cube is not open): one of the run's maps
        for ly in self.viewer.layers:
            md = ly.metadata
            ours = md.get("maps_file") == run.maps_file if run.maps_file else md.get("run") == run.label
            if ours and md.get("napari_sushi_result") and getattr(ly.data, "ndim", 0) == 2:
                return L.Geometry.from_map_layer(ly), None, 0
        raise ValueError(
            f"run '{run.label}': neither its cube layer '{run.cube_name}' nor its maps are in the "
            "viewer, so a click cannot be placed on its grid."
        )

    # ================================================================================ events
    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        self.disconnect_viewer()
        super().closeEvent(event)

    def disconnect_viewer(self) -> None:
        """Stop following clicks and layer changes (the dock is closing)."""
        if self._on_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse)
        self.viewer.layers.events.inserted.disconnect(self._on_layers_changed)
        self.viewer.layers.events.removed.disconnect(self._on_layers_changed)

    def _on_mouse(self, viewer: Any, event: Any):
        """Click (press and release without dragging) selects the pixel; drags pan as usual."""
        try:
            follow = self.follow.isChecked()
        except RuntimeError:  # the Qt widget was deleted without closeEvent
            return
        if not follow or event.type != "mouse_press" or getattr(event, "button", 1) != 1:
            return
        if event.modifiers:
            return
        position = tuple(float(v) for v in event.position)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            self.select_world(position)

    def select_world(self, position: tuple) -> Optional[PixelSpectrum]:
        """Show the fitted pixel under a world position (what a click does); notifies on problems."""
        run = self.current_run()
        if run is None:
            show_info(_NO_RUN)
            return None
        try:
            y, x = self._pixel_under(run, tuple(position)[-2:])
        except (PixelError, ValueError) as exc:
            self.info.setText(str(exc))
            show_warning(f"napari-sushi: {exc}")
            return None
        self._world = (float(position[-2]), float(position[-1]))
        return self.show_pixel(y, x)

    def show_pixel(self, y: int, x: int) -> Optional[PixelSpectrum]:
        """Plot fitted-grid pixel ``(y, x)`` of the current run (and mark it); notifies on problems."""
        run = self.current_run()
        if run is None:
            show_info(_NO_RUN)
            return None
        try:
            g, layer, offset = self.geometry(run)
            counts = None if layer is None else np.asarray(layer.data)
            sp = pixel_spectrum(
                run.result,
                y,
                x,
                cube_counts=counts,
                binning=run.binning,
                band_offset=offset,
                residual_kind=str(self.residual_combo.currentData()),
                min_counts=float(self.min_counts.value()),
            )
        except (PixelError, ValueError) as exc:
            self.info.setText(str(exc))  # in full here; the notification may be cut
            show_warning(f"napari-sushi: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 (a notification, never a traceback in the viewer)
            msg = f"could not show pixel ({y}, {x}) of {run.label} ({type(exc).__name__}: {exc})."
            self.info.setText(msg)
            show_error(f"napari-sushi: {msg}")
            return None
        self.pixel = (y, x)
        self.spectrum = sp
        self._mark(g, y, x)
        self._plot(run.label, sp)
        return sp

    def _redraw_current(self) -> None:
        """Re-plot after a change of run or display option: same world position, the run's own grid."""
        run = self.current_run()
        if run is None or self._world is None:
            return
        try:
            y, x = self._pixel_under(run, self._world)
        except (PixelError, ValueError) as exc:
            self.info.setText(str(exc))
            return
        self.show_pixel(y, x)

    def _pixel_under(self, run: SpectrumRun, world_yx: tuple) -> tuple[int, int]:
        """The pixel of ``run``'s fitted grid under world ``(y, x)``; PixelError/ValueError say why not."""
        g, _, _ = self.geometry(run)
        return fit_pixel_at(world_yx, g.map_scale, g.map_translate, run.result.model_total.shape[1:])

    # ================================================================================ drawing
    def _mark(self, g: L.Geometry, y: int, x: int) -> None:
        """A hollow square the size of the fitted pixel on the shown pixel (kept out of the way)."""
        pos = np.array([[g.map_translate[0] + y * g.map_scale[0], g.map_translate[1] + x * g.map_scale[1]]])
        size = float(max(g.map_scale))
        active = self.viewer.layers.selection.active
        if MARKER_NAME in self.viewer.layers:
            marker = self.viewer.layers[MARKER_NAME]
            marker.data = pos
            marker.size = size
        else:
            marker = self.viewer.add_points(
                pos,
                name=MARKER_NAME,
                symbol="square",
                size=size,
                face_color="transparent",
                border_color="cyan",
                border_width=0.12,
                border_width_is_relative=True,
                metadata={"kind": "marker"},
            )
            if active is not None:  # keep the user's layer active so clicks keep doing what they did
                self.viewer.layers.selection.active = active
        marker.visible = True

    def _style(self, ax: Any) -> None:
        if getattr(self.viewer, "theme", "dark") != "dark":
            return
        ax.set_facecolor(_DARK["bg"])
        for s in ax.spines.values():
            s.set_color(_DARK["fg"])
        ax.tick_params(colors=_DARK["fg"], which="both")
        ax.xaxis.label.set_color(_DARK["fg"])
        ax.yaxis.label.set_color(_DARK["fg"])
        ax.title.set_color(_DARK["fg"])

    def _empty_axes(self) -> tuple[Any, Any]:
        self.figure.clear()
        dark = getattr(self.viewer, "theme", "dark") == "dark"
        self.figure.patch.set_facecolor(_DARK["bg"] if dark else "white")
        top, bottom = self.figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
        for ax in (top, bottom):
            self._style(ax)
        top.set_ylabel("counts / keV")
        bottom.set_ylabel("residual")
        bottom.set_xlabel("energy (keV)")
        return top, bottom

    def _plot(self, label: str, sp: PixelSpectrum) -> None:
        dark = getattr(self.viewer, "theme", "dark") == "dark"
        fg = _DARK["fg"] if dark else "black"
        top, bottom = self._empty_axes()
        xc, half = sp.energy_centres, 0.5 * sp.energy_widths
        art: dict[str, Any] = {"top": top, "bottom": bottom, "components": {}}
        art["data"] = top.errorbar(
            xc,
            sp.density(sp.counts),
            xerr=half,
            yerr=sp.density(sp.counts_error),
            fmt="o",
            ms=2.5,
            color=_DARK["data"] if dark else "black",
            elinewidth=0.8,
            label="data",
            zorder=3,
        )
        for i, (name, comp) in enumerate(sp.components.items()):
            art["components"][name] = top.stairs(
                sp.density(comp),
                sp.energy_edges,
                color=_COMPONENT_COLORS[i % len(_COMPONENT_COLORS)],
                lw=1.2,
                ls="--",
                label=name,
                baseline=None,
            )
        if sp.background is not None:
            art["background"] = top.stairs(
                sp.density(sp.background),
                sp.energy_edges,
                color="0.6",
                lw=1.0,
                ls=":",
                label="background",
                baseline=None,
            )
        art["total"] = top.stairs(
            sp.density(sp.model),
            sp.energy_edges,
            color=_DARK["total"] if dark else "C3",
            lw=1.6,
            label="total model",
            baseline=None,
        )
        top.set_yscale("log")
        positive = sp.density(sp.model)[sp.model > 0]
        if positive.size:
            lo = float(positive.min()) * 0.3
            hi = max(float(np.max(sp.density(sp.counts + sp.counts_error))), float(positive.max())) * 2.0
            top.set_ylim(lo, hi)
        grouping = f", grouped ≥ {sp.min_counts:g} counts" if sp.min_counts > 0 else ""
        top.set_title(f"{label} — pixel (y={sp.y}, x={sp.x}){grouping}", fontsize=9)
        leg = top.legend(fontsize=7, loc="best", frameon=False)
        for t in leg.get_texts():
            t.set_color(fg)
        r = sp.residuals
        # both residual kinds have unit variance when the model is right: unit error bars
        art["residual"] = bottom.errorbar(
            xc,
            r,
            xerr=half,
            yerr=np.ones_like(r),
            fmt="o",
            ms=2.5,
            color=_DARK["data"] if dark else "black",
            elinewidth=0.8,
        )
        bottom.axhline(0.0, color=_DARK["total"] if dark else "C3", lw=1.0)
        bottom.set_ylabel("deviance" if sp.residual_kind == "deviance" else "(d−m)/√m")
        self.artists = art
        self.canvas.draw_idle()
        text = sp.summary()
        run = self.current_run()
        edges = "" if run is None else run_edge_summary(run.result)
        if edges:
            text += f"\nthis run: {edges}"
        self.info.setText(text)


def _fits_grid(layer: Any, run: SpectrumRun) -> bool:
    """Whether a cube layer can be the data of a re-opened run: the run's grid is its binned grid and the
    run's channels are among its channels (a same-named other cube would only give a mismatch error)."""
    E, ny, nx = run.result.model_total.shape
    b = max(int(run.binning), 1)
    shape = getattr(layer.data, "shape", ())
    if len(shape) != 3 or shape[1] // b != ny or shape[2] // b != nx:
        return False
    full = np.asarray(layer.metadata.get("energy_edges"), dtype=float)
    sub = np.asarray(run.result.energy_edges, dtype=float)
    i = L.band_offset(full, sub)
    return i + E <= full.size - 1 and np.allclose(full[i : i + E + 1], sub, rtol=1e-6, atol=1e-9)


def run_edge_summary(result: Any) -> str:
    """The run's box-edge warning (FitResult or the arrays of an exported file; "" when none or unknown)."""
    from napari_sushi.core.solver.result import edge_summary

    boxes = getattr(result, "boxes", None)
    if boxes is None:
        boxes = (getattr(result, "provenance", None) or {}).get("boxes", {})
    try:
        return edge_summary(dict(result.params), dict(result.amplitudes), boxes or {})
    except (AttributeError, TypeError, ValueError):
        return ""


def _selectable() -> Any:
    from qtpy.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse
