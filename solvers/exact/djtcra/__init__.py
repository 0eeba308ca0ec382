"""Exact methods of DJTCRA P1 (eqs. 12-16): wiring of the certified solvers into ``METHODS``.

* ``exact`` -- the structured, certified method (:mod:`.structured`): branch and bound over the task allocation y
  with Lagrangian bounds; P2 (eq. 17) per server by the sigmoidal-programming branch and bound of
  :mod:`solvers.kernels.djtcra_p2`.
* ``pyomo-scip`` -- the generic yardstick: the Pyomo MINLP of P1 (:mod:`.model`) solved by SCIP (``scip_direct``).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from mecopt.core import Deadline, InvalidInputError, MethodOutput, SolveOptions
from mecopt.problems.djtcra import Decision, Instance, evaluate
from mecopt.spec import MethodSpec
from solvers.exact.djtcra.model import build_model, build_p2_model
from solvers.exact.djtcra.structured import JointSolver
from solvers.kernels.djtcra_p2 import GHZ, f_val, make_terms, solve_p2
from solvers.pyomo_backend import Backend, solve_model


def _starts(inst: Instance) -> list[np.ndarray]:
    from solvers.heuristics.djtcra import assignment_daes, assignment_ga_aware

    return [assignment_ga_aware(inst), assignment_daes(inst), np.zeros(inst.U, dtype=np.int64)]


def solve_exact(inst: Instance, opts: SolveOptions) -> MethodOutput:
    if not isinstance(inst, Instance):
        raise InvalidInputError("djtcra: exact expects a djtcra Instance")
    js = JointSolver(inst, rel_gap=min(1e-7, max(opts.mip_gap, 1e-9)))
    res = js.solve(opts.time_limit, _starts(inst))
    y = np.asarray(res["y"], dtype=np.int64)
    dec = Decision(y=y, p=js.allocation(y))
    info = {k: res[k] for k in ("nodes", "root_bound", "p2_solves", "wall_s")}
    return MethodOutput(dec, res["status"], float(res["bound"]), info)


def solve_pyomo_scip(inst: Instance, opts: SolveOptions) -> MethodOutput:
    deadline = Deadline.of(opts)
    m = build_model(inst)
    out = solve_model(m, Backend.SCIP, opts, deadline)
    info = {"solver_message": out.solver_message, "model_objective": out.objective}
    if out.objective is None:
        return MethodOutput(None, out.status, out.bound, info)
    y = np.zeros(inst.U, dtype=np.int64)
    p = np.zeros(inst.U)
    for u in range(inst.U):
        o = max(range(inst.H + 1), key=lambda o: pyo.value(m.y[u, o]))
        y[u] = o
        if (u, o) in m.p:
            p[u] = max(pyo.value(m.p[u, o]), 0.0) * GHZ
    # the relaxed coupling can leave rounding-level overloads: scale each server back into C2 (eq. 14)
    cap = np.concatenate([[inst.rcs_speed], inst.P])
    for o in range(inst.H + 1):
        sel = y == o
        tot = p[sel].sum()
        if tot > cap[o]:
            p[sel] *= cap[o] / tot * (1 - 1e-12)
    dec = Decision(y=y, p=p)
    status = out.status
    if status == "optimal" and evaluate(inst, dec).objective < out.objective - 1e-6 * max(1.0, abs(out.objective)):
        status = "feasible"
    return MethodOutput(dec, status, out.bound, info)


METHODS: list[MethodSpec] = [
    MethodSpec(
        "exact",
        "exact",
        solve_exact,
        "structured: B&B over users with Lagrangian bounds + sigmoidal-programming B&B for P2 (certified)",
        certified=True,
        in_bench=True,
    ),
    MethodSpec(
        "pyomo-scip",
        "exact",
        solve_pyomo_scip,
        "Pyomo MINLP of P1 solved by SCIP (scip_direct)",
        certified=True,
        in_bench=False,
    ),
]


__all__ = [
    "GHZ",
    "METHODS",
    "JointSolver",
    "build_model",
    "build_p2_model",
    "f_val",
    "make_terms",
    "solve_exact",
    "solve_p2",
    "solve_pyomo_scip",
]
