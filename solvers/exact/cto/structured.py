"""The structure-exploiting certified algorithm of CTO-TP (Section II, problem (8a)-(8e) for one slot t).

It rests on Lemma 1 (docs/problems/cto.md): with the time-averaged utilisation of eq. (5) (D2) and the
per-allocation limits (8c)-(8d)/(12) (D4), every latency term of eq. (6) and every T_mt of eq. (5) is
non-increasing in every allocation while the energy term dP * cycles / C does not depend on them, so
d_mt = kappa C_mt, d_nt = kappa C_nt and b_mnt = kappa B_kt are optimal. What remains is convex piecewise
linear in a (maxima of linear functions), i.e. an LP per target choice.

* :func:`search` (method ``exact``): implicit enumeration of the target choices (eq. 11) with one LP in the
  offloading ratios per node (:class:`PairLP`, HiGHS); every LP bound is certified by a Lagrangian dual bound
  computed here (not trusted from the LP solver). Its time limit is one :class:`mecopt.core.Deadline`.
* :func:`brute_force`: enumerates targets and every vertex of the hyperplane arrangement of the piecewise
  linear objective (exact for the reduced problem), evaluated by the problem's own ``evaluate_batch``.
* :func:`grid_search`: targets x a regular grid of ratios (an upper bound that converges to the optimum).

The Pyomo models (Lemma-1 MILP and the paper's MINLP) are in :mod:`solvers.exact.cto.model`; the methods in
:mod:`solvers.exact.cto`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from mecopt.core import OPTIMALITY_TOL, Deadline, MethodOutput, NotAttemptedError, SolverError
from mecopt.problems.cto import (
    Decision,
    Instance,
    check_feasible,
    evaluate,
    evaluate_batch,
    full_allocation,
    local_only,
    project,
    weights,
)

#: The first DIVES target vectors that need the spatial B&B get a short one (DIVE_NODES boxes) when met: its
#: incumbent prunes the enumeration; the rest of their B&B, and the others, are deferred until it ends.
DIVES = 1
DIVE_NODES = 10


def aggregate_can_bind(inst: Instance) -> bool:
    """Whether the aggregate reading of (8c) can bind: some server may host more than 1/kappa jobs (its own
    local share and the shares of every linked server with tasks) at full allocation kappa*C each."""
    if inst.capacity != "aggregate":
        return False
    for s in range(inst.M):
        jobs = int(inst.D[s] > 0) + sum(1 for m in range(inst.M) if m != s and inst.D[m] > 0 and inst.B_rem[m, s] > 0)
        if jobs * inst.kappa > 1.0 + 1e-12:
            return True
    return False


def require_lemma(inst: Instance) -> None:
    if inst.energy_model != "average" or aggregate_can_bind(inst):
        raise NotAttemptedError(
            "cto: the Lemma-1 methods need energy_model='average' and a capacity reading under which full "
            "allocation is feasible (per-allocation, or aggregate where no server can host > 1/kappa jobs); "
            f"this instance has energy_model={inst.energy_model!r}, capacity={inst.capacity!r}: "
            "use pyomo-scip"
        )


def target_options(inst: Instance) -> list[list[int]]:
    """Admissible targets per server (eq. 11): 0 (none), or a linked cooperative server n != m."""
    opts = []
    for m in range(inst.M):
        if inst.D[m] <= 0:
            opts.append([0])
        else:
            opts.append([0] + [n + 1 for n in range(inst.M) if n != m and inst.B_rem[m, n] > 0])
    return opts


@dataclass(frozen=True)
class Coeffs:
    """Piece slopes under full allocation (Lemma 1) for one target vector."""

    alpha: np.ndarray  # (M,) D_m / (kappa C_m): local computing time of all of m's work
    beta: np.ndarray  # (M,) F_m / (kappa B_mn se) + D_m / (kappa C_n): cooperative time of all of m's work
    gamma: np.ndarray  # (M,) D_m / (kappa C_n): computing time at n of all of m's work


def coeffs(inst: Instance, target: np.ndarray) -> Coeffs:
    d_loc, d_rem, b = full_allocation(inst, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = inst.D / d_loc
        gamma = np.where(target > 0, inst.D / np.where(d_rem > 0, d_rem, 1.0), 0.0)
        beta = np.where(target > 0, inst.F / np.where(b > 0, b * inst.spectral_eff, 1.0), 0.0) + gamma
    return Coeffs(alpha, beta, gamma)


@dataclass(frozen=True)
class NodeResult:
    r: np.ndarray  # (M, M) routed ratios r_mn of the LP solution
    bound: float  # certified lower bound of the node


@dataclass(frozen=True)
class LPResult:
    a: np.ndarray
    value: float
    bound: float


class PairLP:
    """The Lemma-1 LP over all (m, n) pairs, built once in HiGHS; a target vector (eq. 11) is imposed by the
    column bounds of the routed ratios r_mn (upper bound 1 for the selected pair, 0 otherwise),
    re-solved from the
    previous basis. Variables x = (r_p for pairs p, L_1..M, T_1..M); every row is ``A x <= u``.
    """

    def __init__(self, inst: Instance, wL: float, wE: float):
        import highspy

        M = inst.M
        self.inst = inst
        self.pairs = [(m, n) for m in range(M) for n in range(M) if m != n and inst.D[m] > 0 and inst.B_rem[m, n] > 0]
        P = len(self.pairs)
        self.P = P
        nv = P + 2 * M
        iL, iT = P, P + M
        alpha = inst.D / (inst.kappa * inst.C_rem)
        dP = inst.P_max - inst.P_min
        cost = np.zeros(nv)
        cost[iL : iL + M] = wL
        cost[iT : iT + M] = wE * inst.P_min
        self.const = wE * dP * float(np.sum(inst.D / inst.C_cap))
        rows: list[np.ndarray] = []
        ub: list[float] = []
        out_of = {m: [i for i, p in enumerate(self.pairs) if p[0] == m] for m in range(M)}
        self.A_beta: list[float] = []
        for i, (m, n) in enumerate(self.pairs):
            tv = np.zeros(M, dtype=np.int64)
            tv[m] = n + 1
            c = coeffs(inst, tv)
            cost[i] = wE * dP * inst.D[m] * (1.0 / inst.C_cap[n] - 1.0 / inst.C_cap[m])  # eq. (5), D2
            self.A_beta.append(float(c.beta[m]))
            for var, coef in ((iL + m, c.beta[m]), (iT + n, c.gamma[m])):  # eqs. (6) and (5): r beta <= L ...
                row = np.zeros(nv)
                row[i] = coef
                row[var] = -1.0
                rows.append(row)
                ub.append(0.0)
        for m in range(M):
            if inst.D[m] <= 0:
                continue
            for var in (iL + m, iT + m):  # alpha (1 - sum_n r_mn) <= L_m, T_m: eqs. (3), (5), (6)
                row = np.zeros(nv)
                row[out_of[m]] = -alpha[m]
                row[var] = -1.0
                rows.append(row)
                ub.append(-alpha[m])
            if len(out_of[m]) > 1:
                # sum_n beta_mn r_mn <= L_m equals the eq. (6) branch when at most one r_mn > 0 (u_mt <= 1):
                # valid for every single-target point; it tightens the nodes where m may split (relaxation)
                row = np.zeros(nv)
                row[out_of[m]] = [self.A_beta[i] for i in out_of[m]]
                row[iL + m] = -1.0
                rows.append(row)
                ub.append(0.0)
        if inst.capacity == "aggregate":
            for s in range(M):
                # aggregate (8c): in T_s seconds server s computes at most C_s T_s cycles (sum_j w_j = sum_j d_j
                # t_j <= C_s T_s, eq. 5); at full allocation the Lemma-1 rows above are then only a relaxation
                row = np.zeros(nv)
                if inst.D[s] > 0:
                    row[out_of[s]] = -inst.D[s]
                for i, (m, n) in enumerate(self.pairs):
                    if n == s:
                        row[i] += inst.D[m]
                row[iT + s] = -inst.C_rem[s]
                rows.append(row / inst.C_rem[s])
                ub.append(-inst.D[s] / inst.C_rem[s])
        self.A = np.array(rows).reshape(len(rows), nv)
        self.u = np.array(ub)
        self.cost = cost
        big = float(np.max(alpha)) + float(np.sum(inst.D)) / float(np.min(inst.C_rem)) + 1.0
        for i in range(P):
            big = max(big, float(self.A[2 * i, i]) + 1.0)
        # valid bounds: at an optimum L_m and T_s are maxima of pieces that are <= big on [0, 1]
        self.lo = np.zeros(nv)
        self.hi = np.concatenate([np.zeros(P), np.full(2 * M, big)])
        lp = highspy.HighsLp()
        lp.num_col_ = nv
        lp.num_row_ = len(rows)
        lp.col_cost_ = cost
        lp.col_lower_ = self.lo
        lp.col_upper_ = self.hi
        lp.row_lower_ = np.full(len(rows), -highspy.kHighsInf)
        lp.row_upper_ = self.u
        csc = _to_csc(self.A)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc[0]
        lp.a_matrix_.index_ = csc[1]
        lp.a_matrix_.value_ = csc[2]
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.passModel(lp)
        self.h = h
        self.index = {p: i for i, p in enumerate(self.pairs)}

    def solve_node(self, fixed: dict[int, int]) -> NodeResult:
        """LP: servers in ``fixed`` kept to their target (0: none), the others free on all their links."""
        M = self.inst.M
        hi = np.zeros(self.P)
        for i, (m, n) in enumerate(self.pairs):
            hi[i] = 1.0 if (m not in fixed or fixed[m] == n + 1) else 0.0
        x, bound = self._run(hi)
        r = np.zeros((M, M))
        for i, (m, n) in enumerate(self.pairs):
            r[m, n] = min(1.0, max(0.0, float(x[i])))
        return NodeResult(r, bound)

    def _run(self, hi: np.ndarray) -> tuple[np.ndarray, float]:
        import highspy

        self.hi[: self.P] = hi
        self.h.changeColsBounds(self.P, np.arange(self.P, dtype=np.int32), np.zeros(self.P), hi)
        self.h.run()
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise SolverError(f"cto: Lemma-1 LP ended {self.h.getModelStatus()}")
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value)
        mu = np.maximum(0.0, -np.asarray(sol.row_dual))
        # Lagrangian dual bound: min over the box of cost.x + mu.(A x - u), separable per coordinate; valid
        # for
        # any mu >= 0, so it does not trust the LP solver's optimality
        red = self.cost + self.A.T @ mu
        bound = float(np.sum(np.minimum(red * self.lo, red * self.hi)) - mu @ self.u) + self.const
        return x, bound

    def solve(self, target: np.ndarray) -> LPResult:
        """The exact continuous problem of one target vector."""
        M = self.inst.M
        hi = np.zeros(self.P)
        for m in range(M):
            if target[m] > 0:
                hi[self.index[m, int(target[m]) - 1]] = 1.0
        x, bound = self._run(hi)
        a = np.zeros(M)
        for m in range(M):
            if target[m] > 0:
                a[m] = min(1.0, max(0.0, float(x[self.index[m, int(target[m]) - 1]])))
        inst = self.inst
        val = float(evaluate_batch(inst, target[None], a[None], *[v[None] for v in full_allocation(inst, target)])[0])
        return LPResult(a, val, min(bound, val))


def _to_csc(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    start, index, value = [0], [], []
    for j in range(A.shape[1]):
        nz = np.flatnonzero(A[:, j])
        index.extend(nz.tolist())
        value.extend(A[nz, j].tolist())
        start.append(len(index))
    return np.array(start, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value, dtype=float)


def _lp_for_targets(inst: Instance, target: np.ndarray, wL: float, wE: float) -> LPResult:
    """One Lemma-1 LP (convenience wrapper; ``solve_exact`` reuses one PairLP)."""
    return PairLP(inst, wL, wE).solve(np.asarray(target, dtype=np.int64))


def lemma_decision(inst: Instance, target: np.ndarray, a: np.ndarray) -> Decision:
    """The decision of targets and ratios with every allocation at its eq. (12) maximum (Lemma 1)."""
    target = np.where(a > 0, target, 0)
    a = np.where(target > 0, a, 0.0)
    d_loc, d_rem, b = full_allocation(inst, target)
    return Decision(target=target, a=a, d_local=d_loc, d_remote=d_rem, b=b)


def search(inst: Instance, deadline: Deadline, mip_gap: float = 0.0) -> MethodOutput:
    """Certified optimum by implicit enumeration of the target vectors (eq. 11); needs ``energy_model='average'``.

    A node fixes the targets of some servers; the others may split their ratio over all their links (a
    relaxation of u_mt <= 1). Its Lemma-1 LP gives a Lagrangian-certified lower bound (also a bound under the
    aggregate reading of (8c), which only restricts the allocations). A node whose LP solution uses at most one
    link per server is solved exactly by it if that point is feasible (always under ``per-allocation``; under
    ``aggregate`` when no server is over-committed). Otherwise the first splitting (or, for an over-committed
    point, the first unfixed) server is branched on (none or one target each); a node with every target fixed
    whose Lemma-1 point over-commits a server is solved by :func:`solvers.exact.cto.aggregate.solve_target`
    (spatial B&B). Stops when ``deadline`` expires (after the first LP), status ``time_limit`` if the gap is
    open; the bound is then the least bound of the open nodes (never None). ``optimal`` only at a recomputed
    relative gap <= :data:`mecopt.core.OPTIMALITY_TOL`; a positive ``mip_gap`` may stop the search early, with
    status ``feasible``.
    """
    from solvers.exact.cto.aggregate import quick_incumbent, solve_target

    if inst.energy_model != "average":
        require_lemma(inst)
    agg = inst.capacity == "aggregate"
    wL, wE = weights(inst)
    lp = PairLP(inst, wL, wE)
    options = target_options(inst)
    ub0 = float(evaluate(inst, local_only(inst)).objective)
    best_val, best_dec = ub0, local_only(inst)  # local-only is feasible in every reading (d = kappa C <= C)
    if agg and aggregate_can_bind(inst):
        # incumbent: the per-allocation optimum (a relaxation, solved quickly by Lemma 1) repaired by ``project``
        rel = search(inst.replace(capacity="per-allocation"), deadline, 1e-4)
        if rel.decision is not None:
            dec = project(inst, rel.decision)
            val = float(evaluate(inst, dec).objective)
            if val < best_val:
                best_val, best_dec = val, dec
    from solvers.exact.cto.aggregate import TARGET_GAP

    stop_gap = max(float(mip_gap), TARGET_GAP if agg else 1e-9)  # both well inside OPTIMALITY_TOL
    open_bounds: list[float] = []  # bounds of nodes left unexplored (time limit)
    closed_bound = math.inf  # min bound over pruned / solved nodes
    stack: list[tuple[dict[int, int], float]] = [({}, 0.0)]
    n_lp = 0
    n_spatial = 0
    n_dives = 0
    spatial_nodes = 0
    timed_out = False
    # target vectors left to the spatial B&B (with their Lemma-1 bound): solved after the enumeration, least bound
    # first, so that they meet the best incumbent the Lemma-1 LPs can give (most are then pruned or close fast)
    deferred: list[tuple[float, np.ndarray]] = []

    def point(target: np.ndarray, a: np.ndarray) -> tuple[float, Decision]:
        dec = lemma_decision(inst, target, a)
        if agg and check_feasible(inst, dec):
            dec = project(inst, dec)
        return float(evaluate(inst, dec).objective), dec

    while stack:
        fixed, parent = stack.pop()
        if parent >= best_val * (1.0 - stop_gap):
            closed_bound = min(closed_bound, parent)
            continue
        if n_lp and deadline.expired():
            timed_out = True
            open_bounds.extend(pb for _, pb in [(fixed, parent), *stack])
            break
        r = lp.solve_node(fixed)
        n_lp += 1
        nb = max(r.bound, parent)
        if nb >= best_val * (1.0 - stop_gap):
            closed_bound = min(closed_bound, nb)
            continue
        split = [m for m in range(inst.M) if m not in fixed and np.count_nonzero(r.r[m] > 1e-12) > 1]
        target = np.array([int(np.argmax(r.r[m])) + 1 if r.r[m].max() > 1e-12 else 0 for m in range(inst.M)])
        a = np.array([float(r.r[m].max()) for m in range(inst.M)])
        if not split:
            lem = lemma_decision(inst, target, a)
            if not (agg and check_feasible(inst, lem)):  # the relaxation's optimum is feasible: node solved
                val = float(evaluate(inst, lem).objective)
                closed_bound = min(closed_bound, nb)
                if val < best_val:
                    best_val, best_dec = val, lem
                continue
            free = [m for m in range(inst.M) if m not in fixed and len(options[m]) > 1]
            if not free:  # one target vector whose Lemma-1 point over-commits a server: spatial B&B, deferred
                full_t = np.array([fixed.get(m, 0) for m in range(inst.M)], dtype=np.int64)
                if n_dives < DIVES:  # a short spatial B&B: an incumbent of the aggregate problem's quality
                    n_dives += 1
                    tr = solve_target(inst, full_t, best_val, deadline, ub0, max_nodes=DIVE_NODES)
                    spatial_nodes += tr.nodes
                    if tr.decision is not None and tr.value < best_val:
                        best_val, best_dec = tr.value, tr.decision
                    if tr.complete and not tr.timed_out:
                        n_spatial += 1
                        closed_bound = min(closed_bound, max(tr.bound, nb))
                    else:
                        deferred.append((max(nb, tr.bound), full_t))
                    continue
                val, dec, root = quick_incumbent(inst, full_t, ub0)  # root: bound of its points <= ub0
                deferred.append((max(nb, min(root, ub0)), full_t))
                if dec is not None and val < best_val:
                    best_val, best_dec = val, dec
                continue
            m = free[0]
            val, dec = point(target, a)
            if val < best_val:
                best_val, best_dec = val, dec
            kids = sorted(options[m], key=lambda t: 1.0 if t == target[m] else 0.0)
            for t in kids:
                stack.append(({**fixed, m: t}, nb))
            continue
        if n_lp == 1:  # incumbent by rounding: every server takes its largest link
            rr = lp.solve(target)
            n_lp += 1
            val, dec = point(target, rr.a)
            if val < best_val:
                best_val, best_dec = val, dec
            if nb >= best_val * (1.0 - stop_gap):
                closed_bound = min(closed_bound, nb)
                continue
        m = split[0]
        # depth first, the child of the largest routed ratio explored first (pushed last)
        kids = sorted(options[m], key=lambda t: r.r[m, t - 1] if t > 0 else 1.0 - r.r[m].sum())
        for t in kids:
            stack.append(({**fixed, m: t}, nb))
    if timed_out:
        open_bounds.extend(nb for nb, _ in deferred)
        deferred = []
    deferred.sort(key=lambda q: q[0])
    for i, (nb, full_t) in enumerate(deferred):
        if nb >= best_val * (1.0 - stop_gap):
            closed_bound = min(closed_bound, nb)
            continue
        tr = solve_target(inst, full_t, best_val, deadline, ub0)
        n_spatial += 1
        spatial_nodes += tr.nodes
        if tr.decision is not None and tr.value < best_val:
            best_val, best_dec = tr.value, tr.decision
        if tr.timed_out:
            timed_out = True
            open_bounds.extend([max(tr.bound, nb), *(q[0] for q in deferred[i + 1 :])])
            break
        closed_bound = min(closed_bound, max(tr.bound, nb))
    bound = min([closed_bound, *open_bounds, best_val])
    info = {
        "target_vectors": math.prod(len(o) for o in options),
        "lps_solved": n_lp,
        "spatial_targets": n_spatial,
        "spatial_nodes": spatial_nodes,
    }
    gap = (best_val - bound) / max(abs(best_val), 1e-300)
    if gap <= OPTIMALITY_TOL:
        status = "optimal"
    elif timed_out:
        status = "time_limit"
    else:
        status = "feasible"
    return MethodOutput(best_dec, status, bound, info)


# ------------------------------------------------------------------------------------------------------------
# Independent references for tests
# ------------------------------------------------------------------------------------------------------------
def _planes(inst: Instance, target: np.ndarray, O: list[int]) -> list[tuple[np.ndarray, float]]:
    """Hyperplanes (coef over a_O, rhs) where two pieces of a max in eqs. (5)-(6) are equal, + box faces."""
    c = coeffs(inst, target)
    K = len(O)
    kpos = {m: i for i, m in enumerate(O)}
    out: list[tuple[np.ndarray, float]] = []
    for i in range(K):
        e = np.zeros(K)
        e[i] = 1.0
        out += [(e, 0.0), (e, 1.0)]
    # a piece is (coef vector g, const h): value g.a + h
    groups: list[list[tuple[np.ndarray, float]]] = []
    for m in range(inst.M):
        if inst.D[m] <= 0:
            continue
        g = np.zeros(K)
        if m in kpos:
            g[kpos[m]] = -c.alpha[m]
        own = (g, float(c.alpha[m]))
        lat = [own]
        if m in kpos:
            g2 = np.zeros(K)
            g2[kpos[m]] = c.beta[m]
            lat.append((g2, 0.0))
        groups.append(lat)
    for s in range(inst.M):
        grp = []
        if inst.D[s] > 0:
            g = np.zeros(K)
            if s in kpos:
                g[kpos[s]] = -c.alpha[s]
            grp.append((g, float(c.alpha[s])))
        for m in O:
            if target[m] == s + 1:
                g = np.zeros(K)
                g[kpos[m]] = c.gamma[m]
                grp.append((g, 0.0))
        groups.append(grp)
    for grp in groups:
        for (g1, h1), (g2, h2) in itertools.combinations(grp, 2):
            out.append((g1 - g2, h2 - h1))
    return out


def brute_force(inst: Instance) -> tuple[float, Decision]:
    """Exact optimum of the Lemma-1 reduction by vertex enumeration (independent of the LP code path)."""
    require_lemma(inst)
    best_val, best = math.inf, None
    for tv in itertools.product(*target_options(inst)):
        target = np.array(tv, dtype=np.int64)
        O = [m for m in range(inst.M) if target[m] > 0]
        K = len(O)
        if K == 0:
            cands = np.zeros((1, 0))
        else:
            planes = _planes(inst, target, O)
            G = np.array([p[0] for p in planes])
            h = np.array([p[1] for p in planes])
            combos = np.array(list(itertools.combinations(range(len(planes)), K)))
            A = G[combos]  # (Q, K, K)
            rhs = h[combos]
            ok = np.abs(np.linalg.det(A)) > 1e-12
            sol = np.linalg.solve(A[ok], rhs[ok][..., None])[..., 0]
            inside = np.all((sol >= -1e-9) & (sol <= 1 + 1e-9), axis=1)
            cands = np.clip(sol[inside], 0.0, 1.0)
        Q = cands.shape[0]
        a = np.zeros((Q, inst.M))
        a[:, O] = cands
        T = np.broadcast_to(target, (Q, inst.M))
        vals = evaluate_batch(inst, T, a, *full_allocation(inst, T))
        i = int(np.argmin(vals))
        if vals[i] < best_val:
            best_val, best = float(vals[i]), (target, a[i])
    assert best is not None
    return best_val, lemma_decision(inst, *best)


def grid_search(inst: Instance, steps: int = 200) -> tuple[float, Decision]:
    """Targets x ratios on a regular grid {0, 1/steps, ..., 1} with full allocation: an upper bound."""
    grid = np.linspace(0.0, 1.0, steps + 1)
    best_val, best = math.inf, None
    for tv in itertools.product(*target_options(inst)):
        target = np.array(tv, dtype=np.int64)
        O = [m for m in range(inst.M) if target[m] > 0]
        if O:
            mesh = np.stack(np.meshgrid(*([grid] * len(O)), indexing="ij"), axis=-1).reshape(-1, len(O))
        else:
            mesh = np.zeros((1, 0))
        a = np.zeros((mesh.shape[0], inst.M))
        a[:, O] = mesh
        T = np.broadcast_to(target, a.shape)
        vals = evaluate_batch(inst, T, a, *full_allocation(inst, T))
        i = int(np.argmin(vals))
        if vals[i] < best_val:
            best_val, best = float(vals[i]), (target, a[i])
    assert best is not None
    return best_val, lemma_decision(inst, *best)


def grid_search_aggregate(inst: Instance, steps: int = 10, splits: int = 6) -> tuple[float, Decision]:
    """An upper bound under any capacity reading, independent of the LP/B&B code: targets x a regular grid of
    ratios x (at every server that may be over-committed, eq. 8c aggregate) a simplex grid of how its remaining
    resources C_s are split among the jobs it hosts (each share capped at kappa C_s), evaluated by ``evaluate_batch``
    after :func:`mecopt.problems.cto.project` semantics (full allocation kappa*C elsewhere)."""
    grid = np.linspace(0.0, 1.0, steps + 1)
    M, k = inst.M, inst.kappa
    best_val, best = math.inf, None
    for tv in itertools.product(*target_options(inst)):
        target = np.array(tv, dtype=np.int64)
        O = [m for m in range(M) if target[m] > 0]
        mesh = np.stack(np.meshgrid(*([grid] * len(O)), indexing="ij"), axis=-1).reshape(-1, len(O)) if O else None
        a = np.zeros((1 if mesh is None else mesh.shape[0], M))
        if O:
            a[:, O] = mesh
        jobs: dict[int, list[tuple[int, bool]]] = {s: [] for s in range(M)}
        for m in range(M):
            if inst.D[m] > 0:
                jobs[m].append((m, False))
                if target[m] > 0:
                    jobs[int(target[m]) - 1].append((m, True))
        hosts = [s for s in range(M) if len(jobs[s]) * k > 1.0 + 1e-12]
        alloc_sets = []
        for s in hosts:
            n = len(jobs[s])
            pts = [c for c in itertools.product(range(splits + 1), repeat=n) if sum(c) == splits and min(c) > 0]
            alloc_sets.append(np.array(pts, dtype=float) / splits)  # shares of C_s summing to 1
        d_loc0, d_rem0, b0 = full_allocation(inst, target)
        for combo in itertools.product(*[range(len(x)) for x in alloc_sets]):
            d_loc, d_rem = d_loc0.copy(), d_rem0.copy()
            for s, ci, pts in zip(hosts, combo, alloc_sets, strict=True):
                for (m, remote), sh in zip(jobs[s], pts[ci], strict=True):
                    v = min(k, sh) * inst.C_rem[s]
                    if remote:
                        d_rem[m] = v
                    else:
                        d_loc[m] = v
            Q = a.shape[0]
            T = np.broadcast_to(target, (Q, M))
            vals = evaluate_batch(inst, T, a, *(np.broadcast_to(v, (Q, M)) for v in (d_loc, d_rem, b0)))
            i = int(np.argmin(vals))
            if vals[i] < best_val:
                tgt = np.where(a[i] > 0, target, 0)
                dec = Decision(
                    target=tgt,
                    a=np.where(tgt > 0, a[i], 0.0),
                    d_local=np.where((1 - a[i]) * inst.D > 0, d_loc, 0.0),
                    d_remote=np.where(tgt > 0, d_rem, 0.0),
                    b=np.where(tgt > 0, b0, 0.0),
                )
                if evaluate(inst, dec).feasible:
                    best_val, best = float(vals[i]), dec
    assert best is not None
    return best_val, best
