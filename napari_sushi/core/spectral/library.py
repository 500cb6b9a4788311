"""A user's spectral library (e.g. made with XSPEC): folded spectra with their physical parameters.

Two documented formats (README.md, "Spectral models"):

FITS
    ``EBOUNDS`` table: ``CHANNEL`` (int), ``E_MIN``, ``E_MAX`` (keV), one row per channel.
    ``SPECTRA`` table: one row per spectrum; one scalar column per parameter (column name = parameter
    name, ``TUNITn`` = unit) and a vector column ``SPECTRUM`` (C values, expected counts per channel).
    Optional keywords in the ``SPECTRA`` header: ``COMPNAME`` (component), ``RESPONSE`` (response id),
    and ``<NAME>_LO``/``<NAME>_HI`` (validity box; default: the range of the table).
NPZ
    ``energy_edges`` (C+1), ``params`` (n, P), ``param_names`` (P,) and ``param_units`` (P,) string
    arrays, ``spectra`` (n, C); optional ``channels`` (C,), ``component``, ``response_id`` (strings),
    ``param_low``/``param_high`` (P,). Read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_sushi.core.spectral.base import ModelMeta, ParameterInfo


class LibraryError(ValueError):
    """A spectral library file is malformed (message says what is missing or wrong)."""


@dataclass
class SpectralLibrary:
    """Spectra (n, C) on channel edges (C+1) with their parameters (n, P)."""

    energy_edges: np.ndarray
    params: np.ndarray
    spectra: np.ndarray
    names: list[str]
    units: list[str]
    low: np.ndarray
    high: np.ndarray
    channels: np.ndarray | None = None
    component: str = "custom"
    response_id: str = ""

    def __post_init__(self) -> None:
        self.energy_edges = np.asarray(self.energy_edges, float).ravel()
        self.params = np.atleast_2d(np.asarray(self.params, float))
        self.spectra = np.atleast_2d(np.asarray(self.spectra, float))
        n, P = self.params.shape
        C = self.energy_edges.size - 1
        if self.spectra.shape != (n, C):
            raise LibraryError(f"spectra must have shape (n_spectra={n}, n_channels={C}); got {self.spectra.shape}")
        if len(self.names) != P or len(self.units) != P:
            raise LibraryError(f"need {P} parameter names and units; got {len(self.names)} and {len(self.units)}")
        if not np.all(np.diff(self.energy_edges) > 0):
            raise LibraryError("energy edges must be strictly increasing (keV)")
        if not np.all(np.isfinite(self.spectra)) or np.any(self.spectra < 0) or np.any(self.spectra.sum(1) <= 0):
            raise LibraryError("every spectrum must be finite, non-negative and not all zero")
        if not np.all(np.isfinite(self.params)):
            raise LibraryError("parameters must be finite")
        if n < 4:
            raise LibraryError(f"a library needs at least 4 spectra to train on; got {n}")

    def meta(self, family: str) -> ModelMeta:
        params = [
            ParameterInfo(nm, un, float(lo), float(hi), float(0.5 * (lo + hi)))
            for nm, un, lo, hi in zip(self.names, self.units, self.low, self.high)
        ]
        return ModelMeta(
            component=self.component,
            family=family,
            parameters=params,
            energy_edges=self.energy_edges.copy(),
            channels=self.channels,
            response_id=self.response_id,
            band=(float(self.energy_edges[0]), float(self.energy_edges[-1])),
        )

    def grid_axes(self) -> list[np.ndarray] | None:
        """The sorted axes if the parameters form a full tensor-product grid, else None."""
        axes = [np.unique(self.params[:, j]) for j in range(self.params.shape[1])]
        if int(np.prod([len(a) for a in axes])) != len(self.params):
            return None
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
        order = np.lexsort(self.params.T[::-1])
        if not np.allclose(self.params[order], mesh):
            return None
        return axes

    def grid_spectra(self) -> np.ndarray:
        """Spectra in the grid's ij order (only valid when :meth:`grid_axes` is not None)."""
        return self.spectra[np.lexsort(self.params.T[::-1])]


def _str_list(a) -> list[str]:
    return [str(x) for x in np.asarray(a).ravel()]


