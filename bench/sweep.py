"""One helper for every benchmark sweep (scaling, frontier, horizon, parameter sweeps).

A suite module defines ``sweeps(cfg) -> list[Sweep]`` and one test ``test_cell(cell, benchmark)`` that calls
``cell.run(benchmark)``; ``bench/conftest.py`` parametrizes it with every cell of every sweep whose problem is
selected. A :class:`Sweep` declares its cells (one solve each: a method on one instance at one point of the axes),
so every solve is one pytest-benchmark entry. Each cell's :class:`~mecopt.core.SolveResult` becomes one row
(``SolveResult.to_dict()`` without the decision, plus the axes: uniform keys ``wall_time_s, objective, bound, gap,
status, seed`` + axes). When the last cell of a sweep has run (or was skipped by a frontier rule) the sweep's writer
builds its table and plot, written atomically under :func:`out_dir` (``results_dir()``, so ``MECOPT_RESULTS``
redirects every file; ``<results>/quick`` under ``--bench-quick``). A sweep with a cell that errored or was
deselected is not written, so a partial run never overwrites a committed table.

How the options scale a sweep (every suite documents its defaults):

* ``--bench-instances N``: a point's instance count is ``max(1, round(default * N / 20))`` (20 is the default);
* ``--bench-time-limit T``: a cell's limit is ``default * T / 60`` (60 s is the default);
* ``--bench-seed S``: the root seed of every sweep's instance seeds (default 0, the committed tables);
* ``--bench-quick``: 2 instances and a 5 s limit (so counts / 10 and limits / 12), the first two points of each
  swept axis (:meth:`Sweep.points`);
* ``--bench-workers N``: the cells are solved ahead of pytest on ``N`` forked processes (``bench/pool.py``), a cell
  only once every cell whose outcome could skip it is recorded (:meth:`Sweep.ready`), so the rows, skips and
  frontiers are those of a sequential run;
* frontier rules: along ``size_axis`` a sweep stops after the first size at which every instance of a
  ``frontier_methods`` method hit the limit (recorded as the frontier), and a ``yardstick`` method (Pyomo+SCIP, a
  generic MILP) stops at its first failure: once it failed to certify one instance at a size, its remaining cells
  at that size and every larger size are skipped (listed as skipped in the table's notes).
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.pool import default_workers
from mecopt.core import (
    Sense,
    SolveResult,
    atomic_write_bytes,
    atomic_write_text,
    relative_gap,
    results_dir,
    spawn_seeds,
)
from mecopt.core import write_json as _write_json
from mecopt.registry import problem_keys

DEFAULT_INSTANCES = 20
DEFAULT_SEED = 0
DEFAULT_TIME_LIMIT = 60.0
QUICK_INSTANCES = 2
QUICK_TIME_LIMIT = 5.0
QUICK_POINTS = 2


@dataclass(frozen=True)
class BenchConfig:
    """The benchmark options of one session (``--bench-*``)."""

    instances: int = DEFAULT_INSTANCES
    seed: int = DEFAULT_SEED
    time_limit: float = DEFAULT_TIME_LIMIT
    problems: tuple[str, ...] = ()
    quick: bool = False
    workers: int = 1

    def scale_count(self, default: int) -> int:
        """Instances per sweep point: the default scaled by ``instances / 20`` (at least 1)."""
        return max(1, round(default * self.instances / DEFAULT_INSTANCES))

    def scale_limit(self, default: float) -> float:
        """A sweep's time limit: the default scaled by ``time_limit / 60``."""
        return default * self.time_limit / DEFAULT_TIME_LIMIT


