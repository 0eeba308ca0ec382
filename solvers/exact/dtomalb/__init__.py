"""Exact solvers for DTOMALB (one slot).

* ``exact``: the structure-exploiting method. Charging each FCFS pair (eq. 8) to the earlier task, a task placed at
  server m costs its own delay plus C_n/f_m for every task *behind* it there; taking users from the last to the first
  in the queue order, the cost-to-go depends only on the per-server counts of tasks already placed. A dynamic program
  over count vectors (pruned by an incumbent and a lower bound) is exact when the servers' queue orders agree, and a
  valid bound otherwise (server 1 sees arrivals without the forwarding time: "inverted" pairs are charged the smaller
  work); then the MILP settles the instance. For 'delay+lb' it runs the MILP.
* ``milp``: P1 (eq. 12) as a MILP, solved by HiGHS through Pyomo. The FCFS wait of eq. (8) makes the objective
  quadratic in the binaries (a task waits for the work of the earlier tasks *at the same server*); it is linearized
  exactly with one continuous z_{i,n,m} >= a_{i,m} + a_{n,m} - 1, z >= 0 per ordered pair at a server (exact because
  the objective coefficients are positive and minimized). The LP relaxation of that is weak, so the model adds valid
  convex-envelope cuts on each server's total wait (see :func:`_wait_cuts`). With the load-balancing objective
  ('delay+lb') the convex w2·var(LD) term (eq. 19) is outer-approximated by tangent planes (still a MILP).
* ``pyomo-scip``: the same model on SCIP with var(LD) kept quadratic (the generic yardstick).
* ``brute-force``: enumerates all (M+1)^N decisions with the vectorized evaluator (the independent cross-check).

With ``bandwidth_split='offloaders'`` the rates of eq. (5) depend on the number K of offloading users; both exact
methods then solve one subproblem per K (with sum of offloads = K) and combine incumbents and bounds.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pyomo.environ as pyo

from mecopt.core import MethodOutput, SolveOptions, SolverError, Status
from mecopt.problems.dtomalb import Decision, Instance, delays, upload_rate
from mecopt.spec import MethodSpec
from solvers.pyomo_backend import Backend, solve_model

BRUTE_FORCE_LIMIT = 2_000_000


def _data(inst: Instance, K: int | None) -> dict[str, np.ndarray]:
    """Decision-independent coefficients for a fixed number K of bandwidth-sharing users (data prep)."""
    N, M = inst.N, inst.M
    share_count = float(inst.N) if inst.bandwidth_split == "all" else float(max(K or 1, 1))
    r = upload_rate(inst, np.array([share_count]))[0]  # eq. (5)
    t_up = inst.L / r  # eq. (7)
    t_tran = inst.L / inst.mu  # eq. (9)
    comp = inst.C[:, None] / inst.f[None, :]  # C_n / f_m, eq. (8), (N, M)
    # cost of user n at target m apart from waiting for this slot's other tasks; column 0 = local, eq. (6)
    cost = np.empty((N, M + 1))
    cost[:, 0] = inst.C / inst.f_local
    for m in range(1, M + 1):
        cost[:, m] = t_up + comp[:, m - 1] + inst.backlog[m - 1] + (t_tran if m >= 2 else 0.0)  # eqs. (8)-(11)
    # FCFS order per server (D2): rank[m][n] = position of n in the queue of server m
    ahead = np.zeros((M, N, N), dtype=bool)  # ahead[m, i, n]: i is served before n at server m+1
    for m in range(1, M + 1):
        key = t_up + (t_tran if m >= 2 else 0.0) if inst.queue_order == "arrival" else np.arange(N, dtype=float)
        order = np.lexsort((np.arange(N), key))
        pos = np.empty(N, dtype=int)
        pos[order] = np.arange(N)
        ahead[m - 1] = pos[:, None] < pos[None, :]
    return {"cost": cost, "comp": comp, "ahead": ahead}


def _wait_cuts(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tangents of h(k) = min over k-subsets of the total FCFS wait at one server.

    For k tasks with unit works c_i, the total wait is sum_i c_i * (#tasks after i) >= h(k) = sum_{j<k} c_(j) (k-1-j)
    (smallest works get the largest multiplicities; c sorted ascending). h is convex (its increments sum_{j<k} c_(j)
    grow with k), so W >= h(j) + (h(j+1) - h(j)) (k - j) holds for every j: valid cuts on (W, k).
    Returns (h(0..N), increments).
    """
    cs = np.sort(c)
    n = len(cs)
    h = np.zeros(n + 1)
    for k in range(1, n + 1):
        h[k] = h[k - 1] + cs[: k - 1].sum()
    return h, np.diff(h)


