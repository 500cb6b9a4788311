"""Fit one spectral model to one spectrum (Poisson profile likelihood, damped Fisher scoring).

Used to check that a model's parameters are recoverable (tests, benchmark) and to compare the two
ways of fitting with an IAE (through its theta -> lambda map, or in lambda space with a read-out).
With a unit-sum model ``A * s(theta)``, the Poisson maximum-likelihood amplitude is the total
count, so the shape is fitted alone by minimising ``KL(p || s(theta))`` with ``p = y / sum(y)``
(the Poisson deviance up to a constant and the factor sum(y)). Levenberg-Marquardt-damped Fisher
scoring with the model's Jacobian (P <= a few parameters) converges in a few steps, from a small
grid of starting points in the box; the best end point wins.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import numpy as np
import torch

from napari_sushi.core.spectral.base import SpectralModel
from napari_sushi.core.spectral.training import default_scales


def _kl(s: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return (p * (torch.log(p.clamp_min(1e-300)) - torch.log(s.clamp_min(1e-300)))).sum(-1)


def _jacobian_log(spec: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, h: float = 1e-6):
    """Jacobian (C, D) of log spec at x by central differences, all 2D+1 points in one batched call."""
    D = x.numel()
    E = torch.eye(D, dtype=x.dtype) * h
    pts = torch.cat([x[None], x[None] + E, x[None] - E])
    with torch.no_grad():
        L = torch.log(spec(pts).clamp_min(1e-300))
    return ((L[1 : D + 1] - L[D + 1 :]) / (2 * h)).T, torch.exp(L[0])


@torch.no_grad()
def _scoring(
    spec: Callable[[torch.Tensor], torch.Tensor],
    p: torch.Tensor,
    x0: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor],
    max_iter: int = 100,
) -> tuple[torch.Tensor, float]:
    """Minimise KL(p || spec(x)) over x (D,) by damped Fisher scoring; ``spec`` maps (m, D) -> (m, C).
    Returns (x, KL)."""
    x = project(x0.clone())
    f = float(_kl(spec(x[None])[0], p))
    lam = 1e-3
    for _ in range(max_iter):
        J, s = _jacobian_log(spec, x)
        g = -(p[:, None] * J).sum(0)
        F = J.T @ (s[:, None] * J)
        improved = False
        for _ in range(12):
            A = F + lam * torch.diag(torch.diag(F).clamp_min(1e-30))
            try:
                step = torch.linalg.solve(A, -g)
            except RuntimeError:
                lam *= 10
                continue
            xn = project(x + step)
            fn = float(_kl(spec(xn[None])[0], p))
            if np.isfinite(fn) and fn <= f:
                done = f - fn <= 1e-15 + 1e-12 * abs(f)
                x, f, lam, improved = xn, fn, max(lam / 5, 1e-9), True
                break
            lam *= 8
        if not improved or done:
            break
    return x, f


def fit_spectrum(model: SpectralModel, counts: np.ndarray, starts_per_axis: int = 3, max_iter: int = 100) -> np.ndarray:
    """Best-fit physical parameters (P,) of ``model`` for one spectrum of counts (C,)."""
    model = copy.deepcopy(model).double().eval()  # float64 throughout: smooth likelihood
    y = torch.as_tensor(np.asarray(counts, float), dtype=torch.float64)
    p = y / y.sum()
    b = torch.as_tensor(model.bounds, dtype=torch.float64)
    logax = torch.tensor([s == "log" for s in default_scales(model.meta)])  # the training axes
    lo = torch.where(logax, torch.log(b[:, 0]), b[:, 0])
    hi = torch.where(logax, torch.log(b[:, 1]), b[:, 1])

    def theta_of(u: torch.Tensor) -> torch.Tensor:
        t = lo + (hi - lo) * u
        # exp only where the axis is logarithmic (exp of a velocity would overflow and poison gradients)
        return torch.where(logax, torch.exp(torch.where(logax, t, torch.zeros_like(t))), t)

    def spec(u: torch.Tensor) -> torch.Tensor:  # (m, P) unit coordinates -> (m, C)
        return model.spectrum(theta_of(u))

    best, best_f = None, np.inf
    for start in itertools.product(np.linspace(0.15, 0.85, starts_per_axis), repeat=model.n_params):
        u, f = _scoring(spec, p, torch.tensor(start, dtype=torch.float64), lambda z: z.clamp(0.0, 1.0), max_iter)
        if f < best_f:
            best, best_f = u, f
    if best is None:
        raise RuntimeError("the fit failed from every starting point (non-finite likelihood)")
    return theta_of(best).detach().numpy()


def fit_spectrum_lambda(model, counts: np.ndarray, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """IAE fit in lambda space: start from the encoded spectrum, optimise lambda, read theta out.

    Returns (theta (P,), lambda (A,)).
    """
    model = copy.deepcopy(model).double().eval()
    y = torch.as_tensor(np.asarray(counts, float), dtype=torch.float64)
    p = y / y.sum()
    with torch.no_grad():
        lam0 = model.lambda_from_spectrum(y[None])[0]

    # optimise the first A-1 weights; the last one is 1 - sum (the barycentre constraint)
    def full(z: torch.Tensor) -> torch.Tensor:  # (m, A-1) -> (m, A)
        return torch.cat([z, 1.0 - z.sum(1, keepdim=True)], dim=1)

    z, _ = _scoring(lambda z: model.spectrum_from_lambda(full(z)), p, lam0[:-1], lambda z: z, max_iter)
    lam = full(z[None]).detach()
    with torch.no_grad():
        theta = model.theta_from_lambda(lam)[0].numpy()
    lam = lam[0]
    return theta, lam.numpy()
