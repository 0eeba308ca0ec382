"""DTAC's round (problem (13) of Han et al., Section II) as one Pyomo MINLP, solved globally by SCIP.

:func:`build_model` writes the whole of Section II for one round (every constraint named by meaning, with
``doc="eq. (n)"``); :func:`decision_from_model` reads a solved model back into a
:class:`~mecopt.problems.dtac.Decision`. Data in Mbit, Mbit/s, s, J; powers normalised by sigma^2.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from mecopt.problems.dtac import Decision, Instance, precompute, rate
from solvers.exact.dtac.structured import LN2, make_ctx, round_objective, simple_decisions


def _simple_upper_bound(inst: Instance) -> float:
    """Objective of the best of the simple decisions (a valid upper bound on the optimum)."""
    return min(round_objective(inst, d) for d in simple_decisions(inst))


def build_model(inst: Instance) -> pyo.ConcreteModel:
    """Problem (13) for one round as a MINLP (data in Mbit, Mbit/s, s, J; powers normalised by sigma^2)."""
    ctx = make_ctx(inst)
    pre = precompute(inst)
    N = inst.N
    ub = _simple_upper_bound(inst)
    Bm = inst.B / 1e6
    S = ctx.S / 1e6
    r_max = rate(Bm, ctx.gamma)  # Mbit/s at a = 1 without interference
    # valid bounds from the known feasible objective ub (no optimal solution is cut off, see docs D15)
    u_max = np.minimum(
        ub / max(inst.w1, 1e-300) if inst.w1 > 0 else math.inf,
        ub / max(inst.w2 * inst.P_UE * inst.a_min, 1e-300) if inst.w2 > 0 else math.inf,
    )
    u_max = np.where(np.isfinite(u_max), u_max, ctx.tu_hi * 1e6)
    u_max = np.maximum(u_max, ctx.tu_lo)
    m = pyo.ConcreteModel(name="dtac_round")
    m.N = pyo.Set(initialize=range(N), doc="UEs")
    m.O = pyo.Set(initialize=(0, 1, 2), doc="offloading options, eq. (1)")
    m.C = pyo.Set(initialize=range(1, inst.L + 1), doc="channels")
    m.K = pyo.Set(initialize=range(inst.K), doc="edge servers")
    pairs = [(n, j) for n in range(N) for j in range(N) if n != j and inst.server[n] == inst.server[j]]
    m.PAIRS = pyo.Set(initialize=pairs, dimen=2, doc="ordered same-cell pairs, eq. (5)")
    m.y = pyo.Var(m.N, m.O, domain=pyo.Binary, doc="x_n = o, eq. (1)")
    m.z = pyo.Var(m.N, m.C, domain=pyo.Binary, doc="l_n = c, eq. (13)")
    m.s = pyo.Var(m.PAIRS, bounds=(0, 1), doc="UE j transmits on UE n's channel, eq. (5)")
    m.a = pyo.Var(m.N, bounds=(inst.a_min, 1.0), doc="power ratio, eq. (13) (D3)")
    m.b = pyo.Var(m.N, bounds=(inst.b_min, 1.0), doc="frequency ratio, eq. (13) (D3)")
    i_max = {n: float(sum(ctx.wn[j] for (nn, j) in pairs if nn == n)) for n in range(N)}
    m.I = pyo.Var(m.N, bounds=lambda m_, n: (0.0, i_max[n]), doc="P_I / sigma^2, eq. (5)")
    m.r = pyo.Var(m.N, bounds=lambda m_, n: (0.0, float(r_max[n])), doc="R(n,k) in Mbit/s, eq. (4)")
    m.u1 = pyo.Var(m.N, bounds=lambda m_, n: (0.0, float(u_max[n])), doc="upload time of an edge task, eq. (8)")
    m.u2 = pyo.Var(m.N, bounds=lambda m_, n: (0.0, float(u_max[n])), doc="upload time of a cloud task, eq. (8)")
    m.tl = pyo.Var(m.N, bounds=lambda m_, n: (0.0, float(ctx.tl_hi[n])), doc="local time, eq. (2)")
    m.e = pyo.Var(m.N, bounds=(0.0, None), doc="E_t^n, eq. (7)")
    m.T = pyo.Var(bounds=(0.0, None), doc="T_t, eq. (12)")

    @m.Constraint(m.N, doc="eq. (1)")
    def one_option(m_, n):
        return sum(m_.y[n, o] for o in m_.O) == 1

    @m.Constraint(m.N, doc="eq. (13): l_n in {1..L}")
    def one_channel(m_, n):
        return sum(m_.z[n, c] for c in m_.C) == 1

    @m.Constraint(m.PAIRS, m.C, doc="eq. (5): indicator 1(l_j = l_n) for a transmitting j")
    def same_channel(m_, n, j, c):
        return m_.s[n, j] >= m_.z[n, c] + m_.z[j, c] + m_.y[j, 1] + m_.y[j, 2] - 2

    @m.Constraint(m.N, doc="eq. (5)")
    def interference(m_, n):
        return m_.I[n] >= sum(float(ctx.wn[j]) * m_.a[j] * m_.s[n, j] for (nn, j) in pairs if nn == n)

    @m.Constraint(m.N, doc="eq. (4): R(n,k) = B log2(1 + a P_UE |h|^2 / (sigma^2 + P_I))")
    def uplink_rate(m_, n):
        return m_.r[n] <= Bm / LN2 * pyo.log(1 + m_.a[n] * float(ctx.gamma[n]) / (1 + m_.I[n]))

    @m.Constraint(m.N, doc="eq. (8): S_i / R(n,k) for x = 1")
    def upload_edge(m_, n):
        return m_.u1[n] * m_.r[n] >= float(S[n]) * m_.y[n, 1]

    @m.Constraint(m.N, doc="eq. (8): S_i / R(n,k) for x = 2")
    def upload_cloud(m_, n):
        return m_.u2[n] * m_.r[n] >= float(S[n]) * m_.y[n, 2]

    @m.Constraint(m.N, doc="eq. (2): S C / (b F_UE) for x = 0")
    def local_time(m_, n):
        return m_.tl[n] * m_.b[n] >= float(ctx.tl_lo[n]) * m_.y[n, 0]

    @m.Constraint(m.N, doc="eq. (6)")
    def energy_upload(m_, n):
        return m_.e[n] >= inst.P_UE * m_.a[n] * (m_.u1[n] + m_.u2[n])

    @m.Constraint(m.N, doc="eq. (3)")
    def energy_local(m_, n):
        coef = float(inst.kappa * pre.SC[n] * inst.F_UE**2)
        return m_.e[n] >= coef * (m_.b[n] ** 2 - 1 + m_.y[n, 0])

    @m.Constraint(m.N, doc="eq. (12): T1(0) entry")
    def round_local(m_, n):
        return m_.T >= m_.tl[n]

    @m.Constraint(m.K, doc="eqs. (10)-(12): Q11 T1(1) + Q2 T21(1) of an edge queue")
    def round_edge(m_, k):
        mem = [n for n in range(N) if inst.server[n] == k]
        return m_.T >= sum(float(ctx.edge_c[j]) * m_.y[j, 1] + m_.u1[j] for j in mem)

    if ctx.mode == "cell":

        @m.Constraint(m.K, doc="eqs. (10)-(12) (D1 'cell'): Q12 T1(2) + Q2 T22(2) + the cell's T21(2) (TDMA)")
        def round_cloud(m_, k):
            expr = sum(float(ctx.cloud_glob[j]) * m_.y[j, 2] for j in range(N))
            mem = [n for n in range(N) if inst.server[n] == k]
            return m_.T >= expr + sum(float(ctx.cloud_cell[j]) * m_.y[j, 2] + m_.u2[j] for j in mem)

    else:

        @m.Constraint(m.N, doc="eqs. (10)-(12): Q12 T1(2) + T22(2) (+ Q2 T21(2), consistent variant)")
        def round_cloud(m_, n):
            expr = sum(float(ctx.cloud_glob[j]) * m_.y[j, 2] for j in range(N)) + float(ctx.T22own[n]) * m_.y[n, 2]
            if ctx.mode == "consistent":
                expr = expr + sum(m_.u2[j] for j in range(N))
            return m_.T >= expr

    m.obj = pyo.Objective(
        expr=inst.w1 * m.T + inst.w2 * sum(m.e[n] for n in m.N), sense=pyo.minimize, doc="eq. (13), one round"
    )
    return m


def decision_from_model(inst: Instance, m: pyo.ConcreteModel) -> Decision:
    N = inst.N
    x = np.array([max((0, 1, 2), key=lambda o: pyo.value(m.y[n, o])) for n in range(N)], dtype=np.int64)
    l = np.array([max(range(1, inst.L + 1), key=lambda c: pyo.value(m.z[n, c])) for n in range(N)], dtype=np.int64)
    a = np.clip([pyo.value(m.a[n]) for n in range(N)], inst.a_min, 1.0)
    b = np.clip([pyo.value(m.b[n]) for n in range(N)], inst.b_min, 1.0)
    return Decision(x=x, l=l, a=a, b=b)
