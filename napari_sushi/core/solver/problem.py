"""Turn (cube, components, settings) into the tensors the solvers iterate on.

Handles band selection and model/cube grid matching, spatial binning, mask, background, chi-square
errors, linked and fixed parameters, initial values / warm start, and device/dtype choice. The
forward model, its Jacobian and the per-pixel Fisher information live here too, because the SUSHI
solver, the per-pixel fit and the uncertainty estimate all share them.

Free parameters are stored in normalised coordinates ``u`` in [0, 1] of their validity box (linked
parameters share one map whose box is the intersection of the linked boxes); amplitudes ``A >= 0``
are expected counts in the band. Pixels are flattened: maps (Y, X) become vectors (N,).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD

from napari_sushi.core.cube import HyperCube, as_cube
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.spectral.base import ModelGridError, SpectralModel
from napari_sushi.core.spectral.matching import match_model_to_cube

MODEL_FLOOR = 1e-6  # counts added to every model bin so log(model) stays finite
CHUNK_ELEMENTS = 2**24  # Jacobians are evaluated for at most this many (pixel x channel x variable) at once
CPU_BLOCK_ELEMENTS = 2**21  # ... and in blocks of this many on the CPU (see _chunk)
COST_BLOCK_FACTOR = 2  # the cost alone runs in blocks this many times larger (see Problem.costs)
SPARSE_COUNTS = 0.25  # below this fraction of bins with counts, the Poisson cost sums over those bins only


class FitSetupError(ValueError):
    """The fit request is inconsistent (message says what to change)."""


def resolve_device(name: str) -> torch.device:
    """ "auto" -> cuda if available, else mps if available, else cpu; other names are checked."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FitSetupError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FitSetupError("device 'mps' was requested but Apple MPS is not available; use cpu or auto.")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise FitSetupError(f"unknown device {name!r}; use auto, cpu, cuda or mps.")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    table = {"float32": torch.float32, "float64": torch.float64}
    if name not in table:
        raise FitSetupError(f"dtype must be float32 or float64; got {name!r}.")
    return table[name]


@dataclass
class FreeParam:
    """One free parameter map (possibly shared by linked component parameters)."""

    keys: list[str]  # "<component>.<parameter>" it stands for
    low: float
    high: float
    unit: str
    kmad: float

    @property
    def width(self) -> float:
        return self.high - self.low


# Where one parameter of a component comes from: ("free", k) row k of U, or ("fixed", tensor (N,)).
# The tag says which; the value is Any because mypy cannot narrow a tagged tuple through unpacking.
Source = tuple[str, Any]


@dataclass
class ComponentSpec:
    """How to assemble one component's theta (n, P): per parameter either a free map or a fixed value."""

    name: str
    model: SpectralModel
    sources: list[Source]  # ("free", k) or ("fixed", tensor (N,))


