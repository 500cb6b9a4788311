"""Result layers of a fit run: names, geometry, colormaps, and their life cycle in the viewer.

Every run gets a short label ("S1", "P2") that ends all its layer names ("thermal kT [keV] · S1"), so a
second run sits beside the first instead of overwriting it and the parameter, which tells layers
apart, comes first and stays readable in the layer list. Maps share the cube layer's spatial scale,
translate and units (corrected for spatial binning); cubes also its energy axis (corrected for the
band selection). Value units and provenance travel in ``layer.metadata`` with the keys the reader
and writer use (``unit``, ``wcs``, ``wcs_header``, ``provenance``; see :mod:`.layers`), plus
``run``, ``key`` and ``kind``. No science here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_sushi._napari.layers import cube_from_layer

AMPLITUDE_UNIT = "counts"
DIVERGING = "RdBu_r"  # blue = negative (approaching), red = positive (receding)


# ---------------------------------------------------------------------------------- naming
MAX_NAME = 24  # characters the layer list shows unelided at its default width (bold 9 pt)
SEP = " · "


def run_label(method: str, index: int, kmad: float | None = None) -> str:
    """Short label of a run, the suffix of all its layer names: ``S<n>`` (SUSHI) or ``P<n>`` (per-pixel fit).

    Short so that the part that tells layers apart, the parameter, stays readable in the layer list;
    :func:`run_title` is the full description for combos and summaries."""
    return f"{'S' if method == 'sushi' else 'P'}{index}"


def run_title(label: str, method: str, kmad: float | None = None) -> str:
    """``S1 (SUSHI, kmad 5)`` / ``P2 (per-pixel fit)``."""
    if method == "sushi":
        return f"{label} (SUSHI" + (f", kmad {kmad:g})" if kmad is not None else ")")
    return f"{label} (per-pixel fit)"


def map_layer_name(run: str, key: str, unit: str = "", sigma: bool = False) -> str:
    """``<component> <parameter> [unit] · <run>`` (σ maps: ``... σ [unit] · <run>``); the parameter comes
    first, and when the name would not fit the layer list the unit is left out (it is in the metadata)
    and "amplitude" shortened to "amp."."""
    base = key + (" σ" if sigma else "")
    if unit and not key.endswith(" amplitude"):
        with_unit = f"{base} [{unit}]{SEP}{run}"
        if len(with_unit) <= MAX_NAME:
            return with_unit
    name = f"{base}{SEP}{run}"
    if len(name) > MAX_NAME and " amplitude" in base:
        name = f"{base.replace(' amplitude', ' amp.')}{SEP}{run}"
    return name


def unmeasured_layer_name(run: str, key: str, short: str | None = None) -> str:
    """``<parameter> unmeasured · <run>``: the overlay dimming a map where it is not a measurement."""
    return f"{short or key} unmeasured{SEP}{run}"


def gof_layer_name(run: str, gof_name: str) -> str:
    return f"{gof_name}{SEP}{run}"


def cube_layer_name(run: str, what: str) -> str:
    """``model · <run>`` / ``residual · <run>`` / ``<component> model · <run>``."""
    return f"{what}{SEP}{run}"


def run_of(name: str) -> str:
    """The run label at the end of a result layer's name ("" when there is none)."""
    return name.rsplit(SEP, 1)[1] if SEP in name else ""


# ---------------------------------------------------------------------------------- styling
def is_velocity(key: str, unit: str) -> bool:
    """Velocity-like maps get a diverging colormap centred on zero."""
    u = unit.replace(" ", "").lower()
    return u in {"km/s", "kms-1", "km.s-1", "m/s"} or "velocity" in key.lower()


def colormap_for(key: str, unit: str, kind: str) -> str:
    """A colormap an astronomer would pick for this kind of map."""
    if kind == "sigma":
        return "gray"
    if kind == "unmeasured":
        return "gray"
    if kind == "gof":
        return "viridis"
    if kind == "residual":
        return DIVERGING
    if kind in {"model", "amplitude"}:
        return "inferno"
    if is_velocity(key, unit):
        return DIVERGING
    if unit.lower() == "kev":
        return "magma"
    return "viridis"


