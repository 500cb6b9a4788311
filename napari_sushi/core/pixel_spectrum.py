"""One pixel's spectrum against its fit: data, total and per-component model, residuals, parameters.

What an astronomer checks after a fit ("click any pixel to check its spectrum"), computed without Qt
so the dock, scripts and tests share the numbers:

- :func:`pixel_spectrum` takes a :class:`~napari_sushi.core.solver.result.FitResult` (or the maps and
  cubes of an exported FITS, via :func:`fit_arrays_from_mapset`) and a pixel ``(y, x)`` of the
  **fitted grid** (after spatial binning, within the fitted band) and returns a :class:`PixelSpectrum`.
- :meth:`PixelSpectrum.grouped` groups adjacent channels until each group holds at least
  ``min_counts`` observed counts (like XSPEC's ``setplot rebin``), for display only: counts and model
  are summed, residuals recomputed on the groups.
- :func:`fit_pixel_at` maps a position in world coordinates (a click in the viewer) to the fitted
  grid, given the world scale and translate of the result maps (``Geometry.map_scale`` and
  ``map_translate`` in the app).

Residuals are the signed **Poisson deviance residuals**
``sign(d - m) sqrt(2 (m - d + d ln(d/m)))``: their squares sum to the pixel's C-statistic (the
statistic the fit minimises and reports as ``cstat/dof``), they are defined at zero counts, and they
are close to unit-variance normal when the model is right. ``residual_kind="pearson"`` gives
``(d - m) / sqrt(m)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_sushi.core.solver.result import on_box_edge, split_maps
from napari_sushi.core.solver.result import unconstrained as sigma_unconstrained

RESIDUAL_KINDS = ("deviance", "pearson")


class PixelError(ValueError):
    """The requested pixel cannot be shown (outside the fitted image, or not fitted); says why."""


# ---------------------------------------------------------------------------------- inputs
@dataclass
class FitArrays:
    """The arrays of a fit that :func:`pixel_spectrum` reads (from a FitResult or an exported FITS).

    Cubes are (E, Y, X) on the fitted grid; maps are (Y, X). ``free_count`` is the number of fitted
    variables per pixel (amplitudes plus free parameter maps), used for the degrees of freedom.
    """

    energy_edges: np.ndarray
    model_total: np.ndarray
    residual: np.ndarray  # data - model_total
    model_cubes: dict[str, np.ndarray]
    amplitudes: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    sigmas: dict[str, np.ndarray]
    units: dict[str, str]
    gof: np.ndarray | None
    gof_name: str
    mask: np.ndarray | None = None
    intervals: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    free_count: int | None = None
    sigma_caps: dict[str, float] = field(default_factory=dict)  # key -> box spread (see ParameterValue)
    boxes: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> validity box (low, high)


def _fit_provenance(provenance: Any) -> dict:
    """The fit's provenance dict: a FitResult's own, or the one nested in an exported file's header."""
    if not isinstance(provenance, dict):
        return {}
    inner = provenance.get("provenance")
    return inner if isinstance(inner, dict) else provenance


def _sigma_caps(provenance: Any) -> dict[str, float]:
    caps = _fit_provenance(provenance).get("sigma_caps")
    return {str(k): float(v) for k, v in caps.items()} if isinstance(caps, dict) else {}


def _boxes(provenance: Any) -> dict[str, tuple[float, float]]:
    boxes = _fit_provenance(provenance).get("boxes")
    if not isinstance(boxes, dict):
        return {}
    return {
        str(k): (float(v[0]), float(v[1])) for k, v in boxes.items() if isinstance(v, (list, tuple)) and len(v) == 2
    }


def _free_count(
    params: dict[str, np.ndarray], sigmas: dict[str, np.ndarray], n_comp: int, links: Any, mask: np.ndarray | None
) -> int:
    """Amplitudes + free parameter maps: fixed parameters have an all-zero σ map; linked ones count once."""
    n = 0
    for key in params:
        s = sigmas.get(key)
        if s is None:
            continue
        v = np.asarray(s, float)
        if mask is not None and np.shape(mask) == v.shape:
            v = v[np.asarray(mask, bool)]
        if np.any(np.nan_to_num(v) != 0):
            n += 1
    for group in links or []:
        n -= max(len(group) - 1, 0)
    return n_comp + max(n, 0)


