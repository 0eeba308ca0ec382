"""The structure-exploiting certified algorithm for one round of DTAC (problem (13) of Han et al., Section II).

Method ``exact`` (:func:`search`): enumerate the offloading vector x in {0,1,2}^N best-first by a cheap valid lower
bound (plus a pigeonhole bound for cells with more offloaders than channels), prune by bound, and for each
surviving x solve the continuous part exactly:

* channels: only the partition of each cell's offloaders into channel groups matters (labels are symmetric,
  cells do not interfere, eq. 5); a cell with at most L offloaders uses distinct channels (dominance: every
  rate is weakly higher); a cell with more uses a partition into exactly L groups
  (a split never lowers a rate).
* without interference the problem in (T, upload times t_j, local times) is convex: E_u = a P_UE t is the
  perspective t (2^{S/(tB)}-1) P/gamma of a convex function, E_c = kappa (SC)^3 / t^2 (eqs. 3, 6); it is
  solved by a 1-D search on T with per-queue Lagrange multipliers (closed form via Lambert W) and certified
  by the Lagrangian dual bound (two-tangent bound of the convex 1-D dual function).
* interference (same cell, same channel, eq. 5): members whose time does not count (cloud-bound under the
  literal eq. 12) take a = a_min (their energy and the interference they cause both increase with a); the
  powers of the other members are found by spatial branch and bound on a, with monotone bounds on the rates
  (a rate is increasing in its own power and decreasing in the others').

Its time limit is one :class:`mecopt.core.Deadline` shared by the enumeration and every branch and bound.
The Pyomo MINLP of the same round is in :mod:`solvers.exact.dtac.model`; the methods in
:mod:`solvers.exact.dtac`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.special import lambertw

from mecopt.core import Deadline, MethodOutput
from mecopt.problems.dtac import Decision, Instance, precompute, rate, terms

LN2 = math.log(2.0)
GRID = 96  # T grid points of the cheap lower bound
CHUNK = 4096  # candidates per vectorized chunk
SLICE_NODES = 40  # branch-and-bound nodes per visit of an (x, l) pair with interference
MAX_ENUM_N = 14  # beyond this the 3^N enumeration is not attempted (status time_limit, trivial bound)


# ----------------------------------------------------------------------------------------------------
# Per-instance context
# ----------------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    inst: Instance
    S: np.ndarray
    SC: np.ndarray
    gamma: np.ndarray  # P_UE |h|^2 / sigma^2
    wn: np.ndarray  # interference coefficient / sigma^2 (eq. 5, D2)
    P: float
    B: float
    tu_lo: np.ndarray  # upload time alone at a = 1
    tu_hi: np.ndarray  # upload time alone at a = a_min
    tl_lo: np.ndarray  # local time at b = 1
    tl_hi: np.ndarray  # local time at b = b_min
    kap3: np.ndarray  # kappa (SC)^3: E_c = kap3 / t^2
    edge_c: np.ndarray  # (1-c) SC / F_E + S_o / R(k,n): constant part of an edge task's queue entry
    cloud_c: np.ndarray  # SC / F_C (+ S_o/R(k,n) in the consistent variant)
    T22: np.ndarray
    onehot: np.ndarray  # (N, K)
    consistent: bool


def make_ctx(inst: Instance) -> Ctx:
    pre = precompute(inst)
    gamma = pre.g / inst.sigma2
    consistent = inst.round_time == "consistent"
    return Ctx(
        inst=inst,
        S=pre.S,
        SC=pre.SC,
        gamma=gamma,
        wn=pre.w / inst.sigma2,
        P=inst.P_UE,
        B=inst.B,
        tu_lo=pre.S / rate(inst.B, gamma),
        tu_hi=pre.S / rate(inst.B, inst.a_min * gamma),
        tl_lo=pre.SC / inst.F_UE,
        tl_hi=pre.SC / (inst.b_min * inst.F_UE),
        kap3=inst.kappa * pre.SC**3,
        edge_c=pre.comp_edge + pre.t_down,
        cloud_c=pre.comp_cloud + (pre.t_down if consistent else 0.0),
        T22=pre.T22,
        onehot=pre.onehot,
        consistent=consistent,
    )


def phi(t: np.ndarray, S: np.ndarray, geff: np.ndarray, P: float, B: float) -> np.ndarray:
    """Upload energy as a function of upload time: E = a P t, a = (2^{S/(tB)} - 1)/gamma_eff (eqs. 4, 6)."""
    return (P / geff) * t * np.expm1(S / (t * B) * LN2)


def dphi(t: np.ndarray, S: np.ndarray, geff: np.ndarray, P: float, B: float) -> np.ndarray:
    u = S / (t * B)
    return (P / geff) * (np.exp(u * LN2) * (1.0 - u * LN2) - 1.0)


def t_of_lambda(
    lam: float, S: np.ndarray, geff: np.ndarray, P: float, B: float, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """argmin_t phi(t) + lam t on [lo, hi]: 2^u (u ln2 - 1) + 1 = lam gamma / P, u = S/(tB) (Lambert W)."""
    if lam <= 0:
        return hi.copy()
    z = lam * geff / P
    wv = np.real(lambertw((z - 1.0) / math.e))
    u = (1.0 + wv) / LN2
    with np.errstate(divide="ignore"):
        t = np.where(u > 0, S / (np.maximum(u, 1e-300) * B), np.inf)
    return np.clip(t, lo, hi)


# ----------------------------------------------------------------------------------------------------
# Cheap lower bound for a batch of offloading vectors (valid for every channel choice and every a, b)
# ----------------------------------------------------------------------------------------------------
def cheap_lower_bounds(ctx: Ctx, X: np.ndarray) -> np.ndarray:
    inst = ctx.inst
    X = np.asarray(X)
    C, N = X.shape
    loc = X == 0
    e1 = X == 1
    c2 = X == 2
    queued_cloud = c2 if ctx.consistent else np.zeros_like(c2)
    oh = ctx.onehot
    ce = (np.where(e1, ctx.edge_c, 0.0)) @ oh  # (C, K)
    lo_e = ce + np.where(e1, ctx.tu_lo, 0.0) @ oh
    hi_e = ce + np.where(e1, ctx.tu_hi, 0.0) @ oh
    t22 = np.where(c2, ctx.T22, 0.0).max(axis=1)
    cc = np.where(c2, ctx.cloud_c, 0.0).sum(axis=1) + t22  # (C,)
    lo_c = cc + np.where(queued_cloud, ctx.tu_lo, 0.0).sum(axis=1)
    hi_c = cc + np.where(queued_cloud, ctx.tu_hi, 0.0).sum(axis=1)
    any_c = c2.any(axis=1)
    lo_c = np.where(any_c, lo_c, 0.0)
    hi_c = np.where(any_c, hi_c, 0.0)
    Tdom = np.maximum.reduce([np.where(loc, ctx.tl_lo, 0.0).max(axis=1), lo_e.max(axis=1), lo_c])
    Ttop = np.maximum.reduce([Tdom, np.where(loc, ctx.tl_hi, 0.0).max(axis=1), hi_e.max(axis=1), hi_c])
    Tdom = np.maximum(Tdom, 1e-12)
    Ttop = np.maximum(Ttop, Tdom)
    frac = np.linspace(0.0, 1.0, GRID)
    Tg = Tdom[:, None] * (Ttop / Tdom)[:, None] ** frac[None, :]  # (C, G)
    T3 = Tg[:, :, None]
    # queue of each UE: lower bound of the time the other members need
    lo_q = np.where(e1, (lo_e @ oh.T), np.where(queued_cloud, lo_c[:, None], 0.0))  # (C, N)
    queued = e1 | queued_cloud
    slack = T3 - lo_q[:, None, :] + ctx.tu_lo[None, None, :]
    t_up = np.where(queued[:, None, :], np.minimum(ctx.tu_hi, np.maximum(slack, ctx.tu_lo)), ctx.tu_hi)
    E_up = phi(t_up, ctx.S, ctx.gamma, ctx.P, ctx.B)
    t_loc = np.minimum(T3, ctx.tl_hi)
    E_loc = ctx.kap3 / np.maximum(t_loc, ctx.tl_lo) ** 2
    E = np.where(loc[:, None, :], E_loc, E_up).sum(axis=2)  # (C, G)
    vals = inst.w1 * Tg[:, :-1] + inst.w2 * E[:, 1:]
    last = inst.w1 * Tg[:, -1] + inst.w2 * E[:, -1]
    return np.minimum(vals.min(axis=1) if GRID > 1 else last, last)


# ----------------------------------------------------------------------------------------------------
# Convex core: fixed x, no interference among the free members; some members' (time, energy) fixed
# ----------------------------------------------------------------------------------------------------
@dataclass
class CoreResult:
    T: float
    t_up: np.ndarray  # upload times of free members (nan elsewhere)
    t_loc: np.ndarray  # local times (nan elsewhere)
    lb: float
    feasible: bool = True


def _queues(ctx: Ctx, x: np.ndarray, fix_t: np.ndarray) -> tuple[list[tuple[float, np.ndarray]], float]:
    """(constant, free members) of every queue, and the fixed lower bound on T from unqueued terms."""
    out: list[tuple[float, np.ndarray]] = []
    server = ctx.inst.server
    fixed = ~np.isnan(fix_t)
    ft = np.where(fixed, fix_t, 0.0)
    for k in range(ctx.inst.K):
        mem = np.flatnonzero((x == 1) & (server == k))
        if mem.size:
            c = float(ctx.edge_c[mem].sum() + ft[mem].sum())
            out.append((c, mem[~fixed[mem]]))
    cl = np.flatnonzero(x == 2)
    T_fixed = 0.0
    if cl.size:
        base = float(ctx.cloud_c[cl].sum() + ctx.T22[cl].max())
        if ctx.consistent:
            out.append((base + float(ft[cl].sum()), cl[~fixed[cl]]))
        else:
            T_fixed = base
    return out, T_fixed


def solve_core(ctx: Ctx, x: np.ndarray, fix_t: np.ndarray, fix_E: np.ndarray) -> CoreResult:
    """min w1 T + w2 (sum of energies) for fixed x; members with finite fix_t/fix_E are constants."""
    inst = ctx.inst
    w1, w2 = inst.w1, inst.w2
    P, B = ctx.P, ctx.B
    queues, T_fixed = _queues(ctx, x, fix_t)
    loc = np.flatnonzero(x == 0)
    fixed = ~np.isnan(fix_t) | (fix_E > 0)
    queued_mask = np.zeros(inst.N, dtype=bool)
    for _, mem in queues:
        queued_mask[mem] = True
    # unqueued, uninterfered offloaders (cloud-bound under literal eq. 12): a = a_min, t = tu_hi (D13)
    free_unq = np.flatnonzero((x >= 1) & ~queued_mask & ~fixed)
    E_const = float(fix_E.sum() + phi(ctx.tu_hi[free_unq], ctx.S[free_unq], ctx.gamma[free_unq], P, B).sum())
    Tdom = max(
        [T_fixed, 1e-300] + [float(ctx.tl_lo[i]) for i in loc] + [c + float(ctx.tu_lo[m].sum()) for c, m in queues]
    )
    Ttop = max([Tdom] + [float(ctx.tl_hi[i]) for i in loc] + [c + float(ctx.tu_hi[m].sum()) for c, m in queues])

    def lam_q(beta: float, m: np.ndarray) -> float:
        if m.size == 0:
            return 0.0
        S, g, lo, hi = ctx.S[m], ctx.gamma[m], ctx.tu_lo[m], ctx.tu_hi[m]
        if hi.sum() <= beta:
            return 0.0
        if lo.sum() >= beta:
            return float(np.max(-dphi(lo, S, g, P, B)))
        l_lo = max(float(np.min(-dphi(hi, S, g, P, B))), 1e-300)
        l_hi = float(np.max(-dphi(lo, S, g, P, B)))
        if l_hi <= l_lo:
            return l_hi

        def f(ll: float) -> float:
            return float(t_of_lambda(math.exp(ll), S, g, P, B, lo, hi).sum() - beta)

        a_, b_ = math.log(l_lo), math.log(l_hi)
        fa, fb = f(a_), f(b_)
        if fa <= 0:
            return l_lo
        if fb >= 0:
            return l_hi
        return math.exp(brentq(f, a_, b_, xtol=1e-15, rtol=1e-15, maxiter=200))

    kap = ctx.kap3[loc]
    tlh = ctx.tl_hi[loc]

    def local_slope(T: float) -> float:
        return float(np.sum(np.where(T < tlh, 2.0 * kap / T**3, 0.0)))

    def dg(T: float) -> float:
        return w1 - w2 * (sum(lam_q(T - c, m) for c, m in queues) + local_slope(T))

    if dg(Tdom) >= 0:
        T_hat = Tdom
    elif Ttop > Tdom and dg(Ttop) < 0:
        T_hat = Ttop
    else:
        T_hat = brentq(dg, Tdom, Ttop, xtol=1e-15 * Ttop, rtol=1e-15, maxiter=300) if Ttop > Tdom else Tdom
    lams = [lam_q(T_hat - c, m) for c, m in queues]
    t_up = np.full(inst.N, np.nan)
    for (c, m), lam in zip(queues, lams, strict=True):
        if m.size:
            t = t_of_lambda(lam, ctx.S[m], ctx.gamma[m], P, B, ctx.tu_lo[m], ctx.tu_hi[m])
            beta = T_hat - c
            s = t.sum()
            if s > beta and s > ctx.tu_lo[m].sum():  # round-off: shrink towards the lower bounds
                t = ctx.tu_lo[m] + (t - ctx.tu_lo[m]) * max(0.0, (beta - ctx.tu_lo[m].sum())) / (s - ctx.tu_lo[m].sum())
            t_up[m] = t
    t_up[free_unq] = ctx.tu_hi[free_unq]
    t_loc = np.full(inst.N, np.nan)
    t_loc[loc] = np.minimum(T_hat, tlh)
    # Lagrangian lower bound h(T) with the multipliers fixed at lams (valid for any lams >= 0); lams are
    # scaled
    # so that w1 - w2 sum(lams) >= 0 (at a stationary T_hat this only removes round-off)
    tot = float(sum(lams))
    if w2 > 0 and tot > w1 / w2:
        lams = [lam * (w1 / w2) / tot * (1.0 - 1e-13) for lam in lams]
    Mq = 0.0
    for (c, m), lam in zip(queues, lams, strict=True):
        if m.size:
            tt = t_of_lambda(lam, ctx.S[m], ctx.gamma[m], P, B, ctx.tu_lo[m], ctx.tu_hi[m])
            Mq += float(np.sum(phi(tt, ctx.S[m], ctx.gamma[m], P, B) + lam * tt)) + lam * c
        else:
            Mq += 0.0
    Lsum = float(sum(lams))

    def h(T: float) -> float:
        return w1 * T + w2 * (float(np.sum(kap / np.minimum(T, tlh) ** 2)) + Mq - Lsum * T + E_const)

    def dh(T: float) -> float:
        return w1 - w2 * (Lsum + local_slope(T))

    if dh(Tdom) >= 0:
        lb = h(Tdom)
    elif w1 - w2 * Lsum < 0:
        lb = -math.inf  # cannot happen at a stationary T_hat; keeps the bound valid if it does
    else:
        hi_T = max(Ttop, T_hat, Tdom) * 2.0
        while dh(hi_T) < 0:
            hi_T *= 2.0
        r = brentq(dh, Tdom, hi_T, xtol=1e-15 * hi_T, rtol=1e-15, maxiter=300)
        Ta, Tb = max(Tdom, r * (1 - 1e-9)), r * (1 + 1e-9)
        ha, hb, da, db = h(Ta), h(Tb), dh(Ta), dh(Tb)
        if da > 0:
            lb = h(Tdom) if Ta == Tdom else min(ha, hb)
        elif db < 0 or da == db:
            lb = min(ha, hb)
        else:
            Tx = (hb - ha + da * Ta - db * Tb) / (da - db)
            lb = min(ha + da * (Tx - Ta), ha, hb)
    return CoreResult(T=T_hat, t_up=t_up, t_loc=t_loc, lb=lb)


# ----------------------------------------------------------------------------------------------------
# Channel partitions and interference groups
# ----------------------------------------------------------------------------------------------------
def _partitions_exact(items: list[int], k: int) -> Iterator[list[list[int]]]:
    """Set partitions of ``items`` into exactly k non-empty blocks (restricted growth strings)."""
    n = len(items)

    def rec(i: int, blocks: list[list[int]]) -> Iterator[list[list[int]]]:
        if n - i < k - len(blocks):
            return
        if i == n:
            if len(blocks) == k:
                yield [list(b) for b in blocks]
            return
        for b in blocks:
            b.append(items[i])
            yield from rec(i + 1, blocks)
            b.pop()
        if len(blocks) < k:
            blocks.append([items[i]])
            yield from rec(i + 1, blocks)
            blocks.pop()

    yield from rec(0, [])


def channel_options(inst: Instance, x: np.ndarray) -> Iterator[np.ndarray]:
    """Non-dominated channel vectors l (1-based) for offloading vector x (see module docstring)."""
    per_cell: list[list[list[list[int]]]] = []
    for k in range(inst.K):
        off = [int(n) for n in np.flatnonzero((inst.server == k) & (x >= 1))]
        if len(off) <= inst.L:
            per_cell.append([[[n] for n in off]])
        else:
            per_cell.append(list(_partitions_exact(off, inst.L)))
    for combo in itertools.product(*per_cell):
        l = np.ones(inst.N, dtype=np.int64)
        for blocks in combo:
            for c, blk in enumerate(blocks):
                l[blk] = c + 1
        yield l


@dataclass(order=True)
class _Node:
    lb: float
    seq: int
    lo: np.ndarray = field(compare=False)
    hi: np.ndarray = field(compare=False)


@dataclass
class PartResult:
    ub: float
    dec: Decision | None
    lb: float
    nodes: int = 0
    complete: bool = True


def _decision(ctx: Ctx, x: np.ndarray, l: np.ndarray, a: np.ndarray, core: CoreResult) -> Decision:
    inst = ctx.inst
    a = a.copy()
    free = ~np.isnan(core.t_up)
    if free.any():
        t = core.t_up[free]
        a[free] = np.expm1(ctx.S[free] / (t * ctx.B) * LN2) / ctx.gamma[free]
    a = np.clip(a, inst.a_min, 1.0)
    b = np.ones(inst.N)
    loc = ~np.isnan(core.t_loc)
    b[loc] = ctx.SC[loc] / (inst.F_UE * core.t_loc[loc])
    b = np.clip(b, inst.b_min, 1.0)
    return Decision(x=x, l=l, a=a, b=b)


def round_objective(inst: Instance, d: Decision) -> float:
    """Objective of eq. (13) of one decision (the problem's vectorized ``terms``, no feasibility check)."""
    return float(terms(inst, d.x[None], d.l[None], d.a[None], d.b[None]).objective[0])


def simple_decisions(inst: Instance) -> list[Decision]:
    """All-local / all-edge / all-cloud with round-robin channels at full power and frequency."""
    N = inst.N
    l = np.ones(N, dtype=np.int64)
    for k in range(inst.K):
        mem = np.flatnonzero(inst.server == k)
        l[mem] = np.arange(mem.size) % inst.L + 1
    return [Decision(x=np.full(N, xv), l=l, a=np.ones(N), b=np.ones(N)) for xv in (0, 1, 2)]


def solve_partition(
    ctx: Ctx,
    x: np.ndarray,
    l: np.ndarray,
    incumbent: float,
    tol: float,
    deadline: Deadline,
    max_nodes: int = 200000,
    root_only: bool = False,
) -> PartResult:
    """Exact continuous part for fixed (x, l): convex core, plus branch and bound on interfered powers."""
    gen = partition_bnb(ctx, x, l, incumbent, tol, deadline, max_nodes, root_only)
    res, done = next(gen)
    while not done:
        res, done = gen.send(None)
    return res


def partition_bnb(
    ctx: Ctx,
    x: np.ndarray,
    l: np.ndarray,
    incumbent: float,
    tol: float,
    deadline: Deadline,
    max_nodes: int = 200000,
    root_only: bool = False,
    slice_nodes: int = 10**9,
) -> Iterator[tuple[PartResult, bool]]:
    """Resumable form of :func:`solve_partition`: yields (snapshot, finished) every ``slice_nodes`` nodes and
    accepts a better global incumbent through ``send`` (the snapshot's lb is valid for this (x, l))."""
    inst = ctx.inst
    N = inst.N
    off = x >= 1
    queued = (x == 1) | ((x == 2) & ctx.consistent)
    groups: list[np.ndarray] = []
    for k in range(inst.K):
        for c in range(1, inst.L + 1):
            g = np.flatnonzero((inst.server == k) & off & (l == c))
            if g.size >= 2:
                groups.append(g)
    nan = np.full(N, np.nan)
    if not groups:
        core = solve_core(ctx, x, nan, np.zeros(N))
        d = _decision(ctx, x, l, np.ones(N), core)
        yield PartResult(round_objective(inst, d), d, core.lb), True
        return
    inter = np.concatenate(groups)
    var = inter[queued[inter]]  # powers to branch on
    fixed_a = inter[~queued[inter]]  # a = a_min (D13)
    gid = np.full(N, -1)
    for i, g in enumerate(groups):
        gid[g] = i

    def rates(a_own: np.ndarray, a_int: np.ndarray) -> np.ndarray:
        """Rate of each interfered member, own power a_own, the others' powers a_int (arrays of length N)."""
        R = np.empty(inter.size)
        for j, n in enumerate(inter):
            others = groups[gid[n]][groups[gid[n]] != n]
            P_I = float(np.sum(a_int[others] * ctx.wn[others]))
            R[j] = rate(ctx.B, a_own[n] * ctx.gamma[n] / (1.0 + P_I))
        return R

    def fixed_terms(a_lo: np.ndarray, a_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R = rates(a_hi, a_lo)  # best own rate over the box: own power high, the others' low
        # energy a P S / R(a, I) increases with a and with I: its minimum over the box is at (a_lo, I_lo)
        R_e = R if a_lo is a_hi else rates(a_lo, a_lo)
        ft = np.full(N, np.nan)
        fE = np.zeros(N)
        with np.errstate(divide="ignore"):
            ft[inter] = np.where(queued[inter], ctx.S[inter] / R, np.nan)
            fE[inter] = a_lo[inter] * ctx.P * ctx.S[inter] / R_e
        return ft, fE

    base_lo = np.ones(N)
    base_lo[fixed_a] = inst.a_min
    base_hi = base_lo.copy()

    def full(lo_v: np.ndarray, hi_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = base_lo.copy(), base_hi.copy()
        lo[var] = lo_v
        hi[var] = hi_v
        return lo, hi

    def node_lb(lo_v: np.ndarray, hi_v: np.ndarray) -> float:
        lo, hi = full(lo_v, hi_v)
        ft, fE = fixed_terms(lo, hi)
        if not np.all(np.isfinite(fE)):
            return math.inf
        return solve_core(ctx, x, ft, fE).lb

    def node_ub(a_v: np.ndarray) -> tuple[float, Decision]:
        a, _ = full(a_v, a_v)
        ft, fE = fixed_terms(a, a)
        core = solve_core(ctx, x, ft, fE)
        d = _decision(ctx, x, l, a, core)
        return round_objective(inst, d), d

    best_ub, best_dec = math.inf, None
    lo0 = np.full(var.size, inst.a_min)
    hi0 = np.ones(var.size)
    if var.size == 0:  # every interfered member unqueued: all at a_min, nothing left to branch on
        ub, d = node_ub(lo0)
        yield PartResult(ub, d, min(node_lb(lo0, hi0), ub)), True
        return
    if root_only:  # only the root bound: the partition is queued and branched on later if it can still win
        yield PartResult(math.inf, None, node_lb(lo0, hi0), 1, False), True
        return
    best_guess = hi0
    for guess in (hi0, np.sqrt(lo0 * hi0)):
        ub, d = node_ub(guess)
        if ub < best_ub:
            best_ub, best_dec, best_guess = ub, d, guess
    # local polish of the incumbent (upper bound only; certification comes from the bounds below)
    log_lo = np.log(lo0)

    def f_ub(z: np.ndarray) -> float:
        return node_ub(np.exp(np.clip(z, log_lo, 0.0)))[0]

    pol = minimize(
        f_ub,
        np.log(best_guess),
        method="L-BFGS-B",
        bounds=list(zip(log_lo, np.zeros(var.size), strict=True)),
        options={"maxfun": 60 * (var.size + 1), "eps": 1e-7},
    )
    ub, d = node_ub(np.exp(np.clip(pol.x, log_lo, 0.0)))
    if ub < best_ub:
        best_ub, best_dec = ub, d
    inc = min(incumbent, best_ub)
    heap: list[_Node] = []
    seq = 0
    pruned_min = math.inf  # smallest lower bound among discarded boxes
    root_lb = node_lb(lo0, hi0)
    heapq.heappush(heap, _Node(root_lb, seq, lo0, hi0))
    nodes = 1
    complete = True
    since = 0
    while heap:
        if since >= slice_nodes:
            since = 0
            snap = min([best_ub, pruned_min] + [n.lb for n in heap])
            new_inc = yield PartResult(best_ub, best_dec, snap, nodes, False), False
            if new_inc is not None:
                inc = min(inc, new_inc)
            continue
        nd = heap[0]
        if nd.lb >= inc - tol * abs(inc):
            break
        if nodes >= max_nodes or deadline.expired():
            complete = False
            break
        heapq.heappop(heap)
        mid = np.sqrt(nd.lo * nd.hi)
        ub, d = node_ub(mid)
        if ub < best_ub:
            best_ub, best_dec = ub, d
            inc = min(inc, ub)
        j = int(np.argmax(np.log(nd.hi / nd.lo)))
        left_hi = nd.hi.copy()
        left_hi[j] = mid[j]
        right_lo = nd.lo.copy()
        right_lo[j] = mid[j]
        for lo_c, hi_c in ((nd.lo, left_hi), (right_lo, nd.hi)):
            lbc = max(node_lb(lo_c, hi_c), nd.lb)
            nodes += 1
            since += 1
            if lbc < inc - tol * abs(inc):
                seq += 1
                heapq.heappush(heap, _Node(lbc, seq, lo_c, hi_c))
            else:
                pruned_min = min(pruned_min, lbc)
    lb = min([best_ub, pruned_min] + [n.lb for n in heap])
    yield PartResult(best_ub, best_dec, lb, nodes, complete), True


# ----------------------------------------------------------------------------------------------------
# The structured exact method
# ----------------------------------------------------------------------------------------------------
def all_offloading_vectors(N: int) -> np.ndarray:
    return np.array(list(itertools.product((0, 1, 2), repeat=N)), dtype=np.int64).reshape(-1, N)


def sharing_lower_bound(ctx: Ctx, x: np.ndarray) -> float:
    """Valid bound for an x whose some cell has more than L offloaders (-inf when none has).

    By pigeonhole two offloaders i, j of such a cell share a channel, whatever l is; each then suffers an
    interference of at least a_min w_partner (eq. 5), so its rate is at most R(a=1, I_min) (time floor) and
    its energy is at least a_min P_UE S / R(a_min, I_min) (a / R(a) increases with a). The bound is the
    minimum over the pairs of the resulting (time, energy) floors, and the maximum over the overfull cells.
    """
    inst = ctx.inst
    P, B = ctx.P, ctx.B
    loc = x == 0
    off = x >= 1
    queued = (x == 1) | ((x == 2) & ctx.consistent)
    counts = np.bincount(inst.server[off], minlength=inst.K)
    if not np.any(counts > inst.L):
        return -math.inf
    E_floor = float(np.sum(ctx.kap3[loc] / ctx.tl_hi[loc] ** 2))
    E_alone = phi(ctx.tu_hi, ctx.S, ctx.gamma, P, B)
    E_floor += float(E_alone[off].sum())
    qlo: dict[tuple[str, int], float] = {}
    for k in range(inst.K):
        mem = np.flatnonzero((x == 1) & (inst.server == k))
        if mem.size:
            qlo[("e", k)] = float(np.sum(ctx.edge_c[mem] + ctx.tu_lo[mem]))
    cl = np.flatnonzero(x == 2)
    T_dom = max([0.0] + list(qlo.values()) + [float(t) for t in ctx.tl_lo[loc]])
    if cl.size:
        base = float(ctx.cloud_c[cl].sum() + ctx.T22[cl].max())
        if ctx.consistent:
            qlo[("c", 0)] = base + float(ctx.tu_lo[cl].sum())
        T_dom = max(T_dom, base, qlo.get(("c", 0), 0.0))
    best = -math.inf
    for k in np.flatnonzero(counts > inst.L):
        mem = np.flatnonzero(off & (inst.server == k))
        cell_best = math.inf
        for i, j in itertools.combinations(mem, 2):
            add: dict[tuple[str, int], float] = {}
            E = E_floor
            for m_, p_ in ((i, j), (j, i)):
                i_min = inst.a_min * ctx.wn[p_]
                if queued[m_]:
                    q = ("e", int(k)) if x[m_] == 1 else ("c", 0)
                    r_best = rate(B, ctx.gamma[m_] / (1.0 + i_min))
                    add[q] = add.get(q, 0.0) + float(ctx.S[m_] / r_best - ctx.tu_lo[m_])
                r_low = rate(B, inst.a_min * ctx.gamma[m_] / (1.0 + i_min))
                E += float(inst.a_min * P * ctx.S[m_] / r_low - E_alone[m_])
            T_lb = max([T_dom] + [qlo[q] + v for q, v in add.items()])
            cell_best = min(cell_best, inst.w1 * T_lb + inst.w2 * E)
        best = max(best, cell_best)
    return best


def trivial_lower_bound(ctx: Ctx) -> float:
    """w1 max_n min_x T*(x) + w2 sum_n (smallest energy floor of any option): valid for every decision."""
    inst = ctx.inst
    t_local = ctx.tl_lo
    t_edge = ctx.edge_c + ctx.tu_lo
    t_cloud = ctx.cloud_c + ctx.T22 + (ctx.tu_lo if ctx.consistent else 0.0)
    T_lb = float(np.max(np.minimum(np.minimum(t_local, t_edge), t_cloud)))
    e_local = ctx.kap3 / ctx.tl_hi**2
    e_off = phi(ctx.tu_hi, ctx.S, ctx.gamma, ctx.P, ctx.B)
    return inst.w1 * T_lb + inst.w2 * float(np.sum(np.minimum(e_local, e_off)))


def _too_large(inst: Instance, ctx: Ctx, starts: list[Decision], deadline: Deadline) -> MethodOutput:
    """Beyond MAX_ENUM_N UEs: no certification; best start decision and a trivial valid bound."""
    best = min(starts, key=lambda d: round_objective(inst, d))
    info = {
        "message": f"N = {inst.N} > {MAX_ENUM_N}: 3^N enumeration not attempted",
        "wall_s": deadline.elapsed(),
    }
    return MethodOutput(best, "time_limit", trivial_lower_bound(ctx), info)


def search(inst: Instance, deadline: Deadline, tol: float, starts: list[Decision]) -> MethodOutput:
    """Best-first certified search over x (see the module docstring) until the relative gap is <= ``tol`` or
    ``deadline`` expires; ``starts`` are feasible decisions giving the first incumbent (the first best kept)."""
    ctx = make_ctx(inst)
    if inst.N > MAX_ENUM_N:
        return _too_large(inst, ctx, starts, deadline)
    X = all_offloading_vectors(inst.N)
    lbs = np.concatenate([cheap_lower_bounds(ctx, X[i : i + CHUNK]) for i in range(0, len(X), CHUNK)])
    order = np.argsort(lbs, kind="stable")
    inc, best = math.inf, None
    for d in starts:  # a first incumbent (kept only if nothing better is found)
        val = round_objective(inst, d)
        if val < inc:
            inc, best = val, d
    proc_lb = math.inf  # smallest lower bound over the finished (x, l) pairs
    processed = parts = bnb_nodes = 0
    # (bound, seq, x, l): l = None for an x with its sharing bound, else an (x, l) pair with interference
    refined: list[tuple[float, int, np.ndarray, np.ndarray | None, Any]] = []
    ptr = 0
    seq = 0
    timed_out = False

    def expand(x: np.ndarray) -> None:
        nonlocal inc, best, proc_lb, parts, seq
        for l in channel_options(inst, x):
            parts += 1
            res = solve_partition(ctx, x, l, inc, tol, deadline, root_only=True)
            if res.dec is not None and res.ub < inc:
                inc, best = res.ub, res.dec
            if res.complete:
                proc_lb = min(proc_lb, res.lb)
            else:
                seq += 1
                heapq.heappush(refined, (res.lb, seq, x, l, None))

    while True:
        next_cheap = float(lbs[order[ptr]]) if ptr < len(order) else math.inf
        next_ref = refined[0][0] if refined else math.inf
        nxt = min(next_cheap, next_ref)
        if nxt >= inc - tol * abs(inc) or not math.isfinite(nxt):
            break
        if deadline.expired():
            timed_out = True
            break
        if next_ref <= next_cheap:
            _, _, x, l, gen = heapq.heappop(refined)
            if l is None:  # an x whose sharing bound was computed: expand its channel partitions
                expand(x)
                continue
            if gen is None:  # time-sliced branch and bound, so that the global order stays best-first
                gen = partition_bnb(ctx, x, l, inc, tol, deadline, slice_nodes=SLICE_NODES)
                res, done = next(gen)
            else:
                res, done = gen.send(inc)
            if res.dec is not None and res.ub < inc:
                inc, best = res.ub, res.dec
            if done:
                bnb_nodes += res.nodes
                proc_lb = min(proc_lb, res.lb)
            else:
                seq += 1
                heapq.heappush(refined, (res.lb, seq, x, l, gen))
            continue
        x = X[order[ptr]]
        ptr += 1
        processed += 1
        s_lb = sharing_lower_bound(ctx, x)
        if s_lb > next_cheap:
            seq += 1
            heapq.heappush(refined, (s_lb, seq, x, None, None))
            continue
        expand(x)
    next_cheap = float(lbs[order[ptr]]) if ptr < len(order) else math.inf
    next_ref = refined[0][0] if refined else math.inf
    bound = min(proc_lb, next_cheap, next_ref)
    status = "optimal"
    if timed_out or best is None or not math.isfinite(inc) or (inc - bound) > tol * abs(inc):
        status = "time_limit"
    info = {
        "candidates": int(len(X)),
        "processed": processed,
        "partitions": parts,
        "bnb_nodes": bnb_nodes,
        "wall_s": deadline.elapsed(),
    }
    return MethodOutput(best, status if best is not None else "error", bound, info)
