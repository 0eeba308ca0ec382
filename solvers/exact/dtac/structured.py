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
CONVEX = True  # fixed (x, l) with interference solved as one convex program (convex_partition), B&B as fallback
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
    lam_hint: dict[tuple[str, int], float] = field(default_factory=dict)  # last multipliers per queue (a warm guess)
    u_hint: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)  # last log powers per interference group

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
    cres: PartResult | None = None
    # issue #12: the exact convex program of this (x, l); the box branch and bound only as a fallback. Not under the
    # printed eq. (5) (SINR ~1e-10 when sharing: badly scaled for SLSQP; the sharing bound prunes sharing there)
    if CONVEX and inst.interference == "received":
        cres = convex_partition(ctx, x, l, groups, incumbent, tol, deadline)
        if cres.ub - cres.lb <= tol * abs(min(cres.ub, incumbent)) or cres.lb >= incumbent - tol * abs(incumbent):
            yield cres, True
            return
        if cres.dec is not None:
            best_ub, best_dec = cres.ub, cres.dec
    root_lb, root_t = node_lb(lo0, hi0)
    if cres is not None:
        root_lb = max(root_lb, cres.lb)
    if root_only:  # only the root bound: the partition is queued and branched on later if it can still win
        yield PartResult(best_ub, best_dec, root_lb, 1, False), True
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


# ----------------------------------------------------------------------------------------------------
# Convex solve of a fixed (x, l) with interference (issue #12): log-power convexity + Lagrangian dual bound
# ----------------------------------------------------------------------------------------------------
class _Expired(Exception):
    """The shared deadline expired inside the fallback root search of :func:`convex_partition`."""


LAM_CAP = 1e12  # multipliers beyond this mean an infeasible round-time budget (never a valid-bound concern)


def _lam_free(ctx: Ctx, beta: float, m: np.ndarray) -> float:
    """Multiplier of a queue whose members all upload alone (no interference) with time budget ``beta``:
    the lambda with sum_j t_j(lambda) = beta (0 if the budget is slack, the largest slope if it is too tight)."""
    if m.size == 0:
        return 0.0
    P, B = ctx.P, ctx.B
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
    if f(a_) <= 0:
        return l_lo
    if f(b_) >= 0:
        return l_hi
    return math.exp(brentq(f, a_, b_, xtol=1e-13, rtol=1e-13, maxiter=200))