def build_model(
    inst: Instance, K: int | None = None, *, cuts: bool = True, outer_approx: bool = False
) -> pyo.ConcreteModel:
    """Pyomo model of P1 (eq. 12), or of w1*P1 + w2*var(LD) (eq. 20) when ``inst.objective == 'delay+lb'``.

    ``K`` fixes the number of offloading users (needed with ``bandwidth_split='offloaders'``, optional otherwise).
    With ``outer_approx`` the convex var(LD) term is replaced by an epigraph variable ``theta`` whose tangent cuts
    (``m.var_cuts``) are added by :func:`solve_milp` (a MILP at every step, so HiGHS solves it).
    """
    if inst.bandwidth_split == "offloaders" and K is None:
        raise SolverError("dtomalb: bandwidth_split='offloaders' needs a fixed K (use solve_milp)")
    d = _data(inst, K)
    cost, comp, ahead = d["cost"], d["comp"], d["ahead"]
    N, M = inst.N, inst.M

    m = pyo.ConcreteModel(name="DTOMALB-P1")
    m.USERS = pyo.RangeSet(0, N - 1)
    m.TARGETS = pyo.RangeSet(0, M, doc="0 = local, 1..M = edge servers, eq. (1)")
    m.SERVERS = pyo.RangeSet(1, M)
    pairs = [(i, n, s) for s in range(1, M + 1) for i in range(N) for n in range(N) if ahead[s - 1, i, n]]
    m.PAIRS = pyo.Set(initialize=pairs, dimen=3, doc="(i, n, m): i is ahead of n in server m's FCFS queue, eq. (8)")

    m.a = pyo.Var(m.USERS, m.TARGETS, domain=pyo.Binary, doc="a_{n,m}, eq. (1)")
    m.z = pyo.Var(m.PAIRS, bounds=(0, 1), doc="a_{i,m} * a_{n,m} (exact linearization)")

    @m.Constraint(m.USERS, doc="eq. (2): each task runs at exactly one place")
    def one_target(m, n):
        return sum(m.a[n, t] for t in m.TARGETS) == 1

    @m.Constraint(m.PAIRS, doc="z >= a_i + a_n - 1 (product linearization, eq. 8)")
    def both_at_server(m, i, n, s):
        return m.z[i, n, s] >= m.a[i, s] + m.a[n, s] - 1

    if K is not None:

        @m.Constraint(doc="number of offloading users sharing W in eq. (5)")
        def offload_count(m):
            return sum(m.a[n, s] for n in m.USERS for s in m.SERVERS) == K

    m.wait = pyo.Expression(
        m.SERVERS,
        rule=lambda m, s: sum(m.z[i, n, s2] * comp[i, s - 1] for (i, n, s2) in pairs if s2 == s),
        doc="total wait for this slot's earlier tasks at server m, eq. (8)",
    )
    if cuts:
        cut_rows = []
        for s in range(1, M + 1):
            h, inc = _wait_cuts(comp[:, s - 1])
            cut_rows += [(s, j, h[j], inc[j]) for j in range(N)]
        m.CUTS = pyo.Set(initialize=[(s, j) for s, j, _, _ in cut_rows], dimen=2)
        cut_data = {(s, j): (hj, ij) for s, j, hj, ij in cut_rows}

        @m.Constraint(m.CUTS, doc="valid convex-envelope cut on a server's total wait (see _wait_cuts)")
        def wait_envelope(m, s, j):
            hj, ij = cut_data[(s, j)]
            return m.wait[s] >= hj + ij * (sum(m.a[n, s] for n in m.USERS) - j)

    m.mean_delay = pyo.Expression(
        expr=(sum(cost[n, t] * m.a[n, t] for n in m.USERS for t in m.TARGETS) + sum(m.wait[s] for s in m.SERVERS)) / N,
        doc="P1 objective, eqs. (11)-(12)",
    )
    if inst.objective == "delay":
        m.obj = pyo.Objective(expr=m.mean_delay, sense=pyo.minimize, doc="eq. (12)")
    else:
        m.LD = pyo.Expression(
            m.SERVERS,
            rule=lambda m, s: inst.backlog[s - 1] + sum(comp[n, s - 1] * m.a[n, s] for n in m.USERS),
            doc="load factor, eq. (13)",
        )
        mean_ld = sum(m.LD[s] for s in m.SERVERS) / M
        m.dev = pyo.Expression(m.SERVERS, rule=lambda m, s: m.LD[s] - mean_ld, doc="LD_m - |E|, eq. (19)")
        if outer_approx:
            # var(LD) = (1/M) sum_m dev_m^2 with one epigraph theta_m >= dev_m^2 per server; tangents
            # theta_m >= 2 d0 dev_m - d0^2 under-estimate the square, so every MILP bound stays valid.
            m.theta = pyo.Var(m.SERVERS, domain=pyo.NonNegativeReals, doc="epigraph of (LD_m - |E|)^2")
            m.var_cuts = pyo.ConstraintList(doc="tangent planes of (LD_m - |E|)^2, eq. (19)")
            span = float(inst.backlog.max() + comp.max() * N)
            for s in range(1, M + 1):
                for d0 in np.linspace(-span, span, 17):
                    m.var_cuts.add(m.theta[s] >= 2 * d0 * m.dev[s] - d0 * d0)
            var_term = sum(m.theta[s] for s in m.SERVERS) / M
        else:
            m.var_LD = pyo.Expression(expr=sum(m.dev[s] ** 2 for s in m.SERVERS) / M, doc="eq. (19)")
            var_term = m.var_LD
        m.obj = pyo.Objective(
            expr=inst.w1 * m.mean_delay + inst.w2 * var_term,
            sense=pyo.minimize,
            doc="-(1/N) sum_n R_n, eq. (20)",
        )
    return m


