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
        lines.append("  kind: map set")
        for name, m in ms.maps.items():
            unit = ms.units.get(name) or "-"
            truth = " (truth)" if ms.headers.get(name, {}).get("TRUTH", False) else ""
            lines.append(f"  map {name}{truth}: {m.shape[0]}x{m.shape[1]} [{unit}] "
                         f"range {np.nanmin(m):.4g}..{np.nanmax(m):.4g}")
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
        "  channels: "
        + ("none" if cube.channels is None else f"{cube.channels[0]}-{cube.channels[-1]} ({ne} bins)"),
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
