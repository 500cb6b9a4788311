"""XSPEC additive table models ("atable", OGIP/92-009) in and out, usable as emission physics.

An atable carries any model between X-ray tools: a primary header (``MODLNAME``, ``ADDMODEL``,
``REDSHIFT``, ``ESCALE``), a ``PARAMETERS`` table (per interpolated parameter: ``NAME``, ``METHOD``
0 linear / 1 logarithmic, ``INITIAL``, ``DELTA``, ``MINIMUM``, ``BOTTOM``, ``TOP``, ``MAXIMUM``,
``NUMBVALS``, ``VALUE``), an ``ENERGIES`` table (``ENERG_LO``, ``ENERG_HI`` keV) and a ``SPECTRA``
table (``PARAMVAL``, ``INTPSPEC`` photons/cm2/s per bin), rows ordered with the last parameter
changing fastest.

Read with :func:`read_atable`, a table is a :class:`~napari_sushi.core.physics.models.Model`: the
spectrum at any parameters inside the grid is interpolated linearly between the grid's spectra (in
log of the parameter for ``METHOD`` 1, as XSPEC does), rebinned exactly onto any energy grid, and
Doppler-shifted by our own ``velocity`` parameter (km/s), so a table without velocity gains one. A
table's own redshift is held at 0 (a Galactic source; the velocity takes its place) and its energy
scale at 1. Refused with a clear error: multiplicative tables (``ADDMODEL = F``), tables with
additional parameters (``NADDPARM > 0``) or several spectra per grid point (``NXFLTEXP``).
:func:`write_atable` writes a grid of spectra (our physics, APEC) in the same format for XSPEC
(energies and parameter values in double precision, so bins 10 eV wide keep their edges exactly).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from napari_sushi.core.io.atomic import atomic_path
from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.fits_file import column_names, open_fits
from napari_sushi.core.physics.grid import PhysicsError, batch_size, check_edges, doppler_factor
from napari_sushi.core.physics.models import Model, Params
from napari_sushi.core.physics.rebin import shifted_bins


class TableError(FileFormatError):
    """An XSPEC table model file is malformed or of a kind we cannot use (says which and why)."""


@dataclass(frozen=True)
class TableParameter:
    """One interpolated parameter of a table: its grid and XSPEC's fit settings."""

    name: str
    values: np.ndarray  # increasing grid values
    log: bool = False  # METHOD 1: interpolate in log(value)
    initial: float | None = None
    unit: str = ""

    @property
    def low(self) -> float:
        return float(self.values[0])

    @property
    def high(self) -> float:
        return float(self.values[-1])


