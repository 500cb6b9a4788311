"""A global start: the best point of a grid over the free parameters, per pixel (no model defaults).

Why: SUSHI's maps start from a fit of the binned cube (:func:`sushi.coarse_start`), and that fit
itself started from the models' default values; the final objective then anchors the maps to the
start. On real data two starts can land in two basins of nearly equal C-statistic (MSH 15-52: a
thermal knot at 3.8 keV from the default start, at 0.6 keV from 1 keV), so the answer depended on a
number nobody chose. With cheap emulators the whole box can be searched instead.

What :func:`grid_scan` does, for a :class:`~napari_sushi.core.solver.problem.Problem` (usually the
binned one of the coarse start):

1. The grid is over the problem's free maps U (normalised to [0, 1]), not per component, so a linked
   parameter (one map shared by two components) is one axis and a fixed parameter no axis; maps that
   must not move (a user's ``init``) are ``held`` at their ``U0`` value. Every scanned map gets the
   same number of nodes, at the centres of equal cells ((i + 1/2) / n: no node on a box edge), as many
   as ``max_combinations`` allows, at most ``max_nodes``: 12 per map for 1-3 maps (12^3 = 1728
   combinations for thermal (kT, velocity) x power law (index)), 6 for 4, 4 for 5, 3 for 6-7.
   Each combination's spectra are evaluated once (per pixel only for a component whose fixed or
   held values vary across pixels).
2. Per pixel and combination the non-negative amplitudes are fitted. Poisson EM over all pixels x
   combinations x channels costs about 14 ns an element-iteration on one CPU core (~140 s for the
   binned toy), so the work goes in two stages:
   a. every combination: the amplitudes minimising a weighted least-squares approximation of the
      cost (Pearson weights from the pixel's counts times the mean spectrum of the data; for
      ``cost="chi2"`` the problem's own weights, so this stage is exact), by matrix products over
      channels and a few projected coordinate-descent sweeps of the tiny (n_comp x n_comp) NNLS;
   b. the ``keep`` best combinations of each pixel by that approximation: ``n_em`` Poisson EM
      (multiplicative) updates ``A_c <- A_c sum_e S_ce X_e / m_e / sum_e S_ce`` from the stage-a
      amplitudes (background in ``m``), then the exact cost ``sum(m - X log m)`` decides.
   ``keep=None`` runs stage b on every combination (EM from the counts split evenly): the
   reference the two-stage scan is checked against in the tests.
3. Per pixel, the combination with the lowest cost wins; pixels without net counts (or outside the
   mask) take the median of the scanned pixels' winning values and keep their ``A0``.

It only chooses a start: the objective the fit minimises is unchanged.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from napari_sushi.core.solver.problem import MODEL_FLOOR, Problem
from napari_sushi.core.solver.stopping import is_cancelled

MAX_COMBINATIONS = 2048  # bound on the grid's size (product over the scanned maps)
MAX_NODES = 12  # nodes per scanned map at most (12 per map for 1-3 maps)
KEEP = 24  # combinations per pixel that get the exact Poisson EM (stage b)
N_EM = 30  # Poisson EM updates in stage b
NNLS_SWEEPS = 8  # projected coordinate-descent sweeps of stage a's small NNLS
CHUNK_ELEMENTS = 2**23  # the largest (pixels x combinations x components x channels) tensor of a chunk


@dataclass
class ScanResult:
    """The scan's winner per pixel and what it cost."""

    U: torch.Tensor  # (K, N) normalised free maps: the winner's nodes (held rows: U0)
    A: torch.Tensor  # (n_comp, N) the winner's fitted amplitudes
    cost: torch.Tensor  # (N,) the winner's cost (the problem's pixel cost; inf where not scanned)
    scanned: torch.Tensor  # (N,) bool: pixels that were scanned (counted, with net counts > 0)
    rows: list[int]  # the free maps scanned (grid axes)
    nodes: list[int]  # nodes per scanned map
    seconds: float

    @property
    def n_combinations(self) -> int:
        return math.prod(self.nodes)


