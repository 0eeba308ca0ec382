"""The one method list of the front (CLI and benchmarks): solver methods merged with learned policies.

:func:`solvers.methods_for` gives a problem's exact and heuristic methods and knows no learner;
:func:`learners.registry.learned_methods` turns committed checkpoints into methods. This module merges the two,
lazily (``learners`` and torch are imported only when a name is not a solver method, or when the full list is
asked for) and caches the learned list per problem and checkpoint folder state.
"""

from __future__ import annotations

from typing import Any

from mecopt.core import InvalidInputError, SolveOptions, SolveResult
from mecopt.spec import MethodSpec


def _learned(key: str) -> list[MethodSpec]:
    try:
        from learners.registry import learned_methods
    except ModuleNotFoundError as e:  # an install without the learners package
        if e.name not in ("learners.registry", "learners"):
            raise
        return []
    return learned_methods(key)


def all_methods(key: str, *, include_learned: bool = True) -> dict[str, MethodSpec]:
    """Every method of problem ``key`` by name: exact first, then heuristics, then learned policies."""
    from solvers import methods_for

    out = methods_for(key)
    if include_learned:
        for m in _learned(key):
            if m.name in out:
                raise RuntimeError(f"{key}: method {m.name!r} declared twice")
            out[m.name] = m
    return out


def get_method(key: str, name: str) -> MethodSpec:
    """Resolve one method name (solver methods first; the checkpoints are read only for other names)."""
    from solvers import methods_for

    solver_methods = methods_for(key)
    if name in solver_methods:
        return solver_methods[name]
    methods = all_methods(key)
    if name not in methods:
        raise InvalidInputError(f"{key}: unknown method {name!r}; choose from {list(methods)}")
    return methods[name]


def solve(
    key: str, inst: Any, method: str | MethodSpec, options: SolveOptions | None = None, *, seed: int | None = None
) -> SolveResult:
    """:func:`solvers.solve` for any method of the front, learned ones included."""
    from solvers import solve as solver_solve

    spec = method if isinstance(method, MethodSpec) else get_method(key, method)
    return solver_solve(key, inst, spec, options, seed=seed)


__all__ = ["all_methods", "get_method", "solve"]
