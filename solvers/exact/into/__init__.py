"""Exact methods for INTO (one slot of IMP, eq. 12): wiring of the certified solvers into ``METHODS``.

* ``exact`` / ``sets-milp`` and the horizon functions (``clairvoyant``, ``myopic``, ``rollout``) live in
  :mod:`.structured` (admissible uploader sets per cell, best-first search with an exact packing oracle, the
  assignment MILP on HiGHS; proofs in docs/problems/into.md, section "Exact method").
* ``pyomo-scip`` is the literal MINLP of eqs. (2)-(12) of :mod:`.model` solved by SCIP (independent cross-check).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from mecopt.core import Deadline, MethodOutput, SolveOptions
from mecopt.problems.into import Instance, decision_from_targets
from mecopt.spec import MethodSpec
from solvers.exact.into.model import build_model
from solvers.exact.into.structured import (
    GHZ,
    MILP_FALLBACK_COMBOS,
    MILP_MAX_ASSIGN_VARS,
    CellSets,
    EnumerationTimeout,
    HorizonResult,
    MilpResult,
    best_first,
    brute_force,
    cell_sets,
    clairvoyant,
    myopic,
    pack,
    rollout,
    solve_slot,
    solve_slot_milp,
)
from solvers.pyomo_backend import Backend, solve_model


def solve_pyomo_scip(inst: Instance, opts: SolveOptions) -> MethodOutput:
    deadline = Deadline.of(opts)
    m = build_model(inst)
    out = solve_model(m, Backend.SCIP, opts, deadline)
    info = {
        "solver_message": out.solver_message,
        "scip_objective": out.objective,
        "scip_wall_s": out.wall_time_s,
    }
    if out.objective is None:
        return MethodOutput(None, out.status, out.bound, info)  # type: ignore[arg-type]
    target = np.full(inst.K, -1, dtype=np.int64)
    for k in range(inst.K):
        if pyo.value(m.o[k]) > 0.5:
            target[k] = max((b for b in range(inst.N) if (k, b) in m.KB), key=lambda b: pyo.value(m.y[k, b]))
    dec = decision_from_targets(inst, target)
    return MethodOutput(dec, out.status, out.bound, info)


METHODS: list[MethodSpec] = [
    MethodSpec(
        "exact",
        "exact",
        solve_slot,
        "admissible uploader sets per cell (interference is downward closed) + min CPU of eq. (18); "
        "best-first over set combinations with an exact packing oracle, assignment MILP (HiGHS) fallback",
        certified=True,
    ),
    MethodSpec(
        "sets-milp",
        "exact",
        solve_slot_milp,
        "admissible uploader sets + assignment MILP (HiGHS) without the best-first search, certified",
        certified=True,
    ),
    MethodSpec(
        "pyomo-scip",
        "exact",
        solve_pyomo_scip,
        "literal MINLP of eqs. (2)-(12) solved by SCIP (0.25-14 s per bench small instance, median 0.7 s)",
        certified=True,
    ),
]


__all__ = [
    "GHZ",
    "METHODS",
    "MILP_FALLBACK_COMBOS",
    "MILP_MAX_ASSIGN_VARS",
    "CellSets",
    "EnumerationTimeout",
    "HorizonResult",
    "MilpResult",
    "best_first",
    "brute_force",
    "build_model",
    "cell_sets",
    "clairvoyant",
    "myopic",
    "pack",
    "rollout",
    "solve_pyomo_scip",
    "solve_slot",
    "solve_slot_milp",
]
