"""The benchmark plumbing: the Sweep helper's rules (fast, no solver) and the quick profile on one problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import sweep as S
from mecopt.core import SolveResult

ROOT = Path(__file__).resolve().parents[1]


class FakeBenchmark:
    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}
        self.calls = 0

    def pedantic(self, fn: Any, rounds: int = 1, iterations: int = 1) -> Any:
        self.calls += 1
        return fn()


def _result(method: str, seed: int, status: str, obj: float) -> SolveResult:
    return SolveResult(
        "dtomalb", method, "min", obj, status, obj if status == "optimal" else obj / 2, 0.0, 1.0, None, seed
    )  # type: ignore[arg-type]


def test_sweep_frontier_yardstick_and_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    written: list[int] = []

    def writer(sw: S.Sweep) -> None:
        written.append(len(sw.rows))
        sw.write("t", "notes", S.md_table([[r["N"], r["method"], r["status"]] for r in sw.rows], ["N", "m", "s"]))

    sw = S.Sweep(S.BenchConfig(), "dtomalb", "demo", size_axis="N", frontier_methods=("exact",), yardstick=("scip",))
    sw.writer = writer
    # exact times out at N = 3 on every instance; scip fails at N = 2
    status = {("exact", 1): "optimal", ("exact", 2): "optimal", ("exact", 3): "time_limit", ("scip", 1): "optimal"}
    for N in (1, 2, 3, 4):
        for seed in (7, 8):
            for m in ("exact", "scip"):
                st = status.get((m, N), "time_limit")
                sw.add(
                    lambda m=m, seed=seed, st=st, N=N: _result(m, seed, st, float(N)),
                    method=m,
                    seed=seed,
                    limit=1.0,
                    N=N,
                )
    ran = 0
    for cell in sw.cells:
        assert not written  # nothing is written before the sweep completed
        try:
            cell.run(FakeBenchmark())
            ran += 1
        except pytest.skip.Exception:
            pass
    # N = 4 (beyond the exact frontier), scip's second instance at N = 2 (after its first failure there) and scip
    # at N = 3 (above it) are skipped
    assert ran == 16 - 7 and len(sw.skipped) == 7
    assert {(c["N"], c["method"], c["seed"]) for c in sw.skipped if c["method"] == "scip"} == {
        (2, "scip", 8),
        (3, "scip", 7),
        (3, "scip", 8),
        (4, "scip", 7),
        (4, "scip", 8),
    }
    assert sw.frontier == {(): 3} and sw.yardstick_failed == {("scip", ()): 2}
    assert written == [ran]
    assert sorted(p.name for p in (tmp_path / "dtomalb").iterdir()) == ["demo.json", "demo.md"]
    row = sw.rows[0]
    assert {"wall_time_s", "objective", "bound", "gap", "status", "seed", "N"} <= set(row) and "decision" not in row


def _frontier_sweep(log: Path) -> S.Sweep:
    """exact times out at N = 3 on every instance, scip fails at N = 2; each solve appends its cell and pid to log."""
    sw = S.Sweep(S.BenchConfig(), "dtomalb", "demo", size_axis="N", frontier_methods=("exact",), yardstick=("scip",))
    status = {("exact", 1): "optimal", ("exact", 2): "optimal", ("exact", 3): "time_limit", ("scip", 1): "optimal"}

    def solve(m: str, seed: int, st: str, N: int) -> SolveResult:
        with log.open("a") as f:
            f.write(f"{N} {m} {seed} {os.getpid()}\n")
        return _result(m, seed, st, float(N))

    for N in (1, 2, 3, 4):
        for seed in (7, 8):
            for m in ("exact", "scip"):
                st = status.get((m, N), "time_limit")
                sw.add(lambda m=m, seed=seed, st=st, N=N: solve(m, seed, st, N), method=m, seed=seed, limit=1.0, N=N)
    return sw


def _run_all(sw: S.Sweep) -> None:
    for cell in sw.cells:
        try:
            cell.run(FakeBenchmark())
        except pytest.skip.Exception:
            pass


def test_worker_pool_solves_what_a_sequential_run_solves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--bench-workers 2``: the same rows, frontier and skips as one process, no cell solved that a sequential run
    skips (a frontier or yardstick rule), and the solves ran in the workers."""
    from bench import pool

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    seq, par = _frontier_sweep(tmp_path / "seq.log"), _frontier_sweep(tmp_path / "par.log")
    _run_all(seq)
    pool.start([pool.Job((*par.job_key, c.index), c.fn, lambda c=c: par.ready(c)) for c in par.cells], workers=2)
    try:
        _run_all(par)
    finally:
        pool.stop()

    def solved(log: str) -> list[tuple[str, ...]]:
        return sorted(tuple(line.split()[:3]) for line in (tmp_path / log).read_text().splitlines())

    assert solved("par.log") == solved("seq.log") and len(solved("seq.log")) == 9
    assert {line.split()[3] for line in (tmp_path / "par.log").read_text().splitlines()} != {str(os.getpid())}
    assert [(r["N"], r["method"], r["seed"], r["status"]) for r in par.rows] == [
        (r["N"], r["method"], r["seed"], r["status"]) for r in seq.rows
    ]
    assert par.skipped == seq.skipped and par.frontier == seq.frontier == {(): 3}


