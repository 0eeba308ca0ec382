"""CTO-TP's slot (Section II, problem (8a)-(8e) for one slot t) as Pyomo models.

* :func:`build_milp`: the Lemma-1 reduction (full allocation, see :mod:`solvers.exact.cto.structured`) as one
  MILP: binary target choice (eq. 11) + routed ratios (eq. 8e); solved by HiGHS (method ``exact-milp``).
* :func:`build_model`: the paper's MINLP with every allocation a variable (no lemma), solved globally by
  SCIP (method ``pyomo-scip``).

Every constraint is named by meaning and carries ``doc="eq. (n)"``. The readers turn a solved model into a
feasible :class:`~mecopt.problems.cto.Decision` (the MINLP's point through :func:`mecopt.problems.cto.project`).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from mecopt.problems.cto import Decision, Instance, local_only, project, weights
from mecopt.problems.cto import evaluate as cto_evaluate
from solvers.exact.cto.structured import coeffs, lemma_decision, require_lemma

#: Scale of the Pyomo models: Gcycles, GHz, Gbit (keeps SCIP's absolute tolerances meaningful).
GIGA = 1e9
#: Ratios within this of 0 or 1 are snapped (SCIP's feasibility tolerance leaves 1e-9 crumbs).
SNAP = 1e-7


def _val(v: pyo.Var) -> float:
    """Value of a solved variable; one that appears in no constraint (e.g. d_mt of a server without tasks)
    is left without a value by the solver and is 0."""
    return 0.0 if v.value is None else float(v.value)


# ------------------------------------------------------------------------------------------------------------
# MILP of the Lemma-1 reduction (HiGHS)
# ------------------------------------------------------------------------------------------------------------
def build_milp(inst: Instance) -> pyo.ConcreteModel:
    """Binary target x_mn (eq. 11) + routed ratio r_mn (eq. 8e) with full allocation (Lemma 1): a MILP."""
    require_lemma(inst)
    wL, wE = weights(inst)
    M = inst.M
    full = np.arange(1, M + 1)
    pairs = [(m, n) for m in range(M) for n in range(M) if m != n and inst.D[m] > 0 and inst.B_rem[m, n] > 0]
    alpha = inst.D / (inst.kappa * inst.C_rem)
    beta = {}
    gamma = {}
    for m, n in pairs:
        tv = np.zeros(M, dtype=np.int64)
        tv[m] = n + 1
        c = coeffs(inst, tv)
        beta[m, n], gamma[m, n] = float(c.beta[m]), float(c.gamma[m])
    dP = inst.P_max - inst.P_min
    mdl = pyo.ConcreteModel(name="cto-milp")
    mdl.S = pyo.Set(initialize=range(M))
    mdl.P = pyo.Set(initialize=pairs, dimen=2)
    mdl.x = pyo.Var(mdl.P, domain=pyo.Binary, doc="eq. (11): server m offloads to n")
    mdl.r = pyo.Var(mdl.P, bounds=(0.0, 1.0), doc="eq. (8e): share of m's tasks offloaded to n")
    ub = float(max([*alpha, *beta.values(), 0.0])) + 1.0
    mdl.L = pyo.Var(mdl.S, bounds=(0.0, ub), doc="eq. (6): per-server latency max term")
    mdl.T = pyo.Var(mdl.S, bounds=(0.0, ub), doc="eq. (5): maximum computing time T_mt")

    def out_share(m: int) -> pyo.Expression:
        return sum(mdl.r[m, n] for (mm, n) in pairs if mm == m)

    @mdl.Constraint(mdl.S, doc="eq. (11): at most one cooperative server (D3)")
    def one_target(m, s):
        terms = [m.x[p] for p in pairs if p[0] == s]
        return sum(terms) <= 1 if terms else pyo.Constraint.Skip

    @mdl.Constraint(mdl.P, doc="eq. (8e): offload only to the selected server")
    def routed(m, s, n):
        return m.r[s, n] <= m.x[s, n]

    @mdl.Constraint(mdl.S, doc="eqs. (3), (6): local computing time")
    def lat_local(m, s):
        return m.L[s] >= alpha[s] * (1 - out_share(s)) if inst.D[s] > 0 else pyo.Constraint.Skip

    @mdl.Constraint(mdl.P, doc="eqs. (1)-(2), (4), (6): transmission + cooperative computing")
    def lat_coop(m, s, n):
        return m.L[s] >= beta[s, n] * m.r[s, n]

    @mdl.Constraint(mdl.S, doc="eq. (5): T_mt >= local computing time")
    def span_local(m, s):
        return m.T[s] >= alpha[s] * (1 - out_share(s)) if inst.D[s] > 0 else pyo.Constraint.Skip

    @mdl.Constraint(mdl.P, doc="eq. (5): T_nt >= computing time of offloaded work")
    def span_coop(m, s, n):
        return m.T[n] >= gamma[s, n] * m.r[s, n]

    def cycles(s: int) -> pyo.Expression:
        return inst.D[s] * (1 - out_share(s)) + sum(inst.D[mm] * mdl.r[mm, n] for (mm, n) in pairs if n == s)

    mdl.obj = pyo.Objective(
        expr=wL * sum(mdl.L[s] for s in mdl.S)
        + wE * sum(inst.P_min * mdl.T[s] + dP * cycles(s) / inst.C_cap[s] for s in mdl.S),
        sense=pyo.minimize,
        doc="eq. (8a) with eqs. (5)-(7)",
    )
    mdl._pairs = pairs  # type: ignore[attr-defined]
    del full
    return mdl


# ------------------------------------------------------------------------------------------------------------
# The paper's MINLP (all allocations variables), SCIP
# ------------------------------------------------------------------------------------------------------------
def build_model(inst: Instance) -> pyo.ConcreteModel:
    """Problem (8a)-(8e) of one slot with eqs. (1)-(7), (11)-(12), a nonconvex MINLP (Gcycles, GHz, Gbit)."""
    M = inst.M
    k = inst.kappa
    wL, wE = weights(inst)
    D = inst.D / GIGA
    F = inst.F / GIGA
    C = inst.C_rem / GIGA
    Cap = inst.C_cap / GIGA
    B = inst.B_rem / GIGA
    se = inst.spectral_eff
    dP = inst.P_max - inst.P_min
    pairs = [(m, n) for m in range(M) for n in range(M) if m != n and inst.D[m] > 0 and inst.B_rem[m, n] > 0]
    # valid bound: a solution with some latency term above UB0 / wL costs more than local-only (feasible)
    ub0 = float(cto_evaluate(inst, local_only(inst)).objective)
    tmax = ub0 / wL * (1.0 + 1e-6)
    mdl = pyo.ConcreteModel(name="cto-minlp")
    mdl.S = pyo.Set(initialize=range(M), doc="MEC servers")
    mdl.P = pyo.Set(initialize=pairs, dimen=2, doc="links k = (m, n) usable for offloading")
    mdl.x = pyo.Var(mdl.P, domain=pyo.Binary, doc="eq. (11): w_mt, server m selects cooperative server n")
    mdl.r = pyo.Var(mdl.P, bounds=(0.0, 1.0), doc="eqs. (8e), (12): a_mdt when n is the target")
    mdl.d_loc = pyo.Var(mdl.S, bounds=lambda m, s: (0.0, k * C[s]), doc="eqs. (3), (8c), (12): d_mt [GHz]")
    mdl.d_rem = pyo.Var(mdl.P, bounds=lambda m, s, n: (0.0, k * C[n]), doc="eqs. (4), (8c), (12): d_nt [GHz]")
    mdl.bw = pyo.Var(mdl.P, bounds=lambda m, s, n: (0.0, k * B[s, n]), doc="eqs. (1), (8d), (12): b_mnt [GHz]")
    mdl.t_loc = pyo.Var(mdl.S, bounds=(0.0, tmax), doc="eq. (3): L^compu_mt [s]")
    mdl.t_rem = pyo.Var(mdl.P, bounds=(0.0, tmax), doc="eq. (4): L^compu_mnt [s]")
    mdl.t_tr = pyo.Var(mdl.P, bounds=(0.0, tmax), doc="eq. (2): L^trans_mnt [s]")
    mdl.L = pyo.Var(mdl.S, bounds=(0.0, tmax), doc="eq. (6): max{...} of server m [s]")
    mdl.T = pyo.Var(mdl.S, bounds=(0.0, tmax), doc="eq. (5): T_mt [s]")

    def out_share(s: int) -> pyo.Expression:
        return sum(mdl.r[s, n] for (mm, n) in pairs if mm == s)

    @mdl.Constraint(mdl.S, doc="eq. (11): u_mt <= 1 cooperative server (D3)")
    def one_target(m, s):
        terms = [m.x[p] for p in pairs if p[0] == s]
        return sum(terms) <= 1 if terms else pyo.Constraint.Skip

    @mdl.Constraint(mdl.P, doc="eqs. (8e), (11): offload only to the selected server")
    def routed(m, s, n):
        return m.r[s, n] <= m.x[s, n]

    @mdl.Constraint(mdl.S, doc="eq. (3): L^compu_mt * d_mt >= (1 - a_mdt) D_mt")
    def local_time(m, s):
        return m.t_loc[s] * m.d_loc[s] >= D[s] * (1 - out_share(s)) if D[s] > 0 else pyo.Constraint.Skip

    @mdl.Constraint(mdl.P, doc="eq. (4): L^compu_mnt * d_nt >= a_mdt D_mt")
    def remote_time(m, s, n):
        return m.t_rem[s, n] * m.d_rem[s, n] >= D[s] * m.r[s, n]

    @mdl.Constraint(mdl.P, doc="eqs. (1)-(2): L^trans_mnt * b_mnt log2(1 + eta) >= a_mdt F_m")
    def trans_time(m, s, n):
        return m.t_tr[s, n] * m.bw[s, n] * se >= F[s] * m.r[s, n]

    @mdl.Constraint(mdl.S, doc="eq. (6): local branch of the max")
    def lat_local(m, s):
        return m.L[s] >= m.t_loc[s]

    @mdl.Constraint(mdl.P, doc="eq. (6): cooperative branch of the max")
    def lat_coop(m, s, n):
        return m.L[s] >= m.t_tr[s, n] + m.t_rem[s, n]

    @mdl.Constraint(mdl.S, doc="eq. (5): T_mt >= local computing time")
    def span_local(m, s):
        return m.T[s] >= m.t_loc[s]

    @mdl.Constraint(mdl.P, doc="eq. (5): T_nt >= computing time of work offloaded to n")
    def span_coop(m, s, n):
        return m.T[n] >= m.t_rem[s, n]

    if inst.capacity == "aggregate":

        @mdl.Constraint(mdl.S, doc="eq. (8c) aggregate (D4): allocations at a server <= C_nt")
        def capacity(m, s):
            return m.d_loc[s] + sum(m.d_rem[mm, n] for (mm, n) in pairs if n == s) <= C[s]

    def energy(s: int) -> pyo.Expression:
        if inst.energy_model == "average":
            cyc = D[s] * (1 - out_share(s)) + sum(D[mm] * mdl.r[mm, n] for (mm, n) in pairs if n == s)
            return inst.P_min * mdl.T[s] + dP * cyc / Cap[s]  # eq. (5) with D2
        held = mdl.d_loc[s] + sum(mdl.d_rem[mm, n] for (mm, n) in pairs if n == s)
        return (inst.P_min + dP * held / Cap[s]) * mdl.T[s]  # eq. (5), peak utilisation

    mdl.obj = pyo.Objective(
        expr=wL * sum(mdl.L[s] for s in mdl.S) + wE * sum(energy(s) for s in mdl.S),
        sense=pyo.minimize,
        doc="eq. (8a): lambda L_total + rho E_total, eqs. (6)-(7)",
    )
    mdl._pairs = pairs  # type: ignore[attr-defined]
    return mdl


def decision_from_milp(inst: Instance, mdl: pyo.ConcreteModel) -> Decision:
    """The solved MILP's targets and ratios with full allocation (Lemma 1)."""
    target = np.zeros(inst.M, dtype=np.int64)
    a = np.zeros(inst.M)
    for m, n in mdl._pairs:  # type: ignore[attr-defined]
        if _val(mdl.x[m, n]) > 0.5 and _val(mdl.r[m, n]) > 0:
            target[m] = n + 1
            a[m] = min(1.0, max(0.0, _val(mdl.r[m, n])))
    return lemma_decision(inst, target, a)


