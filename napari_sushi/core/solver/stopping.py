"""The stopping rule shared by the solvers: relative cost change over a window, sign-independent."""

from __future__ import annotations

import threading
from typing import Callable

TINY = 1e-30


def relative_change(c_now: float, c_then: float) -> float:
    """|c_now - c_then| / max(|c_now|, |c_then|, tiny): meaningful whatever the sign of the cost."""
    return abs(c_now - c_then) / max(abs(c_now), abs(c_then), TINY)


def converged(history: list[float], tol: float, window: int) -> bool:
    """True when the cost moved by less than ``tol`` (relative) over the last ``window`` iterations."""
    w = max(1, int(window))
    if len(history) <= w:
        return False
    return relative_change(history[-1], history[-1 - w]) < tol


def is_cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    """Whether a cancel request (an Event or a zero-argument callable) is set."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
