"""What every learner suite (``bench/test_<key>_learners.py``) shares: selection, certified references, loading the
committed runs, the contenders of a table, validation rows computed once per module, CI verdicts, the seed spread.

A learner suite scores committed checkpoints (never trains unless ``--retrain``) against the certified optimum of the
protocol's held-out split (docs/learners.md). Layout of a problem's runs under ``results_dir()/<key>/``:

* tuned: ``checkpoints/<method>-<preset>`` (seed 1) and ``seeds/checkpoints/<method>-<preset>-seed<k>``;
* paper setting: ``untuned/checkpoints/<method>-<preset>-seed<k>``, named ``"<method> (paper setting)"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from learners.common import TorchPolicy, load_policy
from learners.protocol import CI, gap_table_row, separated
from learners.validate import SolverPolicy, cached_reference, default_heuristics, summarize, validate
from mecopt.core import results_dir

PAPER = " (paper setting)"

#: every learned decision of the benchmark runs torch on one thread, as training and the latency protocol do: the
#: nets are small, and on the shared 2-core machine two threads made each decision ~2.5x slower (issue #20)
torch.set_num_threads(1)


#: processes for :func:`prevalidate` (``--bench-workers``; set by :func:`skip_unless_selected`)
WORKERS = 1


def skip_unless_selected(bench_cfg: Any, key: str) -> None:
    """Honour ``--bench-problems``; learner evaluation is not part of ``--bench-quick``."""
    global WORKERS
    WORKERS = int(getattr(bench_cfg, "workers", 1))
    if key not in bench_cfg.problems:
        pytest.skip(f"{key} not selected by --bench-problems")
    if bench_cfg.quick:
        pytest.skip("learner evaluation is not part of --bench-quick")


def out_dir(key: str) -> Path:
    return results_dir() / key


def certified_refs(
    key: str,
    insts: Sequence[Any],
    name: str,
    time_limit: float,
    *,
    certified: bool = True,
    heuristics: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Exact + heuristic references of ``insts``, cached in ``learners_reference.json`` under ``name``; with
    ``certified`` every instance must have a certified optimum (the protocol's gaps are to the optimum)."""
    refs = cached_reference(key, insts, out_dir(key) / "learners_reference.json", name, time_limit, heuristics)
    if certified:
        bad = [k for k, r in enumerate(refs) if r["opt_status"] != "optimal"]
        assert not bad, f"{key} {name}: instances {bad} have no certified optimum"
    return refs


def load_dir(folder: Path, pattern: str) -> list[TorchPolicy]:
    """Every checkpoint ``<stem>.json`` (+ its weights) in ``folder`` matching ``pattern``, sorted by name."""
    return [load_policy(p.with_suffix("")) for p in sorted(folder.glob(pattern))] if folder.is_dir() else []


def load_runs(
    key: str,
    preset: str,
    methods: Iterable[str],
    *,
    retrain: Callable[[], None] | None = None,
    require: bool = True,
) -> dict[str, dict[int, TorchPolicy]]:
    """``{"<method>": {seed: policy}, "<method> (paper setting)": {...}}`` from the committed runs of ``preset``.

    ``retrain`` (the suite's ``--retrain`` action) runs first when given. With ``require`` the suite is skipped when a
    tuned method has no checkpoint (it tells how to train one)."""
    if retrain is not None:
        retrain()
    root = out_dir(key)
    out: dict[str, dict[int, TorchPolicy]] = {}
    for pol in load_dir(root / "checkpoints", f"*-{preset}.json") + load_dir(
        root / "seeds" / "checkpoints", f"*-{preset}-seed*.json"
    ):
        out.setdefault(pol.name, {})[int(pol.meta["seed"])] = pol
    for pol in load_dir(root / "untuned" / "checkpoints", f"*-{preset}-seed*.json"):
        out.setdefault(f"{pol.name}{PAPER}", {})[int(pol.meta["seed"])] = pol
    missing = [m for m in methods if m not in out]
    if require and missing:
        pytest.skip(f"no tuned checkpoints for {missing} (python -m learners.train {key}, or --retrain)")
    return out


def contenders(
    key: str,
    runs: dict[str, dict[int, Any]],
    methods: Iterable[str],
    *,
    heuristics: Iterable[str] | None = None,
    paper: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, dict[int, Any]]:
    """The rows of a learner table: each tuned method (and its paper setting), then the heuristics (default: the
    problem's ``default_heuristics``) as one deterministic 'seed' 0, then ``extra`` deciders (name -> decider)."""
    out: dict[str, dict[int, Any]] = {}
    for m in methods:
        for name in (m, f"{m}{PAPER}") if paper else (m,):
            if name in runs:
                out[name] = runs[name]
    for h in default_heuristics(key) if heuristics is None else heuristics:
        out[h] = {0: SolverPolicy(key, h)}
    for name, decider in (extra or {}).items():
        out[name] = {0: decider}
    return out


#: (key, split tag, id(policy)) -> (policy, rows); the policy is held so that its id cannot be reused
_ROWS: dict[tuple[str, str, int], tuple[Any, list[dict[str, Any]]]] = {}


