"""Score any policy on fixed instances against the certified optimum and the best heuristic.

``validate(policy, instances)`` returns one row per instance: the policy's objective (recomputed by the problem's
``evaluate``), feasibility, decision latency, the exact method's objective / proven bound / status, and relative
gaps: to the exact incumbent, to the best objective known (min of the exact incumbent and the heuristics), and to
the proven bound (a certified upper bound on the true gap); plus the best heuristic and the gap to it. A learned
policy, a heuristic (:class:`SolverPolicy`) or a user's own object with ``decide(instance) -> Decision`` are all
scored by this same code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mecopt.core import SolveOptions
from mecopt.problems.dtomalb import KEY, Decision, Instance, evaluate
from solvers import methods_for, solve

#: Heuristics the policies are compared with (all of solvers/heuristics/dtomalb.py except the random one).
HEURISTICS = ("lb-greedy", "selfish", "fastest", "all-server-1", "all-local")


class Decider(Protocol):
    def decide(self, instance: Instance) -> Decision: ...


@dataclass
class SolverPolicy:
    """Wrap a registered method (heuristic, exact, learned) so it is scored like a learned policy."""

    method: str
    options: SolveOptions = SolveOptions()

    @property
    def name(self) -> str:
        return self.method

    def decide(self, instance: Instance) -> Decision:
        spec = methods_for(KEY)[self.method]
        return spec.fn(instance, self.options).decision


def reference(
    instances: Sequence[Instance], exact_time_limit: float = 60.0, heuristics: Sequence[str] = HEURISTICS
) -> list[dict[str, Any]]:
    """Exact (certified) and heuristic objectives of each instance; compute once, reuse for every policy."""
    rows = []
    for inst in instances:
        ex = solve(KEY, inst, "exact", SolveOptions(time_limit=exact_time_limit))
        heur = {h: solve(KEY, inst, h).objective for h in heuristics}
        best = min(heur, key=lambda h: heur[h] if heur[h] is not None else np.inf)
        rows.append(
            {
                "opt_objective": ex.objective,
                "opt_bound": ex.bound,
                "opt_status": ex.status,
                "opt_wall_s": ex.wall_time_s,
                "opt_n_per_server": ex.metrics.get("n_per_server"),
                "heuristics": heur,
                "best_heuristic": best,
                "best_heuristic_objective": heur[best],
            }
        )
    return rows


def validate(
    policy: Decider,
    instances: Sequence[Instance],
    refs: Sequence[dict[str, Any]] | None = None,
    exact_time_limit: float = 60.0,
    warmup: bool = True,
) -> list[dict[str, Any]]:
    """Per-instance objective, feasibility, latency and gaps (to the certified optimum and the best heuristic).

    ``warmup``: one untimed ``decide`` on the first instance first, so one-off costs (lazy imports, torch's first
    kernel call) do not enter the per-slot latency.
    """
    if refs is None:
        refs = reference(instances, exact_time_limit)
    if len(refs) != len(instances):
        raise ValueError(f"validate: {len(instances)} instances but {len(refs)} reference rows")
    if warmup and len(instances):
        policy.decide(instances[0])
    rows = []
    for k, (inst, ref) in enumerate(zip(instances, refs, strict=True)):
        t0 = time.perf_counter()
        dec = policy.decide(inst)
        latency = time.perf_counter() - t0
        met = evaluate(inst, dec)
        obj = met.objective if met.feasible else None
        opt = ref["opt_objective"]
        best_known = min(v for v in (opt, ref["best_heuristic_objective"]) if v is not None)
        rows.append(
            {
                "instance": k,
                "objective": obj,
                "feasible": met.feasible,
                "violations": list(met.violations),
                "latency_s": latency,
                "mean_delay_s": met.values.get("mean_delay_s"),
                "var_LD": met.values.get("var_LD"),
                "n_local": met.values.get("n_local"),
                "n_per_server": met.values.get("n_per_server"),
                "load_factor_s": met.values.get("load_factor_s"),
                "opt_objective": opt,
                "opt_status": ref["opt_status"],
                # gap to the exact incumbent (the optimum when opt_status == 'optimal')
                "gap_to_opt": None if obj is None or opt is None else (obj - opt) / abs(opt),
                # gap to the proven lower bound: (obj - bound)/bound >= (obj - opt*)/opt*, a certified upper
                # bound on the true optimality gap (equal to gap_to_opt when the exact solve is optimal)
                "gap_to_bound": None
                if obj is None or ref["opt_bound"] is None
                else (obj - ref["opt_bound"]) / abs(ref["opt_bound"]),
                # gap to the best objective known (exact incumbent or any heuristic): when the exact solve hit its
                # time limit a heuristic can beat its incumbent, so this is the tightest *measured* gap
                "gap_to_best_known": None if obj is None else (obj - best_known) / abs(best_known),
                "best_heuristic": ref["best_heuristic"],
                "gap_to_best_heuristic": None
                if obj is None
                else (obj - ref["best_heuristic_objective"]) / abs(ref["best_heuristic_objective"]),
                "decision": dec.a.tolist(),
            }
        )
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over instances (feasible ones for objectives/gaps)."""

    def mean(k: str) -> float | None:
        v = [r[k] for r in rows if r.get(k) is not None]
        return float(np.mean(v)) if v else None

    return {
        "instances": len(rows),
        "feasible_pct": 100.0 * float(np.mean([bool(r["feasible"]) for r in rows])) if rows else None,
        "objective": mean("objective"),
        "mean_delay_s": mean("mean_delay_s"),
        "var_LD": mean("var_LD"),
        "gap_to_opt_pct": None if mean("gap_to_opt") is None else 100 * mean("gap_to_opt"),
        "max_gap_to_opt_pct": max((100 * r["gap_to_opt"] for r in rows if r["gap_to_opt"] is not None), default=None),
        "gap_to_best_known_pct": None if mean("gap_to_best_known") is None else 100 * mean("gap_to_best_known"),
        "gap_to_bound_pct": None if mean("gap_to_bound") is None else 100 * mean("gap_to_bound"),
        "gap_to_best_heuristic_pct": None
        if mean("gap_to_best_heuristic") is None
        else 100 * mean("gap_to_best_heuristic"),
        "latency_ms": None if mean("latency_s") is None else 1e3 * mean("latency_s"),
    }