def config_from(pytest_config: Any) -> BenchConfig:
    def opt(name: str) -> Any:
        return pytest_config.getoption(name)

    quick = bool(opt("--bench-quick"))
    probs = opt("--bench-problems") or ""
    keys = tuple(k.strip() for k in probs.split(",") if k.strip())
    unknown = [k for k in keys if k not in problem_keys()]
    if unknown:
        raise ValueError(
            f"--bench-problems: unknown problem(s) {', '.join(unknown)} (known: {', '.join(problem_keys())})"
        )
    instances = opt("--bench-instances")
    limit = opt("--bench-time-limit")
    seed = opt("--bench-seed")
    workers = opt("--bench-workers")
    if workers is not None and workers < 1:
        raise ValueError(f"--bench-workers: must be >= 1, got {workers}")
    return BenchConfig(
        instances=instances if instances is not None else (QUICK_INSTANCES if quick else DEFAULT_INSTANCES),
        seed=DEFAULT_SEED if seed is None else seed,
        time_limit=limit if limit is not None else (QUICK_TIME_LIMIT if quick else DEFAULT_TIME_LIMIT),
        problems=keys or tuple(problem_keys()),
        quick=quick,
        workers=workers if workers is not None else default_workers(),
    )


@dataclass
class SessionLog:
    """What this session wrote and which cells errored (printed at the end)."""

    written: list[Path] = field(default_factory=list)
    quick: bool = False


SESSION = SessionLog()


def out_dir(key: str | None = None) -> Path:
    """Root of every benchmark file: ``results_dir()`` (``$MECOPT_RESULTS``), ``/quick`` under ``--bench-quick``."""
    root = results_dir() / "quick" if SESSION.quick else results_dir()
    return root if key is None else root / key


def write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    SESSION.written.append(path)


def write_json(path: Path, payload: Any) -> None:
    _write_json(path, payload)
    SESSION.written.append(path)


