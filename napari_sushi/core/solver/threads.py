"""How many CPU threads a fit's tensor operations use (the thread policy of the solvers).

A fit on the CPU is thousands of tensor operations per iteration on cache-sized pixel blocks
(``problem._chunk``), each too small to share well between threads: measured on a 2-core machine,
toy cube, one process (``benchmarks/results/speed.md``), the fit took 17 s with one intra-op thread
and 35 s with two. So by default the solvers run with one thread (restored afterwards);
``FitSettings.threads`` asks for another count. OpenMP's waiting policy is set to passive when the
package is imported (``napari_sushi/__init__.py``), so that idle threads of other work do not spin.
Accelerators are unaffected.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import torch

from napari_sushi.core.solver.problem import FitSetupError, resolve_device
from napari_sushi.core.solver.settings import FitSettings

DEFAULT_CPU_THREADS = 1


@contextlib.contextmanager
def fit_threads(settings: FitSettings) -> Iterator[None]:
    """Run the body with the intra-op thread count the settings ask for on the CPU (default 1)."""
    want = settings.threads
    if want is not None and (not isinstance(want, int) or want < 1):
        raise FitSetupError(f"threads must be a whole number >= 1 (or None for the default); got {want!r}.")
    if resolve_device(settings.device).type != "cpu":
        yield
        return
    n = DEFAULT_CPU_THREADS if want is None else want
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


F = TypeVar("F", bound=Callable[..., Any])


def under_thread_policy(fit_function: F) -> F:
    """Decorate a fit ``(cube, components, settings=None, callback=None, cancel=None)`` so that it runs
    under :func:`fit_threads` of its settings (the default settings when none are given)."""

    @functools.wraps(fit_function)
    def wrapper(cube, components, settings=None, callback=None, cancel=None):
        settings = settings or FitSettings()
        with fit_threads(settings):
            return fit_function(cube, components, settings, callback, cancel)

    return cast(F, wrapper)