def _decision_from(m: pyo.ConcreteModel, inst: Instance) -> Decision:
    a = np.zeros(inst.N, dtype=np.int64)
    for n in range(inst.N):
        vals = [pyo.value(m.a[n, t]) for t in range(inst.M + 1)]
        a[n] = int(np.argmax(vals))
    return Decision(a=a)


def _solve_one(
    inst: Instance, K: int | None, opts: SolveOptions, backend: Backend, deadline: float | None
) -> tuple[Status, float | None, Decision | None, int]:
    """Solve the model for one K; returns (status, bound, decision, iterations).

    For 'delay+lb' on HiGHS: outer approximation of the convex var(LD) (Kelley cuts). Each MILP's bound is a valid
    lower bound (tangents under-estimate a convex function); the evaluated incumbent is an upper bound; stop when
    they meet within ``opts.mip_gap`` or at the deadline.
    """
    oa = inst.objective == "delay+lb" and backend is Backend.HIGHS
    model = build_model(inst, K, outer_approx=oa)
    tol = max(opts.mip_gap, 1e-7) if oa else opts.mip_gap  # OA converges asymptotically; 1e-7 < OPTIMALITY_TOL
    best_obj, best_dec, bound, it = np.inf, None, -np.inf, 0
    seen: set[tuple[int, ...]] = set()
    while True:
        it += 1
        remaining = None if deadline is None else max(0.5, deadline - time.perf_counter())
        out = solve_model(model, backend, SolveOptions(remaining, tol, opts.threads, opts.seed, opts.verbose))
        if out.status == "infeasible":
            return "infeasible", None, None, it
        if out.status == "error":
            raise SolverError(f"dtomalb: {backend.value} failed: {out.solver_message}")
        if out.bound is not None:
            bound = max(bound, out.bound) if oa else out.bound
        if out.objective is None:
            return "time_limit", bound if np.isfinite(bound) else None, best_dec, it
        dec = _decision_from(model, inst)
        d = delays(inst, dec.a[None, :])
        obj = float(d.objective[0])
        if obj < best_obj:
            best_obj, best_dec = obj, dec
        if not oa:
            return out.status, out.bound, best_dec, it
        if out.status != "optimal":
            return "time_limit", bound, best_dec, it
        if best_obj - bound <= tol * max(abs(best_obj), 1e-12):
            return "optimal", min(bound, best_obj), best_dec, it
        key = tuple(dec.a.tolist())
        if key in seen:
            # the MILP optimum is a point whose tangents are already in: bound and incumbent agree up to the
            # solver's feasibility tolerance (~1e-7 absolute); report them as they are (finish() judges the gap)
            return "optimal", min(bound, best_obj), best_dec, it
        seen.add(key)
        dev0 = d.LD[0] - d.LD[0].mean()
        for s in model.SERVERS:
            model.var_cuts.add(model.theta[s] >= 2 * dev0[s - 1] * model.dev[s] - dev0[s - 1] ** 2)
        if deadline is not None and time.perf_counter() > deadline:
            return "time_limit", bound, best_dec, it


