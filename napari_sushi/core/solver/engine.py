"""The iteration shared by SUSHI (regularised) and the per-pixel fit (no regulariser).

One iteration ("newton" step rule):
1. per pixel, the gradient g and Fisher matrix F of the cost in (amplitudes, normalised parameters),
   from the model's Jacobian (forward-mode AD), all pixels at once;
2. a damped Gauss-Newton (Levenberg-Marquardt) step ``-(F + lam diag F)^-1 g`` per pixel
   (:func:`projected_newton_delta`: variables held at a bound by their gradient leave the system),
   projected into the box (amplitudes >= 0, parameters in their validity range); a pixel whose own cost would
   rise (or become NaN) keeps its values and gets more damping (the diverging step is recovered);
3. SUSHI only: the starlet proximal step on every parameter map, soft-thresholding the J finest
   detail scales with threshold ``lambda_j * step``, where ``lambda_j = kmad * sigma_j`` and
   sigma_j is the noise level of scale j of the gradient (the published rule takes the MAD of the
   gradient's coefficients; here the noise level comes from the Fisher information, see
   ``Regulariser.update_weights``), and ``step`` is the per-pixel step actually taken for that
   parameter (the diagonal of the damped inverse Fisher matrix); then clamp into the box;
4. a divergence safeguard: if the data cost became NaN/inf or rose by more than DIVERGENCE_RTOL
   (relative), the step is halved and retried (the proximal step may legitimately raise the data
   cost slightly; a diverging step raises it a lot).

The "fixed" step rule reproduces the reference scheme (parameter step ``0.1 / max(counts)``, amplitude
step ``1 / diag Hessian``) with the same safeguard, for the benchmark's cost curves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from napari_sushi.core.solver.problem import Problem
from napari_sushi.core.solver.settings import FitSettings, Progress
from napari_sushi.core.solver.stopping import converged, is_cancelled
from napari_sushi.core.starlet import plane_gains, starlet_denoise, starlet_smooth, starlet_transform

LAM_MIN, LAM_MAX = 1e-4, 1e8
DIVERGENCE_RTOL = 1e-4  # a step raising the data cost by more than this (relative) is a diverging step
# The thresholding phase's guard halves a step whose data cost rises; below this fraction it gives up (the
# iterate stays, the damping grows). Measured on the toy (one thread): the rejected steps failed at every
# fraction down to 1/512 or were accepted at 1/512 (no progress either way), 11 of 30 iterations at up
# to 10 cost evaluations each; stopping at 1/4 cut the fit's cost evaluations 245 -> 146 and its time
# 15.6 -> 13.1 s with the same maps (objective -1e-5 relative; faint +4e-6; zoo medians within 0.01).
GUARD_MIN_STEP = 0.25


@dataclass
class State:
    """Iterate and bookkeeping of one run."""

    A: torch.Tensor  # (n_comp, N)
    U: torch.Tensor  # (K, N)
    history: list[float] = field(default_factory=list)  # data cost after each iteration
    objective: list[float] = field(default_factory=list)  # data cost + regulariser (SUSHI)
    n_iter: int = 0
    stop_reason: str = "max_iter"
    n_backtracks: int = 0
    n_rejected_pixels: int = 0
    step: float | None = None  # fixed rule: current parameter step
    elapsed: float = 0.0


def gradient_fisher(problem: Problem, A: torch.Tensor, U: torch.Tensor):
    """g (N, D), F (N, D, D) and per-pixel cost (N,) over all pixels, chunk by chunk."""
    gs, Fs, cs = [], [], []
    for s in range(0, problem.n_pix, problem.chunk):
        g, F, c = problem.grad_fisher(A, U, slice(s, min(s + problem.chunk, problem.n_pix)))
        gs.append(g)
        Fs.append(F)
        cs.append(c)
    return torch.cat(gs), torch.cat(Fs), torch.cat(cs)


def damped_fisher(F: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """F + lam diag(F) + floor per pixel, in float64 (the Levenberg-Marquardt metric of both phases)."""
    Fd = F.double()
    diag = torch.diagonal(Fd, dim1=1, dim2=2)
    floor = 1e-9 * diag.amax(dim=0, keepdim=True).clamp(min=1e-30) + 1e-30
    return Fd + torch.diag_embed(lam.double()[:, None] * diag + floor)


def damped_inverse(F: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """(F + lam diag(F) + floor)^-1 per pixel, in float64 (small D x D systems, all pixels at once)."""
    Fd = damped_fisher(F, lam)
    L, info = torch.linalg.cholesky_ex(Fd)
    inv = torch.cholesky_inverse(L)
    bad = (info != 0) | ~torch.isfinite(inv).all(dim=(1, 2))
    # the diagonal for pixels whose matrix is not positive definite (a where, not a host-side test)
    return torch.where(bad[:, None, None], torch.diag_embed(1.0 / torch.diagonal(Fd, dim1=1, dim2=2)), inv)


def held_at_bounds(A: torch.Tensor, U: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(N, D) bool: variables at a bound that their gradient pushes outwards (amplitude at 0, u at 0 or 1)."""
    nc = A.shape[0]
    held = torch.zeros_like(g, dtype=torch.bool)
    held[:, :nc] = (A.T <= 0) & (g[:, :nc] > 0)
    uT = U.T
    held[:, nc:] = ((uT <= 0) & (g[:, nc:] > 0)) | ((uT >= 1) & (g[:, nc:] < 0))
    return held


