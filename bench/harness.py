"""Benchmark harness: the fixed seeded instance sets, the result collector and the table writers.

``pytest --benchmark`` runs ``bench/test_tables.py``: for every registered problem, every size in its
``bench_sizes`` and every method with ``in_bench=True`` (exact, heuristics, learned policies with committed
checkpoints), it solves the same seeded instances, checks each decision with ``evaluate`` and records the result.
At the end of the session it writes, atomically, ``results/<key>/table.md`` + ``results/<key>/raw_<size>.json``
and regenerates ``results/summary.md`` from every raw file present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from bench.pool import Job
from bench.sweep import BenchConfig, out_dir, write_json, write_text
from bench.sweep import config_from as _config_from
from mecopt.core import SolveOptions, SolveResult, spawn_seeds
from mecopt.methods import solve
from mecopt.registry import get_problem, problem_keys
from mecopt.tables import fmt, method_stats, pct, pct_ci


def config_from(pytest_config: Any) -> BenchConfig:
    return _config_from(pytest_config)


def group_name(size: str, variant: str) -> str:
    """Name of one benchmark group (a table section and a raw file): the size, plus the variant if not literal."""
    return size if variant == "literal" else f"{size}-{variant}"


@cache
def instance_set(key: str, size: str, variant: str, n: int, seed: int) -> tuple[tuple[int, Any], ...]:
    """The fixed benchmark instances: (instance seed, Instance), seeds spawned from the root seed.

    Every variant of a size uses the same seeds, hence the same generated data."""
    spec = get_problem(key)
    return tuple((s, spec.make_instance(size, s, variant)) for s in spawn_seeds(seed, n, "bench", key, size))


@dataclass
class Collector:
    """Results of one session, by (key, size)."""

    cfg: BenchConfig
    rows: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    expected: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, key: str, size: str, variant: str, res: SolveResult, kind: str) -> None:
        row = res.to_dict()
        row.update(size=size, variant=variant, kind=kind)
        self.rows.setdefault((key, group_name(size, variant)), []).append(row)


def solve_options(cfg: BenchConfig, seed: int) -> SolveOptions:
    return SolveOptions(time_limit=cfg.time_limit, mip_gap=1e-9, threads=1, seed=seed)


#: one main-table solve: (problem, size, variant, method, method kind, instance index)
Case = tuple[str, str, str, str, str, int]


def case_job(case: Case, cfg: BenchConfig) -> Job:
    """The solve of one main-table case, run by ``bench/test_tables.py`` directly or by the worker pool
    (``bench/pool.py``): independent of every other case, so always ready."""
    key, size, variant, method, _, i = case

    def fn() -> SolveResult:
        seed, inst = instance_set(key, size, variant, cfg.instances, cfg.seed)[i]
        return solve(key, inst, method, solve_options(cfg, seed), seed=seed)

    return Job(("table", *map(str, case)), fn, lambda: True)


# ----------------------------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------------------------
def method_table(key: str, rows: list[dict[str, Any]]) -> tuple[list[list[Any]], list[str], dict[str, Any]]:
    """The per-method table of one group of rows (the shared statistics of :mod:`mecopt.tables`)."""
    meta = method_stats(rows, get_problem(key).sense)
    table = [
        [
            name,
            s["kind"],
            fmt(s["mean_objective"]),
            pct(s["mean_gap"]),
            pct_ci(s["gap_ci"], 3),
            pct(s["max_gap"]),
            pct(s["near_optimal"], 0),
            f"{100 * s['feasible']:.0f}",
            f"{100 * s['certified']:.0f}",
            fmt(s["median_time_s"], ".3g"),
            s["n"],
        ]
        for name, s in meta["methods"].items()
    ]
    extra = get_problem(key).table_metrics
    for row in table:
        mine = [r for r in rows if r["method"] == row[0] and r.get("feasible") and r.get("metrics")]
        for value_key, _ in extra:
            vals = [float(np.mean(r["metrics"][value_key])) for r in mine if value_key in r["metrics"]]
            row.append(fmt(float(np.mean(vals)), ".3g") if vals else "")
    headers = [
        "method",
        "kind",
        "mean objective",
        "mean gap %",
        "95 % CI",
        "max gap %",
        "% within 1 %",
        "% feasible",
        "% certified",
        "median wall s",
        "n",
        *(h for _, h in extra),
    ]
    return table, headers, meta


_fmt = fmt


def _pct(v: float | None) -> str:
    return pct(v)


def write_problem_results(key: str, size: str, rows: list[dict[str, Any]], cfg: BenchConfig) -> None:
    out = out_dir(key)
    spec = get_problem(key)
    write_json(
        out / f"raw_{size}.json",
        {
            "problem": key,
            "size": size,
            "sense": spec.sense,
            "root_seed": cfg.seed,
            "instances": cfg.instances,
            "time_limit_s": cfg.time_limit,
            "rows": rows,
        },
    )
    _write_problem_table(key)


def _write_problem_table(key: str) -> None:
    out = out_dir(key)
    spec = get_problem(key)
    parts = [
        f"# {key}: optimality gaps\n",
        f"{spec.title}. Sense: **{spec.sense}**. Generated by "
        "`pytest --benchmark` (bench/test_tables.py); do not edit by hand.\n",
    ]
    for raw in current_raw_files(key):
        data = json.loads(raw.read_text())
        table, headers, meta = method_table(key, data["rows"])
        parts.append(
            f"\n## size `{data['size']}`: {meta['instances']} instances, root seed {data['root_seed']}, "
            f"exact time limit {data['time_limit_s']:g} s\n"
        )
        parts.append(
            f"\nGap = relative distance to the certified optimum ({meta['reference_certified']} "
            f"instances)"
            + (
                f"; on {meta['reference_bound_only']} instances only a bound was proven, so their gaps are upper bounds"
                if meta["reference_bound_only"]
                else ""
            )
            + ". Objectives are recomputed by `evaluate` from each decision.\n\n"
        )
        parts.append(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True) + "\n")
        seeds = sorted({r["seed"] for r in data["rows"]})
        parts.append(f"\nInstance seeds: {', '.join(map(str, seeds))}\n")
    write_text(out / "table.md", "".join(parts))


def current_raw_files(key: str) -> list[Path]:
    """The problem's ``raw_<group>.json`` files of the groups it benchmarks now; a raw file of a group no longer in
    its plan (e.g. a size dropped from ``bench_sizes``) is stale and is deleted, so that no table reads it."""
    out = out_dir(key)
    groups = {group_name(size, variant) for size, variant in get_problem(key).bench_groups()}
    files = []
    for raw in sorted(out.glob("raw_*.json")):
        if raw.stem.removeprefix("raw_") in groups:
            files.append(raw)
        else:
            raw.unlink()
    return files


def write_summary() -> None:
    root = out_dir()
    lines = [
        "# mecopt results summary\n",
        "\nGenerated by `pytest --benchmark`. Per problem and size: the certified "
        "share of the exact method, and the best and worst non-exact method by mean gap to the optimum.\n\n",
    ]
    rows = []
    for key in problem_keys():
        for raw in current_raw_files(key):
            data = json.loads(raw.read_text())
            _, _, meta = method_table(key, data["rows"])
            ms = meta["methods"]
            ex = ms.get("exact", {})
            others = {k: v for k, v in ms.items() if v["kind"] != "exact" and v["mean_gap"] is not None}
            best = min(others.items(), key=lambda kv: kv[1]["mean_gap"]) if others else None
            worst = max(others.items(), key=lambda kv: kv[1]["mean_gap"]) if others else None
            rows.append(
                [
                    key,
                    data["size"],
                    meta["instances"],
                    _pct(ex.get("certified")).replace(".000", ""),
                    _fmt(ex.get("median_time_s"), ".3g"),
                    f"{best[0]} ({_pct(best[1]['mean_gap'])} %)" if best else "-",
                    f"{worst[0]} ({_pct(worst[1]['mean_gap'])} %)" if worst else "-",
                    f"[table]({key}/table.md)",
                ]
            )
    lines.append(
        tabulate(
            rows,
            headers=[
                "problem",
                "size",
                "n",
                "exact % certified",
                "exact median s",
                "best other method (mean gap)",
                "worst other method (mean gap)",
                "details",
            ],
            tablefmt="github",
            disable_numparse=True,
        )
        + "\n"
    )
    write_text(root / "summary.md", "".join(lines))


def read_rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["rows"]
