"""The structured exact method of DTOMALB (one slot): dynamic programming over per-server queue counts.

Charging each FCFS pair (eq. 8) to the earlier task, a task placed at server m costs its own delay plus C_n/f_m for
every task *behind* it there; taking users from the last to the first in the queue order, the cost-to-go depends only
on the per-server counts of tasks already placed. A dynamic program over count vectors (pruned by an incumbent and a
lower bound) is exact when the servers' queue orders agree, and a valid bound otherwise (server 1 sees arrivals
without the forwarding time: "inverted" pairs are charged the smaller work); then the MILP of :mod:`.model` settles
the instance. For 'delay+lb' (eq. 20) a window enumeration guided by the exact count-DP cost-to-go certifies the
optimum where it applies (:func:`solve_lb_enum`).
"""

from __future__ import annotations

import numpy as np

from mecopt.core import Deadline, MethodOutput, SolveOptions
from mecopt.problems.dtomalb import Decision, Instance, delays, upload_rate


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
    arrive = np.concatenate([t_up[:, None], np.repeat((t_up + t_tran)[:, None], M - 1, axis=1)], axis=1)
    return {"cost": cost, "comp": comp, "ahead": ahead, "arrive": arrive}


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
    inst: Instance, K: int | None, upper: float, deadline: Deadline | None
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
        if deadline is not None and deadline.expired():
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
    deadline = Deadline.of(opts)
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
            if leaves % 256 == 0 and deadline.expired():
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
