"""One Qt signal telling every open dock that the set of spectral models changed (a model was trained)."""

from __future__ import annotations

from qtpy.QtCore import QObject, Signal


class _ModelEvents(QObject):
    saved = Signal(str)  # the registry name of the new model


_EVENTS: _ModelEvents | None = None


def model_events() -> _ModelEvents:
    """The process-wide emitter (created on first use, in the GUI thread)."""
    global _EVENTS
    if _EVENTS is None:
        _EVENTS = _ModelEvents()
    return _EVENTS