def contrast_for(data: np.ndarray, key: str, unit: str, kind: str) -> tuple[float, float]:
    """Robust display range; symmetric about zero for velocity and residual maps."""
    a = np.asarray(data, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return (0.0, 1.0)
    if kind == "residual" or (kind == "parameter" and is_velocity(key, unit)):
        m = float(np.percentile(np.abs(a), 99.5))
        m = m if m > 0 else 1.0
        return (-m, m)
    lo, hi = (float(v) for v in np.percentile(a, [0.5, 99.5]))
    if kind in {"amplitude", "sigma", "model"}:
        lo = min(lo, 0.0)
    if not hi > lo:
        hi = lo + (abs(lo) if lo else 1.0)
    return (lo, hi)


def unmeasured_colormap() -> Any:
    """Transparent where a map is measured (0), dark grey where it is not (1): the 'unmeasured' overlay."""
    from napari.utils.colormaps import Colormap

    return Colormap([[0, 0, 0, 0], [0.12, 0.12, 0.14, 0.7]], name="unmeasured", interpolation="zero")


UNMEASURED_HELP = (
    "grey: the regulariser's fill-in (too few counts of this component, or sigma at the box's spread); hide to see all"
)


def short_keys(keys: list[str]) -> dict[str, str]:
    """The parameter name alone where no other component has it (``kT``), else the full key."""
    params = [k.split(" ", 1)[-1] for k in keys]
    return {k: p if params.count(p) == 1 else k for k, p in zip(keys, params)}


def truth_layer_for(viewer: Any, key: str) -> Any:
    """A truth map (metadata ``truth``) of the same quantity as result map ``key``, or None."""
    comp, _, param = key.partition(" ")
    cands = [
        ly
        for ly in viewer.layers
        if ly.metadata.get("truth") and not ly.metadata.get("napari_sushi_result") and getattr(ly.data, "ndim", 0) == 2
    ]
    for ly in cands:
        n = ly.name.lower()
        if comp.lower() in n and param.lower() in n:
            return ly
    for ly in cands:
        if param and param.lower() in ly.name.lower():
            return ly
    return None


def match_truth(viewer: Any, layer: Any, key: str, unit: str) -> None:
    """Give a result map and the truth map of the same quantity one colormap and one range (the union)."""
    truth = truth_layer_for(viewer, key)
    if truth is None:
        return
    lo = min(truth.contrast_limits[0], layer.contrast_limits[0])
    hi = max(truth.contrast_limits[1], layer.contrast_limits[1])
    if is_velocity(key, unit):
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    truth.colormap = layer.colormap.name
    layer.contrast_limits = truth.contrast_limits = (lo, hi)
    layer.metadata["auto_contrast"] = (lo, hi)


# ---------------------------------------------------------------------------------- cubes
def is_cube_layer(layer: Any) -> bool:
    """An Image layer holding an (energy, y, x) counts cube with its energy grid (not a result)."""
    from napari.layers import Image

    md = layer.metadata
    return (
        isinstance(layer, Image)
        and getattr(layer.data, "ndim", 0) == 3
        and not getattr(layer, "rgb", False)
        and md.get("energy_edges") is not None
        and not md.get("napari_sushi_result", False)
    )


def layer_attributes(layer: Any) -> dict[str, Any]:
    """The attributes dict :func:`.layers.cube_from_layer` expects, from a live layer."""
    return {
        "metadata": layer.metadata,
        "name": layer.name,
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
        "units": tuple(str(u) for u in layer.units),
    }


def hypercube_of(layer: Any):
    """The HyperCube behind a cube layer (raises CubeError saying what to do)."""
    return cube_from_layer(layer.data, layer_attributes(layer))


def band_offset(full_edges: np.ndarray, sub_edges: np.ndarray) -> int:
    """Index of the first channel of ``sub_edges`` within ``full_edges`` (0 when not found)."""
    full = np.asarray(full_edges, dtype=float)
    e0 = float(np.asarray(sub_edges, dtype=float)[0])
    i = int(np.argmin(np.abs(full - e0)))
    return i if abs(full[i] - e0) <= 1e-6 * max(1.0, abs(e0)) else 0


# ---------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """World placement of result layers derived from the cube layer and the fit's binning/band."""

    map_scale: tuple[float, float]
    map_translate: tuple[float, float]
    cube_scale: tuple[float, float, float]
    cube_translate: tuple[float, float, float]
    map_units: tuple[str, str] | None = None
    cube_units: tuple[str, str, str] | None = None
    axis_labels: tuple[str, str, str] = ("energy", "y", "x")
    wcs: Any = None  # celestial WCS of the (binned) result maps

    @classmethod
    def from_cube_layer(cls, layer: Any, binning: int = 1, band_offset: int = 0, wcs: Any = None) -> "Geometry":
        """Maps binned ``binning`` x ``binning``; cubes starting ``band_offset`` channels into the
        cube layer's energy axis."""
        scale = np.asarray(layer.scale, dtype=float)
        translate = np.asarray(layer.translate, dtype=float)
        b = max(int(binning), 1)
        s2 = scale[-2:] * b
        t2 = translate[-2:] + scale[-2:] * (b - 1) / 2.0  # binned pixel i centres on b*i + (b-1)/2
        se, te = float(scale[-3]), float(translate[-3] + band_offset * scale[-3])
        units = tuple(str(u) for u in layer.units)
        labels = tuple(layer.axis_labels)[-3:]
        return cls(
            map_scale=(float(s2[0]), float(s2[1])),
            map_translate=(float(t2[0]), float(t2[1])),
            cube_scale=(se, float(s2[0]), float(s2[1])),
            cube_translate=(te, float(t2[0]), float(t2[1])),
            map_units=units[-2:] if len(units) >= 2 else None,
            cube_units=units[-3:] if len(units) >= 3 else None,
            axis_labels=labels if len(labels) == 3 else ("energy", "y", "x"),
            wcs=wcs,
        )

    @classmethod
    def from_map_layer(cls, layer: Any) -> "Geometry":
        """The placement of a run's maps read back from one of its 2-D map layers (energy axis unknown:
        unit scale at 0)."""
        s = tuple(float(v) for v in layer.scale[-2:])
        t = tuple(float(v) for v in layer.translate[-2:])
        return cls(map_scale=s, map_translate=t, cube_scale=(1.0, *s), cube_translate=(0.0, *t))


# ---------------------------------------------------------------------------------- live set
@dataclass
class RunLayers:
    """The layers of one run in one viewer: created lazily, updated in place, removable as a set."""

    viewer: Any
    run: str
    geometry: Geometry
    units: dict[str, str]
    provenance: dict = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # layers this run created, in creation order

    def _metadata(self, key: str, kind: str, unit: str, extra: dict | None = None) -> dict:
        wcs = self.geometry.wcs
        md = {
            "kind": kind,
            "run": self.run,
            "key": key,
            "unit": unit,
            "wcs": wcs,
            "wcs_header": None if wcs is None else wcs.to_header_string(relax=True),
            "provenance": self.provenance,
            "napari_sushi_result": True,
        }
        if extra:
            md.update(extra)
        return md

    def layer(self, name: str) -> Any:
        return self.viewer.layers[name] if name in self.names and name in self.viewer.layers else None

    def _set(
        self,
        name: str,
        data: np.ndarray,
        key: str,
        kind: str,
        unit: str,
        visible: bool = True,
        is_cube: bool = False,
        extra: dict | None = None,
    ) -> Any:
        """Create the layer or replace its data in place."""
        data = np.asarray(data, dtype=np.float32)
        layer = self.layer(name)
        if layer is not None:
            auto = layer.metadata.get("auto_contrast")
            user_set = auto is not None and not np.allclose(layer.contrast_limits, auto)
            layer.data = data
            layer.metadata.update(self._metadata(key, kind, unit, extra))
            if not user_set:  # keep a range the user chose while the fit runs
                layer.contrast_limits = contrast_for(data, key, unit, kind)
            layer.metadata["auto_contrast"] = tuple(layer.contrast_limits)
            return layer
        g = self.geometry
        kwargs: dict[str, Any] = {}
        units = g.cube_units if is_cube else g.map_units
        if units is not None:
            kwargs["units"] = units
        kwargs["axis_labels"] = g.axis_labels if is_cube else g.axis_labels[-2:]
        layer = self.viewer.add_image(
            data,
            name=name,
            scale=g.cube_scale if is_cube else g.map_scale,
            translate=g.cube_translate if is_cube else g.map_translate,
            colormap=colormap_for(key, unit, kind),
            contrast_limits=contrast_for(data, key, unit, kind),
            visible=visible,
            metadata=self._metadata(key, kind, unit, extra),
            **kwargs,
        )
        layer.metadata["auto_contrast"] = tuple(layer.contrast_limits)
        self.names.append(layer.name)
        return layer

    def update_maps(self, maps: dict[str, np.ndarray]) -> None:
        """Live update from a progress snapshot: maps keyed like FitResult ("<comp> amplitude", ...)."""
        for key, arr in maps.items():
            arr = np.asarray(arr)
            if arr.ndim != 2:
                continue
            amp = key.endswith(" amplitude")
            unit = self.units.get(key, AMPLITUDE_UNIT if amp else "")
            self._set(
                map_layer_name(self.run, key, unit),
                arr,
                key,
                "amplitude" if amp else "parameter",
                unit,
                extra={"live": True},
            )

    def finalize(self, result: Any) -> list[str]:
        """The complete set from a FitResult, arranged to be read: the parameter maps visible and on top
        (each with its 'unmeasured' overlay), then the amplitudes; σ, goodness of fit, model and residual
        hidden below. Parameter maps share colormap and range with a truth map of the same quantity."""
        units = dict(self.units)
        units.update(getattr(result, "units", {}) or {})
        self.units = units
        done = {"live": False, "stop_reason": result.stop_reason, "n_iter": int(result.n_iter)}
        cube_extra = dict(done, energy_edges=np.asarray(result.energy_edges, dtype=float))
        for what, cube, kind in (("model", result.model_total, "model"), ("residual", result.residual, "residual")):
            if cube is not None:
                self._set(
                    cube_layer_name(self.run, what),
                    cube,
                    what,
                    kind,
                    AMPLITUDE_UNIT,
                    visible=False,
                    is_cube=True,
                    extra=cube_extra,
                )
        if result.gof is not None:
            self._set(
                gof_layer_name(self.run, result.gof_name),
                result.gof,
                "gof",
                "gof",
                result.gof_name,
                visible=False,
                extra=done,
            )
        for key, arr in result.sigmas.items():
            amp = key.endswith(" amplitude") or key in result.amplitudes
            if key in result.amplitudes:
                key = f"{key} amplitude"
            unit = units.get(key, AMPLITUDE_UNIT if amp else "")
            self._set(
                map_layer_name(self.run, key, unit, sigma=True), arr, key, "sigma", unit, visible=False, extra=done
            )
        for comp, arr in result.amplitudes.items():
            key = f"{comp} amplitude"
            unit = units.get(key, units.get(comp, AMPLITUDE_UNIT))
            self._set(map_layer_name(self.run, key, unit), arr, key, "amplitude", unit, extra=done)
        measured = result.measured() if hasattr(result, "measured") else {}
        params = list(result.params.items())
        shorts = short_keys([k for k, _ in params])
        top: list[Any] = []
        for key, arr in params:
            unit = units.get(key, "")
            mask = measured.get(key)
            layer = self._set(
                map_layer_name(self.run, key, unit), arr, key, "parameter", unit, extra=dict(done, measured=mask)
            )
            match_truth(self.viewer, layer, key, unit)
            if mask is not None and not mask.all():  # the overlay just above its map
                top.append(self._set_overlay(unmeasured_layer_name(self.run, key, shorts[key]), ~mask, key, done))
            top.append(layer)
        self._raise(top)
        return list(self.names)

    def _set_overlay(self, name: str, unmeasured: np.ndarray, key: str, extra: dict) -> Any:
        """A mask layer that greys out the pixels of a map that are not measurements (toggle: its eye)."""
        layer = self._set(
            name, unmeasured.astype(np.float32), key, "unmeasured", "", extra=dict(extra, help=UNMEASURED_HELP)
        )
        layer.colormap = unmeasured_colormap()
        layer.contrast_limits = (0.0, 1.0)
        layer.blending = "translucent"
        layer.metadata["auto_contrast"] = (0.0, 1.0)
        return layer

    def _raise(self, layers: list[Any]) -> None:
        """Put ``layers`` on top of the layer list in this order (first = highest) and select the first."""
        lst = self.viewer.layers
        for layer in reversed(layers):
            lst.move(lst.index(layer), len(lst))
        params = [ly for ly in layers if ly.metadata.get("kind") == "parameter"]
        if params:
            lst.selection.active = params[0]

    def remove(self) -> None:
        """Remove every layer this run created (a cancelled or failed run leaves nothing behind)."""
        for name in reversed(self.names):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
        self.names.clear()