def validated(
    key: str,
    tag: str,
    policy: Any,
    insts: Sequence[Any],
    refs: Sequence[dict[str, Any]],
    rows: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """:func:`learners.validate.validate` rows of ``policy`` on the split ``tag``, computed once per process (the
    gap table and the seed spread score the same policies on the same split). Latency rows are those of the first
    call; timing claims use :func:`learners.protocol.decision_latency`. ``rows``: rows the suite already has (e.g.
    from its own on-disk cache), registered instead of validating."""
    k = (key, tag, id(policy))
    if k not in _ROWS:
        _ROWS[k] = (policy, validate(key, policy, insts, refs) if rows is None else rows)
    return _ROWS[k][1]


_MAP: list[Any] = []  # (fn, items) of the running fork_map, read by the forked workers


def _map_one(i: int) -> Any:
    fn, items = _MAP
    return fn(items[i])


def fork_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` (default ``--bench-workers``) forked processes, one item per task,
    in order. For deterministic evaluations of loaded policies: the workers are forked now, so they hold the
    policies as loaded; each measures its own time on a core of its own (``workers`` <= cores). With one worker or
    one item it runs here."""
    n = min(WORKERS if workers is None else workers, len(items))
    if n <= 1:
        return [fn(x) for x in items]
    import multiprocessing

    _MAP[:] = [fn, items]
    try:
        with multiprocessing.get_context("fork").Pool(n) as pl:
            return pl.map(_map_one, range(len(items)), chunksize=1)
    finally:
        _MAP.clear()


def prevalidate(
    key: str,
    tag: str,
    policies: Iterable[Any],
    insts: Sequence[Any],
    refs: Sequence[dict[str, Any]],
    workers: int | None = None,
) -> None:
    """Validate ``policies`` on the split ``tag`` with :func:`fork_map` and keep the rows for :func:`validated` (the
    same rows as validating them one by one here: each policy is deterministic on its instances; its latency is
    measured in its worker). With one worker nothing happens here and :func:`validated` computes them as before."""
    todo: list[Any] = []
    for p in policies:
        if (key, tag, id(p)) not in _ROWS and all(q is not p for q in todo):
            todo.append(p)
    if min(WORKERS if workers is None else workers, len(todo)) <= 1:
        return
    results = fork_map(lambda p: validate(key, p, insts, refs), todo, workers)
    for p, rows in zip(todo, results, strict=True):
        _ROWS[(key, tag, id(p))] = (p, rows)


def gap_row(
    name: str, by_seed: dict[int, list[dict[str, Any]]], policy: Any, value_keys: Sequence[str], objective_col: str
) -> tuple[dict[str, Any], CI, list[dict[str, Any]]]:
    """The leading columns of a learner gap-table row (method, seeds, env steps, feasible %, the mean objective
    under ``objective_col``, the gap columns of :func:`gap_table_row`), the gap CI, and the per-seed summaries
    (for the suite's own columns, appended to the row after these). ``by_seed``: validate rows per seed;
    ``policy``: one of them (its ``meta`` gives the env steps of a learned policy)."""
    g = gap_table_row([100.0 * r["gap_to_opt"] for rows in by_seed.values() for r in rows])
    ci = g.pop("_ci")
    summ = [summarize(rows, value_keys) for rows in by_seed.values()]
    steps = getattr(policy, "meta", {}).get("env_steps")
    row = {
        "method": name,
        "seeds": ", ".join(str(s) for s in sorted(by_seed)) if steps else "-",
        "env steps": steps,
        "feasible %": float(np.mean([s["feasible_pct"] for s in summ])),
        objective_col: round(float(np.mean([s["objective"] for s in summ])), 4),
        **g,
    }
    return row, ci, summ


def verdicts(cis: dict[str, CI], pairs: Iterable[tuple[str, str]], unit: str = "%") -> list[str]:
    """One line per pair: a claim "A beats B" (lower mean gap) only where the 95 % CIs separate."""
    lines = []
    for a, b in pairs:
        if a in cis and b in cis:
            ca, cb = cis[a], cis[b]
            if separated(ca, cb):
                win, lose = (a, b) if ca.mean < cb.mean else (b, a)
                lines.append(f"* `{win}` beats `{lose}`: {cis[win].fmt()} vs {cis[lose].fmt()} {unit} (CIs separate)")
            else:
                lines.append(f"* `{a}` vs `{b}`: {ca.fmt()} vs {cb.fmt()} {unit} -- CIs overlap, no claim")
    return lines


def seed_spread_table(
    key: str, tag: str, runs: dict[str, dict[int, Any]], insts: Sequence[Any], refs: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per method and training seed: mean gap to the optimum on the split, env steps, training wall time, speeds."""
    table = []
    for name, by_seed in runs.items():
        seeds = sorted(by_seed)
        gaps = {s: summarize(validated(key, tag, by_seed[s], insts, refs))["gap_to_opt_pct"] for s in seeds}
        metas = [getattr(by_seed[s], "meta", {}) for s in seeds]
        g = np.array(list(gaps.values()), dtype=float)
        table.append(
            {
                "method": name,
                "gap to opt % per seed": ", ".join(f"{s}: {v:.2f}" for s, v in gaps.items()),
                "mean over seeds": round(float(g.mean()), 2),
                "std": round(float(g.std(ddof=1)), 2) if len(g) > 1 else None,
                "env steps": ", ".join(str(m.get("env_steps")) for m in metas),
                "train wall s": ", ".join(str(m.get("train_wall_s")) for m in metas),
                "env steps/s": ", ".join(str(m.get("env_steps_per_s", "-")) for m in metas),
                "updates/s": ", ".join(str(m.get("updates_per_s", "-")) for m in metas),
            }
        )
    return table
