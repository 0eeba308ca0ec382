"""INTO's action refinement (Algorithm 1, steps 2-8; eqs. 16-18): a numpy-only kernel shared by the environment
(:mod:`mecopt.envs.into`) and the heuristics (:mod:`solvers.heuristics.into`).

Work on targets (target[k] = BS running task k, -1 = discarded). Choices the paper leaves open are decisions D6 and
D16 of docs/problems/into.md.
"""

from __future__ import annotations

import numpy as np

from mecopt.problems.into import TOL, Instance, min_cpu, rate


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
