"""Run a Pyomo model on HiGHS (MILP/LP, via APPSI) or SCIP (MINLP, via ``scip_direct``) and report a certified
result: status, incumbent objective and proven bound, with the solver's own numbers.

Options are mapped per backend by explicit functions (no option names matched on strings).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum

import pyomo.environ as pyo

from mecopt.core import SolveOptions, SolverError, Status


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
    solver.highs_options = {"threads": int(opts.threads), "random_seed": int(opts.seed) % 2147483647,
                            "mip_abs_gap": 0.0}
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


def _scip(model: pyo.ConcreteModel, opts: SolveOptions) -> PyomoOutcome:
    from pyomo.opt import TerminationCondition as TC

    solver = pyo.SolverFactory("scip_direct")
    if not solver.available():
        raise SolverError("SCIP (pyscipopt) is not available")
    options: dict[str, float | int] = {"limits/gap": float(opts.mip_gap), "limits/absgap": 0.0,
                                       "parallel/maxnthreads": int(opts.threads),
                                       "randomization/randomseedshift": int(opts.seed) % 2147483647}
    if opts.time_limit is not None:
        options["limits/time"] = float(opts.time_limit)
    t0 = time.perf_counter()
    res = solver.solve(model, options=options, load_solutions=False, tee=bool(opts.verbose))
    wall = time.perf_counter() - t0
    tc = res.solver.termination_condition
    lb, ub = _finite(res.problem.lower_bound), _finite(res.problem.upper_bound)
    minimize = _sense(model) == pyo.minimize
    obj, bound = (ub, lb) if minimize else (lb, ub)
    has_sol = len(res.solution) > 0 if hasattr(res, "solution") else obj is not None
    if has_sol:
        model.solutions.load_from(res)
    if tc == TC.optimal:
        status: Status = "optimal"
    elif tc == TC.maxTimeLimit:
        status = "time_limit"
    elif tc in (TC.infeasible, TC.infeasibleOrUnbounded):
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


def solve_model(model: pyo.ConcreteModel, backend: Backend, opts: SolveOptions) -> PyomoOutcome:
    """Solve ``model`` in place (variable values loaded when a solution exists)."""
    runners = {Backend.HIGHS: _highs, Backend.SCIP: _scip}
    return runners[backend](model, opts)
