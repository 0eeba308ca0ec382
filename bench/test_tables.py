"""The default benchmark: every problem x bench size x method on the fixed seeded instance set.

Each (problem, size, method, instance) is one pytest-benchmark entry (pedantic, one round) whose ``extra_info``
holds objective, bound, gap, status and seed. Tables are written at session end (bench/conftest.py).
"""

from __future__ import annotations

import pytest

from bench import pool
from bench.harness import Case, Collector, case_job, config_from, group_name
from mecopt.methods import all_methods
from mecopt.registry import get_problem


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    cfg = config_from(metafunc.config)
    cases, ids = [], []
    for key in cfg.problems:
        spec = get_problem(key)
        methods = [m for m in all_methods(key).values() if m.in_bench]
        for size, variant in spec.bench_groups():
            for m in methods:
                for i in range(cfg.instances):
                    cases.append((key, size, variant, m.name, m.kind, i))
                    ids.append(f"{key}-{group_name(size, variant)}-{m.name}-{i}")
    metafunc.parametrize("case", cases, ids=ids)


def test_solve(case: Case, benchmark, collector: Collector) -> None:  # type: ignore[no-untyped-def]
    key, size, variant, method, kind, _ = case
    cfg = collector.cfg
    job = case_job(case, cfg)
    res = benchmark.pedantic(lambda: pool.run(job.key, job.fn), rounds=1, iterations=1)
    benchmark.extra_info.update(
        problem=key,
        size=size,
        method=method,
        seed=res.seed,
        objective=res.objective,
        bound=res.bound,
        gap=res.gap,
        status=res.status,
        feasible=res.feasible,
        wall_time_s=res.wall_time_s,
    )
    collector.add(key, size, variant, res, kind)
    assert res.status != "error", res.message
    assert res.feasible, res.message
