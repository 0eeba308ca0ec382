"""Certified exact methods of DTAC (problem (13) of Han et al., Section II), one round.

* ``exact``: the structure-exploiting best-first search of :mod:`solvers.exact.dtac.structured` (enumeration of
  the offloading vector by a cheap valid bound, convex core by Lagrange multipliers / Lambert W, branch and
  bound on interfered powers), warm-started by the all-local/all-edge/all-cloud decisions and the greedy
  heuristic.
* ``pyomo-scip``: the whole round as one Pyomo MINLP (:func:`solvers.exact.dtac.model.build_model`) solved
  globally by SCIP.

Layout: ``structured.py`` (the algorithm), ``model.py`` (the Pyomo model), this file (method functions and
``METHODS``). The names tests and benchmarks import are re-exported here.
"""

from __future__ import annotations

from mecopt.core import Deadline, MethodOutput, SolveOptions
from mecopt.problems.dtac import Instance
from mecopt.spec import MethodSpec
from solvers.exact.dtac.model import build_model, decision_from_model
from solvers.exact.dtac.structured import (
    MAX_ENUM_N,
    CoreResult,
    Ctx,
    PartResult,
    all_offloading_vectors,
    channel_options,
    cheap_lower_bounds,
    make_ctx,
    partition_bnb,
    round_objective,
    search,
    sharing_lower_bound,
    simple_decisions,
    solve_core,
    solve_partition,
    trivial_lower_bound,
)
from solvers.heuristics.dtac import greedy
from solvers.pyomo_backend import Backend, solve_model


def solve_exact(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum by :func:`~solvers.exact.dtac.structured.search` within ``opts.time_limit``."""
    deadline = Deadline.of(opts)
    tol = max(float(opts.mip_gap), 1e-7)
    if inst.N > MAX_ENUM_N:
        return search(inst, deadline, tol, [])  # declines (not_attempted) before any work
    starts = simple_decisions(inst) + [greedy(inst, opts).decision]
    return search(inst, deadline, tol, starts)


def solve_pyomo_scip(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """The Pyomo MINLP of :mod:`solvers.exact.dtac.model`, SCIP global (SCIP owns the time limit)."""
    deadline = Deadline.of(opts)
    m = build_model(inst)
    out = solve_model(m, Backend.SCIP, opts, deadline)
    if out.objective is None:
        return MethodOutput(None, out.status, out.bound, {"message": out.solver_message})
    dec = decision_from_model(inst, m)
    return MethodOutput(
        dec,
        out.status,
        out.bound,
        {"scip_objective": out.objective, "message": out.solver_message, "wall_s": out.wall_time_s},
    )


METHODS: list[MethodSpec] = [
    MethodSpec(
        "exact",
        "exact",
        solve_exact,
        "enumerate x by cheap bound; convex core (Lagrange/Lambert W) + B&B on interfered powers",
        certified=True,
        in_bench=True,
    ),
    MethodSpec(
        "pyomo-scip",
        "exact",
        solve_pyomo_scip,
        "the round as one Pyomo MINLP, SCIP global",
        certified=True,
        in_bench=False,
    ),
]

__all__ = [
    "MAX_ENUM_N",
    "METHODS",
    "CoreResult",
    "Ctx",
    "PartResult",
    "all_offloading_vectors",
    "build_model",
    "channel_options",
    "cheap_lower_bounds",
    "decision_from_model",
    "make_ctx",
    "partition_bnb",
    "round_objective",
    "search",
    "sharing_lower_bound",
    "simple_decisions",
    "solve_core",
    "solve_exact",
    "solve_partition",
    "solve_pyomo_scip",
    "trivial_lower_bound",
]
