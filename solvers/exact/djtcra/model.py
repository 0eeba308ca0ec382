"""Pyomo models of DJTCRA (MO-book style): P1 of one slot (eqs. 12-16) as a MINLP and P2 (eq. 17) on one server.

Units: CPU speeds in GHz, times in s. Every constraint is named by its meaning and cites its equation in ``doc``.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from scipy.special import expit

from mecopt.problems.djtcra import Instance, coefficients
from solvers.kernels.djtcra_p2 import GHZ, Terms


def _t_max(inst: Instance) -> np.ndarray:
    """Upper bound on a user's processing time used in the model: beyond it the QoE is < 1e-12 L_u (D14)."""
    return inst.beta + 28.0 / inst.alpha + 1.0


def build_model(inst: Instance) -> pyo.ConcreteModel:
    """Pyomo MINLP of P1 for one slot. Options o: 0 = RCS, 1..H = ESs. y[u,o] binary (C1, C4, eqs. 13, 16),
    p[u,o] >= 0 (C3, eq. 15) with sum_u p[u,h] <= P^h (C2, eq. 14), processing time t[u,o] with
    t p >= eta V kappa y (eq. 8), QoE q[u,o] <= L / (1 + exp(alpha (d^c + d^f + t - beta))) (eqs. 9, 11)."""
    co = coefficients(inst)
    U, H = inst.U, inst.H
    shared = co.rcs_shared
    tmax = _t_max(inst)
    rcs_q = inst.Lmax * expit(-inst.alpha * (co.fixed[:, 0] + co.work[:, 0] / co.capacity[0] - inst.beta))
    cap_ghz = co.capacity / GHZ
    work_g = co.work / GHZ
    m = pyo.ConcreteModel(name="djtcra-P1")
    m.U = pyo.Set(initialize=range(U), doc="users")
    m.O = pyo.Set(initialize=range(H + 1), doc="options: 0 = RCS, h = ES h")
    m.C = pyo.Set(initialize=[o for o in range(H + 1) if o > 0 or shared], doc="capacitated options")
    m.y = pyo.Var(m.U, m.O, domain=pyo.Binary, doc="eqs. (13), (16): y_u^h (o = 0: no ES, RCS)")
    m.p = pyo.Var(m.U, m.C, bounds=lambda _m, u, o: (0.0, float(cap_ghz[o])), doc="eq. (15): p_u in GHz")
    m.t = pyo.Var(m.U, m.C, bounds=lambda _m, u, o: (0.0, float(tmax[u])), doc="eq. (8): processing time (s)")
    m.q = pyo.Var(m.U, m.O, bounds=lambda _m, u, o: (0.0, float(inst.Lmax[u])), doc="eq. (11): QoE if at o")
    m.s = pyo.Var(m.U, m.C, domain=pyo.Binary, doc="D14: served (p > 0); an unserved user has QoE 0")

    @m.Constraint(m.U, doc="eq. (13) C1 (with the RCS as the 'no ES' option)")
    def one_option(m, u):
        return sum(m.y[u, o] for o in m.O) == 1

    @m.Constraint(m.C, doc="eq. (14) C2")
    def capacity(m, o):
        return sum(m.p[u, o] for u in m.U) <= float(cap_ghz[o])

    @m.Constraint(m.U, m.C, doc="eq. (14): p only on the chosen server (y_u^h p_u)")
    def allocate_on_choice(m, u, o):
        return m.p[u, o] <= float(cap_ghz[o]) * m.y[u, o]

    @m.Constraint(m.U, m.C, doc="D14: only a chosen server serves")
    def served_on_choice(m, u, o):
        return m.s[u, o] <= m.y[u, o]

    @m.Constraint(m.U, m.C, doc="eq. (8): t = eta V kappa / p when served")
    def processing(m, u, o):
        return m.t[u, o] * m.p[u, o] >= float(work_g[u, o]) * m.s[u, o]

    @m.Constraint(m.U, m.O, doc="eq. (11): q <= L y (L s on a capacitated server)")
    def qoe_on_choice(m, u, o):
        return m.q[u, o] <= float(inst.Lmax[u]) * (m.s[u, o] if o in m.C else m.y[u, o])

    @m.Constraint(m.U, m.O, doc="eqs. (9), (11): q <= L / (1 + exp(alpha (d^c + d^f + d^p - beta)))")
    def qoe_sigmoid(m, u, o):
        if o in m.C:
            z = float(inst.alpha[u]) * (float(co.fixed[u, o]) + m.t[u, o] - float(inst.beta[u]))
            return m.q[u, o] * (1 + pyo.exp(z)) <= float(inst.Lmax[u])
        return m.q[u, o] <= float(rcs_q[u])

    if inst.rcs_rule == "if-better":
        # D17: y_u^RCS = 1 only if the RCS latency (equal share among the RCS users when shared) is at most the
        # equal-share latency fixed + work (n_h + 1) / P^h at every ES h; linear in the counts n_o = sum_v y[v, o]
        def rcs_lat(m, u):
            share = sum(m.y[v, 0] for v in m.U) if shared else 1
            return float(co.fixed[u, 0]) + float(co.work[u, 0] / co.capacity[0]) * share

        big = float(co.work[:, 0].max() / co.capacity[0] * U + co.fixed[:, 0].max())

        @m.Constraint(m.U, range(1, H + 1), doc="Sec. III-A / D17: RCS only if it beats every ES at an equal share")
        def rcs_if_better(m, u, h):
            es = float(co.fixed[u, h]) + float(co.work[u, h] / co.capacity[h]) * (sum(m.y[v, h] for v in m.U) + 1)
            return rcs_lat(m, u) <= es + big * (1 - m.y[u, 0])

    m.obj = pyo.Objective(
        expr=sum(m.q[u, o] for u in m.U for o in m.O),
        sense=pyo.maximize,
        doc="eq. (12): system QoE of the slot",
    )
    return m


