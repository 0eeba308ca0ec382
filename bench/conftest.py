"""Benchmark session plumbing: the options, the sweep cells, one progress bar per suite, the end report.

* ``collector`` (session): the rows of ``bench/test_tables.py``; its tables are written at the end (atomically).
* a test that takes ``cell`` is parametrized with every cell of its module's ``sweeps(cfg)`` (``bench/sweep.py``)
  whose problem is selected by ``--bench-problems``.
* before running: each suite's cells and worst-case budget; while running: one tqdm bar per suite (cells done /
  total, ETA) on the terminal; at the end: the files written and the cells that errored.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import pytest

from bench import pool
from bench import sweep as S
from bench.harness import Collector, case_job, write_problem_results, write_summary


def _cfg(config: pytest.Config) -> S.BenchConfig:
    cfg = getattr(config, "_mecopt_cfg", None)
    if cfg is None:
        try:
            cfg = S.config_from(config)
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        config._mecopt_cfg = cfg  # type: ignore[attr-defined]
        S.SESSION.quick = cfg.quick
    return cfg


def pytest_configure(config: pytest.Config) -> None:
    _cfg(config)


@pytest.fixture(scope="session")
def bench_cfg(request: pytest.FixtureRequest) -> S.BenchConfig:
    return _cfg(request.config)


@pytest.fixture(scope="session")
def collector(request: pytest.FixtureRequest) -> Collector:
    c = Collector(_cfg(request.config))
    request.config._mecopt_collector = c  # type: ignore[attr-defined]
    return c


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    cfg = _cfg(metafunc.config)
    build = getattr(metafunc.module, "sweeps", None)
    assert build is not None, f"{metafunc.module.__name__}: a test taking 'cell' needs sweeps(cfg)"
    cells = [c for sw in build(cfg) if sw.key in cfg.problems for c in sw.cells]
    metafunc.parametrize("cell", cells, ids=[c.id for c in cells])


# ---------------------------------------------------------------------------------------------------- budget
def _suite(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def _item_limit(item: pytest.Item, cfg: S.BenchConfig) -> float:
    params = getattr(getattr(item, "callspec", None), "params", {})
    cell = params.get("cell")
    if isinstance(cell, S.Cell):
        return cell.limit or 0.0
    case = params.get("case")
    if isinstance(case, tuple) and len(case) > 4 and case[4] == "exact":
        return cfg.time_limit
    return 0.0


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.getoption("--benchmark") or session.config.getoption("--collect-only"):
        return
    cfg = _cfg(session.config)
    totals: Counter[str] = Counter()
    limits: Counter[str] = Counter()
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "cell" in params and not isinstance(params["cell"], S.Cell):
            continue  # an empty parametrization (no selected problem in this suite)
        totals[_suite(item)] += 1
        limits[_suite(item)] += _item_limit(item, cfg)
    session.config._mecopt_totals = totals  # type: ignore[attr-defined]
    session.config._mecopt_bars = {}  # type: ignore[attr-defined]
    session.config._mecopt_done = Counter()  # type: ignore[attr-defined]
    session.config._mecopt_errors = []  # type: ignore[attr-defined]
    tw = session.config.get_terminal_writer()
    where = S.out_dir()
    tw.line(
        f"\nmecopt benchmark: problems {','.join(cfg.problems)}; {cfg.instances} instances, {cfg.time_limit:g} s limit,"
        f" root seed {cfg.seed}{', quick profile' if cfg.quick else ''}; writing under {where}"
    )
    for suite, n in totals.items():
        tw.line(f"  {suite}: {n} cells, worst case {limits[suite] / 60:.1f} min (sum of time limits)")
    _start_pool(session, cfg)


def _start_pool(session: pytest.Session, cfg: S.BenchConfig) -> None:
    """The solves of every selected sweep cell and main-table case, in run order, to the worker pool."""
    jobs: list[pool.Job] = []
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        cell, case = params.get("cell"), params.get("case")
        if isinstance(cell, S.Cell):
            sw = cell.sweep
            jobs.append(pool.Job((*sw.job_key, cell.index), cell.fn, lambda sw=sw, cell=cell: sw.ready(cell)))
        elif isinstance(case, tuple) and item.nodeid.startswith("bench/test_tables.py"):
            jobs.append(case_job(case, cfg))
    pool.start(jobs, cfg.workers)
    n = len(jobs)
    session.config.get_terminal_writer().line(
        f"  {n} solves (sweep cells, main-table cases) on {cfg.workers} worker processes, ahead of pytest"
        if cfg.workers > 1 and n
        else "  every solve in this process (--bench-workers 1)"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = getattr(report, "_mecopt_config", None) or _CONFIG.get("config")
    if config is None or not hasattr(config, "_mecopt_totals"):
        return
    if report.failed:
        config._mecopt_errors.append(f"{report.nodeid} ({report.when}): {_short(report)}")
    if report.when != "teardown":
        return
    suite = report.nodeid.split("::")[0]
    if suite not in config._mecopt_totals:
        return
    bars = config._mecopt_bars
    if suite not in bars:
        from tqdm import tqdm

        bars[suite] = tqdm(total=config._mecopt_totals[suite], desc=suite, unit="cell", file=sys.__stderr__, leave=True)
    bars[suite].update(1)
    config._mecopt_done[suite] += 1
    if config._mecopt_done[suite] >= config._mecopt_totals[suite]:
        bars[suite].close()


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    # the per-suite progress bar shows progress: no dot per passed or skipped cell (failures keep their letter)
    if config.getoption("verbose") > 0 or report.failed:
        return None
    if report.passed and report.when == "call":
        return "passed", "", "PASSED"
    if report.skipped:
        return "skipped", "", "SKIPPED"
    return None


def _short(report: pytest.TestReport) -> str:
    text = str(report.longrepr).strip().splitlines()
    return text[-1][:160] if text else "failed"


_CONFIG: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    pool.stop()
    c: Collector | None = getattr(session.config, "_mecopt_collector", None)
    for bar in getattr(session.config, "_mecopt_bars", {}).values():
        bar.close()
    if c is None or exitstatus == pytest.ExitCode.INTERRUPTED:
        return  # an interrupted run leaves the previous results intact
    written = False
    for (key, group), rows in c.rows.items():
        n_methods = len({r["method"] for r in rows})
        if len(rows) != n_methods * c.cfg.instances:
            continue  # a partial selection (-k ...) does not overwrite full tables
        write_problem_results(key, group, rows, c.cfg)
        written = True
    if written:
        write_summary()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not config.getoption("--benchmark") or not hasattr(config, "_mecopt_totals"):
        return
    tr = terminalreporter
    files = sorted({str(p) for p in S.SESSION.written})
    tr.write_sep("-", f"mecopt: {len(files)} files written")
    for f in files:
        tr.write_line(f"  {f}")
    errors = config._mecopt_errors
    tr.write_sep("-", f"mecopt: {len(errors)} cells errored")
    for e in errors:
        tr.write_line(f"  {e}")
