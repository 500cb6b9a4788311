"""SUSHI's objective and its exact minimisation (the second phase of :func:`sushi.fit`).

The objective is

    Phi(A, U) = L(A, U) + sum_{k, j, p} lambda_kj(p) |(W_j (U_k - U0_k))(p)|,   A >= 0,  0 <= U <= 1,

with L the Poisson (or chi-square) cost, U_k the normalised map of free parameter k, W_j the starlet
plane j (the J finest detail scales and the coarse scale), U0 the starting maps of the fit (the coarse
start of :func:`sushi.coarse_start`, a warm start or the given initial values) and lambda_kj(p) weights
fixed once, at the start of this phase (:meth:`Penalty.set_weights`), so that Phi is one function for
the whole run. Penalising the coarse plane too, relative to the start, matters where the data leave a
direction nearly free (e.g. a cooler thermal plus a harder power law): with the coarse plane free, the
minimiser drifted along it over whole regions (measured on the ``faint`` preset at kmad 3: power-law
index bias -0.54, RMSE 0.66, against 0.41 with it); with it, a large-scale departure from the coarse fit has to be
worth kmad times its noise level.

Why a second phase: the thresholding iteration of :mod:`engine` (soft-threshold the starlet
coefficients with a per-pixel step) is fast and lands in the right basin, but its fixed point depends
on the step (the starlet is redundant, so thresholding is not the proximal step of the penalty): it is
not the minimiser of any one objective. This phase starts there and converges to a minimiser of Phi,
the same point the reference fixed-step rule reaches from the same start (only slower); see
``benchmarks/bench_solver.py --parts curves``.

Both rules are primal-dual: a dual variable Y_kj(p) in [-lambda_kj(p), lambda_kj(p)] carries the
penalty, the primal step descends the Lagrangian ``L(A, U) + <Y, W U>`` (separable over pixels), and
the dual step is ``Y <- clip(Y + Sigma W(2 U_new - U_old), -lambda, lambda)`` (Condat-Vu), whose fixed
points are exactly the KKT points of Phi for any admissible primal metric.

- "newton" (default): proximal Newton. Per outer iteration, each pixel's damped Fisher matrix gives a
  convex quadratic model of L; the amplitudes are eliminated exactly (Schur complement); the model plus
  the penalty and the box is minimised by Condat-Vu iterations that evaluate no spectral model
  (:func:`_prox_newton_step`); a line search on Phi accepts the step, so Phi never rises.
- "fixed": one parameter step for every pixel, the reference scheme's ``0.1 / max(counts)`` capped at
  1 / (the largest curvature of any pixel's parameters), and the amplitude step 1 / (sum of the
  pixel's amplitude curvatures), in the same primal-dual iteration (dual step
  ``1 / (2 step ||W||^2)``): the step condition of Condat-Vu, so that it converges to the same
  minimiser. In these units the uncapped reference step (0.0071 on the toy cube) is 8-13x above that
  bound, and the iteration oscillated (measured: Phi 0.4 % above the proximal Newton value after 2000
  iterations and not decreasing). A safeguard halves the step while the
  Lagrangian rises by more than DIVERGENCE_RTOL.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from napari_sushi.core.solver.engine import (
    DIVERGENCE_RTOL,
    LAM_MAX,
    LAM_MIN,
    State,
    _sum,
    damped_fisher,
    floored_information,
    gradient_fisher,
    held_at_bounds,
    local_information,
    noise_weights,
    penalty_strengths,
)
from napari_sushi.core.solver.problem import SHARE_KMAD_KEY, FitSetupError, Problem
from napari_sushi.core.solver.settings import FitSettings, Progress
from napari_sushi.core.solver.stopping import converged, is_cancelled
from napari_sushi.core.starlet import plane_gains, starlet_adjoint, starlet_transform

# newton rule: inner dual step as a multiple of the local Fisher information (see dual_steps). Any value
# keeps the Condat-Vu condition (the primal metric grows with it) and the same minimiser; it sets how
# fast the iteration gets there. Measured with one thread (docs/solver_measurements.md, issue 19):
# 4 instead of 16 took fewer iterations on 15 of 18 cubes (the 16 zoo remnants: 1128 -> 993 in all;
# toy 73 -> 63, faint 64 -> 56) with the same zoo medians (skill to 0.03) and objectives within 1e-5;
# 2 and 8 were no better than 4.
DUAL_STEP = 4.0
INNER_ITERS = 30  # newton rule: Condat-Vu iterations on the local model per outer iteration
INNER_CHECK = 10  # ... whose convergence is tested every INNER_CHECK of them (each test is a host sync)
MAX_BACKTRACKS = 12
LAMBDA_FLOOR = 1e-3  # weights never drop below this fraction of their largest value (see set_weights)


class Penalty:
    """The weighted starlet l1 penalty on the free parameter maps: weights, W, W^T and its value."""

    def __init__(self, problem: Problem, settings: FitSettings) -> None:
        self.problem = problem
        self.J, self.kmad, self.active = penalty_strengths(problem, settings)
        self.lam: torch.Tensor | None = None  # (K, J + 1, Y, X), set once by set_weights
        self.information: torch.Tensor | None = None  # (K, Y, X) the weights were set from
        self.P = self.J + 1  # penalised planes: the J detail scales and the coarse scale
        # maps whose anchor is "free" (FitSettings.anchor): their own detail planes are penalised, their
        # coarse plane is not; None when every map is anchored to its start (the default)
        anchor = resolve_anchor(settings.anchor, problem, problem.A0, problem.U0)
        modes = [anchor_mode(anchor, fp.keys) for fp in problem.free]
        free = [m == "free" for m in modes]
        self.free_maps = torch.tensor(free, device=problem.device) if any(free) else None
        # maps whose anchor is "coarse": only the start's coarse plane is the reference
        coarse = [m == "coarse" for m in modes]
        self.coarse_maps = torch.tensor(coarse, device=problem.device) if any(coarse) else None
        self.Uref = problem.U0.clone()  # the starting maps: the coarse plane is penalised relative to them
        self.hnorm = plane_gains(self.J)  # ||h_j||: noise gain of plane j
        self.w_norm2 = _norm2_bound(problem.shape, self.J, problem.device)

    @property
    def Uref(self) -> torch.Tensor:
        """The anchor: the starting maps (a bootstrap replica sets its own)."""
        return self._uref

    @Uref.setter
    def Uref(self, value: torch.Tensor) -> None:
        self._uref = value
        # what coefficients() subtracts, derived once: the anchor, zero for a map whose anchor is "free"
        self._ref = value if self.free_maps is None else torch.where(self.free_maps[:, None], 0.0, value)
        self._wref = None
        if self.coarse_maps is not None:  # subtracted in coefficient space: the start's planes that count
            w = starlet_transform(self._maps(self._ref), self.J)
            w[self.coarse_maps, : self.J] = 0.0
            self._wref = w

    def _maps(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(v.shape[0], *self.problem.shape)

    def set_weights(self, fisher_diag: torch.Tensor) -> None:
        """lambda_kj(p) = kmad_k * noise std of starlet coefficient j of the gradient map k at p.

        The same noise level as the thresholding phase (``engine.Regulariser.update_weights``: the
        data term's gradient at the solution is noise with covariance F, so the std of its detail
        coefficient j is ||h_j|| sqrt(F_kk) averaged over the support of h_j), taken once, with the
        information floored where that noise exceeds the box (``engine.floored_information``). A
        relative floor (LAMBDA_FLOOR^2 of the map's largest information) applies as well, so that the
        dual steps stay positive where the box floor is zero (kmad 0).
        """
        self.information = self._maps(fisher_diag)  # (K, Y, X): what a tiled fit stitches (tiled.py)
        self.use_weights(*penalty_weights(self.information, self.kmad, self.J))

    def use_weights(self, local_fisher: torch.Tensor, lam: torch.Tensor) -> None:
        """Take given weights (K, J + 1, Y, X) and local information of :func:`penalty_weights` (e.g. a
        tile's part of the whole field's, so that every tile minimises the same objective)."""
        if self.free_maps is not None:  # the coarse plane of a free map costs nothing
            lam = lam.clone()
            lam[self.free_maps, self.J] = 0.0
        self.local_fisher, self.lam = local_fisher, lam
        self._neg_lam = -lam  # project_dual's lower bound, formed once (it runs every inner step)

    def dual_steps(self, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-coefficient dual steps Sigma (K, J + 1, Y, X) and the primal metric term rho (K, N).

        Sigma_kj(p) = fraction * local Fisher information at scale j, so that the dual of a well
        measured region moves as fast as its primal; rho_k(p) = ||W||^2 * the largest Sigma whose
        filter reaches p, a bound on the local size of W^T Sigma W (the Condat-Vu condition).
        """
        sigma = fraction * self.local_fisher
        rho = torch.zeros_like(sigma[:, 0])
        for j in range(self.P):
            r = 4 * 2**j  # bound on the half-width of plane j's filter
            pooled = torch.nn.functional.max_pool2d(sigma[:, j : j + 1], 2 * r + 1, stride=1, padding=r)[:, 0]
            rho = torch.maximum(rho, pooled)
        return sigma, (self.w_norm2 * rho).reshape(rho.shape[0], -1)

    def coefficients(self, U: torch.Tensor) -> torch.Tensor:
        """W (U - U0): (K, J + 1, Y, X) starlet coefficients of the maps' departure from the start
        (of the map itself, W U, for a map whose anchor is "free")."""
        if self._wref is not None:
            return starlet_transform(self._maps(U), self.J) - self._wref
        return starlet_transform(self._maps(U - self._ref), self.J)

    def adjoint(self, Y: torch.Tensor) -> torch.Tensor:
        """W^T Y as (K, N) (the exact adjoint, see :func:`starlet_adjoint`)."""
        return starlet_adjoint(Y).reshape(Y.shape[0], -1)

    def penalty_of(self, WU: torch.Tensor) -> float:
        assert self.lam is not None, "set_weights first"
        return float((self.lam * WU.abs()).sum(dtype=torch.float64))

    def project_dual(self, Y: torch.Tensor) -> torch.Tensor:
        assert self.lam is not None, "set_weights first"
        return torch.clamp(Y, self._neg_lam, self.lam)


ANCHORS = ("auto", "start", "coarse", "free")  # FitSettings.anchor values


def resolve_anchor(anchor: str | dict[str, str], problem: Problem, A: torch.Tensor, U: torch.Tensor):
    """``anchor`` with "auto" (for every map, or a map's value, given or missing from a dict) replaced by
    the measured choice per map (:func:`anchor_rule.auto_modes` at (A, U)), as a dict over the maps;
    returned as given when no map is "auto"."""
    asked = {fp.keys[0]: anchor_mode(anchor, fp.keys) for fp in problem.free}
    if "auto" not in asked.values():
        return anchor
    from napari_sushi.core.solver.anchor_rule import auto_modes  # it imports this module's siblings

    modes = auto_modes(problem, A, U)
    return {k: modes[k] if mode == "auto" else mode for k, mode in asked.items()}


def anchor_mode(anchor: str | dict[str, str], keys: list[str]) -> str:
    """The anchor (one of ANCHORS) of the map of parameter ``keys`` (linked keys share one map; a dict's
    missing map: "auto")."""
    if isinstance(anchor, str):
        return anchor
    for k in keys:
        if k in anchor:
            return anchor[k]
        if k.endswith(".share") and SHARE_KMAD_KEY in anchor:
            return anchor[SHARE_KMAD_KEY]
    return "auto"


def anchor_values(anchor: str | dict[str, str]) -> list[str]:
    """The anchor values asked for: the one for every map, or each map's."""
    return [anchor] if isinstance(anchor, str) else list(anchor.values())


def free_map_keys(components, shares: bool) -> list[str]:
    """The keys ``anchor`` (and ``kmad``) may name: every free parameter map, and "share" with ``shares``."""
    keys = [f"{c.name}.{p}" for c in components for p in c.model.param_names if p not in c.fixed]
    return keys + ([SHARE_KMAD_KEY] if shares else [])


def check_anchor(anchor: str | dict[str, str], components) -> None:
    """FitSetupError for an anchor other than "start"/"free", or a key naming no free map of ``components``."""
    bad = [v for v in anchor_values(anchor) if v not in ANCHORS]
    if bad:
        raise FitSetupError(
            f"anchor must be one of {', '.join(repr(a) for a in ANCHORS)} (for every map, or per map); got {bad[0]!r}."
        )
    if isinstance(anchor, dict):
        known = set(free_map_keys(components, shares=True)) | {f"{c.name}.share" for c in components}
        unknown = sorted(set(anchor) - known)
        if unknown:
            raise FitSetupError(
                f"anchor names {', '.join(unknown)}, which is not a free map of this fit; "
                f"use one of {', '.join(sorted(known))}."
            )


def anchor_advice(settings: FitSettings) -> str | None:
    """A warning for free anchors with free per-pixel amplitudes (measured to drift), else None."""
    if "free" not in anchor_values(settings.anchor) or settings.regularise_shares:
        return None
    return (
        "free anchors with free per-pixel amplitudes drifted on the morphology zoo (the large scales slid "
        "towards a hot plasma plus a soft power law: 1x kT skill 2.3); regularise_shares=True "
        "(--regularise-shares, the dock's 'regularise the components' shares') is the measured combination "
        "(README, morphology zoo)."
    )


def penalty_weights(information: torch.Tensor, kmad: torch.Tensor, J: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(local information, weights lambda), each (K, J + 1, Y, X), from Fisher information maps (K, Y, X).

    The rule of :meth:`Penalty.set_weights`, on maps alone: a function of the information maps and the
    strengths only, so that a field's weights can be computed from its tiles' stitched information.
    The relative floor (LAMBDA_FLOOR^2 of each map's largest information) is the one quantity that is not
    local, which is why a tile's own weights differ from the field's.
    """
    hnorm = plane_gains(J)
    fs = local_information(information.clamp(min=0.0), J + 1)
    fs = torch.maximum(fs, LAMBDA_FLOOR**2 * fs.amax(dim=(1, 2, 3), keepdim=True))
    # the dual steps follow the floored information too: with the raw one, the duals of few-photon
    # pixels crept towards their (floored) bounds and the proximal Newton steps stalled (toy: Phi
    # 529 above the fixed-step rule's after 200 iterations)
    local = floored_information(kmad, hnorm, fs)
    return local, noise_weights(kmad, hnorm, local)


def _norm2_bound(shape: tuple[int, int], J: int, device) -> float:
    """An upper bound on ||W||^2 for maps of ``shape`` (power iteration on W^T W, plus 5 %).

    It depends on the size through the mirrored borders: measured 1.14 at 94x94, 1.22 at 16x16 and up
    to 1.6 below 8x8 pixels (J = 3), so a fixed constant would be either unsafe or slow.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, *shape, generator=gen, dtype=torch.float64).to(device)
    val = 1.0
    for _ in range(30):
        y = starlet_adjoint(starlet_transform(x, J))
        val = float(y.norm())
        x = y / max(val, 1e-30)
    return 1.05 * val


def minimise(
    problem: Problem,
    settings: FitSettings,
    st: State,
    *,
    step_rule: str = "newton",
    callback=None,
    cancel=None,
    max_iter: int | None = None,
    total: int | None = None,
    penalty: Penalty | None = None,
) -> State:
    """Minimise Phi from the iterate in ``st`` (continued in place: iterations, histories, stop reason).

    The weights are set from the Fisher information at the starting point, unless ``penalty`` already
    has them: a Penalty whose weights are still unset gets them here (so the caller keeps the
    objective this run minimised), one with weights is used as it is (the parametric bootstrap refits
    its replicas with the original run's objective, :mod:`bootstrap`). ``total`` is the progress total
    the callback reports (default: the iterations so far plus ``max_iter``).
    """
    t0 = time.perf_counter() - st.elapsed
    nc = problem.n_amp
    pen = Penalty(problem, settings) if penalty is None else penalty
    if not pen.active:
        return st
    max_iter = int(settings.max_iter if max_iter is None else max_iter)
    it0 = st.n_iter
    total = int(total if total is not None else it0 + max_iter)
    newton = step_rule == "newton"
    mu = torch.full((problem.n_pix,), 1e-2, dtype=problem.dtype, device=problem.device)
    step = float(settings.fixed_step) if settings.fixed_step else 0.1 / max(float(problem.X.max()), 1.0)
    WU = pen.coefficients(st.U)
    pen_now: float | None = None  # penalty_of(WU), once the weights exist
    Y = None
    sigma = rho = None
    objective: list[float] = []
    st.stop_reason = "max_iter"
    for it in range(1, max_iter + 1):
        if is_cancelled(cancel):
            st.stop_reason = "cancelled"
            break
        g, F, c0 = gradient_fisher(problem, st.A, st.U)
        # frozen: a pixel whose gradient or Fisher matrix is not finite (its model is NaN next to it) stays put
        frozen = ~(torch.isfinite(g).all(dim=1) & torch.isfinite(F).all(dim=(1, 2)))
        g = torch.where(frozen[:, None], torch.zeros_like(g), g)
        F = torch.where(frozen[:, None, None], torch.eye(F.shape[1], dtype=F.dtype, device=F.device), F)
        if Y is None:  # the objective's weights: once, at the starting point (unless given)
            if pen.lam is None:
                pen.set_weights(torch.diagonal(F, dim1=1, dim2=2)[:, nc:].T)
            sigma, rho = pen.dual_steps(DUAL_STEP)
            assert pen.lam is not None  # set just above
            Y = torch.zeros_like(pen.lam)
            pen_now = pen.penalty_of(WU)
            if not newton and not settings.fixed_step:
                step = min(step, 1.0 / _largest_curvature(F[:, nc:, nc:]))
        assert pen_now is not None  # set with Y at the first iteration
        if newton:
            phi0 = _sum(c0) + pen_now
            zA, zU, Yn, zA_only = _prox_newton_step(problem, pen, st, WU, Y, g, F, mu, sigma, rho, frozen)
            accepted = False
            alpha = 1.0
            for _ in range(MAX_BACKTRACKS):
                nA = st.A + alpha * (zA - st.A)
                nU = st.U + alpha * (zU - st.U)
                c1 = problem.costs(nA, nU)
                WZ = pen.coefficients(nU)
                pen_new = pen.penalty_of(WZ)
                phi1 = _sum(c1) + pen_new
                if np.isfinite(phi1) and phi1 <= phi0 + 1e-9 * abs(phi0):
                    accepted = True
                    break
                st.n_backtracks += 1
                alpha *= 0.5
            if accepted:
                # damping follows the line search on Phi: lighter after a full step, harder after a
                # shortened one. (Not per pixel on the data cost: the penalty legitimately raises some
                # pixels' data cost, and damping those harder stalled the descent 190 above the
                # minimum on toy, against 67 this way, after 20 iterations.)
                mu = (mu * (4.0 if alpha < 1.0 else 0.3)).clamp(LAM_MIN, LAM_MAX)
                st.A, st.U, Y, WU, pen_now = nA, nU, Yn, WZ, pen_new
            else:
                mu = (mu * 10.0).clamp(LAM_MIN, LAM_MAX)
                c1 = c0
                # the amplitudes alone (not penalised): their Newton step with the maps held, if it helps
                ca = problem.costs(zA_only, st.U)
                total_a = _sum(ca)
                if np.isfinite(total_a) and total_a < _sum(c0):
                    st.A, c1 = zA_only, ca
        else:
            zA, zU, c1, dual, step = _fixed_step(problem, pen, st, Y, g, F, c0, step, frozen)
            if zA is None:
                st.stop_reason = "no acceptable step"
                break
            WZ = pen.coefficients(zU)
            Y = pen.project_dual(Y + dual * (2.0 * WZ - WU))
            st.A, st.U, WU = zA, zU, WZ
            pen_now = pen.penalty_of(WU)
        cost = _sum(c1)
        obj = cost + pen_now
        objective.append(obj)
        st.history.append(cost)
        st.objective.append(obj)
        st.n_iter = it0 + it
        st.elapsed = time.perf_counter() - t0
        if callback is not None:
            snap = None
            if settings.snapshot_every and st.n_iter % int(settings.snapshot_every) == 0:
                snap = problem.unpack(st.A, st.U)
            callback(Progress(st.n_iter, total, cost, st.elapsed, snap, obj))
        if converged(objective, settings.tol, settings.window):
            st.stop_reason = "converged"
            break
    if not newton:
        st.step = step
    st.elapsed = time.perf_counter() - t0
    return st


def _largest_curvature(F_UU: torch.Tensor) -> float:
    """max over pixels of the largest eigenvalue of the parameters' Fisher block (a Lipschitz estimate)."""
    ev = torch.linalg.eigvalsh(0.5 * (F_UU + F_UU.transpose(1, 2)).double())
    val = float(torch.nan_to_num(ev[:, -1], nan=0.0, posinf=0.0).max())
    return max(val, 1e-12)


def _fixed_step(problem, pen: Penalty, st: State, Y, g, F, c0, step: float, frozen):
    """Reference steps on the Lagrangian, halving the parameter step while it diverges.

    Returns (zA, zU, cost per pixel, dual step, parameter step) or Nones when no step is acceptable.
    """
    nc = problem.n_amp
    WtY = pen.adjoint(Y)
    gU = torch.where(frozen[None], torch.zeros_like(WtY), g[:, nc:].T + WtY)
    # amplitude step 1 / (sum of the pixel's amplitude curvatures), a bound on its largest eigenvalue
    traceA = torch.diagonal(F, dim1=1, dim2=2)[:, :nc].sum(dim=1)
    zA = torch.clamp(st.A - g[:, :nc].T / (traceA + 1e-12), min=0.0)
    l0 = _sum(c0) + _sum((WtY * st.U).sum(0))
    for _ in range(40):
        zU = torch.clamp(st.U - step * gU, 0.0, 1.0)
        c1 = problem.costs(zA, zU)
        bad = ~torch.isfinite(c1)
        zA = torch.where(bad[None], st.A, zA)
        zU = torch.where(bad[None], st.U, zU)
        c1 = torch.where(bad, c0, c1)
        l1 = _sum(c1) + _sum((WtY * zU).sum(0))
        if np.isfinite(l1) and l1 <= l0 + DIVERGENCE_RTOL * abs(l0) + 1e-6:
            return zA, zU, c1, 1.0 / (2.0 * step * pen.w_norm2), step
        st.n_backtracks += 1
        step *= 0.5
    return None, None, None, None, step


def _prox_newton_step(
    problem, pen: Penalty, st: State, WU, Y, g, F, mu, sigma, rho, frozen, n_inner: int = INNER_ITERS
):
    """Minimise the local model  <g, x - x_k> + 1/2 (x - x_k)^T P (x - x_k) + penalty(U) over the box.

    P is each pixel's damped Fisher matrix. The amplitudes are eliminated exactly (Schur complement,
    amplitudes at 0 and pushed outwards held there), leaving a convex problem in the parameter maps:
    a per-pixel quadratic with matrix S, the weighted starlet l1 term and the box. It is solved by
    Condat-Vu iterations that touch no spectral model (only K x K products and starlet transforms), with
    the diagonal primal metric D = rowsum|S| + rho >= S + W^T Sigma W, so that the box projection is the
    exact one and the inner iteration converges to the model's minimiser. ``WU`` is W(U - U0) at the
    current iterate; the dual Y is warm-started from the previous call. ``frozen`` pixels do not move.
    Returns the candidate (A, U), the inner dual and the amplitudes' own Newton step with the maps held
    (the fallback when the line search rejects the joint step).
    """
    nc = problem.n_amp
    Pd = damped_fisher(F, mu)
    gd = g.double()
    fa = (~held_at_bounds(st.A, st.U, g)[:, :nc]).double()  # (N, nc) free amplitudes
    Paa = Pd[:, :nc, :nc] * fa[:, :, None] * fa[:, None, :] + torch.diag_embed(1.0 - fa)
    Pau = Pd[:, :nc, nc:] * fa[:, :, None]
    Paa_inv = torch.linalg.inv(Paa)
    gA = gd[:, :nc] * fa
    S = Pd[:, nc:, nc:] - Pau.transpose(1, 2) @ Paa_inv @ Pau  # (N, K, K)
    gt = gd[:, nc:] - (Pau.transpose(1, 2) @ (Paa_inv @ gA[:, :, None]))[:, :, 0]  # (N, K)
    D = S.abs().sum(dim=2) + rho.T.double()  # (N, K)
    # the inner iterations run in the maps' dtype, K-major (K, N) like U and the starlet planes: no
    # conversion or transposed copy per step (the model S and gt are formed in float64 above)
    dt = problem.dtype
    invD = (1.0 / D).T.to(dt).contiguous()
    St = S.to(dt).permute(1, 2, 0).contiguous()  # (K, K, N): S_kl for every pixel
    gtt = gt.T.to(dt).contiguous()
    lo, hi = -st.U, 1.0 - st.U  # box for d = u - u_k (empty for frozen pixels)
    lo = torch.where(frozen[None], torch.zeros_like(lo), lo)
    hi = torch.where(frozen[None], torch.zeros_like(hi), hi)
    d = torch.zeros_like(st.U)
    WU_old = WU
    for i in range(n_inner):
        grad = torch.mul(St, d).sum(1).add_(gtt).add_(pen.adjoint(Y))  # S d + gt + W^T Y, (K, N)
        d_new = torch.clamp(torch.addcmul(d, grad, invD, value=-1.0), lo, hi)
        WU_new = pen.coefficients(st.U + d_new)
        Y = pen.project_dual(torch.addcmul(Y, sigma, torch.sub(2.0 * WU_new, WU_old)))
        if (i + 1) % INNER_CHECK == 0 and float((d_new - d).abs().max()) < 1e-7:
            d = d_new
            break
        d, WU_old = d_new, WU_new
    d = d.T.double()
    dA = -(Paa_inv @ (gA + (Pau @ d[:, :, None])[:, :, 0])[:, :, None])[:, :, 0] * fa
    zA = torch.where(frozen[None], st.A, torch.clamp(st.A + dA.T.to(problem.dtype), min=0.0))
    zU = torch.clamp(st.U + d.T.to(problem.dtype), 0.0, 1.0)
    dA0 = -(Paa_inv @ gA[:, :, None])[:, :, 0] * fa  # the maps held where they are
    zA_only = torch.where(frozen[None], st.A, torch.clamp(st.A + dA0.T.to(problem.dtype), min=0.0))
    return zA, zU, Y, zA_only
