"""Per-pixel 1-sigma uncertainties (Fisher / Cramer-Rao) and the goodness-of-fit map.

The Fisher matrix of each pixel's own variables (amplitudes and free parameters) is evaluated at the
solution and inverted; the square roots of its diagonal, converted to physical units, are the
1-sigma maps. This ignores the spatial regulariser (it is the per-pixel information only), so for a
SUSHI fit it describes what one pixel's data alone constrain. The matrix is the FULL one over all
of the pixel's variables (amplitudes and parameters of every component), so degeneracies between
components (e.g. thermal continuum vs power law) inflate the sigmas. It is the unconstrained Fisher
matrix even for a variable sitting at a bound (a parameter at its box edge, an amplitude at 0): the
bound is not used to shrink anything. Directions the data do not constrain (e.g. the shape of a
component with zero amplitude) get a large variance, not zero as a pseudo-inverse would give, and a
parameter uncertainty is capped at the standard deviation of a uniform distribution over its
validity box (width / sqrt(12)): the posterior spread when the data say nothing beyond the box.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from napari_sushi.core.solver.engine import gradient_fisher
from napari_sushi.core.solver.problem import Problem


def covariance(F: torch.Tensor, rcond: float = 1e-10) -> torch.Tensor:
    """Inverse of symmetric positive semi-definite matrices (n, D, D), in float64, singular-safe.

    Directions the data do not constrain get a *large* variance, never a zero one: a variable whose
    Fisher diagonal is (numerically) zero, relative to the same variable in the other pixels (e.g. the parameter of a component with zero amplitude) is
    taken out of the matrix and given infinite variance, so it cannot shrink the others' variances;
    the remaining eigenvalues are floored at ``rcond`` times the largest (a nearly flat direction
    gets the variance 1 / (rcond * max) instead of being dropped, as a pseudo-inverse would do).
    """
    Fd = F.double()
    Fd = 0.5 * (Fd + Fd.transpose(1, 2))
    diag = torch.diagonal(Fd, dim1=1, dim2=2)
    # scale to unit diagonal so the cutoffs are unit-free (amplitudes and parameters differ a lot)
    # "dead": no information at all, relative to the same variable's largest information over pixels
    dead = diag <= 1e-12 * diag.amax(dim=0, keepdim=True).clamp(min=1e-300)
    d = torch.where(dead, torch.ones_like(diag), diag.clamp(min=1e-300).sqrt())
    live = (~dead).double()
    Fs = Fd / (d[:, :, None] * d[:, None, :]) * live[:, :, None] * live[:, None, :]
    Fs = Fs + torch.diag_embed(1.0 - live)
    ev, V = torch.linalg.eigh(Fs)
    ev = torch.maximum(ev, rcond * ev.amax(dim=1, keepdim=True).clamp(min=1e-300))
    cov_s = (V / ev[:, None, :]) @ V.transpose(1, 2)
    cov = cov_s / (d[:, :, None] * d[:, None, :])
    cov = cov * live[:, :, None] * live[:, None, :]
    return cov + torch.diag_embed(torch.where(dead, torch.full_like(diag, math.inf), torch.zeros_like(diag)))


def fisher_sigmas(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> dict[str, np.ndarray]:
    """1-sigma maps keyed "<component> amplitude" and "<component> <parameter>" (physical units)."""
    _, F, _ = gradient_fisher(problem, A, U)
    cov = covariance(F)
    var = torch.diagonal(cov, dim1=1, dim2=2).clamp(min=0.0)  # may be inf (unconstrained)
    sig = var.sqrt().cpu().numpy()  # (N, D)
    ny, nx = problem.shape
    nc = problem.n_comp
    out: dict[str, np.ndarray] = {}
    for c, spec in enumerate(problem.comps):
        out[f"{spec.name} amplitude"] = sig[:, c].reshape(ny, nx)
        for p, name in enumerate(spec.model.param_names):
            kind, k = spec.sources[p]
            if kind == "free":
                fp = problem.free[k]
                s = np.minimum(sig[:, nc + k] * fp.width, fp.width / math.sqrt(12.0))
                out[f"{spec.name} {name}"] = s.reshape(ny, nx)
            else:
                out[f"{spec.name} {name}"] = np.zeros((ny, nx))
    return out


def gof_map(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> tuple[np.ndarray, str]:
    """C-stat (2 sum(m - X + X log(X/m)), ~chi2) or chi2 per degree of freedom, per pixel."""
    out = []
    with torch.no_grad():
        for s in range(0, problem.n_pix, problem.chunk):
            sl = slice(s, min(s + problem.chunk, problem.n_pix))
            out.append(problem.deviance(problem.model(A, U, sl), sl))
    dev = torch.cat(out).double().cpu().numpy()
    n_vars = problem.n_comp + problem.n_free
    dof = max(problem.X.shape[1] - n_vars, 1)
    name = "cstat/dof" if problem.sigma2 is None else "chi2/dof"
    return (dev / dof).reshape(problem.shape), name
