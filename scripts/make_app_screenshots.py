"""Screenshots of the real app for the README (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/make_app_screenshots.py

1. docs/images/fit_dock_running.png: the fit dock mid-run on the toy remnant, live maps in a grid.
2. docs/images/maps_vs_truth.png: the final parameter maps (bottom row) under the simulator's
   truth maps (top row), same colormap and range per column.
3. docs/images/pixel_spectrum.png: the Pixel spectrum dock showing one bright pixel of the finished
   run against its model (clicked through the viewer's mouse callbacks), beside the kT map.
Options: --binning (default 2), --max-iter (default 300), --out (default docs/images),
--spectrum-only (run the fit, then make only pixel_spectrum.png).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _wait(app, cond, timeout: float) -> None:
    t0 = time.time()
    while not cond():
        app.processEvents()
        time.sleep(0.01)
        if time.time() - t0 > timeout:
            raise TimeoutError("the fit took too long")


def _save(viewer, path: Path) -> None:
    from imageio.v3 import imwrite

    img = viewer.screenshot(canvas_only=False, flash=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    imwrite(path, img)
    print(f"wrote {path} {img.shape}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binning", type=int, default=2)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--spectrum-only", action="store_true", help="make only pixel_spectrum.png")
    args = ap.parse_args()

    from qtpy.QtWidgets import QApplication

    from napari_sushi._napari.demo import open_demo
    from napari_sushi._napari.result_layers import truth_layer_for

    viewer, dock = open_demo(show=True, binning=args.binning, max_iter=args.max_iter)
    viewer.window._qt_window.resize(1600, 1000)
    app = QApplication.instance()
    dock.snapshot_every.setValue(5)
    cube_name = dock.cube_combo.currentText()
    job = dock.start("sushi")
    assert job is not None, "the dock refused to start (see the notification)"
    label = job.label
    if args.spectrum_only:
        _wait(app, lambda: dock.job is None, 3600)
        if label not in dock.runs:
            raise SystemExit(f"the run did not finish: {dock.status.text()}")
        spectrum_screenshot(viewer, dock, label, args.out / "pixel_spectrum.png")
        viewer.close()
        return

    # -- 1: mid-run, live maps in a grid
    # the default fit converges in ~50 iterations: iteration 20 is mid-run (the second phase has begun)
    _wait(app, lambda: job.last_iteration >= min(20, args.max_iter // 2) or dock.job is None, 900)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    live = [ly for ly in viewer.layers if ly.metadata.get("run") == label]
    for ly in viewer.layers:
        ly.visible = ly in live
    viewer.grid.enabled = True
    viewer.grid.shape = (2, max(2, (len(live) + 1) // 2))
    viewer.reset_view()
    for _ in range(10):
        app.processEvents()
    _save(viewer, args.out / "fit_dock_running.png")

    # -- 2: final maps beside the truth
    _wait(app, lambda: dock.job is None, 3600)
    if label not in dock.runs:
        raise SystemExit(f"the run did not finish: {dock.status.text()}")
    res = dock.runs[label].result
    keys = list(res.params)
    pairs = []
    for key in keys:
        fit_name = next(
            (
                n
                for n in dock.runs[label].layer_names
                if viewer.layers[n].metadata.get("key") == key and viewer.layers[n].metadata.get("kind") == "parameter"
            ),
            None,
        )
        truth = truth_layer_for(viewer, key)
        if fit_name is not None and truth is not None:
            pairs.append((truth, viewer.layers[fit_name]))
    if not pairs:
        raise SystemExit("no truth maps found next to the sample cube; cannot make maps_vs_truth.png")
    for ly in viewer.layers:
        ly.visible = False
    # napari fills the grid from the lowest layer index up (the bottom of the layer list):
    # truths in the first row, the fits under them, one column per parameter
    order = ([t for t, _ in pairs] + [f for _, f in pairs])[::-1]
    for i, ly in enumerate(order):
        viewer.layers.move(viewer.layers.index(ly), len(viewer.layers) - 1 - i)
    for truth, fit in pairs:
        truth.visible = fit.visible = True
        truth.colormap = fit.colormap.name
        fit.contrast_limits = truth.contrast_limits = _common_limits(truth, fit)
        # put the (unbinned) truth on the fit's world grid
        truth.scale = viewer.layers[cube_name].scale[-2:]
        truth.translate = viewer.layers[cube_name].translate[-2:]
    viewer.grid.enabled = True
    viewer.grid.shape = (2, len(pairs))
    viewer.grid.stride = 1
    viewer.layers.selection.active = pairs[0][1]
    viewer.reset_view()
    for _ in range(10):
        app.processEvents()
    _save(viewer, args.out / "maps_vs_truth.png")
    for truth, fit in pairs:
        t, f = np.asarray(truth.data, float), np.asarray(fit.data, float)
        if t.shape != f.shape:  # compare on the fit's binned grid
            b = t.shape[0] // f.shape[0]
            t = t[: f.shape[0] * b, : f.shape[1] * b].reshape(f.shape[0], b, f.shape[1], b).mean(axis=(1, 3))
        print(f"{fit.name}: median |fit - truth| = {np.median(np.abs(f - t)):.4g}")
    print(f"{label}: {res.stop_reason} after {res.n_iter} iterations in {res.wall_time:.1f} s on {res.device}")

    # -- 3: one pixel's spectrum against the fit
    viewer.grid.enabled = False
    spectrum_screenshot(viewer, dock, label, args.out / "pixel_spectrum.png")
    viewer.close()


def spectrum_screenshot(viewer, dock, label: str, path: Path) -> None:
    """Dock the Pixel spectrum widget, click a bright fitted pixel of run ``label`` over its kT map
    (through napari's own mouse callbacks, as a click would) and save the window."""
    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.events import Event
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    _, spec = viewer.window.add_plugin_dock_widget("napari-sushi", "Pixel spectrum", tabify=True)
    for _ in range(5):
        app.processEvents()
    spec.refresh_runs(select=label)
    res = dock.runs[label].result
    # a bright pixel where every component contributes (95th percentile of the smallest amplitude)
    amp = np.min([np.asarray(a, float) for a in res.amplitudes.values()], axis=0)
    fitted = (res.mask if res.mask is not None else np.ones(amp.shape, bool)) & np.isfinite(amp)
    target = np.percentile(amp[fitted], 95)
    y, x = np.unravel_index(np.argmin(np.where(fitted, np.abs(amp - target), np.inf)), amp.shape)
    kt_name = next(
        n
        for n in dock.runs[label].layer_names
        if viewer.layers[n].metadata.get("key", "").endswith(" kT")
        and viewer.layers[n].metadata.get("kind") == "parameter"
    )
    kt = viewer.layers[kt_name]
    for ly in viewer.layers:
        ly.visible = ly is kt or ly.name == "pixel spectrum"
    world = (float(kt.translate[0] + y * kt.scale[0]), float(kt.translate[1] + x * kt.scale[1]))
    position = tuple(viewer.dims.point[:-2]) + world

    def event(kind: str):
        return ReadOnlyWrapper(Event(kind, position=position, button=1, modifiers=()), exceptions=("handled",))

    mouse_press_callbacks(viewer, event("mouse_press"))
    mouse_release_callbacks(viewer, event("mouse_release"))
    if spec.pixel is None:
        raise SystemExit("the click did not select a pixel (see the notification)")
    viewer.layers.selection.active = kt
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    _save(viewer, path)
    print(f"pixel {spec.pixel}: {spec.spectrum.summary().replace(chr(10), '; ')}")


def _common_limits(a, b) -> tuple[float, float]:
    if a.colormap.name == "RdBu_r" or b.colormap.name == "RdBu_r":
        m = max(abs(v) for v in (*a.contrast_limits, *b.contrast_limits))
        return (-m, m)
    t = np.asarray(a.data, float)
    lo, hi = np.percentile(t[np.isfinite(t)], [1, 99])
    return (float(lo), float(hi if hi > lo else lo + 1))


if __name__ == "__main__":
    main()
