"""``mecopt sweep``: many seeded instances x methods, spread over Dask workers, resumable (front layer).

A *cell* is one (problem, size, variant, seed, method). The instance is generated **on the worker** from its seed
(nothing large travels); the exact solve of an instance is one cell that every method of that instance shares as
its reference (it is added when ``exact`` is not among the methods). Each finished cell is one JSON file under
``OUT/cells/`` written atomically by the client as soon as its result arrives, so a crash or Ctrl-C loses at most
the cells in flight and a rerun with the same ``--out`` skips every cell already done. A cell that fails (solver
error, worker lost) becomes a row with status ``error`` and the reason; the sweep goes on. At the end the tables
(mean / max gap to the certified optimum with a bootstrap CI, % within 1 %, % certified, median time) are written
with the shared table code of :mod:`mecopt.tables`.

Layout of ``OUT``: ``sweep.json`` (the plan and timing), ``cells/<problem>/<size>-<variant>/<seed>/<method>.json``,
``rows.json`` (every row), ``table.md``, ``gaps.png``.
"""

from __future__ import annotations

import math
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mecopt.core import InvalidInputError, SolveOptions, atomic_write_bytes, atomic_write_text, read_json, write_json
from mecopt.registry import get_problem
from mecopt.tables import fmt, method_stats, pct, pct_ci

REFERENCE = "exact"


@dataclass(frozen=True)
class Cell:
    problem: str
    size: str
    variant: str
    seed: int
    method: str

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.problem, self.size, self.variant)

    def relpath(self) -> str:
        return f"cells/{self.problem}/{self.size}-{self.variant}/{self.seed}/{self.method}.json"


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InvalidInputError(f"{what}: empty list")
    return items


def parse_seeds(text: str) -> list[int]:
    """``"0-999"``, ``"1,5,9"`` or a mix (``"0-9,100"``); duplicates removed, order kept."""
    out: list[int] = []
    for part in parse_list(text, "--seeds"):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise InvalidInputError(f"--seeds: {part!r} is not a seed or a range A-B of non-negative integers")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise InvalidInputError(f"--seeds: range {part!r} is empty")
        if hi - lo > 10_000_000:
            raise InvalidInputError(f"--seeds: range {part!r} is too large")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out))


def plan(
    problems: Sequence[str],
    sizes: Sequence[str],
    variants: Sequence[str],
    seeds: Sequence[int],
    methods: Sequence[str],
    *,
    method_lister: Callable[[str], Iterable[str]] | None = None,
) -> list[Cell]:
    """Every cell of the sweep, the exact reference first for each instance; unknown names are rejected up front.

    A method runs on every listed problem that has it (heuristics differ between papers)."""
    if method_lister is None:
        from mecopt.methods import all_methods

        def method_lister(key: str) -> Iterable[str]:
            return all_methods(key)

    cells: list[Cell] = []
    known_by_problem: dict[str, list[str]] = {}
    for key in problems:
        spec = get_problem(key)
        for s in sizes:
            if s not in spec.presets:
                raise InvalidInputError(f"--sizes: {key} has no size {s!r}; choose from {sorted(spec.presets)}")
        for v in variants:
            if v not in spec.variants:
                raise InvalidInputError(f"--variants: {key} has no variant {v!r}; choose from {sorted(spec.variants)}")
        known_by_problem[key] = list(method_lister(key))
    for m in methods:  # a method runs on the problems that have it; a name no problem has is a typo
        if not any(m in known for known in known_by_problem.values()):
            raise InvalidInputError(f"--methods: no problem of {list(problems)} has a method {m!r}")
    for key in problems:
        ms = [REFERENCE, *[m for m in methods if m != REFERENCE and m in known_by_problem[key]]]
        for s in sizes:
            for v in variants:
                for seed in seeds:
                    cells.extend(Cell(key, s, v, seed, m) for m in ms)
    return cells


def run_cell(cell: Cell, time_limit: float) -> dict[str, Any]:
    """Generate the instance from its seed and solve it (runs on a worker); never raises."""
    from mecopt.methods import get_method, solve

    t0 = time.perf_counter()
    try:
        spec = get_problem(cell.problem)
        inst = spec.make_instance(cell.size, cell.seed, cell.variant)
        method = get_method(cell.problem, cell.method)
        res = solve(cell.problem, inst, method, SolveOptions(time_limit=time_limit, seed=cell.seed), seed=cell.seed)
        row = res.to_dict()
        row["kind"] = method.kind
    except Exception as e:  # a row, not a crash: the sweep goes on
        row = error_row(cell, f"{type(e).__name__}: {e}", time.perf_counter() - t0)
        row["info"] = {"traceback": traceback.format_exc(limit=3)}
    row.update(size=cell.size, variant=cell.variant)
    return row


