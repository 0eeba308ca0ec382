"""The structured, certified methods of INTO: one slot of IMP (eq. 12) and the clairvoyant T-slot optimum.

Structure used by ``exact`` (proofs in docs/problems/into.md, section "Exact method"):

1. Dominance: uploading a task that then misses its deadline earns nothing (eq. 11) but adds interference
(eq. 3),
   spends energy (eqs. 5-6) and CPU (eq. 10); dropping it never hurts any constraint. So some optimum
   uploads only
   tasks that finish in time, and a task finishes in time iff it gets at least the minimum CPU l of eq. (18).
   The allocation f is implied (l scaled to fill the BS), and (10) becomes sum of l <= F.
2. Interference only depends on the set S of uploaders of a cell, and the family of "admissible" uploader sets
   (every member meets (5) and can meet its deadline on some BS within C4) is downward closed: removing an
   uploader lowers everyone's interference. We enumerate it per cell by depth-first extension.
3. With S fixed, rates, energies and the l of every (task, BS) pair are constants, so the slot problem is a
   linear MILP: pick one set per cell, assign each of its tasks to one BS, subject to (10). HiGHS solves it
   to a
   proven gap; the bound is the MILP's dual bound (valid by 1-3).

The horizon version adds the energy buffers of eq. (6) as cumulative linear constraints over slots.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from mecopt.core import Deadline, InvalidInputError, MethodOutput, SolveOptions
from mecopt.problems.into import (
    TOL,
    Decision,
    Instance,
    decision_from_targets,
    evaluate,
    received_power,
    wired_delay_per_target,
    with_Q,
)

GHZ = 1e9
#: best-first combinations tried before the assignment MILP takes over (when that MILP is not too large)
MILP_FALLBACK_COMBOS = 20_000
#: assignment variables above which the MILP fallback is skipped (HiGHS cannot finish such models in time)
MILP_MAX_ASSIGN_VARS = 150_000


# ------------------------------------------------------------------------------------------------------------
# Admissible uploader sets of one cell
# ------------------------------------------------------------------------------------------------------------
@dataclass
class CellSets:
    """Admissible uploader sets of one cell of one slot, with the constants they imply."""

    cell: int
    members: list[tuple[int, ...]] = field(default_factory=list)  # device indices (global)
    load: list[np.ndarray] = field(default_factory=list)  # (|S|, N) eq. (18) l in Hz (inf: not possible)
    energy: list[np.ndarray] = field(default_factory=list)  # (|S|,) p d^w in J, eq. (5)


def _set_constants(inst: Instance, S: tuple[int, ...], dc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """l_{k,b}(S) (eq. 18, inf when impossible or > F_b, C4) and p d^w (eq. 5) of the members of S."""
    idx = np.array(S, dtype=np.int64)
    a = received_power(inst)[idx]
    tot = a.sum()
    nu = inst.B * np.log2(1.0 + a / (inst.B * inst.N0 + tot - a))  # eqs. (2)-(3)
    dw = inst.z[idx] / nu  # eq. (4)
    slack = inst.delta[idx, None] - dw[:, None] - dc[idx]  # delta - d^w - d^c, eq. (18)
    with np.errstate(divide="ignore", invalid="ignore"):
        lk = np.where(slack > 0, (inst.z[idx] * inst.v[idx])[:, None] / np.where(slack > 0, slack, 1.0), np.inf)
    lk = np.where(lk <= inst.F[None, :], lk, np.inf)  # C4: one task cannot get more than F_b
    return lk, inst.p[idx] * dw


class EnumerationTimeout(Exception):
    """The admissible-set enumeration ran past the time limit."""


def cell_sets(
    inst: Instance,
    cell: int,
    energy_cap: np.ndarray | None = None,
    max_sets: int = 2_000_000,
    deadline: Deadline | None = None,
) -> CellSets:
    """All admissible uploader sets of ``cell`` (the empty set first). ``energy_cap`` (K,) replaces Q in the
    energy filter (the horizon uses the most energy a device could have by then)."""
    cap = inst.Q if energy_cap is None else energy_cap
    dc = wired_delay_per_target(inst)
    devs = [int(k) for k in np.flatnonzero(inst.bs == cell)]
    out = CellSets(cell)
    out.members.append(())
    out.load.append(np.zeros((0, inst.N)))
    out.energy.append(np.zeros(0))
    stack: list[tuple[tuple[int, ...], int]] = [((), 0)]
    while stack:
        S, start = stack.pop()
        for pos in range(start, len(devs)):
            T = (*S, devs[pos])
            lk, en = _set_constants(inst, T, dc)
            idx = np.array(T)
            ok = np.all(np.isfinite(lk).any(axis=1)) and np.all(en <= cap[idx] * (1 + TOL) + 1e-15)
            if not ok:
                continue  # downward closed: no superset of T is admissible either
            if deadline is not None and len(out.members) % 16 == 0 and deadline.expired():
                raise EnumerationTimeout(f"cell {cell}: {len(out.members)} sets so far")
            out.members.append(T)
            out.load.append(lk)
            out.energy.append(en)
            if len(out.members) > max_sets:
                raise InvalidInputError(f"into: cell {cell} has more than {max_sets} admissible uploader sets")
            stack.append((T, pos + 1))
    return out


# ------------------------------------------------------------------------------------------------------------
# The extended MILP (one slot or a horizon)
# ------------------------------------------------------------------------------------------------------------
@dataclass
class MilpResult:
    status: str
    objective: float | None
    bound: float | None
    targets: list[np.ndarray] | None  # per slot, target[k] in -1..N-1
    n_vars: int
    n_sets: int
    wall_s: float
    message: str


def _solve_extended(
    slots: list[Instance],
    fams: list[list[CellSets]],
    Q0: np.ndarray | None,
    weights: list[float],
    opts: SolveOptions,
    cap_scale: float = 1.0,
    energy_scale: float = 1.0,
) -> MilpResult:
    """max sum_t w_t sum of awards s.t. one set per (slot, cell), every member assigned to one BS, (10) per
    (slot, BS); with ``Q0`` given, the cumulative energy of eq. (6) per device and slot."""
    deadline = Deadline.of(opts)
    cols_obj: list[float] = []
    lam_index: list[tuple[int, int, int]] = []  # (t, cell, set id)
    u_index: list[tuple[int, int, int, int]] = []  # (column, t, k, b)
    rows_eq: list[tuple[list[int], list[float], float]] = []
    cap_entries: dict[tuple[int, int], tuple[list[int], list[float]]] = {}
    en_entries: dict[tuple[int, int], tuple[list[int], list[float]]] = {}  # (t, k) -> energy used at t
    n_sets = 0
    for t, (inst, fam) in enumerate(zip(slots, fams, strict=True)):
        for cs in fam:
            lam_cols = []
            for s_id, S in enumerate(cs.members):
                n_sets += 1
                j = len(cols_obj)
                cols_obj.append(weights[t] * float(inst.g[list(S)].sum()) if S else 0.0)
                lam_index.append((t, cs.cell, s_id))
                lam_cols.append(j)
                for r, k in enumerate(S):
                    if Q0 is not None:
                        ent = en_entries.setdefault((t, k), ([], []))
                        ent[0].append(j)
                        ent[1].append(float(cs.energy[s_id][r]) * 1e3)  # mJ: better scaled rows
                    ucols = []
                    for b in range(inst.N):
                        lkb = cs.load[s_id][r, b]
                        if not math.isfinite(lkb):
                            continue
                        ju = len(cols_obj)
                        cols_obj.append(0.0)
                        u_index.append((ju, t, k, b))
                        ucols.append(ju)
                        ent2 = cap_entries.setdefault((t, b), ([], []))
                        ent2[0].append(ju)
                        ent2[1].append(lkb / GHZ)
                    rows_eq.append(([*ucols, j], [1.0] * len(ucols) + [-1.0], 0.0))  # member assigned
            rows_eq.append((lam_cols, [1.0] * len(lam_cols), 1.0))  # one set per cell
    n = len(cols_obj)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def add_row(c: list[int], v: list[float], lb: float, ub: float) -> None:
        r = len(lo)
        rows.extend([r] * len(c))
        cols.extend(c)
        vals.extend(v)
        lo.append(lb)
        hi.append(ub)

    for c, v, rhs in rows_eq:
        add_row(c, v, rhs, rhs)
    for (t, b), (c, v) in cap_entries.items():
        add_row(c, v, -np.inf, cap_scale * slots[t].F[b] / GHZ)  # eq. (10)
    if Q0 is not None:
        K = slots[0].K
        harvest = np.zeros(K)
        for t in range(len(slots)):
            for k in range(K):  # eq. (6) unrolled: sum_{s<=t} E_k(s) <= Q_k(0) + sum_{s<t} e_k(s)
                c: list[int] = []
                v: list[float] = []
                for s in range(t + 1):
                    if (s, k) in en_entries:
                        c += en_entries[(s, k)][0]
                        v += en_entries[(s, k)][1]
                if c and (t, k) in en_entries:
                    rhs = float(Q0[k] + harvest[k]) * 1e3
                    add_row(c, v, -np.inf, rhs * energy_scale if energy_scale < 1 else rhs * (1 + TOL))
            harvest = harvest + slots[t].e
    A = sp.csr_matrix((vals, (rows, cols)), shape=(len(lo), n))
    options = {"disp": bool(opts.verbose), "mip_rel_gap": float(opts.mip_gap)}
    left = deadline.limit_or_none(0.1)
    if left is not None:
        options["time_limit"] = left
    res = milp(
        -np.asarray(cols_obj),
        constraints=LinearConstraint(A, lo, hi),
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        options=options,
    )
    wall = deadline.elapsed()
    bound = -res.mip_dual_bound if getattr(res, "mip_dual_bound", None) is not None else None
    if res.x is None:
        st = "infeasible" if res.status == 2 else ("time_limit" if res.status == 1 else "error")
        return MilpResult(st, None, bound, None, n, n_sets, wall, str(res.message))
    sol = np.round(res.x).astype(int)
    targets = [np.full(inst.K, -1, dtype=np.int64) for inst in slots]
    for ju, t, k, b in u_index:
        if sol[ju] == 1:
            targets[t][k] = b
    obj = -float(res.fun)
    status = "optimal" if res.status == 0 else ("time_limit" if res.status == 1 else "feasible")
    if bound is None or not math.isfinite(bound):
        bound = obj if status == "optimal" else None
    return MilpResult(status, obj, bound, targets, n, n_sets, wall, str(res.message))


# ------------------------------------------------------------------------------------------------------------
# One slot
# ------------------------------------------------------------------------------------------------------------
def _finish_slot(inst: Instance, mr: MilpResult, opts: SolveOptions, info: dict) -> MethodOutput:
    if mr.targets is None:
        return MethodOutput(None, mr.status, mr.bound, info)  # type: ignore[arg-type]
    dec = decision_from_targets(inst, mr.targets[0])
    met = evaluate(inst, dec)
    status = mr.status
    if not met.feasible or met.objective < mr.objective - 1e-6 * max(1.0, abs(mr.objective)):
        # HiGHS' feasibility tolerance let a BS exceed F by a hair: re-solve with a margin, keep the first
        # bound
        fams = [cell_sets(inst, i) for i in range(inst.N)]
        mr2 = _solve_extended([inst], [fams], None, [1.0], opts, cap_scale=1 - 1e-7)
        info["resolved_with_margin"] = True
        if mr2.targets is not None:
            dec = decision_from_targets(inst, mr2.targets[0])
            status = "optimal" if mr2.status == "optimal" else mr2.status
    return MethodOutput(dec, status, mr.bound, info)


def pack(items: list[np.ndarray], F: np.ndarray, node_limit: int = 200_000) -> list[int] | None | bool:
    """Exact feasibility of assigning every item (row of l_{k,b}, inf = not allowed) to a BS with sum l <= F
    (eq. 10). Returns the BS of each item, None if infeasible, or False if the node limit was hit."""
    n = len(items)
    if n == 0:
        return []
    L = np.array(items)
    mins = L.min(axis=1)
    if mins.sum() > F.sum() * (1 + TOL):
        return None
    order = np.argsort(-mins, kind="stable")
    suffix = np.concatenate([np.cumsum(mins[order][::-1])[::-1], [0.0]])
    choice = [int(np.argmin(L[i])) for i in range(n)]
    rem = F.astype(float) * (1 + TOL)
    nodes = 0

    def dfs(pos: int) -> bool | None:
        nonlocal nodes
        nodes += 1
        if nodes > node_limit:
            return None
        if pos == n:
            return True
        if suffix[pos] > rem.sum():
            return False
        i = order[pos]
        for b in np.argsort(L[i], kind="stable"):
            lb = L[i, b]
            if not math.isfinite(lb):
                break
            if lb <= rem[b]:
                rem[b] -= lb
                choice[i] = int(b)
                r = dfs(pos + 1)
                rem[b] += lb
                if r is None or r:
                    return r
        return False

    r = dfs(0)
    if r is None:
        return False
    return choice if r else None


def best_first(
    inst: Instance, fams: list[CellSets], deadline: Deadline, max_combos: int = 20_000
) -> tuple[str, np.ndarray | None, float]:
    """Visit combinations of one admissible set per cell in non-increasing total award (k-best enumeration of
    sorted lists); the first one whose tasks can all be packed (eq. 10, :func:`pack`) is optimal.

    Returns (status, targets, bound): 'optimal' with the targets; otherwise 'limit' with the best award still
    unvisited, which bounds the optimum from above (every better combination was proven unpackable)."""
    awards = []
    orders = []
    for cs in fams:
        g = np.array([float(inst.g[list(S)].sum()) if S else 0.0 for S in cs.members])
        o = np.argsort(-g, kind="stable")
        orders.append(o)
        awards.append(g[o])
    start = (0,) * len(fams)
    heap = [(-sum(a[0] for a in awards), start)]
    seen = {start}
    visited = 0
    while heap:
        neg, idx = heapq.heappop(heap)
        if visited >= max_combos or deadline.expired():
            return "limit", None, -neg
        visited += 1
        items: list[np.ndarray] = []
        owners: list[int] = []
        for c, (cs, r) in enumerate(zip(fams, idx, strict=True)):
            sid = orders[c][r]
            items.extend(cs.load[sid])
            owners.extend(cs.members[sid])
        res = pack(items, inst.F)
        if res is False:
            return "limit", None, -neg
        if res is not None:
            target = np.full(inst.K, -1, dtype=np.int64)
            target[owners] = res
            return "optimal", target, -neg
        for c in range(len(fams)):
            if idx[c] + 1 < len(awards[c]):
                nxt = idx[:c] + (idx[c] + 1,) + idx[c + 1 :]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (-sum(awards[j][nxt[j]] for j in range(len(fams))), nxt))
    return "optimal", np.full(inst.K, -1, dtype=np.int64), 0.0  # only reachable if every set is empty


def solve_slot(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum of one slot (structure 1-3 of the module docstring).

    Best-first search over per-cell admissible sets with an exact packing oracle; if it runs out of its
    combination budget, the assignment MILP (HiGHS) finishes the job. On a time-out the incumbent is the
    greedy heuristic's and the bound is the best proven one."""
    deadline = Deadline.of(opts)
    info: dict = {}
    try:
        fams = [cell_sets(inst, i, deadline=deadline) for i in range(inst.N)]
    except EnumerationTimeout as e:
        from solvers.heuristics.into import greedy_peer

        info["timeout"] = f"enumeration: {e}"
        return MethodOutput(greedy_peer(inst, opts).decision, "time_limit", None, info)
    info["n_sets"] = sum(len(cs.members) for cs in fams)
    info["enum_s"] = deadline.elapsed()
    n_u = sum(len(S) for cs in fams for S in cs.members) * inst.N
    # a huge assignment MILP is hopeless within the limit: then the best-first search gets all the time
    budget = MILP_FALLBACK_COMBOS if n_u <= MILP_MAX_ASSIGN_VARS else 10**12
    st, target, bf_bound = best_first(inst, fams, deadline, max_combos=budget)
    info["best_first_s"] = deadline.elapsed() - info["enum_s"]
    if st == "optimal" and target is not None:
        info["method"] = "best-first"
        return MethodOutput(decision_from_targets(inst, target), "optimal", bf_bound, info)
    if n_u > MILP_MAX_ASSIGN_VARS or deadline.expired():
        from solvers.heuristics.into import greedy_peer

        info["timeout"] = "best-first search"
        return MethodOutput(greedy_peer(inst, opts).decision, "time_limit", bf_bound, info)
    mr = _solve_extended([inst], [fams], None, [1.0], replace(opts, time_limit=deadline.limit_or_none(0.1)))
    info.update({"method": "milp", "n_vars": mr.n_vars, "milp_s": mr.wall_s, "milp_message": mr.message})
    if mr.bound is not None:
        mr.bound = min(mr.bound, bf_bound)
    else:
        mr.bound = bf_bound
    if mr.targets is None:
        from solvers.heuristics.into import greedy_peer

        return MethodOutput(greedy_peer(inst, opts).decision, "time_limit", mr.bound, info)
    return _finish_slot(inst, mr, opts, info)