def grid_nodes(n_rows: int, max_combinations: int = MAX_COMBINATIONS, max_nodes: int = MAX_NODES) -> list[int]:
    """Nodes per scanned map: the same n for each, the largest with n^n_rows <= max_combinations (2..max_nodes)."""
    if n_rows <= 0:
        return []
    n = int(math.floor(max_combinations ** (1.0 / n_rows) + 1e-9))
    return [max(2, min(int(max_nodes), n))] * n_rows


def grid_points(nodes: Sequence[int], dtype=torch.float64, device=None) -> torch.Tensor:
    """(G, R) the product grid of cell centres (i + 1/2) / n of each axis (G = 1, R = 0 for no axis)."""
    if not nodes:
        return torch.zeros(1, 0, dtype=dtype, device=device)
    axes = [(torch.arange(n, dtype=dtype, device=device) + 0.5) / n for n in nodes]
    return torch.cartesian_prod(*axes).reshape(-1, len(nodes))


def _constant(v: torch.Tensor) -> bool:
    return v.ndim == 0 or v.numel() == 0 or bool((v == v.reshape(-1)[0]).all())


class _Spectra:
    """Each component's spectra at every grid combination: shared (G, C) or per pixel (P, G, C)."""

    def __init__(self, problem: Problem, rows: list[int], grid: torch.Tensor) -> None:
        self.problem, self.grid = problem, grid.to(problem.dtype)
        self.pos = {k: j for j, k in enumerate(rows)}
        self.shared: list[torch.Tensor | None] = []
        for spec in problem.comps:
            varying = any(
                (kind == "fixed" and not _constant(val))
                or (kind == "free" and val not in self.pos and not _constant(problem.U0[val]))
                for kind, val in spec.sources
            )
            self.shared.append(
                None if varying else self._eval(spec, torch.zeros(1, dtype=torch.long, device=problem.device))[0]
            )

    @property
    def all_shared(self) -> bool:
        return all(s is not None for s in self.shared)

    def _eval(self, spec, ids: torch.Tensor) -> torch.Tensor:
        """(P, G, C) spectra of one component at pixels ``ids``."""
        pb, G, P = self.problem, self.grid.shape[0], ids.numel()
        cols = []
        for kind, val in spec.sources:
            if kind == "free":
                fp = pb.free[val]
                u = (
                    self.grid[:, self.pos[val]][None].expand(P, G)
                    if val in self.pos
                    else pb.U0[val, ids][:, None].expand(P, G)
                )
                cols.append(fp.low + fp.width * u)
            else:
                v = val if val.ndim == 0 else val[ids][:, None]
                cols.append(torch.as_tensor(v, dtype=pb.dtype, device=pb.device).expand(P, G))
        th = torch.stack(cols, dim=-1).reshape(P * G, -1)
        with torch.no_grad():
            return spec.model.spectrum(th).reshape(P, G, -1)

    def chunk(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Per component: (G, C) if shared, else (P, G, C) for pixels ``ids``."""
        return [s if s is not None else self._eval(spec, ids) for s, spec in zip(self.shared, self.problem.comps)]


def _nnls(H: torch.Tensor, b: torch.Tensor, sweeps: int) -> torch.Tensor:
    """argmin_{A >= 0} A^T H A - 2 b^T A for batches of small systems: H (..., n, n), b (..., n).

    From the unconstrained solution clipped at 0, projected coordinate-descent sweeps (exact for one
    component; for two, the active set is right after the first sweep)."""
    n = b.shape[-1]
    eye = torch.eye(n, dtype=H.dtype, device=H.device)
    diag = torch.diagonal(H, dim1=-2, dim2=-1).clamp(min=1e-30)
    Hr = H + 1e-9 * diag[..., None] * eye
    A, info = torch.linalg.solve_ex(Hr, b[..., None])
    A = torch.nan_to_num(A[..., 0], nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0.0)
    A = torch.where((info != 0)[..., None], (b / diag).clamp(min=0.0), A)
    if n == 1:
        return (b / diag).clamp(min=0.0)
    for _ in range(sweeps):
        for c in range(n):
            r = b[..., c] - (H[..., c, :] * A).sum(-1) + H[..., c, c] * A[..., c]
            A[..., c] = (r / diag[..., c]).clamp(min=0.0)
    return A


def _quadratic_stage(pb: Problem, S: list[torch.Tensor], X, bk, W) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage a: NNLS amplitudes (P, G, nc) and the weighted least-squares value (P, G) of every combination."""
    Y = X - bk
    nc = len(S)
    if all(s.ndim == 2 for s in S):  # shared spectra: everything by matrix products over channels
        St = torch.stack(S, dim=1)  # (G, nc, C)
        G, C = St.shape[0], St.shape[2]
        b = ((Y * W) @ St.reshape(G * nc, C).T).reshape(-1, G, nc)
        Q = (St[:, :, None, :] * St[:, None, :, :]).reshape(G * nc * nc, C)
        H = (W @ Q.T).reshape(-1, G, nc, nc)
    else:
        P = X.shape[0]
        St = torch.stack([s.expand(P, *s.shape[-2:]) if s.ndim == 2 else s for s in S], dim=2)  # (P, G, nc, C)
        b = torch.einsum("pl,pgcl->pgc", Y * W, St)
        SW = St * W[:, None, None, :]
        G = St.shape[1]
        H = torch.bmm(SW.reshape(P * G, nc, -1), St.reshape(P * G, nc, -1).transpose(1, 2)).reshape(P, G, nc, nc)
    A = _nnls(H, b, NNLS_SWEEPS)
    q = (A[..., :, None] * H * A[..., None, :]).sum((-1, -2)) - 2.0 * (b * A).sum(-1)
    return A, q


def _selected(S: list[torch.Tensor], sel: torch.Tensor) -> torch.Tensor:
    """(P, k, nc, C): the spectra of the combinations ``sel`` (P, k) of each pixel."""
    out = []
    for s in S:
        if s.ndim == 2:
            out.append(s[sel])
        else:
            out.append(torch.gather(s, 1, sel[:, :, None].expand(*sel.shape, s.shape[-1])))
    return torch.stack(out, dim=2)


def _poisson_em(Ssel: torch.Tensor, A: torch.Tensor, X: torch.Tensor, bk: torch.Tensor, n_em: int):
    """Stage b: ``n_em`` EM updates of A (P, k, nc) for spectra Ssel (P, k, nc, C); returns (A, cost (P, k))."""
    P, k, nc, C = Ssel.shape
    Sf = Ssel.reshape(P * k, nc, C)
    s = Ssel.sum(-1).clamp(min=1e-30)  # 1 for unit-sum spectra on the fitted channels
    base = bk[:, None, :] + MODEL_FLOOR
    for _ in range(n_em):
        m = torch.bmm(A.reshape(P * k, 1, nc), Sf).reshape(P, k, C) + base
        r = X[:, None, :] / m
        A = A * torch.bmm(Sf, r.reshape(P * k, C, 1)).reshape(P, k, nc) / s
    m = torch.bmm(A.reshape(P * k, 1, nc), Sf).reshape(P, k, C) + base
    return A, (m - X[:, None, :] * torch.log(m)).sum(-1)


def grid_scan(
    problem: Problem,
    held: Sequence[int] = (),
    *,
    max_combinations: int = MAX_COMBINATIONS,
    max_nodes: int = MAX_NODES,
    keep: int | None = KEEP,
    n_em: int = N_EM,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> ScanResult | None:
    """Per pixel, the best combination of a product grid over the free maps not in ``held`` (see the module).

    ``problem`` must not be in the share form (amplitudes per component). ``held``: indices of free maps
    kept at ``problem.U0`` (e.g. a user's init). ``keep``: combinations per pixel refined by Poisson EM
    (None: all of them, from the counts split evenly). Returns None if ``cancel`` was set.
    """
    if problem.n_share:
        raise ValueError("grid_scan needs per-component amplitudes; scan the problem before share_form.")
    t0 = time.perf_counter()
    pb = problem
    rows = [k for k in range(pb.n_free) if k not in set(held)]
    nodes = grid_nodes(len(rows), max_combinations, max_nodes)
    grid = grid_points(nodes, pb.dtype, pb.device)  # (G, R)
    G, nc, C = grid.shape[0], pb.n_comp, pb.X.shape[1]
    spectra = _Spectra(pb, rows, grid)
    poisson = pb.sigma2 is None
    k = G if keep is None else max(1, min(int(keep), G))

    with torch.no_grad():
        bkg_full = pb.bkg if pb.bkg is not None else torch.zeros(1, C, dtype=pb.dtype, device=pb.device)
        net = pb.X.sum(1) - (bkg_full.sum(1) if bkg_full.shape[0] > 1 else bkg_full.sum())
        scanned = (pb.w > 0) & (net > 0)
        ids_all = torch.nonzero(scanned).reshape(-1)
        # Pearson weights' shape: the mean net spectrum of the scanned pixels, mixed with a flat one
        mean = (pb.X[ids_all] - (bkg_full[ids_all] if bkg_full.shape[0] > 1 else bkg_full)).clamp(min=0).sum(0)
        mean = mean / mean.sum().clamp(min=1e-30)
        shape = 0.9 * mean + 0.1 / C
        per_pixel = G * nc * C if not spectra.all_shared else G * nc * nc * 4 + k * nc * C * 3
        if keep is None:
            per_pixel = max(per_pixel, G * nc * C * 3)
        P = max(1, int(CHUNK_ELEMENTS // max(1, per_pixel)))
        best_u = torch.zeros(len(rows), ids_all.numel(), dtype=pb.dtype, device=pb.device)
        best_A = torch.zeros(nc, ids_all.numel(), dtype=pb.dtype, device=pb.device)
        best_c = torch.zeros(ids_all.numel(), dtype=pb.dtype, device=pb.device)
        for s0 in range(0, ids_all.numel(), P):
            if is_cancelled(cancel):
                return None
            ids = ids_all[s0 : s0 + P]
            X = pb.X[ids]
            bk = bkg_full[ids] if bkg_full.shape[0] > 1 else bkg_full.expand(ids.numel(), C)
            T = net[ids]
            S = spectra.chunk(ids)
            if keep is None and poisson:
                sel = torch.arange(G, device=pb.device)[None].expand(ids.numel(), G)
                A = (T / nc)[:, None, None].expand(ids.numel(), G, nc).clone()
            else:
                W = 1.0 / (T[:, None] * shape + bk + MODEL_FLOOR) if pb.sigma2 is None else 1.0 / pb.sigma2[ids]
                A_q, q = _quadratic_stage(pb, S, X, bk, W)
                sel = torch.topk(q, k, dim=1, largest=False).indices  # (P, k)
                A = torch.gather(A_q, 1, sel[:, :, None].expand(*sel.shape, nc))
                A = torch.maximum(A, (1e-3 * T / nc)[:, None, None])  # EM cannot leave an exact 0
            Ssel = _selected(S, sel)
            if poisson:
                A, cost = _poisson_em(Ssel, A, X, bk, n_em)
            else:
                assert pb.sigma2 is not None  # chi-square
                m = (A[..., None] * Ssel).sum(2) + bk[:, None, :] + MODEL_FLOOR
                cost = ((X[:, None, :] - m) ** 2 / pb.sigma2[ids][:, None, :]).sum(-1)
            j = torch.argmin(cost, dim=1)
            r = torch.arange(ids.numel(), device=pb.device)
            win = sel[r, j]
            best_u[:, s0 : s0 + P] = grid[win].T
            best_A[:, s0 : s0 + P] = A[r, j].T
            best_c[s0 : s0 + P] = cost[r, j]

        U = pb.U0.clone()
        A_out = pb.A0.clone()
        cost_out = torch.full((pb.n_pix,), float("inf"), dtype=pb.dtype, device=pb.device)
        if ids_all.numel():
            for i, kk in enumerate(rows):
                U[kk] = best_u[i].median()  # where nothing was scanned: the scanned pixels' median
                U[kk, ids_all] = best_u[i]
            A_out[:, ids_all] = best_A
            cost_out[ids_all] = best_c * pb.w[ids_all]
    return ScanResult(
        U=U, A=A_out, cost=cost_out, scanned=scanned, rows=rows, nodes=nodes, seconds=time.perf_counter() - t0
    )


__all__ = [
    "CHUNK_ELEMENTS",
    "KEEP",
    "MAX_COMBINATIONS",
    "MAX_NODES",
    "N_EM",
    "ScanResult",
    "grid_nodes",
    "grid_points",
    "grid_scan",
]
