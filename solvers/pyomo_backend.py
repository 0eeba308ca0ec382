"""Run a Pyomo model on HiGHS (MILP/LP, via APPSI) or SCIP (MINLP, via ``scip_direct``) and report a certified
result: status, incumbent objective and proven bound, with the solver's own numbers.

Options are mapped per backend by explicit functions (no option names matched on strings).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import pyomo.environ as pyo

from mecopt.core import Deadline, SolveOptions, SolverError, Status


class Backend(Enum):
    HIGHS = "highs"
    """HiGHS through Pyomo's APPSI interface: linear (MI)LP only."""
    SCIP = "scip"
    """SCIP through Pyomo's scip_direct: global MINLP (nonconvex quadratic / general nonlinear)."""


@dataclass
class PyomoOutcome:
    status: Status
    objective: float | None
    bound: float | None
    wall_time_s: float
    solver_message: str


def _highs(model: pyo.ConcreteModel, opts: SolveOptions) -> PyomoOutcome:
    from pyomo.contrib.appsi.base import TerminationCondition as TC
    from pyomo.contrib.appsi.solvers import Highs

    solver = Highs()
    if not solver.available():
        raise SolverError("HiGHS (highspy) is not available")
    if opts.time_limit is not None:
        solver.config.time_limit = float(opts.time_limit)
    solver.config.mip_gap = float(opts.mip_gap)
    solver.config.load_solution = False
    solver.config.stream_solver = bool(opts.verbose)
    # HiGHS keeps one thread scheduler per process and refuses a later, different thread count (every solve then
    # ends 'unknown'), so every HiGHS use in mecopt runs with threads=1 (its MIP search is serial anyway).
    solver.highs_options = {
        "threads": 1,
        "random_seed": int(opts.seed) % 2147483647,
        "mip_abs_gap": 0.0,
    }
    t0 = time.perf_counter()
    res = solver.solve(model)
    wall = time.perf_counter() - t0
    tc = res.termination_condition
    obj = res.best_feasible_objective
    bound = res.best_objective_bound
    has_sol = obj is not None and math.isfinite(obj)
    if has_sol:
        res.solution_loader.load_vars()
    if tc == TC.optimal:
        status: Status = "optimal"
    elif tc == TC.maxTimeLimit:
        status = "time_limit"
    elif tc in (TC.infeasible, TC.infeasibleOrUnbounded):
        status = "infeasible"
    else:
        status = "feasible" if has_sol else "error"
    return PyomoOutcome(status, obj if has_sol else None, _finite(bound), wall, str(tc))


def _scip_solver(deadline: Deadline) -> Any:
    """Pyomo's SCIP interface (``ScipDirect``) with the time limit taken from ``deadline`` *after* Pyomo has
    translated the model: the translation of a nonlinear model takes several times as long as building it and runs
    outside SCIP's clock (a 1 s limit overran to 2 s on the djtcra paper preset when SCIP got the whole limit)."""
    from pyomo.contrib.solver.solvers.scip.scip_direct import ScipDirect

    class DeadlineScip(ScipDirect):  # type: ignore[misc]
        def _create_solver_model(self, pyomo_model: Any, config: Any) -> Any:
            out = super()._create_solver_model(pyomo_model, config)
            if deadline.limit is not None:
                config.time_limit = max(_MIN_LIMIT_S, deadline.remaining())
            return out

    return DeadlineScip()


#: the smallest limit handed to a back-end (both need a positive one); with the budget spent a solver still returns
#: its (possibly empty) incumbent and bound
_MIN_LIMIT_S = 0.01


def _scip(model: pyo.ConcreteModel, opts: SolveOptions, deadline: Deadline) -> PyomoOutcome:
    from pyomo.contrib.solver.common.results import SolutionStatus
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    solver = _scip_solver(deadline)
    if not solver.available():
        raise SolverError("SCIP (pyscipopt) is not available")
    options: dict[str, float | int] = {
        "limits/gap": float(opts.mip_gap),
        "limits/absgap": 0.0,
        "parallel/maxnthreads": int(opts.threads),
        "randomization/randomseedshift": int(opts.seed) % 2147483647,
    }
    if not opts.verbose:
        # pyscipopt holds the GIL while SCIP runs, so Pyomo's output-capture thread cannot drain the pipe: a
        # log over the pipe buffer (~64 KB, long B&B runs) deadlocks the process. Silence SCIP unless verbose.
        options["display/verblevel"] = 0
    t0 = time.perf_counter()
    res = solver.solve(
        model,
        time_limit=deadline.limit_or_none(_MIN_LIMIT_S),
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        tee=bool(opts.verbose),
        solver_options=options,
    )
    wall = time.perf_counter() - t0
    tc = res.termination_condition
    obj, bound = _finite(res.incumbent_objective), _finite(res.objective_bound)
    has_sol = res.solution_status != SolutionStatus.noSolution and obj is not None
    if has_sol:
        res.solution_loader.load_vars()
    if tc == TC.convergenceCriteriaSatisfied:
        status: Status = "optimal"
    elif tc == TC.maxTimeLimit:
        status = "time_limit"
    elif tc in (TC.provenInfeasible, TC.locallyInfeasible, TC.infeasibleOrUnbounded):
        status = "infeasible"
    else:
        status = "feasible" if has_sol else "error"
    return PyomoOutcome(status, obj if has_sol else None, bound, wall, str(tc))


def _finite(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _sense(model: pyo.ConcreteModel) -> int:
    objs = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objs) != 1:
        raise SolverError(f"model must have exactly one active objective, found {len(objs)}")
    return objs[0].sense


def solve_model(
    model: pyo.ConcreteModel, backend: Backend, opts: SolveOptions, deadline: Deadline | None = None
) -> PyomoOutcome:
    """Solve ``model`` in place (variable values loaded when a solution exists).

    ``deadline``: the method's budget, started before the model was built (default: ``opts.time_limit`` from now).
    The back-end gets only what is left of it; SCIP gets what is left after Pyomo's translation of the model."""
    if deadline is None:
        deadline = Deadline.of(opts)
    if backend is Backend.SCIP:
        return _scip(model, opts, deadline)
    return _highs(model, replace(opts, time_limit=deadline.limit_or_none(_MIN_LIMIT_S)))
