"""Per-pixel 1-sigma uncertainties (Fisher / Cramer-Rao) and the goodness-of-fit map.

The Fisher matrix of each pixel's own variables (amplitudes and free parameters) is evaluated at the
solution and inverted; the square roots of its diagonal, converted to physical units, are the
1-sigma maps. This ignores the spatial regulariser (it is the per-pixel information only), so for a
SUSHI fit it describes what one pixel's data alone constrain. Singular pixels (e.g. a component with
zero amplitude, whose shape is then unconstrained) are handled by a pseudo-inverse, and a parameter
uncertainty is capped at the standard deviation of a uniform distribution over its validity box
(width / sqrt(12)): the data cannot make us less certain than the box itself.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from napari_sushi.core.solver.engine import gradient_fisher
from napari_sushi.core.solver.problem import Problem


def covariance(F: torch.Tensor, rcond: float = 1e-10) -> torch.Tensor:
    """Pseudo-inverse of symmetric positive semi-definite matrices (n, D, D), in float64."""
    Fd = F.double()
    Fd = 0.5 * (Fd + Fd.transpose(1, 2))
    # scale to unit diagonal so the eigen-cutoff is unit-free (amplitudes and parameters differ a lot)
    d = torch.diagonal(Fd, dim1=1, dim2=2).clamp(min=1e-300).sqrt()
    Fs = Fd / (d[:, :, None] * d[:, None, :])
    ev, V = torch.linalg.eigh(Fs)
    keep = ev > rcond * ev.amax(dim=1, keepdim=True).clamp(min=1e-300)
    inv_ev = torch.where(keep, 1.0 / ev.clamp(min=1e-300), torch.zeros_like(ev))
    cov_s = (V * inv_ev[:, None, :]) @ V.transpose(1, 2)
    return cov_s / (d[:, :, None] * d[:, None, :])


def fisher_sigmas(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> dict[str, np.ndarray]:
    """1-sigma maps keyed "<component> amplitude" and "<component> <parameter>" (physical units)."""
    _, F, _ = gradient_fisher(problem, A, U)
    cov = covariance(F)
    var = torch.diagonal(cov, dim1=1, dim2=2).clamp(min=0.0)
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
