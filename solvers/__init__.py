"""Solvers: one :func:`solve` entry point over every problem's exact and heuristic methods.

Each problem contributes ``solvers/exact/<key>/`` and ``solvers/heuristics/<key>.py``, each exposing
``METHODS: list[MethodSpec]``. This layer knows no learner: the front (:mod:`mecopt.methods`) merges these methods
with the learned ones and passes a resolved :class:`MethodSpec` to :func:`solve`. A method is a
function ``fn(inst, opts) -> MethodOutput`` returning a decision, a status and (for exact methods) a proven
bound. :func:`solve` times it, recomputes the objective with the problem's ``evaluate`` (never trusting the
method's own number), computes the gap to the bound and downgrades any ``optimal`` claim that the recomputed
gap does not support.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
import time
import traceback
from typing import Any

from mecopt.core import (
    NO_DECISION_STATUSES,
    OPTIMALITY_TOL,
    STATUSES,
    InvalidInputError,
    MecoptError,
    MethodOutput,
    NotAttemptedError,
    SolveOptions,
    SolveResult,
    nonfinite_term,
    relative_gap,
)
from mecopt.registry import get_problem
from mecopt.spec import MethodSpec, ProblemSpec


def _module_methods(modname: str) -> list[MethodSpec]:
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name == modname:
            return []
        raise
    return list(getattr(mod, "METHODS", []))


def methods_for(key: str) -> dict[str, MethodSpec]:
    """The exact and heuristic methods of problem ``key`` by name: exact first, then heuristics."""
    return dict(_methods(key))


@functools.cache
def _methods(key: str) -> dict[str, MethodSpec]:
    get_problem(key)
    specs = _module_methods(f"solvers.exact.{key}") + _module_methods(f"solvers.heuristics.{key}")
    out: dict[str, MethodSpec] = {}
    for s in specs:
        if s.name in out:
            raise RuntimeError(f"{key}: method {s.name!r} declared twice")
        out[s.name] = s
    return out


def get_method(key: str, name: str) -> MethodSpec:
    methods = methods_for(key)
    if name not in methods:
        raise InvalidInputError(f"{key}: unknown method {name!r}; choose from {list(methods)}")
    return methods[name]


def trivial_bound(spec: ProblemSpec, inst: Any) -> float | None:
    """The problem's cheap valid bound (optional ``trivial_bound(inst)`` of its module), or None without one."""
    fn = getattr(sys.modules.get(spec.Instance.__module__), "trivial_bound", None)
    if fn is None:
        return None
    try:
        value = float(fn(inst))
    except (ArithmeticError, ValueError):
        return None
    return value if math.isfinite(value) else None


