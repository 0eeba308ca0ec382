"""Exact method of DTOMALB for the physical FCFS queue (``queue_model='fcfs'``, decision D12): a label-setting DP.

Under physical FCFS a task's delay (eqs. 8-11) is its *finish time* counted from the slot start: it arrives at
t_up (server 1) or t_up + t_tran (servers 2..M, eq. 9), starts at max(arrival, time the server becomes free) and runs
C_n/f_m. The count-state DP of :mod:`.structured` does not apply (the pair structure of the literal eq. (8) is gone:
whether an earlier task delays a later one depends on idle gaps). Instead the arrivals are processed as events in time
order -- each user has an upload event (choose local, server 1, or "forwarded") and a forwarding event (a forwarded
user picks its server 2..M) -- so every server sees its tasks in its own FCFS order, exactly as in ``delays``. A label
is (sum of delays so far, time each server becomes free F_1..F_M, loads, the set of forwarded users still in flight).
Future delays are non-decreasing in F, so a label whose F and cost are both no better than another's (same in-flight
set) can be dropped; labels whose cost plus a lower bound on the users still to place (each at its best target given
the current F, ignoring the others; for 'delay+lb' plus w2 times the water-filling bound of :func:`_var_lower_bound`)
exceeds the incumbent are pruned. Both rules keep an optimal completion, so the best surviving final label is
optimal.

For 'delay+lb' (eq. 20) the dominance test also accounts for var(LD) exactly: with loads x_A, x_B of two labels and
future loads y, var(x_A + y) - var(x_B + y) = var(x_A) - var(x_B) + (2/M) d.y with d = (x_A - x_B) centred, and
max_y d.y = sum over the users still to place of max(0, max_m d_m C_n/f_m); A dominates B when its delay term plus
that worst case is no worse.
"""

from __future__ import annotations

import numpy as np

from mecopt.core import Deadline, MethodOutput, SolveOptions
from mecopt.problems.dtomalb import Decision, Instance, delays, upload_rate

#: labels per group above which the pairwise dominance test is done in chunks
_CHUNK = 512