def solve_slot_milp(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum of one slot: admissible sets + the assignment MILP (HiGHS) directly."""
    deadline = Deadline.of(opts)
    try:
        fams = [cell_sets(inst, i, deadline=deadline) for i in range(inst.N)]
    except EnumerationTimeout as e:
        from solvers.heuristics.into import greedy_peer

        return MethodOutput(greedy_peer(inst, opts).decision, "time_limit", None, {"timeout": f"enumeration: {e}"})
    t_enum = deadline.elapsed()
    mr = _solve_extended([inst], [fams], None, [1.0], replace(opts, time_limit=deadline.limit_or_none(0.1)))
    info = {
        "n_sets": mr.n_sets,
        "n_vars": mr.n_vars,
        "enum_s": t_enum,
        "milp_s": mr.wall_s,
        "milp_message": mr.message,
    }
    return _finish_slot(inst, mr, opts, info)


def brute_force(inst: Instance, max_combos: int = 2_000_000) -> tuple[float, np.ndarray]:
    """Exhaustive search written from the equations, for tiny instances.

    Every device picks one of: discard; upload to BS b and be served in time; upload to BS b and get no CPU
    (the dominated "miss the deadline" options are enumerated too). Returns (best income, best target
    vector)."""
    K, N = inst.K, inst.N
    n_opt = 1 + 2 * N
    if n_opt**K > max_combos:
        raise InvalidInputError(f"into: brute force over {n_opt}^{K} actions is too large")
    grid = np.array(np.meshgrid(*[np.arange(n_opt)] * K, indexing="ij")).reshape(K, -1).T  # (M, K)
    x = (grid > 0).astype(float)
    tgt = np.where(grid > 0, (grid - 1) % N, 0)
    served = (grid > 0) & (grid <= N)
    a = inst.p * inst.h
    M = grid.shape[0]
    interf = np.zeros((M, K))
    for k in range(K):
        same = (inst.bs == inst.bs[k]) & (np.arange(K) != k)
        interf[:, k] = (x[:, same] * a[same]).sum(axis=1)  # eq. (3)
    nu = inst.B * np.log2(1 + a / (inst.B * inst.N0 + interf))  # eq. (2)
    dw = inst.z / nu  # eq. (4)
    Cb = inst.C[inst.bs[None, :].repeat(M, 0), tgt]
    own = tgt == inst.bs[None, :]
    linked = own | (Cb > 0)
    dc = np.where(own, 0.0, inst.z / np.where(Cb > 0, Cb, 1.0))  # eq. (8)
    slack = inst.delta - dw - dc
    need = np.where(slack > 0, inst.z * inst.v / np.where(slack > 0, slack, 1.0), np.inf)  # least f, eq. (9)
    ok = np.all(~x.astype(bool) | linked, axis=1)
    ok &= np.all(~x.astype(bool) | (inst.p * dw <= inst.Q * (1 + TOL) + 1e-15), axis=1)  # eq. (5)
    ok &= np.all(~served | (need <= inst.F[tgt]), axis=1)  # C4
    for b in range(N):
        ok &= np.where(served & (tgt == b), need, 0.0).sum(axis=1) <= inst.F[b] * (1 + TOL)  # eq. (10)
    income = np.where(ok, (inst.g * served).sum(axis=1), -np.inf)  # eq. (11)
    best = int(np.argmax(income))
    return float(income[best]), np.where(served[best], tgt[best], -1)


# ------------------------------------------------------------------------------------------------------------
# Horizon: clairvoyant optimum and the myopic exact policy
# ------------------------------------------------------------------------------------------------------------
@dataclass
class HorizonResult:
    income: float  # sum_t gamma^t r(t), evaluated by rolling the decisions through eq. (6)
    per_slot: list[float]
    status: str
    bound: float | None
    wall_s: float
    info: dict = field(default_factory=dict)


def rollout(slots: list[Instance], policy, gamma: float = 1.0) -> HorizonResult:  # type: ignore[no-untyped-def]
    """Apply ``policy(inst_with_current_Q, t) -> Decision`` slot by slot; buffers follow eq. (6)."""
    t0 = time.perf_counter()
    Q = slots[0].Q.copy()
    per: list[float] = []
    for t, inst in enumerate(slots):
        cur = with_Q(inst, Q)
        dec = policy(cur, t)
        met = evaluate(cur, dec)
        if not met.feasible:
            raise InvalidInputError(f"into: slot {t}: policy returned an infeasible decision: {met.violations[:2]}")
        per.append(met.objective)
        Q = np.asarray(met.values["Q_next_j"])
    total = float(sum(gamma**t * r for t, r in enumerate(per)))
    return HorizonResult(total, per, "feasible", None, time.perf_counter() - t0)


def myopic(slots: list[Instance], opts: SolveOptions, gamma: float = 1.0) -> HorizonResult:
    """Solve every slot to optimality with the buffers the previous slots left (eq. 6)."""
    statuses: list[str] = []

    def pol(inst: Instance, t: int) -> Decision:
        out = solve_slot(inst, opts)
        statuses.append(out.status)
        return out.decision

    res = rollout(slots, pol, gamma)
    res.status = "optimal-per-slot" if all(s == "optimal" for s in statuses) else "not-all-certified"
    return res


def clairvoyant(slots: list[Instance], opts: SolveOptions, gamma: float = 1.0) -> HorizonResult:
    """Certified optimum of sum_t gamma^t r(t) over the T slots with all future tasks, channels and
    harvests known
    (energy buffers coupled by eq. 6): an upper bound no causal policy can beat. The decisions are
    re-evaluated
    by rolling them through :func:`rollout`."""
    deadline = Deadline.of(opts)
    K = slots[0].K
    Q0 = slots[0].Q.copy()
    cap = Q0.copy()
    fams = []
    try:
        for inst in slots:
            fams.append([cell_sets(inst, i, energy_cap=cap, deadline=deadline) for i in range(inst.N)])
            cap = cap + inst.e  # the most energy a device can hold at the next slot
    except EnumerationTimeout as e:
        return HorizonResult(float("nan"), [], "time_limit", None, deadline.elapsed(), {"timeout": str(e)})
    weights = [gamma**t for t in range(len(slots))]
    sub = SolveOptions(
        time_limit=deadline.limit_or_none(0.1),
        mip_gap=opts.mip_gap,
        threads=opts.threads,
        seed=opts.seed,
        verbose=opts.verbose,
    )
    mr = _solve_extended(slots, fams, Q0, weights, sub)
    info = {
        "n_sets": mr.n_sets,
        "n_vars": mr.n_vars,
        "milp_message": mr.message,
        "milp_objective": mr.objective,
    }
    if mr.targets is None:
        return HorizonResult(float("nan"), [], mr.status, mr.bound, deadline.elapsed(), info)
    plan = mr.targets
    try:
        res = rollout(slots, lambda inst, t: decision_from_targets(inst, plan[t]), gamma)
        status = mr.status
    except InvalidInputError as e:
        # HiGHS' feasibility tolerance let a buffer or a BS go over by a hair: re-solve with margins and keep
        # the first (valid) bound; the status is downgraded below if a gap remains
        info["rollout_error"] = str(e)
        sub = SolveOptions(
            time_limit=deadline.limit_or_none(0.1), mip_gap=opts.mip_gap, threads=opts.threads, seed=opts.seed
        )
        mr2 = _solve_extended(slots, fams, Q0, weights, sub, cap_scale=1 - 1e-7, energy_scale=1 - 1e-6)
        try:
            if mr2.targets is None:
                raise InvalidInputError("margin re-solve found no plan")
            plan2 = mr2.targets
            res = rollout(slots, lambda inst, t: decision_from_targets(inst, plan2[t]), gamma)
            status = "optimal" if mr2.status == "optimal" else mr2.status
        except InvalidInputError as e2:
            res = HorizonResult(float("nan"), [], "error", None, 0.0)
            status = "error"
            info["rollout_error_margin"] = str(e2)
    if status == "optimal" and mr.bound is not None and res.income < mr.bound - 1e-6 * max(1.0, abs(mr.bound)):
        status = "feasible"
    res.status = status
    res.bound = mr.bound
    res.wall_s = deadline.elapsed()
    res.info = info
    assert K == slots[-1].K
    return res
