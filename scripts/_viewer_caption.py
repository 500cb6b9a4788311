"""Caption text and saving for the README screenshots (imported by the screenshot scripts, which run from here)."""

from __future__ import annotations


def caption(viewer, text: str, font_size: int) -> None:
    """White text in the top-left corner of the canvas (napari's text overlay, old or new API)."""
    overlay = viewer.canvas.overlays.text if hasattr(viewer, "canvas") else viewer.text_overlay
    overlay.visible = True
    overlay.position = "top_left"
    overlay.font_size = font_size
    overlay.color = "white"
    overlay.text = text


def save_screenshot(viewer, out) -> None:
    """Fit the view, write the whole window to ``out`` (folders created), close the viewer."""
    viewer.reset_view()
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
