"""The paper's benchmark assignments for DJTCRA (Section VI-A), each followed by a resource allocation.

Assignments: GA-Aware (each user to argmin_h eta_u^h), DAES (each user to its directly associated ES),
RCS-only
(every user to the remote cloud) and random. Allocation: the paper's resource allocation (P2, eq. 17, solved
to
proven optimality per server by the sigmoidal-programming branch and bound of ``solvers.kernels.djtcra_p2``) or an
equal share P^h / |U_h|. After allocating, a user whose latency on its ES is worse than on the RCS is moved
to the
RCS ("a user's task is further offloaded to the RCS if it can achieve higher QoS", Sec. III-A; D13) and the
allocation is redone, until no user moves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mecopt.core import InvalidInputError, MethodOutput, SolveOptions, make_rng
from mecopt.problems.djtcra import Decision, Instance, coefficients, equal_share, latencies, rcs_rule_slack
from mecopt.spec import MethodSpec
from solvers.kernels.djtcra_p2 import allocate_p2

Assign = Callable[[Instance, SolveOptions], np.ndarray]


def assignment_ga_aware(inst: Instance) -> np.ndarray:
    """GA-Aware: h* = argmin_h eta_u^h (Sec. VI-A, benchmark 5)."""
    return (np.argmin(inst.eta, axis=1) + 1).astype(np.int64)


def assignment_daes(inst: Instance) -> np.ndarray:
    """DAES: every task to the directly associated ES (benchmark 6)."""
    return (inst.ca + 1).astype(np.int64)


def assignment_rcs(inst: Instance) -> np.ndarray:
    """RCS-only: every task to the remote cloud server (y_u^h = 0 for all h)."""
    return np.zeros(inst.U, dtype=np.int64)


def assignment_random(inst: Instance, opts: SolveOptions) -> np.ndarray:
    rng = make_rng(opts.seed, "djtcra", "random")
    return rng.integers(0, inst.H + 1, size=inst.U).astype(np.int64)


def with_rcs_fallback(
    inst: Instance, y0: np.ndarray, allocate: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Allocate, move ES users whose latency exceeds their RCS latency to the RCS, re-allocate (D13)."""
    co = coefficients(inst)
    y = np.asarray(y0, dtype=np.int64).copy()
    moved = 0
    for _ in range(inst.U + 1):
        p = allocate(y)
        D = latencies(inst, y, p, co)
        if co.rcs_shared:
            n_rcs = int((y == 0).sum())
            rcs = co.fixed[:, 0] + co.work[:, 0] * (n_rcs + 1) / co.capacity[0]
        else:
            rcs = co.fixed[:, 0] + co.work[:, 0] / co.capacity[0]
        worse = (y > 0) & (D > rcs)
        if inst.rcs_rule == "if-better" and not worse.any():
            y_ok = _repair_rcs_rule(inst, y)
            if not np.array_equal(y_ok, y):
                y = y_ok
                continue
        if not worse.any():
            return y, p, moved
        y[worse] = 0
        moved += int(worse.sum())
        if inst.rcs_rule == "if-better":  # D17: undo moves the rule forbids (the exact solver's repair)
            y = _repair_rcs_rule(inst, y)
    return y, allocate(y), moved


def _repair_rcs_rule(inst: Instance, y: np.ndarray) -> np.ndarray:
    """D17: move RCS users that break the rule to the ES that serves them fastest at an equal share, until none does."""
    co = coefficients(inst)
    y = y.copy()
    while True:
        bad = np.flatnonzero(rcs_rule_slack(inst, y, co)[0] < 0)
        if bad.size == 0:
            return y
        u = int(bad[0])
        n = np.bincount(y, minlength=inst.H + 1)
        y[u] = int(np.argmin(co.fixed[u, 1:] + co.work[u, 1:] * (n[1:] + 1) / co.capacity[1:])) + 1


def _make(assign: Assign, alloc: str) -> Callable[[Instance, SolveOptions], MethodOutput]:
    def run(inst: Instance, opts: SolveOptions) -> MethodOutput:
        if not isinstance(inst, Instance):
            raise InvalidInputError("djtcra: heuristic expects a djtcra Instance")
        cert = [True]

        def allocate(y: np.ndarray) -> np.ndarray:
            if alloc == "equal":
                return equal_share(inst, y)
            p, ok = allocate_p2(inst, y, time_limit=opts.time_limit)
            cert[0] &= ok
            return p

        y, p, moved = with_rcs_fallback(inst, assign(inst, opts), allocate)
        info = {"moved_to_rcs": moved, "allocation": alloc}
        if alloc == "p2":
            info["p2_certified"] = cert[0]
        return MethodOutput(Decision(y=y, p=p), "feasible", None, info)

    return run


_ASSIGN: dict[str, tuple[Assign, str]] = {
    "ga-aware": (lambda inst, opts: assignment_ga_aware(inst), "GA-Aware: each user to argmin_h eta_u^h"),
    "daes": (lambda inst, opts: assignment_daes(inst), "DAES: each user to its directly associated ES"),
    "rcs-only": (lambda inst, opts: assignment_rcs(inst), "RCS-only: every user to the remote cloud"),
    "random": (assignment_random, "random option (RCS or an ES) per user"),
}

METHODS: list[MethodSpec] = []
for _name, (_fn, _desc) in _ASSIGN.items():
    METHODS.append(
        MethodSpec(
            _name,
            "heuristic",
            _make(_fn, "p2"),
            f"{_desc}; P2 (eq. 17) solved exactly per ES; RCS fallback (D13)",
        )
    )
    METHODS.append(
        MethodSpec(
            f"{_name}+equal",
            "heuristic",
            _make(_fn, "equal"),
            f"{_desc}; equal share P^h/|U_h|; RCS fallback (D13)",
        )
    )
