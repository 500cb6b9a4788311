"""Scoring fitted maps against simulated truth: the one rule every benchmark and test uses.

Per physical parameter, over the pixels where its component holds at least 20 % of the expected
counts (:func:`selected`):
- RMSE and bias of the fitted map;
- **skill** = RMSE / RMSE of a constant map at the truth's median over the same pixels (1 = no
  better than knowing nothing about the map's structure; a skill above 1 is worse than that);
- **slope** = least-squares slope of fitted on true (1 = the map's contrast is kept, 0 = flattened);
- coverage = share of pixels with |error| <= sigma, and the share of sigmas at the box's spread,
  over pixels where the component holds >= 50 expected counts.
Per component amplitude, its **share** of the fitted counts, A_c / sum_c A_c, against the truth's,
over all pixels with counts, with the same RMSE / skill / slope.
"""

from __future__ import annotations

from typing import cast

import numpy as np

SELECTION = "truth: component amplitude >= 0.2 x total expected counts, and total expected counts > 0"
SHARE_SELECTION = "pixels with at least one count"
BRIGHT_COUNTS = 50.0  # expected counts of a component above which its parameter should be constrained


def components_of(truth: dict[str, np.ndarray]) -> list[str]:
    return [k[: -len(" amplitude")] for k in truth if k.endswith(" amplitude")]


def parameter_keys(truth: dict[str, np.ndarray]) -> list[str]:
    comps = components_of(truth)
    return [k for k in truth if not k.endswith(" amplitude") and k.split(" ", 1)[0] in comps]


def total_expected(truth: dict[str, np.ndarray]) -> np.ndarray:
    # sum() of arrays is typed ``ndarray | Literal[0]``; a truth holds at least one component
    return cast(np.ndarray, sum(truth[f"{c} amplitude"] for c in components_of(truth)))


def selected(truth: dict[str, np.ndarray], key: str) -> np.ndarray:
    """(Y, X) bool: the pixels parameter ``key`` is scored on (``SELECTION``)."""
    tot = total_expected(truth)
    return (truth[f"{key.split(' ', 1)[0]} amplitude"] >= 0.2 * tot) & (tot > 0)


def _slope(fit: np.ndarray, true: np.ndarray) -> float:
    v = float(np.var(true))
    return float(np.mean((fit - fit.mean()) * (true - true.mean())) / v) if v > 0 else float("nan")


def error_stats(fit: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """RMSE, bias, the constant map's RMSE, skill and slope of ``fit`` against ``true`` (1-D arrays)."""
    ok = np.isfinite(fit)
    fit, true = fit[ok], true[ok]
    if fit.size == 0:
        return {
            "rmse": float("nan"),
            "bias": float("nan"),
            "rmse_constant": float("nan"),
            "skill": float("nan"),
            "slope": float("nan"),
            "n_pixels": 0,
        }
    e = fit - true
    rmse = float(np.sqrt(np.mean(e**2)))
    const = float(np.sqrt(np.mean((np.median(true) - true) ** 2)))
    return {
        "rmse": rmse,
        "bias": float(np.mean(e)),
        "rmse_constant": const,
        "skill": rmse / const if const > 0 else float("nan"),
        "slope": _slope(fit, true),
        "n_pixels": int(fit.size),
    }


def score_maps(
    truth: dict[str, np.ndarray],
    params: dict[str, np.ndarray],
    amplitudes: dict[str, np.ndarray],
    counts: np.ndarray | None = None,
    sigmas: dict[str, np.ndarray] | None = None,
    sigma_caps: dict[str, float] | None = None,
) -> dict[str, dict]:
    """Scores of a fit's maps against truth, keyed by parameter key and ``"<component> share"``.

    ``counts`` (E, Y, X) selects the pixels with counts for the shares (default: expected counts > 0);
    ``sigmas`` adds the coverage figures; ``sigma_caps`` (key -> box spread, as in a FitResult's
    provenance) the share of sigmas at the box's spread among pixels whose component holds
    >= ``BRIGHT_COUNTS`` expected counts.
    """
    out: dict[str, dict] = {}
    for k in parameter_keys(truth):
        sel = selected(truth, k)
        r = error_stats(np.asarray(params[k], float)[sel], truth[k][sel])
        if sigmas is not None and k in sigmas:
            err = np.abs(np.asarray(params[k], float) - truth[k])[sel]
            sig = np.asarray(sigmas[k], float)[sel]
            r["coverage"] = float(np.mean(err <= sig)) if sig.size else float("nan")
            bright = truth[f"{k.split(' ', 1)[0]} amplitude"][sel] >= BRIGHT_COUNTS
            r["n_bright"] = int(bright.sum())
            if sigma_caps and k in sigma_caps and bright.any():
                r["frac_sigma_at_cap_bright"] = float(np.mean(sig[bright] >= 0.999 * sigma_caps[k]))
        out[k] = r
    lit = (counts.sum(axis=0) > 0) if counts is not None else total_expected(truth) > 0
    tot_true = total_expected(truth)
    tot_fit = sum(np.asarray(amplitudes[c], float) for c in components_of(truth))
    for c in components_of(truth):
        true_share = np.where(tot_true > 0, truth[f"{c} amplitude"] / np.maximum(tot_true, 1e-300), 0.0)
        fit_share = np.where(tot_fit > 0, np.asarray(amplitudes[c], float) / np.maximum(tot_fit, 1e-300), 0.5)
        r = error_stats(fit_share[lit], true_share[lit])
        r["counts_true"] = float(truth[f"{c} amplitude"].sum())
        r["counts_fit"] = float(np.nansum(amplitudes[c]))
        out[f"{c} share"] = r
    return out


def score_result(sim, result) -> dict[str, dict]:
    """:func:`score_maps` of a FitResult against a SimulatedRemnant (counts, sigmas and caps included)."""
    return score_maps(
        sim.truth, result.params, result.amplitudes, sim.cube.counts, result.sigmas, result.provenance.get("sigma_caps")
    )


__all__ = ["SELECTION", "error_stats", "score_maps", "score_result", "selected"]