@dataclass
class TableModel(Model):
    """An additive table model: spectra (N_1, ..., N_P, E) on ``energy_edges`` (E+1 keV)."""

    name: str
    parameters: list[TableParameter]
    energy_edges: np.ndarray
    spectra: np.ndarray
    units: str = "photons/cm^2/s"
    path: Path | None = None
    prefix: str = field(default="", repr=False)
    # how far beyond its grid (share of each axis' span, in log for log axes) the table may be
    # extrapolated linearly from its outermost cell (clipped at 0): 0 for users; training sets it so
    # the grid emulator's boundary nodes, one cell beyond the box, can be evaluated
    margin: float = 0.0

    def __post_init__(self) -> None:
        shape = tuple(p.values.size for p in self.parameters)
        e = self.energy_edges.size - 1
        if self.spectra.shape != (*shape, e):
            raise TableError(f"table {self.name}: spectra shape {self.spectra.shape} is not grid {shape} x {e} bins.")
        self.param_names = tuple(p.name for p in self.parameters) + ("velocity", "norm")
        self.defaults = {"velocity": 0.0, "norm": 1.0} | {
            p.name: float(
                p.initial if p.initial is not None else np.sqrt(p.low * p.high) if p.log else 0.5 * (p.low + p.high)
            )
            for p in self.parameters
        }

    def photons(self, theta: np.ndarray) -> np.ndarray:
        """Interpolated spectra (n, E) on the table's bins at parameter rows ``theta`` (n, P)."""
        theta = np.atleast_2d(np.asarray(theta, float))
        n = theta.shape[0]
        idx, wts = [], []
        for j, p in enumerate(self.parameters):
            x = theta[:, j]
            g = p.values
            gs = np.log(g) if p.log else g
            pad = self.margin * (gs[-1] - gs[0])
            with np.errstate(divide="ignore", invalid="ignore"):
                xs = np.log(x) if p.log else x
            outside = ~((xs >= gs[0] - pad - 1e-9 * abs(gs[0])) & (xs <= gs[-1] + pad + 1e-9 * abs(gs[-1])))
            if np.any(outside):
                bad = x[outside][0]
                raise PhysicsError(f"table {self.name}: {p.name} = {bad:g} is outside its grid {p.low:g}..{p.high:g}.")
            if g.size == 1:
                idx.append(np.zeros(n, np.int64))
                wts.append(np.zeros(n))
                continue
            i = np.clip(np.searchsorted(gs, xs, side="right") - 1, 0, g.size - 2)
            idx.append(i)
            wts.append((xs - gs[i]) / (gs[i + 1] - gs[i]))
        out = np.zeros((n, self.spectra.shape[-1]))
        for corner in range(2 ** len(self.parameters)):
            w = np.ones(n)
            at = []
            for j, p in enumerate(self.parameters):
                up = (corner >> j) & 1
                if p.values.size == 1 and up:
                    w = w * 0.0
                    at.append(idx[j])
                    continue
                w = w * (wts[j] if up else 1.0 - wts[j])
                at.append(idx[j] + up)
            if np.any(w):
                out += w[:, None] * self.spectra[tuple(at)]
        return np.maximum(out, 0.0) if self.margin > 0 else out

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:
        edges = check_edges(edges)
        values = {k: self._get(params, k) for k in self.param_names}
        n = batch_size(*values.values())
        cols = [np.broadcast_to(np.asarray(values[p.name], float), (n,)) for p in self.parameters]
        theta = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        s = doppler_factor(np.broadcast_to(np.asarray(values["velocity"], float), (n,)))
        norm = np.broadcast_to(np.asarray(values["norm"], float), (n,))
        return norm[:, None] * shifted_bins(self.energy_edges, self.photons(theta), edges, s)


def grid_rows(parameters: Sequence[TableParameter]) -> np.ndarray:
    """Every grid point (N_1 x ... x N_P, P) in the table's row order (last parameter changing fastest)."""
    return np.stack(np.meshgrid(*[q.values for q in parameters], indexing="ij"), -1).reshape(-1, len(parameters))


# ------------------------------------------------------------------------------------ reading
def _flag(header: fits.Header, key: str, default: bool = False) -> bool:
    v = header.get(key, default)
    return v if isinstance(v, bool) else str(v).strip().upper() in ("T", "TRUE", "1")


def _find(hdul: fits.HDUList, name: str, path: Path) -> fits.BinTableHDU:
    for h in hdul[1:]:
        if h.name.upper() == name or str(h.header.get("HDUCLAS2", "")).upper() in (name, f"MODEL {name}"):
            if isinstance(h, fits.BinTableHDU):
                return h
    raise TableError(f"{path}: no {name} table; an XSPEC table model has PARAMETERS, ENERGIES and SPECTRA.")


def _col(hdu: fits.BinTableHDU, name: str, path: Path) -> np.ndarray:
    names = [c.upper() for c in column_names(hdu)]
    if name not in names:
        raise TableError(f"{path}[{hdu.name}]: missing column {name} (columns: {column_names(hdu)}).")
    return hdu.data[column_names(hdu)[names.index(name)]]


