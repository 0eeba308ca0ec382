"""The literal MINLP of one INTO slot, eqs. (2)-(12) (Pyomo, MO-book style; solved by SCIP as an independent
cross-check of the structured method). Units: Mbit, Gcycles, GHz, s, W."""

from __future__ import annotations

import math

import pyomo.environ as pyo

from mecopt.problems.into import Instance, received_power, wired_delay_per_target

GHZ = 1e9


def build_model(inst: Instance) -> pyo.ConcreteModel:
    """Pyomo model of one slot of IMP: eqs. (2)-(5), (7)-(11), C1-C4; units Mbit, Gcycles, GHz, s, W.

    The award indicator 1{d <= delta} of eq. (11) is a binary ``o`` with o <= x and o = 1 => d <= delta (a
    big-M
    row whose M follows from the variable bounds); maximising makes o equal the indicator at an optimum.
    The SINR row is written as an inequality (a lower rate is never better), so the model is exact at
    optima."""
    K, N = inst.K, inst.N
    a = received_power(inst)
    sigma = inst.B * inst.N0
    snr = a / sigma  # received power in units of the noise power
    dc = wired_delay_per_target(inst)
    z_mb = inst.z / 1e6
    zv_g = inst.z * inst.v / GHZ
    F_g = inst.F / GHZ
    B_m = inst.B / 1e6
    pairs = [(k, b) for k in range(K) for b in range(N) if math.isfinite(dc[k, b])]
    cellmates = {k: [j for j in range(K) if inst.bs[j] == inst.bs[k] and j != k] for k in range(K)}

    m = pyo.ConcreteModel(name="into_slot")
    m.K = pyo.Set(initialize=range(K), doc="IoT devices (flat)")
    m.N = pyo.Set(initialize=range(N), doc="BSs")
    m.KB = pyo.Set(initialize=pairs, dimen=2, doc="(task, BS) pairs with a wired link (eq. 8)")
    m.x = pyo.Var(m.K, domain=pyo.Binary, doc="C1: upload decision x")
    m.o = pyo.Var(m.K, domain=pyo.Binary, doc="eq. (11): task uploaded and done by its deadline")
    m.y = pyo.Var(m.KB, domain=pyo.Binary, doc="C2: peer-offloading decision y")
    m.f = pyo.Var(m.KB, domain=pyo.NonNegativeReals, bounds=lambda _m, k, b: (0.0, F_g[b]), doc="C4: CPU (GHz)")
    m.s = pyo.Var(m.K, domain=pyo.NonNegativeReals, bounds=lambda _m, k: (0.0, snr[k]), doc="SINR, eq. (2)")
    m.nu = pyo.Var(
        m.K,
        domain=pyo.NonNegativeReals,
        bounds=lambda _m, k: (0.0, B_m * math.log2(1 + snr[k])),
        doc="uplink rate (Mbit/s), eq. (2)",
    )
    m.t = pyo.Var(
        m.K,
        domain=pyo.NonNegativeReals,
        bounds=lambda _m, k: (0.0, inst.Q[k] / inst.p[k]),
        doc="wireless delay d^w (s), eq. (4); bounded by eq. (5)",
    )
    m.c = pyo.Var(
        m.K,
        domain=pyo.NonNegativeReals,
        bounds=lambda _m, k: (0.0, inst.delta[k]),
        doc="computing delay d^m (s) of an on-time task, eq. (9)",
    )

    @m.Constraint(m.K, doc="eqs. (2)-(3): SINR with intra-cell interference")
    def sinr(m, k):
        return m.s[k] * (1.0 + sum(snr[j] * m.x[j] for j in cellmates[k])) <= snr[k]

    @m.Constraint(m.K, doc="eq. (2): Shannon rate")
    def shannon(m, k):
        return m.nu[k] <= B_m * pyo.log(1.0 + m.s[k]) / math.log(2.0)

    @m.Constraint(m.K, doc="eq. (4): d^w nu >= z x")
    def upload(m, k):
        return m.t[k] * m.nu[k] >= z_mb[k] * m.x[k]

    @m.Constraint(m.K, doc="eq. (5): p d^w x <= Q^E")
    def energy(m, k):
        return inst.p[k] * m.t[k] <= inst.Q[k]

    @m.Constraint(m.K, doc="C3: sum_i' y = x")
    def one_bs(m, k):
        return sum(m.y[k, b] for b in m.N if (k, b) in m.KB) == m.x[k]

    @m.Constraint(m.KB, doc="C4 and text after eq. (8): f = 0 when y = 0")
    def cpu_only_if_assigned(m, k, b):
        return m.f[k, b] <= F_g[b] * m.y[k, b]

    @m.Constraint(m.N, doc="eq. (10): computing capacity")
    def capacity(m, b):
        return sum(m.f[k, bb] for (k, bb) in m.KB if bb == b) <= F_g[b]

    @m.Constraint(m.K, doc="eq. (9): d^m sum_i' f >= z v (for an on-time task)")
    def compute(m, k):
        return m.c[k] * sum(m.f[k, b] for b in m.N if (k, b) in m.KB) >= zv_g[k] * m.o[k]

    @m.Constraint(m.K, doc="eq. (11): o = 1 => d^w + d^c + d^m <= delta")
    def deadline(m, k):
        big = inst.Q[k] / inst.p[k] + max(dc[k, b] for b in range(N) if math.isfinite(dc[k, b]))
        wired = sum(dc[k, b] * m.y[k, b] for b in m.N if (k, b) in m.KB)
        return m.t[k] + wired + m.c[k] <= inst.delta[k] + big * (1 - m.o[k])

    @m.Constraint(m.K, doc="eq. (11): income only for uploaded tasks")
    def on_time_uploaded(m, k):
        return m.o[k] <= m.x[k]

    m.income = pyo.Objective(expr=sum(inst.g[k] * m.o[k] for k in m.K), sense=pyo.maximize, doc="eq. (11)/(12)")
    return m
