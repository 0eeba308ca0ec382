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
  printed eq. 12) take a = a_min (their energy and the interference they cause both increase with a); the
  powers of the other members are found by spatial branch and bound on log a. The box bound is joint: each
  member keeps one upload time t_j whose energy is bounded by phi(t_j; gamma_j / (1 + I_lo,j)) on
  [S/R(a_hi, I_lo), S/R(a_lo, I_lo)], so time and energy floors come from the same power (docs/problems/dtac.md).
* N > MAX_ENUM_N: declined (status ``not_attempted``).

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
from scipy.optimize import brentq
from scipy.special import lambertw

from mecopt.core import Deadline, MethodOutput
from mecopt.problems.dtac import Decision, Instance, precompute, rate, terms

LN2 = math.log(2.0)
GRID = 96  # T grid points of the cheap lower bound
CHUNK = 4096  # candidates per vectorized chunk
SLICE_NODES = 40  # branch-and-bound nodes per visit of an (x, l) pair with interference
MAX_ENUM_N = 14  # beyond this the 3^N enumeration is not attempted (status not_attempted)


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
    cloud_glob: np.ndarray  # what a cloud-bound task adds to every cloud-bound entry of eq. (12)
    cloud_cell: np.ndarray  # what it adds to the cloud-bound entries of its own cell ('cell' reading)
    T22own: np.ndarray  # what a cloud-bound task adds to its own entry only
    T22: np.ndarray
    onehot: np.ndarray  # (N, K)
    mode: str  # eq. (12) reading: 'cell', 'literal' or 'consistent' (D1)

    @property
    def cloud_queued(self) -> bool:
        """Whether a cloud-bound task's upload time enters eq. (12) (all readings but the printed one)."""
        return self.mode != "literal"

    def cloud_queue_of(self, n: int) -> tuple[str, int]:
        """Key of the queue of eq. (12) that holds cloud-bound UE n's upload (cell or network-wide)."""
        return ("c", int(self.inst.server[n])) if self.mode == "cell" else ("c", 0)


def make_ctx(inst: Instance) -> Ctx:
    pre = precompute(inst)
    gamma = pre.g / inst.sigma2
    mode = inst.round_time
    zero = np.zeros(inst.N)
    # eq. (12) per reading (D1): entry of a cloud-bound UE n of cell k =
    #   sum_{j cloud} cloud_glob_j + sum_{j cloud in k} (cloud_cell_j + t_up_j ['cell'])
    #   + sum_{j cloud} t_up_j ['consistent'] + T22own_n
    if mode == "cell":
        glob, cell, own = pre.comp_cloud + pre.T22, pre.t_down, zero
    elif mode == "consistent":
        glob, cell, own = pre.comp_cloud + pre.t_down, zero, pre.T22
    else:
        glob, cell, own = pre.comp_cloud, zero, pre.T22
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
        cloud_glob=glob,
        cloud_cell=cell,
        T22own=own,
        T22=pre.T22,
        onehot=pre.onehot,
        mode=mode,
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
def queue_maps(ctx: Ctx) -> tuple[np.ndarray, np.ndarray]:
    """(N, Q) one-hot maps of each UE to its queue of eq. (12) when it goes to the edge (queues 0..K-1, one per
    cell) and when it goes to the cloud (queue K + k of its cell in the 'cell' reading, else the one queue K)."""
    inst = ctx.inst
    K = inst.K
    Q = 2 * K if ctx.mode == "cell" else K + 1
    oh_e = np.zeros((inst.N, Q))
    oh_e[:, :K] = ctx.onehot
    oh_c = np.zeros((inst.N, Q))
    if ctx.mode == "cell":
        oh_c[:, K:] = ctx.onehot
    else:
        oh_c[:, K] = 1.0
    return oh_e, oh_c


