"""Benchmark session plumbing: one Collector per session; tables written at the end (atomically)."""

from __future__ import annotations

import pytest

from bench.harness import Collector, config_from, write_problem_results, write_summary


@pytest.fixture(scope="session")
def collector(request: pytest.FixtureRequest) -> Collector:
    c = Collector(config_from(request.config))
    request.config._mecopt_collector = c  # type: ignore[attr-defined]
    return c


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    c: Collector | None = getattr(session.config, "_mecopt_collector", None)
    if c is None or exitstatus == pytest.ExitCode.INTERRUPTED:
        return  # an interrupted run leaves the previous results intact
    for (key, group), rows in c.rows.items():
        n_methods = len({r["method"] for r in rows})
        if len(rows) != n_methods * c.cfg.instances:
            continue  # a partial selection (-k ...) does not overwrite full tables
        write_problem_results(key, group, rows, c.cfg)
    if c.rows:
        write_summary()
        print(f"\nmecopt: tables written to results/ for {sorted({k for k, _ in c.rows})}")