def test_worker_error_fails_the_cell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bench import pool

    def boom() -> SolveResult:
        raise ValueError("solver exploded")

    pool.start([pool.Job("a", boom, lambda: True), pool.Job("b", lambda: 42, lambda: True)], workers=2)
    try:
        with pytest.raises(pool.WorkerError, match="solver exploded"):
            pool.run("a", boom)
        assert pool.run("b", lambda: 0) == 42
    finally:
        pool.stop()
    assert pool.run("b", lambda: 7) == 7  # no pool: computed here


def test_a_dead_worker_fails_its_cell_not_the_run() -> None:
    """A worker killed mid-solve (out of memory, a crash in a solver library) fails that cell with a clear error;
    the pool is restarted and the later cells are still solved (no hang)."""
    from bench import pool

    def die() -> int:
        os._exit(3)

    jobs = [pool.Job("a", lambda: 1, lambda: True), pool.Job("dies", die, lambda: True)]
    jobs += [pool.Job(f"c{k}", lambda k=k: k * 10, lambda: True) for k in range(4)]
    pool.start(jobs, workers=2)
    try:
        assert pool.run("a", lambda: 0) == 1
        with pytest.raises(pool.WorkerError, match="died"):
            pool.run("dies", die)
        assert [pool.run(f"c{k}", lambda: -1) for k in range(4)] == [0, 10, 20, 30]
    finally:
        pool.stop()


def test_sweep_scaling_of_options() -> None:
    cfg = S.BenchConfig(instances=5, time_limit=30.0)
    assert cfg.scale_count(20) == 5 and cfg.scale_count(3) == 1 and cfg.scale_limit(60.0) == 30.0
    sw = S.Sweep(S.BenchConfig(quick=True), "cto", "x")
    assert sw.points((1, 2, 3)) == (1, 2)


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def test_quick_profile_one_problem_writes_only_its_files(tmp_path: Path) -> None:
    committed = _snapshot(ROOT / "results")
    env = dict(os.environ, MECOPT_RESULTS=str(tmp_path), PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark", "--bench-quick", "--bench-problems", "dtomalb", "-q"]
        + ["--bench-time-limit", "1", "-p", "no:cacheprovider", "--benchmark-disable"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files, out.stdout[-2000:]
    assert all(f.startswith("quick/dtomalb/") or f == "quick/summary.md" for f in files), files
    assert {"quick/dtomalb/table.md", "quick/dtomalb/scaling.md", "quick/dtomalb/scaling.png"} <= set(files)
    assert _snapshot(ROOT / "results") == committed  # MECOPT_RESULTS redirected every file
    assert "files written" in out.stdout and "cells errored" in out.stdout


def test_main_table_metric_columns() -> None:
    """ProblemSpec.table_metrics adds one column per value (INTO: peer offloads, CPU-bound share, issue #13)."""
    from bench.harness import method_table

    def row(method: str, kind: str, obj: float, peer: int, bound: list[int]) -> dict:
        return {
            "method": method,
            "kind": kind,
            "objective": obj,
            "status": "optimal" if kind == "exact" else "feasible",
            "bound": obj if kind == "exact" else None,
            "gap": 0.0 if kind == "exact" else None,
            "wall_time_s": 0.1,
            "seed": 1,
            "feasible": True,
            "metrics": {"n_peer_offloaded": peer, "cpu_bound": bound},
        }

    rows = [row("exact", "exact", 2.0, 2, [1, 0]), row("olnpo", "heuristic", 1.0, 0, [1, 1])]
    table, headers, _ = method_table("into", rows)
    assert headers[-2:] == ["peer-offloaded / slot", "CPU-bound BS share"]
    by = {r[0]: r for r in table}
    assert by["exact"][-2:] == ["2", "0.5"] and by["olnpo"][-2:] == ["0", "1"]


def test_stale_raw_file_of_a_dropped_group_is_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.harness import current_raw_files, group_name
    from mecopt.registry import get_problem

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    size, variant = get_problem("dtac").bench_groups()[0]
    d = tmp_path / "dtac"
    d.mkdir()
    keep, stale = d / f"raw_{group_name(size, variant)}.json", d / "raw_tiny-no-longer-run.json"
    keep.write_text("{}")
    stale.write_text("{}")
    assert current_raw_files("dtac") == [keep]
    assert keep.exists() and not stale.exists()


def test_fork_map_is_an_ordered_map_on_worker_processes() -> None:
    from bench.learner_suite import fork_map

    items = list(range(7))
    out = fork_map(lambda x: (x * x, os.getpid()), items, workers=2)
    assert [v for v, _ in out] == [x * x for x in items]
    assert os.getpid() not in {pid for _, pid in out}
    assert fork_map(lambda x: os.getpid(), [1], workers=2) == [os.getpid()]  # one item: computed here
