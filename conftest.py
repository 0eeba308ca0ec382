"""Root conftest: registers ``--benchmark``.

Without the flag, ``pytest`` runs only the fast tests in ``tests/``; with it, it runs the benchmark suites in
``bench/`` (pytest-benchmark timings, result tables under ``results/``).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mecopt")
    group.addoption(
        "--benchmark",
        action="store_true",
        default=False,
        help="run the mecopt benchmark suites in bench/ and write results/ tables",
    )
    group.addoption(
        "--bench-instances",
        type=int,
        default=None,
        help="instances per problem and size in the benchmark (default: 20; sweeps scale their counts by N/20)",
    )
    group.addoption("--bench-seed", type=int, default=None, help="root seed of the benchmark instance set (default: 0)")
    group.addoption(
        "--bench-time-limit",
        type=float,
        default=None,
        help="time limit in seconds of each exact solve in the benchmark (default: 60; sweeps scale their limits"
        " by T/60)",
    )
    group.addoption(
        "--bench-problems",
        default=None,
        help="comma-separated problem keys to benchmark (default: all registered); other problems' files are left as"
        " they are",
    )
    group.addoption(
        "--bench-quick",
        action="store_true",
        default=False,
        help="quick first look: every problem, 2 instances, 5 s limits, the smallest sweep points; writes under"
        " results/quick/ (or $MECOPT_RESULTS/quick), never over the committed tables",
    )
    group.addoption(
        "--bench-workers",
        type=int,
        default=None,
        help="processes that solve benchmark cells ahead of pytest (default: one per core, at most 2; 1 = every solve"
        " in the pytest process). Each solve is timed in its worker; results and skip decisions are those of a"
        " sequential run (bench/pool.py)",
    )
    group.addoption(
        "--retrain",
        action="store_true",
        default=False,
        help="retrain learned policies instead of loading committed checkpoints",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--benchmark"):
        # one pytest-benchmark entry per solve: keep the terminal table readable (full numbers go to results/)
        opt = config.option
        if getattr(opt, "benchmark_columns", "unset") is None:  # not given on the command line
            opt.benchmark_columns = ["median"]
        if getattr(opt, "benchmark_sort", None) == "min":
            opt.benchmark_sort = "name"


def pytest_ignore_collect(collection_path, config):  # type: ignore[no-untyped-def]
    # bench/ is collected only with --benchmark; with it, the fast tests/ are left out.
    try:
        top = collection_path.relative_to(config.rootpath).parts[:1]
    except ValueError:
        return None
    bench = config.getoption("--benchmark")
    if top == ("bench",) and not bench:
        return True
    if top == ("tests",) and bench:
        return True
    return None