def decision_from_model(inst: Instance, mdl: pyo.ConcreteModel) -> Decision:
    """The solved MINLP's point (back in Hz), made exactly feasible by :func:`repair`."""
    M = inst.M
    target = np.zeros(M, dtype=np.int64)
    a = np.zeros(M)
    d_rem = np.zeros(M)
    b = np.zeros(M)
    for m, n in mdl._pairs:  # type: ignore[attr-defined]
        r = _val(mdl.r[m, n])
        if _val(mdl.x[m, n]) > 0.5:
            target[m] = n + 1
            a[m] = min(1.0, max(0.0, r))
            d_rem[m] = _val(mdl.d_rem[m, n]) * GIGA
            b[m] = _val(mdl.bw[m, n]) * GIGA
    d_loc = np.array([_val(mdl.d_loc[s]) * GIGA for s in range(M)])
    return repair(inst, target, a, d_loc, d_rem, b)


def repair(
    inst: Instance, target: np.ndarray, a: np.ndarray, d_loc: np.ndarray, d_rem: np.ndarray, b: np.ndarray
) -> Decision:
    """A solver's point onto the exact constraints: snap a to {0, 1} within SNAP (solver round-off), then
    :func:`mecopt.problems.cto.project` (eq. (12) boxes, unused allocations 0, aggregate capacity eq. 8c)."""
    a = np.where(a < SNAP, 0.0, np.where(a > 1 - SNAP, 1.0, a))
    pos = [np.maximum(v, 0.0) for v in (d_loc, d_rem, b)]  # a record holds no negative Hz; project clips anyway
    return project(inst, Decision(target=target, a=a, d_local=pos[0], d_remote=pos[1], b=pos[2]))
