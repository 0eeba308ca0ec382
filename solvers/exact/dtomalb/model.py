"""Pyomo model of DTOMALB P1 (eq. 12), or of w1*P1 + w2*var(LD) (eq. 20), in the MO-book style.

The FCFS wait of eq. (8) makes the objective quadratic in the binaries (a task waits for the work of the earlier
tasks *at the same server*); it is linearized exactly with one continuous z_{i,n,m} >= a_{i,m} + a_{n,m} - 1, z >= 0
per ordered pair at a server (exact because the objective coefficients are positive and minimized). The LP relaxation
of that is weak, so the model adds valid convex-envelope cuts on each server's total wait (see :func:`_wait_cuts`).
With the load-balancing objective ('delay+lb') the convex w2·var(LD) term (eq. 19) is either kept quadratic (SCIP) or
outer-approximated by tangent planes (a MILP at every step, for HiGHS).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from mecopt.core import SolverError
from mecopt.problems.dtomalb import Decision, Instance
from solvers.exact.dtomalb.structured import _data


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


def _latest_starts(inst: Instance, arr: np.ndarray, comp: np.ndarray, ahead: np.ndarray) -> np.ndarray:
    """Latest possible physical-FCFS start of each user at each server (D12): every task ahead of it is there too
    (adding a task to a FCFS queue never makes a later one start earlier)."""
    N, M = inst.N, inst.M
    late = np.zeros((N, M))
    for s in range(M):
        free = float(inst.backlog[s])
        for n in np.argsort(ahead[s].sum(axis=0), kind="stable"):  # queue position = number of tasks ahead
            late[n, s] = max(arr[n, s], free)
            free = late[n, s] + comp[n, s]
    return late


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

    if inst.queue_model == "fcfs":
        # physical FCFS (D12): user n waits w_n >= 0; it starts at arrival + w_n, after the backlog and after every
        # earlier task at the same server has finished (precedences with per-pair big-M, active when both are there)
        arr = d["arrive"]  # (N, M) arrival time at each server, eqs. (7), (9)
        late = _latest_starts(inst, arr, comp, ahead)  # (N, M) start of n at s if every earlier task were there too
        late_any = late.max(axis=1)
        wmax = (late - arr).max(axis=1)
        m.w = pyo.Var(m.USERS, bounds=lambda m, n: (0, float(wmax[n])), doc="FCFS wait of user n, eq. (8) (D12)")
        m.start = pyo.Expression(m.USERS, rule=lambda m, n: sum(arr[n, s - 1] * m.a[n, s] for s in m.SERVERS) + m.w[n])

        @m.Constraint(m.USERS, doc="eq. (8), D12: a local task has no wait")
        def no_wait_local(m, n):
            return m.w[n] <= float(wmax[n]) * (1 - m.a[n, 0])

        @m.Constraint(m.USERS, m.SERVERS, doc="eq. (8), D12: service starts after the backlog LD_m(t), eq. (13)")
        def after_backlog(m, n, s):
            return m.start[n] >= inst.backlog[s - 1] * m.a[n, s]

        # i ahead of n at s can delay n only if i may still run when n arrives (else the pair is implied)
        prec = [(i, n, s) for (i, n, s) in pairs if arr[n, s - 1] < late[i, s - 1] + comp[i, s - 1]]
        m.PREC = pyo.Set(initialize=prec, dimen=3)

        @m.Constraint(m.PREC, doc="eq. (8), D12: n starts after i (ahead of it at server s) has finished")
        def fcfs_precedence(m, i, n, s):
            c = comp[i, s - 1]
            return m.start[n] >= m.start[i] + c - (late[i, s - 1] + c) * (1 - m.a[n, s]) - (
                late_any[i] + c - arr[n, s - 1]
            ) * (1 - m.a[i, s])

        m.wait = pyo.Expression(m.SERVERS, rule=lambda m, s: sum(m.w[n] for n in m.USERS) if s == 1 else 0.0)
        cost = cost.copy()
        cost[:, 1:] -= inst.backlog[None, :]  # the backlog enters through `after_backlog`, not as a fixed wait
        cuts = False  # the convex-envelope cuts hold for the cumulative wait only
    else:
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

        @m.Constraint(m.CUTS, doc="eq. (8): valid convex-envelope cut on a server's total FCFS wait (see _wait_cuts)")
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
