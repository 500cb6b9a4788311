"""``napari-sushi info``: say what a file holds (cube, event list, maps, array) in a few lines."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="describe a cube, event list or map file",
        description="Describe a FITS cube, event list, map file or .npy/.npz array: shape, energy band, "
        "channels, WCS centre, exposure, counts; for event lists the number of events and their ranges.",
    )
    p.add_argument("file", type=Path, help="file to describe")
    return p


def _wcs_centre(wcs, ny: int, nx: int) -> str:
    if wcs is None:
        return "none"
    sky = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    try:
        icrs = sky.icrs
        pix = np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600
        return f"RA {icrs.ra.deg:.5f} Dec {icrs.dec.deg:+.5f} deg (ICRS), pixel {pix:.3g} arcsec"
    except Exception:
        return str(sky)


def _response_line(response) -> str:
    if response is None:
        return "response: none known (no RESPFILE keyword or RMF beside the file)"
    return f"response: {response.rmf}" + (f" + {response.arf}" if response.arf else " (no ARF)") + f" ({response.how})"


def _fit_lines(ms, fit) -> list[str]:
    """A fit export described as maps: the fit (method, run, iterations, stop), its maps with units,
    whether the model/residual cubes are included, the models' identities."""
    from napari_sushi.core.solver.result import split_maps

    method = {"sushi": "SUSHI", "pixelfit": "per-pixel fit"}.get(fit.method, fit.method)
    wall = "" if fit.wall_time is None else f" in {fit.wall_time:.1f} s" + (f" on {fit.device}" if fit.device else "")
    any_map = next(iter(ms.maps.values()))
    lines = [
        f"  kind: fit result maps ({method}; not a cube to fit), {any_map.shape[0]}x{any_map.shape[1]} pixels"
        + (f", binning {fit.binning}" if fit.binning > 1 else ""),
        f"  run: {fit.run or '(not recorded)'}",
        f"  fit: {fit.stop_reason or '?'} after {fit.n_iter} iterations{wall}",
    ]
    fm = split_maps(ms.maps)
    groups = (
        ("amplitude maps", [f"{c} amplitude" for c in fm.amplitudes]),
        ("parameter maps", list(fm.params)),
        ("uncertainty maps", [k for k in ms.maps if k.endswith((" sigma", " lower", " upper", " bias"))]),
    )
    for title, names in groups:
        names = [n for n in names if n in ms.maps]
        if names:
            lines.append(f"  {title}: " + ", ".join(f"{n} [{ms.units.get(n) or '-'}]" for n in names))
    if fm.measured:
        lines.append(
            "  measured share (the rest is the regulariser's fill-in): "
            + ", ".join(f"{k} {100 * np.mean(m):.0f} %" for k, m in fm.measured.items())
        )
    for key, arr in fm.params.items():
        finite = np.asarray(arr, float)[np.isfinite(arr)]
        if finite.size:
            lines.append(f"    {key}: range {finite.min():.4g}..{finite.max():.4g} {ms.units.get(key) or ''}".rstrip())
    if fm.gof is not None:
        g = np.asarray(fm.gof, float)
        med = f"median {np.nanmedian(g):.3f}" if np.isfinite(g).any() else "no fitted pixel"
        lines.append(f"  goodness of fit: {fit.gof_name or '?'}, {med}")
    if ms.cubes:
        e = ms.energy_edges
        band = "" if e is None else f" over {e[0]:.4g}-{e[-1]:.4g} keV ({len(e) - 1} channels)"
        lines.append(f"  cubes: included ({', '.join(ms.cubes)}){band}")
    else:
        lines.append("  cubes: not included (export with the model cubes to inspect pixel spectra)")
    for comp, m in fit.models.items():
        lines.append(
            f"  model {comp}: {m.get('family', '?')} identity {m.get('identity', '?')} "
            f"(response {m.get('response', '?')})"
        )
    lines.append(f"  WCS centre: {_wcs_centre(ms.wcs, *any_map.shape)}")
    return lines