def fit_arrays(result: Any) -> FitArrays:
    """The arrays of a :class:`~napari_sushi.core.solver.result.FitResult` (no copies)."""
    if result.model_total is None or result.residual is None:
        raise ValueError("this fit result has no model/residual cubes, so no pixel spectrum can be shown.")
    links = (getattr(result, "provenance", None) or {}).get("links")
    return FitArrays(
        energy_edges=np.asarray(result.energy_edges, float),
        model_total=result.model_total,
        residual=result.residual,
        model_cubes=dict(result.model_cubes or {}),
        amplitudes=dict(result.amplitudes),
        params=dict(result.params),
        sigmas=dict(result.sigmas),
        units=dict(result.units or {}),
        gof=result.gof,
        gof_name=str(result.gof_name),
        mask=result.mask,
        intervals=dict(getattr(result, "intervals", {}) or {}),
        free_count=_free_count(result.params, result.sigmas, len(result.amplitudes), links, result.mask),
        sigma_caps=_sigma_caps(getattr(result, "provenance", None)),
        boxes=_boxes(getattr(result, "provenance", None)),
    )


def fit_arrays_from_mapset(ms: Any) -> FitArrays:
    """The arrays of a maps FITS written with ``include_cubes=True`` (a :class:`~napari_sushi.core.io.maps.MapSet`).

    Needs the ``model`` and ``residual`` cubes and the energy bounds; component model cubes are the
    ``"<component> model"`` extensions. Pixels whose goodness of fit is NaN count as not fitted.
    """
    if "model" not in ms.cubes or "residual" not in ms.cubes or ms.energy_edges is None:
        raise ValueError(
            "this maps file has no model/residual cubes; export the run with 'include cubes' to inspect spectra."
        )
    comps = {k[: -len(" model")]: v for k, v in ms.cubes.items() if k.endswith(" model") and k != "model"}
    fm = split_maps(ms.maps)
    amplitudes, params, sigmas, intervals, gof = fm.amplitudes, fm.params, fm.sigmas, fm.intervals, fm.gof
    mask = None if gof is None else np.isfinite(gof)
    gof_name = str(ms.header.get("GOFNAME", "cstat/dof"))
    links = _fit_provenance(ms.provenance).get("links")
    return FitArrays(
        energy_edges=np.asarray(ms.energy_edges, float),
        model_total=ms.cubes["model"],
        residual=ms.cubes["residual"],
        model_cubes=comps,
        amplitudes=amplitudes,
        params=params,
        sigmas=sigmas,
        units=dict(ms.units),
        gof=gof,
        gof_name=gof_name,
        mask=mask,
        intervals=intervals,
        free_count=_free_count(params, sigmas, len(amplitudes), links if isinstance(links, list) else None, mask),
        sigma_caps=_sigma_caps(ms.provenance),
        boxes=_boxes(ms.provenance),
    )


# ---------------------------------------------------------------------------------- output
@dataclass(frozen=True)
class ParameterValue:
    """A fitted value with its 1σ and, when the fit gives one, the asymmetric interval (lower, upper)."""

    name: str
    value: float
    sigma: float | None
    unit: str = ""
    lower: float | None = None
    upper: float | None = None
    unconstrained: bool = False  # sigma is the validity box's spread: the pixel's data do not constrain it
    at_edge: str = ""  # "lower"/"upper" when the value sits on that edge of the model's validity box

    def text(self) -> str:
        """``kT = 2.31 ± 0.12 keV [2.20, 2.45]`` (3 significant digits on σ), or ``... (unconstrained)``."""
        s = f"{self.name} = {_fmt(self.value)}"
        if self.sigma is not None and np.isfinite(self.sigma):
            s += f" ± {_fmt(self.sigma)}" if self.sigma > 0 else " (fixed)"
        if self.unit:
            s += f" {self.unit}"
        if self.lower is not None and self.upper is not None:
            s += f" [{_fmt(self.lower)}, {_fmt(self.upper)}]"
        if self.at_edge:
            s += f" (at the {self.at_edge} edge of the model's box: a bound, not a measurement)"
        if self.unconstrained:
            s += " (unconstrained: σ is the spread of the validity box)"
        return s


