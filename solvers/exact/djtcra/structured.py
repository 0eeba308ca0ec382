"""The structured, certified solver of DJTCRA P1 (eqs. 12-16) for one slot.

The task allocation y by a depth-first branch and bound over users (each user: RCS or one ES), with a bound that
mixes a Lagrangian relaxation of the capacities (tabulated conjugates of the sigmoids, valid for any multiplier) and
the P2 bound of the users already assigned; P2 (eq. 17) is solved exactly at the leaves by the sigmoidal-programming
branch and bound of :mod:`solvers.kernels.djtcra_p2` and cached per (server, user set).

All internal CPU speeds are in GHz (x = p / 1e9) so that every quantity is O(1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit

from mecopt.core import OPTIMALITY_TOL, Deadline
from mecopt.problems.djtcra import Instance, coefficients, rcs_rule_slack
from solvers.kernels.djtcra_p2 import (
    GHZ,
    Envelope,
    P2Result,
    envelope,
    f_val,
    inflection,
    make_terms,
    relax,
    respond,
    solve_p2,
)

_GRID = 96  # multipliers tabulated per server for the Lagrangian bound


class JointSolver:
    """Certified solver of P1 for one slot: DFS over users (option 0 = RCS, h = ES h), P2 exact at leaves.

    Node bound (valid for every multiplier vector lam >= 0 on the capacities C2, eq. 14):
        sum_o [lam_o P^o + min(P2ub(A_o), sum_{u in A_o} phi_uo(lam_o))]
        + sum_{u unassigned} max_o phi_uo(lam_o) + QoE of the users assigned to a dedicated RCS,
    where A_o are the users already assigned to server o and phi_uo(lam) = max_{0<=p<=P^o} f_uo(p) - lam p
    (phi of the RCS option = its constant QoE when the RCS is dedicated, D4). Multipliers are restricted to a
    tabulated grid (so phi is exact, computed once) and chosen by coordinate descent per node (to convergence,
    warm-started from the parent). ``branching``: 'largest' (default: the free user with the largest best
    option value), 'ambiguous' (smallest gap between its two best options) or 'static' (fixed order).
    """

    def __init__(self, inst: Instance, *, rel_gap: float = 1e-7, p2_gap: float = 1e-9, branching: str = "largest"):
        self.inst = inst
        self.branching = branching
        self.rel_gap = rel_gap
        self.p2_gap = p2_gap
        co = coefficients(inst)
        self.U, self.H = inst.U, inst.H
        self.shared = co.rcs_shared
        self.servers = ([0] if self.shared else []) + list(range(1, inst.H + 1))  # capacitated options
        self.cap = {o: float(co.capacity[o]) / GHZ for o in self.servers}
        self.terms = {
            o: make_terms(inst.alpha, inst.beta, inst.Lmax, co.fixed[:, o], co.work[:, o]) for o in self.servers
        }
        self.rcs_const = (
            None
            if self.shared
            else inst.Lmax * expit(-inst.alpha * (co.fixed[:, 0] + co.work[:, 0] / co.capacity[0] - inst.beta))
        )
        self.cache: dict[tuple[int, frozenset[int]], P2Result] = {}
        self.relax_cache: dict[tuple[int, frozenset[int]], float] = {}
        self.quick_cache: dict[tuple[int, frozenset[int]], float] = {}
        self.p2_solves = 0
        # D17 ('if-better'): a user may be on the RCS only if it beats every ES at an equal share
        self.rule = inst.rcs_rule == "if-better"
        self.co = co
        # tabulated conjugates phi[o][u, g] and multipliers lam[o][g]
        self.lam: dict[int, np.ndarray] = {}
        self.phi: dict[int, np.ndarray] = {}
        self.xi: dict[int, np.ndarray] = {}
        self.env0: dict[int, Envelope] = {}
        for o in self.servers:
            t = self.terms[o]
            xi = inflection(t)
            e = envelope(t, xi, np.zeros(self.U), np.full(self.U, self.cap[o]))
            self.xi[o], self.env0[o] = xi, e
            smax = float(np.max(e.s)) if self.U else 1.0
            # smax = 0 (no user can gain anything here: extreme but valid instances) gives an all-zero grid
            grid = np.concatenate([[0.0], np.geomspace(smax * 1e-4, smax, _GRID - 1)]) if smax > 0 else np.zeros(_GRID)
            # all (user, multiplier) pairs in one vectorised call; row-major (g, u) order
            rep = np.tile(np.arange(self.U), _GRID)
            _, v = respond(t.take(rep), e.take(rep), np.repeat(grid, self.U))
            tab = np.maximum(v.reshape(_GRID, self.U).T, 0.0)  # p = 0 gives 0, so phi >= 0
            self.lam[o] = grid
            self.phi[o] = tab

    # -- P2
    # -----------------------------------------------------------------------------------------------------
    def p2(self, o: int, users: frozenset[int]) -> P2Result:
        key = (o, users)
        r = self.cache.get(key)
        if r is None:
            idx = sorted(users)
            r = solve_p2(
                self.terms[o].take(idx),
                self.cap[o],
                rel_gap=self.p2_gap,
                xi=self.xi[o][idx],
                env0=self.env0[o].take(idx),
            )
            self.cache[key] = r
            self.p2_solves += 1
        return r

    def p2_upper(self, o: int, users: frozenset[int]) -> float:
        r = self.cache.get((o, users))
        if r is not None:
            return r.upper
        v = self.relax_cache.get((o, users))
        if v is None:
            idx = sorted(users)
            v = relax(self.terms[o].take(idx), self.env0[o].take(idx), self.cap[o])[0] if idx else 0.0
            self.relax_cache[(o, users)] = v
        return v

    def p2_quick(self, o: int, users: frozenset[int]) -> float:
        """A quick lower bound of P2: the true value at the root relaxation's primal (or the exact value)."""
        r = self.cache.get((o, users))
        if r is not None:
            return r.lower
        v = self.quick_cache.get((o, users))
        if v is None:
            idx = sorted(users)
            if not idx:
                return 0.0
            t = self.terms[o].take(idx)
            ub, x = relax(t, self.env0[o].take(idx), self.cap[o])
            v = float(f_val(t, x).sum())
            self.relax_cache[(o, users)] = ub
            self.quick_cache[(o, users)] = v
        return v

    # -- RCS rule (D17)
    # ----------------------------------------------------------------------------------------------------
    def rule_ok(self, y: np.ndarray) -> bool:
        return not self.rule or bool(np.all(rcs_rule_slack(self.inst, y, self.co) >= 0))

    def repair(self, y: np.ndarray) -> np.ndarray:
        """Move RCS users that break the rule to the ES that serves them fastest at an equal share, until none does;
        every move only raises ES counts, which only relaxes the rule for the others, so this terminates."""
        y = np.asarray(y, dtype=np.int64).copy()
        if not self.rule:
            return y
        co = self.co
        while True:
            slack = rcs_rule_slack(self.inst, y, co)[0]
            bad = np.flatnonzero(slack < 0)
            if bad.size == 0:
                return y
            u = int(bad[0])
            n = np.bincount(y, minlength=self.H + 1)
            lat = co.fixed[u, 1:] + co.work[u, 1:] * (n[1:] + 1) / co.capacity[1:]
            y[u] = int(np.argmin(lat)) + 1

    def rule_can_hold(self, a: np.ndarray) -> bool:
        """False when a user fixed on the RCS breaks the rule even if every free user joined each ES (the rule
        only relaxes as ES counts grow and the RCS count shrinks), i.e. the node has no feasible leaf."""
        if not self.rule:
            return True
        rcs = np.flatnonzero(a == 0)
        if rcs.size == 0:
            return True
        co = self.co
        n = np.bincount(a[a >= 0], minlength=self.H + 1)
        free = int((a < 0).sum())
        es = co.fixed[rcs, 1:] + co.work[rcs, 1:] * (n[None, 1:] + free + 1) / co.capacity[None, 1:]
        n_rcs = n[0] if self.shared else 1
        lat = co.fixed[rcs, 0] + co.work[rcs, 0] * n_rcs / co.capacity[0]
        return bool(np.all(es.min(axis=1) >= lat))

    def quick_value(self, y: np.ndarray) -> float:
        v = 0.0 if self.shared else float(self.rcs_const[y == 0].sum())
        return v + sum(self.p2_quick(o, frozenset(np.flatnonzero(y == o).tolist())) for o in self.servers)

    def value(self, y: np.ndarray) -> tuple[float, float]:
        """(lower, upper) of the best allocation p for a full assignment y (P2 per server, eq. 17)."""
        lo = up = 0.0
        if not self.shared:
            c = float(self.rcs_const[y == 0].sum())
            lo += c
            up += c
        for o in self.servers:
            r = self.p2(o, frozenset(np.flatnonzero(y == o).tolist()))
            lo += r.lower
            up += r.upper
        return lo, up

    def allocation(self, y: np.ndarray) -> np.ndarray:
        p = np.zeros(self.U)
        for o in self.servers:
            idx = sorted(np.flatnonzero(y == o).tolist())
            if idx:
                p[idx] = self.p2(o, frozenset(idx)).x * GHZ
        return p

    # -- bound
    # ----------------------------------------------------------------------------------------------------
    def bound(self, a: np.ndarray, gidx: dict[int, int]) -> tuple[float, dict[int, int]]:
        """Node bound for the partial assignment a (-1 = free) minimised over the grid by coordinate
        descent."""
        free = np.flatnonzero(a < 0)
        fixed_part = 0.0
        if not self.shared:
            fixed_part += float(self.rcs_const[a == 0].sum())
        p2ub = {}
        phiA = {}
        for o in self.servers:
            A = np.flatnonzero(a == o)
            p2ub[o] = self.p2_upper(o, frozenset(A.tolist())) if A.size else 0.0
            phiA[o] = self.phi[o][A].sum(axis=0)  # (G,)
        base_free = self.rcs_const[free] if not self.shared else np.zeros(free.size)
        vals = {o: self.phi[o][free] for o in self.servers}  # (F, G)
        g = dict(gidx)

        def server_term(o: int) -> np.ndarray:
            return self.lam[o] * self.cap[o] + np.minimum(p2ub[o], phiA[o])

        def total(gg: dict[int, int]) -> float:
            best = base_free.copy()
            for o in self.servers:
                best = np.maximum(best, vals[o][:, gg[o]])
            return fixed_part + float(best.sum()) + sum(float(server_term(o)[gg[o]]) for o in self.servers)

        cur = total(g)
        for _ in range(200):
            improved = False
            for o in self.servers:
                other = base_free.copy()
                for q in self.servers:
                    if q != o:
                        other = np.maximum(other, vals[q][:, g[q]])
                rest = fixed_part + sum(float(server_term(q)[g[q]]) for q in self.servers if q != o)
                cand = rest + server_term(o) + np.maximum(other[:, None], vals[o]).sum(axis=0)
                j = int(np.argmin(cand))
                if cand[j] < cur - 1e-12:
                    cur = float(cand[j])
                    g[o] = j
                    improved = True
            if not improved:
                break
        return cur, g

    # -- search
    # ---------------------------------------------------------------------------------------------------
    def local_search(self, y: np.ndarray, deadline: Deadline) -> tuple[np.ndarray, float]:
        """First-improvement search over single-user moves, judged by the quick P2 values; exact at the
        end."""
        y = y.copy()
        best = self.quick_value(y)
        improved = True
        while improved and not deadline.expired():
            improved = False
            for u in range(self.U):
                for o in range(self.H + 1):
                    if o == y[u] or deadline.expired():
                        continue
                    z = y.copy()
                    z[u] = o
                    if not self.rule_ok(z):
                        continue
                    v = self.quick_value(z)
                    if v > best + 1e-12:
                        y, best, improved = z, v, True
        return y, self.value(y)[0]

    def solve(self, time_limit: float | None, starts: list[np.ndarray]) -> dict[str, Any]:
        deadline = Deadline(time_limit)
        # the starts' local search may use the first quarter of the budget
        quarter = Deadline(None if deadline.limit is None else 0.25 * deadline.limit, start=deadline.start)
        g0 = {o: 0 for o in self.servers}
        root_ub, g0 = self.bound(np.full(self.U, -1), g0)
        # Lagrangian start: every user takes its best option under the root multipliers
        opts_val = [self.rcs_const if not self.shared else np.full(self.U, -np.inf)]
        opts_val += [self.phi[o][:, g0[o]] if o in self.phi else np.full(self.U, -np.inf) for o in range(1, self.H + 1)]
        if self.shared:
            opts_val[0] = self.phi[0][:, g0[0]]
        y_lag = np.argmax(np.stack(opts_val, axis=1), axis=1).astype(np.int64)
        inc_y, inc = None, -math.inf
        for y0 in [y_lag, *starts]:
            y1, v1 = self.local_search(self.repair(np.asarray(y0, dtype=np.int64)), quarter)
            if v1 > inc:
                inc_y, inc = y1, v1
        # branching order: users whose options differ most first
        spread = np.zeros(self.U)
        stand = np.stack([self.phi[o][:, 0] for o in self.servers], axis=1)
        if not self.shared:
            stand = np.concatenate([self.rcs_const[:, None], stand], axis=1)
        srt = np.sort(stand, axis=1)
        spread = srt[:, -1] - (srt[:, -2] if srt.shape[1] > 1 else 0)
        order = np.argsort(-spread)
        closed = -math.inf  # max bound over fathomed nodes and leaves
        nodes = 0
        stack: list[tuple[int, np.ndarray, dict[int, int], float]] = [(0, np.full(self.U, -1), g0, root_ub)]
        timed_out = False
        while stack:
            if deadline.expired():
                timed_out = True
                break
            depth, a, g, parent_ub = stack.pop()
            nodes += 1
            if not self.rule_can_hold(a):
                continue  # D17: no leaf below is feasible
            if depth == self.U:
                relaxed = (0.0 if self.shared else float(self.rcs_const[a == 0].sum())) + sum(
                    self.p2_upper(o, frozenset(np.flatnonzero(a == o).tolist())) for o in self.servers
                )
                if relaxed <= inc + self.rel_gap * abs(inc):
                    closed = max(closed, relaxed)
                    continue
                lo, up = self.value(a)
                closed = max(closed, up)
                if lo > inc:
                    inc, inc_y = lo, a.copy()
                continue
            ub, g = self.bound(a, g) if depth > 0 else (parent_ub, g)
            ub = min(ub, parent_ub)
            if ub <= inc + self.rel_gap * abs(inc):
                closed = max(closed, ub)
                continue
            if self.branching == "static":
                u = int(order[depth])
            else:
                free = np.flatnonzero(a < 0)
                cols = [self.rcs_const[free] if not self.shared else self.phi[0][free, g[0]]]
                cols += [self.phi[o][free, g[o]] for o in range(1, self.H + 1)]
                srt = np.sort(np.stack(cols, axis=1), axis=1)
                if self.branching == "ambiguous":
                    u = int(free[np.argmin(srt[:, -1] - srt[:, -2])])
                else:  # "largest": the user with the largest best value
                    u = int(free[np.argmax(srt[:, -1])])
            scores = []
            for o in range(self.H + 1):
                if o in self.phi:
                    sc = self.phi[o][u, g[o]]
                else:
                    sc = self.rcs_const[u]
                scores.append((sc, o))
            scores.sort()
            for _, o in scores:  # pushed worst first so the best is explored first
                b = a.copy()
                b[u] = o
                stack.append((depth + 1, b, g, ub))
        open_ub = max([s[3] for s in stack], default=-math.inf)
        bound = max(inc, closed, open_ub)
        gap = (bound - inc) / max(abs(inc), 1e-12)
        # optimal only when proven (gap <= 1e-6); a search stopped early by a looser --gap is merely feasible
        status = "time_limit" if timed_out else ("optimal" if gap <= OPTIMALITY_TOL else "feasible")
        return {
            "y": inc_y,
            "objective": inc,
            "bound": bound,
            "status": status,
            "nodes": nodes,
            "root_bound": root_ub,
            "p2_solves": self.p2_solves,
            "wall_s": deadline.elapsed(),
        }
