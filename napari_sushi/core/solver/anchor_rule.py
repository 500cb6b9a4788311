"""The default ("auto") anchor of each map, and the level a coupled map's start is shrunk to.

SUSHI's objective holds each map to a reference where the data are weak (:class:`objective.Penalty`):
"start" (the starlet planes of the departure from the coarse start), "coarse" (the start's coarse
plane only; the map's own detail planes are penalised) or "free" (no level at all). Which one suits a
map depends on how the map is coupled to the pixel's other variables, which the Fisher matrix says:

- A map nearly independent of the others (the thermal line-of-sight velocity: a line shift no
  continuum can mimic) is denoised well by the coarse fit's thresholding iteration, and its
  thresholded start keeps sharp structure (jet-like sectors) that the fit then refines: "start".
- A map in a degenerate valley with others (temperature, photon index and the components' shares:
  a hotter plasma and a steeper power law trade counts) is not: the thresholding iteration smooths
  each map on its own with a per-pixel step, and the coupled maps slide along the valley. Measured on
  the morphology zoo's binned cubes (zoo3/zoo1/zoo4 at 1x, 4x4 bins, from the global scan): the
  thresholded coarse fit ended 660-1030 ABOVE the per-pixel fit in C-statistic (290-570 above its
  own start), with the power-law index biased +0.39..+0.65 and kT +0.41..+0.65 keV over the power law's pixels, the power law
  holding 1.18-1.66x its true counts, while the per-pixel fit from the same scan was unbiased
  (index +0.02..+0.09, kT -0.09..+0.08 keV); the final maps inherit the start's bias through the
  anchor. So such a map starts from the per-pixel fit of the binned cube, shrunk towards its
  level by empirical Bayes (:func:`shrink_to_level`), and only its large scales are anchored: "coarse".

The coupling of map k is its variance inflation factor ``(F^-1)_kk F_kk`` (marginal over conditional
variance) at the coarse problem's start, median over pixels with counts. Measured on six zoo cases
(0.1x-3x): velocity 1.05-1.07, shares 5.4-6.8, kT 14-27, index 14-29; :data:`COUPLED` = 2 separates them.
"""

from __future__ import annotations

import math

import torch

from napari_sushi.core.solver.engine import gradient_fisher
from napari_sushi.core.solver.problem import Problem
from napari_sushi.core.solver.uncertainty import covariance

COUPLED = 2.0  # a map whose median variance inflation factor exceeds this is "coupled" (module docstring)
EB_ITERATIONS = 50  # fixed-point iterations of the prior variance in empirical_bayes


def counted(problem: Problem) -> torch.Tensor:
    """(N,) bool: pixels that are fitted and hold net counts (where a pixel's own estimate means something)."""
    tot = problem.X.sum(dim=1)
    if problem.bkg is not None:
        tot = tot - problem.bkg.sum(dim=1)
    return (tot > 0) & (problem.w > 0)


def coupling(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """(K,) median over counted pixels of each free map's variance inflation factor at (A, U).

    ``(F^-1)_kk F_kk``: 1 when the map's estimate does not depend on the pixel's other variables,
    large when they trade off against it. Pixels where the map carries no information (infinite
    variance) are left out; a map with none anywhere gets 1 (nothing to couple).
    """
    _, F, _ = gradient_fisher(problem, A, U)
    cov = covariance(F)
    na = problem.n_amp
    Fd = torch.diagonal(F.double(), dim1=1, dim2=2)[:, na:]
    vif = torch.diagonal(cov, dim1=1, dim2=2)[:, na:] * Fd
    ok = counted(problem)[:, None] & torch.isfinite(vif) & (Fd > 0)
    out = torch.ones(problem.n_free, dtype=torch.float64)
    for k in range(problem.n_free):
        v = vif[ok[:, k], k]
        if v.numel():
            out[k] = float(v.median())
    return out


def auto_modes(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> dict[str, str]:
    """Anchor per free map (keyed by its first "<component>.<parameter>" key, shares "<component>.share"):
    "coarse" for a coupled map, "start" otherwise (module docstring)."""
    vif = coupling(problem, A, U)
    return {fp.keys[0]: ("coarse" if float(vif[k]) > COUPLED else "start") for k, fp in enumerate(problem.free)}


def shrink_to_level(problem: Problem, A: torch.Tensor, U: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """U with the maps ``rows`` shrunk towards their level by empirical Bayes (a copy; other rows as given).

    Each pixel's estimate gets its Fisher variance from the pixel's full Fisher matrix at (A, U) (capped
    at the box's 1/12, the spread when the data say nothing), then :func:`empirical_bayes`; pixels
    without counts take the level. Why not the coarse fit's thresholding: see the module docstring.
    """
    if not rows:
        return U
    _, F, _ = gradient_fisher(problem, A, U)
    var = torch.diagonal(covariance(F), dim1=1, dim2=2)[:, problem.n_amp :]  # (N, K) in box units
    ok = counted(problem)
    out = U.clone()
    for k in rows:
        s2 = var[:, k].nan_to_num(nan=math.inf).clamp(max=1.0 / 12.0)
        if bool(ok.any()):
            out[k] = empirical_bayes(U[k].double(), s2, ok)[0].clamp(0.0, 1.0).to(U.dtype)
    return out


def empirical_bayes(u: torch.Tensor, s2: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """(shrunk estimates, level m, spread tau^2) of estimates ``u`` with noise variances ``s2`` (N,).

    The model: u_p = m + (the pixel's departure, variance tau^2) + (noise, variance s_p^2). m is the
    median of the valid estimates (robust to the outliers a box edge makes), tau^2 its maximum-likelihood
    value given m (fixed-point iteration, at least 1e-6), and each pixel's posterior mean is
    ``m + tau^2 / (tau^2 + s_p^2) (u_p - m)``: a well measured pixel keeps its value, a noisy one moves
    to the level. Invalid pixels (and pixels whose estimate or variance is not finite) get m; with no
    valid pixel at all the estimates are returned unchanged (level and spread NaN).
    """
    valid = valid & torch.isfinite(u) & torch.isfinite(s2)
    if not bool(valid.any()):  # nothing measured: the estimates stay as they are
        return u.clone(), math.nan, math.nan
    uv, sv = u[valid], s2[valid]
    m = uv.median()
    r = (uv - m) ** 2
    tau2 = torch.tensor(0.01, dtype=u.dtype, device=u.device)
    for _ in range(EB_ITERATIONS):
        w2 = 1.0 / (tau2 + sv) ** 2
        tau2 = ((w2 * (r - sv)).sum() / w2.sum()).clamp(min=1e-6)
    shrunk = torch.where(valid, m + tau2 / (tau2 + s2) * (u - m), m)
    return shrunk, float(m), float(tau2)