def projected_newton_delta(
    F: torch.Tensor, g: torch.Tensor, held: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected, damped Gauss-Newton step: the variables ``held`` (N, D) leave the system (step 0).

    Returns delta (N, D) in g's dtype (the new iterate is ``z - delta``, then projected into the box)
    and the damped inverse (N, D, D) of :func:`damped_inverse`, in float64.
    """
    fm = (~held).to(F.dtype)
    Fr = F * fm[:, :, None] * fm[:, None, :] + torch.diag_embed(1.0 - fm)
    inv = damped_inverse(Fr, lam)
    delta = (inv @ (g * fm).double()[:, :, None])[:, :, 0].to(g.dtype)
    return delta, inv


def _maps(problem: Problem, v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], *problem.shape)


def local_information(fisher_maps: torch.Tensor, n_planes: int) -> torch.Tensor:
    """(K, n_planes, Y, X): the Fisher information maps (K, Y, X) smoothed as starlet plane j sees them.

    Plane j's filter spans the first j + 1 B3 smoothings, so its noise level at p is ||h_j|| times the
    square root of the information averaged by those smoothings (both phases' weights use this).
    """
    planes = []
    c = fisher_maps
    for j in range(n_planes):
        c = starlet_smooth(c, j)
        planes.append(c)
    return torch.stack(planes, dim=1)


def floored_information(kmad: torch.Tensor, hnorm: list[float], info: torch.Tensor) -> torch.Tensor:
    """max(info_kj(p), (kmad_k ||h_j||)^2): the local information, floored where a coefficient's noise
    exceeds the box.

    ``info`` is :func:`local_information` (K, planes, Y, X) in the solver's unit box; ``hnorm`` the
    planes' gains (``plane_gains``). Below ``(kmad h_j)^2`` the Gaussian threshold kmad h_j / sqrt(info)
    is wider than the whole box, so such a coefficient is thresholded away either way; the floor
    changes what the Gaussian picture misses: a pixel with a few photons has a likelihood with narrow
    bumps (one photon in the Fe line is a velocity), worth a few units of C, and a weight that fell to
    zero with the information charged nothing for jumping to one. With the floor a departure across
    the whole box costs at least (kmad h_j)^2. Measured (``benchmarks/bench_seeds.py``, seeds 0-3):
    single-pixel velocity spikes on `faint` 78-183 -> 0, on toy 7-13 -> 0, at a cost in RMSE of
    2-3 % for velocity and 0-10 % for kT and index.
    """
    return torch.maximum(info, _noise_gain(kmad, hnorm, info) ** 2)


def noise_weights(kmad: torch.Tensor, hnorm: list[float], info: torch.Tensor) -> torch.Tensor:
    """lambda_kj(p) = kmad_k ||h_j|| sqrt(floored info_kj(p)): kmad times the noise std of starlet
    coefficient j (:func:`floored_information` says why the information is floored)."""
    return _noise_gain(kmad, hnorm, info) * floored_information(kmad, hnorm, info).sqrt()


def _noise_gain(kmad: torch.Tensor, hnorm: list[float], like: torch.Tensor) -> torch.Tensor:
    """kmad_k ||h_j|| as (K, planes, 1, 1), in ``like``'s dtype and device."""
    hn = torch.tensor(hnorm, dtype=like.dtype, device=like.device)[None, :, None, None]
    return kmad[:, None, None, None] * hn


def penalty_strengths(problem: Problem, settings: FitSettings) -> tuple[int, torch.Tensor, bool]:
    """(J, kmad per free map (K,), whether any map is regularised) for both phases' penalties."""
    J = int(settings.n_scales)
    kmad = torch.tensor([fp.kmad for fp in problem.free], dtype=problem.dtype, device=problem.device)
    return J, kmad, J > 0 and problem.n_free > 0 and bool((kmad > 0).any())


class Regulariser:
    """Starlet l1 penalty and its proximal step on the free parameter maps."""

    def __init__(self, problem: Problem, settings: FitSettings) -> None:
        self.problem = problem
        self.J, self.kmad, self.active = penalty_strengths(problem, settings)
        self.lam = torch.zeros(problem.n_free, self.J, 1, 1, dtype=problem.dtype, device=problem.device)
        self.hnorm = plane_gains(self.J)[: self.J]  # ||h_j||: noise gain of detail scale j

    def update_weights(self, fisher_diag: torch.Tensor) -> None:
        """lambda_kj(p) = kmad_k * noise std of the starlet coefficient j of gradient map k at p.

        At the solution the gradient of the data term is noise with covariance F (the Fisher
        matrix), so the std of its detail coefficient j is ||h_j|| sqrt(F_kk) averaged over the
        support of h_j; that is what the MAD of the gradient's coefficients estimates in the reference
        scheme when the gradient is pure noise. Using the Fisher value instead of the MAD keeps the
        threshold from growing with the (non-noise) gradient of an over-smoothed map, which made the
        published rule drift towards ever smoother maps (measured on the toy cube).
        """
        fs = local_information(_maps(self.problem, fisher_diag.clamp(min=0.0)), self.J)  # (K, J, Y, X)
        self.lam = noise_weights(self.kmad, self.hnorm, fs)

    def penalty(self, U: torch.Tensor) -> float:
        if not self.active:
            return 0.0
        w = starlet_transform(_maps(self.problem, U), self.J)[:, : self.J]
        return float((self.lam * w.abs()).sum(dtype=torch.float64))

    def prox(self, U: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Soft-threshold with lambda_kj * step_k(pixel); ``step`` is (K, N) or (K, 1)."""
        if not self.active:
            return U
        if step.shape[1] == 1:
            thr = self.lam * step[:, :, None, None]
        else:
            thr = self.lam * _maps(self.problem, step)[:, None]
        return torch.clamp(starlet_denoise(_maps(self.problem, U), thr, self.J).reshape(U.shape), 0.0, 1.0)


def _sum(c: torch.Tensor) -> float:
    return float(c.sum(dtype=torch.float64))


def iterate(
    problem: Problem,
    settings: FitSettings,
    *,
    regularise: bool,
    A: torch.Tensor | None = None,
    U: torch.Tensor | None = None,
    callback=None,
    cancel=None,
    max_iter: int | None = None,
) -> State:
    """Run iterations until the stopping rule, max_iter or a cancel request; returns the state."""
    t0 = time.perf_counter()
    st = State(A=(problem.A0 if A is None else A).clone(), U=(problem.U0 if U is None else U).clone())
    max_iter = int(settings.max_iter if max_iter is None else max_iter)
    reg = Regulariser(problem, settings)
    if not regularise:
        reg.active = False
    nc = problem.n_amp
    N = problem.n_pix
    lam = torch.full((N,), 1e-2, dtype=problem.dtype, device=problem.device)
    if settings.step_rule == "fixed":
        st.step = float(settings.fixed_step) if settings.fixed_step else 0.1 / max(float(problem.X.max()), 1.0)
    amp_floor = 0.0
    rejected = torch.zeros((), dtype=torch.int64, device=problem.device)  # counted on the device: no host sync

    for it in range(1, max_iter + 1):
        if is_cancelled(cancel):
            st.stop_reason = "cancelled"
            break
        g, F, c0 = gradient_fisher(problem, st.A, st.U)
        gU = g[:, nc:].T.contiguous()
        if reg.active:
            reg.update_weights(torch.diagonal(F, dim1=1, dim2=2)[:, nc:].T)

        if settings.step_rule == "newton":
            delta, inv = projected_newton_delta(F, g, held_at_bounds(st.A, st.U, g), lam)
            zA = torch.clamp(st.A - delta[:, :nc].T, min=amp_floor)
            zU = torch.clamp(st.U - delta[:, nc:].T, 0.0, 1.0)
            stepU = torch.diagonal(inv, dim1=1, dim2=2)[:, nc:].T.to(problem.dtype)  # (K, N)
            # per-pixel Levenberg-Marquardt acceptance of the Newton part: a pixel whose cost would
            # rise (or turn NaN) keeps its values and is damped harder; the others are damped less
            c1 = problem.costs(zA, zU)
            bad = ~torch.isfinite(c1) | (c1 > c0 + 1e-6 * c0.abs() + 1e-6)
            rejected += bad.sum()
            zA = torch.where(bad[None], st.A, zA)
            zU = torch.where(bad[None], st.U, zU)
            c1 = torch.where(bad, c0, c1)
            lam = torch.where(bad, lam * 10.0, lam * 0.3).clamp(LAM_MIN, LAM_MAX)
            if not reg.active:
                st.A, st.U = zA, zU
                cost = _sum(c1)
                obj = cost
                self_done = True
            else:
                self_done = False
        else:
            diagA = torch.diagonal(F, dim1=1, dim2=2)[:, :nc].T
            zA = torch.clamp(st.A - g[:, :nc].T / (diagA + 1e-12), min=amp_floor)
            zU = None
            stepU = None
            self_done = False

        if not self_done:
            old_data = _sum(c0)
            cost, obj = _step_with_guard(problem, settings, reg, st, zA, zU, stepU, gU, c0, old_data, rejected)
            if cost is None:  # no acceptable step: keep the iterate, damp harder
                lam = (lam * 10.0).clamp(LAM_MIN, LAM_MAX)
                # the objective is only needed here (the accepted steps report their own)
                cost, obj = old_data, old_data + reg.penalty(st.U)
        st.history.append(cost)
        st.objective.append(obj)
        st.n_iter = it
        st.elapsed = time.perf_counter() - t0
        if callback is not None:
            snap = None
            if settings.snapshot_every and it % int(settings.snapshot_every) == 0:
                snap = problem.unpack(st.A, st.U)
            callback(Progress(it, max_iter, cost, st.elapsed, snap))
        if converged(st.history, settings.tol, settings.window):
            st.stop_reason = "converged"
            break
    st.elapsed = time.perf_counter() - t0
    st.n_rejected_pixels = int(rejected)
    return st


def _step_with_guard(problem, settings, reg, st, zA, zU, stepU, gU, c0, old_data, rejected):
    """Proximal step with backtracking; updates ``st`` and returns (cost, objective) or (None, None).

    Pixels whose cost turns NaN/inf keep their previous values; if the total data cost then still
    rose by more than DIVERGENCE_RTOL (a diverging step), the step is halved and retried. Their
    count is added to the device tensor ``rejected``.
    """
    alpha = 1.0
    for _ in range(30):
        if settings.step_rule == "newton":
            nA = st.A + alpha * (zA - st.A)
            nU = reg.prox(st.U + alpha * (zU - st.U), alpha * stepU)
        else:
            s = st.step
            nA = st.A + alpha * (zA - st.A)
            nU = torch.clamp(st.U - s * gU, 0.0, 1.0)
            nU = reg.prox(nU, torch.full((problem.n_free, 1), s, dtype=problem.dtype, device=problem.device))
        cn = problem.costs(nA, nU)
        bad = ~torch.isfinite(cn)
        rejected += bad.sum()
        nA = torch.where(bad[None], st.A, nA)
        nU = torch.where(bad[None], st.U, nU)
        cn = torch.where(bad, c0, cn)
        new_data = _sum(cn)
        if new_data <= old_data + DIVERGENCE_RTOL * abs(old_data) + 1e-6:
            # the penalty (a full starlet transform) only for a step the data test accepts
            new_obj = new_data + reg.penalty(nU)
            if np.isfinite(new_obj):
                st.A, st.U = nA, nU
                return new_data, new_obj
        st.n_backtracks += 1
        if settings.step_rule == "newton":
            alpha *= 0.5
            if alpha < GUARD_MIN_STEP:
                return None, None
        else:
            st.step *= 0.5
    return None, None
