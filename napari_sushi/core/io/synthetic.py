"""Small synthetic Chandra-like event lists, for tests and examples (no real data needed).

The file mimics a Chandra ACIS level-2 list: an ``EVENTS`` table with sky ``x``/``y`` (1-based
sky pixels with a tangent-plane WCS in ``TCTYP/TCRVL/TCRPX/TCDLT``), ``energy`` in eV and ``pi``
(14.6 eV channels), plus ``EXPOSURE``, ``TELESCOP`` and ``INSTRUME`` keywords.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits

SKY = {"crval": (228.475, -59.14), "crpix": (4096.5, 4096.5), "cdelt": (-0.000136666666667, 0.000136666666667)}


def synthetic_events(
    n: int = 2000,
    seed: int = 0,
    centre: tuple[float, float] = (4100.0, 4090.0),
    spread: float = 40.0,
    energy_range: tuple[float, float] = (0.3, 10.0),
) -> dict[str, np.ndarray]:
    """Seeded event columns: x, y (sky pixels), energy (eV) and pi (ACIS channel of the energy)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(centre[0], spread, n)
    y = rng.normal(centre[1], spread, n)
    energy = rng.uniform(energy_range[0] * 1000, energy_range[1] * 1000, n)
    pi = np.floor(energy / 14.6).astype(np.int64) + 1
    return {"x": x, "y": y, "energy": energy, "pi": pi}


def write_event_file(
    path: str | os.PathLike,
    columns: dict[str, np.ndarray] | None = None,
    telescope: str = "CHANDRA",
    instrument: str = "ACIS",
    exposure: float = 10000.0,
    with_wcs: bool = True,
    ebounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write an event list with the given columns (default :func:`synthetic_events`) and return its path.

    Column names are written as given (``x``, ``y``, ``energy``, ``pi`` or any others), so files
    missing a column can be made on purpose. ``ebounds`` = (edges keV, channels) adds an EBOUNDS table.
    """
    columns = synthetic_events() if columns is None else columns
    fmt = {"x": "E", "y": "E", "energy": "E", "pi": "J"}
    cols = [
        fits.Column(
            name=k,
            format=fmt.get(k, "D"),
            unit={"x": "pixel", "y": "pixel", "energy": "eV", "pi": "chan"}.get(k),
            array=np.asarray(v),
        )
        for k, v in columns.items()
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    h = hdu.header
    names = list(columns)
    if with_wcs and "x" in names and "y" in names:
        for axis, col in ((0, "x"), (1, "y")):
            i = names.index(col) + 1
            h[f"TCTYP{i}"] = "RA---TAN" if axis == 0 else "DEC--TAN"
            h[f"TCRVL{i}"] = SKY["crval"][axis]
            h[f"TCRPX{i}"] = SKY["crpix"][axis]
            h[f"TCDLT{i}"] = SKY["cdelt"][axis]
            h[f"TCUNI{i}"] = "deg"
    if "pi" in names:
        h[f"TLMIN{names.index('pi') + 1}"] = 1
        h[f"TLMAX{names.index('pi') + 1}"] = 1024
    h["TELESCOP"] = telescope
    h["INSTRUME"] = instrument
    h["EXPOSURE"] = exposure
    h["OBJECT"] = "synthetic"
    h["RADECSYS"] = "ICRS"
    hdus = [fits.PrimaryHDU(), hdu]
    if ebounds is not None:
        edges, channels = ebounds
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column(name="CHANNEL", format="J", array=np.asarray(channels)),
                    fits.Column(name="E_MIN", format="D", unit="keV", array=np.asarray(edges[:-1])),
                    fits.Column(name="E_MAX", format="D", unit="keV", array=np.asarray(edges[1:])),
                ],
                name="EBOUNDS",
            )
        )
    out = Path(path)
    fits.HDUList(hdus).writeto(out, overwrite=True)
    return out