def read_atable(path: str | os.PathLike) -> TableModel:
    """An XSPEC additive table model from ``path`` (see the module docstring for what is refused)."""
    p = Path(path).expanduser()
    with open_fits(p, error=TableError) as hdul:
        head = hdul[0].header
        if not _flag(head, "ADDMODEL", True):
            raise TableError(
                f"{p} is a multiplicative table model (ADDMODEL = F): it cannot be an emission component; "
                "give an additive table (atable)."
            )
        if int(head.get("NXFLTEXP", 1) or 1) > 1:
            raise TableError(f"{p} holds several spectra per grid point (NXFLTEXP > 1); this is not supported.")
        par = _find(hdul, "PARAMETERS", p)
        n_int = int(par.header.get("NINTPARM", len(par.data) if par.data is not None else 0))
        if int(par.header.get("NADDPARM", 0) or 0) > 0:
            raise TableError(
                f"{p} has additional (non-interpolated) parameters (NADDPARM > 0); this is not supported: "
                "make them interpolated parameters of the table."
            )
        if n_int < 1 or par.data is None or len(par.data) < n_int:
            raise TableError(f"{p}: the PARAMETERS table lists no interpolated parameter (NINTPARM = {n_int}).")
        names = [str(v).strip() for v in _col(par, "NAME", p)[:n_int]]
        methods = np.asarray(_col(par, "METHOD", p)[:n_int], int)
        nvals = np.asarray(_col(par, "NUMBVALS", p)[:n_int], int)
        initial = np.asarray(_col(par, "INITIAL", p)[:n_int], float)
        raw_values = _col(par, "VALUE", p)
        params = []
        for j, nm in enumerate(names):
            vals = np.asarray(raw_values[j], float).ravel()[: nvals[j]]
            if vals.size != nvals[j] or vals.size < 1 or not np.all(np.isfinite(vals)):
                raise TableError(f"{p}: parameter {nm} has {vals.size} finite values; NUMBVALS says {nvals[j]}.")
            if vals.size > 1 and not np.all(np.diff(vals) > 0):
                raise TableError(f"{p}: the values of parameter {nm} must increase (OGIP/92-009).")
            if methods[j] == 1 and vals[0] <= 0:
                raise TableError(f"{p}: parameter {nm} is interpolated in log (METHOD 1) but has values <= 0.")
            params.append(
                TableParameter(nm, vals, bool(methods[j] == 1), float(initial[j]), "keV" if nm.lower() == "kt" else "")
            )
        en = _find(hdul, "ENERGIES", p)
        lo, hi = (np.asarray(_col(en, c, p), float) for c in ("ENERG_LO", "ENERG_HI"))
        if lo.size < 2 or not np.allclose(lo[1:], hi[:-1], rtol=1e-5) or not np.all(hi > lo) or lo[0] <= 0:
            raise TableError(
                f"{p}: ENERGIES must be contiguous increasing bins above 0 keV (ENERG_LO[i+1] = ENERG_HI[i])."
            )
        edges = np.append(lo, hi[-1])
        sp = _find(hdul, "SPECTRA", p)
        pv = np.asarray(_col(sp, "PARAMVAL", p), float).reshape(len(sp.data), -1)
        spec = np.asarray(_col(sp, "INTPSPEC", p), float).reshape(len(sp.data), -1)
    shape = tuple(q.values.size for q in params)
    if pv.shape != (int(np.prod(shape)), n_int) or spec.shape[1] != lo.size:
        raise TableError(
            f"{p}: SPECTRA has {pv.shape[0]} rows of {pv.shape[1]} parameters and {spec.shape[1]} bins; the grid "
            f"needs {int(np.prod(shape))} rows of {n_int} and {lo.size} bins."
        )
    mesh = grid_rows(params)
    if not np.allclose(pv, mesh, rtol=1e-5, atol=1e-12):
        raise TableError(f"{p}: SPECTRA rows are not the parameter grid in order (last parameter changing fastest).")
    if not np.all(np.isfinite(spec)) or np.any(spec < 0):
        raise TableError(f"{p}: the table's spectra must be finite and >= 0 (an additive model).")
    name = str(head.get("MODLNAME", p.stem)).strip() or p.stem
    return TableModel(name, params, edges, spec.reshape(*shape, -1), str(head.get("MODLUNIT", "photons/cm^2/s")), p)


