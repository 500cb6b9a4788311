"""Per-pixel 1-sigma uncertainties (Fisher / Cramer-Rao; profile likelihood) and the goodness-of-fit map.

SUSHI's sigma maps are the Fisher ones described below. The per-pixel fit's parameter sigmas come
from the profile likelihood instead (:func:`profile_sigmas`): the Delta C = 1 interval of each
pixel's likelihood along each parameter, re-optimising the pixel's other variables, truncated at the
box; it stays honest where the likelihood is far from Gaussian (flat, skewed, estimate on an edge).

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
from typing import cast

import numpy as np
import torch

from napari_sushi.core.solver.engine import gradient_fisher, held_at_bounds, projected_newton_delta
from napari_sushi.core.solver.problem import CHUNK_ELEMENTS, MODEL_FLOOR, Problem


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
    # a pixel whose Fisher matrix is not finite (a model that is NaN next to the estimate) carries no
    # usable information: all its variables are "dead" below (infinite variance, then capped)
    Fd = torch.where(torch.isfinite(Fd).all(dim=(1, 2))[:, None, None], Fd, torch.zeros_like(Fd))
    diag = torch.diagonal(Fd, dim1=1, dim2=2)
    # scale to unit diagonal so the cutoffs are unit-free (amplitudes and parameters differ a lot)
    # "dead": no information at all, relative to the same variable's largest information over pixels
    dead = diag <= 1e-12 * diag.amax(dim=0, keepdim=True).clamp(min=1e-300)
    d = torch.where(dead, torch.ones_like(diag), diag.clamp(min=1e-300).sqrt())
    live = (~dead).double()
    Fs = Fd / (d[:, :, None] * d[:, None, :]) * live[:, :, None] * live[:, None, :]
    Fs = Fs + torch.diag_embed(1.0 - live)
    # the per-pixel matrices are tiny (D x D): solved on the CPU, where a 512x512 image takes 0.6 s, because
    # CUDA's batched eigensolver asked for 136 GiB of workspace for 262144 5x5 matrices (measured on an H200)
    ev, V = (t.to(Fs.device) for t in torch.linalg.eigh(Fs.cpu()))
    ev = torch.maximum(ev, rcond * ev.amax(dim=1, keepdim=True).clamp(min=1e-300))
    cov_s = (V / ev[:, None, :]) @ V.transpose(1, 2)
    cov = cov_s / (d[:, :, None] * d[:, None, :])
    cov = cov * live[:, :, None] * live[:, None, :]
    return cov + torch.diag_embed(torch.where(dead, torch.full_like(diag, math.inf), torch.zeros_like(diag)))


def _fisher_sig(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """(N, D) Fisher 1-sigma of every variable in solver units; may be inf (unconstrained)."""
    _, F, _ = gradient_fisher(problem, A, U)
    return torch.diagonal(covariance(F), dim1=1, dim2=2).clamp(min=0.0).sqrt()


def fisher_sigmas(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> dict[str, np.ndarray]:
    """1-sigma maps keyed "<component> amplitude" and "<component> <parameter>" (physical units).

    In the share form (``problem.n_share``) a component's amplitude is total x share: its sigma is
    propagated from the covariance of (total, shares) (first order).
    """
    if problem.n_share:
        _, F, _ = gradient_fisher(problem, A, U)
        cov = covariance(F)
        sig_t = torch.diagonal(cov, dim1=1, dim2=2).clamp(min=0.0).sqrt()
        amp_sig = _share_amplitude_sigmas(problem, A, U, cov).cpu().numpy()
        sig = sig_t.cpu().numpy()
    else:
        sig = _fisher_sig(problem, A, U).cpu().numpy()  # (N, D)
        amp_sig = sig[:, : problem.n_comp].T
    ny, nx = problem.shape
    na = problem.n_amp
    out: dict[str, np.ndarray] = {}
    for c, spec in enumerate(problem.comps):
        out[f"{spec.name} amplitude"] = amp_sig[c].reshape(ny, nx)
        for p, name in enumerate(spec.model.param_names):
            kind, k = spec.sources[p]
            if kind == "free":
                fp = problem.free[k]
                s = np.minimum(sig[:, na + k] * fp.width, fp.width / math.sqrt(12.0))
                out[f"{spec.name} {name}"] = s.reshape(ny, nx)
            else:
                out[f"{spec.name} {name}"] = np.zeros((ny, nx))
    return out


def _share_amplitude_sigmas(problem: Problem, A: torch.Tensor, U: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """(n_comp, N) sigma of total x share_c from the covariance (N, D, D) of [total, u..., s...]."""
    shares, dsh = problem.shares(U), problem.share_jacobian(U)  # (nc, N), (nc, ns, N)
    D = cov.shape[1]
    base = 1 + problem.n_phys
    out = []
    for c in range(len(problem.comps)):
        g = torch.zeros(cov.shape[0], D, dtype=cov.dtype, device=cov.device)
        g[:, 0] = shares[c].double()
        for j in range(problem.n_share):
            g[:, base + j] = (A[0] * dsh[c, j]).double()
        live = g != 0
        c_live = torch.where(live[:, :, None] & live[:, None, :], cov, torch.zeros_like(cov))
        var = (g[:, :, None] * c_live * g[:, None, :]).sum(dim=(1, 2))
        out.append(torch.where(torch.isfinite(var), var.clamp(min=0.0).sqrt(), torch.full_like(var, math.inf)))
    return torch.stack(out)


def gof_map(problem: Problem, A: torch.Tensor, U: torch.Tensor) -> tuple[np.ndarray, str]:
    """C-stat (2 sum(m - X + X log(X/m)), ~chi2) or chi2 per degree of freedom, per pixel."""
    out = []
    with torch.no_grad():
        for s in range(0, problem.n_pix, problem.chunk):
            sl = slice(s, min(s + problem.chunk, problem.n_pix))
            out.append(problem.deviance(problem.model(A, U, sl), sl))
    dev = torch.cat(out).double().cpu().numpy()
    n_vars = problem.n_amp + problem.n_free
    dof = max(problem.X.shape[1] - n_vars, 1)
    name = "cstat/dof" if problem.sigma2 is None else "chi2/dof"
    return (dev / dof).reshape(problem.shape), name


# ---------------------------------------------------------------------------------- profile likelihood
PROFILE_LOCAL = (0.5, 1.0, 1.5, 2.0, 3.0)  # profile points at these multiples of the Fisher sigma, each side
PROFILE_BOX_STEPS = 8  # and at 1/8, 2/8, ..., 8/8 of the distance from the estimate to each box edge
PROFILE_INNER = (
    2  # damped Gauss-Newton iterations per profile point for every pixel (warm-started from the previous point)
)
PROFILE_CENTRE = 4  # the same at the estimate itself (re-converges the other variables there)
PROFILE_MAX = 12  # ... then more, only for the pixels still moving, up to this many per point
PROFILE_TOL = 0.01  # converged: a Gauss-Newton step promises, and gains, less than this in C
DELTA_STAT = 1.0  # 1-sigma: Delta C = 1 (C = 2 x Poisson negative log-likelihood), or Delta chi2 = 1
_FD = 1e-5  # finite-difference step of the profile's Jacobian, in box-width units (float64)


class _Chunk:
    """One block of pixels in float64, with what the profile needs: data, background, fixed values."""

    def __init__(self, problem: Problem, idx: torch.Tensor, dtype: torch.dtype) -> None:
        self.p = problem
        self.idx = idx
        self.X = problem.X[idx].to(dtype)
        self.xlogx = torch.where(self.X > 0, self.X * torch.log(self.X.clamp(min=1e-30)), torch.zeros_like(self.X))
        self.s2 = None if problem.sigma2 is None else problem.sigma2[idx].to(dtype)
        b = problem.bkg
        self.bkg = None if b is None else (b[idx] if b.shape[0] > 1 else b).to(dtype)
        self.fixed = [
            [
                None if kind == "free" else (v[idx].to(dtype) if v.ndim else v.to(dtype).expand(len(idx)))
                for kind, v in spec.sources
            ]
            for spec in problem.comps
        ]
        self.fd = _FD if dtype == torch.float64 else 1e-3

    def take(self, sub: torch.Tensor) -> "_Chunk":
        """The same block restricted to its pixels ``sub`` (positions within the block)."""
        out = object.__new__(_Chunk)
        out.p, out.fd, out.idx = self.p, self.fd, self.idx[sub]
        out.X, out.xlogx = self.X[sub], self.xlogx[sub]
        out.s2 = None if self.s2 is None else self.s2[sub]
        out.bkg = None if self.bkg is None else (self.bkg if self.bkg.shape[0] == 1 else self.bkg[sub])
        out.fixed = [[None if v is None else v[sub] for v in comp] for comp in self.fixed]
        return out

    def theta(self, c: int, U: torch.Tensor) -> torch.Tensor:
        """Physical parameters (n, P_c) of component c from normalised free maps U (K, n)."""
        cols = []
        for (kind, k), fx in zip(self.p.comps[c].sources, self.fixed[c]):
            if kind == "free":
                fp = self.p.free[k]
                cols.append(fp.low + fp.width * U[k])
            else:
                assert fx is not None  # a fixed parameter's values
                cols.append(fx)
        return torch.stack(cols, dim=1)

    def spectra(self, U: torch.Tensor) -> list[torch.Tensor]:
        return [spec.model.spectrum(self.theta(c, U)) for c, spec in enumerate(self.p.comps)]

    def model(self, A: torch.Tensor, S: list[torch.Tensor]) -> torch.Tensor:
        # sum() is typed ``Tensor | Literal[0]``: a problem has at least one component
        m = cast(torch.Tensor, sum(A[c, :, None] * S[c] for c in range(len(S))))
        if self.bkg is not None:
            m = m + self.bkg
        return m + MODEL_FLOOR

    def stat(self, m: torch.Tensor) -> torch.Tensor:
        """C = 2 sum(m - X log m) (Poisson) or chi2 per pixel: Delta stat = 1 is the 1-sigma rule."""
        if self.s2 is None:  # deviance form: a sum of small non-negative terms, accurate in float32 too
            return 2.0 * (m - self.X - self.X * torch.log(m) + self.xlogx).sum(dim=1)
        return ((self.X - m) ** 2 / self.s2).sum(dim=1)

    def jacobian(self, A: torch.Tensor, U: torch.Tensor, S: list[torch.Tensor], rows: list[int]) -> torch.Tensor:
        """d model / d [A_0.., u_rows..] as (n, nc + len(rows), C) (variables along dim 1, channels last)."""
        cols = list(S)
        for k in rows:
            users = [c for c, spec in enumerate(self.p.comps) if any(kd == "free" and v == k for kd, v in spec.sources)]
            sign = torch.where(U[k] + self.fd > 1.0, -1.0, 1.0).to(U.dtype)  # step inwards at the top edge
            Uh = U.clone()
            Uh[k] = U[k] + sign * self.fd
            col = torch.zeros_like(S[0])
            for c in users:
                dS = self.p.comps[c].model.spectrum(self.theta(c, Uh)) - S[c]
                col = col + (A[c] * sign / self.fd)[:, None] * dS
            cols.append(col)
        return torch.stack(cols, dim=1)


def _gn_iterations(ch: _Chunk, A, U, frozen: int, lam, n_iter: int):
    """Damped, projected Gauss-Newton on every variable but u_frozen; returns (A, U, stat, lam, moving).

    A step that raises a pixel's statistic is refused for that pixel (and its damping raised), so the
    statistic never increases along the iterations: each profile value is an upper bound of the true
    profile, kept close to it by the warm start along the walk. ``moving`` (n,) marks the pixels not
    yet converged: the last step's quadratic model promised more than PROFILE_TOL (the step may have
    been refused), or the accepted step gained more than that.
    """
    nc, K = A.shape[0], U.shape[0]
    rows = [j for j in range(K) if j != frozen]
    S = ch.spectra(U)
    st = ch.stat(ch.model(A, S))
    moving = torch.ones_like(st, dtype=torch.bool)
    for _ in range(n_iter):
        J = ch.jacobian(A, U, S, rows)  # (n, D, C)
        m = ch.model(A, S)
        if ch.s2 is None:
            r, h = 2.0 * (1.0 - ch.X / m), 2.0 / m
        else:
            r, h = 2.0 * (m - ch.X) / ch.s2, 2.0 / ch.s2
        g = torch.bmm(J, r[:, :, None])[:, :, 0]
        F = torch.bmm(J * h[:, None, :], J.transpose(1, 2))
        del J
        Ur = U[rows]
        delta, _ = projected_newton_delta(F, g, held_at_bounds(A, Ur, g), lam)  # the solver's own step
        A_new = torch.clamp(A - delta[:, :nc].T, min=0.0)
        U_new = U.clone()
        if rows:
            U_new[rows] = torch.clamp(Ur - delta[:, nc:].T, 0.0, 1.0)
        S_new = ch.spectra(U_new)
        st_new = ch.stat(ch.model(A_new, S_new))
        ok = torch.isfinite(st_new) & (st_new <= st)
        # not converged: the step's quadratic model still promises more than PROFILE_TOL (a refused
        # step included), or the accepted step gained more than that
        moving = (0.5 * (g * delta).sum(dim=1) > PROFILE_TOL) | (ok & (st - st_new > PROFILE_TOL))
        A = torch.where(ok[None], A_new, A)
        U = torch.where(ok[None], U_new, U)
        S = [torch.where(ok[:, None], sn, so) for sn, so in zip(S_new, S)]
        st = torch.where(ok, st_new, st)
        lam = torch.where(ok, lam / 3.0, lam * 5.0).clamp(1e-6, 1e8)
    return A, U, st, lam, moving


def _minimise_others(ch: _Chunk, A, U, frozen: int, lam, n_all: int):
    """The profile's inner minimum: ``n_all`` iterations for every pixel, then pairs of iterations for
    the pixels still moving only, up to PROFILE_MAX in all; returns (A, U, stat, lam).

    Why: two iterations leave the slow pixels (a long thermal / power-law valley) short of the
    minimum, so their profile is too high and their interval too narrow (measured on toy: with 2
    iterations per point, 6 % of the kT interval ends were off by more than 10 % of the box against
    12 iterations, 1 % now); iterating every pixel 12 times cost 5x the time, this 2x.
    """
    A, U, st, lam, moving = _gn_iterations(ch, A, U, frozen, lam, n_all)
    A, U, lam = A.clone(), U.clone(), lam.clone()  # own copies: the moving pixels are written in place
    done = n_all
    while done < PROFILE_MAX:
        sub = torch.nonzero(moving).flatten()
        if sub.numel() == 0:
            break
        n = min(2, PROFILE_MAX - done)
        a, u, s_, l_, m_ = _gn_iterations(ch.take(sub), A[:, sub], U[:, sub], frozen, lam[sub], n)
        A[:, sub], U[:, sub], st[sub], lam[sub] = a, u, s_, l_
        moving = torch.zeros_like(moving)
        moving[sub] = m_
        done += n
    return A, U, st, lam


def _crossing(v_in, d_in, v_out, d_out):
    """Where Delta stat reaches DELTA_STAT between an inside point and an outside one (linear in sqrt)."""
    a = torch.sqrt(d_in.clamp(min=0.0))
    b = torch.sqrt(d_out.clamp(min=0.0))
    t = ((math.sqrt(DELTA_STAT) - a) / (b - a).clamp(min=1e-12)).clamp(0.0, 1.0)
    return torch.where(a >= math.sqrt(DELTA_STAT), v_in, v_in + t * (v_out - v_in))


def _profile_one(ch: _Chunk, A0, U0, k: int, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Delta-stat = 1 interval [lo, hi] (normalised units) of free parameter k for one chunk of pixels."""
    n = A0.shape[1]
    lam0 = torch.full((n,), 1e-3, dtype=A0.dtype, device=A0.device)
    Ac, Uc, st_c, _ = _minimise_others(ch, A0, U0, k, lam0, PROFILE_CENTRE)
    u_hat = U0[k]
    best = st_c.clone()
    sides = []
    for sgn in (-1.0, 1.0):
        room = (1.0 - u_hat) if sgn > 0 else u_hat
        loc = [torch.clamp(u_hat + sgn * t * scale, 0.0, 1.0) for t in PROFILE_LOCAL]
        box = [u_hat + sgn * room * (j / PROFILE_BOX_STEPS) for j in range(1, PROFILE_BOX_STEPS + 1)]
        pts = torch.stack(loc + box, dim=1)
        pts = pts.sort(dim=1, descending=sgn < 0).values  # outwards from the estimate
        A, U, lam = Ac, Uc.clone(), lam0.clone()
        per_point, states = [], []
        for i in range(pts.shape[1]):
            U = U.clone()
            U[k] = pts[:, i]
            A, U, st, lam = _minimise_others(ch, A, U, k, lam.clamp(max=1e-2), PROFILE_INNER)
            per_point.append(st)
            states.append((A, U))
        stats = torch.stack(per_point, dim=1)
        best = torch.minimum(best, stats.min(dim=1).values)
        sides.append((pts, stats, states))
    ends = []
    for (pts, stats, states), sgn in zip(sides, (-1.0, 1.0)):
        d = stats - best[:, None]
        d0 = st_c - best
        P = pts.shape[1]
        inside = d <= DELTA_STAT
        idx = torch.arange(P, device=d.device).expand_as(d)
        last = torch.where(inside, idx, torch.full_like(idx, -1)).amax(dim=1)  # outermost inside point, -1: none
        li = last.clamp(min=0)
        v_in = torch.where(last >= 0, pts.gather(1, li[:, None])[:, 0], u_hat)
        d_in = torch.where(last >= 0, d.gather(1, li[:, None])[:, 0], d0)
        oi = (last + 1).clamp(max=P - 1)
        v_out = pts.gather(1, oi[:, None])[:, 0]
        d_out = d.gather(1, oi[:, None])[:, 0]
        at_edge = last == P - 1
        end = torch.where(at_edge, v_in, _crossing(v_in, d_in, v_out, d_out))
        # one refinement: the profile at the interpolated end, warm-started from the inside point
        refine = ~at_edge & (d_in < DELTA_STAT) & (end != v_in) & (end != v_out)
        if bool(refine.any()):
            A_in = torch.stack([s[0] for s in states], dim=0)  # (P, nc, n)
            U_in = torch.stack([s[1] for s in states], dim=0)
            Ar = torch.where((last >= 0)[None], A_in[li, :, torch.arange(n, device=li.device)].T, Ac)
            Ur = torch.where((last >= 0)[None], U_in[li, :, torch.arange(n, device=li.device)].T, Uc).clone()
            Ur[k] = end
            _, _, st_e, _ = _minimise_others(ch, Ar, Ur, k, lam0.clone(), PROFILE_INNER)
            d_e = st_e - best
            e_in = d_e <= DELTA_STAT
            new_end = torch.where(e_in, _crossing(end, d_e, v_out, d_out), _crossing(v_in, d_in, end, d_e))
            end = torch.where(refine, new_end, end)
        ends.append(end)
    return torch.minimum(ends[0], u_hat), torch.maximum(ends[1], u_hat)


