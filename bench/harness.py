"""Benchmark harness: the fixed seeded instance sets, the result collector and the table writers.

``pytest --benchmark`` runs ``bench/test_tables.py``: for every registered problem, every size in its
``bench_sizes`` and every method with ``in_bench=True`` (exact, heuristics, learned policies with committed
checkpoints), it solves the same seeded instances, checks each decision with ``evaluate`` and records the result.
At the end of the session it writes, atomically, ``results/<key>/table.md`` + ``results/<key>/raw_<size>.json``
and regenerates ``results/summary.md`` from every raw file present.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.sweep import BenchConfig, out_dir, write_json, write_text
from bench.sweep import config_from as _config_from
from mecopt.core import SolveOptions, SolveResult, relative_gap, spawn_seeds
from mecopt.registry import get_problem, problem_keys


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


# ----------------------------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------------------------
def _reference(rows: list[dict[str, Any]], sense: str) -> dict[int, tuple[float, bool]]:
    """Per instance seed: (reference value, certified). Certified optimum of 'exact' where proven, else the best
    proven bound of any certified method (then gaps are upper bounds on the true gap)."""
    ref: dict[int, tuple[float, bool]] = {}
    for r in rows:
        if r["kind"] != "exact" or r["bound"] is None:
            continue
        seed = r["seed"]
        certified = r["status"] == "optimal"
        val = r["objective"] if certified else r["bound"]
        old = ref.get(seed)
        if old is None or (certified and not old[1]):
            ref[seed] = (val, certified)
        elif not old[1] and not certified:
            better = val > old[0] if sense == "min" else val < old[0]
            ref[seed] = (val, False) if better else old
    return ref


def method_table(key: str, rows: list[dict[str, Any]]) -> tuple[list[list[Any]], list[str], dict[str, Any]]:
    spec = get_problem(key)
    ref = _reference(rows, spec.sense)
    methods: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        methods.setdefault(r["method"], []).append(r)
    table = []
    stats: dict[str, Any] = {}
    for name, rs in methods.items():
        objs = [r["objective"] for r in rs if r["feasible"]]
        gaps = [
            relative_gap(r["objective"], ref[r["seed"]][0], spec.sense)
            for r in rs
            if r["feasible"] and r["seed"] in ref
        ]
        gaps = [g for g in gaps if g is not None]
        times = [r["wall_time_s"] for r in rs]
        feas = sum(1 for r in rs if r["feasible"]) / len(rs)
        cert = sum(1 for r in rs if r["status"] == "optimal") / len(rs)
        s = {
            "kind": rs[0]["kind"],
            "n": len(rs),
            "mean_objective": statistics.fmean(objs) if objs else None,
            "mean_gap": statistics.fmean(gaps) if gaps else None,
            "max_gap": max(gaps) if gaps else None,
            "feasible": feas,
            "certified": cert,
            "median_time_s": statistics.median(times),
        }
        stats[name] = s
        table.append(
            [
                name,
                s["kind"],
                _fmt(s["mean_objective"], ".6g"),
                _pct(s["mean_gap"]),
                _pct(s["max_gap"]),
                f"{100 * feas:.0f}",
                f"{100 * cert:.0f}",
                _fmt(s["median_time_s"], ".3g"),
                s["n"],
            ]
        )
    headers = [
        "method",
        "kind",
        "mean objective",
        "mean gap %",
        "max gap %",
        "% feasible",
        "% certified",
        "median wall s",
        "n",
    ]
    uncertified = sum(1 for v in ref.values() if not v[1])
    meta = {
        "reference_certified": len(ref) - uncertified,
        "reference_bound_only": uncertified,
        "instances": len({r["seed"] for r in rows}),
    }
    return table, headers, {"methods": stats, **meta}


def _fmt(v: float | None, f: str) -> str:
    return "-" if v is None else format(v, f)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.3f}"


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
    for raw in sorted(out.glob("raw_*.json")):
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


def write_summary() -> None:
    root = out_dir()
    lines = [
        "# mecopt results summary\n",
        "\nGenerated by `pytest --benchmark`. Per problem and size: the certified "
        "share of the exact method, and the best and worst non-exact method by mean gap to the optimum.\n\n",
    ]
    rows = []
    for key in problem_keys():
        for raw in sorted((root / key).glob("raw_*.json")):
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
