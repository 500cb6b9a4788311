"""Screenshots of the README's "Your own data" walk-through, made in the real app (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/make_own_data_screenshots.py

The same steps as a user: open the MSH 15-52 event list (../shared/data), re-bin it in the Bin event
list dock with the Chandra response, train absorbed thermal and power-law emulators for that cube in
the Train models dock, fit with SUSHI and click a pixel. Writes
1. docs/images/own_data_training.png: the Train models dock after training (loss plot, accuracy);
2. docs/images/own_data_maps.png: the kT and photon-index maps with the Pixel spectrum dock.
Models go to a temporary model folder (NAPARI_SUSHI_MODEL_DIR), not the user's.
Options: --binning (default 32), --group (4), --max-iter (300), --nh (0.95), --out (docs/images).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EVENTS = SHARED / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
RMF = SHARED / "responses" / "acisi_aimpt_cy0.rmf"
ARF = SHARED / "responses" / "acisi_aimpt_cy0.arf"
CUTOUT = (3200.0, 5200.0, 3000.0, 5000.0)  # sky pixels: RCW 89 (north-west) and the pulsar wind nebula


def _pump(app, seconds: float = 0.3) -> None:
    t0 = time.time()
    while time.time() - t0 < seconds:
        app.processEvents()
        time.sleep(0.01)


def _wait(app, cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while not cond():
        app.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout:
            raise SystemExit(f"{what} took longer than {timeout:.0f} s")


def _save(viewer, path: Path) -> None:
    from imageio.v3 import imwrite

    img = viewer.screenshot(canvas_only=False, flash=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    imwrite(path, img)
    print(f"wrote {path} {img.shape}")


def _raise_dock(viewer, widget) -> None:
    """Bring the tabbed dock holding ``widget`` to the front."""
    from qtpy.QtWidgets import QDockWidget

    for d in viewer.window._qt_window.findChildren(QDockWidget):
        w = d.widget()
        if w is widget or (w is not None and widget in w.findChildren(type(widget))):
            d.raise_()
            return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binning", type=int, default=32)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--nh", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    if not EVENTS.exists():
        raise SystemExit(f"{EVENTS} is missing: this walk-through needs the shared MSH 15-52 event list")
    os.environ["NAPARI_SUSHI_MODEL_DIR"] = tempfile.mkdtemp(prefix="sushi-models-")

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="napari-sushi: your own data")
    viewer.window._qt_window.resize(1600, 1000)
    app = QApplication.instance()
    viewer.open(str(EVENTS), plugin="napari-sushi")
    _, bins = viewer.window.add_plugin_dock_widget("napari-sushi", "Bin event list")
    bins.rmf_edit.setText(str(RMF))
    bins.arf_edit.setText(str(ARF))
    bins.binning.setValue(args.binning)
    bins.group.setValue(args.group)
    bins.cutout_combo.setCurrentText("typed below (sky pixels)")
    for sb, v in zip(bins.cut, CUTOUT):
        sb.setValue(v)
    cube = bins.bin()[0]
    viewer.layers.remove(viewer.layers[0])  # the first, default binning
    _, fit = viewer.window.add_plugin_dock_widget("napari-sushi", "SUSHI fit", tabify=True)
    fit.cube_combo.setCurrentText(cube.name)
    trainer = fit.open_training_dock()
    for comp in ("powerlaw", "thermal"):  # thermal last: its loss curve is in the screenshot
        trainer.component_combo.setCurrentIndex(trainer.component_combo.findData(comp))
        trainer.nh.setValue(args.nh)
        if comp == "powerlaw":
            trainer.set_box("index", low=1.0, high=3.5)
        if trainer.start() is None:
            raise SystemExit(f"training refused: {trainer.status.text()}")
        _wait(app, lambda: trainer.job is None, 1800, f"training the {comp} model")
        print(f"{comp}: {trainer.result_label.text()}")
    counts = np.asarray(cube.data).sum(axis=0)
    image = viewer.add_image(
        counts,
        name="counts 0.5-8 keV",
        scale=cube.scale[1:],
        translate=cube.translate[1:],
        colormap="magma",
        contrast_limits=(0, float(np.percentile(counts, 99.5))),
        gamma=0.6,
    )
    cube.visible = False
    viewer.layers.selection.active = image
    viewer.reset_view()
    _raise_dock(viewer, trainer)
    _pump(app)
    _save(viewer, args.out / "own_data_training.png")

    _raise_dock(viewer, fit)
    fit.max_iter.setValue(args.max_iter)
    job = fit.start("sushi")
    if job is None:
        raise SystemExit(f"the fit dock refused to start: {fit.status.text()}")
    _wait(app, lambda: fit.job is None, 3600, "the fit")
    label = job.label
    if label not in fit.runs:
        raise SystemExit(f"the fit did not finish: {fit.status.text()}")
    res = fit.runs[label].result
    print(fit.status.text())
    names = fit.runs[label].layer_names

    def param(key: str) -> str:
        return next(
            n
            for n in names
            if viewer.layers[n].metadata.get("key") == key and viewer.layers[n].metadata.get("kind") == "parameter"
        )

    show = [param("thermal kT"), param("powerlaw index")]
    overlays = [
        n
        for n in names
        if viewer.layers[n].metadata.get("kind") == "unmeasured"
        and viewer.layers[n].metadata.get("key") in ("thermal kT", "powerlaw index")
    ]
    for ly in viewer.layers:
        ly.visible = ly.name in show or ly.name in overlays
    viewer.grid.enabled = True
    viewer.grid.shape = (1, 2)
    viewer.grid.stride = 2 if len(overlays) == 2 else 1  # each map shares its cell with its overlay
    _, spec = viewer.window.add_plugin_dock_widget("napari-sushi", "Pixel spectrum", tabify=True)
    spec.refresh_runs(select=label)
    # an RCW 89 knot: the brightest thermal pixel among those where the plasma gives most of the counts
    th, pl = (np.nan_to_num(np.asarray(res.amplitudes[c], float)) for c in ("thermal", "powerlaw"))
    thermal_led = th > 1.5 * pl
    y, x = np.unravel_index(int(np.argmax(np.where(thermal_led, th, -1))), th.shape)
    sp = spec.show_pixel(int(y), int(x))
    if sp is None:
        raise SystemExit("the pixel spectrum could not be shown (see the notification)")
    viewer.layers.selection.active = viewer.layers[show[0]]
    viewer.reset_view()
    _pump(app, 0.6)
    _save(viewer, args.out / "own_data_maps.png")
    print(f"pixel ({y}, {x}): {sp.summary().replace(chr(10), '; ')}")
    edges = res.edge_summary()
    print(f"box edges: {edges or 'none above 5 %'}")
    viewer.close()


if __name__ == "__main__":
    main()
