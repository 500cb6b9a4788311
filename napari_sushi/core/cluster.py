"""Independent tasks (whole cubes of a batch, tiles of a large field) in this process or on a Dask cluster.

The core's fits are plain functions of picklable inputs, so a Dask ``distributed`` worker runs them
unchanged. :func:`dask_client` connects to a running scheduler or starts a ``LocalCluster`` of worker
processes (one thread each: the fits are tuned for one thread per process, ``solver.threads``);
:func:`run_tasks` maps a function over items either here or there, reporting each result as it comes.
Dask is an optional dependency (``pip install 'napari-sushi[cluster]'``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence


class ClusterError(ValueError):
    """A cluster cannot be used as asked (Dask missing, scheduler unreachable, bad worker count)."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "fitting on a Dask cluster needs Dask distributed, which is not installed: "
            "pip install 'napari-sushi[cluster]' (or run without --workers/--scheduler, in this process)."
        ) from None
    return distributed


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A Dask ``Client`` for the duration of the block, or None (run here) when neither is given.

    ``scheduler``: address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``); ``workers``: start a
    ``LocalCluster`` of that many worker processes, one thread each, closed afterwards.
    """
    if scheduler and workers:
        raise ClusterError("give either a scheduler address or a number of local workers, not both.")
    if not scheduler and workers is None:
        yield None
        return
    distributed = _distributed()
    cluster = None
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}); check the address and that "
                "`dask scheduler` is running there."
            ) from None
    else:
        n = int(workers)  # type: ignore[arg-type]
        if n < 1:
            raise ClusterError(f"the number of local Dask workers (--workers) must be >= 1; got {workers}.")
        import dask

        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap threshold:
        # the solver's per-iteration blocks are then mapped and unmapped every time (measured: a 96x96 fit
        # 3.5 s in a plain process, 9.5-10 s on such a worker, 3.9-4.1 s without the variable)
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    client: Any = None,
    on_done: Callable[[int, Any], None] | None = None,
    on_error: Callable[[Any, BaseException], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[Any]:
    """``[fn(item) for item in items]``, here (in order) or on ``client``'s workers (in parallel).

    ``on_done(index, result)`` is called as each result arrives. A task that raises gives
    ``on_error(item, exception)`` as its result when ``on_error`` is given (so one failure does not stop
    the others); otherwise the exception propagates (remaining tasks are cancelled). ``cancel()``
    true stops the run before the next task starts (here) or as the next result arrives (on a cluster,
    where the tasks not done are cancelled); the results not computed stay None.
    """
    results: list[Any] = [None] * len(items)

    def finish(i: int, value: Any) -> None:
        results[i] = value
        if on_done is not None:
            on_done(i, value)

    if client is None:
        for i, item in enumerate(items):
            if cancel is not None and cancel():
                break
            try:
                value = fn(item)
            except Exception as exc:
                if on_error is None:
                    raise
                value = on_error(item, exc)
            finish(i, value)
        return results
    distributed = _distributed()
    # the inputs (a tile's counts: tens of MB) go to the workers directly, not inside the task graph
    data = client.scatter(list(items)) if items else []
    futures = [client.submit(fn, d, pure=False) for d in data]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in distributed.as_completed(futures):
            if cancel is not None and cancel():
                break
            i = index[fut.key]
            try:
                value = fut.result()
            except Exception as exc:  # raised in the task, or the worker died
                if on_error is None:
                    raise
                value = on_error(items[i], exc)
            finish(i, value)
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()
    return results


def worker_device(device: str) -> str:
    """The device a task should use: on a Dask worker of a machine with several GPUs, "auto"/"cuda"
    becomes the GPU ``worker index mod GPU count`` (one GPU per worker); anything else is returned as is."""
    if device not in ("auto", "cuda"):
        return device
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker
        return device
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2:
        return device
    name = worker.name
    k = name if isinstance(name, int) else sum(map(ord, str(name)))
    return f"cuda:{k % n}"


def submit_fit(
    scheduler: str,
    fit_fn: Callable[..., Any],
    cube: Any,
    components: list,
    settings: Any,
    callback: Callable[[Any], None] | None = None,
    cancel: Any = None,
    poll_s: float = 0.2,
) -> Any:
    """``fit_fn(cube, components, settings)`` run by a worker of the Dask cluster at ``scheduler``; its result.

    A blocking call with the solvers' signature (``callback`` is not sent: the worker's progress does
    not travel back, only the result), so the app's background thread can run a fit on a cluster
    instead of here. ``cancel`` (Event or callable) is polled every ``poll_s``: when set, the task
    is cancelled on the cluster and None is returned.
    """
    import time

    from napari_sushi.core.solver.stopping import is_cancelled

    with dask_client(scheduler=scheduler) as client:
        fut = client.submit(fit_fn, cube, components, settings, pure=False)
        while not fut.done():
            if is_cancelled(cancel):
                fut.cancel()
                return None
            time.sleep(poll_s)
        return fut.result()
