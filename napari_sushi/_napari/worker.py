"""Background fits for the dock: a napari generator ``thread_worker`` around a blocking core fit.

The core solvers report through a callback and stop when their ``cancel`` event is set. The worker
runs the solver in an inner thread and yields each :class:`Progress` it reports (and ``None`` every
~0.1 s while waiting) so the GUI gets progress per iteration and ``worker.quit()`` is honoured
promptly. :meth:`FitJob.cancel_fit` sets the event *and* quits the worker: the solver stops within
one iteration and the dock removes the run's layers on ``aborted``.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

_DONE = object()


class TaskError(Exception):
    """Carries a task's RuntimeError to the GUI: superqt's worker drops a RuntimeError with only a
    warning (it takes it for a deleted Qt object) and never emits ``errored`` or ``finished``, which left
    the dock 'running' forever (torch's errors, out-of-memory included, are RuntimeErrors)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def unwrap(exc: BaseException) -> BaseException:
    """The task's own exception behind a :class:`TaskError`."""
    return exc.original if isinstance(exc, TaskError) else exc


@dataclass
class FitJob:
    """One background fit: its worker, cancel event, solver thread and last reported iteration."""

    method: str
    label: str
    cancel: threading.Event = field(default_factory=threading.Event)
    worker: Any = None
    thread: threading.Thread | None = None
    last_iteration: int = 0
    cancel_iteration: int | None = None

    def cancel_fit(self) -> None:
        """Ask the solver to stop (it checks the event every iteration) and quit the worker."""
        if self.cancel_iteration is None:
            self.cancel_iteration = self.last_iteration
        self.cancel.set()
        if self.worker is not None:
            self.worker.quit()

    @property
    def solver_running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def background_generator(
    job: FitJob,
    target_fn: Callable[[Callable[[Any], None], threading.Event], Any],
    poll_s: float = 0.1,
) -> Generator[Any, None, Any]:
    """Run ``target_fn(callback, cancel)`` in an inner thread and yield what it reports.

    Yields ``None`` every ``poll_s`` while waiting, so ``worker.quit()`` takes effect promptly; the
    inner thread's exception is re-raised here (the worker's ``errored``), its return value returned.
    """
    events: queue.SimpleQueue = queue.SimpleQueue()
    box: dict[str, Any] = {}

    def callback(progress: Any) -> None:
        job.last_iteration = int(getattr(progress, "iteration", job.last_iteration))
        events.put(progress)

    def target() -> None:
        try:
            box["result"] = target_fn(callback, job.cancel)
        except BaseException as exc:  # handed to the GUI thread through the worker's errored
            box["error"] = exc
        finally:
            events.put(_DONE)

    thread = threading.Thread(target=target, name=f"napari-sushi {job.label}", daemon=True)
    job.thread = thread
    thread.start()
    try:
        while True:
            try:
                item = events.get(timeout=poll_s)
            except queue.Empty:
                yield None  # lets worker.quit() take effect while an iteration runs
                continue
            if item is _DONE:
                break
            yield item
    finally:
        if thread.is_alive():
            job.cancel.set()
    if "error" in box:
        err = box["error"]
        if isinstance(err, RuntimeError):
            raise TaskError(err) from err
        raise err
    return box.get("result")


def fit_generator(
    job: FitJob,
    fit_fn: Callable[..., Any],
    cube: Any,
    components: list,
    settings: Any,
    poll_s: float = 0.1,
) -> Generator[Any, None, Any]:
    """Run ``fit_fn(cube, components, settings, callback, cancel)`` and yield its progress."""
    return (
        yield from background_generator(
            job, lambda callback, cancel: fit_fn(cube, components, settings, callback=callback, cancel=cancel), poll_s
        )
    )


def make_fit_job(
    method: str,
    label: str,
    fit_fn: Callable[..., Any],
    cube: Any,
    components: list,
    settings: Any,
) -> FitJob:
    """A FitJob whose worker is created but not started: connect its signals, then ``start()``."""
    from napari.qt.threading import create_worker

    job = FitJob(method=method, label=label)
    job.worker = create_worker(
        fit_generator,
        job,
        fit_fn,
        cube,
        components,
        settings,
        _start_thread=False,
        _ignore_errors=True,  # the dock turns errors into notifications
    )
    return job


def make_background_job(
    label: str,
    target_fn: Callable[[Callable[[Any], None], threading.Event], Any],
    method: str = "task",
) -> FitJob:
    """A job running ``target_fn(callback, cancel)`` in the background (e.g. model training); not started."""
    from napari.qt.threading import create_worker

    job = FitJob(method=method, label=label)
    job.worker = create_worker(background_generator, job, target_fn, _start_thread=False, _ignore_errors=True)
    return job
