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
import time
import traceback
from typing import Any

from mecopt.core import (
    OPTIMALITY_TOL,
    InvalidInputError,
    MecoptError,
    MethodOutput,
    SolveOptions,
    SolveResult,
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


def finish(
    spec: ProblemSpec,
    inst: Any,
    method: str,
    out: MethodOutput,
    wall: float,
    opts: SolveOptions,
    seed: int | None,
) -> SolveResult:
    """Turn a method's output into a checked SolveResult (objective recomputed by ``evaluate``)."""
    dec = out.decision
    if dec is None:
        return SolveResult.failure(
            spec.key,
            method,
            spec.sense,
            "method returned no decision",
            wall_time_s=wall,
            status=out.status if out.status in ("infeasible", "error", "time_limit") else "error",
            bound=out.bound,
            seed=seed,
            info=out.info,
        )
    metrics = spec.evaluate(inst, dec)
    obj = metrics.objective
    status = out.status
    message = ""
    bound = out.bound
    gap = relative_gap(obj, bound, spec.sense)
    if not metrics.feasible:
        status = "error"
        message = "method returned an infeasible decision: " + "; ".join(metrics.violations[:3])
    if bound is not None and metrics.feasible:
        tol = 1e-7 * max(1.0, abs(obj))
        if (spec.sense == "min" and obj < bound - tol) or (spec.sense == "max" and obj > bound + tol):
            status = "error"
            message = f"reported bound {bound!r} is violated by the evaluated objective {obj!r}"
    if status == "optimal":
        allowed = max(OPTIMALITY_TOL, opts.mip_gap)
        if gap is None or gap > allowed:
            status = "feasible"
            message = f"solver claimed optimal but the recomputed gap is {gap!r} (> {allowed:g})"
    return SolveResult(
        problem=spec.key,
        method=method,
        sense=spec.sense,
        objective=obj,
        status=status,
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


__all__ = ["MethodSpec", "methods_for", "get_method", "solve", "finish", "SolveOptions", "MethodOutput"]
