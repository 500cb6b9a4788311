"""What a fit returns: physical maps with uncertainties, goodness of fit, model cubes, provenance."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.wcs import WCS


def unconstrained(sigma: np.ndarray | float, cap: float | None) -> np.ndarray:
    """True where a parameter's 1-sigma is (at least) its validity box's spread ``cap`` (width / sqrt(12)).

    There the pixel's own data constrain the parameter no better than the box does: a SUSHI map
    follows its regulariser and start, a per-pixel value is barely informative. ``cap`` comes from
    ``provenance["sigma_caps"]``; None (unknown) marks nothing.
    """
    s = np.asarray(sigma, dtype=float)
    if cap is None:
        return np.zeros(s.shape, dtype=bool)
    return np.isfinite(s) & (s >= (1.0 - 1e-4) * float(cap))


def edge_shares(
    params: dict[str, np.ndarray], amplitudes: dict[str, np.ndarray], boxes: dict
) -> dict[str, tuple[float, float]]:
    """Per parameter map with a box, the fractions of pixels at the lower and upper edge of the box.

    Only pixels where the parameter's component holds at least one expected count are counted, so
    a regulariser's fill-in where a component is absent does not raise an alarm.
    """
    out = {}
    for key, values in params.items():
        if key not in boxes:
            continue
        comp = next((c for c in sorted(amplitudes, key=len, reverse=True) if key.startswith(c + " ")), None)
        amp = None if comp is None else amplitudes[comp]
        use = np.isfinite(values) & (np.asarray(amp) >= 1.0 if amp is not None else True)
        if not np.any(use):
            continue
        low, high = on_box_edge(values, boxes[key])
        out[key] = (float(low[use].mean()), float(high[use].mean()))
    return out


def edge_summary(
    params: dict[str, np.ndarray], amplitudes: dict[str, np.ndarray], boxes: dict, threshold: float = 0.05
) -> str:
    """One line naming the maps with more than ``threshold`` of their pixels on a box edge ("" if none)."""
    parts = []
    for key, (lo, hi) in edge_shares(params, amplitudes, boxes).items():
        for share, side, edge in ((lo, "lower", 0), (hi, "upper", 1)):
            if share > threshold:
                parts.append(f"{key} {100 * share:.0f} % at its {side} edge {boxes[key][edge]:g}")
    if not parts:
        return ""
    return (
        "on the model's box edge: "
        + "; ".join(parts)
        + " (bounds, not measurements: train a model with a wider box for this source)"
    )


GOF_KEY = "goodness of fit"
MEASURED_MIN_COUNTS = 20.0  # a parameter is measured where its component has at least this many expected counts
EDGE_FRACTION = 1e-3  # a value within this fraction of the box width from an edge is "on the edge"


def on_box_edge(values: np.ndarray, box: tuple[float, float] | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean maps (at the lower edge, at the upper edge) of a parameter map for its validity box.

    A value pinned at an edge is where the model ran out of room: the data want a value outside the
    box the model was trained on (e.g. a photon index below its lowest value), so the number is a
    bound, not a measurement. Train a model with a wider box, or read such pixels as limits.
    """
    v = np.asarray(values, dtype=float)
    lo, hi = float(box[0]), float(box[1])
    tol = EDGE_FRACTION * (hi - lo)
    ok = np.isfinite(v)
    return ok & (v <= lo + tol), ok & (v >= hi - tol)


@dataclass
class FitMaps:
    """Maps named as :meth:`FitResult.all_maps` names them, sorted back by kind (e.g. from a FITS file)."""

    amplitudes: dict[str, np.ndarray]  # component -> map
    params: dict[str, np.ndarray]  # "<component> <parameter>" -> map
    sigmas: dict[str, np.ndarray]  # params' and "<component> amplitude" keys -> 1-sigma map
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]  # param key -> (lower, upper)
    gof: np.ndarray | None
    biases: dict[str, np.ndarray] = field(default_factory=dict)  # sigmas' keys -> bootstrap bias map
    measured: dict[str, np.ndarray] = field(default_factory=dict)  # params' keys -> bool "measured" mask


def measured_mask(
    values: np.ndarray,
    sigma: np.ndarray | None,
    cap: float | None,
    amplitude: np.ndarray | None,
    min_counts: float = MEASURED_MIN_COUNTS,
) -> np.ndarray:
    """Where a parameter map is a measurement rather than the regulariser's fill-in.

    True where the value is finite, its component holds at least ``min_counts`` expected counts, and
    its 1-sigma is below the validity box's spread (the rule of :func:`unconstrained`). Elsewhere the
    pixel's own data do not pin the value: the map shows what its neighbours and the start gave.
    """
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if amplitude is not None:
        ok &= np.nan_to_num(np.asarray(amplitude, dtype=float)) >= float(min_counts)
    if sigma is not None:
        ok &= ~unconstrained(sigma, cap)
    return ok


