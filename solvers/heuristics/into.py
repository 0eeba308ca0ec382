"""Heuristics for one INTO slot: the paper's baselines OLNPO and LPWPO (Section V-B), the fast action
refinement of
Algorithm 1 applied to "offload everything" and to a random proto-action, and a global priority greedy.

All of them work on targets (target[k] = BS running task k, -1 = discarded) and turn them into a full
decision with
:func:`mecopt.problems.into.decision_from_targets` (CPU = minimum CPU of eq. (18), scaled to fill the BS).
The priority is rho = g / l of eq. (18). Choices the paper leaves open are decisions D14-D16 of
docs/problems/into.md.
"""

from __future__ import annotations

import numpy as np

from mecopt.core import MethodOutput, SolveOptions, make_rng
from mecopt.problems.into import TOL, Instance, decision_from_targets, min_cpu, rate
from mecopt.spec import MethodSpec
from solvers.kernels.into_refine import refine, task_state


def feasible(inst: Instance, target: np.ndarray, *, cpu_scale: float = 1.0) -> bool:
    """True when every uploaded task can meet its deadline (eq. 18 finite, C4), meets (5), and (10) holds.

    ``cpu_scale`` multiplies every BS's capacity F (a large value asks "would it fit with unlimited CPU?") without
    building a new Instance (whose validated ranges the scaled F may leave)."""
    lk, en, x = task_state(inst, target)
    if np.any(~np.isfinite(lk)):
        return False
    if np.any(en > inst.Q * (1 + TOL) + 1e-15):
        return False
    F = inst.F * cpu_scale
    if np.any(lk > F[np.clip(target, 0, inst.N - 1)] * (x > 0) + 0.0):
        return False
    load = np.bincount(np.clip(target, 0, None), weights=np.where(x > 0, lk, 0.0), minlength=inst.N)
    if np.any(load > F * (1 + TOL)):
        return False
    link = (inst.C[inst.bs, np.clip(target, 0, None)] > 0) | (target == inst.bs) | (target < 0)
    return bool(np.all(link))


def priority_alone(inst: Instance) -> np.ndarray:
    """rho = g / l (eq. 18) of each task uploaded alone to its own BS (alone); 0 if impossible (D14)."""
    K = inst.K
    nu = rate(inst, np.eye(K))[np.arange(K), np.arange(K)]
    lk = min_cpu(inst, nu, inst.bs)
    return np.where(np.isfinite(lk), inst.g / np.where(np.isfinite(lk), lk, 1.0), 0.0)


def _greedy(
    inst: Instance,
    order: np.ndarray,
    choices,
    target: np.ndarray | None = None,  # type: ignore[no-untyped-def]
) -> tuple[np.ndarray, list[int]]:
    """Admit tasks in ``order``; task k tries the BSs of ``choices(k)`` in turn and keeps the first that
    leaves the
    whole slot feasible. Returns the targets and the tasks that failed only because of capacity (10)."""
    target = np.full(inst.K, -1, dtype=np.int64) if target is None else target.copy()
    cap_rejected: list[int] = []
    for k in order:
        if target[k] >= 0:
            continue
        placed = False
        cap_only = False
        for b in choices(int(k)):
            target[k] = b
            if feasible(inst, target):
                placed = True
                break
            # would it fit with unlimited CPU? then capacity was the reason
            if feasible(inst, target, cpu_scale=1e6):
                cap_only = True
            target[k] = -1
        if not placed and cap_only:
            cap_rejected.append(int(k))
    return target, cap_rejected


def olnpo(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Only local, no peer offloading [21]: each BS serves only its own devices, best first (D14)."""
    rho = priority_alone(inst)
    order = np.argsort(-rho, kind="stable")
    order = order[rho[order] > 0]
    target, _ = _greedy(inst, order, lambda k: [int(inst.bs[k])])
    return MethodOutput(decision_from_targets(inst, target), "feasible", None, {})


def lpwpo(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Local priority with peer offloading: OLNPO first; a BS that could serve every own task it tried (no
    own task
    refused for capacity) then helps the others with the tasks they refused for capacity (D15)."""
    rho = priority_alone(inst)
    order = np.argsort(-rho, kind="stable")
    order = order[rho[order] > 0]
    target, rejected = _greedy(inst, order, lambda k: [int(inst.bs[k])])
    refused_bs = {int(inst.bs[k]) for k in rejected}
    helpers = [b for b in range(inst.N) if b not in refused_bs]
    if helpers and rejected:
        lk, _, _ = task_state(inst, target)
        spare = inst.F - np.bincount(np.clip(target, 0, None), weights=lk, minlength=inst.N)
        helpers.sort(key=lambda b: -spare[b])
        rej = sorted(rejected, key=lambda k: -rho[k])
        target, _ = _greedy(inst, np.array(rej, dtype=np.int64), lambda k: helpers, target)
    return MethodOutput(decision_from_targets(inst, target), "feasible", None, {"helpers": helpers})


def alg1_all(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Algorithm 1 applied to 'every device offloads to its own BS'."""
    target = refine(inst, inst.bs.astype(np.int64))
    return MethodOutput(decision_from_targets(inst, target), "feasible", None, {})


def random_refined(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """A uniformly random proto-action (discard or any BS per device) made valid by Algorithm 1."""
    rng = make_rng(opts.seed, "into", "random")
    proto = rng.integers(-1, inst.N, size=inst.K)
    return MethodOutput(decision_from_targets(inst, refine(inst, proto)), "feasible", None, {})


def greedy_peer(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Global greedy by priority (not in the paper): own BS first, then the others."""
    rho = priority_alone(inst)
    order = np.argsort(-rho, kind="stable")
    order = order[rho[order] > 0]

    def choices(k: int) -> list[int]:
        return [int(inst.bs[k])] + [b for b in range(inst.N) if b != inst.bs[k]]

    target, _ = _greedy(inst, order, choices)
    return MethodOutput(decision_from_targets(inst, target), "feasible", None, {})


METHODS: list[MethodSpec] = [
    MethodSpec("olnpo", "heuristic", olnpo, "OLNPO (Sec. V-B): own BS only, priority greedy"),
    MethodSpec("lpwpo", "heuristic", lpwpo, "LPWPO (Sec. V-B): own tasks first, idle BSs help"),
    MethodSpec("alg1-all", "heuristic", alg1_all, "Algorithm 1 refinement of 'offload everything to own BS'"),
    MethodSpec("random", "heuristic", random_refined, "random proto-action refined by Algorithm 1"),
    MethodSpec("greedy-peer", "heuristic", greedy_peer, "global priority greedy with peer offloading (ours)"),
]