# ------------------------------------------------------------------------------------ writing
def write_atable(
    path: str | os.PathLike,
    name: str,
    parameters: Sequence[TableParameter],
    energy_edges: np.ndarray,
    spectra: np.ndarray,
    overwrite: bool = False,
    units: str = "photons/cm^2/s",
) -> Path:
    """Write an additive XSPEC table (``spectra`` (N_1, ..., N_P, E) photons/cm2/s per bin), atomically."""
    params = list(parameters)
    edges = check_edges(energy_edges)
    shape = tuple(q.values.size for q in params)
    spectra = np.asarray(spectra, float)
    if spectra.shape != (*shape, edges.size - 1):
        raise TableError(f"spectra must have shape {(*shape, edges.size - 1)} (grid x bins); got {spectra.shape}.")
    if not params or len(name) == 0 or len(name) > 12:
        raise TableError("a table needs at least one parameter and a model name of 1-12 characters.")
    nmax = max(shape)
    vals = np.zeros((len(params), nmax))
    for j, q in enumerate(params):
        vals[j, : q.values.size] = q.values
    ptab = fits.BinTableHDU.from_columns(
        [
            fits.Column("NAME", "12A", array=[q.name for q in params]),
            fits.Column("METHOD", "J", array=[1 if q.log else 0 for q in params]),
            fits.Column("INITIAL", "E", array=[q.initial if q.initial is not None else q.values[0] for q in params]),
            fits.Column("DELTA", "E", array=[0.01 * (q.high - q.low) or 0.01 for q in params]),
            fits.Column("MINIMUM", "E", array=[q.low for q in params]),
            fits.Column("BOTTOM", "E", array=[q.low for q in params]),
            fits.Column("TOP", "E", array=[q.high for q in params]),
            fits.Column("MAXIMUM", "E", array=[q.high for q in params]),
            fits.Column("NUMBVALS", "J", array=list(shape)),
            fits.Column("VALUE", f"{nmax}D", array=vals),
        ],
        name="PARAMETERS",
    )
    ptab.header.update(
        {
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "XSPEC TABLE MODEL",
            "HDUCLAS2": "PARAMETERS",
            "HDUVERS": "1.0.0",
            "NINTPARM": len(params),
            "NADDPARM": 0,
        }
    )
    etab = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "D", unit="keV", array=edges[:-1]),
            fits.Column("ENERG_HI", "D", unit="keV", array=edges[1:]),
        ],
        name="ENERGIES",
    )
    etab.header.update(
        {"HDUCLASS": "OGIP", "HDUCLAS1": "XSPEC TABLE MODEL", "HDUCLAS2": "ENERGIES", "HDUVERS": "1.0.0"}
    )
    mesh = grid_rows(params)
    stab = fits.BinTableHDU.from_columns(
        [
            fits.Column("PARAMVAL", f"{len(params)}D", array=mesh),
            fits.Column("INTPSPEC", f"{edges.size - 1}E", unit=units, array=spectra.reshape(-1, edges.size - 1)),
        ],
        name="SPECTRA",
    )
    stab.header.update(
        {"HDUCLASS": "OGIP", "HDUCLAS1": "XSPEC TABLE MODEL", "HDUCLAS2": "MODEL SPECTRA", "HDUVERS": "1.0.0"}
    )
    prim = fits.PrimaryHDU()
    prim.header.update(
        {
            "MODLNAME": name,
            "MODLUNIT": units[:12],
            "REDSHIFT": False,
            "ESCALE": False,
            "ADDMODEL": True,
            "LOELIMIT": 0.0,
            "HIELIMIT": 0.0,
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "XSPEC TABLE MODEL",
            "HDUVERS": "1.2.0",
            "CREATOR": "napari-sushi",
        }
    )
    out = Path(path).expanduser()
    with atomic_path(out, overwrite=overwrite) as tmp:
        fits.HDUList([prim, ptab, etab, stab]).writeto(tmp)
    return out


def physics_table(
    model: Model,
    parameters: Sequence[TableParameter],
    energy_edges: np.ndarray,
    fixed: Params | None = None,
) -> np.ndarray:
    """Spectra (N_1, ..., N_P, E) of one of our physics models on a parameter grid, for :func:`write_atable`
    (e.g. ``Thermal()`` or ``Apec()`` over kT and abundance, velocity 0)."""
    params = list(parameters)
    unknown = [q.name for q in params if q.name not in model.names()]
    if unknown:
        raise TableError(f"{type(model).__name__} has no parameters {unknown}; it takes {model.names()}.")
    mesh = grid_rows(params)
    p = {**(fixed or {}), **{q.name: mesh[:, j] for j, q in enumerate(params)}}
    flux = model(check_edges(energy_edges), p)
    return flux.reshape(*[q.values.size for q in params], -1)