@dataclass
class _Group:
    """One interference group (same cell, same channel, >= 2 transmitters, eq. 5) in log-power variables."""

    idx: np.ndarray  # UE indices
    q: np.ndarray  # queue of eq. (12) of each member (-1: its time does not count, printed eq. 12)
    lo: np.ndarray  # log a box (an unqueued member is fixed at log a_min, D13)
    hi: np.ndarray
    cS: np.ndarray  # S ln2 / B: upload time = cS / ln(1 + SINR)
    gam: np.ndarray  # gamma_j = P_UE |h_j|^2 / sigma^2
    wn: np.ndarray  # interference coefficient / sigma^2 (eq. 5, D2)
    P: float
    u: np.ndarray  # current (warm-start) log powers

    def eval(self, u: np.ndarray, mu: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """G(u) = sum_j (P a_j + mu_j) t_j(u) (energy a P t, eq. 6, plus priced upload time), its gradient in u
        and the upload times t_j (eqs. 4-5). G is convex in u = log a: log t_j is a decreasing convex function
        (-log log(1+e^v)) of the concave log-SINR v_j = log gamma_j + u_j - log(1 + sum_{m != j} w_m e^{u_m})."""
        a = np.exp(u)
        tot = float(np.dot(self.wn, a))
        D = 1.0 + tot - self.wn * a
        s = a * self.gam / D
        lg = np.log1p(s)
        tau = self.cS / lg
        cost = self.P * a + mu
        G = float(np.dot(cost, tau))
        dtau_ds = -self.cS / (lg * lg * (1.0 + s))
        coef = cost * dtau_ds * s  # d/d u_j through own SINR
        cross = coef / D  # d s_j / d u_k = -s_j a_k w_k / D_j for k != j
        grad = self.P * a * tau + coef - a * self.wn * (cross.sum() - cross)
        return G, grad, tau

    def jac(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upload times t_j(u) and their Jacobian J[j, k] = d t_j / d u_k (eqs. 4-5)."""
        a = np.exp(u)
        tot = float(np.dot(self.wn, a))
        D = 1.0 + tot - self.wn * a
        s = a * self.gam / D
        lg = np.log1p(s)
        tau = self.cS / lg
        ts = -self.cS / (lg * lg * (1.0 + s)) * s  # d t_j / d log s_j
        J = -ts[:, None] * (a * self.wn)[None, :] / D[:, None]
        np.fill_diagonal(J, ts)
        return tau, J

    def minimize(self, mu: np.ndarray, iters: int = 60) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """Projected Newton on the box (finite-difference Hessian, Armijo backtracking), warm-started; at most
        ``iters`` Newton steps (0: the warm start itself)."""
        u = np.clip(self.u, self.lo, self.hi)
        free_box = self.hi > self.lo
        G, g, tau = self.eval(u, mu)
        for _ in range(iters):
            at_lo = (u <= self.lo + 1e-12) & (g > 0)
            at_hi = (u >= self.hi - 1e-12) & (g < 0)
            F = free_box & ~at_lo & ~at_hi
            if not F.any() or np.max(np.abs(g[F])) <= 1e-12 * max(abs(G), 1e-300):
                break
            fi = np.flatnonzero(F)
            H = np.empty((fi.size, fi.size))
            eps = 1e-6
            for c, k in enumerate(fi):
                e = np.zeros_like(u)
                e[k] = eps
                H[:, c] = (self.eval(u + e, mu)[1][fi] - self.eval(u - e, mu)[1][fi]) / (2 * eps)
            H = 0.5 * (H + H.T)
            d = np.zeros_like(u)
            try:
                w_, V = np.linalg.eigh(H)
                w_ = np.maximum(w_, 1e-12 * max(float(np.max(np.abs(w_))), 1e-300))
                d[fi] = -(V @ ((V.T @ g[fi]) / w_))
            except np.linalg.LinAlgError:
                d[fi] = -g[fi]
            step = 1.0
            improved = False
            for _ in range(40):
                un = np.clip(u + step * d, self.lo, self.hi)
                Gn, gn, taun = self.eval(un, mu)
                if Gn <= G + 1e-4 * float(np.dot(g, un - u)):
                    improved = True
                    break
                step *= 0.5
            if not improved or np.max(np.abs(un - u)) < 1e-15:
                if improved:
                    u, G, g, tau = un, Gn, gn, taun
                break
            u, G, g, tau = un, Gn, gn, taun
        self.u = u
        return u, G, g, tau

    def lower_bound(self, mu: np.ndarray, iters: int = 60) -> tuple[float, np.ndarray, np.ndarray]:
        """A valid lower bound on min_u G over the box: G convex, so G(u) >= G(u0) + g(u0).(u - u0) and the
        linear term is minimised at a box corner (u0 = the Newton point). Also returns u0 and the times."""
        u, G, g, tau = self.minimize(mu, iters)
        lin = np.minimum(g * (self.lo - u), g * (self.hi - u))
        return G + float(np.sum(np.minimum(lin, 0.0))), u, tau


def convex_partition(
    ctx: Ctx,
    x: np.ndarray,
    l: np.ndarray,
    groups: list[np.ndarray],
    incumbent: float = math.inf,
    tol: float = 1e-7,
    deadline: Deadline | None = None,
) -> PartResult:
    """Fixed (x, l) with interference groups, solved as one convex program (issue #12).

    In u = log a the upload time of a group member is log-convex and its energy a P t is log-convex, so with
    every queue constraint of eq. (12) (c_q + sum_{j in q} t_j <= T) relaxed by a multiplier lambda_q >= 0 the
    Lagrangian separates: T and the local times (1-D), each alone-uploading member (closed form, Lambert W),
    each group (a convex function of its log powers over a box, bounded below by its tangent plane at the
    Newton point). The dual function at any lambda >= 0 is thus a certified lower bound; lambda is found by
    a root search on T (sum of multipliers = w1/w2 minus the local slope) with, for each T, coordinate ascent
    on the (concave) dual of the fixed-T problem. The primal point of the dual solution is evaluated exactly.
    """
    inst = ctx.inst
    N = inst.N
    w1, w2 = inst.w1, inst.w2
    P, B = ctx.P, ctx.B
    server = inst.server
    queued = (x == 1) | ((x == 2) & ctx.cloud_queued)
    # queues of eq. (12): (constant, all queued members) -- as _queues, but group members included
    qc: list[float] = []
    qmem: list[np.ndarray] = []
    qkey: list[tuple[str, int]] = []
    for k in range(inst.K):
        mem = np.flatnonzero((x == 1) & (server == k))
        if mem.size:
            qc.append(float(ctx.edge_c[mem].sum()))
            qmem.append(mem)
            qkey.append(("e", k))
    cl = np.flatnonzero(x == 2)
    T_fixed = 0.0
    if cl.size:
        base = float(ctx.cloud_glob[cl].sum() + ctx.T22own[cl].max())
        if ctx.mode == "cell":
            for k in np.unique(server[cl]):
                mem = cl[server[cl] == k]
                qc.append(base + float(ctx.cloud_cell[mem].sum()))
                qmem.append(mem)
                qkey.append(("c", int(k)))
        elif ctx.mode == "consistent":
            qc.append(base)
            qmem.append(cl)
            qkey.append(("c", 0))
        else:
            T_fixed = base
    Q = len(qc)
    qid = np.full(N, -1)
    for i, m in enumerate(qmem):
        qid[m] = i
    in_group = np.zeros(N, dtype=bool)
    for g in groups:
        in_group[g] = True
    free_q = [m[~in_group[m]] for m in qmem]
    unq_free = np.flatnonzero((x >= 1) & ~queued & ~in_group)  # D13: a = a_min
    E_const = float(phi(ctx.tu_hi[unq_free], ctx.S[unq_free], ctx.gamma[unq_free], P, B).sum())
    lam_min = math.log(inst.a_min)
    grs: list[_Group] = []
    for g in groups:
        qg = np.where(queued[g], qid[g], -1)
        grs.append(
            _Group(
                idx=g,
                q=qg,
                lo=np.full(g.size, lam_min),
                hi=np.where(qg >= 0, 0.0, lam_min),
                cS=ctx.S[g] * LN2 / B,
                gam=ctx.gamma[g],
                wn=ctx.wn[g],
                P=P,
                u=ctx.u_hint.get(tuple(int(i) for i in g), np.where(qg >= 0, 0.5 * lam_min, lam_min)),
            )
        )
    # components: queues linked by groups
    parent = list(range(Q))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for gr in grs:
        qs = [int(q) for q in gr.q if q >= 0]
        for q in qs[1:]:
            parent[find(q)] = find(qs[0])
    comp_q: dict[int, list[int]] = {}
    for q in range(Q):
        comp_q.setdefault(find(q), []).append(q)
    comp_g: dict[int, list[_Group]] = {}
    for gr in grs:
        qs = [int(q) for q in gr.q if q >= 0]
        if qs:
            comp_g.setdefault(find(qs[0]), []).append(gr)

    # smallest possible queue times (a group member alone at full power, the others at a_min)
    tmin = ctx.tu_lo.copy()
    tmax = ctx.tu_hi.copy()
    for gr in grs:
        a_lo = np.exp(gr.lo)
        tot = float(np.dot(gr.wn, a_lo))
        I_lo = tot - gr.wn * a_lo
        tmin[gr.idx] = gr.cS / np.log1p(np.exp(gr.hi) * gr.gam / (1.0 + I_lo))
        I_hi = float(np.dot(gr.wn, np.exp(gr.hi))) - gr.wn * np.exp(gr.hi)
        tmax[gr.idx] = gr.cS / np.log1p(a_lo * gr.gam / (1.0 + I_hi))
    loc = np.flatnonzero(x == 0)
    q_lo = [qc[q] + float(tmin[qmem[q]].sum()) for q in range(Q)]
    Tdom = max([T_fixed, 1e-300] + [float(ctx.tl_lo[i]) for i in loc] + q_lo)
    Ttop = max([Tdom] + [float(ctx.tl_hi[i]) for i in loc] + [qc[q] + float(tmax[qmem[q]].sum()) for q in range(Q)])
    kap = ctx.kap3[loc]
    tlh = ctx.tl_hi[loc]

    def local_slope(T: float) -> float:
        return float(np.sum(np.where(T < tlh, 2.0 * kap / T**3, 0.0)))

    lam = np.zeros(Q)

    def mu_of(gr: _Group, lv: np.ndarray) -> np.ndarray:
        return np.where(gr.q >= 0, lv[np.maximum(gr.q, 0)], 0.0)

    def qtime(q: int, lv: np.ndarray, gl: list[_Group]) -> float:
        """Queue q's time at multipliers lv (free members by Lambert W, groups by their Newton points)."""
        m = free_q[q]
        t = float(t_of_lambda(lv[q], ctx.S[m], ctx.gamma[m], P, B, ctx.tu_lo[m], ctx.tu_hi[m]).sum()) if m.size else 0.0
        for gr in gl:
            if np.any(gr.q == q):
                _, _, _, tau = gr.minimize(mu_of(gr, lv))
                t += float(tau[gr.q == q].sum())
        return qc[q] + t

    def comp_lams(T: float, qs: list[int], gl: list[_Group]) -> None:
        if not gl:
            for q in qs:
                lam[q] = _lam_free(ctx, T - qc[q], free_q[q])
            return
        for _sweep in range(60):
            old = lam[qs].copy()
            for q in qs:

                def f(ll: float, q: int = q) -> float:
                    lv = lam.copy()
                    lv[q] = math.exp(ll)
                    return qtime(q, lv, gl) - T

                lv0 = lam.copy()
                lv0[q] = 0.0
                if qtime(q, lv0, gl) - T <= 0:
                    lam[q] = 0.0
                    continue
                hi_l = math.log(max(lam[q], 1e-6)) + 1.0
                while f(hi_l) > 0 and hi_l < math.log(LAM_CAP):
                    hi_l += 2.0
                if f(hi_l) > 0:
                    lam[q] = LAM_CAP
                    continue
                lo_l = hi_l - 2.0
                while f(lo_l) < 0 and lo_l > -700:
                    lo_l -= 2.0
                if f(lo_l) < 0:
                    lam[q] = math.exp(lo_l)
                    continue
                lam[q] = math.exp(brentq(f, lo_l, hi_l, xtol=1e-12, rtol=1e-12, maxiter=200))
            if len(qs) == 1 or np.all(np.abs(lam[qs] - old) <= 1e-11 * np.maximum(np.abs(lam[qs]), 1e-300)):
                break

    def all_lams(T: float) -> np.ndarray:
        if deadline is not None and deadline.expired():
            raise _Expired
        for r, qs in comp_q.items():
            comp_lams(T, qs, comp_g.get(r, []))
        return lam.copy()

    def dg(T: float) -> float:
        return w1 - w2 * (float(all_lams(T).sum()) + local_slope(T))

    def decision_at(lv: np.ndarray, T: float) -> tuple[float, Decision]:
        """The dual solution's primal point (powers, frequencies), evaluated exactly by the model's equations."""
        a = np.ones(N)
        a[unq_free] = inst.a_min
        for q in range(Q):
            m = free_q[q]
            if m.size:
                t = t_of_lambda(lv[q], ctx.S[m], ctx.gamma[m], P, B, ctx.tu_lo[m], ctx.tu_hi[m])
                a[m] = np.expm1(ctx.S[m] / (t * B) * LN2) / ctx.gamma[m]
        for gr in grs:
            u, _, _, _ = gr.minimize(mu_of(gr, lv))
            a[gr.idx] = np.exp(u)
        a = np.clip(a, inst.a_min, 1.0)
        b = np.ones(N)
        b[loc] = np.clip(ctx.SC[loc] / (inst.F_UE * np.minimum(T, tlh)), inst.b_min, 1.0)
        dec = Decision(x=x, l=l, a=a, b=b)
        return round_objective(inst, dec), dec

    def remember() -> None:
        for gr in grs:
            ctx.u_hint[tuple(int(i) for i in gr.idx)] = gr.u.copy()

    def certify(lv: np.ndarray, T_guess: float, iters: int = 60) -> float:
        """The Lagrangian dual at lv (scaled so that w1 - w2 sum(lv) >= 0; any lv >= 0 gives a valid bound)."""
        lv = np.clip(lv, 0.0, LAM_CAP)
        tot = float(lv.sum())
        if w2 > 0 and tot > w1 / w2:
            lv = lv * (w1 / w2) / tot * (1.0 - 1e-13)
        Mq = float(np.dot(lv, qc)) if Q else 0.0
        for q in range(Q):
            m = free_q[q]
            if m.size:
                t = t_of_lambda(lv[q], ctx.S[m], ctx.gamma[m], P, B, ctx.tu_lo[m], ctx.tu_hi[m])
                Mq += float(np.sum(phi(t, ctx.S[m], ctx.gamma[m], P, B) + lv[q] * t))
        for gr in grs:
            lbG, _, _ = gr.lower_bound(mu_of(gr, lv), iters)
            Mq += lbG
        remember()
        Lsum = float(lv.sum())

        def h(T: float) -> float:
            return w1 * T + w2 * (float(np.sum(kap / np.minimum(T, tlh) ** 2)) + Mq - Lsum * T + E_const)

        def dh(T: float) -> float:
            return w1 - w2 * (Lsum + local_slope(T))

        return _convex_min_bound(h, dh, Tdom, max(Ttop, T_guess, Tdom))

    best_ub, best_dec = math.inf, None
    # 0) the dual at the last multipliers seen for these queues (any lambda >= 0 gives a valid bound): most pairs
    # of a best-first search are pruned here, without solving their program
    if math.isfinite(incumbent) and Q and any(k in ctx.lam_hint for k in qkey):
        lv_h = np.array([ctx.lam_hint.get(k, 0.0) for k in qkey])
        for iters in (0, 60):  # first the tangent planes at the groups' warm starts (valid too), then at their minima
            lb = certify(lv_h, Ttop, iters)
            if lb >= incumbent - tol * abs(incumbent):
                return PartResult(math.inf, None, lb)
    # 1) the primal convex program by SLSQP (multipliers of the queue constraints as the dual point)
    lv0, T0, prim = _primal_slsqp(ctx, x, l, grs, qc, qmem, free_q, loc, T_fixed, E_const)
    if prim is not None:
        best_ub, best_dec = round_objective(inst, prim), prim
    if lv0 is not None:
        ctx.lam_hint.update(zip(qkey, (float(v) for v in lv0), strict=True))
        ub, dec = decision_at(lv0, T0)
        if ub < best_ub:
            best_ub, best_dec = ub, dec
        lb = certify(lv0, T0)
        if best_ub - lb <= tol * abs(min(best_ub, incumbent)) or lb >= incumbent - tol * abs(incumbent):
            return PartResult(best_ub, best_dec, min(lb, best_ub))
    # 2) fallback: root search on T, coordinate ascent on the multipliers of each fixed-T problem
    if deadline is not None and deadline.expired():
        lb = certify(lv0, T0) if lv0 is not None else -math.inf
        return PartResult(best_ub, best_dec, min(lb, best_ub))
    try:
        if Q == 0 or dg(Tdom) >= 0:
            T_hat = Tdom
        elif Ttop > Tdom and dg(Ttop) < 0:
            T_hat = Ttop
        else:
            T_hat = brentq(dg, Tdom, Ttop, xtol=1e-14 * Ttop, rtol=1e-14, maxiter=200) if Ttop > Tdom else Tdom
        lv = all_lams(T_hat)
    except _Expired:  # the time limit: keep what SLSQP gave (its bound if any, else none)
        lb = certify(lv0, T0) if lv0 is not None else -math.inf
        return PartResult(best_ub, best_dec, min(lb, best_ub))
    ub, dec = decision_at(lv, T_hat)
    if ub < best_ub:
        best_ub, best_dec = ub, dec
    lb = certify(lv, T_hat)
    return PartResult(best_ub, best_dec, min(lb, best_ub))


def _primal_slsqp(
    ctx: Ctx,
    x: np.ndarray,
    l: np.ndarray,
    grs: list[_Group],
    qc: list[float],
    qmem: list[np.ndarray],
    free_q: list[np.ndarray],
    loc: np.ndarray,
    T_fixed: float,
    E_const: float,
) -> tuple[np.ndarray | None, float, Decision | None]:
    """The convex program of a fixed (x, l) in (T, log a, log 1/b) solved by SLSQP: returns the multipliers of
    the queue constraints of eq. (12) divided by w2 (a dual point for :func:`convex_partition`'s certificate;
    never trusted as a bound by itself), the round time, and the primal decision (an upper-bound candidate)."""
    from scipy.optimize import minimize

    inst = ctx.inst
    w1, w2 = inst.w1, inst.w2
    P, B = ctx.P, ctx.B
    Q = len(qc)
    lmin = math.log(inst.a_min)
    pgs = list(grs)
    fm = np.concatenate(free_q) if free_q else np.zeros(0, dtype=np.int64)  # alone-uploading members
    fq = np.concatenate([np.full(m.size, q) for q, m in enumerate(free_q)]) if free_q else np.zeros(0, dtype=np.int64)
    f_cS = ctx.S[fm] * LN2 / B
    f_gam = ctx.gamma[fm]
    nz = 1 + fm.size
    fpos = np.arange(1, nz)
    Fq = np.zeros((Q, fm.size))
    Fq[fq, np.arange(fm.size)] = 1.0
    pos: list[np.ndarray] = []
    for gr in pgs:
        v = np.full(gr.idx.size, -1)
        for i in range(gr.idx.size):
            if gr.hi[i] > gr.lo[i]:
                v[i] = nz
                nz += 1
        pos.append(v)
    wpos = np.arange(nz, nz + loc.size)
    nz += loc.size
    tl0 = ctx.tl_lo[loc]
    kap = ctx.kap3[loc]
    covered = np.zeros(inst.N, dtype=bool)
    covered[fm] = True
    for gr in pgs:
        covered[gr.idx] = True
    unq_free = np.flatnonzero((x >= 1) & ~covered)
    cache: dict[bytes, tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def parts(z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        key = z.tobytes()
        hit = cache.get(key)
        if hit is not None:
            return hit
        dE = np.zeros(nz)
        qt = np.array(qc, dtype=float)
        dqt = np.zeros((Q, nz))
        af = np.exp(z[fpos])
        sf = af * f_gam
        lgf = np.log1p(sf)
        tauf = f_cS / lgf
        tsf = -f_cS / (lgf * lgf * (1.0 + sf)) * sf
        E = E_const + P * float(np.dot(af, tauf))
        dE[fpos] = P * af * (tauf + tsf)
        qt += Fq @ tauf
        dqt[:, fpos] = Fq * tsf[None, :]
        for gr, v in zip(pgs, pos, strict=True):
            var = v >= 0
            u = np.where(var, z[np.maximum(v, 0)], gr.lo)
            tau, J = gr.jac(u)
            a = np.exp(u)
            E += P * float(np.dot(a, tau))
            dEu = P * a * tau + P * (a @ J)
            dE[v[var]] += dEu[var]
            for i, q in enumerate(gr.q):
                if q >= 0:
                    qt[q] += tau[i]
                    dqt[q, v[var]] += J[i, var]
        tl = tl0 * np.exp(z[wpos])
        El = kap / tl**2
        E += float(El.sum())
        dE[wpos] = -2.0 * El
        out = (E, dE, qt, dqt, tl)
        if len(cache) > 8:
            cache.clear()
        cache[key] = out
        return out

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        E, dE, _, _, _ = parts(z)
        g = w2 * dE
        g[0] += w1
        return w1 * z[0] + w2 * E, g

    def cons(z: np.ndarray) -> np.ndarray:
        _, _, qt, _, tl = parts(z)
        return np.concatenate([z[0] - qt, z[0] - tl, [z[0] - T_fixed]])

    def cjac(z: np.ndarray) -> np.ndarray:
        _, _, _, dqt, tl = parts(z)
        Jq = -dqt
        Jq[:, 0] += 1.0
        Jl = np.zeros((loc.size, nz))
        Jl[:, 0] = 1.0
        Jl[np.arange(loc.size), wpos] = -tl
        Jf = np.zeros((1, nz))
        Jf[0, 0] = 1.0
        return np.vstack([Jq, Jl, Jf])

    z0 = np.zeros(nz)
    _, _, qt, _, tl = parts(z0)
    z0[0] = max([T_fixed, 1e-12] + list(qt) + list(tl)) * (1 + 1e-9)
    bounds = [(0.0, None)] + [(lmin, 0.0)] * (nz - 1 - loc.size) + [(0.0, -math.log(inst.b_min))] * loc.size
    try:
        res = minimize(
            fun,
            z0,
            jac=True,
            method="SLSQP",
            bounds=bounds,
            constraints=[{"type": "ineq", "fun": cons, "jac": cjac}],
            options={"ftol": 1e-15, "maxiter": 400},
        )
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None, 0.0, None
    z = res.x
    a = np.ones(inst.N)
    a[unq_free] = inst.a_min
    a[fm] = np.exp(z[fpos])
    for gr, v in zip(pgs, pos, strict=True):
        var = v >= 0
        a[gr.idx] = np.exp(np.where(var, z[np.maximum(v, 0)], gr.lo))
    b = np.ones(inst.N)
    b[loc] = np.exp(-z[wpos])
    dec = Decision(x=x, l=l, a=np.clip(a, inst.a_min, 1.0), b=np.clip(b, inst.b_min, 1.0))
    mult = getattr(res, "multipliers", None)
    if mult is None or len(mult) < Q or not np.all(np.isfinite(z)):
        return None, float(z[0]), dec
    lv = np.maximum(np.asarray(mult[:Q], dtype=float), 0.0) / (w2 if w2 > 0 else 1.0)
    return lv, float(z[0]), dec