def _events(inst: Instance, t_up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user, kind) of the 2N events in processing order; kind 0 = upload (server 1 arrival), 1 = forwarding."""
    N = inst.N
    t_tran = inst.L / inst.mu  # eq. (9)
    if inst.queue_order == "arrival":
        times = np.concatenate([t_up, t_up + t_tran])
    else:  # index order (D2): both events of user n at "time" n, upload first
        times = np.concatenate([np.arange(N, dtype=float), np.arange(N, dtype=float)])
    users = np.concatenate([np.arange(N), np.arange(N)])
    kinds = np.concatenate([np.zeros(N, dtype=np.int64), np.ones(N, dtype=np.int64)])
    # per server the order must be (arrival key, user index), as in `delays`; kind breaks ties for one user
    order = np.lexsort((kinds, users, times))
    return users[order], kinds[order]


def _var_lower_bound(X: np.ndarray, budget: float) -> np.ndarray:
    """Least var(X + y) over y >= 0 with sum(y) <= budget, per row of X (L, M): water-filling (KKT of the convex
    problem: the raised loads share one level lam, the others are >= lam). The users still to place add at most
    ``budget`` = sum_n max_m C_n/f_m seconds of load in total, so this bounds the final var(LD) (eq. 19) below."""
    Xs = np.sort(X, axis=1)
    L, M = Xs.shape
    csum = np.cumsum(Xs, axis=1)
    level = np.full(L, -np.inf)
    for j in range(M):  # raise the j+1 lowest loads to a common level lam in [Xs[j], Xs[j+1]]
        lam = (budget + csum[:, j]) / (j + 1)
        hi = Xs[:, j + 1] if j + 1 < M else np.full(L, np.inf)
        ok = (lam >= Xs[:, j]) & (lam <= hi)
        level = np.where(ok & ~np.isfinite(level), lam, level)
    Z = np.maximum(X, level[:, None])
    return Z.var(axis=1)


def _dominates(
    i: np.ndarray,
    j: np.ndarray,
    cost: np.ndarray,
    F: np.ndarray,
    X: np.ndarray,
    rest_c: np.ndarray | None,
    inst: Instance,
) -> np.ndarray:
    """Elementwise: does label j dominate label i (every completion of i is matched or beaten by j's)?"""
    le = np.all(F[j] <= F[i] + 1e-15, axis=1)
    if inst.objective == "delay":
        return le & (cost[j] <= cost[i])
    base = inst.w1 * (cost[j] - cost[i]) / inst.N + inst.w2 * (X[j].var(axis=1) - X[i].var(axis=1))
    ok = le & (base <= 0.0)
    out = np.zeros(len(i), dtype=bool)
    k = np.flatnonzero(ok)
    if len(k):
        d = X[j[k]] - X[i[k]]
        d = d - d.mean(axis=1, keepdims=True)
        assert rest_c is not None
        worst = np.maximum(0.0, (d[:, None, :] * rest_c[None, :, :]).max(axis=2)).sum(axis=1)  # max_y d.y
        out[k] = base[k] + 2.0 * inst.w2 / inst.M * worst <= 0.0
    return out


def _prune_dominated(
    cost: np.ndarray, F: np.ndarray, X: np.ndarray, group: np.ndarray, rest_c: np.ndarray | None, inst: Instance
) -> np.ndarray:
    """Mask of labels to keep: drop every label dominated by another one of the same group (ties keep the first)."""
    keep = np.ones(len(cost), dtype=bool)
    lb = inst.objective != "delay"
    srt = np.lexsort((cost, group))
    g_sorted = group[srt]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(srt)]
    for s, e in zip(starts, ends, strict=True):
        idx = srt[s:e]
        if len(idx) < 2:
            continue
        for c0 in range(0, len(idx), _CHUNK):
            i = idx[c0 : c0 + _CHUNK]  # candidates to be dominated
            # cheap necessary conditions on all pairs: F_j <= F_i and (delay) cost_j <= cost_i
            le = np.all(F[None, idx, :] <= F[i, None, :] + 1e-15, axis=2)  # (|i|, |idx|)
            if lb:
                base = inst.w1 * (cost[None, idx] - cost[i, None]) / inst.N + inst.w2 * (
                    X[idx].var(axis=1)[None, :] - X[i].var(axis=1)[:, None]
                )
                le &= base <= 0.0
            else:
                le &= cost[None, idx] <= cost[i, None]
            le[np.arange(len(i)), np.arange(c0, c0 + len(i))] = False  # a label never removes itself
            ii, jj = np.nonzero(le)
            if len(ii) == 0:
                continue
            dom = _dominates(i[ii], idx[jj], cost, F, X, rest_c, inst) if lb else np.ones(len(ii), dtype=bool)
            # mutual dominance (ties): the label earlier in idx survives
            later = jj > np.arange(c0, c0 + len(i))[ii]
            chk = np.flatnonzero(dom & later)
            if len(chk):
                back = _dominates(idx[jj[chk]], i[ii[chk]], cost, F, X, rest_c, inst)
                dom[chk[back]] = False
            keep[np.unique(i[ii[dom]])] = False
    return keep


