"""Independent brute force for DTAC rounds (tests only): every (x, l) pair is enumerated, without the symmetry
and
dominance reductions of the exact method, and the continuous part (a, b, T) is solved by SLSQP from several
starts on the epigraph form of eq. (12), with objective and constraints computed by the problem's own
vectorized ``terms`` (not by the exact solver's convex core)."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

from mecopt.problems.dtac import Decision, Instance, terms

#: SLSQP starts, as fractions of log(a_min) (0 = full power/frequency)
STARTS: tuple[float, ...] = (0.0, 0.5)


def _continuous(inst: Instance, x: np.ndarray, l: np.ndarray) -> tuple[float, Decision]:
    N = inst.N
    lo = np.where(x == 0, np.log(inst.b_min), np.log(inst.a_min))
    X1, L1 = x[None], l[None]

    def unpack(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.exp(np.clip(th, lo, 0.0))
        a = np.where(x >= 1, v, 1.0)
        b = np.where(x == 0, v, 1.0)
        return a[None], b[None]

    def parts(z: np.ndarray) -> tuple[np.ndarray, float]:
        a, b = unpack(z[:N])
        t = terms(inst, X1, L1, a, b)
        return t.tau[0], float(t.E[0].sum())

    scale = 1.0
    best = (np.inf, None)
    for start in STARTS:
        th0 = lo * start
        tau0, _ = parts(np.append(th0, 0.0))
        scale = max(float(tau0.max()), 1e-9)
        z0 = np.append(th0, 1.0)  # T = scale * z[-1]

        def obj(z: np.ndarray, scale: float = scale) -> float:
            return inst.w1 * scale * z[-1] + inst.w2 * parts(z)[1]

        def cons(z: np.ndarray, scale: float = scale) -> np.ndarray:
            return (scale * z[-1] - parts(z)[0]) / scale

        res = minimize(
            obj,
            z0,
            method="SLSQP",
            bounds=[(lo[n], 0.0) for n in range(N)] + [(0.0, None)],
            constraints=[{"type": "ineq", "fun": cons}],
            options={"ftol": 1e-15, "maxiter": 500},
        )
        a, b = unpack(res.x[:N])
        d = Decision(x=x, l=l, a=a[0], b=b[0])
        val = float(terms(inst, X1, L1, a, b).objective[0])
        if val < best[0]:
            best = (val, d)
    return best


def brute_force(inst: Instance) -> tuple[float, Decision]:
    N = inst.N
    best: tuple[float, Decision | None] = (np.inf, None)
    for x in itertools.product((0, 1, 2), repeat=N):
        xa = np.array(x, dtype=np.int64)
        off = np.flatnonzero(xa >= 1)
        for chans in itertools.product(range(1, inst.L + 1), repeat=off.size):
            l = np.ones(N, dtype=np.int64)
            l[off] = chans
            val, d = _continuous(inst, xa, l)
            if val < best[0]:
                best = (val, d)
    return best  # type: ignore[return-value]