def read_library(path: str | os.PathLike) -> SpectralLibrary:
    """Read a spectral library (.fits/.fit/.fits.gz or .npz) in the documented format."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"spectral library {p} does not exist")
    name = p.name.lower()
    if name.endswith(".npz"):
        try:
            with np.load(p, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise LibraryError(
                f"{p}: cannot read as a plain .npz library ({exc}); object arrays/pickles are refused"
            ) from None
        need = ["energy_edges", "params", "param_names", "param_units", "spectra"]
        missing = [k for k in need if k not in d]
        if missing:
            raise LibraryError(f"{p}: library .npz lacks {missing}; it needs {need}")
        params = np.atleast_2d(d["params"].astype(float))
        return SpectralLibrary(
            energy_edges=d["energy_edges"],
            params=params,
            spectra=d["spectra"],
            names=_str_list(d["param_names"]),
            units=_str_list(d["param_units"]),
            low=np.asarray(d.get("param_low", params.min(0)), float),
            high=np.asarray(d.get("param_high", params.max(0)), float),
            channels=None if "channels" not in d else d["channels"].astype(np.int64),
            component=str(d["component"]) if "component" in d else "custom",
            response_id=str(d["response_id"]) if "response_id" in d else "",
        )
    if not any(name.endswith(s) for s in (".fits", ".fit", ".fits.gz", ".fts")):
        raise LibraryError(f"{p}: unknown library format; use .fits or .npz (see the library format in the docs)")
    from napari_sushi.core.io.fits_file import open_fits

    try:
        with open_fits(p, error=LibraryError) as hdul:
            if "EBOUNDS" not in hdul or "SPECTRA" not in hdul:
                raise LibraryError(f"{p}: a FITS library needs EBOUNDS and SPECTRA tables")
            missing = [c for c in ("E_MIN", "E_MAX") if c not in hdul["EBOUNDS"].columns.names]
            if missing:
                raise LibraryError(
                    f"{p}: missing column {missing[0]!r} in EBOUNDS (see the library format in the docs)"
                )
            eb = hdul["EBOUNDS"].data
            emin, emax = np.asarray(eb["E_MIN"], float), np.asarray(eb["E_MAX"], float)
            if not np.allclose(emin[1:], emax[:-1]):
                raise LibraryError(f"{p}: EBOUNDS channels must be contiguous (E_MIN[i+1] == E_MAX[i])")
            edges = np.append(emin, emax[-1])
            channels = np.asarray(eb["CHANNEL"], np.int64) if "CHANNEL" in eb.columns.names else None
            sp = hdul["SPECTRA"]
            hdr = sp.header
            cols = [c for c in sp.columns if c.name.upper() != "SPECTRUM"]
            if "SPECTRUM" not in [c.name.upper() for c in sp.columns]:
                raise LibraryError(f"{p}: the SPECTRA table needs a vector column SPECTRUM")
            names = [c.name for c in cols]
            units = [c.unit or "" for c in cols]
            params = np.stack([np.asarray(sp.data[c.name], float) for c in cols], axis=1)
            spectra = np.asarray(sp.data["SPECTRUM"], float)
            low = np.array([hdr.get(f"{nm[:5].upper()}_LO", params[:, j].min()) for j, nm in enumerate(names)], float)
            high = np.array([hdr.get(f"{nm[:5].upper()}_HI", params[:, j].max()) for j, nm in enumerate(names)], float)
            return SpectralLibrary(
                edges,
                params,
                spectra,
                names,
                units,
                low,
                high,
                channels,
                str(hdr.get("COMPNAME", "custom")),
                str(hdr.get("RESPONSE", "")),
            )
    except OSError as exc:
        raise LibraryError(f"{p}: not a readable FITS file ({exc})") from None


def write_library(lib: SpectralLibrary, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``lib`` in the documented FITS or NPZ format (by extension), atomically."""
    from napari_sushi.core.io.atomic import atomic_path

    p = Path(path)
    with atomic_path(p, overwrite=overwrite) as tmp:
        if p.name.lower().endswith(".npz"):
            d: dict[str, Any] = dict(
                energy_edges=lib.energy_edges,
                params=lib.params,
                spectra=lib.spectra,
                param_names=np.array(lib.names),
                param_units=np.array(lib.units),
                param_low=lib.low,
                param_high=lib.high,
                component=np.array(lib.component),
                response_id=np.array(lib.response_id),
            )
            if lib.channels is not None:
                d["channels"] = lib.channels
            with open(tmp, "wb") as fh:
                np.savez(fh, **d)
        else:
            from astropy.io import fits

            C = lib.energy_edges.size - 1
            ch = lib.channels if lib.channels is not None else np.arange(1, C + 1)
            eb = fits.BinTableHDU.from_columns(
                [
                    fits.Column("CHANNEL", "J", array=ch),
                    fits.Column("E_MIN", "D", unit="keV", array=lib.energy_edges[:-1]),
                    fits.Column("E_MAX", "D", unit="keV", array=lib.energy_edges[1:]),
                ],
                name="EBOUNDS",
            )
            cols = [
                fits.Column(nm, "D", unit=un or None, array=lib.params[:, j])
                for j, (nm, un) in enumerate(zip(lib.names, lib.units))
            ]
            cols.append(fits.Column("SPECTRUM", f"{C}D", array=lib.spectra))
            sp = fits.BinTableHDU.from_columns(cols, name="SPECTRA")
            sp.header["COMPNAME"] = lib.component
            sp.header["RESPONSE"] = lib.response_id
            for j, nm in enumerate(lib.names):
                sp.header[f"{nm[:5].upper()}_LO"] = float(lib.low[j])
                sp.header[f"{nm[:5].upper()}_HI"] = float(lib.high[j])
            fits.HDUList([fits.PrimaryHDU(), eb, sp]).writeto(tmp)
    return p
