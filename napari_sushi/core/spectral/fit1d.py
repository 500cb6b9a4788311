"""Fit one spectral model to one spectrum (Poisson profile likelihood, L-BFGS from a few starts).

Used to check that a model's parameters are recoverable (tests, benchmark) and to compare the two
ways of fitting with an IAE (through its theta -> lambda map, or in lambda space with a read-out).
With a unit-sum model ``A * s(theta)``, the Poisson maximum-likelihood amplitude is the total
count, so the shape is fitted alone by minimising ``-sum(y * log s(theta))``.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch

from napari_sushi.core.spectral.base import SpectralModel


def _nll(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Kullback-Leibler divergence of the model shape from the normalised counts (Poisson profile
    likelihood up to a constant and the factor sum(y)): O(1) values, so L-BFGS tolerances behave."""
    p = y / y.sum()
    return (p * (torch.log(p.clamp_min(1e-300)) - torch.log(s.clamp_min(1e-300)))).sum()


def _lbfgs(params: list[torch.Tensor], closure, max_iter: int) -> None:
    opt = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, tolerance_grad=1e-14, tolerance_change=1e-16,
                            history_size=20, line_search_fn="strong_wolfe")
    for _ in range(3):  # L-BFGS may stop early on a flat stretch; a restart resets its memory
        before = [q.detach().clone() for q in params]
        opt.step(closure)
        if any(not torch.isfinite(q).all() for q in params):
            for q, b in zip(params, before):
                q.data.copy_(b)
            return


def fit_spectrum(model: SpectralModel, counts: np.ndarray, starts_per_axis: int = 3, max_iter: int = 200) -> np.ndarray:
    """Best-fit physical parameters (P,) of ``model`` for one spectrum of counts (C,)."""
    model = copy.deepcopy(model).double().eval()  # float64 throughout: smooth likelihood for L-BFGS
    y = torch.as_tensor(np.asarray(counts, float), dtype=torch.float64)
    b = torch.as_tensor(model.bounds, dtype=torch.float64)
    logax = torch.tensor([p.low > 0 and p.high / p.low >= 5 for p in model.meta.parameters])
    lo = torch.where(logax, torch.log(b[:, 0]), b[:, 0])
    hi = torch.where(logax, torch.log(b[:, 1]), b[:, 1])

    def theta_of(z: torch.Tensor) -> torch.Tensor:
        t = lo + (hi - lo) * torch.sigmoid(z)
        # exp only where the axis is logarithmic (exp of a velocity would overflow and poison the gradient)
        return torch.where(logax, torch.exp(torch.where(logax, t, torch.zeros_like(t))), t)[None]

    fracs = np.linspace(0.15, 0.85, starts_per_axis)
    best, best_val = None, np.inf
    for start in itertools.product(fracs, repeat=model.n_params):
        z = torch.logit(torch.tensor(start, dtype=torch.float64)).requires_grad_(True)

        def closure() -> torch.Tensor:
            z.grad = None
            f = _nll(model.spectrum(theta_of(z.clamp(-30, 30)))[0].double(), y)
            f.backward()
            return f

        _lbfgs([z], closure, max_iter)
        with torch.no_grad():
            val = float(_nll(model.spectrum(theta_of(z.clamp(-30, 30)))[0].double(), y))
        if np.isfinite(val) and val < best_val:
            best_val, best = val, theta_of(z.detach().clamp(-30, 30))[0].numpy()
    if best is None:
        raise RuntimeError("the fit diverged from every starting point (non-finite likelihood)")
    return best


def fit_spectrum_lambda(model, counts: np.ndarray, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """IAE fit in lambda space: start from the encoded spectrum, optimise lambda, read theta out.

    Returns (theta (P,), lambda (A,)).
    """
    model = copy.deepcopy(model).double().eval()
    y = torch.as_tensor(np.asarray(counts, float), dtype=torch.float64)
    with torch.no_grad():
        lam0 = model.lambda_from_spectrum(y[None])[0]
    lam = lam0.clone().double().requires_grad_(True)

    def closure() -> torch.Tensor:
        lam.grad = None
        f = _nll(model.spectrum_from_lambda(lam[None])[0].double(), y)
        f.backward()
        return f

    _lbfgs([lam], closure, max_iter)
    lam_d = lam.detach()
    lam_d = lam_d - (lam_d.sum() - 1.0) / lam_d.numel()
    with torch.no_grad():
        theta = model.theta_from_lambda(lam_d[None])[0].double().numpy()
    return theta, lam_d.numpy()