def profile_intervals(
    problem: Problem, A: torch.Tensor, U: torch.Tensor, scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel profile-likelihood 1-sigma intervals [lo, hi] (K, N) of every free parameter, in [0, 1].

    For free parameter k of pixel p, the profile statistic is C_k(v) = min over the pixel's other
    variables (all amplitudes >= 0 and the other free parameters in their boxes) of the pixel's
    C-statistic (2 x Poisson negative log-likelihood; chi2 for the chi-square cost) with u_k = v.
    The interval is the hull of {v : C_k(v) <= C_min + 1} and the estimate, where C_min is the
    smallest statistic found (at or near the estimate, or elsewhere if the walk finds a deeper
    minimum), truncated at the validity box. The profile is evaluated, for all pixels at once, at
    points walking outwards from the estimate on each side (multiples of ``scale``, the Fisher sigma,
    then 1/8 ... 8/8 of the way to the box edge, so a second minimum anywhere in the box is seen),
    each warm-started from the previous one, the other variables minimised until a Gauss-Newton step
    gains less than PROFILE_TOL (:func:`_minimise_others`); the crossing of C_min + 1 is interpolated linearly in
    sqrt(C - C_min) (exact for a quadratic profile) and refined once. Pixels with no data (masked, or
    no counts with the Poisson cost) do not constrain anything: their interval is the whole box.
    """
    K, N = U.shape
    lo = torch.zeros(K, N, dtype=problem.dtype, device=U.device)
    hi = torch.ones(K, N, dtype=problem.dtype, device=U.device)
    if K == 0:
        return lo, hi
    act = problem.w > 0
    if problem.sigma2 is None:
        act = act & (problem.X.sum(dim=1) > 0)
    sel = torch.nonzero(act).flatten()
    if scale is None:
        scale = torch.full((K, N), 0.1, dtype=problem.dtype, device=U.device)
    scale = torch.nan_to_num(scale.to(problem.dtype), nan=0.3, posinf=0.3).clamp(1e-4, 0.3)
    C = problem.X.shape[1]
    # small blocks stay in the CPU caches (measured 1.6x faster than one big block); big ones on a GPU
    step = max(128, (CHUNK_ELEMENTS if problem.device.type != "cpu" else 2**19) // max(1, C))
    dt = problem.dtype
    with torch.no_grad():
        for s in range(0, len(sel), step):
            idx = sel[s : s + step]
            ch = _Chunk(problem, idx, dt)
            A0 = A[:, idx].to(dt).clamp(min=0.0)
            U0 = U[:, idx].to(dt).clamp(0.0, 1.0)
            for k in range(K):
                lo[k, idx], hi[k, idx] = _profile_one(ch, A0, U0, k, scale[k, idx])
    return lo, hi


def identified(problem: Problem, A: torch.Tensor, U: torch.Tensor | None = None) -> torch.Tensor:
    """(K, N) bool: free parameter k is used by a component with a positive amplitude at pixel p.

    In the share form give ``U`` too (the components' amplitudes are total x share); its share maps
    count as identified where the total is positive.
    """
    n_share = getattr(problem, "n_share", 0)
    if n_share:
        assert U is not None, "the share form needs U"
        Ac = problem.amplitudes(A, U)
    else:
        Ac = A
    used = torch.zeros(problem.n_free, A.shape[1], dtype=torch.bool, device=A.device)
    for c, spec in enumerate(problem.comps):
        for kind, k in spec.sources:
            if kind == "free":
                used[k] |= Ac[c] > 0
    if n_share:
        used[problem.n_phys :] = (A[0] > 0)[None]
    return used


def profile_sigmas(
    problem: Problem, A: torch.Tensor, U: torch.Tensor
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per-pixel fit uncertainties: 1-sigma maps and the Delta C = 1 intervals (physical units).

    Amplitudes: the Fisher sigma (as :func:`fisher_sigmas`). Free parameters: the profile-likelihood
    interval of :func:`profile_intervals` (lower, upper maps), and as sigma HALF ITS WIDTH: for a
    Gaussian likelihood that is the Fisher sigma; where the likelihood is not Gaussian (a skewed or
    flat profile, an estimate on a box edge) it is the symmetric summary of an interval that
    contains the estimate (the bounds themselves are returned too, for asymmetric error bars). The
    half-width rather than the distance to the far end: the latter would quote, for an estimate on a
    box edge with a box-wide interval, the whole box width as 1 sigma. A parameter the pixel does not
    identify (no component using it has a positive fitted amplitude; the per-pixel fit reports it at
    the box centre) gets the box as interval and the box standard deviation, width / sqrt(12), as
    sigma: the spread of the uniform box prior when the data say nothing.
    """
    sig = _fisher_sig(problem, A, U)  # (N, D), may be inf
    nc = problem.n_comp
    lo, hi = profile_intervals(problem, A, U, sig[:, nc:].T)
    ident = identified(problem, A)
    half = torch.where(ident, 0.5 * (hi - lo), torch.full_like(lo, 1.0 / math.sqrt(12.0)))
    lo = torch.where(ident, lo, torch.zeros_like(lo))
    hi = torch.where(ident, hi, torch.ones_like(hi))
    sig_np = sig.cpu().numpy()
    half_np, lo_np, hi_np = (t.double().cpu().numpy() for t in (half, lo, hi))
    ny, nx = problem.shape
    out: dict[str, np.ndarray] = {}
    intervals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c, spec in enumerate(problem.comps):
        out[f"{spec.name} amplitude"] = sig_np[:, c].reshape(ny, nx)
        for p, name in enumerate(spec.model.param_names):
            kind, k = spec.sources[p]
            key = f"{spec.name} {name}"
            if kind == "free":
                fp = problem.free[k]
                out[key] = (half_np[k] * fp.width).reshape(ny, nx)
                intervals[key] = (
                    (fp.low + fp.width * lo_np[k]).reshape(ny, nx),
                    (fp.low + fp.width * hi_np[k]).reshape(ny, nx),
                )
            else:
                out[key] = np.zeros((ny, nx))
    return out, intervals