def split_maps(maps: dict[str, np.ndarray]) -> FitMaps:
    """The inverse of :meth:`FitResult.all_maps`: amplitudes, parameters, sigmas, intervals, biases, goodness of fit."""
    suffixes = (" sigma", " lower", " upper", " amplitude", " bias", " measured")
    params = {k: v for k, v in maps.items() if k != GOF_KEY and not k.endswith(suffixes)}
    return FitMaps(
        amplitudes={k[: -len(" amplitude")]: v for k, v in maps.items() if k.endswith(" amplitude")},
        params=params,
        sigmas={k[: -len(" sigma")]: v for k, v in maps.items() if k.endswith(" sigma")},
        intervals={
            k: (maps[f"{k} lower"], maps[f"{k} upper"]) for k in params if f"{k} lower" in maps and f"{k} upper" in maps
        },
        gof=maps.get(GOF_KEY),
        biases={k[: -len(" bias")]: v for k, v in maps.items() if k.endswith(" bias")},
        measured={k[: -len(" measured")]: np.asarray(v) > 0.5 for k, v in maps.items() if k.endswith(" measured")},
    )


@dataclass
class FitResult:
    """Result of a SUSHI fit or of the per-pixel fit (same fields for both).

    Map keys follow the layer names of the app:
      amplitudes: component -> (Y, X) expected counts of that component in the band
      params:     "<component> <parameter>" -> (Y, X) map in physical units
      sigmas:     same keys as params and amplitudes ("<component> amplitude") -> 1-sigma maps
                  (SUSHI: per-pixel Fisher / Cramer-Rao at the solution, ignores the regulariser, or
                  with ``FitSettings.uncertainty="bootstrap"`` the parametric bootstrap of the fit;
                  per-pixel fit: half-width of the profile-likelihood Delta C = 1 interval)
      intervals:  per-pixel fit only: "<component> <parameter>" -> (lower, upper) maps of that
                  interval (asymmetric 1-sigma bounds, truncated at the validity box)
      units:      key -> unit string (e.g. "keV", "km/s", "counts")
      biases:     SUSHI with ``uncertainty="bootstrap"`` only: sigmas' keys -> the parametric bootstrap's
                  bias map (mean of the refitted replicas - the solution; the regulariser's shrinkage
                  at the fitted maps), exported as "<key> bias"; the sigma maps then include it
                  (sqrt(spread^2 + bias^2))
    """

    method: str  # "sushi" or "pixelfit"
    amplitudes: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    sigmas: dict[str, np.ndarray]
    units: dict[str, str]
    gof: np.ndarray  # (Y, X) C-stat (or chi2) per degree of freedom
    gof_name: str  # "cstat/dof" or "chi2/dof"
    model_cubes: dict[str, np.ndarray]  # component -> (E, Y, X)
    model_total: np.ndarray  # (E, Y, X), background included
    residual: np.ndarray  # (E, Y, X) data - model
    energy_edges: np.ndarray
    cost_history: np.ndarray
    n_iter: int
    stop_reason: str  # "converged", "max_iter", "cancelled", ...
    wall_time: float
    device: str
    provenance: dict = field(default_factory=dict)  # settings, model hashes, package version
    wcs: WCS | None = None
    mask: np.ndarray | None = None
    intervals: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    biases: dict[str, np.ndarray] = field(default_factory=dict)

    # ------------------------------------------------------------------ views and export
    def all_maps(self) -> dict[str, np.ndarray]:
        """Every 2-D map by layer name: amplitudes, parameters, "<key> sigma", "<key> lower"/"<key> upper",
        "<key> bias" and the goodness of fit."""
        out: dict[str, np.ndarray] = {}
        for comp, amp in self.amplitudes.items():
            out[f"{comp} amplitude"] = amp
        out.update(self.params)
        for key, sig in self.sigmas.items():
            out[f"{key} sigma"] = sig
        for key, (lo, hi) in self.intervals.items():
            out[f"{key} lower"] = lo
            out[f"{key} upper"] = hi
        for key, b in self.biases.items():
            out[f"{key} bias"] = b
        for key, m in self.measured().items():
            out[f"{key} measured"] = m.astype(np.uint8)  # 1 = measured, 0 = the regulariser's fill-in
        out[GOF_KEY] = self.gof  # statistic named by gof_name (FITS keyword GOFNAME)
        return out

    def measured(self, min_counts: float = MEASURED_MIN_COUNTS) -> dict[str, np.ndarray]:
        """Per parameter map, where it is measured (:func:`measured_mask`: enough counts of its component,
        sigma below the box's spread)."""
        caps = (self.provenance or {}).get("sigma_caps", {})
        out = {}
        for key, values in self.params.items():
            if key not in caps:  # fixed parameters are not measured at all
                continue
            comp = next((c for c in sorted(self.amplitudes, key=len, reverse=True) if key.startswith(c + " ")), None)
            out[key] = measured_mask(
                values, self.sigmas.get(key), caps.get(key), None if comp is None else self.amplitudes[comp], min_counts
            )
        return out

    def unconstrained_share(self) -> dict[str, float]:
        """Per free parameter map, the fraction of fitted pixels that their own data leave free.

        That is, whose sigma is at least the validity box's spread (:func:`unconstrained`); for SUSHI
        those pixels' values come from the regulariser and the start, not from their data.
        """
        caps = (self.provenance or {}).get("sigma_caps", {})
        out = {}
        for key, values in self.params.items():
            fitted = np.isfinite(values)
            sig = self.sigmas.get(key)
            if key in caps and sig is not None and fitted.any():  # fixed parameters have no cap
                out[key] = float(unconstrained(sig, caps[key])[fitted].mean())
        return out

    def edge_shares(self) -> dict[str, tuple[float, float]]:
        """Per free parameter map, the fractions of fitted pixels at the lower and upper box edge
        (see :func:`edge_shares`)."""
        return edge_shares(self.params, self.amplitudes, (self.provenance or {}).get("boxes", {}))

    def edge_summary(self, threshold: float = 0.05) -> str:
        """One line naming the parameter maps with more than ``threshold`` of their pixels on a box edge."""
        return edge_summary(self.params, self.amplitudes, (self.provenance or {}).get("boxes", {}), threshold)

    def map_units(self) -> dict[str, str]:
        units = dict(self.units)
        for key in self.sigmas:
            units[f"{key} sigma"] = self.units.get(key, "")
        for key in self.intervals:
            units[f"{key} lower"] = units[f"{key} upper"] = self.units.get(key, "")
        for key in self.biases:
            units[f"{key} bias"] = self.units.get(key, "")
        for key in self.measured():
            units[f"{key} measured"] = ""
        units[GOF_KEY] = ""
        return units

    def to_fits(self, path: str | os.PathLike, include_cubes: bool = False, overwrite: bool = False) -> Path:
        """Write the maps (and optionally model/residual cubes) to multi-extension FITS, atomically.

        Each map is an IMAGE extension named by its layer name with BUNIT and the cube's celestial
        WCS; the provenance (settings, model identities, versions, stop reason) goes to the header
        and the PROVENANCE table.
        """
        from napari_sushi.core.io.maps import write_maps_fits

        header = {
            "METHOD": self.method,
            "NITER": int(self.n_iter),
            "STOPREAS": self.stop_reason,
            "WALLTIME": float(self.wall_time),
            "DEVICE": self.device,
            "GOFNAME": self.gof_name,
            "provenance": self.provenance,
            "cost_history": [float(c) for c in self.cost_history],
        }
        cubes = None
        if include_cubes:
            cubes = {f"{c} model": m for c, m in self.model_cubes.items()}
            cubes["model"] = self.model_total
            cubes["residual"] = self.residual
        return write_maps_fits(
            path,
            self.all_maps(),
            wcs=self.wcs,
            units=self.map_units(),
            header=header,
            cubes=cubes,
            energy_edges=self.energy_edges if include_cubes else None,
            overwrite=overwrite,
        )


