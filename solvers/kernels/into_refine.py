"""INTO's action refinement (Algorithm 1, steps 2-8; eqs. 16-18): a numpy-only kernel shared by the environment
(:mod:`mecopt.envs.into`) and the heuristics (:mod:`solvers.heuristics.into`).

Work on targets (target[k] = BS running task k, -1 = discarded). Choices the paper leaves open are decisions D6 and
D16 of docs/problems/into.md.
"""

from __future__ import annotations

import numpy as np

from mecopt.core import InvalidInputError
from mecopt.problems.into import TOL, Decision, Instance, decision_from_targets, min_cpu, rate, targets_of

#: How the CPU part f of an action is set: eq. (18)'s minimum scaled to fill each BS, or the agent's split.
CPU_MODES = ("min-scaled", "agent")


def task_state(inst: Instance, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(l per task at its target (eq. 18; 0 if discarded), energy p d^w (eq. 5), x) for a target vector."""
    x = (target >= 0).astype(float)
    nu = rate(inst, x[None, :])[0]
    lk = np.where(x > 0, min_cpu(inst, nu, np.where(x > 0, target, inst.bs)), 0.0)
    return lk, np.where(x > 0, inst.p * inst.z / nu, 0.0), x


def refine(inst: Instance, proto: np.ndarray) -> np.ndarray:
    """Algorithm 1 (steps 2-8) on a discrete proto-action ``proto`` (targets; step 1's nearest neighbour, eq. 15,
    is the identity for a discrete input): drop uploads violating (5) (eqs. 16-17), then at every BS drop the
    lowest-priority task (rho = g / l, eq. 18) while (10) fails; l is recomputed after each drop (D16)."""
    target = np.asarray(proto, dtype=np.int64).copy()
    _, en, x = task_state(inst, target)
    target[(x > 0) & (en > inst.Q * (1 + TOL) + 1e-15)] = -1  # eqs. (16)-(17)
    link = (inst.C[inst.bs, np.clip(target, 0, None)] > 0) | (target == inst.bs)
    target[(target >= 0) & ~link] = -1  # no wired link: cannot be peer-offloaded (D6)
    for b in range(inst.N):
        while True:
            lk, _, _ = task_state(inst, target)
            mine = np.flatnonzero(target == b)
            if mine.size == 0 or lk[mine].sum() <= inst.F[b] * (1 + TOL):
                break
            with np.errstate(divide="ignore"):
                rho = np.where(np.isfinite(lk[mine]), inst.g[mine] / lk[mine], 0.0)
            target[mine[int(np.argmin(rho))]] = -1
    return target


# ------------------------------------------------------------------------------------------------------------
# INTO's continuous proto-action (Section IV-B): per device k, proto[k] = (x_hat, y_hat_1..y_hat_N, w_hat) in
# [0, 1]^(N+2). (x_hat, y_hat) relax x (C1) and y (C2); w_hat is the device's weight in its BS's CPU split (the f
# part of the action, C4).
# ------------------------------------------------------------------------------------------------------------
def nearest_discrete(proto: np.ndarray, N: int) -> np.ndarray:
    """Eq. (15): the valid (C1-C3) discrete action nearest (Euclidean) to the (x_hat, y_hat) part of ``proto``.

    The valid actions of device k are "discard" (x = 0, y = 0) and "run on BS b" (x = 1, y = e_b). Squared
    distances: x_hat^2 + |y_hat|^2 and (1 - x_hat)^2 + |y_hat|^2 - 2 y_hat_b + 1; so the nearest is b* = argmax_b
    y_hat_b when x_hat + y_hat_b* > 1, else discard (ties: discard). Returns targets (-1 = discard)."""
    p = np.asarray(proto, dtype=float)
    if p.ndim != 2 or p.shape[1] < N + 1:
        raise InvalidInputError(f"nearest_discrete: proto must have shape (K, >= {N + 1}), got {p.shape}")
    b = np.argmax(p[:, 1 : N + 1], axis=1)
    run = p[:, 0] + p[np.arange(p.shape[0]), 1 + b] > 1.0
    return np.where(run, b, -1).astype(np.int64)


def split_cpu(inst: Instance, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The agent's CPU split (C4, eq. 10): BS b gives task k (target[k] = b) f = F_b w_k / sum of the w of b's tasks.

    ``weight`` (K,) is clipped to [1e-6, 1] (a zero weight would starve a task the agent chose to run). Returns
    f (K, N) with sum_k f[k, b] = F_b for every BS that runs a task, so (10) holds by construction; a task whose
    share is below its minimum l (eq. 18) misses its deadline (no income, eq. 11) -- the agent's choice."""
    target = np.asarray(target, dtype=np.int64)
    w = np.clip(np.asarray(weight, dtype=float), 1e-6, 1.0)
    f = np.zeros((inst.K, inst.N))
    for b in range(inst.N):
        mine = np.flatnonzero(target == b)
        if mine.size:
            f[mine, b] = inst.F[b] * w[mine] / w[mine].sum()
    return f


def decision_from_proto(inst: Instance, proto: np.ndarray, cpu: str = "agent") -> tuple[np.ndarray, Decision]:
    """INTO's full action from a proto-action (K, N+2): eq. (15) (:func:`nearest_discrete`), Algorithm 1 steps 2-8
    (:func:`refine`), then the CPU part f: ``"agent"`` = the proto-action's split (:func:`split_cpu`),
    ``"min-scaled"`` = eq. (18)'s minimum scaled to fill each BS (:func:`mecopt.problems.into.decision_from_targets`).
    Returns (refined targets, Decision); the Decision is feasible for IMP (eq. 12) by construction."""
    p = np.asarray(proto, dtype=float)
    if p.shape != (inst.K, inst.N + 2):
        raise InvalidInputError(f"decision_from_proto: proto must have shape (K={inst.K}, N+2), got {p.shape}")
    if cpu not in CPU_MODES:
        raise InvalidInputError(f"decision_from_proto: cpu must be one of {CPU_MODES}, got {cpu!r}")
    target = refine(inst, nearest_discrete(p, inst.N))
    if cpu == "min-scaled":
        return target, decision_from_targets(inst, target)
    x = (target >= 0).astype(np.int64)
    y = np.zeros((inst.K, inst.N), dtype=np.int64)
    y[np.flatnonzero(x), target[x > 0]] = 1
    return target, Decision(x=x, y=y, f=split_cpu(inst, target, p[:, inst.N + 1]))


def proto_from_decision(inst: Instance, dec: Decision) -> np.ndarray:
    """The proto-action (K, N+2) that encodes a decision exactly: x = 1 and y = one-hot of the running BS for every
    uploaded task, w = its CPU share f / F of that BS (0 for the rest). Inverse of :func:`decision_from_proto` on
    feasible decisions (used to check that Alg. 1 keeps a good proto-action's information)."""
    t = targets_of(inst, dec)
    run = t >= 0
    proto = np.zeros((inst.K, inst.N + 2))
    proto[run, 0] = 1.0
    proto[np.flatnonzero(run), 1 + t[run]] = 1.0
    proto[run, inst.N + 1] = np.asarray(dec.f).sum(1)[run] / inst.F[t[run]]
    return proto