def _fmt(v: float) -> str:
    return f"{v:.4g}" if np.isfinite(v) else "nan"


def deviance_residuals(counts: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Signed Poisson deviance residuals ``sign(d - m) sqrt(2 (m - d + d ln(d/m)))`` (0 where d = m)."""
    d = np.asarray(counts, float)
    m = np.maximum(np.asarray(model, float), 1e-300)
    dlog = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0) / m), 0.0)
    dev = np.maximum(2.0 * (m - d + dlog), 0.0)
    return np.sign(d - m) * np.sqrt(dev)


def pearson_residuals(counts: np.ndarray, model: np.ndarray) -> np.ndarray:
    """``(d - m) / sqrt(m)`` (model floored at 1e-300 so empty model bins stay finite)."""
    d = np.asarray(counts, float)
    m = np.maximum(np.asarray(model, float), 1e-300)
    return (d - m) / np.sqrt(m)


def _check_residual_kind(kind: str) -> str:
    if kind not in RESIDUAL_KINDS:
        raise ValueError(f"residual kind must be one of {RESIDUAL_KINDS}; got {kind!r}.")
    return kind


def residuals(counts: np.ndarray, model: np.ndarray, kind: str = "deviance") -> np.ndarray:
    if _check_residual_kind(kind) == "deviance":
        return deviance_residuals(counts, model)
    return pearson_residuals(counts, model)


def group_min_counts(counts: np.ndarray, min_counts: float) -> np.ndarray:
    """Start index of each group of adjacent channels holding >= ``min_counts`` counts.

    Channels are added left to right until the group reaches ``min_counts``; a short last group is
    merged into the previous one (so every group but possibly a single all-channel group qualifies).
    ``min_counts <= 0`` keeps every channel.
    """
    c = np.asarray(counts, float)
    n = c.size
    if min_counts <= 0 or n == 0:
        return np.arange(n)
    starts = [0]
    acc = 0.0
    for i in range(n):
        acc += c[i]
        if acc >= min_counts and i + 1 < n:
            starts.append(i + 1)
            acc = 0.0
    if len(starts) > 1 and c[starts[-1] :].sum() < min_counts:
        starts.pop()
    return np.asarray(starts, dtype=int)


@dataclass(frozen=True)
class PixelSpectrum:
    """One pixel of the fitted grid: observed counts, model, residuals and fitted values.

    All spectra are counts per channel (or per group after :meth:`grouped`) on ``energy_edges``;
    ``density`` divides by the width for plots in counts/keV. ``background`` is the total model minus
    the components (None when the fit had no background).
    """

    y: int
    x: int
    energy_edges: np.ndarray
    counts: np.ndarray
    model: np.ndarray
    components: dict[str, np.ndarray]
    background: np.ndarray | None
    residual_kind: str
    params: list[ParameterValue]
    gof: float | None
    gof_name: str
    cstat: float  # 2 sum(m - d + d ln(d/m)) over the pixel's channels (ungrouped)
    dof: int | None
    min_counts: float = 0.0

    # ------------------------------------------------------------------ derived arrays
    @property
    def energy_centres(self) -> np.ndarray:
        return 0.5 * (self.energy_edges[:-1] + self.energy_edges[1:])

    @property
    def energy_widths(self) -> np.ndarray:
        return np.diff(self.energy_edges)

    @property
    def counts_error(self) -> np.ndarray:
        """1σ of the observed counts for error bars: sqrt(N), and 1 for an empty bin."""
        return np.sqrt(np.maximum(self.counts, 1.0))

    @property
    def residuals(self) -> np.ndarray:
        return residuals(self.counts, self.model, self.residual_kind)

    def density(self, values: np.ndarray) -> np.ndarray:
        """Per-channel values divided by the channel widths (counts/keV)."""
        return np.asarray(values, float) / self.energy_widths

    # ------------------------------------------------------------------ display helpers
    def grouped(self, min_counts: float) -> "PixelSpectrum":
        """Channels grouped to >= ``min_counts`` observed counts each (display only; sums are conserved).

        ``cstat``, ``dof`` and ``gof`` stay those of the fit (ungrouped channels).
        """
        starts = group_min_counts(self.counts, float(min_counts))
        if starts.size == self.counts.size:
            return replace(self, min_counts=float(min_counts))

        def g(a: np.ndarray) -> np.ndarray:
            return np.add.reduceat(np.asarray(a, float), starts)

        edges = np.append(self.energy_edges[starts], self.energy_edges[-1])
        return replace(
            self,
            energy_edges=edges,
            counts=g(self.counts),
            model=g(self.model),
            components={k: g(v) for k, v in self.components.items()},
            background=None if self.background is None else g(self.background),
            min_counts=float(min_counts),
        )

    def with_residual_kind(self, kind: str) -> "PixelSpectrum":
        return replace(self, residual_kind=_check_residual_kind(kind))

    def summary(self) -> str:
        """One line per parameter and the fit statistic, for the dock's text line."""
        lines = [p.text() for p in self.params]
        stat = f"pixel (y={self.y}, x={self.x}): C = {self.cstat:.2f}"
        if self.dof:
            stat += f" / {self.dof} dof = {self.cstat / self.dof:.3f}"
        if self.gof is not None and np.isfinite(self.gof):
            stat += f"  (fit {self.gof_name} {self.gof:.3f})"
        lines.append(stat)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- main entry
def check_pixel(shape: tuple[int, int], y: int, x: int, mask: np.ndarray | None = None) -> None:
    """Raise :class:`PixelError` when ``(y, x)`` is outside the (Y, X) grid or outside the fit mask."""
    ny, nx = int(shape[0]), int(shape[1])
    if not (0 <= y < ny and 0 <= x < nx):
        raise PixelError(f"pixel (y={y}, x={x}) is outside the fitted image ({ny} x {nx} pixels); click on the cube.")
    if mask is not None and not bool(np.asarray(mask)[y, x]):
        raise PixelError(f"pixel (y={y}, x={x}) was not fitted (outside the fit's mask or region).")


def observed_counts(
    cube_counts: np.ndarray, y: int, x: int, binning: int = 1, band_offset: int = 0, n_energy: int | None = None
) -> np.ndarray:
    """Counts of fitted pixel ``(y, x)`` from the unbinned full cube (E0, Y0, X0): the ``binning`` x
    ``binning`` block, channels ``band_offset`` .. ``band_offset + n_energy``."""
    b = max(int(binning), 1)
    c = np.asarray(cube_counts)
    e1 = c.shape[0] if n_energy is None else band_offset + int(n_energy)
    if e1 > c.shape[0]:
        raise ValueError(f"the cube has {c.shape[0]} channels; the fit needs {e1} from channel {band_offset}.")
    block = c[band_offset:e1, y * b : (y + 1) * b, x * b : (x + 1) * b]
    if block.shape[1:] != (b, b):
        raise PixelError(f"pixel (y={y}, x={x}) with binning {b} lies beyond the cube's edge.")
    return block.reshape(block.shape[0], -1).sum(axis=1).astype(float)


def pixel_spectrum(
    result: Any,
    y: int,
    x: int,
    cube_counts: np.ndarray | None = None,
    binning: int = 1,
    band_offset: int = 0,
    residual_kind: str = "deviance",
    min_counts: float = 0.0,
) -> PixelSpectrum:
    """The spectrum of fitted pixel ``(y, x)`` with its model, residuals, parameters and fit statistic.

    ``result``: a FitResult, a :class:`FitArrays`, or a MapSet of an exported FITS with cubes.
    ``cube_counts``: optionally the unbinned (E0, Y0, X0) counts the fit was run on, with the fit's
    spatial ``binning`` and ``band_offset`` (first fitted channel); the observed counts are then
    summed from it and checked against ``model + residual`` (a mismatch means the cube is not the one
    that was fitted). Without it the counts are ``model + residual`` of the result.
    ``min_counts``: group channels for display (see :meth:`PixelSpectrum.grouped`).
    """
    fa = _as_fit_arrays(result)
    _check_residual_kind(residual_kind)
    y, x = int(y), int(x)
    E, ny, nx = fa.model_total.shape
    check_pixel((ny, nx), y, x, fa.mask)
    model = np.asarray(fa.model_total[:, y, x], float)
    from_result = model + np.asarray(fa.residual[:, y, x], float)
    if cube_counts is not None:
        counts = observed_counts(cube_counts, y, x, binning, band_offset, E)
        if not np.allclose(counts, from_result, rtol=1e-4, atol=1e-2):
            raise ValueError(
                "the cube's counts at this pixel differ from the fit's data (model + residual): the cube layer "
                "is not the one this run fitted, or the binning/band do not match."
            )
    else:
        # model + residual carries float32 rounding (4.9999998 for 5 counts); counts are integers, and
        # grouping by min_counts must not depend on that rounding (it moved a group boundary)
        rounded = np.rint(from_result)
        counts = rounded if np.allclose(from_result, rounded, rtol=0.0, atol=1e-3) else from_result
    comps = {k: np.asarray(v[:, y, x], float) for k, v in fa.model_cubes.items()}
    background = None
    if comps:
        rest = model - np.sum(list(comps.values()), axis=0)
        if np.any(np.abs(rest) > 1e-5 * max(1.0, float(np.abs(model).max()))):
            background = rest

    params: list[ParameterValue] = []
    for comp, amp in fa.amplitudes.items():
        key = f"{comp} amplitude"
        sig = fa.sigmas.get(key, fa.sigmas.get(comp))
        params.append(
            ParameterValue(
                key, float(amp[y, x]), None if sig is None else float(sig[y, x]), fa.units.get(key, "counts")
            )
        )
    for key, arr in fa.params.items():
        sig = fa.sigmas.get(key)
        lo_hi = fa.intervals.get(key)
        sv = None if sig is None else float(sig[y, x])
        cap = fa.sigma_caps.get(key)
        edge = ""
        if key in fa.boxes:
            low, high = on_box_edge(np.asarray(arr[y, x]), fa.boxes[key])
            edge = "lower" if bool(low) else "upper" if bool(high) else ""
        params.append(
            ParameterValue(
                key,
                float(arr[y, x]),
                sv,
                fa.units.get(key, ""),
                None if lo_hi is None else float(lo_hi[0][y, x]),
                None if lo_hi is None else float(lo_hi[1][y, x]),
                unconstrained=bool(sv is not None and sigma_unconstrained(sv, cap)),
                at_edge=edge,
            )
        )
    cstat = float(np.sum(deviance_residuals(counts, model) ** 2))
    dof = None if fa.free_count is None else max(E - int(fa.free_count), 1)
    gof = None if fa.gof is None else float(fa.gof[y, x])
    spec = PixelSpectrum(
        y=y,
        x=x,
        energy_edges=np.asarray(fa.energy_edges, float),
        counts=counts,
        model=model,
        components=comps,
        background=background,
        residual_kind=residual_kind,
        params=params,
        gof=gof,
        gof_name=fa.gof_name,
        cstat=cstat,
        dof=dof,
    )
    return spec.grouped(min_counts) if min_counts > 0 else spec


def _as_fit_arrays(result: Any) -> FitArrays:
    if isinstance(result, FitArrays):
        return result
    if hasattr(result, "cubes") and hasattr(result, "maps"):
        return fit_arrays_from_mapset(result)
    return fit_arrays(result)


def fit_pixel_at(
    world_yx: tuple[float, float],
    map_scale: tuple[float, float],
    map_translate: tuple[float, float],
    shape: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The fitted-grid pixel ``(y, x)`` under a world position (e.g. a click), from the result maps'
    world scale and translate (pixel i is centred on ``translate + i * scale``).

    Raises :class:`PixelError` when ``shape`` is given and the position falls outside it.
    """
    w = np.asarray(world_yx, float)[-2:]
    s = np.asarray(map_scale, float)
    t = np.asarray(map_translate, float)
    if not np.all(np.isfinite(w)):
        raise PixelError("the click has no position on the image.")
    idx = np.floor((w - t) / s + 0.5).astype(int)
    y, x = int(idx[0]), int(idx[1])
    if shape is not None:
        check_pixel(shape, y, x)
    return y, x
