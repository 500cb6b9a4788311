"""Screenshot of the toy remnant (File > Open Sample) with its truth maps in napari grid mode.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_toy_truth.py

Opens the "Toy supernova remnant" sample (preset toy, seed 0), adds the band-summed counts image,
shows every truth map (hidden by default) side by side in grid mode with physical colour scales,
and saves docs/images/toy_truth.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from _viewer_caption import caption, save_screenshot

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "toy_truth.png"

STYLE = {  # name fragment -> (colormap, contrast limits)
    "thermal amplitude": ("magma", None),
    "thermal kT": ("inferno", (1.0, 4.0)),
    "thermal velocity": ("bwr", (-5000.0, 5000.0)),
    "powerlaw amplitude": ("magma", None),
    "powerlaw index": ("viridis", (2.0, 3.5)),
}


def _process_events() -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()


def main() -> int:
    import napari

    viewer = napari.Viewer(show=True, title="napari-sushi: toy supernova remnant with truth maps")
    viewer.window._qt_window.resize(1560, 960)
    layers = viewer.open_sample("napari-sushi", "toy_remnant")
    cube = layers[0]
    energy = 6.6  # Fe K band
    viewer.dims.set_point(0, energy)
    cube.contrast_limits = (0, 3)
    img = viewer.add_image(np.asarray(cube.data).sum(axis=0), name="counts 3-8.48 keV (sum)", colormap="magma")
    img.contrast_limits = (0, float(img.data.max()))
    viewer.layers.move(viewer.layers.index(img), 1)
    for layer in list(viewer.layers)[2:]:
        layer.visible = True
        for key, (cmap, limits) in STYLE.items():
            if layer.name.startswith(key):
                layer.colormap = cmap
                if limits is not None:
                    layer.contrast_limits = limits
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
    grid.enabled = True
    grid.shape = (2, 4)
    grid.stride = 1
    caption(
        viewer,
        f"row 1: counts cube at {energy} keV | counts summed 3-8.48 keV | thermal amplitude | kT 1-4 keV\n"
        "row 2: velocity -5000 (blue) .. +5000 km/s (red) | power-law amplitude | photon index 2-3.5",
        font_size=10,
    )
    viewer.dims.set_point(0, energy)
    _process_events()
    viewer.reset_view()
    _process_events()
    save_screenshot(viewer, OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