def cheap_lower_bounds(ctx: Ctx, X: np.ndarray) -> np.ndarray:
    inst = ctx.inst
    X = np.asarray(X)
    loc = X == 0
    e1 = X == 1
    c2 = X == 2
    queued_cloud = c2 if ctx.cloud_queued else np.zeros_like(c2)
    oh_e, oh_c = queue_maps(ctx)
    # constant part of every queue (C, Q): edge cells; cloud queues (global part + own-cell part + max own T22)
    G = np.where(c2, ctx.cloud_glob, 0.0).sum(axis=1) + np.where(c2, ctx.T22own, 0.0).max(axis=1)
    has_c = (c2.astype(float) @ oh_c) > 0
    const = np.where(e1, ctx.edge_c, 0.0) @ oh_e + np.where(c2, ctx.cloud_cell, 0.0) @ oh_c
    const = const + np.where(has_c, G[:, None], 0.0)
    lo = const + np.where(e1, ctx.tu_lo, 0.0) @ oh_e + np.where(queued_cloud, ctx.tu_lo, 0.0) @ oh_c
    hi = const + np.where(e1, ctx.tu_hi, 0.0) @ oh_e + np.where(queued_cloud, ctx.tu_hi, 0.0) @ oh_c
    Tdom = np.maximum(np.where(loc, ctx.tl_lo, 0.0).max(axis=1), lo.max(axis=1))
    Ttop = np.maximum.reduce([Tdom, np.where(loc, ctx.tl_hi, 0.0).max(axis=1), hi.max(axis=1)])
    Tdom = np.maximum(Tdom, 1e-12)
    Ttop = np.maximum(Ttop, Tdom)
    frac = np.linspace(0.0, 1.0, GRID)
    Tg = Tdom[:, None] * (Ttop / Tdom)[:, None] ** frac[None, :]  # (C, G)
    T3 = Tg[:, :, None]
    # queue of each UE: lower bound of the time the other members need
    lo_q = np.where(e1, lo @ oh_e.T, np.where(queued_cloud, lo @ oh_c.T, 0.0))  # (C, N)
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
    """(constant, free members) of every queue of eq. (12), and the fixed lower bound on T from unqueued
    terms."""
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
        base = float(ctx.cloud_glob[cl].sum() + ctx.T22own[cl].max())
        if ctx.mode == "cell":
            for k in np.unique(server[cl]):
                mem = cl[server[cl] == k]
                out.append((base + float(ctx.cloud_cell[mem].sum() + ft[mem].sum()), mem[~fixed[mem]]))
        elif ctx.mode == "consistent":
            out.append((base + float(ft[cl].sum()), cl[~fixed[cl]]))
        else:
            T_fixed = base
    return out, T_fixed


def _convex_min_bound(h: Any, dh: Any, lo: float, guess: float) -> float:
    """A valid lower bound on min_{T >= lo} h(T) for a convex h with derivative dh (-inf if unbounded below).

    The minimiser is bracketed by [Ta, Tb] with dh(Ta) <= 0 <= dh(Tb); the bound is the value where the tangents
    at Ta and Tb meet (a convex function lies above both tangents), never more than min(h(Ta), h(Tb))."""
    d0 = dh(lo)
    if d0 >= 0:
        return h(lo)
    hi_T = max(guess, lo) * 2.0
    for _ in range(200):
        if dh(hi_T) >= 0:
            break
        hi_T *= 2.0
    else:
        return -math.inf  # h decreases without bound (or too slowly to bracket): no finite bound claimed
    r = brentq(dh, lo, hi_T, xtol=1e-15 * hi_T, rtol=1e-15, maxiter=300)
    Ta, Tb = max(lo, r * (1 - 1e-9)), min(hi_T, r * (1 + 1e-9))
    if dh(Ta) > 0:  # round-off around the root: fall back to the outer bracket end, where the sign is known
        Ta = lo
    if dh(Tb) < 0:
        Tb = hi_T
    ha, hb, da, db = h(Ta), h(Tb), dh(Ta), dh(Tb)
    if da == 0.0:
        return ha  # Ta is a stationary point of the convex h: the global minimiser on [lo, inf)
    if db == 0.0:
        return hb
    Tx = (hb - ha + da * Ta - db * Tb) / (da - db)  # da < 0 < db: the tangents meet inside [Ta, Tb]
    return min(ha + da * (Tx - Ta), ha, hb)