def _label_dp(
    inst: Instance, K: int | None, upper: float, deadline: Deadline
) -> tuple[float, np.ndarray | None, bool, int]:
    """Best objective (or ``upper`` if nothing beats it) and its decision for exactly K offloaders (None = any).

    Returns (objective, decision or None, finished, peak number of labels)."""
    N, M = inst.N, inst.M
    share = float(N) if inst.bandwidth_split == "all" else float(max(K or 1, 1))
    t_up = inst.L / upload_rate(inst, np.array([share]))[0]  # eqs. (5), (7)
    t_tran = inst.L / inst.mu  # eq. (9)
    comp = inst.C[:, None] / inst.f[None, :]  # C_n / f_m, eq. (8)
    t_local = inst.C / inst.f_local  # eq. (6)
    lb = inst.objective != "delay"
    users, kinds = _events(inst, t_up)
    arrive = np.concatenate([t_up[:, None], np.repeat((t_up + t_tran)[:, None], M - 1, axis=1)], axis=1)  # (N, M)
    # labels
    cost = np.zeros(1)
    F = inst.backlog[None, :].astype(float).copy()  # server m free at F_m (backlog queued from slot start, D3)
    X = inst.backlog[None, :].astype(float).copy()  # loads LD_m, eq. (13)
    pend = np.zeros(1, dtype=np.int64)  # bitmask of forwarded users in flight
    noff = np.zeros(1, dtype=np.int64)
    tgt = np.zeros((1, N), dtype=np.int64)
    done_up = np.zeros(N, dtype=bool)
    peak = 1

    def scale(c: np.ndarray) -> np.ndarray:
        return c / N if not lb else inst.w1 * c / N

    slack = 1e-12 * max(1.0, abs(upper))
    for n, kind in zip(users, kinds, strict=True):
        if deadline.expired():
            return upper, None, False, peak
        bit = np.int64(1) << np.int64(n)
        if kind == 0:
            done_up[n] = True
            parts = []
            # local, eq. (6)
            parts.append((cost + t_local[n], F, X, pend, noff, 0))
            # server 1: finish time = delay, eqs. (7), (8), (10)
            F1 = F.copy()
            fin = np.maximum(arrive[n, 0], F[:, 0]) + comp[n, 0]
            F1[:, 0] = fin
            X1 = X.copy()
            X1[:, 0] += comp[n, 0]
            parts.append((cost + fin, F1, X1, pend, noff + 1, 1))
            if M >= 2:  # forwarded: the server is chosen at the forwarding event
                parts.append((cost.copy(), F, X, pend | bit, noff + 1, -1))
            cost = np.concatenate([p[0] for p in parts])
            F = np.concatenate([p[1] for p in parts])
            X = np.concatenate([p[2] for p in parts])
            pend = np.concatenate([p[3] for p in parts])
            noff = np.concatenate([p[4] for p in parts])
            tgt = np.concatenate([np.repeat(tgt, 1, axis=0) for _ in parts])
            tgt[:, n] = np.concatenate([np.full(len(p[0]), p[5]) for p in parts])
        else:
            fw = (pend & bit) != 0
            if not fw.any():
                continue
            stay = ~fw
            parts_c, parts_F, parts_X, parts_p, parts_n, parts_t = (
                [cost[stay]],
                [F[stay]],
                [X[stay]],
                [pend[stay]],
                [noff[stay]],
                [tgt[stay]],
            )
            for m in range(2, M + 1):
                Fm = F[fw].copy()
                fin = np.maximum(arrive[n, m - 1], Fm[:, m - 1]) + comp[n, m - 1]  # eqs. (8)-(11)
                Fm[:, m - 1] = fin
                Xm = X[fw].copy()
                Xm[:, m - 1] += comp[n, m - 1]
                tm = tgt[fw].copy()
                tm[:, n] = m
                parts_c.append(cost[fw] + fin)
                parts_F.append(Fm)
                parts_X.append(Xm)
                parts_p.append(pend[fw] & ~bit)
                parts_n.append(noff[fw])
                parts_t.append(tm)
            cost = np.concatenate(parts_c)
            F = np.concatenate(parts_F)
            X = np.concatenate(parts_X)
            pend = np.concatenate(parts_p)
            noff = np.concatenate(parts_n)
            tgt = np.concatenate(parts_t)
        # ---- prune: K, bound, dominance
        todo = np.flatnonzero(~done_up)  # users whose upload event is still ahead
        keep = np.ones(len(cost), dtype=bool)
        if K is not None:
            keep &= (noff <= K) & (noff + len(todo) >= K)
        # lower bound on the users still to place: each at its best target given the current F (F only grows)
        rem = np.zeros(len(cost))
        if len(todo):
            best_srv = (np.maximum(arrive[None, todo, :], F[:, None, :]) + comp[None, todo, :]).min(axis=2)
            rem += np.minimum(best_srv, t_local[None, todo]).sum(axis=1)
        pend_users = [u for u in range(N) if done_up[u] and tgt[:, u].min() == -1]
        for u in pend_users:
            is_p = tgt[:, u] == -1
            b = (np.maximum(arrive[u, 1:][None, :], F[:, 1:]) + comp[u, 1:][None, :]).min(axis=1)
            rem += np.where(is_p, b, 0.0)
        low = scale(cost + rem)
        if lb and inst.w2 > 0:  # var(LD) >= its water-filling bound given the loads still to come
            still_up = np.r_[todo, np.array(pend_users, dtype=np.int64)]
            budget = float(comp[still_up].max(axis=1).sum()) if len(still_up) else 0.0
            low = low + inst.w2 * _var_lower_bound(X, budget)
        keep &= low <= upper + slack
        cost, F, X, pend, noff, tgt = cost[keep], F[keep], X[keep], pend[keep], noff[keep], tgt[keep]
        if len(cost) == 0:
            return upper, None, True, peak
        group = pend * (N + 1) + noff
        rest_c = None
        if lb:
            still = np.r_[todo, np.array(pend_users, dtype=np.int64)]
            rest_c = comp[still] if len(still) else np.zeros((1, M))
        k2 = _prune_dominated(cost, F, X, group, rest_c, inst)
        cost, F, X, pend, noff, tgt = cost[k2], F[k2], X[k2], pend[k2], noff[k2], tgt[k2]
        peak = max(peak, len(cost))
    final = scale(cost) + (inst.w2 * X.var(axis=1) if lb else 0.0)
    if K is not None:
        final = np.where(noff == K, final, np.inf)
    best = int(np.argmin(final))
    if not np.isfinite(final[best]) or final[best] > upper + slack:
        return upper, None, True, peak
    return float(final[best]), tgt[best].copy(), True, peak