def finish(
    spec: ProblemSpec,
    inst: Any,
    method: str,
    out: MethodOutput,
    wall: float,
    opts: SolveOptions,
    seed: int | None,
) -> SolveResult:
    """Turn a method's output into a checked SolveResult (objective recomputed by ``evaluate``).

    * ``optimal`` stands only when the recomputed gap to the method's bound is <= OPTIMALITY_TOL, whatever
      ``opts.mip_gap`` asked for (a looser ``--gap`` only lets the search stop early: the status is then
      ``feasible``);
    * ``not_attempted`` (a method declining the instance) keeps its reason in ``message`` and no decision;
    * a ``time_limit`` result without a bound gets the problem's trivial bound (if it has one);
    * a bound that the evaluated objective violates, an infeasible decision, or an evaluation that is not finite
      turns the result into ``error`` (never a feasible result with a non-finite objective).
    """
    status: str = out.status if out.status in STATUSES else "error"
    message = out.message or ("" if out.status in STATUSES else f"method returned an unknown status {out.status!r}")
    bound = out.bound
    if bound is not None and not (isinstance(bound, (int, float)) and math.isfinite(bound)):
        bound = None
    if status == "time_limit" and bound is None:
        bound = trivial_bound(spec, inst)
    if out.decision is None or status == "not_attempted":
        if status not in NO_DECISION_STATUSES and status != "time_limit":
            status = "error"
        default = {
            "not_attempted": "method declined the instance",
            "time_limit": "time limit reached before any feasible decision",
        }.get(status, "method returned no decision")
        return SolveResult.failure(
            spec.key,
            method,
            spec.sense,
            message or default,
            wall_time_s=wall,
            status=status,  # type: ignore[arg-type]
            bound=None if status == "not_attempted" else bound,
            seed=seed,
            info=out.info,
        )
    dec = out.decision
    try:
        metrics = spec.evaluate(inst, dec)
    except (ArithmeticError, InvalidInputError) as e:  # a Python float overflow, or a malformed decision
        return SolveResult.failure(
            spec.key,
            method,
            spec.sense,
            f"evaluation of the method's decision failed: {type(e).__name__}: {e}",
            wall_time_s=wall,
            seed=seed,
            info=out.info,
        )
    term = nonfinite_term(metrics)
    if term is not None:
        return SolveResult.failure(
            spec.key,
            method,
            spec.sense,
            f"evaluation overflowed: {term} is not finite (objective {metrics.objective!r}); "
            "the instance's values are outside the range the model can evaluate",
            wall_time_s=wall,
            seed=seed,
            info={**out.info, "nonfinite_term": term},
        )
    obj = metrics.objective
    gap = relative_gap(obj, bound, spec.sense)
    if not metrics.feasible:
        status = "error"
        message = "method returned an infeasible decision: " + "; ".join(metrics.violations[:3])
    elif status == "infeasible":
        status = "error"
        message = "method claimed the instance infeasible but returned a feasible decision"
    if bound is not None and metrics.feasible:
        tol = 1e-7 * max(1.0, abs(obj))
        if (spec.sense == "min" and obj < bound - tol) or (spec.sense == "max" and obj > bound + tol):
            status = "error"
            message = f"reported bound {bound!r} is violated by the evaluated objective {obj!r}"
    if status == "optimal" and (gap is None or gap > OPTIMALITY_TOL):
        status = "feasible"
        message = f"solver claimed optimal but the recomputed gap is {gap!r} (> {OPTIMALITY_TOL:g})"
    return SolveResult(
        problem=spec.key,
        method=method,
        sense=spec.sense,
        objective=obj,
        status=status,  # type: ignore[arg-type]
        bound=bound,
        gap=gap,
        wall_time_s=wall,
        decision=dec.to_dict(),
        seed=seed,
        feasible=metrics.feasible,
        metrics={k: v for k, v in metrics.to_dict().items() if k not in ("objective", "feasible")},
        info=out.info,
        message=message,
    )


def solve(
    key: str,
    inst: Any,
    method: str | MethodSpec,
    options: SolveOptions | None = None,
    *,
    seed: int | None = None,
) -> SolveResult:
    """Solve ``inst`` of problem ``key`` with ``method``; never raises for a solver failure (status 'error').

    ``method`` is a method name of this layer (exact or heuristic) or an already resolved :class:`MethodSpec` (the
    front resolves learned methods and passes them here). ``seed`` is the instance's seed, recorded in the result
    (methods draw from ``options.seed``).
    """
    opts = options or SolveOptions()
    spec = get_problem(key)
    m = method if isinstance(method, MethodSpec) else get_method(key, method)
    t0 = time.perf_counter()
    try:
        out = m.fn(inst, opts)
    except NotAttemptedError as e:
        wall = time.perf_counter() - t0
        return SolveResult.failure(key, m.name, spec.sense, str(e), wall_time_s=wall, status="not_attempted", seed=seed)
    except MecoptError as e:
        return SolveResult.failure(key, m.name, spec.sense, str(e), wall_time_s=time.perf_counter() - t0, seed=seed)
    except Exception as e:  # a bug or a backend failure: report, do not crash a benchmark run
        return SolveResult.failure(
            key,
            m.name,
            spec.sense,
            f"{type(e).__name__}: {e}",
            wall_time_s=time.perf_counter() - t0,
            seed=seed,
            info={"traceback": traceback.format_exc(limit=3)},
        )
    return finish(spec, inst, m.name, out, time.perf_counter() - t0, opts, seed)


__all__ = [
    "MethodSpec",
    "methods_for",
    "get_method",
    "solve",
    "finish",
    "trivial_bound",
    "SolveOptions",
    "MethodOutput",
]