def solve_core(
    ctx: Ctx,
    x: np.ndarray,
    fix_t: np.ndarray,
    fix_E: np.ndarray,
    geff: np.ndarray | None = None,
    t_lo: np.ndarray | None = None,
    t_hi: np.ndarray | None = None,
) -> CoreResult:
    """min w1 T + w2 (sum of energies) for fixed x; members with finite fix_t/fix_E are constants.

    A free queued member j uploads in time t_j in [t_lo_j, t_hi_j] at energy phi(t_j; geff_j) (defaults: alone,
    a in [a_min, 1]: gamma_j, tu_lo_j, tu_hi_j). With the arrays of a power box (partition_bnb) this is the
    joint (time and energy coupled) relaxation of the box; ``lb`` is a valid bound of that relaxation.
    """
    inst = ctx.inst
    w1, w2 = inst.w1, inst.w2
    P, B = ctx.P, ctx.B
    geff = ctx.gamma if geff is None else geff
    tlo = ctx.tu_lo if t_lo is None else t_lo
    thi = ctx.tu_hi if t_hi is None else t_hi
    queues, T_fixed = _queues(ctx, x, fix_t)
    loc = np.flatnonzero(x == 0)
    fixed = ~np.isnan(fix_t) | (fix_E > 0)
    queued_mask = np.zeros(inst.N, dtype=bool)
    for _, mem in queues:
        queued_mask[mem] = True
    # unqueued, uninterfered offloaders (cloud-bound under literal eq. 12): a = a_min, t = tu_hi (D13)
    free_unq = np.flatnonzero((x >= 1) & ~queued_mask & ~fixed)
    E_const = float(fix_E.sum() + phi(ctx.tu_hi[free_unq], ctx.S[free_unq], ctx.gamma[free_unq], P, B).sum())
    Tdom = max([T_fixed, 1e-300] + [float(ctx.tl_lo[i]) for i in loc] + [c + float(tlo[m].sum()) for c, m in queues])
    Ttop = max([Tdom] + [float(ctx.tl_hi[i]) for i in loc] + [c + float(thi[m].sum()) for c, m in queues])

    def lam_q(beta: float, m: np.ndarray) -> float:
        if m.size == 0:
            return 0.0
        S, g, lo, hi = ctx.S[m], geff[m], tlo[m], thi[m]
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
        return math.exp(brentq(f, a_, b_, xtol=1e-13, rtol=1e-13, maxiter=200))

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
            t = t_of_lambda(lam, ctx.S[m], geff[m], P, B, tlo[m], thi[m])
            beta = T_hat - c
            s = t.sum()
            if s > beta and s > tlo[m].sum():  # round-off: shrink towards the lower bounds
                t = tlo[m] + (t - tlo[m]) * max(0.0, (beta - tlo[m].sum())) / (s - tlo[m].sum())
            t_up[m] = t
    t_up[free_unq] = ctx.tu_hi[free_unq]
    t_loc = np.full(inst.N, np.nan)
    t_loc[loc] = np.minimum(T_hat, tlh)
    # Lagrangian lower bound h(T) with the multipliers fixed at lams (valid for any lams >= 0); lams are scaled
    # so that w1 - w2 sum(lams) >= 0 (at a stationary T_hat this only removes round-off)
    tot = float(sum(lams))
    if w2 > 0 and tot > w1 / w2:
        lams = [lam * (w1 / w2) / tot * (1.0 - 1e-13) for lam in lams]
    Mq = 0.0
    for (c, m), lam in zip(queues, lams, strict=True):
        if m.size:
            tt = t_of_lambda(lam, ctx.S[m], geff[m], P, B, tlo[m], thi[m])
            Mq += float(np.sum(phi(tt, ctx.S[m], geff[m], P, B) + lam * tt)) + lam * c
        else:
            Mq += lam * c
    Lsum = float(sum(lams))

    def h(T: float) -> float:
        return w1 * T + w2 * (float(np.sum(kap / np.minimum(T, tlh) ** 2)) + Mq - Lsum * T + E_const)

    def dh(T: float) -> float:
        return w1 - w2 * (Lsum + local_slope(T))

    lb = _convex_min_bound(h, dh, Tdom, max(Ttop, T_hat, Tdom))
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
    t: np.ndarray = field(compare=False)  # upload times of the box relaxation (for an upper-bound candidate)


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
    queued = (x == 1) | ((x == 2) & ctx.cloud_queued)
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

    qi = inter[queued[inter]]

    def node_lb(lo_v: np.ndarray, hi_v: np.ndarray) -> tuple[float, np.ndarray]:
        """Joint bound over the power box: a queued interfered member j uploads in t_j between its time at
        (own power high, others low) and at (own low, others high), with energy a_j P_UE t_j =
        phi(t_j; gamma_j / (1 + I_j)) >= phi(t_j; gamma_j / (1 + I_lo_j)) (eqs. 4-6): time and energy of one
        member stay coupled through one t_j (the old bound took each at its own best corner)."""
        lo, hi = full(lo_v, hi_v)
        ft, fE = fixed_terms(lo, hi)
        ft[qi] = np.nan
        fE[qi] = 0.0
        if not np.all(np.isfinite(fE)):
            return math.inf, np.full(N, np.nan)
        geff = ctx.gamma.copy()
        t_lo = ctx.tu_lo.copy()
        t_hi = ctx.tu_hi.copy()
        for n in qi:
            others = groups[gid[n]][groups[gid[n]] != n]
            I_lo = float(np.sum(lo[others] * ctx.wn[others]))
            geff[n] = ctx.gamma[n] / (1.0 + I_lo)
            t_lo[n] = ctx.S[n] / rate(ctx.B, hi[n] * geff[n])
            # E_j >= a_lo P t_j too; beyond t_c = S / R(a_lo, I_lo) that floor exceeds phi and grows with t_j, so
            # a longer upload never helps the relaxation: t_j <= t_c (<= the true ceiling S / R(a_lo, I_hi))
            t_hi[n] = ctx.S[n] / rate(ctx.B, lo[n] * geff[n])
        core = solve_core(ctx, x, ft, fE, geff, t_lo, t_hi)
        return core.lb, core.t_up

    def power_from_times(t: np.ndarray) -> np.ndarray:
        """Powers that give each queued interfered member exactly the upload time t (eqs. 4-5: per group a
        linear system a_j gamma_j - s_j sum_m a_m w_m = s_j (1 + fixed interference), s_j = 2^{S/(tB)} - 1),
        clipped into [a_min, 1] (an upper-bound candidate only)."""
        a = base_lo.copy()
        for g in groups:
            q = g[queued[g]]
            if q.size == 0 or np.any(np.isnan(t[q])):
                continue
            s_ = np.expm1(ctx.S[q] / (t[q] * ctx.B) * LN2)
            fo = g[~queued[g]]
            base = 1.0 + float(np.sum(a[fo] * ctx.wn[fo]))
            A = -s_[:, None] * ctx.wn[q][None, :]
            np.fill_diagonal(A, ctx.gamma[q])
            try:
                sol = np.linalg.solve(A, s_ * base)
            except np.linalg.LinAlgError:
                continue
            if np.all(np.isfinite(sol)):
                a[q] = sol
        return np.clip(a, inst.a_min, 1.0)[var]

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
        yield PartResult(ub, d, min(node_lb(lo0, hi0)[0], ub)), True
        return
    root_lb, root_t = node_lb(lo0, hi0)
    if root_only:  # only the root bound: the partition is queued and branched on later if it can still win
        yield PartResult(math.inf, None, root_lb, 1, False), True
        return
    # upper bounds (never used for certification): full power, and the powers that realise the relaxation's times
    for guess in (hi0, power_from_times(root_t)):
        ub, d = node_ub(guess)
        if ub < best_ub:
            best_ub, best_dec = ub, d
    inc = min(incumbent, best_ub)
    heap: list[_Node] = []
    seq = 0
    pruned_min = math.inf  # smallest lower bound among discarded boxes
    heapq.heappush(heap, _Node(root_lb, seq, lo0, hi0, root_t))
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
        for guess in (power_from_times(nd.t), mid):
            ub, d = node_ub(guess)
            if ub < best_ub:
                best_ub, best_dec = ub, d
                inc = min(inc, ub)
        if nd.lb >= inc - tol * abs(inc):
            pruned_min = min(pruned_min, nd.lb)
            continue
        j = int(np.argmax(np.log(nd.hi / nd.lo)))
        left_hi = nd.hi.copy()
        left_hi[j] = mid[j]
        right_lo = nd.lo.copy()
        right_lo[j] = mid[j]
        for lo_c, hi_c in ((nd.lo, left_hi), (right_lo, nd.hi)):
            lbc, t_c = node_lb(lo_c, hi_c)
            lbc = max(lbc, nd.lb)
            nodes += 1
            since += 1
            if lbc < inc - tol * abs(inc):
                seq += 1
                heapq.heappush(heap, _Node(lbc, seq, lo_c, hi_c, t_c))
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
    queued = (x == 1) | ((x == 2) & ctx.cloud_queued)
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
        base = float(ctx.cloud_glob[cl].sum() + ctx.T22own[cl].max())
        T_dom = max(T_dom, base)
        if ctx.cloud_queued:
            for n in cl:
                q = ctx.cloud_queue_of(int(n))
                qlo[q] = qlo.get(q, base) + float(ctx.cloud_cell[n] + ctx.tu_lo[n])
            T_dom = max([T_dom] + [v for q, v in qlo.items() if q[0] == "c"])
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
                    q = ("e", int(k)) if x[m_] == 1 else ctx.cloud_queue_of(int(m_))
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
    t_cloud = ctx.cloud_glob + ctx.cloud_cell + ctx.T22own + (ctx.tu_lo if ctx.cloud_queued else 0.0)
    T_lb = float(np.max(np.minimum(np.minimum(t_local, t_edge), t_cloud)))
    e_local = ctx.kap3 / ctx.tl_hi**2
    e_off = phi(ctx.tu_hi, ctx.S, ctx.gamma, ctx.P, ctx.B)
    return inst.w1 * T_lb + inst.w2 * float(np.sum(np.minimum(e_local, e_off)))


def _too_large(inst: Instance) -> MethodOutput:
    """Beyond MAX_ENUM_N UEs the 3^N enumeration is not attempted: the method declines (status not_attempted)."""
    return MethodOutput(
        None,
        "not_attempted",
        message=f"dtac exact: N = {inst.N} > {MAX_ENUM_N} UEs: the 3^N enumeration of offloading vectors is not "
        "attempted",
    )


def search(inst: Instance, deadline: Deadline, tol: float, starts: list[Decision]) -> MethodOutput:
    """Best-first certified search over x (see the module docstring) until the relative gap is <= ``tol`` or
    ``deadline`` expires; ``starts`` are feasible decisions giving the first incumbent (the first best kept)."""
    if inst.N > MAX_ENUM_N:
        return _too_large(inst)
    ctx = make_ctx(inst)
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
            if deadline.expired():  # the partition is lost to the bound: keep the x's own bound instead
                seq += 1
                heapq.heappush(refined, (float(cheap_lower_bounds(ctx, x[None])[0]), seq, x, None, None))
                return
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
