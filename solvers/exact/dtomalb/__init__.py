"""Exact solvers for DTOMALB (one slot): the method functions and ``METHODS``.

The count-state DP lives in :mod:`.structured`, the Pyomo model in :mod:`.model`.

* ``exact``: the structure-exploiting method (:mod:`.structured`): a dynamic program over per-server queue counts,
  exact when the servers' queue orders agree and a valid bound otherwise; then the MILP settles the instance. For
  'delay+lb' a window enumeration over the count DP, else the MILP.
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

import numpy as np

from mecopt.core import Deadline, MethodOutput, NotAttemptedError, SolveOptions, SolverError, Status
from mecopt.problems.dtomalb import Decision, Instance, delays
from mecopt.spec import MethodSpec
from solvers.exact.dtomalb.fcfs import solve_fcfs
from solvers.exact.dtomalb.model import _decision_from, _wait_cuts, build_model
from solvers.exact.dtomalb.structured import _cost_to_go, _count_dp, _data, _dp_orders, solve_lb_enum
from solvers.pyomo_backend import Backend, solve_model

BRUTE_FORCE_LIMIT = 2_000_000


def _solve_one(
    inst: Instance, K: int | None, opts: SolveOptions, backend: Backend, deadline: Deadline
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
        remaining = deadline.limit_or_none(0.5)
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
        if deadline.expired():
            return "time_limit", bound, best_dec, it


def solve_milp(inst: Instance, opts: SolveOptions, backend: Backend = Backend.HIGHS) -> MethodOutput:
    """Certified optimum of one slot: HiGHS MILP (outer approximation of var(LD) for 'delay+lb')."""
    Ks: list[int | None] = [None] if inst.bandwidth_split == "all" else list(range(inst.N + 1))
    total = Deadline.of(opts)
    best: tuple[float, Decision] | None = None
    bound = np.inf
    statuses: list[Status] = []
    iters = 0
    for idx, K in enumerate(Ks):
        # each K gets an equal share of what is left (at least 0.5 s)
        deadline = Deadline(None if total.limit is None else max(0.5, total.remaining() / (len(Ks) - idx)))
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
        raise NotAttemptedError(f"dtomalb: brute force needs (M+1)^N = {total} > {BRUTE_FORCE_LIMIT} evaluations")
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


def solve_dp(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Certified optimum of P1 by the count DP (objective 'delay'); falls back to the MILP where the DP value is
    only a bound (server-1 queue inversions) or for 'delay+lb'. Under the physical FCFS queue (D12) the
    event-ordered label DP of :mod:`.fcfs` (both objectives), with the MILP as the fallback on a time-out."""
    if inst.queue_model == "fcfs":
        total = Deadline.of(opts)
        out = solve_fcfs(
            inst,
            SolveOptions(
                None if total.limit is None else 0.7 * total.limit, opts.mip_gap, opts.threads, opts.seed, opts.verbose
            ),
        )
        if out.status == "optimal":
            return out
        # always-valid bound: every user at its cheapest target ignoring this slot's other tasks (the server is free
        # at max(arrival, backlog) at the earliest; var(LD) >= 0), eqs. (6)-(11)
        Ks: list[int | None] = [None] if inst.bandwidth_split == "all" else list(range(inst.N + 1))
        static = np.inf
        for K in Ks:
            dk = _data(inst, K)
            srv = np.maximum(dk["arrive"], inst.backlog[None, :]) + dk["comp"]  # physical start >= both
            static = min(static, float(np.minimum(srv.min(axis=1), dk["cost"][:, 0]).sum()))
        static /= inst.N
        static *= inst.w1 if inst.objective != "delay" else 1.0
        info = {**out.info, "fallback": "milp"}
        dec, status, bound = out.decision, "time_limit", static
        left = total.remaining() if total.limit is not None else None
        if left is None or left > 0.3:
            mi = solve_milp(inst, SolveOptions(left, opts.mip_gap, opts.threads, opts.seed, opts.verbose))
            info.update(mi.info)
            status = mi.status
            bound = max(bound, mi.bound) if mi.bound is not None else bound
            if mi.decision is not None and (
                dec is None
                or delays(inst, mi.decision.a[None, :]).objective[0] < delays(inst, dec.a[None, :]).objective[0]
            ):
                dec = mi.decision
        return MethodOutput(dec, status, bound, info)
    if inst.objective != "delay":
        # one budget for both phases: the enumeration gets 70 % of it, the MILP fallback what is left
        total = Deadline.of(opts)
        first = None if total.limit is None else 0.7 * total.limit
        enum = solve_lb_enum(inst, SolveOptions(first, opts.mip_gap, opts.threads, opts.seed, opts.verbose))
        if enum is not None and enum.status == "optimal":
            return enum
        left = total.limit_or_none(0.5)
        out = solve_milp(inst, SolveOptions(left, opts.mip_gap, opts.threads, opts.seed, opts.verbose))
        out.info["method"] = "milp-oa (count-DP window enumeration did not apply or ran out of time)"
        if (
            enum is not None
            and enum.decision is not None
            and (
                out.decision is None
                or delays(inst, enum.decision.a[None, :]).objective[0]
                < delays(inst, out.decision.a[None, :]).objective[0]
            )
        ):
            out = MethodOutput(enum.decision, out.status, out.bound, out.info)
        if enum is not None and enum.bound is not None:  # both bounds are valid: keep the larger
            out.bound = enum.bound if out.bound is None else max(out.bound, enum.bound)
        return out
    total = Deadline.of(opts)
    # the DP gets 70 % of the time; the rest is left to the MILP fallback so a time-out still reports a bound
    deadline = Deadline(None if total.limit is None else 0.7 * total.limit, start=total.start)
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
    left = total.limit_or_none(1.0)
    out = solve_milp(inst, SolveOptions(left, opts.mip_gap, opts.threads, opts.seed, opts.verbose))
    info.update(out.info, fallback="milp")
    b = max(out.bound if out.bound is not None else -np.inf, static)
    if np.isfinite(bound):
        b = max(b, bound)
    dec, status = out.decision, out.status
    if dec is None or float(delays(inst, dec.a[None, :]).objective[0]) > inc:
        dec = inc_dec
    return MethodOutput(dec, status, float(b) if np.isfinite(b) else None, info)


METHODS: list[MethodSpec] = [
    MethodSpec(
        "exact",
        "exact",
        solve_dp,
        "cumulative eq. (8) (default): count-state DP over queue positions, window enumeration for delay+lb; "
        "physical FCFS (variant fcfs): event-ordered label DP; MILP settles inversions/time-outs",
        certified=True,
    ),
    MethodSpec(
        "milp",
        "exact",
        solve_milp,
        "MILP of P1, exact product linearization + valid wait cuts, HiGHS (outer approximation for delay+lb); "
        "the generic yardstick of the scaling sweep (not in the main tables: 3-45 s per fcfs-lb small instance)",
        certified=True,
        in_bench=False,
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


__all__ = [
    "BRUTE_FORCE_LIMIT",
    "METHODS",
    "_count_dp",
    "_cost_to_go",
    "_data",
    "_dp_orders",
    "_wait_cuts",
    "all_decisions",
    "build_model",
    "solve_brute_force",
    "solve_fcfs",
    "solve_dp",
    "solve_lb_enum",
    "solve_milp",
    "solve_scip",
]