def describe(path: Path) -> list[str]:
    """The lines printed by ``napari-sushi info``."""
    from napari_sushi.core.io import (
        event_summary,
        file_kind,
        read_array_cube,
        read_fits_cube,
        read_fits_image,
        read_maps_fits,
    )
    from napari_sushi.core.io.maps import fit_export

    kind = file_kind(path)
    lines = [f"{path}"]
    if kind == "events":
        s = event_summary(path)
        lines += [
            "  kind: X-ray event list",
            f"  events: {s.n_events:,}",
            "  energy: "
            + ("unknown" if s.energy_range is None else f"{s.energy_range[0]:.3f}-{s.energy_range[1]:.3f} keV")
            + f" ({s.energy_source})",
            f"  sky x: {s.x_range[0]:.1f}-{s.x_range[1]:.1f}  sky y: {s.y_range[0]:.1f}-{s.y_range[1]:.1f} (pixels)",
            f"  exposure: {'unknown' if s.exposure is None else f'{s.exposure:.1f} s'}",
            f"  object: {s.header.get('OBJECT', '?')}  telescope: {s.header.get('TELESCOP', '?')} "
            f"{s.header.get('INSTRUME', '')}",
        ]
        if s.wcs is not None:
            cx, cy = (s.x_range[0] + s.x_range[1]) / 2, (s.y_range[0] + s.y_range[1]) / 2
            sky = s.wcs.pixel_to_world(cx - 1, cy - 1).icrs  # column values are 1-based FITS pixels
            lines.append(f"  field centre: RA {sky.ra.deg:.5f} Dec {sky.dec.deg:+.5f} deg (ICRS)")
        else:
            lines.append("  sky WCS: none (no TC* keywords on x/y)")
        lines.append("  " + _response_line(s.response))
        return lines
    if kind == "image":
        img = read_fits_image(path)
        ny, nx = img.data.shape[-2:]
        scale = "" if img.pixel_scale_arcsec is None else f", pixel {img.pixel_scale_arcsec[1]:.3g} arcsec"
        lines += [
            f"  kind: FITS image {img.data.shape} (HDU {img.hdu}; no energy axis, so not a cube to fit)",
            f"  WCS centre: {_wcs_centre(img.wcs, ny, nx)}" + (scale if img.wcs is None else ""),
            f"  unit: {img.header.get('BUNIT', '-') or '-'}  range {np.nanmin(img.data):.4g}..{np.nanmax(img.data):.4g}",
        ]
        return lines
    if kind == "maps":
        ms = read_maps_fits(path)
        fit = fit_export(ms)
        if fit is not None:
            return lines + _fit_lines(ms, fit)
        lines.append("  kind: map set")
        for name, m in ms.maps.items():
            unit = ms.units.get(name) or "-"
            truth = " (truth)" if ms.headers.get(name, {}).get("TRUTH", False) else ""
            lines.append(
                f"  map {name}{truth}: {m.shape[0]}x{m.shape[1]} [{unit}] range {np.nanmin(m):.4g}..{np.nanmax(m):.4g}"
            )
        for name, c in ms.cubes.items():
            lines.append(f"  cube {name}: {c.shape}")
        if ms.maps:
            any_map = next(iter(ms.maps.values()))
            lines.append(f"  WCS centre: {_wcs_centre(ms.wcs, *any_map.shape)}")
        return lines
    from napari_sushi.core.io.arrays import NoEnergyEdgesWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoEnergyEdgesWarning)
        cube = read_array_cube(path) if kind == "array" else read_fits_cube(path)
    no_edges = any(issubclass(w.category, NoEnergyEdgesWarning) for w in caught)
    ne, ny, nx = cube.shape
    widths = cube.energy_widths
    uniform = np.allclose(widths, widths[0], rtol=1e-6)
    band = (
        f"  band: channel index 0-{ne} (no energy_edges in the file, so no keV scale)"
        if no_edges
        else f"  band: {cube.energy_edges[0]:.4g}-{cube.energy_edges[-1]:.4g} keV, "
        + (f"{ne} bins of {widths[0] * 1000:.4g} eV" if uniform else f"{ne} non-uniform bins")
    )
    lines += [
        f"  kind: {'array' if kind == 'array' else 'FITS'} cube (energy, y, x) = ({ne}, {ny}, {nx})",
        band,
        "  channels: " + ("none" if cube.channels is None else f"{cube.channels[0]}-{cube.channels[-1]} ({ne} bins)"),
        f"  WCS centre: {_wcs_centre(cube.wcs, ny, nx)}",
        f"  exposure: {'unknown' if cube.exposure is None else f'{cube.exposure:.1f} s'}",
        f"  total counts: {cube.total_counts:,.0f}",
    ]
    if kind == "cube":
        lines.append("  " + _response_line(cube.response))
    if kind == "cube":
        try:
            ms = read_maps_fits(path)
            lines.append("  maps: " + ", ".join(f"{k} [{ms.units.get(k) or '-'}]" for k in ms.maps))
        except ValueError:
            pass
    return lines


def run(args: argparse.Namespace) -> int:
    for line in describe(args.file):
        print(line)
    return 0
