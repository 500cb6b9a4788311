"""Keep widget text readable: spin boxes never squeezed below the width their value and suffix need."""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QAbstractSpinBox, QWidget

BUTTONS_PX = 44  # napari's theme draws '−' and '+' buttons inside the box, on both sides of the text


def _longest_text(box: QAbstractSpinBox) -> str:
    texts = [box.text()]
    for bound in ("minimum", "maximum"):
        if hasattr(box, bound) and hasattr(box, "textFromValue"):
            texts.append(box.prefix() + box.textFromValue(getattr(box, bound)()) + box.suffix())
    return max(texts, key=len)


def keep_text_visible(root: QWidget) -> None:
    """Give every spin box under ``root`` a minimum width that shows its longest value with its suffix.

    napari's stylesheet sets a fixed ``min-width`` on spin boxes, which wins over ``setMinimumWidth``, so
    a form layout in a narrow dock squeezed '3.00 keV' to '3.00 l'; a per-widget stylesheet wins over it."""
    for box in root.findChildren(QAbstractSpinBox):
        need = box.fontMetrics().horizontalAdvance(_longest_text(box)) + BUTTONS_PX + 12
        box.setStyleSheet(f"QAbstractSpinBox {{ min-width: {need}px; }}")
        box.setMinimumWidth(need)


SCROLLBAR_PX = 18


def fitting_width(inner: QWidget, floor: int) -> int:
    """A dock width at which ``inner`` (the scrolled content) fits without being cut at the right edge."""
    return max(int(floor), inner.minimumSizeHint().width() + SCROLLBAR_PX)


class _WidthKeeper(QObject):
    """Re-applies :func:`fitting_width` whenever the scrolled content's layout changes (rows added, styles
    polished once shown), so the dock is never narrower than its content."""

    def __init__(self, dock: QWidget, inner: QWidget, floor: int) -> None:
        super().__init__(dock)
        self.dock, self.inner, self.floor = dock, inner, floor
        inner.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Show, QEvent.Type.StyleChange):
            w = fitting_width(self.inner, self.floor)
            if w != self.dock.minimumWidth():
                self.dock.setMinimumWidth(w)
        return False


def keep_width(dock: QWidget, inner: QWidget, floor: int) -> None:
    """Keep ``dock`` at least as wide as its scrolled content ``inner`` needs (and at least ``floor``)."""
    dock.setMinimumWidth(fitting_width(inner, floor))
    dock._width_keeper = _WidthKeeper(dock, inner, floor)