def solve_milp(inst: Instance, opts: SolveOptions, backend: Backend = Backend.HIGHS) -> MethodOutput:
    """Certified optimum of one slot: HiGHS MILP (outer approximation of var(LD) for 'delay+lb')."""
    Ks: list[int | None] = [None] if inst.bandwidth_split == "all" else list(range(inst.N + 1))
    t0 = time.perf_counter()
    best: tuple[float, Decision] | None = None
    bound = np.inf
    statuses: list[Status] = []
    iters = 0
    for idx, K in enumerate(Ks):
        deadline = None
        if opts.time_limit is not None:
            deadline = time.perf_counter() + max(0.5, (opts.time_limit - (time.perf_counter() - t0)) / (len(Ks) - idx))
        status, k_bound, dec, it = _solve_one(inst, K, opts, backend, deadline)
        iters += it
        statuses.append(status)
        if status == "infeasible":
            continue
        bound = min(bound, k_bound if k_bound is not None else -np.inf)
        if dec is not None:
            obj = float(delays(inst, dec.a[None, :]).objective[0])
            if best is None or obj < best[0]:
                best = (obj, dec)
    info = {"backend": backend.value, "subproblems": len(Ks), "milp_solves": iters}
    finite_bound = float(bound) if np.isfinite(bound) else None
    if best is None:
        return MethodOutput(None, "time_limit" if "time_limit" in statuses else "error", finite_bound, info)
    status: Status = "optimal" if all(s in ("optimal", "infeasible") for s in statuses) else "time_limit"
    return MethodOutput(best[1], status, finite_bound, info)