def _one_opt(inst: Instance, a: np.ndarray) -> tuple[np.ndarray, float]:
    """Best-improvement single-user moves, all candidates of a round scored by one vectorized ``delays`` call."""
    a = a.copy()
    best = float(delays(inst, a[None, :]).objective[0])
    while True:
        cand = np.repeat(a[None, :], inst.N * (inst.M + 1), axis=0)
        cand[np.arange(len(cand)), np.repeat(np.arange(inst.N), inst.M + 1)] = np.tile(np.arange(inst.M + 1), inst.N)
        obj = delays(inst, cand).objective
        k = int(np.argmin(obj))
        if obj[k] >= best * (1 - 1e-15):
            return a, best
        a, best = cand[k].copy(), float(obj[k])


def solve_fcfs(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum under the physical FCFS queue (D12) by the event-ordered label DP; both objectives."""
    from solvers.heuristics.dtomalb import lb_greedy, selfish

    deadline = Deadline.of(opts)
    incs = [lb_greedy(inst, opts).decision, selfish(inst, opts).decision]
    polished = [_one_opt(inst, np.asarray(d.a, dtype=np.int64)) for d in incs]
    k = int(np.argmin([v for _, v in polished]))
    inc, inc_dec = polished[k][1], Decision(a=polished[k][0])
    Ks: list[int | None] = [None] if inst.bandwidth_split == "all" else list(range(inst.N + 1))
    finished, peak = True, 0
    for K in Ks:
        val, a, done, pk = _label_dp(inst, K, inc, deadline)
        peak = max(peak, pk)
        finished &= done
        if not done:
            break
        if a is not None:
            obj = float(delays(inst, a[None, :]).objective[0])
            if obj < inc:
                inc, inc_dec = obj, Decision(a=a)
    info = {"method": "event-ordered label DP (physical FCFS)", "peak_labels": peak}
    if not finished:
        # valid bound: every user at its cheapest target ignoring the slot's other tasks (F only grows)
        return MethodOutput(inc_dec, "time_limit", None, info)
    return MethodOutput(inc_dec, "optimal", inc, info)
