"""Grid emulator: physical parameters -> spectrum by Catmull-Rom interpolation of PCA log-spectra.

For the low-dimensional components SUSHI uses (thermal: kT and velocity; power law: index) a
tensor-product grid of simulated spectra is cheap to build and, interpolated with cubic
(Catmull-Rom) weights in a suitable coordinate (log kT, linear velocity/index), more accurate than a
deep network and far cheaper to evaluate and differentiate: one gather of 4^P rows of PCA
coefficients, one small matrix product and a softmax per spectrum. Everything is torch, batched and
differentiable in theta, and follows the module's device and the input's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

from napari_sushi.core.spectral.base import ModelMeta, SpectralModel

#: Coordinates the grid can be uniform in.
SCALES = ("linear", "log")


def _to_grid_coord(theta: torch.Tensor, scales: list[str]) -> torch.Tensor:
    cols = [torch.log(theta[:, j]) if s == "log" else theta[:, j] for j, s in enumerate(scales)]
    return torch.stack(cols, dim=1)


def catmull_rom_weights(f: torch.Tensor) -> torch.Tensor:
    """Cubic Catmull-Rom weights (..., 4) of nodes i-1, i, i+1, i+2 at fraction f in [0, 1]."""
    f2 = f * f
    f3 = f2 * f
    return torch.stack(
        [
            0.5 * (-f3 + 2 * f2 - f),
            0.5 * (3 * f3 - 5 * f2 + 2),
            0.5 * (-3 * f3 + 4 * f2 + f),
            0.5 * (f3 - f2),
        ],
        dim=-1,
    )


def catmull_rom_derivatives(f: torch.Tensor) -> torch.Tensor:
    """Derivatives d/df of :func:`catmull_rom_weights` (..., 4)."""
    f2 = f * f
    return torch.stack(
        [
            0.5 * (-3 * f2 + 4 * f - 1),
            0.5 * (9 * f2 - 10 * f),
            0.5 * (-9 * f2 + 8 * f + 1),
            0.5 * (3 * f2 - 2 * f),
        ],
        dim=-1,
    )


def grid_nodes(low: float, high: float, cells: int, scale: str) -> np.ndarray:
    """Parameter values of the nodes of one axis: ``cells`` cells over the box plus one node outside each end.

    Catmull-Rom needs the neighbours i-1 and i+2 of the cell [i, i+1], so the grid carries one extra
    node beyond each end of the validity box; spectra there are simulated, not extrapolated.
    """
    if scale not in SCALES:
        raise ValueError(f"grid scale must be one of {SCALES}; got {scale!r}")
    if cells < 1:
        raise ValueError(f"a grid axis needs at least one cell; got {cells}")
    if scale == "log":
        if low <= 0:
            raise ValueError(f"a log-spaced grid axis needs a positive lower bound; got {low}")
        t0, t1 = np.log(low), np.log(high)
    else:
        t0, t1 = float(low), float(high)
    h = (t1 - t0) / cells
    t = t0 + h * np.arange(-1, cells + 2)
    return np.exp(t) if scale == "log" else t


def pca_log_spectra(L: np.ndarray, n_components: int | None = None, rel_tol: float = 1e-3):
    """PCA of log-spectra L (n, C): (mean, U, S, Vt, K) with K the requested or automatic rank.

    Automatic rank: the smallest multiple of 4 whose reconstruction error (relative L2 of the
    unit-sum spectra, worst spectrum) is below ``rel_tol``.
    """
    mean = L.mean(axis=0)
    U, S, Vt = np.linalg.svd(L - mean, full_matrices=False)
    if n_components is None:
        s_true = np.exp(L - L.max(1, keepdims=True))
        s_true /= s_true.sum(1, keepdims=True)
        k = Vt.shape[0]
        for k in list(range(4, Vt.shape[0], 4)) + [Vt.shape[0]]:
            rec = mean + (U[:, :k] * S[:k]) @ Vt[:k]
            s = np.exp(rec - rec.max(1, keepdims=True))
            s /= s.sum(1, keepdims=True)
            err = np.linalg.norm(s - s_true, axis=1) / np.linalg.norm(s_true, axis=1)
            if err.max() < rel_tol:
                break
        n_components = k
    return mean, U, S, Vt, int(min(n_components, Vt.shape[0]))


def log_spectra(spectra: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Log of unit-sum spectra with a relative floor (channels with no flux stay finite)."""
    s = np.asarray(spectra, dtype=float)
    tot = s.sum(axis=1, keepdims=True)
    if np.any(tot <= 0) or not np.all(np.isfinite(s)):
        raise ValueError("every training spectrum must be finite with a positive sum")
    s = s / tot
    return np.log(np.maximum(s, floor))


