"""Real data end to end: the Chandra observation of MSH 15-52 (ObsID 754) into parameter maps.

The shipped models are built for the simulator's presets (the `wide` ones absorb by
N_H = 0.5e22 cm-2). MSH 15-52 lies behind about 0.95e22 cm-2 (Gaensler et al. 2002, ApJ 569, 878),
so this script does what a user with their own source would do:

1. trains two grid emulators on the Chandra ACIS-I cycle-0 response, 0.5-8 keV: an absorbed thermal
   plasma (kT free, velocity held at 0: the 0.5-8 keV lines of one pixel do not constrain it) and an
   absorbed power law (photon index free, box 1-3.5);
2. bins the event list on the native PI channels, 16x16 sky pixels (7.9") per image pixel;
3. runs SUSHI with its defaults (the global scan start, so no starting value decides the answer;
   benchmarks/bench_msh_starts.py compares it with plain starts) and writes its maps (FITS, sky WCS);
4. runs the per-pixel fit on the same models, for comparison (skip with --no-pixelfit);
5. draws the counts image, SUSHI's power-law share of the counts (pixels with >= 20 counts), kT and
   photon index, and the per-pixel fit's kT and index (each where its component holds >= 20 counts).

No background is modelled and the thermal model is a collisional-equilibrium one, while RCW 89 is
known to be out of ionisation equilibrium: the kT map is a shape summary, not a physical temperature.

Run:  .venv/bin/python scripts/msh1552_demo.py [--out msh1552_demo] [--png docs/images/msh1552_maps.png]
(about 7 minutes on 2 cores; needs ../shared/data/chandra_msh1552/)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_sushi.core.io.events import bin_events  # noqa: E402
from napari_sushi.core.io.fits_cube import write_cube_fits  # noqa: E402
from napari_sushi.core.simulate import customise_preset  # noqa: E402
from napari_sushi.core.solver.pixelfit import pixelfit  # noqa: E402
from napari_sushi.core.solver.settings import Component, FitSettings  # noqa: E402
from napari_sushi.core.solver.sushi import fit  # noqa: E402
from napari_sushi.core.spectral.files import save_model  # noqa: E402
from napari_sushi.core.spectral.training import train_model  # noqa: E402

EVENTS = ROOT.parent / "shared" / "data" / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
NH = 0.95  # 1e22 cm-2
MIN_COUNTS = 20.0  # a parameter is drawn where its component holds at least this many counts


def msh_preset():
    """The `wide` preset's response and band with MSH 15-52's absorption, the thermal velocity held at 0
    and a photon-index box of 1-3.5 (the CLI: `napari-sushi train --preset wide --fix nH=0.95 ...`)."""
    pre = customise_preset("wide", "thermal", fixed={"nH": NH, "velocity": 0.0})
    return customise_preset(pre, "powerlaw", fixed={"nH": NH}, ranges={"index": (1.0, 3.5)})


def train(out: Path) -> list[Component]:
    comps = []
    for name in ("thermal", "powerlaw"):
        model = train_model("emulator", preset=msh_preset(), component=name, progress=False)
        save_model(model, out / f"msh1552-{name}-emulator.safetensors", overwrite=True)
        comps.append(Component(name, model))
    return comps


def _masked(res, key: str) -> np.ndarray:
    """A parameter map, NaN where its component holds fewer than MIN_COUNTS counts."""
    return np.where(res.amplitudes[key.split()[0]] >= MIN_COUNTS, res.params[key], np.nan)


def draw(cube, res, png: Path, pixel=None) -> None:
    """The counts, SUSHI's power-law share, kT and index; with ``pixel``, the per-pixel fit's kT and index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    th, pl = res.amplitudes["thermal"], res.amplitudes["powerlaw"]
    counts = cube.counts.sum(axis=0)
    share = np.where(th + pl > 0, pl / np.maximum(th + pl, 1e-9), np.nan)
    at = f">= {MIN_COUNTS:.0f} counts"
    kt_lim, ix_lim = (0.2, 3.0), (1.2, 2.2)
    panels = [
        (np.log10(np.maximum(counts, 0.5)), 'counts per 7.9" pixel (log10)', "magma", None),
        (np.where(counts >= MIN_COUNTS, share, np.nan), f"SUSHI: power-law share (pixels {at})", "coolwarm", (0, 1)),
        (_masked(res, "thermal kT"), f"SUSHI: thermal kT [keV] (thermal {at})", "inferno", kt_lim),
        (_masked(res, "powerlaw index"), f"SUSHI: photon index (power law {at})", "viridis", ix_lim),
    ]
    for key, unit in (("thermal kT", " [keV]"), ("powerlaw index", "")):
        sig = np.where(res.amplitudes[key.split()[0]] >= MIN_COUNTS, res.sigmas[key], np.nan)
        panels.append(
            (
                sig,
                f"SUSHI: {key.split()[1]} 1-sigma{unit} ({res.provenance.get('sigma_method', '?').split()[0]})",
                "cividis",
                None,
            )
        )
    if pixel is not None:
        panels += [
            (_masked(pixel, "thermal kT"), f"per-pixel fit: thermal kT [keV] (thermal {at})", "inferno", kt_lim),
            (_masked(pixel, "powerlaw index"), f"per-pixel fit: photon index (power law {at})", "viridis", ix_lim),
        ]
    ncol = 4
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.3 * ncol, 4.4 * nrow), subplot_kw={"projection": res.wcs} if res.wcs else {}
    )
    for ax, (img, title, cmap, lim) in zip(np.ravel(axes), panels):
        im = ax.imshow(
            img, origin="lower", cmap=cmap, vmin=None if lim is None else lim[0], vmax=None if lim is None else lim[1]
        )
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        if res.wcs:
            ax.coords[0].set_axislabel("RA")
            ax.coords[0].set_ticks(number=3)
            ax.coords[1].set_axislabel("Dec")
    fig.suptitle(
        "MSH 15-52, Chandra ACIS-I ObsID 754, 0.5-8 keV: SUSHI (kmad 5, J 3)"
        + (" and the per-pixel fit" if pixel is not None else ""),
        fontsize=11,
    )
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(png)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("msh1552_demo"), help="folder for models, cube and maps")
    ap.add_argument("--png", type=Path, default=None, help="figure path (default: OUT/msh1552_maps.png)")
    ap.add_argument("--binning", type=int, default=16, help="sky pixels per image pixel (default 16)")
    ap.add_argument("--no-pixelfit", action="store_true", help="skip the per-pixel fit (about 2 minutes)")
    args = ap.parse_args(argv)
    if not EVENTS.exists():
        print(f"needs the event list {EVENTS}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    comps = train(args.out)
    t1 = time.perf_counter()
    cube = bin_events(EVENTS, band=(0.5, 8.0), native=True, binning=args.binning)
    write_cube_fits(cube, args.out / "msh1552_cube.fits", overwrite=True)
    # the global start (the default: a grid scan of the parameter boxes) makes the answer independent of
    # starting values; benchmarks/bench_msh_starts.py compares it with three plain starts
    t = time.perf_counter()
    res = fit(cube, comps, FitSettings())
    print(
        f"SUSHI: {res.stop_reason} after {res.n_iter} iterations, {time.perf_counter() - t:.0f} s; "
        f"C-stat/dof {np.nanmean(res.gof):.5f} (mean over pixels)"
    )
    res.to_fits(args.out / "msh1552_maps.fits", overwrite=True)
    t2 = time.perf_counter()
    print(f"models {t1 - t0:.0f} s; cube {cube.shape}, {cube.total_counts:,.0f} counts; {t2 - t1:.0f} s for the fit")
    pixel = None
    if not args.no_pixelfit:  # the classic method on the same models, for comparison
        pixel = pixelfit(cube, comps, FitSettings())
        pixel.to_fits(args.out / "msh1552_pixelfit_maps.fits", overwrite=True)
        print(f"per-pixel fit: {pixel.wall_time:.0f} s")
    draw(cube, res, args.png or args.out / "msh1552_maps.png", pixel)
    for name, r in (("SUSHI", res), ("per-pixel fit", pixel)):
        if r is None:
            continue
        for key in ("thermal kT", "powerlaw index"):
            v = _masked(r, key)
            v = v[np.isfinite(v)]
            print(
                f"{name} {key}: {v.size} pixels with >= {MIN_COUNTS:.0f} {key.split()[0]} counts; median "
                f"{np.median(v):.2f}, 5-95 % {np.percentile(v, 5):.2f}-{np.percentile(v, 95):.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
