"""Score any policy of any problem on fixed instances against the certified optimum and the best heuristic.

``validate(key, policy, instances)`` returns one row per instance: the policy's objective (recomputed by the
problem's ``evaluate``), feasibility, the problem's reported values, decision latency, the exact method's
objective / proven bound / status, and gaps (the suite's one :func:`mecopt.core.relative_gap`, denominator =
the reference): to the exact incumbent (the optimum when its status is optimal), to the proven bound (a certified
upper bound on the true gap) and to the best objective known; plus the best heuristic and the signed gap to it. A
learned policy, a solver method (:class:`SolverPolicy`) or a user's own object with ``decide(instance)`` are all
scored by this same code.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mecopt.core import SolveOptions, read_json, relative_gap, write_json
from mecopt.registry import get_problem
from solvers import methods_for, solve


class Decider(Protocol):
    def decide(self, instance: Any) -> Any: ...


@dataclass
class SolverPolicy:
    """Wrap a registered solver method (heuristic or exact) of problem ``key`` so it is scored like a policy."""

    key: str
    method: str
    options: SolveOptions = field(default_factory=SolveOptions)

    @property
    def name(self) -> str:
        return self.method

    def decide(self, instance: Any) -> Any:
        return methods_for(self.key)[self.method].fn(instance, self.options).decision


def default_heuristics(key: str) -> tuple[str, ...]:
    """Every heuristic of ``key`` except the random baseline (the comparison set of the tables)."""
    return tuple(n for n, s in methods_for(key).items() if s.kind == "heuristic" and n != "random")


def _better(sense: str, a: float, b: float) -> bool:
    return a < b if sense == "min" else a > b


def reference(
    key: str, instances: Sequence[Any], exact_time_limit: float = 60.0, heuristics: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Exact (certified) and heuristic objectives of each instance; compute once, reuse for every policy."""
    sense = get_problem(key).sense
    heuristics = default_heuristics(key) if heuristics is None else tuple(heuristics)
    rows = []
    for inst in instances:
        ex = solve(key, inst, "exact", SolveOptions(time_limit=exact_time_limit))
        heur = {h: solve(key, inst, h).objective for h in heuristics}
        valid = {h: v for h, v in heur.items() if v is not None}
        best = None
        for h, v in valid.items():
            if best is None or _better(sense, v, valid[best]):
                best = h
        rows.append(
            {
                "opt_objective": ex.objective,
                "opt_bound": ex.bound,
                "opt_status": ex.status,
                "opt_wall_s": ex.wall_time_s,
                "opt_values": dict(ex.metrics),
                "heuristics": heur,
                "best_heuristic": best,
                "best_heuristic_objective": None if best is None else valid[best],
            }
        )
    return rows


def validate(
    key: str,
    policy: Decider,
    instances: Sequence[Any],
    refs: Sequence[dict[str, Any]] | None = None,
    exact_time_limit: float = 60.0,
    warmup: bool = True,
) -> list[dict[str, Any]]:
    """Per-instance objective, feasibility, values, latency and gaps of ``policy`` on problem ``key``.

    ``warmup``: one untimed ``decide`` on the first instance first, so one-off costs (lazy imports, torch's first
    kernel call) do not enter the per-instance latency (the protocol's latency is :func:`protocol.decision_latency`).
    """
    spec = get_problem(key)
    sense = spec.sense
    if refs is None:
        refs = reference(key, instances, exact_time_limit)
    if len(refs) != len(instances):
        raise ValueError(f"validate: {len(instances)} instances but {len(refs)} reference rows")
    if warmup and len(instances):
        policy.decide(instances[0])
    rows = []
    for k, (inst, ref) in enumerate(zip(instances, refs, strict=True)):
        t0 = time.perf_counter()
        dec = policy.decide(inst)
        latency = time.perf_counter() - t0
        met = spec.evaluate(inst, dec)
        obj = met.objective if met.feasible else None
        opt = ref["opt_objective"]
        known = [v for v in (opt, ref["best_heuristic_objective"]) if v is not None]
        best_known = (min if sense == "min" else max)(known) if known else None
        bh = ref["best_heuristic_objective"]
        signed_bh = None
        if obj is not None and bh is not None and abs(bh) > 1e-12:
            signed_bh = (obj - bh) / abs(bh) if sense == "min" else (bh - obj) / abs(bh)
        rows.append(
            {
                "instance": k,
                "objective": obj,
                "feasible": met.feasible,
                "violations": list(met.violations),
                "latency_s": latency,
                "values": dict(met.values),
                "opt_objective": opt,
                "opt_status": ref["opt_status"],
                "gap_to_opt": relative_gap(obj, opt, sense),
                "gap_to_bound": relative_gap(obj, ref["opt_bound"], sense),
                "gap_to_best_known": relative_gap(obj, best_known, sense),
                "best_heuristic": ref["best_heuristic"],
                "gap_to_best_heuristic": signed_bh,  # signed: negative when the policy beats every heuristic
                "decision": dec.to_dict(),
            }
        )
    return rows


def summarize(rows: Sequence[dict[str, Any]], value_keys: Sequence[str] = ()) -> dict[str, Any]:
    """Means over instances (feasible ones for objectives, gaps and the problem values named in ``value_keys``)."""

    def mean(vals: list[Any]) -> float | None:
        v = [x for x in vals if x is not None]
        return float(np.mean(v)) if v else None

    def pct(k: str) -> float | None:
        m = mean([r[k] for r in rows])
        return None if m is None else 100.0 * m

    lat = mean([r["latency_s"] for r in rows])
    return {
        "instances": len(rows),
        "feasible_pct": 100.0 * float(np.mean([bool(r["feasible"]) for r in rows])) if rows else None,
        "objective": mean([r["objective"] for r in rows]),
        **{k: mean([r["values"].get(k) for r in rows if r["feasible"]]) for k in value_keys},
        "gap_to_opt_pct": pct("gap_to_opt"),
        "max_gap_to_opt_pct": max((100 * r["gap_to_opt"] for r in rows if r["gap_to_opt"] is not None), default=None),
        "gap_to_best_known_pct": pct("gap_to_best_known"),
        "gap_to_bound_pct": pct("gap_to_bound"),
        "gap_to_best_heuristic_pct": pct("gap_to_best_heuristic"),
        "latency_ms": None if lat is None else 1e3 * lat,
    }


def cached_reference(
    key: str,
    instances: Sequence[Any],
    path: str | Path,
    name: str,
    exact_time_limit: float = 600.0,
    heuristics: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """:func:`reference` cached in the JSON file ``path`` under ``name``, keyed by a hash of the instances and the
    settings (delete the file, or change an instance, to recompute). Written atomically."""
    path = Path(path)
    heur = default_heuristics(key) if heuristics is None else tuple(heuristics)
    blob = json.dumps([i.to_dict() for i in instances], sort_keys=True) + json.dumps([exact_time_limit, list(heur)])
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    cache = read_json(path, "reference cache") if path.exists() else {}
    entry = cache.get(name)
    if entry is None or entry.get("hash") != digest:
        entry = {
            "hash": digest,
            "time_limit": exact_time_limit,
            "rows": reference(key, instances, exact_time_limit, heur),
        }
        cache = read_json(path, "reference cache") if path.exists() else {}  # re-read: another run may have written
        cache[name] = entry
        write_json(path, cache)
    return entry["rows"]