def build_p2_model(t: Terms, cap_ghz: float) -> pyo.ConcreteModel:
    """Pyomo model of P2 (eq. 17) on one server: max sum_i q_i, q_i (1 + exp(t-form)) <= L_i, t_i x_i >=
    work."""
    n = t.n
    # f_i(x) = Lm sigma(k - m/x) = Lm / (1 + exp(m tau - k)) with tau = 1/x (s/cycle scaled): use tau x >= 1
    m = pyo.ConcreteModel(name="djtcra-P2")
    m.I = pyo.Set(initialize=range(n))
    taumax = [(float(t.k[i]) + 28.0) / float(t.m[i]) + 1.0 for i in range(n)]
    m.x = pyo.Var(m.I, bounds=(0.0, cap_ghz), doc="eq. (15): CPU in GHz")
    m.tau = pyo.Var(m.I, bounds=lambda _m, i: (0.0, taumax[i]), doc="eq. (8): 1 / x")
    m.q = pyo.Var(m.I, bounds=lambda _m, i: (0.0, float(t.Lm[i])), doc="eq. (11)")
    m.z = pyo.Var(m.I, domain=pyo.Binary, doc="D14: served (x > 0); an unserved term has QoE 0")

    @m.Constraint(doc="eq. (14) C2")
    def capacity(m):
        return sum(m.x[i] for i in m.I) <= cap_ghz

    @m.Constraint(m.I, doc="eq. (8)")
    def inverse(m, i):
        return m.tau[i] * m.x[i] >= m.z[i]

    @m.Constraint(m.I, doc="D14: QoE 0 unless served")
    def qoe_if_served(m, i):
        return m.q[i] <= float(t.Lm[i]) * m.z[i]

    @m.Constraint(m.I, doc="eqs. (11), (17)")
    def qoe_sigmoid(m, i):
        return m.q[i] * (1 + pyo.exp(float(t.m[i]) * m.tau[i] - float(t.k[i]))) <= float(t.Lm[i])

    m.obj = pyo.Objective(expr=sum(m.q[i] for i in m.I), sense=pyo.maximize, doc="eq. (17)")
    return m
