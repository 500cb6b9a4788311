"""Screenshot of the binned MSH 15-52 cube in napari (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_binned_cube.py

Bins the Chandra event list (0.5-8 keV, 0.1 keV channels, 4x4 sky pixels), writes the cube to a
temporary FITS file, opens it with the napari-sushi reader, shows a 1.8-2.0 keV slice (Si band)
with a log-scaled colormap, and saves docs/images/msh1552_binned.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from _viewer_caption import caption, save_screenshot

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT.parent / "shared" / "data" / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
OUT = ROOT / "docs" / "images" / "msh1552_binned.png"


def main() -> int:
    if not EVENTS.exists():
        print(f"real data not found at {EVENTS}; nothing to do.", file=sys.stderr)
        return 1
    import napari

    from napari_sushi.core.io import bin_events, write_cube_fits

    cube = bin_events(EVENTS, band=(0.5, 8.0), channel_width=0.1, binning=4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "msh1552_cube.fits"
        write_cube_fits(cube, path)
        viewer = napari.Viewer(show=True, title="napari-sushi: MSH 15-52 (Chandra ACIS, 0.5-8 keV)")
        viewer.window._qt_window.resize(1500, 950)
        (layer,) = viewer.open(str(path), plugin="napari-sushi")
        layer.name = "MSH 15-52 counts (0.1 keV x 4x4 px)"
        energy = 1.85  # Si XIII band: RCW 89 knots stand out against the nebula
        viewer.dims.set_point(0, energy)
        i = viewer.dims.current_step[0]
        plane = np.asarray(layer.data[i], dtype=float)
        layer.colormap = "magma"
        layer.gamma = 0.5
        layer.contrast_limits = (0.0, max(1.0, float(np.percentile(plane[plane > 0], 99.5))))
        caption(
            viewer,
            f"energy slice {i}: {cube.energy_edges[i]:.1f}-{cube.energy_edges[i + 1]:.1f} keV  |  "
            f"cube {cube.shape[0]} x {cube.shape[1]} x {cube.shape[2]}, {int(cube.total_counts):,} counts",
            font_size=12,
        )
        viewer.camera.orientation2d = ("up", "right")  # north up, east left (RA decreases with x)
        save_screenshot(viewer, OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