def result_from_mapset(ms) -> FitResult:
    """A :class:`FitResult` rebuilt from a maps FITS written by :meth:`FitResult.to_fits` with its cubes
    (a :class:`~napari_sushi.core.io.maps.MapSet`), so a saved run can be shown, inspected pixel by pixel
    and used as a warm start again. Raises ValueError when the file is not such an export."""
    from napari_sushi.core.io.maps import fit_export

    exp = fit_export(ms)
    if exp is None:
        raise ValueError("this maps file was not written by a fit (no METHOD/NITER); it cannot become a run.")
    if "model" not in ms.cubes or "residual" not in ms.cubes or ms.energy_edges is None:
        raise ValueError("this maps file has no model and residual cubes; export the run with its cubes.")
    fm = split_maps(ms.maps)
    gof = fm.gof if fm.gof is not None else np.full(ms.cubes["model"].shape[1:], np.nan)
    history = ms.provenance.get("cost_history") or []
    units = {k: ms.units.get(k, "") for k in ms.maps}
    units.update({f"{c} amplitude": ms.units.get(f"{c} amplitude", "counts") for c in fm.amplitudes})
    return FitResult(
        method=exp.method,
        amplitudes={k: np.asarray(v, np.float32) for k, v in fm.amplitudes.items()},
        params={k: np.asarray(v, np.float32) for k, v in fm.params.items()},
        sigmas={k: np.asarray(v, np.float32) for k, v in fm.sigmas.items()},
        units=units,
        gof=np.asarray(gof, np.float32),
        gof_name=exp.gof_name or "cstat/dof",
        model_cubes={k[: -len(" model")]: v for k, v in ms.cubes.items() if k.endswith(" model") and k != "model"},
        model_total=np.asarray(ms.cubes["model"], np.float32),
        residual=np.asarray(ms.cubes["residual"], np.float32),
        energy_edges=np.asarray(ms.energy_edges, float),
        cost_history=np.asarray(history, float),
        n_iter=exp.n_iter,
        stop_reason=exp.stop_reason,
        wall_time=float(exp.wall_time or 0.0),
        device=exp.device,
        provenance=dict(exp.provenance),
        wcs=ms.wcs,
        mask=np.isfinite(gof),
        intervals=dict(fm.intervals),
        biases=dict(fm.biases),
    )