@dataclass
class Problem:
    """Everything a solver iteration needs, on the device."""

    X: torch.Tensor  # (N, C) counts
    w: torch.Tensor  # (N,) 1 for pixels that count, 0 otherwise
    bkg: torch.Tensor | None  # (N, C) or (1, C) expected background counts
    sigma2: torch.Tensor | None  # (N, C) chi-square variances, None for Poisson
    comps: list[ComponentSpec]
    free: list[FreeParam]
    shape: tuple[int, int]
    cube: HyperCube  # the cube actually fitted (band-selected, binned)
    mask: np.ndarray  # (Y, X) bool
    signal: torch.Tensor  # (N,) bool: counted pixels with counts > 0
    A0: torch.Tensor  # (n_comp, N) initial amplitudes
    U0: torch.Tensor  # (K, N) initial normalised parameters
    device: torch.device
    dtype: torch.dtype
    chunk: int = 16384
    derivative: str = "auto"  # "auto", "fd" one-sided differences or "ad" exact (FitSettings.derivative)
    notes: list[str] = field(default_factory=list)
    n_share: int = 0  # share form (see :func:`share_form`): the last n_share rows of U are the components' shares

    @property
    def n_amp(self) -> int:
        """Amplitude variables per pixel: one per component, or one total in the share form."""
        return 1 if self.n_share else len(self.comps)

    @property
    def n_phys(self) -> int:
        """Free physical parameter maps (the rows of U before the share maps)."""
        return len(self.free) - self.n_share

    def shares(self, U: torch.Tensor, idx: slice | None = None) -> torch.Tensor:
        """(n_comp, n) each component's share of the pixel's counts (stick-breaking of the share maps)."""
        sl = idx if idx is not None else slice(None)
        s = U[self.n_phys :, sl]
        rest = torch.ones_like(s[0])
        out = []
        for j in range(self.n_share):
            out.append(rest * s[j])
            rest = rest * (1.0 - s[j])
        out.append(rest)
        return torch.stack(out)

    def share_jacobian(self, U: torch.Tensor, idx: slice | None = None) -> torch.Tensor:
        """(n_comp, n_share, n): d share_c / d s_j of :meth:`shares`."""
        sl = idx if idx is not None else slice(None)
        s = U[self.n_phys :, sl]
        nc, ns = len(self.comps), self.n_share
        out = torch.zeros(nc, ns, s.shape[1], dtype=s.dtype, device=s.device)
        for c in range(nc):
            for j in range(min(c + 1, ns)):
                d = torch.ones_like(s[0])
                for i in range(min(c, ns)):
                    if i != j:
                        d = d * (1.0 - s[i])
                if c < ns:
                    d = d * (s[c] if j != c else 1.0)
                out[c, j] = d if j == c else -d
        return out

    def amplitudes(self, A: torch.Tensor, U: torch.Tensor, idx: slice | None = None) -> torch.Tensor:
        """(n_comp, n) expected counts of each component: A itself, or the total times the shares."""
        sl = idx if idx is not None else slice(None)
        if not self.n_share:
            return A[:, sl]
        return A[0, sl][None] * self.shares(U, idx)

    @property
    def n_pix(self) -> int:
        return self.X.shape[0]

    @property
    def n_comp(self) -> int:
        return len(self.comps)

    @property
    def n_free(self) -> int:
        return len(self.free)

    # ------------------------------------------------------------------ forward model
    def thetas(self, U: torch.Tensor, idx: slice | None = None) -> list[torch.Tensor]:
        """Physical parameters (n, P_c) of every component for pixels ``idx`` from free maps U (K, N)."""
        sl = idx if idx is not None else slice(None)
        out = []
        for spec in self.comps:
            cols = []
            for kind, val in spec.sources:
                if kind == "free":
                    fp = self.free[val]
                    cols.append(fp.low + fp.width * U[val, sl])
                else:
                    cols.append(val[sl] if val.ndim else val.expand(U[0, sl].shape))
            out.append(torch.stack(cols, dim=1))
        return out

    def model(self, A: torch.Tensor, U: torch.Tensor, idx: slice | None = None) -> torch.Tensor:
        """Expected counts (n, C) for pixels ``idx``."""
        Ac = self.amplitudes(A, U, idx)
        return self._expected(Ac, [spec.model.spectrum(th) for spec, th in zip(self.comps, self.thetas(U, idx))], idx)

    def _expected(self, Ac: torch.Tensor, spectra: list[torch.Tensor], idx: slice | None) -> torch.Tensor:
        """sum_c Ac S_c + background + MODEL_FLOOR, in one order of operations for every caller (the
        line search compares costs from :meth:`costs` with those from :meth:`grad_fisher`: they must
        round alike)."""
        sl = idx if idx is not None else slice(None)
        m = spectra[0] * Ac[0, :, None]  # a new tensor: the rest accumulates into it in place
        for c in range(1, len(spectra)):
            m.addcmul_(spectra[c], Ac[c, :, None])
        if self.bkg is not None:
            m.add_(self.bkg[sl] if self.bkg.shape[0] > 1 else self.bkg)
        return m.add_(MODEL_FLOOR)

    def pixel_cost(self, m: torch.Tensor, idx: slice | None = None) -> torch.Tensor:
        """Per-pixel cost (n,): Poisson sum(m - X log m) or chi-square sum((X - m)^2 / sigma^2).

        Poisson: where few bins hold counts (most pixels of a photon-counting cube), ``X log m`` is summed
        over the bins with counts only (:meth:`_counts_support`): one gather and one log over those
        instead of a log, product and difference over every bin (toy: 10 % of the bins).
        """
        sl = idx if idx is not None else slice(None)
        X = self.X[sl]
        if self.sigma2 is not None:
            return ((X - m) ** 2 / self.sigma2[sl]).sum(dim=1) * self.w[sl]
        support = self._counts_support(sl)
        if support is None:
            c = (m - X * torch.log(m)).sum(dim=1)
        else:
            rows, flat, counts = support
            xlogm = torch.zeros(m.shape[0], dtype=m.dtype, device=m.device)
            xlogm = xlogm.index_add(0, rows, counts * torch.log(m.reshape(-1)[flat]))
            c = m.sum(dim=1) - xlogm
        return c * self.w[sl]

    def _counts_support(self, sl: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The bins with counts of pixels ``sl``: (row in the block, flat index in the block's (n, C),
        counts), or None where at least SPARSE_COUNTS of the bins hold counts (the dense sum is then
        cheaper), and on accelerators (their scatter-add sums in no fixed order, and the line search
        compares two evaluations of one point: they must be equal). Found once per block and kept (the
        data do not change during a fit; ``replace`` gives a new Problem, e.g. a bootstrap replica, its
        own)."""
        if self.device.type != "cpu":
            return None
        start, stop, _ = sl.indices(self.n_pix)
        cache = self.__dict__.setdefault("_support_cache", {})
        key = (start, stop)
        if key not in cache:
            X = self.X[start:stop]
            nz = torch.nonzero(X)
            if nz.shape[0] >= SPARSE_COUNTS * X.numel():
                cache[key] = None
            else:
                rows, cols = nz[:, 0], nz[:, 1]
                cache[key] = (rows, rows * X.shape[1] + cols, X[rows, cols])
        return cache[key]

    def costs(self, A: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """Per-pixel cost (N,) over all pixels, computed chunk by chunk (bounded memory).

        The blocks are COST_BLOCK_FACTOR times the Jacobian's (no Jacobian: fewer, larger blocks pay
        the per-operation overhead less often; toy, one thread: 1,118 pixels 0.025 s, 2,048 0.022 s).
        """
        out = []
        step = self.chunk * COST_BLOCK_FACTOR
        with torch.no_grad():
            for s in range(0, self.n_pix, step):
                sl = slice(s, min(s + step, self.n_pix))
                out.append(self.pixel_cost(self.model(A, U, sl), sl))
        return torch.cat(out)

    def deviance(self, m: torch.Tensor, idx: slice | None = None) -> torch.Tensor:
        """Per-pixel C-stat with the data term, 2 sum(m - X + X log(X/m)) (~chi2), or chi-square."""
        sl = idx if idx is not None else slice(None)
        X = self.X[sl]
        if self.sigma2 is not None:
            return self.pixel_cost(m, idx)
        xlx = torch.where(X > 0, X * torch.log(torch.clamp(X, min=1e-30) / m), torch.zeros_like(X))
        return 2.0 * (m - X + xlx).sum(dim=1) * self.w[sl]

    # ------------------------------------------------------------------ Jacobian and Fisher
    def _spectra_and_steps(
        self, model: SpectralModel, th: torch.Tensor, cols: list[int], scales: list[float]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spectra S (n, C) and what their derivatives along the parameter columns ``cols`` of th need.

        Returns (S, T (q, n, C), factors (q, n)): the derivative along column i is
        ``(T[i] - S) * factors[i, :, None]`` with one-sided finite differences (:func:`derivative_kind`
        "fd": T are the spectra stepped inwards from the box edge, computed with S in one model call
        of (1 + q) n rows, factors +-1/step), else ``T[i] * factors[i, :, None]`` (exact: the model's
        own ``spectrum_and_tangents``, or forward-mode AD with all tangents in one batched pass; factors
        1). The factors are left for the caller to fold into the per-pixel scale of the Jacobian column
        (no pass over the spectra).
        """
        n, P = th.shape
        q = len(cols)
        if q == 0:
            return model.spectrum(th), th.new_zeros(0, n, 1), th.new_zeros(0, n)
        kind = derivative_kind(self.derivative, model)
        if kind == "own":
            S, T = model.spectrum_and_tangents(th, cols, scales)
            return S, T, th.new_ones(q, n)
        tangent = torch.zeros(q, n, P, dtype=th.dtype, device=th.device)
        for i, (p, sc) in enumerate(zip(cols, scales)):
            tangent[i, :, p] = sc
        tangent = tangent.reshape(q * n, P)
        rep = th.repeat(q, 1)
        if kind == "ad":
            d = _jvp_forward_ad(model, rep, tangent).reshape(q, n, -1)
            return model.spectrum(th), d, th.new_ones(q, n)
        step, factor = _one_sided_steps(rep, tangent, self._box_high(model, rep))
        out = model.spectrum(torch.cat([th, rep + step])).reshape(1 + q, n, -1)
        return out[0], out[1:], factor.reshape(q, n)

    def _box_high(self, model: SpectralModel, th: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(model.bounds[:, 1], dtype=th.dtype, device=th.device)

    def grad_fisher(
        self, A: torch.Tensor, U: torch.Tensor, idx: slice
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradient g (n, D), Gauss-Newton/Fisher matrix F (n, D, D) and cost (n,) for pixels idx.

        Variables per pixel are ordered [A_0..A_{nc-1}, u_0..u_{K-1}] (share form: [total, u_0..u_{K-1}],
        the share maps being the last u). For Poisson,
        g = J^T (1 - X/m) and F = J^T diag(1/m) J; for chi-square, g = 2 J^T (m - X)/s^2 and
        F = 2 J^T diag(1/s^2) J (both times the pixel weight).

        How (memory passes over (n, C) spectra are the whole cost): each Jacobian column is a per-pixel
        factor times a spectrum-shaped base (an amplitude's column is its component's spectrum, a
        parameter's the amplitude times a difference of spectra over the step), written once into one
        contiguous (D + 1, n, C) block whose last row is m - X. With h the Fisher weight (w/m for Poisson),
        every row is scaled by sqrt(h) in place, and one batched product of the block with its first D
        rows gives F (rows 0..D-1) and g (row D, since r = h (m - X)); the factors then scale the small
        (n, D, D) results.
        """
        na, K = self.n_amp, self.n_free
        D = na + K
        with torch.no_grad():
            ths = self.thetas(U, idx)
            n = ths[0].shape[0]
            C = self.X.shape[1]
            Ac = self.amplitudes(A, U, idx)
            if self.n_share:
                shares, dshares = self.shares(U, idx), self.share_jacobian(U, idx)
            # column d of the Jacobian = sum over its terms of factor (n,) x base; a base is a spectrum
            # (c, None) or the derivative material (c, i) of component c's i-th free parameter
            terms: list[list[tuple[torch.Tensor | None, int, int | None]]] = [[] for _ in range(D)]
            spectra = []
            for c, (spec, th) in enumerate(zip(self.comps, ths)):
                cols = [p for p, (kind, _) in enumerate(spec.sources) if kind == "free"]
                ks = [spec.sources[p][1] for p in cols]
                S, T, fac = self._spectra_and_steps(spec.model, th, cols, [self.free[k].width for k in ks])
                # T holds stepped spectra (their difference from S is the derivative) or the derivatives
                spectra.append((S, T, derivative_kind(self.derivative, spec.model) == "fd"))
                if self.n_share:  # d m / d total = sum_c share_c S_c; d m / d s_j = total sum_c d share_c/d s_j S_c
                    terms[0].append((shares[c], c, None))
                    for j in range(self.n_share):
                        terms[na + self.n_phys + j].append((A[0, idx] * dshares[c, j], c, None))
                else:
                    terms[c].append((None, c, None))
                for i, k in enumerate(ks):
                    terms[na + k].append((Ac[c] * fac[i], c, i))
            m = self._expected(Ac, [S for S, _, _ in spectra], idx)
            X = self.X[idx]
            B = torch.empty(D + 1, n, C, dtype=self.dtype, device=self.device)
            scale = torch.ones(D, n, dtype=self.dtype, device=self.device)

            def base(c: int, i: int | None, out: torch.Tensor | None = None) -> torch.Tensor:
                """Component c's spectrum (i None) or derivative material i, written into ``out`` if
                given, else where it lies (only a difference of spectra needs a new buffer)."""
                S, T, differenced = spectra[c]
                if i is not None and differenced:
                    return torch.sub(T[i], S) if out is None else torch.sub(T[i], S, out=out)
                src = S if i is None else T[i]
                return src if out is None else out.copy_(src)

            for d, col in enumerate(terms):
                if len(col) == 1:  # one term: its base as it is, its factor kept aside
                    f, comp, which = col[0]
                    base(comp, which, B[d])
                    if f is not None:
                        scale[d] = f
                elif not col:
                    B[d].zero_()
                else:  # several (share form, linked parameters): the column itself, factor 1
                    for t, (f, comp, which) in enumerate(col):
                        b = base(comp, which)
                        if t == 0:
                            B[d].copy_(b) if f is None else torch.mul(b, f[:, None], out=B[d])
                        else:
                            B[d].add_(b) if f is None else B[d].addcmul_(b, f[:, None])
            torch.sub(m, X, out=B[D])
            wt = self.w[idx, None]
            h = wt / m if self.sigma2 is None else 2.0 * wt / self.sigma2[idx]  # r = h (m - X) either way
            # every row of the block times sqrt(h), in place: then one product of the block with itself
            # gives F = J^T h J and g = J^T h (m - X), without a (D, n, C) temporary for h J
            B.mul_(h.sqrt_())
            GF = torch.bmm(B.permute(1, 0, 2), B[:D].permute(1, 2, 0))  # (n, D + 1, D)
            sc = scale.T
            F = GF[:, :D] * (sc[:, :, None] * sc[:, None, :])
            g = GF[:, D] * sc
            cost = self.pixel_cost(m, idx)
        return g, F, cost

    def unpack(self, A: torch.Tensor, U: torch.Tensor) -> dict[str, np.ndarray]:
        """Maps keyed like the app's layers: "<comp> amplitude" and "<comp> <param>" (physical)."""
        ny, nx = self.shape
        out: dict[str, np.ndarray] = {}
        ths = self.thetas(U)
        Ac = self.amplitudes(A, U)
        for c, spec in enumerate(self.comps):
            out[f"{spec.name} amplitude"] = Ac[c].detach().cpu().double().numpy().reshape(ny, nx)
            for p, name in enumerate(spec.model.param_names):
                out[f"{spec.name} {name}"] = ths[c][:, p].detach().cpu().double().numpy().reshape(ny, nx)
        return out


# ---------------------------------------------------------------------------------- derivatives
DERIVATIVES = ("auto", "fd", "ad")  # FitSettings.derivative values


def derivative_kind(derivative: str, model: SpectralModel) -> str:
    """How a component's spectra are differentiated: "own" (the model's exact ``spectrum_and_tangents``:
    the grid emulators), "ad" (forward-mode autodiff) or "fd" (one-sided differences).

    "auto" is "own" where the model has it and "fd" otherwise; "ad" is "own" or autodiff (both exact);
    "fd" is always differences. A fixed rule per model, so that the same request gives the same maps.
    """
    if derivative == "fd":
        return "fd"
    if model.exact_tangents:
        return "own"
    return "ad" if derivative == "ad" else "fd"


FD_STEP = 1e-3  # finite-difference step in normalised (box-width) units (one-sided, see _one_sided_steps)


def _jvp_forward_ad(model: SpectralModel, th: torch.Tensor, tangent: torch.Tensor) -> torch.Tensor:
    """Exact directional derivatives of the spectra (forward-mode autodiff)."""
    try:
        with fwAD.dual_level():
            out = model.spectrum(fwAD.make_dual(th, tangent))
            d = fwAD.unpack_dual(out).tangent
    except (RuntimeError, NotImplementedError) as exc:
        if "forward" not in str(exc).lower():  # not a missing forward-mode formula (e.g. out of memory)
            raise
        raise FitSetupError(
            f"spectral model {model.component!r} cannot be differentiated by forward-mode "
            f"autodiff ({exc}); use derivative='fd'."
        ) from exc
    return torch.zeros_like(out) if d is None else d


def _one_sided_steps(th: torch.Tensor, tangent: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-sided difference steps (rows, P) and the factors +-1/FD_STEP (rows,) that turn
    spectrum(th + step) - spectrum(th) into derivatives: forward steps, backward ones where the forward
    step would leave the box."""
    step = FD_STEP * tangent
    outside = ((th + step) > high).any(dim=1, keepdim=True)
    step = torch.where(outside, -step, step)
    return step, torch.where(outside[:, 0], -1.0 / FD_STEP, 1.0 / FD_STEP).to(th.dtype)


# ---------------------------------------------------------------------------------- building
def _check_grid(model: SpectralModel, cube: HyperCube, band: tuple[float, float] | None) -> HyperCube:
    """The cube restricted to the model's channels; ModelGridError when the grids disagree."""
    if band is not None:
        cube = cube.select_band(*band)
    matched, _msg = match_model_to_cube(model, cube)
    return matched


def _as_map(value, full: tuple[int, int], shape: tuple[int, int], f: int, what: str) -> np.ndarray:
    """A number, or a map of the cube's image at any integer binning (see :func:`_rebin_map`)."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(shape, float(arr))
    elif arr.shape != shape:
        arr = _rebin_map(arr, full, shape, f, "mean", what)  # a non-finite value stays so: refused below
    if not np.all(np.isfinite(arr)):
        raise FitSetupError(f"{what} contains NaN or infinite values; give finite values.")
    return arr


def _map_binning(arr_shape: tuple[int, ...], full: tuple[int, int]) -> int | None:
    """The integer g for which a map of ``arr_shape`` is the cube's image binned g x g (smallest), or None."""
    ny0, nx0 = full
    if len(arr_shape) != 2:
        return None
    for g in range(1, max(ny0, nx0) + 1):
        if (ny0 // g, nx0 // g) == tuple(arr_shape):
            return g
    return None


def _rebin_map(
    arr: np.ndarray, full: tuple[int, int], shape: tuple[int, int], f: int, how: str, what: str
) -> np.ndarray:
    """A finite map of the cube's image binned g x g, brought to the fitted binning f.

    Why: a start (warm start, init) often comes from a fit at another binning: a quick binned fit
    refined at full resolution, or the reverse. Where g divides f the pixels are binned exactly (mean
    for a parameter, ``how="mean"``; sum for an amplitude, ``how="sum"``); otherwise the map is
    resampled bilinearly, an amplitude scaled by (f / g)^2 (counts per pixel grow with its area).
    """
    g = _map_binning(arr.shape, full)
    if g is None:
        raise FitSetupError(
            f"{what} must be a number or a map of the cube's image {full} (or that image "
            f"binned by an integer factor); got shape {arr.shape}."
        )
    if g == f:
        return arr
    if f % g == 0:
        return _bin_map(arr, f // g, how)
    t = torch.as_tensor(arr, dtype=torch.float64)[None, None]
    up = torch.nn.functional.interpolate(t, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()
    return up * (f / g) ** 2 if how == "sum" else up


def _bin_map(arr: np.ndarray, f: int, how: str) -> np.ndarray:
    ny, nx = arr.shape[-2] // f, arr.shape[-1] // f
    a = arr[..., : ny * f, : nx * f].reshape(*arr.shape[:-2], ny, f, nx, f)
    if how == "sum":
        return a.sum(axis=(-3, -1))
    if how == "mean":
        return a.mean(axis=(-3, -1))
    return np.asarray(a.all(axis=(-3, -1)))


def _chunk(n_channels: int, n_vars: int, device: torch.device) -> int:
    """Pixels per Jacobian block: at most CHUNK_ELEMENTS (pixel x channel x variable) at once on an
    accelerator (few, large blocks: each tensor operation is a kernel launch), CPU_BLOCK_ELEMENTS on
    the CPU, where a block that stays in the core's cache through all its passes is what counts.

    Measured on the toy cube (8,836 pixels, 375 channels, 5 variables), one thread, gradient and Fisher
    of all pixels (:meth:`Problem.grad_fisher`): one block of every pixel 0.135 s, 2,048 pixels 0.082 s,
    1,024 0.066 s, 559 0.072 s, 256 0.091 s, 128 0.122 s: large blocks fall out of the cache, small
    ones pay the per-operation overhead (about 5 us per tensor operation, ~90 per block) many times.
    The cost alone (:meth:`Problem.costs`, no Jacobian) runs in blocks COST_BLOCK_FACTOR times larger.
    """
    per_pixel = max(1, n_channels * n_vars)
    if device.type == "cpu":
        return max(64, int(CPU_BLOCK_ELEMENTS // per_pixel))
    return max(256, int(CHUNK_ELEMENTS // per_pixel))


SHARE_KMAD_KEY = "share"  # FitSettings.kmad dict key of the share maps' strength


def share_form(problem: Problem, settings: FitSettings) -> Problem:
    """The same problem with each pixel's amplitudes written as a total and the components' shares.

    Why: the split of a pixel's counts between components (a hot thermal continuum against a power
    law) is poorly measured by a pixel's own counts, and per-pixel amplitudes are not regularised, so
    the split is noise (on the morphology zoo, SUSHI's share of the counts scored worse than a
    constant map). In the share form the pixel's amplitudes are ``total x share_c``, the shares being
    a stick-breaking of ``n_comp - 1`` maps in [0, 1] that are free parameter maps like any other
    (box 0..1, regularised with kmad ``settings.kmad["share"]`` or the default); the total stays a
    per-pixel amplitude. The model, cost and data are unchanged: only the variables and hence the
    regulariser change. The start: total = the sum of the initial amplitudes, shares from their split.
    """
    nc = len(problem.comps)
    if nc < 2 or problem.n_share:
        return problem
    kmad = settings.kmad
    k = float(kmad.get(SHARE_KMAD_KEY, settings.kmad_default)) if isinstance(kmad, dict) else float(kmad)
    free = list(problem.free)
    rows = []
    rest = problem.A0.sum(dim=0)
    for j in range(nc - 1):
        free.append(FreeParam([f"{problem.comps[j].name}.share"], 0.0, 1.0, "", k))
        a = problem.A0[j]
        s = torch.where(rest > 0, a / rest.clamp(min=1e-30), torch.full_like(a, 1.0 / (nc - j)))
        rows.append(s.clamp(0.0, 1.0))
        rest = (rest - a).clamp(min=0.0)
    U0 = torch.cat([problem.U0, torch.stack(rows).to(problem.U0.dtype)])
    A0 = problem.A0.sum(dim=0, keepdim=True)
    return replace(
        problem,
        free=free,
        U0=U0,
        A0=A0,
        n_share=nc - 1,
        chunk=_chunk(problem.X.shape[1], 1 + len(free), problem.device),
    )


def build_sushi_problem(cube, components: list[Component], settings: FitSettings) -> Problem:
    """:func:`build_problem`, in the share form (:func:`share_form`) when ``settings.regularise_shares``."""
    problem = build_problem(cube, components, settings)
    return share_form(problem, settings) if settings.regularise_shares else problem


def build_problem(cube, components: list[Component], settings: FitSettings) -> Problem:
    """Validate the request and put data, masks and initial values on the device."""
    if not components:
        raise FitSetupError("give at least one component (e.g. --model toy-thermal-emulator).")
    names = [c.name for c in components]
    if len(set(names)) != len(names):
        raise FitSetupError(f"component names must be unique; got {names}.")
    if settings.cost not in ("poisson", "chi2"):
        raise FitSetupError(f"cost must be 'poisson' or 'chi2'; got {settings.cost!r}.")
    if settings.n_scales < 0 or settings.n_scales > 8:
        raise FitSetupError(f"n_scales must be between 0 and 8; got {settings.n_scales}.")
    if settings.max_iter < 1:
        raise FitSetupError(f"max_iter must be >= 1; got {settings.max_iter}.")
    if settings.step_rule not in ("newton", "fixed"):
        raise FitSetupError(f"step_rule must be 'newton' or 'fixed'; got {settings.step_rule!r}.")
    if settings.start not in ("default", "scan"):
        raise FitSetupError(
            f"start must be 'default' (the models' values or init) or 'scan' (a global grid "
            f"scan); got {settings.start!r}."
        )
    if settings.derivative not in DERIVATIVES:
        raise FitSetupError(
            f"derivative must be 'auto' (exact where the model has its own derivatives, else finite "
            f"differences), 'fd' (finite differences) or 'ad' (exact, by autodiff where the model has no "
            f"derivatives of its own); got {settings.derivative!r}."
        )
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype)
    cube0 = as_cube(cube)
    full_e = cube0.n_energy

    # --- energy grid: every model must describe the same channels of the cube
    sub = None
    for comp in components:
        s = _check_grid(comp.model, cube0, settings.band)
        if sub is not None and (s.n_energy != sub.n_energy or not np.allclose(s.energy_edges, sub.energy_edges)):
            raise ModelGridError(
                f"components use different energy grids ({sub.n_energy} vs {s.n_energy} channels); "
                "all models of one fit must be built on the same channels."
            )
        sub = s
    assert sub is not None
    i0 = int(np.argmin(np.abs(cube0.energy_edges - sub.energy_edges[0])))
    e_sl = slice(i0, i0 + sub.n_energy)
    f = int(settings.binning)
    ny0, nx0 = cube0.shape[1:]
    fitted = sub.rebin_spatial(f)
    E, ny, nx = fitted.shape
    N = ny * nx

    def _energy(arr: np.ndarray, what: str) -> np.ndarray:
        if arr.shape[0] == full_e:
            return arr[e_sl]
        if arr.shape[0] == E:
            return arr
        raise FitSetupError(f"{what} must have {full_e} (cube) or {E} (band) energy bins; got {arr.shape[0]}.")

    # --- mask
    if settings.mask is None:
        mask = np.ones((ny, nx), bool)
    else:
        m = np.asarray(settings.mask, bool)
        if m.shape == (ny0, nx0) and f > 1:
            m = _bin_map(m, f, "all")
        if m.shape != (ny, nx):
            raise FitSetupError(f"mask must have shape {(ny0, nx0)} (the cube's image); got {m.shape}.")
        mask = m
    if not mask.any():
        raise FitSetupError("the mask excludes every pixel; nothing to fit.")

    X = torch.as_tensor(fitted.counts.reshape(E, N).T.astype(np.float64), dtype=dtype, device=device).contiguous()
    w = torch.as_tensor(mask.ravel().astype(np.float64), dtype=dtype, device=device)

    # --- background
    bkg = None
    if settings.background is not None:
        b = _energy(np.asarray(settings.background, float), "background")
        if b.ndim == 1:
            bkg = torch.as_tensor(b * f * f, dtype=dtype, device=device)[None, :]
        elif b.ndim == 3:
            if f > 1 and b.shape[1:] == (ny0, nx0):
                b = _bin_map(b, f, "sum")
            if b.shape[1:] != (ny, nx):
                raise FitSetupError(f"a background cube must match the cube's image {(ny0, nx0)}; got {b.shape[1:]}.")
            bkg = torch.as_tensor(b.reshape(E, N).T.copy(), dtype=dtype, device=device)
        else:
            raise FitSetupError("background must be a spectrum (E,) or a cube (E, Y, X).")
        if not torch.isfinite(bkg).all() or (bkg < 0).any():
            raise FitSetupError("background must be finite and >= 0 (expected counts).")

    sigma2 = None
    if settings.cost == "chi2":
        if settings.sigma is None:
            s2 = torch.clamp(X, min=1.0)
        else:
            sig = _energy(np.asarray(settings.sigma, float), "sigma")
            if f > 1 and sig.shape[1:] == (ny0, nx0):
                sig = np.sqrt(_bin_map(sig**2, f, "sum"))
            if sig.shape != (E, ny, nx) or not np.all(sig > 0):
                raise FitSetupError(f"sigma must be a positive cube of shape {(E, ny, nx)}.")
            s2 = torch.as_tensor((sig**2).reshape(E, N).T.copy(), dtype=dtype, device=device)
        sigma2 = s2

    # --- parameters: links, fixed, free
    kmad = settings.kmad
    all_keys = {f"{c.name}.{p.name}": (c, p) for c in components for p in c.model.meta.parameters}
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    for link in settings.links:
        keys = [str(k) for k in link]
        for k in keys:
            if k not in all_keys:
                raise FitSetupError(f"cannot link {k!r}: no such parameter (known: {sorted(all_keys)}).")
            if k in group_of:
                raise FitSetupError(f"parameter {k!r} appears in two link groups.")
        if len(keys) < 2:
            continue
        for k in keys:
            group_of[k] = len(groups)
        groups.append(keys)

    def _kmad(key: str) -> float:
        if isinstance(kmad, dict):
            return float(kmad.get(key, settings.kmad_default))
        return float(kmad)

    warm = settings.warm_start
    warm_maps: dict[str, np.ndarray] = {}
    if warm is not None:
        warm_maps = dict(getattr(warm, "params", {}))
        for cname, amp in getattr(warm, "amplitudes", {}).items():
            warm_maps[f"{cname} amplitude"] = amp
        wanted = [f"{c.name} {p}" for c in components for p in [*c.model.param_names, "amplitude"]]
        if not set(wanted) & set(warm_maps):
            raise FitSetupError(
                f"the warm start has no maps of these components ({', '.join(wanted)}); it has: "
                f"{', '.join(warm_maps) or 'none'}. Start from a fit with the same component names."
            )

    free: list[FreeParam] = []
    free_index: dict[str, int] = {}
    U0_rows: list[np.ndarray] = []
    comps: list[ComponentSpec] = []
    for comp in components:
        unknown = set(comp.fixed) | set(comp.init)
        unknown -= set(comp.model.param_names) | {"amplitude"}
        if unknown:
            raise FitSetupError(
                f"component {comp.name!r} has no parameter(s) {sorted(unknown)}; its parameters are "
                f"{comp.model.param_names}."
            )
        sources: list[Source] = []
        for p in comp.model.meta.parameters:
            key = f"{comp.name}.{p.name}"
            if p.name in comp.fixed:
                if key in group_of:
                    raise FitSetupError(f"{key} is both fixed and linked; do one or the other.")
                val = _as_map(comp.fixed[p.name], (ny0, nx0), (ny, nx), f, f"fixed {key}")
                if val.min() < p.low - 1e-9 or val.max() > p.high + 1e-9:
                    raise FitSetupError(f"fixed {key} must lie within the model's range {p.low:g}..{p.high:g}.")
                sources.append(("fixed", torch.as_tensor(val.ravel(), dtype=dtype, device=device)))
                continue
            gkey = f"g{group_of[key]}" if key in group_of else key
            if gkey not in free_index:
                members = groups[group_of[key]] if key in group_of else [key]
                lows = [all_keys[m][1].low for m in members]
                highs = [all_keys[m][1].high for m in members]
                lo, hi = max(lows), min(highs)
                if not hi > lo:
                    raise FitSetupError(f"linked parameters {members} have disjoint validity ranges.")
                units = {all_keys[m][1].unit for m in members}
                if len(units) > 1:
                    raise FitSetupError(f"linked parameters {members} have different units {sorted(units)}.")
                free_index[gkey] = len(free)
                free.append(FreeParam(members, lo, hi, p.unit, _kmad(members[0])))
                # initial value: init (the most specific choice) > warm start > default
                wkey = f"{comp.name} {p.name}"
                init = comp.init.get(p.name, warm_maps.get(wkey, p.default))
                if np.ndim(init):  # a fit's maps are NaN where it did not fit (mask): start there at the default
                    init = np.nan_to_num(np.asarray(init, float), nan=p.default, posinf=p.default, neginf=p.default)
                v = _as_map(init, (ny0, nx0), (ny, nx), f, f"init {key}")
                U0_rows.append(np.clip((v.ravel() - lo) / (hi - lo), 0.0, 1.0))
            sources.append(("free", free_index[gkey]))
        comps.append(ComponentSpec(comp.name, comp.model.to(device=device, dtype=dtype), sources))

    # --- amplitudes: warm start, else the pixel's net counts shared equally
    tot = X.sum(dim=1)
    if bkg is not None:
        tot = torch.clamp(tot - bkg.sum(dim=1), min=0.0)
    A0 = torch.stack([tot / len(components)] * len(components)).clone()
    for c, comp in enumerate(components):
        wkey = f"{comp.name} amplitude"
        start = comp.init.get("amplitude", warm_maps.get(wkey))  # init wins over a warm start
        if start is not None:
            a = np.nan_to_num(np.clip(np.asarray(start, float), 0, None), posinf=0.0)
            if a.ndim:
                a = _rebin_map(a, (ny0, nx0), (ny, nx), f, "sum", f"warm-start {wkey}")
                A0[c] = torch.as_tensor(a.ravel(), dtype=dtype, device=device)
            elif "amplitude" in comp.init:
                A0[c] = float(a)
    A0 = A0 * w  # masked-out pixels carry nothing
    U0 = (
        torch.as_tensor(np.array(U0_rows), dtype=dtype, device=device)
        if U0_rows
        else torch.zeros(0, N, dtype=dtype, device=device)
    )
    signal = (w > 0) & (X.sum(dim=1) > 0)
    chunk = _chunk(E, len(components) + len(free), device)
    return Problem(
        X=X,
        w=w,
        bkg=bkg,
        sigma2=sigma2,
        comps=comps,
        free=free,
        shape=(ny, nx),
        cube=fitted,
        mask=mask,
        signal=signal,
        A0=A0,
        U0=U0,
        device=device,
        dtype=dtype,
        chunk=chunk,
        derivative=settings.derivative,
    )