def save_png(fig: Any, path: Path) -> None:
    """The one PNG saver: 120 dpi, tight, written atomically; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    SESSION.written.append(path)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def md_table(rows: Sequence[Any], headers: Any, floatfmt: str = ".4g") -> str:
    return tabulate(rows, headers=headers, tablefmt="github", floatfmt=floatfmt)


def mean(xs: Iterable[float | None]) -> float:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.fmean(v) if v else float("nan")


def fmt_status(statuses: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


@dataclass
class Cell:
    """One solve of a sweep: ``fn()`` returns its SolveResult; ``axes`` are the sweep coordinates."""

    sweep: Sweep
    index: int
    method: str
    seed: int
    axes: dict[str, Any]
    fn: Callable[[], SolveResult]
    limit: float | None

    @property
    def id(self) -> str:
        ax = "-".join(f"{k}{v}" for k, v in self.axes.items())
        return f"{self.sweep.key}-{self.sweep.name}-{ax}-{self.method}-{self.seed % 100000}"

    def run(self, benchmark: Any) -> SolveResult | None:
        return self.sweep.run(self, benchmark)


class Sweep:
    """Cells of one sweep, their rows, its frontier rules and its writer (see the module docstring)."""

    def __init__(
        self,
        cfg: BenchConfig,
        key: str,
        name: str,
        *,
        sense: Sense = "min",
        size_axis: str | None = None,
        frontier_methods: Sequence[str] = (),
        yardstick: Sequence[str] = (),
        writer: Callable[[Sweep], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.key = key
        self.name = name
        self.sense = sense
        self.size_axis = size_axis
        self.frontier_methods = tuple(frontier_methods)
        self.yardstick = tuple(yardstick)
        self.writer = writer
        self.cells: list[Cell] = []
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.frontier: dict[tuple[Any, ...], Any] = {}  # other axes -> size where every instance hit the limit
        self.yardstick_failed: dict[tuple[Any, ...], Any] = {}  # (method, other axes) -> first failing size
        self._done: set[int] = set()
        self.written = False
        # cells not yet recorded, by (other axes, size) and by (yardstick method, other axes, size) (see ready)
        self._left: dict[tuple[Any, ...], int] | None = None
        self._left_ys: dict[tuple[Any, ...], set[int]] = {}
        self._not_ready: dict[int, int] = {}  # cell index -> len(_done) when it was last found not ready

    # ---------------------------------------------------------------------------------------------- declaring
    def count(self, default: int) -> int:
        """Instances per point (scaled by ``--bench-instances``, see the module docstring)."""
        return self.cfg.scale_count(default)

    def limit(self, default: float) -> float:
        """A time limit (scaled by ``--bench-time-limit``)."""
        return self.cfg.scale_limit(default)

    def points(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """The swept values: all of them, or the first two under ``--bench-quick``."""
        return tuple(values[:QUICK_POINTS]) if self.cfg.quick else tuple(values)

    def seeds(self, default: int, *labels: Any) -> list[int]:
        """``count(default)`` instance seeds spawned from the root seed (the first ones match a larger count)."""
        return spawn_seeds(self.cfg.seed, self.count(default), *labels)

    def add(
        self, fn: Callable[[], SolveResult], *, method: str, seed: int, limit: float | None = None, **axes: Any
    ) -> None:
        self.cells.append(Cell(self, len(self.cells), method, seed, axes, fn, limit))

    @property
    def path(self) -> Path:
        return out_dir(self.key) / self.name

    def budget_s(self) -> float:
        """Worst case: the sum of the cells' time limits."""
        return sum(c.limit or 0.0 for c in self.cells)

    # ---------------------------------------------------------------------------------------------- running
    def _other(self, cell: Cell) -> tuple[Any, ...]:
        return tuple((k, v) for k, v in cell.axes.items() if k != self.size_axis)

    def skip_reason(self, cell: Cell) -> str | None:
        if self.size_axis is None:
            return None
        size = cell.axes[self.size_axis]
        other = self._other(cell)
        stop = self.frontier.get(other)
        if stop is not None and size > stop:
            return f"beyond the frontier: every instance hit the limit at {self.size_axis} = {stop}"
        failed = self.yardstick_failed.get((cell.method, other))
        if failed is not None and size >= failed:
            return f"{cell.method} already failed to certify an instance at {self.size_axis} = {failed}"
        return None

    def ready(self, cell: Cell) -> bool:
        """Whether ``cell`` may be solved ahead of pytest (``bench/pool.py``): every cell whose outcome could skip it
        is recorded (all cells of smaller size on its other axes; for a yardstick method also its earlier cells at
        its own size), and none does."""
        if self.size_axis is None:
            return True
        if self._not_ready.get(cell.index) == len(self._done):
            return False  # nothing recorded since it was found not ready
        if self._left is None:
            self._left, self._left_ys = {}, {}
            for c in self.cells:
                if c.index in self._done:
                    continue
                o, sz = self._other(c), c.axes[self.size_axis]
                self._left[(o, sz)] = self._left.get((o, sz), 0) + 1
                if c.method in self.yardstick:
                    self._left_ys.setdefault((c.method, o, sz), set()).add(c.index)
        other, size = self._other(cell), cell.axes[self.size_axis]
        waits = any(n > 0 and o == other and sz < size for (o, sz), n in self._left.items()) or (
            cell.method in self.yardstick
            and any(j < cell.index for j in self._left_ys.get((cell.method, other, size), ()))
        )
        if waits or self.skip_reason(cell) is not None:
            self._not_ready[cell.index] = len(self._done)
            return False
        return True

    @property
    def job_key(self) -> tuple[str, int]:
        return ("sweep", id(self))

    def run(self, cell: Cell, benchmark: Any) -> SolveResult | None:
        import pytest

        from bench import pool

        key = (*self.job_key, cell.index)
        reason = self.skip_reason(cell)
        if reason is not None:
            if pool.POOL is not None:
                pool.POOL.skip(key)
            self.skipped.append({**cell.axes, "method": cell.method, "seed": cell.seed, "reason": reason})
            self._mark_done(cell)
            pytest.skip(reason)
        res: SolveResult = benchmark.pedantic(lambda: pool.run(key, cell.fn), rounds=1, iterations=1)
        row = self.record(res, **cell.axes)
        if cell.method in self.yardstick and self.size_axis is not None and row["status"] != "optimal":
            # the yardstick stops at its first failure: its later cells at this size and above are skipped
            self.yardstick_failed.setdefault((cell.method, self._other(cell)), cell.axes[self.size_axis])
        benchmark.extra_info.update(
            {k: row[k] for k in ("objective", "bound", "gap", "status", "seed")}
            | dict(cell.axes)
            | {"method": res.method, "wall_time_s": res.wall_time_s}
        )
        self._mark_done(cell)
        return res

    def record(self, result: SolveResult, **axes: Any) -> dict[str, Any]:
        """One row: ``result.to_dict()`` without the decision, plus the axes."""
        row = result.to_dict()
        row.pop("decision", None)
        row.update(axes)
        self.rows.append(row)
        return row

    def _mark_done(self, cell: Cell) -> None:
        self._done.add(cell.index)
        if self._left is not None and self.size_axis is not None:
            o, sz = self._other(cell), cell.axes[self.size_axis]
            self._left[(o, sz)] -= 1
            self._left_ys.get((cell.method, o, sz), set()).discard(cell.index)
        self._update_rules(cell)
        if len(self._done) == len(self.cells) and not self.written:
            self.written = True
            if self.writer is not None and self.rows:
                self.writer(self)

    def _update_rules(self, cell: Cell) -> None:
        if self.size_axis is None:
            return
        size = cell.axes[self.size_axis]
        other = self._other(cell)
        peers = [c for c in self.cells if self._other(c) == other and c.axes[self.size_axis] == size]
        if any(c.index not in self._done for c in peers):
            return
        rows = [r for r in self.rows if r[self.size_axis] == size and self._row_other(r) == other]
        for m in self.frontier_methods:
            rs = [r for r in rows if r["method"] == m]
            if rs and all(r["status"] == "time_limit" for r in rs):
                self.frontier.setdefault(other, size)

    def _row_other(self, row: dict[str, Any]) -> tuple[Any, ...]:
        keys = [k for k, _ in self.cells[0].axes.items() if k != self.size_axis]
        return tuple((k, row.get(k)) for k in keys)

    # ---------------------------------------------------------------------------------------------- reading
    def select(self, method: str | None = None, **axes: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.rows
            if (method is None or r["method"] == method) and all(r.get(k) == v for k, v in axes.items())
        ]

    def reference(
        self, row: dict[str, Any], method: str = "exact", by: Sequence[str] = ()
    ) -> tuple[float | None, bool]:
        """(reference value, certified) for a row: the certified optimum of ``method`` on the same instance (same
        seed and ``by`` axes), else its best proven bound (then gaps against it are upper bounds)."""
        for r in self.rows:
            if r["method"] == method and r["seed"] == row["seed"] and all(r.get(k) == row.get(k) for k in by):
                if r["status"] == "optimal":
                    return r["objective"], True
                return r["bound"], False
        return None, False

    def gap(self, value: float | None, reference: float | None) -> float | None:
        """The suite's one gap (:func:`mecopt.core.relative_gap`, denominator = |reference|)."""
        return relative_gap(value, reference, self.sense)

    # ---------------------------------------------------------------------------------------------- writing
    def write(
        self, title: str, notes: str, table: str, *, extra: dict[str, Any] | None = None, suffix: str = ""
    ) -> None:
        """``<name><suffix>.md`` (title, notes, table, frontier and skipped cells) and ``.json`` (every row)."""
        parts = [f"# {title}\n\n{notes.strip()}\n"]
        if self.cfg.quick:
            parts.append("\n**Quick profile** (`--bench-quick`): few instances, short limits; not the committed run.\n")
        parts.append(f"\n{table.rstrip()}\n")
        if self.frontier:
            fr = "; ".join(f"{dict(o) or ''} {self.size_axis} = {s}".strip() for o, s in self.frontier.items())
            parts.append(f"\nFrontier (every instance hit the limit; larger {self.size_axis} not run): {fr}.\n")
        if self.skipped:
            counts: dict[str, int] = {}
            for s in self.skipped:
                counts[s["reason"]] = counts.get(s["reason"], 0) + 1
            reasons = "; ".join(f"{n} cells: {k}" for k, n in counts.items())
            parts.append(f"\nSkipped cells ({len(self.skipped)}): {reasons}.\n")
        write_text(self.path.with_name(f"{self.name}{suffix}.md"), "".join(parts))
        payload = {
            "problem": self.key,
            "sweep": self.name,
            "root_seed": self.cfg.seed,
            "quick": self.cfg.quick,
            "frontier": [{**dict(o), self.size_axis: s} for o, s in self.frontier.items()],
            "skipped": self.skipped,
            "rows": self.rows,
            **(extra or {}),
        }
        write_json(self.path.with_name(f"{self.name}{suffix}.json"), payload)

    def save_png(self, fig: Any, suffix: str = "") -> None:
        save_png(fig, self.path.with_name(f"{self.name}{suffix}.png"))