def solve_scip(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """The same model solved by SCIP through Pyomo (var(LD) kept as a quadratic): the generic yardstick."""
    return solve_milp(inst, opts, Backend.SCIP)


def all_decisions(N: int, M: int) -> np.ndarray:
    """Every decision of N users over M+1 targets, shape ((M+1)^N, N)."""
    return np.array(list(itertools.product(range(M + 1), repeat=N)), dtype=np.int64)


def solve_brute_force(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Enumerate all (M+1)^N decisions (independent cross-check of ``exact``)."""
    total = (inst.M + 1) ** inst.N
    if total > BRUTE_FORCE_LIMIT:
        raise SolverError(f"dtomalb: brute force needs (M+1)^N = {total} > {BRUTE_FORCE_LIMIT} evaluations")
    best_obj, best_a = np.inf, None
    chunk = 65536
    A_all = all_decisions(inst.N, inst.M)
    for s in range(0, total, chunk):
        A = A_all[s : s + chunk]
        obj = delays(inst, A).objective
        k = int(np.argmin(obj))
        if obj[k] < best_obj:
            best_obj, best_a = float(obj[k]), A[k].copy()
    return MethodOutput(Decision(a=best_a), "optimal", best_obj, {"evaluated": total})


# ----------------------------------------------------------------------------------------------------------------
# Structured exact method: dynamic programming over per-server queue counts
# ----------------------------------------------------------------------------------------------------------------
def _dp_orders(inst: Instance, K: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(processing order, cost matrix (N, M+1) without waits, per-user server-1 wait coefficient C~_i,
    whether server 1's queue order equals the processing order)."""
    d = _data(inst, K)
    N = inst.N
    share = float(inst.N) if inst.bandwidth_split == "all" else float(max(K or 1, 1))
    t_up = inst.L / upload_rate(inst, np.array([share]))[0]
    if inst.queue_order == "arrival":
        key1, key2 = t_up, t_up + inst.L / inst.mu  # arrival at server 1 / at servers 2..M (D2)
    else:
        key1 = key2 = np.arange(N, dtype=float)
    idx = np.arange(N)
    order2 = np.lexsort((idx, key2))  # queue order of servers 2..M (ties by index, as in `delays`)
    pos1 = np.empty(N, dtype=int)
    pos1[np.lexsort((idx, key1))] = idx  # position in server 1's queue
    pos2 = np.empty(N, dtype=int)
    pos2[order2] = idx
    # server-1 pairs whose order differs from the processing order ("inversions"): charge each pair the smaller
    # work so the DP value stays a lower bound (D2); exact when there is none.
    inverted = (pos2[:, None] < pos2[None, :]) & (pos1[:, None] > pos1[None, :])  # [i, n]: i first in 2, n in 1
    c_tilde = np.where(inverted, inst.C[None, :], np.inf).min(axis=1)
    c_tilde = np.minimum(inst.C, c_tilde)
    return order2, d["cost"], c_tilde, not bool(inverted.any())


def _count_dp(
    inst: Instance, K: int | None, upper: float, deadline: float | None
) -> tuple[float, np.ndarray | None, bool, bool]:
    """Minimise the delay sum exactly over decisions, by DP on the number of tasks queued behind.

    Users are taken from the last to the first in the queue order. A user placed at server m with c_m tasks
    already placed there (all of them behind it in the queue) costs const_nm + C_n (c_m + 1) / f_m: its own
    upload/forwarding/backlog/computation plus the wait it causes to the c_m tasks behind it (eq. 8 summed per
    pair, each pair charged to the earlier task). So the state is the vector of counts, not the set of tasks.
    States whose cost plus a lower bound on the users still to place exceeds ``upper`` are pruned.

    Returns (lower bound on sum of delays, best decision found or None, exact flag, finished flag).
    """
    N, M = inst.N, inst.M
    order, cost, c_tilde, exact = _dp_orders(inst, K)
    base = (N + 1) ** np.arange(M, dtype=np.int64)
    inv_f = 1.0 / inst.f
    # rest[j]: lower bound on the cost of users order[0..j-1] (the ones still to place): each at least its
    # cheapest target without any wait (cost holds upload, forwarding, backlog and own computation)
    rest = np.concatenate([[0.0], np.cumsum(cost.min(axis=1)[order])])
    keys = np.zeros(1, dtype=np.int64)
    vals = np.zeros(1)
    counts = np.zeros((1, M), dtype=np.int64)
    parents: list[np.ndarray] = []
    choices: list[np.ndarray] = []
    slack = 1e-12 * max(1.0, abs(upper))
    for step, n in enumerate(order[::-1]):
        if deadline is not None and time.perf_counter() > deadline:
            return -np.inf, None, exact, False
        remaining_lb = rest[N - step - 1]  # users order[0 .. N-step-2] still to place
        ids = np.arange(len(keys))
        cand_k, cand_v, cand_p, cand_t = [keys], [vals + cost[n, 0]], [ids], [np.zeros(len(keys), dtype=np.int64)]
        for m in range(1, M + 1):
            c_m = counts[:, m - 1]
            coef = c_tilde[n] if m == 1 else inst.C[n]
            cand_k.append(keys + base[m - 1])
            cand_v.append(vals + cost[n, m] + coef * c_m * inv_f[m - 1])
            cand_p.append(ids)
            cand_t.append(np.full(len(keys), m))
        k = np.concatenate(cand_k)
        v = np.concatenate(cand_v)
        p = np.concatenate(cand_p)
        t = np.concatenate(cand_t)
        keep = v + remaining_lb <= upper + slack
        if K is not None:  # exactly K offloaders: prune states that cannot reach K
            off = (k[:, None] // base[None, :] % (N + 1)).sum(axis=1)
            keep &= (off <= K) & (off + (N - step - 1) >= K)
        k, v, p, t = k[keep], v[keep], p[keep], t[keep]
        if len(k) == 0:
            return upper, None, exact, True  # nothing beats the incumbent: it is optimal
        srt = np.lexsort((v, k))
        k, v, p, t = k[srt], v[srt], p[srt], t[srt]
        first = np.ones(len(k), dtype=bool)
        first[1:] = k[1:] != k[:-1]
        keys, vals, par, tgt = k[first], v[first], p[first], t[first]
        counts = keys[:, None] // base[None, :] % (N + 1)
        parents.append(par)
        choices.append(tgt)
    best = int(np.argmin(vals))
    a = np.zeros(N, dtype=np.int64)
    s = best
    for step in range(N - 1, -1, -1):
        a[order[::-1][step]] = choices[step][s]
        s = parents[step][s]
    return float(vals[best]), a, exact, True


def _cost_to_go(inst: Instance, K: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], bool]:
    """Exact cost-to-go tables of the count DP: H[s][c] = least delay sum of placing the users still to place
    (processing steps s..N-1) when the count vector of tasks already placed behind them is c (dense arrays over
    counts 0..N per server). A lower bound when server 1's queue order has inversions (see `_dp_orders`)."""
    N, M = inst.N, inst.M
    order, cost, c_tilde, exact = _dp_orders(inst, K)
    seq = order[::-1]  # processing sequence: last in the queue first
    shape = (N + 1,) * M
    grids = np.indices(shape).reshape(M, -1).T  # every count vector
    total = grids.sum(axis=1)
    H: list[np.ndarray] = [np.empty(0)] * (N + 1)
    H[N] = np.zeros(len(grids))
    strides = np.array([(N + 1) ** (M - 1 - m) for m in range(M)], dtype=np.int64)
    for s in range(N - 1, -1, -1):
        n = seq[s]
        best = np.full(len(grids), np.inf)
        ok = total <= s  # only s users are placed before step s
        nxt = H[s + 1]
        # local
        best = np.where(ok, cost[n, 0] + nxt, best)
        for m in range(1, M + 1):
            has_room = grids[:, m - 1] < N
            idx = np.arange(len(grids)) + strides[m - 1]
            coef = c_tilde[n] if m == 1 else inst.C[n]
            val = np.full(len(grids), np.inf)
            sel = ok & has_room
            val[sel] = cost[n, m] + coef * grids[sel, m - 1] / inst.f[m - 1] + nxt[idx[sel]]
            best = np.minimum(best, val)
        H[s] = best
    return seq, cost, c_tilde, H, exact


def solve_lb_enum(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum of w1 * mean delay + w2 * var(LD) (eq. 20) by enumerating every decision whose delay sum
    lies within the window that var(LD) >= 0 leaves open: w1 * D / N <= UB. Depth-first search guided by the exact
    count-DP cost-to-go (so it never enters a branch without a completion inside the window); every leaf is scored
    with `delays`; the incumbent shrinks the window as it improves. Only for the literal bandwidth split and when
    (N+1)^M count vectors fit in memory; returns None otherwise."""
    N, M = inst.N, inst.M
    if inst.bandwidth_split != "all" or (N + 1) ** M > 4_000_000 or inst.w1 <= 0:
        return None  # type: ignore[return-value]
    t0 = time.perf_counter()
    from solvers.heuristics.dtomalb import lb_greedy

    seq, cost, c_tilde, H, exact = _cost_to_go(inst, None)
    inc_dec = lb_greedy(inst, opts).decision
    ub = float(delays(inst, inc_dec.a[None, :]).objective[0])
    strides = np.array([(N + 1) ** (M - 1 - m) for m in range(M)], dtype=np.int64)
    leaves = 0
    a = np.zeros(N, dtype=np.int64)
    counts = np.zeros(M, dtype=np.int64)
    timed_out = False

    def window() -> float:
        return ub * N / inst.w1 * (1 + 1e-12)

    def dfs(s: int, value: float) -> None:
        nonlocal ub, inc_dec, leaves, timed_out
        if timed_out:
            return
        if s == N:
            leaves += 1
            obj = float(delays(inst, a[None, :]).objective[0])
            if obj < ub:
                ub, inc_dec = obj, Decision(a=a.copy())
            if opts.time_limit is not None and leaves % 256 == 0 and time.perf_counter() - t0 > opts.time_limit:
                timed_out = True
            return
        n = seq[s]
        key = int(counts @ strides)
        children = []
        for t in range(M + 1):
            if t == 0:
                step = cost[n, 0]
                nk = key
            else:
                coef = c_tilde[n] if t == 1 else inst.C[n]
                step = cost[n, t] + coef * counts[t - 1] / inst.f[t - 1]
                nk = key + int(strides[t - 1])
            bound = value + step + H[s + 1][nk]
            if bound <= window():
                children.append((bound, t, step))
        for _, t, step in sorted(children):
            if value + step + H[s + 1][key + (int(strides[t - 1]) if t else 0)] > window():
                continue  # the window shrank meanwhile
            a[n] = t
            if t:
                counts[t - 1] += 1
            dfs(s + 1, value + step)
            if t:
                counts[t - 1] -= 1

    dfs(0, 0.0)
    lower = inst.w1 * H[0][0] / N  # var(LD) >= 0
    info = {"method": "window enumeration over the count DP", "leaves": leaves, "dp_exact": exact}
    if timed_out:
        return MethodOutput(inc_dec, "time_limit", min(lower, ub), info)
    # every decision with objective < ub lies in the final window and was scored: ub is optimal
    return MethodOutput(inc_dec, "optimal", ub, info)


def solve_dp(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum of P1 by the count DP (objective 'delay'); falls back to the MILP where the DP value is
    only a bound (server-1 queue inversions) or for 'delay+lb'."""
    if inst.objective != "delay":
        enum = solve_lb_enum(inst, opts)
        if enum is not None and enum.status == "optimal":
            return enum
        out = solve_milp(inst, opts)
        out.info["method"] = "milp-oa (count-DP window enumeration did not apply or ran out of time)"
        return out
    t0 = time.perf_counter()
    # the DP gets 70 % of the time; the rest is left to the MILP fallback so a time-out still reports a bound
    deadline = None if opts.time_limit is None else t0 + 0.7 * opts.time_limit
    from solvers.heuristics.dtomalb import lb_greedy

    inc_dec = lb_greedy(inst, opts).decision
    inc = float(delays(inst, inc_dec.a[None, :]).objective[0])
    Ks: list[int | None] = [None] if inst.bandwidth_split == "all" else list(range(inst.N + 1))
    bound = np.inf
    all_exact, finished = True, True
    for K in Ks:
        lb_sum, a, exact, done = _count_dp(inst, K, inc * inst.N, deadline)
        finished &= done
        all_exact &= exact
        if not done:
            bound = -np.inf
            break
        bound = min(bound, lb_sum / inst.N)
        if a is not None:
            obj = float(delays(inst, a[None, :]).objective[0])
            if obj < inc:
                inc, inc_dec = obj, Decision(a=a)
    info = {"dp_exact": all_exact, "dp_finished": finished}
    # always-valid fallback bound: every user at its cheapest target, ignoring all waits (eqs. 6-11)
    static = float(np.min([_data(inst, K)["cost"].min(axis=1).sum() for K in Ks])) / inst.N
    if finished and (all_exact or inc - bound <= opts.mip_gap * max(abs(inc), 1e-12)):
        return MethodOutput(inc_dec, "optimal", min(bound, inc), info)
    # inversions left a gap (or time ran out): the MILP settles it with the remaining time
    left = None if opts.time_limit is None else max(1.0, t0 + opts.time_limit - time.perf_counter())
    out = solve_milp(inst, SolveOptions(left, opts.mip_gap, opts.threads, opts.seed, opts.verbose))
    info.update(out.info, fallback="milp")
    b = max(out.bound if out.bound is not None else -np.inf, static)
    if np.isfinite(bound):
        b = max(b, bound)
    dec, status = out.decision, out.status
    if dec is None or float(delays(inst, dec.a[None, :]).objective[0]) > inc:
        dec = inc_dec
    return MethodOutput(dec, status, float(b) if np.isfinite(b) else None, info)


METHODS = [
    MethodSpec(
        "exact",
        "exact",
        solve_dp,
        "count-state DP over queue positions (P1); MILP settles server-1 queue inversions and delay+lb",
        certified=True,
    ),
    MethodSpec(
        "milp",
        "exact",
        solve_milp,
        "MILP of P1, exact product linearization + valid wait cuts, HiGHS (outer approximation for delay+lb)",
        certified=True,
    ),
    MethodSpec(
        "pyomo-scip",
        "exact",
        solve_scip,
        "the same Pyomo model solved by SCIP (generic MINLP yardstick; var(LD) as a quadratic)",
        certified=True,
        in_bench=False,
    ),
    MethodSpec(
        "brute-force",
        "exact",
        solve_brute_force,
        "enumerate all (M+1)^N decisions with the vectorized evaluator (tiny instances only)",
        certified=True,
        in_bench=False,
    ),
]
