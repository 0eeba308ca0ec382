"""One way to get a Dask distributed client (kernel layer: used by ``mecopt sweep`` and ``learners.tune``).

* ``workers=N`` (default: one per core): a :class:`distributed.LocalCluster` on this machine with N worker
  *processes*, one thread each (every solver and learner here is single-threaded and CPU-bound; processes sidestep
  the GIL);
* ``scheduler="tcp://HOST:8786"``: connect to an existing cluster started elsewhere with ``dask scheduler`` and
  ``dask worker tcp://HOST:8786 --nworkers N --nthreads 1`` (every worker needs ``pip install -e .`` of the same
  checkout).

Dask is imported only here and only when a client is asked for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from mecopt.core import InvalidInputError


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A connected ``distributed.Client``; the local cluster (if one was started) is closed on exit."""
    if workers is not None and workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {workers}")
    try:
        from distributed import Client, LocalCluster
    except ModuleNotFoundError:
        raise InvalidInputError("Dask distributed is not installed: pip install 'dask[distributed]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as e:
            raise InvalidInputError(f"--scheduler {scheduler}: cannot connect ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or default_workers()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


__all__ = ["dask_client", "default_workers"]
