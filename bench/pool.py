"""Solve benchmark cells ahead of pytest on worker processes (``--bench-workers N``, default: up to 2 cores).

pytest runs one test at a time; on a 2-core machine half of the machine sat idle through the whole benchmark. The
solves of the sweep cells (``bench/sweep.py``) and of the main tables (``bench/test_tables.py``) are pure functions
of their seeded instance, so they are handed to a pool of ``N`` forked processes *in pytest's run order*, and each
test only collects its result. Everything else stays in the pytest process, in the same order as without workers:
recording rows, the frontier and yardstick rules, the writers, the learner suites.

**Same cells, same results as a sequential run.** A sweep cell is handed to a worker only when every cell whose
outcome could skip it has been recorded (:meth:`bench.sweep.Sweep.ready`): all cells of smaller size on its other
axes (frontier rule) and, for a yardstick method, its earlier cells at its own size (a yardstick stops at its first
failure). So a cell that a sequential run would skip is never solved, and the skip decisions are the same.

**Timing.** Every solve is timed inside its worker (``SolveResult.wall_time_s``, the number every table uses); with
``N`` at most the number of cores each worker has a core to itself. The pytest-benchmark time of an entry is then
the wait for its result, so ``wall_time_s`` is also stored in every entry's ``extra_info``.

The pool is forked at the end of collection, before any test runs (no solver thread pool or torch state exists yet
in the parent, so the fork is safe), and the workers look their jobs up by index in the forked job list: nothing but
an index and a :class:`~mecopt.core.SolveResult` crosses the process boundary. A solve that raises fails its own
test with the worker's traceback; a worker that dies (killed, out of memory, a crash inside a solver library) fails
the cell being waited for with :class:`WorkerError`, the pool is restarted and the other lost cells are solved
again, so the run never hangs. ``--bench-workers 1`` runs every solve in the pytest process, as before.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

#: workers by default: one per core, at most this many (the committed tables were measured on 2 cores)
DEFAULT_MAX_WORKERS = 2
#: how far ahead of pytest (in jobs) the scheduler looks for a ready job
LOOKAHEAD = 400
#: while pytest waits for one result, how often the other workers are given new jobs
POLL_S = 0.05


def default_workers() -> int:
    return max(1, min(DEFAULT_MAX_WORKERS, os.cpu_count() or 1))


@dataclass
class Job:
    key: Hashable
    fn: Callable[[], Any]
    ready: Callable[[], bool]


class WorkerError(RuntimeError):
    """A solve raised in a worker; the message carries the worker's traceback."""


_JOBS: list[Job] = []  # the forked workers read it by index


def _work(i: int) -> tuple[bool, Any]:
    try:
        return True, _JOBS[i].fn()
    except BaseException:  # noqa: BLE001 - reported in the pytest process, where the test fails with it
        return False, traceback.format_exc()


class Prefetcher:
    """The jobs of one session in pytest's run order and the pool that solves them ahead."""

    def __init__(self, jobs: list[Job], workers: int) -> None:
        _JOBS[:] = jobs
        self.jobs = _JOBS
        self.index = {j.key: i for i, j in enumerate(jobs)}
        self.workers = workers
        self.pending: dict[int, Future[Any]] = {}  # job index -> its result
        self.taken: set[int] = set()  # submitted (or collected) jobs
        self.cursor = 0  # jobs before it are all taken
        self.scan = 0  # where the last scan for ready jobs stopped
        self.generation = 0  # pools started so far - 1
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        pool.submit(int).result()  # with fork every worker is started at the first submit: now, before any test
        return pool

    def _restart(self) -> None:
        """A worker died (killed, out of memory, a crash in a solver library): the pool is broken and every job in
        it is lost. Start a new pool; the lost jobs that pytest has not collected are handed out again."""
        self._kill(self.pool)
        for i in [i for i, f in self.pending.items() if not (f.done() and f.exception() is None)]:
            del self.pending[i]
            self.taken.discard(i)
        self.pool = self._new_pool()
        self.generation += 1

    @staticmethod
    def _kill(pool: ProcessPoolExecutor) -> None:
        processes = list(getattr(pool, "_processes", {}).values())  # running solves are not waited for
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.terminate()

    def __contains__(self, key: Hashable) -> bool:
        return key in self.index

    def _fill(self, resume: bool = False) -> None:
        """Keep ``2 * workers`` jobs running or queued: the first ready ones not yet taken, in run order (finished
        results wait for pytest to collect them). ``resume``: nothing was recorded since the last call (pytest is
        waiting), so readiness is unchanged and the scan goes on where it stopped."""
        running = sum(1 for f in self.pending.values() if not f.done())
        if running >= 2 * self.workers:
            return
        while self.cursor < len(self.jobs) and self.cursor in self.taken:
            self.cursor += 1
        i = self.scan if resume else self.cursor
        end = min(len(self.jobs), self.cursor + LOOKAHEAD)
        while running < 2 * self.workers and i < end:
            if i not in self.taken and self.jobs[i].ready():
                self._submit(i)
                running += 1
            i += 1
        self.scan = i

    def _submit(self, i: int) -> None:
        try:
            fut = self.pool.submit(_work, i)
        except BrokenProcessPool:
            self._restart()
            fut = self.pool.submit(_work, i)
        fut.pool_generation = self.generation  # type: ignore[attr-defined]
        self.pending[i] = fut
        self.taken.add(i)

    def result(self, key: Hashable) -> Any:
        """The result of one job (solved ahead, or now); raises :class:`WorkerError` if its solve raised."""
        i = self.index[key]
        for j in range(self.cursor, i):  # pytest is past them (skipped, failed in setup): never wait for them
            if j not in self.taken or j in self.pending:
                self.skip(self.jobs[j].key)
        self._fill()
        if i not in self.pending:
            self._submit(i)  # pytest reached it: everything it depends on is recorded
        fut = self.pending[i]
        while not fut.done():  # while pytest waits, keep the other workers busy with the next ready jobs
            wait([fut], timeout=POLL_S)
            self._fill(resume=True)
        self.pending.pop(i, None)
        self.taken.add(i)
        try:
            ok, value = fut.result()
        except BrokenProcessPool:  # this job's worker, or another one, died: the pool lost every job in it
            if fut.pool_generation == self.generation:  # type: ignore[attr-defined]
                self._restart()  # (else it was restarted while pytest waited)
            raise WorkerError(
                "a worker process died while this cell was in the pool (the pool was restarted; the other lost"
                " cells are solved again)"
            ) from None
        self._fill()
        if not ok:
            raise WorkerError(value)
        return value

    def skip(self, key: Hashable) -> None:
        """pytest skipped or deselected this job: never solve it (a result already in flight is dropped)."""
        i = self.index.get(key)
        if i is not None:
            self.taken.add(i)
            self.pending.pop(i, None)

    def close(self) -> None:
        self._kill(self.pool)


POOL: Prefetcher | None = None


def start(jobs: list[Job], workers: int) -> None:
    global POOL
    stop()
    if workers > 1 and jobs:
        POOL = Prefetcher(jobs, workers)


def stop() -> None:
    global POOL
    if POOL is not None:
        POOL.close()
        POOL = None


def run(key: Hashable, fn: Callable[[], Any]) -> Any:
    """``fn()``'s value: collected from the pool when the job was registered, else computed here."""
    if POOL is not None and key in POOL:
        return POOL.result(key)
    return fn()