def error_row(cell: Cell, reason: str, wall: float = 0.0) -> dict[str, Any]:
    sense = get_problem(cell.problem).sense
    return {
        "problem": cell.problem,
        "method": cell.method,
        "sense": sense,
        "objective": None,
        "status": "error",
        "bound": None,
        "gap": None,
        "wall_time_s": wall,
        "seed": cell.seed,
        "feasible": None,
        "decision": None,
        "metrics": {},
        "info": {},
        "message": reason,
        "kind": "exact" if cell.method == REFERENCE else "",
        "size": cell.size,
        "variant": cell.variant,
    }


class Store:
    """The output folder: one JSON file per finished cell, plus the plan."""

    def __init__(self, out: str | Path):
        self.out = Path(out)

    def path(self, cell: Cell) -> Path:
        return self.out / cell.relpath()

    def done(self, cell: Cell) -> bool:
        return self.path(cell).is_file()

    def write(self, cell: Cell, row: dict[str, Any]) -> None:
        write_json(self.path(cell), row)

    def rows(self, cells: Iterable[Cell]) -> list[dict[str, Any]]:
        return [read_json(self.path(c), "cell result") for c in cells if self.done(c)]

    def check_plan(self, config: dict[str, Any]) -> None:
        """Refuse to mix cells solved under other settings into one table (the time limit changes results)."""
        p = self.out / "sweep.json"
        if p.is_file():
            old = read_json(p, "sweep plan")
            if isinstance(old, dict) and old.get("time_limit_s") != config["time_limit_s"]:
                raise InvalidInputError(
                    f"--out {self.out} holds a sweep run with time limit {old.get('time_limit_s')} s, not "
                    f"{config['time_limit_s']} s; use another --out"
                )


@dataclass
class SweepReport:
    total: int
    skipped: int
    ran: int
    errors: int
    wall_s: float
    """From the first submission to the last result (cluster start-up excluded: ``startup_s``)."""
    cell_s: float
    workers: int
    startup_s: float = 0.0
    interrupted: bool = False

    @property
    def overhead_per_cell_s(self) -> float | None:
        """Wall time x workers not spent inside cells, per cell run (scheduling, transfer, instance generation)."""
        if self.ran == 0:
            return None
        return max(0.0, self.wall_s * self.workers - self.cell_s) / self.ran


