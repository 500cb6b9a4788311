"""The demo session: napari with the toy remnant sample loaded and the fit dock docked, ready to Run."""

from __future__ import annotations

import os
import sys
from typing import Any

PLUGIN = "napari-sushi"
DOCK = "SUSHI fit"


def _sample_id() -> str:
    """The sample-data key of the toy remnant in the manifest (the first sample if none says remnant)."""
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest(PLUGIN)
    samples = list(manifest.contributions.sample_data or [])
    if not samples:
        raise RuntimeError(
            "napari-sushi ships no sample data in its manifest; reinstall the plugin (pip install -e .)."
        )
    for s in samples:
        if "remnant" in (s.display_name or "").lower() or "remnant" in s.key:
            return s.key
    return samples[0].key


def has_display() -> bool:
    """Whether Qt can open windows here (X11/Wayland display, macOS or Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_demo(show: bool = True, binning: int | None = None, max_iter: int | None = None) -> tuple[Any, Any]:
    """Open a viewer with the toy remnant and the docked fit dock; returns (viewer, dock)."""
    import napari

    from napari_sushi._napari.preferences import prefer_our_reader

    prefer_our_reader()  # FITS files dropped on the window open with napari-sushi, no dialog
    viewer = napari.Viewer(title="napari-sushi demo: toy supernova remnant", show=show)
    viewer.open_sample(PLUGIN, _sample_id())
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, DOCK)
    cubes = [dock.cube_combo.itemText(i) for i in range(dock.cube_combo.count())]
    if cubes:
        dock.cube_combo.setCurrentIndex(0)
        viewer.layers.selection.active = viewer.layers[cubes[0]]
    if binning is not None:
        dock.binning.setValue(int(binning))
    if max_iter is not None:
        dock.max_iter.setValue(int(max_iter))
    return viewer, dock
