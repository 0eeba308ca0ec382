"""Solvers: one :func:`solve` entry point over every problem's exact, heuristic and learned methods.

Each problem contributes ``solvers/exact/<key>.py`` and ``solvers/heuristics/<key>.py``, each exposing
``METHODS: list[MethodSpec]``; learned methods come from :mod:`learners` (committed checkpoints). A method is a
function ``fn(inst, opts) -> MethodOutput`` returning a decision, a status and (for exact methods) a proven
bound. :func:`solve` times it, recomputes the objective with the problem's ``evaluate`` (never trusting the
method's own number), computes the gap to the bound and downgrades any ``optimal`` claim that the recomputed
gap does not support.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mecopt.core import (
    OPTIMALITY_TOL,
    InvalidInputError,
    MecoptError,
    MethodOutput,
    SolveOptions,
    SolveResult,
    relative_gap,
)
from mecopt.registry import ProblemSpec, get_problem

MethodKind = Literal["exact", "heuristic", "learned"]


@dataclass(frozen=True)
class MethodSpec:
    """One solution method of one problem."""

    name: str
    kind: MethodKind
    fn: Callable[[Any, SolveOptions], MethodOutput]
    description: str
    certified: bool = False
    """True when the method proves optimality (returns a bound)."""
    in_bench: bool = True
    """Whether the default ``pytest --benchmark`` run includes it."""


def _module_methods(modname: str) -> list[MethodSpec]:
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name == modname:
            return []
        raise
    return list(getattr(mod, "METHODS", []))


def methods_for(key: str, *, include_learned: bool = True) -> dict[str, MethodSpec]:
    """All methods of problem ``key`` by name: exact first, then heuristics, then learned policies."""
    get_problem(key)
    specs = _module_methods(f"solvers.exact.{key}") + _module_methods(f"solvers.heuristics.{key}")
    if include_learned:
        try:
            from learners.registry import learned_methods
        except ModuleNotFoundError as e:
            if e.name not in ("learners.registry", "learners"):
                raise
        else:
            specs += learned_methods(key)
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
        return SolveResult(
            spec.key,
            method,
            spec.sense,
            None,
            out.status if out.status in ("infeasible", "error", "time_limit") else "error",
            out.bound,
            None,
            wall,
            None,
            seed,
            None,
            {},
            out.info,
            "method returned no decision",
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
    key: str, inst: Any, method: str, options: SolveOptions | None = None, *, seed: int | None = None
) -> SolveResult:
    """Solve ``inst`` of problem ``key`` with ``method``; never raises for a solver failure (status 'error').

    ``seed`` is the instance's seed, recorded in the result (methods draw from ``options.seed``).
    """
    opts = options or SolveOptions()
    spec = get_problem(key)
    m = get_method(key, method)
    t0 = time.perf_counter()
    try:
        out = m.fn(inst, opts)
    except MecoptError as e:
        wall = time.perf_counter() - t0
        return SolveResult(key, method, spec.sense, None, "error", None, None, wall, None, seed, None, {}, {}, str(e))
    except Exception as e:  # a bug or a backend failure: report, do not crash a benchmark run
        wall = time.perf_counter() - t0
        tb = traceback.format_exc(limit=3)
        return SolveResult(
            key,
            method,
            spec.sense,
            None,
            "error",
            None,
            None,
            wall,
            None,
            seed,
            None,
            {},
            {"traceback": tb},
            f"{type(e).__name__}: {e}",
        )
    wall = time.perf_counter() - t0
    return finish(spec, inst, method, out, wall, opts, seed)


__all__ = ["MethodSpec", "methods_for", "get_method", "solve", "finish", "SolveOptions", "MethodOutput"]