def run_sweep(
    cells: Sequence[Cell],
    out: str | Path,
    *,
    time_limit: float,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    client: Any = None,
) -> SweepReport:
    """Run every cell not done yet (Dask client: ``client``, or one from :func:`mecopt.cluster.dask_client`)."""
    from tqdm import tqdm

    from mecopt.cluster import dask_client

    if not (isinstance(time_limit, (int, float)) and math.isfinite(time_limit) and time_limit > 0):
        raise InvalidInputError(f"--time-limit must be a finite number > 0, got {time_limit!r}")
    store = Store(out)
    config = {"time_limit_s": float(time_limit), "cells": len(cells)}
    store.check_plan(config)
    todo = [c for c in cells if not store.done(c)]
    if not (store.out / "sweep.json").is_file():
        write_json(store.out / "sweep.json", config)
    t_start = time.perf_counter()
    t0 = t_start
    errors = 0
    cell_s = 0.0
    ran = 0
    interrupted = False
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="sweep", unit="cell", disable=not progress)

    def record(cell: Cell, row: dict[str, Any]) -> None:
        nonlocal errors, cell_s, ran
        store.write(cell, row)
        errors += row["status"] == "error"
        cell_s += float(row.get("wall_time_s") or 0.0)
        ran += 1
        bar.update(1)

    ctx = _nullcontext(client) if client is not None else dask_client(workers, scheduler)
    n_workers = 1
    try:
        with ctx as cl:
            from distributed import as_completed

            n_workers = max(1, len(cl.scheduler_info().get("workers", {})))
            t0 = time.perf_counter()
            futures = {cl.submit(run_cell, c, float(time_limit), pure=False): c for c in todo}
            for fut in as_completed(futures):
                cell = futures.pop(fut)
                try:
                    row = fut.result()
                except Exception as e:  # worker lost, cancelled, ...
                    row = error_row(cell, f"worker failure: {type(e).__name__}: {e}")
                record(cell, row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    report = SweepReport(
        len(cells),
        len(cells) - len(todo),
        ran,
        errors,
        time.perf_counter() - t0,
        cell_s,
        n_workers,
        t0 - t_start,
        interrupted,
    )
    write_json(
        store.out / "sweep.json",
        {
            **config,
            "workers": n_workers,
            "scheduler": scheduler,
            "last_run": {**asdict(report), "overhead_per_cell_s": report.overhead_per_cell_s},
        },
    )
    return report


class _nullcontext:
    def __init__(self, v: Any):
        self.v = v

    def __enter__(self) -> Any:
        return self.v

    def __exit__(self, *exc: object) -> None:
        return None


def write_tables(out: str | Path, cells: Sequence[Cell]) -> Path:
    """``rows.json``, ``table.md`` and ``gaps.png`` from every finished cell of the plan."""
    store = Store(out)
    rows = store.rows(cells)
    write_json(store.out / "rows.json", {"rows": rows})
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["problem"], r["size"], r["variant"]), []).append(r)
    parts = [
        "# mecopt sweep\n\n",
        "Gap = `relative_gap(objective, reference)` with the certified optimum (or, where only a bound was proven, "
        "the bound: then the gap is an upper bound) as reference; CI = 95 % percentile bootstrap of the mean over "
        "instances; `<= 1 %` = share of instances within 1 % of the reference.\n",
    ]
    plot: list[tuple[str, str, float, tuple[float, float] | None]] = []
    for (key, size, variant), rs in sorted(groups.items()):
        spec = get_problem(key)
        meta = method_stats(rs, spec.sense)
        parts.append(
            f"\n## {key} / {size} / {variant}: {meta['instances']} instances, {meta['reference_certified']} "
            f"certified, {meta['reference_bound_only']} bound only\n\n"
        )
        head = "| method | kind | n | mean gap % | 95 % CI | max gap % | <= 1 % | % certified | % feasible | "
        head += "median s | errors |\n"
        parts.append(head + "|" + "---|" * 11 + "\n")
        for name, s in meta["methods"].items():
            parts.append(
                f"| {name} | {s['kind']} | {s['n']} | {pct(s['mean_gap'])} | {pct_ci(s['gap_ci'])} | "
                f"{pct(s['max_gap'])} | {pct(s['near_optimal'], 0)} | {pct(s['certified'], 0)} | "
                f"{pct(s['feasible'], 0)} | {fmt(s['median_time_s'], '.3g')} | {s['errors']} |\n"
            )
            if s["mean_gap"] is not None and name != REFERENCE:
                plot.append((f"{key}/{size}/{variant}", name, s["mean_gap"], s["gap_ci"]))
    errs = [r for r in rows if r["status"] == "error"]
    if errs:
        parts.append(f"\n## Cells that failed ({len(errs)})\n\n")
        for r in errs[:50]:
            parts.append(
                f"- {r['problem']}/{r['size']}/{r['variant']} seed {r['seed']} {r['method']}: {r['message']}\n"
            )
    table = store.out / "table.md"
    atomic_write_text(table, "".join(parts))
    if plot:
        _plot(store.out / "gaps.png", plot)
    return table


def _plot(path: Path, points: list[tuple[str, str, float, tuple[float, float] | None]]) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{g}\n{m}" for g, m, _, _ in points]
    means = [100 * v for _, _, v, _ in points]
    lo = [100 * (v - ci[0]) if ci else 0.0 for _, _, v, ci in points]
    hi = [100 * (ci[1] - v) if ci else 0.0 for _, _, v, ci in points]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(points)), 4))
    ax.bar(range(len(points)), means, yerr=[lo, hi], capsize=3, color="tab:blue")
    ax.set_xticks(range(len(points)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mean gap to optimum [%] (95 % CI)")
    ax.set_title("mecopt sweep")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main_sweep(
    *,
    problems: str,
    sizes: str,
    variants: str,
    seeds: str,
    methods: str,
    time_limit: float,
    out: str,
    workers: int | None,
    scheduler: str | None,
    progress: bool = True,
) -> int:
    """The CLI action: plan, run, tables; prints a one-paragraph summary on stderr. Returns the exit code."""
    cells = plan(
        parse_list(problems, "--problems"),
        parse_list(sizes, "--sizes"),
        parse_list(variants, "--variants"),
        parse_seeds(seeds),
        parse_list(methods, "--methods"),
    )
    rep = run_sweep(cells, out, time_limit=time_limit, workers=workers, scheduler=scheduler, progress=progress)
    table = write_tables(out, cells)
    print(
        f"mecopt sweep: {rep.ran} cells run, {rep.skipped} already done, {rep.errors} errors, "
        f"{rep.wall_s:.1f} s on {rep.workers} workers; table: {table}",
        file=sys.stderr,
    )
    if rep.interrupted:
        print("mecopt sweep: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


__all__ = ["Cell", "Store", "SweepReport", "main_sweep", "parse_seeds", "plan", "run_cell", "run_sweep", "write_tables"]
