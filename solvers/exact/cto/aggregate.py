"""Certified optimum of one CTO-TP target vector under the aggregate reading of eq. (8c) (D4).

With ``capacity='aggregate'`` the allocations a server serves must sum to <= its remaining resources C_st, so
Lemma 1 (full allocation kappa*C is optimal) no longer holds at a server that may host more than 1/kappa jobs
(its own local share and the shares offloaded to it). For one target vector (eq. 11) the problem is, in the
variables a (ratios, eq. 8e), t_j (computing time of job j), d_j (its allocation at its host), L_m (eq. 6) and
T_s (eq. 5):

    min  wL sum_m L_m + wE sum_s (P_min T_s + dP cycles_s(a) / C_s)                               eqs. (5)-(8a)
    s.t. L_m >= t_loc(m),  L_m >= phi_m a_m + t_rem(m)  (phi_m = F_m / (kappa B_mn log2(1+eta)))  eqs. (1)-(6)
         T_s >= t_j for every job j at s                                                       eq. (5)
         w_j(a) = d_j t_j,  0 <= d_j <= kappa C_s,  sum_{j at s} d_j <= C_s                    eqs. (3)-(4), (8c), (12)

(the bandwidth of m's link is used by m alone, so b_mn = kappa B_mn stays optimal, D6). At a host that can never
be overloaded (#jobs * kappa <= 1) d_j = kappa C_s is optimal and w_j <= kappa C_s t_j is linear. The bilinear
rows w_j = d_j t_j of the other hosts make the problem non-convex (it is not convex per target vector: the
allocation problem is convex only for fixed a). :func:`solve_target` solves it by spatial branch and bound
(best first) over boxes of (a_m, d_j): each node is an LP with the McCormick envelope of d_j t_j (t_j's box is
implied by the box of a and d: w_l/d_u <= t_j <= w_u/d_l), tangent rows of d_j >= w_l/t_j + (w_j - w_l)/t_u and
AM-GM rows (r d_j + t_j/r)/2 >= secant of sqrt(w_j) on [w_l, w_u] (both valid in the box, added at the LP point
for up to OA_ROUNDS LP rounds; they tighten the relaxation in the allocations, tight where the work is at an end
of its range, so the error left comes mostly from the work range, which branching on a_m first shrinks), the
valid cut sum_j w_j <= C_s T_s (a server computes at most C_s T_s cycles in T_s seconds) and reduced-cost
tightening of the box against the incumbent. HiGHS sees the LP scaled (times in units of the longest job,
tolerances 1e-9). Its lower bound is a Lagrangian bound computed here from the LP duals (valid for any
multiplier >= 0, so the LP solver's optimality claim is not trusted); its upper bound is the problem's own
objective of the LP point made feasible (allocations water-filled into the slack of (8c)). One target vector is
closed at a relative gap of TARGET_GAP (5e-7 < OPTIMALITY_TOL). A box whose LP HiGHS reports infeasible is
dropped (the one place the LP solver's word is taken; boxes are never empty by construction
except through the implied time bounds, which are checked here).

:func:`solvers.exact.cto.structured.search` calls it for the target vectors whose Lemma-1 optimum over-commits a
server; every other target vector is closed by the Lemma-1 LP (a relaxation of the aggregate problem whose optimum
is then feasible, hence optimal).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from mecopt.core import Deadline
from mecopt.problems.cto import Decision, Instance, costs_raw, evaluate, local_only, weights

#: Relative tolerance to which one target vector is closed (well inside mecopt.core.OPTIMALITY_TOL).
TARGET_GAP = 5e-7
#: Tangent (outer-approximation) rows per coupled job and LP rounds per box that add them.
OA_CUTS = 3
OA_ROUNDS = 2
#: AM-GM rows (r d' + t / r)/2 >= secant of sqrt(w) per coupled job (set per box like the tangents).
SOC_CUTS = 2
#: Branching: the owner's ratio is split before the allocation unless its box is A_WEIGHT times narrower.
A_WEIGHT = 10.0


@dataclass(frozen=True)
class Job:
    owner: int  # server m whose tasks these are
    host: int  # server s that computes them
    remote: bool  # False: m's local share (1 - a_m) D_m; True: the share a_m D_m offloaded to host


@dataclass
class TargetResult:
    value: float  # best objective found (inf if none below the cutoff)
    decision: Decision | None
    bound: float  # certified lower bound of this target vector's optimum (or >= cutoff when pruned)
    nodes: int
    timed_out: bool
    complete: bool = True  # False: stopped at max_nodes (the bound is then the least bound of the open boxes)


def jobs_of(inst: Instance, target: np.ndarray) -> list[Job]:
    out = []
    for m in range(inst.M):
        if inst.D[m] <= 0:
            continue
        out.append(Job(m, m, False))
        if target[m] > 0:
            out.append(Job(m, int(target[m]) - 1, True))
    return out


def coupled_hosts(inst: Instance, target: np.ndarray) -> list[int]:
    """Hosts whose jobs at full allocation kappa*C could exceed C (more than 1/kappa jobs): eq. (8c) may bind."""
    cnt = np.zeros(inst.M, dtype=int)
    for j in jobs_of(inst, target):
        cnt[j.host] += 1
    return [s for s in range(inst.M) if cnt[s] * inst.kappa > 1.0 + 1e-12]


def _lagrangian_bound(
    cost: np.ndarray, A: np.ndarray, u: np.ndarray, lo: np.ndarray, hi: np.ndarray, mu: np.ndarray, const: float
) -> float:
    """min over the box of cost.x + mu.(A x - u) (+ const): a lower bound of min{cost.x : A x <= u, box} for any
    mu >= 0 (weak duality), separable per coordinate."""
    red = cost + A.T @ mu
    return float(np.sum(np.minimum(red * lo, red * hi)) - mu @ u) + const


def _tighten(red: np.ndarray, bound: float, ub: float, lo: np.ndarray, hi: np.ndarray) -> None:
    """Reduced-cost tightening of the box (in place): every point of the box with objective <= ub satisfies
    bound + sum_i (red_i x_i - min(red_i lo_i, red_i hi_i)) <= ub, each term >= 0 (the Lagrangian of
    :func:`_lagrangian_bound`), so x_i <= lo_i + (ub - bound)/red_i for red_i > 0 (>= hi_i - ... for red_i < 0)."""
    slack = ub - bound
    if not math.isfinite(slack) or slack < 0:
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = red > 0
        hi[pos] = np.minimum(hi[pos], lo[pos] + slack / red[pos])
        neg = red < 0
        lo[neg] = np.maximum(lo[neg], hi[neg] + slack / red[neg])


class _TargetModel:
    """Variables x = (a_m for offloading m, t_j, d_j for coupled jobs, L_m, T_s); rows A x <= u."""

    def __init__(self, inst: Instance, target: np.ndarray, ub0: float):
        self.inst, self.target = inst, target
        M, k = inst.M, inst.kappa
        wL, wE = weights(inst)
        self.jobs = jobs_of(inst, target)
        self.coupled = set(coupled_hosts(inst, target))
        offl = [m for m in range(M) if target[m] > 0 and inst.D[m] > 0]
        self.ia = {m: i for i, m in enumerate(offl)}
        nA = len(offl)
        J = len(self.jobs)
        self.it = {j: nA + i for i, j in enumerate(range(J))}
        cj = [i for i, jb in enumerate(self.jobs) if jb.host in self.coupled]
        self.id = {j: nA + J + i for i, j in enumerate(cj)}
        busy = [m for m in range(M) if inst.D[m] > 0]
        self.iL = {m: nA + J + len(cj) + i for i, m in enumerate(busy)}
        hosts = sorted({jb.host for jb in self.jobs})
        self.iT = {s: nA + J + len(cj) + len(busy) + i for i, s in enumerate(hosts)}
        nv = nA + J + len(cj) + len(busy) + len(hosts)
        self.nv = nv
        dP = inst.P_max - inst.P_min
        cost = np.zeros(nv)
        for m in busy:
            cost[self.iL[m]] = wL
        for s in hosts:
            cost[self.iT[s]] = wE * inst.P_min
        for m in offl:
            n = int(target[m]) - 1
            cost[self.ia[m]] = wE * dP * inst.D[m] * (1.0 / inst.C_cap[n] - 1.0 / inst.C_cap[m])  # eq. (5), D2
        self.cost = cost
        self.const = wE * dP * float(np.sum(inst.D / inst.C_cap))
        self.wL, self.wE = wL, wE
        self.phi = {
            m: inst.F[m] / (k * inst.B_rem[m, int(target[m]) - 1] * inst.spectral_eff) for m in offl
        }  # eqs. (1)-(2) at b = kappa B
        # every point with objective <= ub0 has wL L_m <= ub0 and t_j <= L_m (T_s <= max t_j)
        self.tmax = ub0 / wL
        self.lo = np.zeros(nv)
        self.hi = np.full(nv, self.tmax)
        for m in offl:
            self.hi[self.ia[m]] = 1.0
        for i in self.id.values():
            self.hi[i] = 1.0  # d'_j = d_j / (kappa C_s)
        # fixed rows (everything but McCormick)
        rows: list[tuple[dict[int, float], float]] = []
        for j, jb in enumerate(self.jobs):
            m = jb.owner
            if not jb.remote:
                rows.append(({self.it[j]: 1.0, self.iL[m]: -1.0}, 0.0))  # eq. (6), local branch
            else:
                rows.append(({self.ia[m]: self.phi[m], self.it[j]: 1.0, self.iL[m]: -1.0}, 0.0))  # eq. (6)
            rows.append(({self.it[j]: 1.0, self.iT[jb.host]: -1.0}, 0.0))  # T_s = max computing time, eq. (5)
            if jb.host not in self.coupled:
                c0, c1 = self.work(j)
                row = {self.it[j]: -1.0}
                if c1:
                    row[self.ia[m]] = c1
                rows.append((row, -c0))  # w_j <= kappa C t_j: eqs. (3)-(4) at full allocation
        self.cap_rows: list[int] = []  # the rows of (8c) (dimensionless; every other row is in seconds)
        for s in self.coupled:
            self.cap_rows.append(len(rows))
            rows.append(({self.id[j]: 1.0 for j in self.id if self.jobs[j].host == s}, 1.0 / k))  # (8c) aggregate
            # valid cut: in T_s seconds server s computes at most C_s T_s cycles (sum_j w_j = sum_j d_j t_j
            # <= (sum_j d_j) T_s <= C_s T_s), i.e. sum_j w'_j <= T_s / kappa in units of kappa C_s
            row: dict[int, float] = {self.iT[s]: -1.0 / k}
            c0s = 0.0
            for j in self.id:
                if self.jobs[j].host == s:
                    c0, c1 = self.work(j)
                    c0s += c0
                    if c1:
                        i = self.ia[self.jobs[j].owner]
                        row[i] = row.get(i, 0.0) + c1
            rows.append((row, -c0s))
        self.fixed_rows = rows

    def work(self, j: int) -> tuple[float, float]:
        """w_j(a) = c0 + c1 a_owner: cycles of job j (eqs. 3-4) over kappa C_host (its time at full allocation)."""
        jb = self.jobs[j]
        D = float(self.inst.D[jb.owner]) / (self.inst.kappa * float(self.inst.C_rem[jb.host]))
        if jb.remote:
            return 0.0, D
        if jb.owner in self.ia:
            return D, -D
        return D, 0.0

    def work_range(self, j: int, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
        c0, c1 = self.work(j)
        if not c1:
            return c0, c0
        i = self.ia[self.jobs[j].owner]
        v = (c0 + c1 * lo[i], c0 + c1 * hi[i])
        return min(v), max(v)

    def _build(self) -> None:
        """One HiGHS LP: the fixed rows, then 4 McCormick rows per coupled job (coefficients set per node).

        HiGHS sees the LP scaled: y = x / s (s = tau on the time columns t, L, T; tau = the longest job time at
        full allocation) and every row in seconds divided by tau, so that its absolute feasibility tolerance is
        relative to the job times. (Unscaled, a violation of HiGHS's 1e-7 s on times of ~0.02 s was ~5e-6 of the
        objective: the duals were those of a perturbed LP and the certified bound stalled above TARGET_GAP.) Points
        and duals are mapped back, so the Lagrangian bound is computed on the unscaled rows."""
        import highspy

        rows = list(self.fixed_rows)
        self.mc: list[tuple[int, int, int, float, float, float]] = []  # (row, j, sign-index, ...) per McCormick row
        for j, idd in self.id.items():
            c0, c1 = self.work(j)
            m = self.jobs[j].owner
            for sign in (1.0, 1.0, -1.0, -1.0):
                row = {self.it[j]: -sign, idd: -sign}  # placeholders, overwritten per node
                if c1:
                    row[self.ia[m]] = sign * c1
                self.mc.append((len(rows), j, idd, sign, c0, c1))
                rows.append((row, 0.0))
        self.oa: dict[int, list[int]] = {}  # outer-approximation rows per coupled job (tangents, set per node)
        for j, idd in self.id.items():
            self.oa[j] = []
            for _ in range(OA_CUTS):
                self.oa[j].append(len(rows))
                rows.append(({idd: -1.0}, 0.0))  # placeholder -d' <= 0
        self.soc: dict[int, list[int]] = {}  # AM-GM rows per coupled job (set per node)
        for j, idd in self.id.items():
            self.soc[j] = []
            for _ in range(SOC_CUTS):
                self.soc[j].append(len(rows))
                rows.append(({idd: -1.0}, 0.0))  # placeholder -d' <= 0
        nr = len(rows)
        A = np.zeros((nr, self.nv))
        u = np.zeros(nr)
        for r, (row, rhs) in enumerate(rows):
            for i, v in row.items():
                A[r, i] += v
            u[r] = rhs
        self.A, self.u = A, u
        tau = max(max(abs(c0) + abs(c1) for c0, c1 in (self.work(j) for j in range(len(self.jobs)))), 1e-300)
        cs = np.ones(self.nv)  # column scale: x = cs * y
        for i in [*self.it.values(), *self.iL.values(), *self.iT.values()]:
            cs[i] = tau
        rs = np.full(nr, 1.0 / tau)  # row scale: rows in seconds / tau
        rs[self.cap_rows] = 1.0
        for r in self.oa.values():
            rs[r] = 1.0  # the tangent rows are dimensionless (d' against w'/t)
        for r in self.soc.values():
            rs[r] = 1.0 / math.sqrt(tau)  # the AM-GM rows are in sqrt(seconds)
        self.cs, self.rs = cs, rs
        As = A * rs[:, None] * cs[None, :]
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("primal_feasibility_tolerance", 1e-9)
        h.setOptionValue("dual_feasibility_tolerance", 1e-9)
        lp = highspy.HighsLp()
        lp.num_col_ = self.nv
        lp.num_row_ = nr
        lp.col_cost_ = self.cost * cs
        lp.col_lower_ = self.lo / cs
        lp.col_upper_ = self.hi / cs
        lp.row_lower_ = np.full(nr, -highspy.kHighsInf)
        lp.row_upper_ = u * rs
        start, index, value = [0], [], []
        for c in range(self.nv):
            nz = np.flatnonzero(As[:, c])
            index.extend(nz.tolist())
            value.extend(As[nz, c].tolist())
            start.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.array(start, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value, dtype=float)
        h.passModel(lp)
        self.h = h
        self._coef: dict[tuple[int, int], float] = {}  # values last written to HiGHS (scaled), to skip rewrites
        self._rub: dict[int, float] = {}

    def _set_coef(self, r: int, c: int, v: float) -> None:
        """A[r, c] := v (unscaled) in self.A and in HiGHS (scaled; written only if it changed)."""
        self.A[r, c] = v
        vs = v * self.rs[r] * self.cs[c]
        if self._coef.get((r, c)) != vs:
            self._coef[r, c] = vs
            self.h.changeCoeff(r, c, vs)

    def _set_rhs(self, r: int, v: float) -> None:
        import highspy

        self.u[r] = v
        vs = v * self.rs[r]
        if self._rub.get(r) != vs:
            self._rub[r] = vs
            self.h.changeRowBounds(r, -highspy.kHighsInf, vs)

    def solve(
        self, lo: np.ndarray, hi: np.ndarray, seeds: tuple[dict[int, list[float]], dict[int, list[float]]] | None = None
    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """LP of the node box (lo, hi) with up to OA_ROUNDS rounds of cuts (tangents, AM-GM rows); returns the LP
        point, the certified Lagrangian lower bound (the best of the rounds) and the box tightened by the implied
        bounds of the job times. ``seeds``: the cut points (tangent times, AM-GM ratios) per coupled job to start
        from (the parent's); those of the last round are left in ``self.seeds``."""
        t0s, r0s = seeds if seeds is not None else ({}, {})
        import highspy

        if not hasattr(self, "h"):
            self._build()
        lo, hi = lo.copy(), hi.copy()
        wr: dict[int, tuple[float, float]] = {}
        for j, idd in self.id.items():
            it = self.it[j]
            wl, wu = wr[j] = self.work_range(j, lo, hi)
            dl, du = lo[idd], hi[idd]
            # the job's time is t_j = w_j / d_j (equality is valid: L, T are epigraphs of it): bounds from the box
            if du > 0:
                lo[it] = max(lo[it], wl / du)
            if dl > 0:
                hi[it] = min(hi[it], wu / dl)
            if lo[it] > hi[it]:
                return np.full(self.nv, np.nan), math.inf, lo, hi  # empty box
        h, A, u, cs, rs = self.h, self.A, self.u, self.cs, self.rs
        for k, (r, j, idd, sign, c0, _) in enumerate(self.mc):
            # McCormick envelope of w_j = d_j t_j: rows 0-1 over-estimators (w <= ...), rows 2-3 under-estimators;
            # row: sign * (w - d_a t - t_a d + d_a t_a) <= 0
            it = self.it[j]
            da, ta = ((hi[idd], lo[it]), (lo[idd], hi[it]), (lo[idd], lo[it]), (hi[idd], hi[it]))[k % 4]
            self._set_coef(r, it, -sign * da)
            self._set_coef(r, idd, -sign * ta)
            self._set_rhs(r, -sign * (c0 + da * ta))
        h.changeColsBounds(self.nv, np.arange(self.nv, dtype=np.int32), lo / cs, hi / cs)
        pts: dict[int, list[float]] = {}
        rpts: dict[int, list[float]] = {}
        for j in self.id:
            it = self.it[j]
            tl, tu = max(lo[it], 1e-12 * self.tmax), hi[it]
            cand = [min(max(t, tl), tu) for t in t0s.get(j, []) if math.isfinite(t)]
            pts[j] = (cand or [math.sqrt(tl * tu)])[-OA_CUTS:]
            for q, t0 in enumerate(pts[j]):
                self._set_tangent(self.oa[j][q], j, t0, wr[j][0], lo, hi)
            for r in self.oa[j][len(pts[j]) :]:  # unused slots: a tangent of another box is not valid here
                self._set_tangent(r, j, math.inf, 0.0, lo, hi)
            wl, wu = wr[j]
            ns = sum(1 for q in self.id if self.jobs[q].host == self.jobs[j].host)
            d0 = min(1.0, 1.0 / (self.inst.kappa * ns))  # a fair share of (8c) when there is no parent point
            rcand = [v for v in r0s.get(j, []) if math.isfinite(v) and v > 0]
            if not rcand and wu > 0:
                rcand = [math.sqrt(0.5 * (wl + wu) / d0) / math.sqrt(d0)]  # t0 = w/d0, r = sqrt(t0/d0)
            rpts[j] = rcand[-SOC_CUTS:]
            for q, r0 in enumerate(rpts[j]):
                self._set_amgm(self.soc[j][q], j, r0, wl, wu)
            for r in self.soc[j][len(rpts[j]) :]:
                self._set_amgm(r, j, math.inf, wl, wu)
        best = -math.inf
        x = np.full(self.nv, np.nan)
        for rnd in range(OA_ROUNDS):
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                h.clearSolver()
                return np.full(self.nv, np.nan), math.inf, lo, hi  # infeasible box: no point in it
            sol = h.getSolution()
            xr = np.clip(np.asarray(sol.col_value) * cs, lo, hi)
            mu = np.maximum(0.0, -np.asarray(sol.row_dual)) * rs  # multipliers of the unscaled rows
            own = _lagrangian_bound(self.cost, A, u, lo, hi, mu, self.const)  # of this box itself
            if own > best or rnd == 0:
                best, x = max(best, own), xr
                self.red = self.cost + A.T @ mu
            if rnd == OA_ROUNDS - 1:
                break
            added = False
            for j, idd in self.id.items():  # a tangent at the LP's time where it under-estimates w/t by more than 1e-9
                it = self.it[j]
                t = float(xr[it])
                wl = wr[j][0]
                if t <= 0 or wl <= 0 or xr[idd] >= wl / t * (1 - 1e-9):
                    continue
                pts[j] = [*pts[j], t][-OA_CUTS:]
                for q, t0 in enumerate(pts[j]):
                    self._set_tangent(self.oa[j][q], j, t0, wl, lo, hi)
                added = True
            for j, idd in self.id.items():  # an AM-GM row where sqrt(d t) < s(w) at the LP point
                wl, wu = wr[j]
                if wu <= 0:
                    continue
                sw = self._secant(j, wl, wu, float(xr[self.ia[self.jobs[j].owner]]) if self.work(j)[1] else 0.0)
                d0, t0 = float(xr[idd]), float(xr[self.it[j]])
                if math.sqrt(max(d0 * t0, 0.0)) >= sw * (1 - 1e-9):
                    continue
                if d0 > 0 and t0 > 0:
                    r0 = math.sqrt(t0 / d0)
                elif t0 > 0:
                    r0 = t0 / sw
                elif d0 > 0:
                    r0 = sw / d0
                else:
                    continue
                rpts[j] = [*rpts[j], r0][-SOC_CUTS:]
                for q, rv in enumerate(rpts[j]):
                    self._set_amgm(self.soc[j][q], j, rv, wl, wu)
                added = True
            if not added:
                break
        self.own = best
        self.seeds = (pts, rpts)
        return x, best, lo, hi

    def _secant(self, j: int, wl: float, wu: float, a: float) -> float:
        """s(w) = sqrt(wl) + (w - wl) / (sqrt(wl) + sqrt(wu)) <= sqrt(w) on [wl, wu] (secant of the concave
        sqrt), at the ratio a of the job's owner."""
        c0, c1 = self.work(j)
        return math.sqrt(wl) + (c0 + c1 * a - wl) / (math.sqrt(wl) + math.sqrt(wu))

    def _set_amgm(self, r: int, j: int, r0: float, wl: float, wu: float) -> None:
        """Row r := (r0 d' + t / r0) / 2 >= s(w_j) (AM-GM: the left side is >= sqrt(d' t) = sqrt(w_j) >= s(w_j),
        the secant of sqrt on the box's [wl, wu]; valid in the box, exact where t / d' = r0^2 and w at wl or wu),
        i.e. -(r0/2) d' - t/(2 r0) + beta c1 a <= -sqrt(wl) - beta (c0 - wl), beta = 1/(sqrt(wl) + sqrt(wu));
        r0 = inf: the placeholder -d' <= 0."""
        it, idd = self.it[j], self.id[j]
        c0, c1 = self.work(j)
        on = math.isfinite(r0) and wu > 0
        beta = 1.0 / (math.sqrt(wl) + math.sqrt(wu)) if on else 0.0
        self._set_coef(r, idd, -0.5 * r0 if on else -1.0)
        self._set_coef(r, it, -0.5 / r0 if on else 0.0)
        if c1:
            self._set_coef(r, self.ia[self.jobs[j].owner], beta * c1)
        self._set_rhs(r, -math.sqrt(wl) - beta * (c0 - wl) if on else 0.0)

    def _set_tangent(self, r: int, j: int, t0: float, wl: float, lo: np.ndarray, hi: np.ndarray) -> None:
        """Row r := the tangent at t0 of d'_j >= wl/t_j + (w_j - wl)/t_u (valid in the box: d'_j t_j = w_j >= wl,
        t_j <= t_u; wl/t is convex), i.e. -(wl/t0^2) t + (c1/t_u) a - d' <= -2 wl/t0 - (c0 - wl)/t_u; t0 = inf:
        the placeholder -d' <= 0 (a row is only valid in the box it was made for: every slot is reset per box)."""
        it = self.it[j]
        c0, c1 = self.work(j)
        tu = hi[it]
        tangent = math.isfinite(t0)
        self._set_coef(r, it, -wl / (t0 * t0) if tangent else 0.0)
        if c1:
            self._set_coef(r, self.ia[self.jobs[j].owner], c1 / tu if tangent else 0.0)
        self._set_rhs(r, -2.0 * wl / t0 - (c0 - wl) / tu if tangent else 0.0)

    def value(self, dec: tuple[np.ndarray, ...]) -> float:
        """Objective eq. (8a) of a decision built by :meth:`arrays` (feasible by construction): the problem's own
        eqs. (5)-(6) (``costs_raw``) with the weights of eq. (8a) computed once (the returned decision is
        re-evaluated by ``evaluate``)."""
        L_m, _, _, E_s, _ = costs_raw(self.inst, *[v[None] for v in dec])
        return float(self.wL * L_m.sum() + self.wE * E_s.sum())

    def arrays(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """The LP point as a decision (target, a, d_local, d_remote, b): ratios a, allocations d (coupled hosts,
        scaled up into the slack of (8c) and kept positive where there is work) or kappa C, b = kappa B; always
        feasible."""
        inst, tg = self.inst, self.target
        M, k = inst.M, inst.kappa
        a = np.zeros(M)
        for m, i in self.ia.items():
            a[m] = min(1.0, max(0.0, float(x[i])))
        tgt = np.where(a > 0, tg, 0)
        d_loc = np.where(inst.D > 0, k * inst.C_rem, 0.0)
        d_rem = np.zeros(M)
        b = np.zeros(M)
        for m in range(M):
            if tgt[m] > 0:
                n = int(tgt[m]) - 1
                d_rem[m] = k * inst.C_rem[n]
                b[m] = k * inst.B_rem[m, n]
        for s in self.coupled:
            js = [j for j in self.id if self.jobs[j].host == s]
            cap = k * inst.C_rem[s]
            d = np.array([cap * min(1.0, max(float(x[self.id[j]]), 1e-6)) for j in js])
            for _ in range(len(js) + 1):  # water-fill the slack of (8c) proportionally, capped at kappa C
                slack = inst.C_rem[s] * (1 - 1e-12) - d.sum()
                free = d < cap
                if slack <= 0 or not free.any():
                    break
                d[free] = np.minimum(cap, d[free] * (1 + slack / d[free].sum()))
            if d.sum() > inst.C_rem[s]:
                d *= inst.C_rem[s] * (1 - 1e-12) / d.sum()
            for j, v in zip(js, d, strict=True):
                jb = self.jobs[j]
                if jb.remote:
                    d_rem[jb.owner] = v if tgt[jb.owner] > 0 else 0.0
                else:
                    d_loc[jb.owner] = v
        d_loc = np.where((1 - np.where(tgt > 0, a, 0.0)) * inst.D > 0, d_loc, 0.0)
        return tgt, np.where(tgt > 0, a, 0.0), d_loc, d_rem, b

    def violation(self, x: np.ndarray) -> dict[int, float]:
        """w_j(a) - d_j t_j of the coupled jobs at the LP point (> 0: the relaxation over-promised)."""
        out = {}
        for j, idd in self.id.items():
            c0, c1 = self.work(j)
            m = self.jobs[j].owner
            w = c0 + (c1 * x[self.ia[m]] if c1 else 0.0)
            out[j] = abs(w - x[idd] * x[self.it[j]])  # seconds
        return out


def solve_target(
    inst: Instance,
    target: np.ndarray,
    cutoff: float,
    deadline: Deadline,
    ub0: float | None = None,
    max_nodes: int | None = None,
) -> TargetResult:
    """Spatial B&B (best first) of one target vector; closes when every open box's certified bound is within
    TARGET_GAP of the best value or above ``cutoff`` (a known objective value). On a time-out, or after
    ``max_nodes`` boxes (``complete`` False), the bound is the least bound of the open boxes."""
    if ub0 is None:
        ub0 = float(evaluate(inst, local_only(inst)).objective)
    ub0 = max(ub0, cutoff if math.isfinite(cutoff) else ub0)
    mdl = _TargetModel(inst, target, ub0)
    best_val, best_dec = math.inf, None  # best_dec: arrays (target, a, d_local, d_remote, b)
    lo0, hi0 = mdl.lo.copy(), mdl.hi.copy()
    x, bnd, lo0, hi0 = mdl.solve(lo0, hi0)
    nodes = 1
    heap: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, float, dict]]] = []
    closed = math.inf
    tie = 0
    timed_out = False
    complete = True

    def consider(x: np.ndarray, bnd: float, lo: np.ndarray, hi: np.ndarray) -> None:
        nonlocal best_val, best_dec, closed, tie
        if not math.isfinite(bnd):
            return
        red = mdl.red.copy()
        own = mdl.own
        seeds = mdl.seeds
        if bnd < best_val:
            dec = mdl.arrays(x)
            val = mdl.value(dec)
            if val < best_val:
                best_val, best_dec = val, dec
        heapq.heappush(heap, (bnd, tie, x, lo, hi, (red, own, seeds)))
        tie += 1

    consider(x, bnd, lo0, hi0)
    while heap:
        bnd, _, x, lo, hi, (red, own, seeds) = heap[0]
        ref = min(best_val, cutoff)
        if bnd >= ref - TARGET_GAP * abs(ref):
            break
        if deadline.expired():
            timed_out = True
            break
        if max_nodes is not None and nodes >= max_nodes:
            complete = False
            break
        heapq.heappop(heap)
        lo, hi = lo.copy(), hi.copy()
        _tighten(red, own, ref, lo, hi)  # drops only points worse than the best known value
        viol = mdl.violation(x)
        j = max(viol, key=lambda q: viol[q])
        if viol[j] <= 1e-12:  # the LP point satisfies the bilinear rows: its bound is this box's optimum
            closed = min(closed, bnd)
            continue
        idd = mdl.id[j]
        cands = [idd]
        own = mdl.jobs[j].owner
        if own in mdl.ia:
            cands.append(mdl.ia[own])
        # the owner's ratio first (it sets the work range [wl, wu] that the tangent and AM-GM rows are exact at; the
        # allocation only matters to the McCormick rows), the allocation once the ratio is fixed
        var = max(cands, key=lambda i: (hi[i] - lo[i]) * (A_WEIGHT if i != idd else 1.0))
        w = hi[var] - lo[var]
        cut = float(x[var])
        if not lo[var] + 0.1 * w <= cut <= hi[var] - 0.1 * w:
            cut = lo[var] + 0.5 * w
        for side in (0, 1):
            nlo, nhi = lo.copy(), hi.copy()
            if side == 0:
                nhi[var] = cut
            else:
                nlo[var] = cut
            cx, cb, nlo, nhi = mdl.solve(nlo, nhi, seeds)
            nodes += 1
            consider(cx, max(cb, bnd), nlo, nhi)
    open_bound = min((h[0] for h in heap), default=math.inf)
    bound = min(closed, open_bound, best_val)
    out = None
    if best_dec is not None:
        out = Decision(target=best_dec[0], a=best_dec[1], d_local=best_dec[2], d_remote=best_dec[3], b=best_dec[4])
        if not evaluate(inst, out).feasible:  # cannot happen by construction; never return an infeasible point
            out, best_val = None, math.inf
    return TargetResult(best_val, out, bound, nodes, timed_out, complete)


def quick_incumbent(inst: Instance, target: np.ndarray, ub0: float) -> tuple[float, Decision | None, float]:
    """The root box of one target vector: a feasible point (its LP point made feasible by
    :meth:`_TargetModel.arrays`; inf, None if none) and the root's certified bound (of every point of the target
    vector with objective <= ub0), before the target vector is solved."""
    mdl = _TargetModel(inst, target, ub0)
    x, bnd, _, _ = mdl.solve(mdl.lo.copy(), mdl.hi.copy())
    if not math.isfinite(bnd):
        return math.inf, None, bnd
    dec = mdl.arrays(x)
    out = Decision(target=dec[0], a=dec[1], d_local=dec[2], d_remote=dec[3], b=dec[4])
    m = evaluate(inst, out)
    return (float(m.objective), out, bnd) if m.feasible else (math.inf, None, bnd)