LOG2E = 1.4426950408889634
INSIDE_SLACK = 1e-5  # relative rounding margin of GridEmulator._cells' "inside the grid" (grid-node units)


def _softmax_vjp(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """s * (g - <g, s>) over the last axis: torch's fused softmax-backward kernel (one pass fewer than
    mul, sum, addcmul), or those three ops where the kernel is not exposed."""
    kernel = getattr(torch, "_softmax_backward_data", None)
    if kernel is not None:
        return kernel(g, s, 1, s.dtype)
    t = g * s
    return t.addcmul_(s, t.sum(1, keepdim=True), value=-1.0)


class _SoftmaxDecode(torch.autograd.Function):
    """softmax(mean + c @ basis) over channels, forward and vector-Jacobian product fused by hand.

    The (n, C) tail dominates the emulator's cost (the interpolation itself is small), so it is fused
    by hand in cache-sized row blocks: logits in base 2 (basis and mean scaled by log2 e, exact in
    exact arithmetic) because ``exp2`` is ~3x cheaper than ``exp`` on CPU, normalisation by one
    reciprocal per row, and the softmax vector-Jacobian product by torch's fused kernel, block by
    block. No max-subtraction is needed: log-spectra of unit-sum spectra are <= 0 (up to
    interpolation error).
    """

    CHUNK = 256  # rows per block: a block of (CHUNK, C) floats stays in cache through all its passes

    @staticmethod
    def decode(c: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        """softmax(mean + c @ basis) (n, C), block by block (the forward pass, without autograd)."""
        n = c.shape[0]
        s = torch.empty(n, basis.shape[1], dtype=c.dtype, device=c.device)
        step = _SoftmaxDecode.CHUNK if c.device.type == "cpu" else max(n, 1)
        mean2, basis2 = mean * LOG2E, basis * LOG2E
        for a in range(0, n, step):
            blk = s[a : a + step]
            torch.addmm(mean2, c[a : a + step], basis2, out=blk)
            blk.clamp_(max=86.0)  # 2^86 ~ e^60: no overflow even far outside the box
            torch.exp2(blk, out=blk)
            blk.mul_(blk.sum(1, keepdim=True).reciprocal_())
        return s

    @staticmethod
    def forward(ctx, c: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        s = _SoftmaxDecode.decode(c, mean, basis)
        ctx.save_for_backward(s, basis)
        ctx.save_for_forward(s, basis)
        return s

    @staticmethod
    def jvp(ctx, dc: torch.Tensor, dmean, dbasis) -> torch.Tensor:
        """Forward-mode derivative (the solver may use forward AD): s * (dL - <s, dL>), dL = dc @ basis."""
        s, basis = ctx.saved_tensors
        dl = dc @ basis
        return s * (dl - (s * dl).sum(1, keepdim=True))

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        s, basis = ctx.saved_tensors
        n = s.shape[0]
        dct = torch.empty(basis.shape[0], n, dtype=s.dtype, device=s.device)  # (K, n): MKL is faster this way
        step = _SoftmaxDecode.CHUNK if s.device.type == "cpu" else max(n, 1)
        for a in range(0, n, step):
            t = _softmax_vjp(g[a : a + step], s[a : a + step])
            torch.mm(basis, t.T, out=dct[:, a : a + step])
        return dct.T, None, None


class _Interpolate(torch.autograd.Function):
    """c = sum_k W_k(f) coef[node_k]: Catmull-Rom tensor-product interpolation of the node table.

    Differentiable in the cell fractions f (n, P). The weighted gather-and-sum of the 4^P neighbour
    rows is an ``embedding_bag`` (a fused kernel: no (n, 4^P, K) temporary). When a derivative is
    needed, the Jacobian dc/df, stored (P, n, K), is formed alongside by P more bags over the same rows
    with one axis's weights differentiated, so reverse and forward mode are each one small contraction.
    """

    @staticmethod
    def bags(f: torch.Tensor, nodes: torch.Tensor, table: torch.Tensor, axes: list[int | None]) -> list[torch.Tensor]:
        """For each entry of ``axes``: c (None) or dc/df_p (p, axis p's weights differentiated), each (n, K)."""
        P = f.shape[1]
        w = catmull_rom_weights(f)  # (n, P, 4)
        dw = catmull_rom_derivatives(f) if any(a is not None for a in axes) else None
        outs = []
        for r in axes:
            W = None
            for j in range(P):  # tensor-product weights of the 4^P neighbours, row-major
                if r == j:
                    assert dw is not None  # an axis is differentiated
                    wj = dw[:, j]
                else:
                    wj = w[:, j]
                W = wj if W is None else (W[:, :, None] * wj[:, None, :]).reshape(W.shape[0], -1)
            outs.append(F.embedding_bag(nodes, table, mode="sum", per_sample_weights=W))
        return outs

    @staticmethod
    def forward(ctx, f: torch.Tensor, nodes: torch.Tensor, table: torch.Tensor, jac: bool) -> torch.Tensor:
        P = f.shape[1]
        outs = _Interpolate.bags(f, nodes, table, [None] + (list(range(P)) if jac else []))
        if jac:
            J = torch.stack(outs[1:])  # (P, n, K)
            ctx.save_for_backward(J)
            ctx.save_for_forward(J)
        return outs[0]

    @staticmethod
    def jvp(ctx, df: torch.Tensor, dnodes, dtable, djac) -> torch.Tensor:
        (J,) = ctx.saved_tensors
        return (J * df.T.unsqueeze(-1)).sum(0)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (J,) = ctx.saved_tensors
        return (J * g).sum(-1).T, None, None, None


class GridEmulator(SpectralModel):
    """Spectrum(theta) = softmax(mean + c(theta) @ basis), c interpolated on a parameter grid.

    Buffers: ``coef`` (n_1+3, ..., n_P+3, K) PCA coefficients at the grid nodes, ``basis`` (K, C),
    ``mean`` (C,), ``t0``/``step`` (P,) of the uniform grid in its coordinate (log or linear per
    parameter), ``cells`` (P,) number of cells per axis.
    """

    coef: torch.Tensor  # buffers (registered in __init__)
    basis: torch.Tensor
    mean: torch.Tensor
    t0: torch.Tensor
    step: torch.Tensor
    cells: torch.Tensor
    _strides: torch.Tensor
    _neighbours: torch.Tensor

    def __init__(self, meta: ModelMeta, cells: list[int], scales: list[str], n_components: int) -> None:
        super().__init__(meta)
        if len(cells) != len(meta.parameters) or len(scales) != len(meta.parameters):
            raise ValueError("cells and scales need one entry per parameter")
        self.scales = list(scales)
        shape = [int(c) + 3 for c in cells] + [int(n_components)]
        C = meta.n_channels
        self.register_buffer("coef", torch.zeros(shape, dtype=torch.float32))
        self.register_buffer("basis", torch.zeros(int(n_components), C, dtype=torch.float32))
        self.register_buffer("mean", torch.zeros(C, dtype=torch.float32))
        self.register_buffer("t0", torch.zeros(len(cells), dtype=torch.float64))
        self.register_buffer("step", torch.ones(len(cells), dtype=torch.float64))
        self.register_buffer("cells", torch.tensor([int(c) for c in cells], dtype=torch.int64))
        P = len(cells)
        # row-major strides of the node table and the flat offsets of the 4^P neighbours of a cell's
        # (-1, ..., -1) node (each axis in {0, 1, 2, 3}): constants, kept as non-persistent buffers so they
        # move with the model to its device instead of being copied there at every evaluation
        dims = shape[:-1]
        strides = [1] * P
        for j in range(P - 2, -1, -1):
            strides[j] = strides[j + 1] * dims[j + 1]
        st = torch.tensor(strides, dtype=torch.int64)
        offs = torch.stack(torch.meshgrid(*[torch.arange(0, 4)] * P, indexing="ij"), dim=-1).reshape(-1, P)
        self.register_buffer("_strides", st, persistent=False)
        self.register_buffer("_neighbours", (offs * st).sum(1), persistent=False)

    # -- serialisation helpers ------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "cells": [int(c) for c in self.cells.tolist()],
            "scales": self.scales,
            "n_components": int(self.basis.shape[0]),
        }

    @classmethod
    def from_config(cls, meta: ModelMeta, config: dict) -> "GridEmulator":
        return cls(
            meta, cells=list(config["cells"]), scales=list(config["scales"]), n_components=int(config["n_components"])
        )

    # -- evaluation -----------------------------------------------------------------------------
    def coefficients(self, theta: torch.Tensor) -> torch.Tensor:
        """Interpolated PCA coefficients (n, K) at theta (n, P)."""
        dtype = theta.dtype if theta.is_floating_point() else torch.float32
        theta = theta.to(dtype)
        f, idx, _ = self._cells(theta)
        jac = (torch.is_grad_enabled() and f.requires_grad) or fwAD.unpack_dual(f).tangent is not None
        return _Interpolate.apply(f, idx, self._table(dtype, theta.device), jac)

    def _cells(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(f, idx, inside): each row's fraction in its grid cell (n, P), the flat indices of its 4^P
        neighbour nodes (n, 4^P) and where theta is inside the grid (n, P; outside, f is clamped)."""
        dtype = theta.dtype
        t = _to_grid_coord(theta, self.scales)
        cells = self.cells.to(theta.device)
        u = (t - self.t0.to(dtype)) / self.step.to(dtype) + 1.0  # node index coordinate
        top = (cells + 1).to(dtype)
        # inside the grid, with a margin for rounding: a value on the box's edge can land a few ulps past
        # the grid's end (kT = 5 keV of the toy thermal emulator in float64: u = 65.00000000000006 > 65),
        # and its derivative must be the last cell's, not zero (a pixel at the edge could never leave it)
        slack = INSIDE_SLACK * top
        inside = (u >= 1.0 - slack) & (u <= top + slack)
        u = torch.minimum(torch.clamp(u, min=1.0), top)
        i = torch.minimum(torch.floor(u.detach()).long(), cells)  # cell left node, 1..cells
        f = u - i.to(dtype)  # fraction in the cell, (n, P)
        # flat indices of the 4^P neighbours in the (prod(dims), K) node table, row-major like the weights
        base = ((i - 1) * self._strides.to(i.device)).sum(1)  # flat index of the (-1, ..., -1) neighbour
        idx = base[:, None] + self._neighbours.to(i.device)[None]  # (no integer matmul: CUDA has none)
        return f, idx, inside

    exact_tangents = True  # spectrum_and_tangents is a hand-written exact path (Problem's derivative "auto")

    def spectrum_and_tangents(
        self, theta: torch.Tensor, cols: list[int], scales: list[float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectra S (n, C) and their exact derivatives along parameter columns ``cols`` times ``scales``
        (q, n, C), without autograd.

        dS/dc = S (dl - <S, dl>) with dl = dc @ basis (the softmax's Jacobian: applied by torch's fused
        softmax-backward kernel, block by block), and dc/dtheta_p from the interpolation weights with
        axis p differentiated, times d(grid coordinate)/dtheta_p (1/theta for a log axis; 0 outside the
        grid, where the coordinate is clamped). About half the cost of one-sided differences, which need
        one more decoded spectrum per column.
        """
        with torch.no_grad():
            dtype = theta.dtype
            f, idx, inside = self._cells(theta)
            table = self._table(dtype, theta.device)
            outs = _Interpolate.bags(f, idx, table, [None, *cols])
            basis = self.basis.to(dtype)
            S = _SoftmaxDecode.decode(outs[0], self.mean.to(dtype), basis)
            n = S.shape[0]
            T = torch.empty(len(cols), n, S.shape[1], dtype=dtype, device=S.device)
            step = _SoftmaxDecode.CHUNK if S.device.type == "cpu" else max(n, 1)
            steps = self._host_steps()
            for q, (p, scale) in enumerate(zip(cols, scales)):
                du = 1.0 / theta[:, p] if self.scales[p] == "log" else torch.ones_like(theta[:, p])
                du = torch.where(inside[:, p], du * (float(scale) / steps[p]), torch.zeros_like(du))
                dc = outs[1 + q] * du[:, None]
                for a in range(0, n, step):
                    T[q, a : a + step] = _softmax_vjp(dc[a : a + step] @ basis, S[a : a + step])
        return S, T

    def _host_steps(self) -> list[float]:
        """The grid steps as Python floats, read from the device once and cached (the solver's loop asks
        for them at every Jacobian: a device-to-host read each time would stall an accelerator)."""
        key = (self.step.data_ptr(), self.step._version, self.step.dtype)
        cache = self.__dict__.get("_steps_cache")
        if cache is None or cache[0] != key:
            self.__dict__["_steps_cache"] = (key, [float(v) for v in self.step.tolist()])
        return self.__dict__["_steps_cache"][1]

    def _table(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Node coefficients as (prod(dims), K) in the requested dtype/device (converted once, cached, not saved)."""
        if self.coef.dtype == dtype and self.coef.device == torch.device(device):
            return self.coef.view(-1, self.coef.shape[-1])
        key = (dtype, str(device), self.coef.data_ptr(), self.coef._version)
        cache = self.__dict__.get("_table_cache")
        if cache is None or cache[0] != key:
            c = self.coef.to(device=device, dtype=dtype)
            self.__dict__["_table_cache"] = (key, c.reshape(-1, c.shape[-1]).contiguous())
        return self.__dict__["_table_cache"][1]

    def log_spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        """Un-normalised log-spectrum (n, C)."""
        c = self.coefficients(theta)
        return torch.addmm(self.mean.to(c.dtype), c, self.basis.to(c.dtype))

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        c = self.coefficients(theta)
        return _SoftmaxDecode.apply(c, self.mean.to(c.dtype), self.basis.to(c.dtype))


def build_grid_emulator(
    meta: ModelMeta,
    generate: Callable[[np.ndarray], np.ndarray],
    cells: list[int],
    scales: list[str],
    n_components: int | None = None,
    rel_tol: float = 1e-3,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 512,
) -> GridEmulator:
    """Simulate spectra on the grid, compress log-spectra with PCA, store coefficients.

    ``generate(theta (n, P)) -> spectra (n, C)``. ``n_components=None`` keeps the smallest number of
    principal components whose truncation error (relative L2 of unit-sum spectra, worst node) is
    below ``rel_tol``, capped at C.
    """
    axes = [grid_nodes(p.low, p.high, c, s) for p, c, s in zip(meta.parameters, cells, scales)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    out = []
    for a in range(0, len(mesh), chunk):
        out.append(np.asarray(generate(mesh[a : a + chunk]), dtype=float))
        if progress is not None:
            progress(min(a + chunk, len(mesh)), len(mesh))
    spectra = np.concatenate(out)
    if spectra.shape != (len(mesh), meta.n_channels):
        raise ValueError(
            f"generator returned spectra of shape {spectra.shape}; expected {(len(mesh), meta.n_channels)}"
        )
    return emulator_from_grid(meta, axes, spectra, scales, n_components=n_components, rel_tol=rel_tol)


def emulator_from_grid(
    meta: ModelMeta,
    axes: list[np.ndarray],
    spectra: np.ndarray,
    scales: list[str],
    n_components: int | None = None,
    rel_tol: float = 1e-3,
) -> GridEmulator:
    """Build the emulator from spectra (prod(len(axes)), C) on a uniform grid (ij order) with margin nodes."""
    L = log_spectra(spectra)
    mean, U, S, Vt, K = pca_log_spectra(L, n_components, rel_tol)
    coef = (U[:, :K] * S[:K]).reshape(*[len(a) for a in axes], K)
    cells = [len(a) - 3 for a in axes]
    model = GridEmulator(meta, cells=cells, scales=scales, n_components=K)
    t0, step = [], []
    for a, s in zip(axes, scales):
        t = np.log(a) if s == "log" else np.asarray(a, float)
        h = np.diff(t)
        if not np.allclose(h, h[0], rtol=1e-6, atol=1e-12):
            raise ValueError("grid axes must be uniform in their coordinate (log or linear)")
        t0.append(t[1])
        step.append(h[0])
    with torch.no_grad():
        model.coef.copy_(torch.as_tensor(coef, dtype=torch.float32))
        model.basis.copy_(torch.as_tensor(Vt[:K], dtype=torch.float32))
        model.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.t0.copy_(torch.as_tensor(t0, dtype=torch.float64))
        model.step.copy_(torch.as_tensor(step, dtype=torch.float64))
    return model
