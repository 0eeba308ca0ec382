"""Tests of the CTO-TP problem (Liu et al.): formulation, data, certified solvers, heuristics, environment."""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import replace

import numpy as np
import pytest

from mecopt.core import InvalidInputError, SolveOptions, make_rng
from mecopt.problems import cto
from mecopt.problems.cto_trace import (
    load_google_task_events,
    slot_workloads,
    synthetic_trace,
    write_google_task_events,
)
from mecopt.registry import get_problem
from solvers import methods_for, solve
from solvers.exact import cto as ex

P = get_problem("cto")


def hand_instance(**kw: object) -> cto.Instance:
    """M = 2 with round numbers: eta = 3 so log2(1 + eta) = 2."""
    base = dict(
        M=2,
        D=[8e9, 2e9],
        F=[8e8, 4e8],
        C_rem=[50e9, 50e9],
        C_cap=[100e9, 100e9],
        B_rem=[[0.0, 1e9], [1e9, 0.0]],
        eta_db=10 * math.log10(3.0),
    )
    base.update(kw)
    return cto.Instance(**base)


def hand_decision(**kw: object) -> cto.Decision:
    base = dict(target=[2, 0], a=[0.5, 0.0], d_local=[20e9, 5e9], d_remote=[20e9, 0.0], b=[0.4e9, 0.0])
    base.update(kw)
    return cto.Decision(**base)


# ------------------------------------------------------------------------------------------------------------
# formulation
# ------------------------------------------------------------------------------------------------------------
def test_evaluate_hand_computed() -> None:
    inst = hand_instance()
    m = cto.evaluate(inst, hand_decision())
    assert m.feasible, m.violations
    # server 1: local 4e9/20e9 = 0.2 s; transmission 4e8/(0.4e9*2) = 0.5 s; remote 4e9/20e9 = 0.2 s -> 0.7 s
    # server 2: local 2e9/5e9 = 0.4 s -> L_total = 1.1 s (eq. 6)
    assert m.values["L_total_s"] == pytest.approx(1.1)
    # T_1 = 0.2, T_2 = max(0.4, 0.2) = 0.4; cycles 4e9 and 6e9 on 100 GHz (eq. 5, time-averaged U)
    # E_1 = 176*0.2 + 220*0.04 = 44.0, E_2 = 176*0.4 + 220*0.06 = 83.6 -> 127.6 J (eq. 7)
    assert m.values["E_total_J"] == pytest.approx(127.6)
    assert m.objective == pytest.approx(0.5 * 1.1 + 0.5 * 127.6)  # eq. (8a)
    # peak utilisation: U_2 = (5 + 20)/100 during T_2 = 0.4 -> E_2 = (176 + 55)*0.4 = 92.4
    mp = cto.evaluate(inst.replace(energy_model="peak"), hand_decision())
    assert mp.values["E_total_J"] == pytest.approx(44.0 + 92.4)
    # normalized: local-only full allocation 20 GHz: L_ref = 0.4 + 0.1, E_ref = 88 + 22 = 110
    mn = cto.evaluate(inst.replace(cost_units="normalized"), hand_decision())
    assert mn.objective == pytest.approx(0.5 * 1.1 / 0.5 + 0.5 * 127.6 / 110.0)
    assert cto.reference_costs(inst) == pytest.approx((0.5, 110.0))


def test_energy_dominates_raw_objective() -> None:
    """D1: with lambda = rho = 0.5 a raw sum of seconds and joules is ~100x dominated by energy."""
    inst = P.make_instance("small", 0)
    m = cto.evaluate(inst, cto.local_only(inst))
    assert m.values["E_total_J"] > 50 * m.values["L_total_s"]


def test_json_round_trip() -> None:
    inst = P.make_instance("small", 3, "normalized")
    inst2 = cto.Instance.from_dict(inst.to_dict())
    assert inst2 == inst and inst2.cost_units == "normalized"
    dec = solve("cto", inst, "fa").decision
    d2 = cto.Decision.from_dict(dec)
    assert cto.evaluate(inst, d2).objective == pytest.approx(solve("cto", inst, "fa").objective)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"D": [-1.0, 2e9]}, "D"),
        ({"C_rem": [float("nan"), 5e10]}, "finite"),
        ({"B_rem": [0.0, 1e9]}, "shape"),
        ({"lam": 0.6, "rho": 0.6}, "eq. (8b)"),
        ({"lam": 1.0, "rho": 0.0}, "lam"),
        ({"P_max": 100.0}, "P_max"),
        ({"C_rem": [2e11, 5e10]}, "capacity"),
        ({"F": [0.0, 4e8]}, "D > 0 xor F > 0"),
        ({"B_rem": [[1.0, 1e9], [1e9, 0.0]]}, "diagonal"),
        ({"D": [0.0, 0.0], "F": [0.0, 0.0]}, "no server has a task"),
        ({"kappa": 1.5}, "kappa"),
        ({"energy_model": "max"}, "energy_model"),
    ],
)
def test_invalid_instances(change: dict, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        hand_instance(**change)


def test_unknown_field_and_bad_decision_shapes() -> None:
    d = hand_instance().to_dict()
    d["mu"] = 1.0
    with pytest.raises(InvalidInputError, match="unknown field"):
        cto.Instance.from_dict(d)
    with pytest.raises(InvalidInputError, match="d_local"):
        cto.evaluate(hand_instance(), hand_decision(d_local=[1e9, 1e9, 1e9]))
    with pytest.raises(InvalidInputError, match="b"):
        hand_decision(b=[-1.0, 0.0])


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"a": [1.3, 0.0]}, "eq. (8e)"),
        ({"a": [-0.1, 0.0]}, "eq. (8e)"),
        ({"d_local": [30e9, 5e9]}, "eq. (8c)/(12): d_local[1]"),
        ({"d_remote": [21e9, 0.0]}, "eq. (8c)/(12): d_remote[1]"),
        ({"b": [0.5e9, 0.0]}, "eq. (8d)/(12): b[1]"),
        ({"target": [1, 0]}, "eq. (11): server 1 selects itself"),
        ({"target": [3, 0]}, "eq. (11): target[1] = 3"),
        ({"target": [0, 0]}, "selects no cooperative server"),
        ({"d_local": [0.0, 5e9]}, "eq. (3)"),
        ({"d_remote": [0.0, 0.0]}, "eq. (4)"),
        ({"b": [0.0, 0.0]}, "eqs. (1)-(2)"),
    ],
)
def test_infeasible_decisions_name_constraint(change: dict, needle: str) -> None:
    m = cto.evaluate(hand_instance(), hand_decision(**change))
    assert not m.feasible and math.isnan(m.objective)
    assert any(needle in v for v in m.violations), m.violations


def test_aggregate_capacity_violation_named() -> None:
    inst = hand_instance(capacity="aggregate", C_rem=[50e9, 20e9])
    # server 2 serves its own 8e9 Hz and 1's offload 8e9 Hz (each <= 0.4*20e9) but 16e9 <= 20e9 is fine ...
    ok = hand_decision(d_local=[20e9, 8e9], d_remote=[8e9, 0.0])
    assert cto.evaluate(inst, ok).feasible
    # ... while in a three-server consolidation the sum exceeds C_rem
    inst3 = P.make_instance("small", 0)  # the default reading of (8c) is the aggregate one (D4)
    assert inst3.capacity == "aggregate"
    dec = ex.lemma_decision(inst3, np.array([2, 0, 2]), np.array([1.0, 0.0, 1.0]))
    dec = dec.replace(d_local=inst3.kappa * inst3.C_rem)  # server 2 keeps all its work: 3 x 0.4 C_rem
    m = cto.evaluate(inst3, dec)
    assert not m.feasible and any("eq. (8c) aggregate" in v for v in m.violations)
    assert cto.evaluate(inst3.replace(capacity="per-allocation"), dec).feasible


def test_no_task_server_action_must_be_zero() -> None:
    inst = hand_instance(D=[8e9, 0.0], F=[8e8, 0.0])
    m = cto.evaluate(inst, hand_decision(target=[2, 1], a=[0.5, 0.5], d_remote=[20e9, 20e9], b=[0.4e9, 0.4e9]))
    assert any("no task" in v for v in m.violations)


# ------------------------------------------------------------------------------------------------------------
# data: synthetic traces and the Google task_events loader
# ------------------------------------------------------------------------------------------------------------
def test_synthetic_trace_is_seeded_bursty_heavy_tailed_async() -> None:
    t1 = synthetic_trace(3, 600.0, make_rng(5, "t"))
    t2 = synthetic_trace(3, 600.0, make_rng(5, "t"))
    assert all(np.array_equal(a, b) for a, b in zip(t1.times, t2.times, strict=True))
    for m in range(3):
        iat = np.diff(t1.times[m])
        assert iat.size > 100
        assert iat.std() / iat.mean() > 1.5  # bursty: ON/OFF periods make inter-arrivals over-dispersed
        c = t1.cpu[m]
        assert np.all((c > 0) & (c <= 1))
        assert np.quantile(c, 0.99) > 5 * np.median(c)  # heavy-tailed requirements
    counts = slot_workloads(t1, make_rng(5, "s"), n_slots=600).n
    assert np.mean((counts > 0).sum(axis=1) == 3) < 0.9  # servers are not active in lockstep


def test_google_loader_reads_task_events(tmp_path) -> None:
    rows = [
        (600_000_000, 11, 0, 0, 0.05),  # SUBMIT, job 11 -> server 11 % 3 = 2
        (600_500_000, 12, 0, 0, 0.10),  # SUBMIT, job 12 -> server 0
        (600_700_000, 12, 0, 1, 0.10),  # SCHEDULE: ignored
        (601_200_000, 13, 1, 0, 0.02),  # SUBMIT, job 13 -> server 1
        (602_900_000, 14, 0, 0, 1.50),  # SUBMIT, CPU clipped to 1
    ]
    path = tmp_path / "part-00000-of-00500.csv"
    write_google_task_events(path, rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("603000000,,15,0,,0,user,0,0,,0.01,0.0001,0\n")  # missing CPU request: skipped
    tr = load_google_task_events(path, 3)
    assert [t.tolist() for t in tr.times] == [[0.5], [1.2], [0.0, 2.9]]
    assert tr.cpu[2].tolist() == [0.05, 1.0]
    gz = tmp_path / "part.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [t.tolist() for t in load_google_task_events(gz, 3).times] == [[0.5], [1.2], [0.0, 2.9]]
    sw = slot_workloads(tr, make_rng(0, "x"), n_slots=3)
    assert sw.n.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]
    assert sw.D[0, 2] == pytest.approx(0.05 * 100e9)
    assert np.all((sw.F[sw.n > 0] >= 40e6) & (sw.F[sw.n > 0] <= 160e6))
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(InvalidInputError, match="13 columns"):
        load_google_task_events(bad, 3)


# ------------------------------------------------------------------------------------------------------------
# certified solvers
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["per-allocation", "normalized"])
def test_exact_matches_brute_force(variant: str) -> None:
    """Lemma-1 reading (per-allocation (8c)): exact and exact-milp equal the vertex enumeration."""
    seeds = [("tiny", s) for s in range(30)] + [("small", s) for s in range(8)] + [("m4", s) for s in range(2)]
    for size, s in seeds:
        inst = P.make_instance(size, s, variant).replace(capacity="per-allocation")
        bv, _ = ex.brute_force(inst)
        r = solve("cto", inst, "exact")
        assert r.status == "optimal", (size, s, r.message)
        assert r.objective == pytest.approx(bv, rel=1e-6), (size, s)
        assert r.bound <= r.objective * (1 + 1e-12)
        rm = solve("cto", inst, "exact-milp")
        assert rm.status == "optimal" and rm.objective == pytest.approx(bv, rel=1e-6), (size, s)


def test_exact_matches_pyomo_scip() -> None:
    """Default (aggregate (8c): spatial B&B where it binds) and per-allocation: exact = SCIP's global optimum."""
    for size, s, variant in [
        ("tiny", 0, "literal"),
        ("small", 1, "literal"),
        ("small", 3, "literal"),
        ("small", 2, "normalized"),
        ("small", 5, "normalized"),
        ("paper", 0, "literal"),
        ("m4", 0, "literal"),
        ("small", 1, "per-allocation"),
        ("small", 0, "nsr-10db"),
    ]:
        inst = P.make_instance(size, s, variant)
        r = solve("cto", inst, "exact")
        rs = solve("cto", inst, "pyomo-scip", SolveOptions(time_limit=30))
        assert rs.status == "optimal", rs.message
        assert rs.objective == pytest.approx(r.objective, rel=1e-6)
        assert rs.bound <= r.objective * (1 + 1e-6) and r.bound <= rs.objective * (1 + 1e-6)
        assert r.status == "optimal" and (r.objective - r.bound) <= 1e-6 * abs(r.objective)


def test_exact_no_stall_at_vanishing_ratio() -> None:
    """Regression (issue #12 stall): on this scaling instance the target vector [3, 3, 2] has its optimum at the
    limit a_3 -> 0; with HiGHS's absolute tolerance 1e-7 s on job times of ~0.02 s the spatial B&B's bound
    stalled 5e-7 below the optimum and `exact` hit 60 s (SCIP: 0.2 s). Scaled LPs certify it in well under 5 s."""
    import time

    cfg = replace(cto.PRESETS["small"], M=3, tasks_per_server=1)
    inst = cto.generate(cfg, make_rng(1670439542, "cto", "scaling")).replace(**cto.VARIANTS["literal"])
    t0 = time.perf_counter()
    r = solve("cto", inst, "exact", SolveOptions(time_limit=30))
    assert r.status == "optimal" and time.perf_counter() - t0 < 10.0, (r.status, r.gap)
    assert r.info["spatial_targets"] >= 1
    rs = solve("cto", inst, "pyomo-scip", SolveOptions(time_limit=30))
    assert rs.status == "optimal"
    assert r.objective == pytest.approx(rs.objective, rel=1e-6)
    assert r.bound <= rs.objective * (1 + 1e-9) and rs.bound <= r.objective * (1 + 1e-6)


def test_default_never_overcommits_a_server() -> None:
    """The physical fact of issue #12: under the default reading no server serves more than its remaining CPU
    (per-allocation, the literal variant, does so at the optimum of most instances)."""
    over_literal = 0
    for s in range(6):
        inst = P.make_instance("small", s)
        for variant, i in (("default", inst), ("per-allocation", inst.replace(capacity="per-allocation"))):
            dec = solve("cto", i, "exact").decision
            tgt, a = np.asarray(dec["target"]), np.asarray(dec["a"])
            used = np.where((1 - a) * i.D > 0, np.asarray(dec["d_local"]), 0.0)
            for m in range(i.M):
                if tgt[m] > 0 and a[m] > 0:
                    used[tgt[m] - 1] += dec["d_remote"][m]
            if variant == "default":
                assert np.all(used <= i.C_rem * (1 + 1e-9)), (s, used / i.C_rem)
                assert cto.evaluate(i, cto.Decision(**dec)).feasible
            else:
                over_literal += int(np.any(used > i.C_rem * (1 + 1e-9)))
    assert over_literal >= 3  # the literal reading really does over-commit (the test has teeth)


def test_exact_aggregate_below_independent_grid() -> None:
    """Aggregate (8c) binds on 'small': exact <= a grid over targets x ratios x allocation splits, and close."""
    inst = P.make_instance("small", 2)
    gv, gdec = ex.grid_search_aggregate(inst, steps=12, splits=8)
    assert cto.evaluate(inst, gdec).objective == pytest.approx(gv)
    r = solve("cto", inst, "exact")
    assert r.status == "optimal" and r.info["spatial_targets"] >= 1
    assert r.objective <= gv * (1 + 1e-12)
    assert (gv - r.objective) / r.objective < 0.01
    # the per-allocation optimum (a relaxation) lies below the certified aggregate bound
    lit = solve("cto", inst.replace(capacity="per-allocation"), "exact")
    assert lit.objective <= r.bound * (1 + 1e-9)  # aggregate is a restriction of per-allocation


def test_exact_internal_optimality_rule_and_mip_gap() -> None:
    """#18: 'optimal' only at a recomputed gap <= OPTIMALITY_TOL; a loose mip_gap may stop early as 'feasible'."""
    from mecopt.core import OPTIMALITY_TOL

    inst = P.make_instance("small", 0)
    r = solve("cto", inst, "exact", SolveOptions(mip_gap=0.05))
    gap = (r.objective - r.bound) / abs(r.objective)
    assert r.status == ("optimal" if gap <= OPTIMALITY_TOL else "feasible")
    assert r.bound is not None and r.bound <= r.objective * (1 + 1e-12)


def test_exact_below_fine_grid_and_close() -> None:
    for s in range(3):
        inst = P.make_instance("small", s, "normalized").replace(capacity="per-allocation")  # Lemma-1 grid
        gv, gdec = ex.grid_search(inst, steps=40)
        assert cto.evaluate(inst, gdec).objective == pytest.approx(gv)
        r = solve("cto", inst, "exact")
        assert r.objective <= gv * (1 + 1e-12)
        assert (gv - r.objective) / r.objective < 0.01  # the grid converges to the optimum


def test_no_random_decision_beats_exact() -> None:
    """Checks Lemma 1 independently: random targets, ratios and allocations (all feasible) never win."""
    for variant in ["per-allocation", "normalized"]:
        for s in range(4):
            inst = P.make_instance("small", s, variant).replace(capacity="per-allocation")
            r = solve("cto", inst, "exact")
            rng = make_rng(s, "lemma")
            Q, M, k = 20000, inst.M, inst.kappa
            opts = ex.target_options(inst)
            T = np.stack([rng.choice(o, size=Q) for o in opts], axis=1)
            A = np.where(T > 0, rng.uniform(0, 1, size=(Q, M)), 0.0)
            sh = 1.0 - rng.uniform(0, 1, size=(3, Q, M))
            n = np.clip(T - 1, 0, M - 1)
            d_loc = k * sh[0] * inst.C_rem
            d_rem = np.where(T > 0, k * sh[1] * inst.C_rem[n], 0.0)
            b = np.where(T > 0, k * sh[2] * inst.B_rem[np.arange(M), n], 0.0)
            for q in range(3):
                dec = cto.Decision(target=T[q], a=A[q], d_local=d_loc[q], d_remote=d_rem[q], b=b[q])
                assert cto.evaluate(inst, dec).feasible
            vals = cto.evaluate_batch(inst, T, A, d_loc, d_rem, b)
            assert vals.min() >= r.objective * (1 - 1e-9)


def test_variants_and_fallbacks() -> None:
    inst = P.make_instance("tiny", 1, "peak-utilisation")
    r = solve("cto", inst, "exact")
    assert r.status == "optimal" and "peak" in r.info["fallback"]  # exact falls back to certified SCIP
    r2 = solve("cto", P.make_instance("small", 1), "exact-milp")
    assert r2.status == "not_attempted" and "Lemma-1" in r2.message  # the MILP declines: needs full allocation
    assert solve("cto", P.make_instance("tiny", 1), "exact-milp").status == "optimal"  # M = 2: it is
    # with M = 2 a server serves at most 2 x kappa = 0.8 of C_rem: aggregate never binds, optimum = per-allocation
    inst = P.make_instance("tiny", 1)
    agg = solve("cto", inst, "exact")
    lit = solve("cto", inst.replace(capacity="per-allocation"), "exact")
    assert agg.status == "optimal" and agg.objective == pytest.approx(lit.objective, rel=1e-9)
    assert agg.info["spatial_targets"] == 0
    # aggregate is a restriction and peak energy >= average energy for every decision: optima can only grow
    for var, size in [("literal", "small"), ("peak-utilisation", "tiny")]:
        for s in range(2):
            inst = P.make_instance(size, s, var)
            rs = solve("cto", inst, "exact", SolveOptions(time_limit=30))
            lit = solve("cto", P.make_instance(size, s, "per-allocation"), "exact")
            assert rs.status == "optimal" and rs.feasible, rs.message
            assert rs.objective >= lit.objective * (1 - 1e-6)
            for h in ["fa", "ra", "local", "even-split", "balanced"]:
                rh = solve("cto", inst, h)
                assert rh.feasible and rh.objective >= rs.bound * (1 - 1e-9)


def test_nsr_variant_reads_eta_as_noise_to_signal() -> None:
    """Table I's 'noise-to-signal ratio eta = 10 dB' read literally: SNR = -10 dB, log2(1 + 0.1) bit/s/Hz."""
    inst = P.make_instance("small", 0, "nsr-10db")
    assert inst.eta_db == -10.0 and inst.spectral_eff == pytest.approx(math.log2(1.1))
    assert P.make_instance("small", 0).spectral_eff == pytest.approx(math.log2(11.0))
    r = solve("cto", inst, "exact")
    d = solve("cto", P.make_instance("small", 0), "exact")
    assert r.status == "optimal" and r.objective >= d.objective * (1 - 1e-9)  # slower links can only cost


def test_exact_time_limit_reports_bound() -> None:
    inst = P.make_instance("m4", 4, "normalized")
    r = solve("cto", inst, "exact", SolveOptions(time_limit=0.0))
    assert r.feasible and r.status in ("time_limit", "optimal")
    assert r.bound is not None and r.bound <= r.objective


def test_exact_honours_time_limit() -> None:
    """#18: the limit is honoured within 10 % + 1 s, and a time-out returns a valid bound (never None)."""
    import time
    from dataclasses import replace as dc_replace

    cfg = dc_replace(cto.PRESETS["small"], M=8, tasks_per_server=10)
    inst = cto.generate(cfg, make_rng(0, "cto", "limit"))
    t0 = time.perf_counter()
    r = solve("cto", inst, "exact", SolveOptions(time_limit=1.0))
    assert time.perf_counter() - t0 <= 1.0 * 1.1 + 1.0
    assert r.feasible and r.bound is not None and r.bound <= r.objective * (1 + 1e-12)
    assert r.status in ("time_limit", "optimal")


def test_build_model_documents_equations() -> None:
    import pyomo.environ as pyo

    mdl = ex.build_model(P.make_instance("small", 0))
    docs = [c.doc for c in mdl.component_objects(pyo.Constraint)]
    assert docs and all(d and re.match(r"eqs?\. \(", d) for d in docs), docs
    assert "eq. (8a)" in mdl.obj.doc


# ------------------------------------------------------------------------------------------------------------
# heuristics
# ------------------------------------------------------------------------------------------------------------
def test_heuristics_feasible_and_above_optimum() -> None:
    heur = [k for k, m in methods_for("cto").items() if m.kind == "heuristic"]
    assert {"fa", "ra", "local", "even-split", "balanced"} <= set(heur)
    for size in ["tiny", "small", "paper", "m4"]:
        for s in range(3):
            inst = P.make_instance(size, s)
            opt = solve("cto", inst, "exact").objective
            for h in heur:
                r = solve("cto", inst, h, SolveOptions(seed=s))
                assert r.feasible, (h, r.message)
                assert r.objective >= opt * (1 - 1e-9)
    inst = P.make_instance("small", 0)
    assert (
        solve("cto", inst, "ra", SolveOptions(seed=1)).decision
        == solve("cto", inst, "ra", SolveOptions(seed=1)).decision
    )
    assert (
        solve("cto", inst, "ra", SolveOptions(seed=1)).decision
        != solve("cto", inst, "ra", SolveOptions(seed=2)).decision
    )


@pytest.mark.parametrize("variant", list(cto.VARIANTS))
def test_project_repairs_into_feasibility(variant: str) -> None:
    """project (the one eq. 8c/12 repair of env, exact and heuristics): any in-shape point becomes feasible,
    a feasible decision keeps its objective, and projecting twice changes nothing."""
    rng = make_rng(3, "project")
    for size in ("tiny", "small", "m4"):
        for seed in range(4):
            inst = P.make_instance(size, seed, variant)
            M, k = inst.M, inst.kappa
            for _ in range(25):
                dec = cto.Decision(
                    target=rng.integers(0, M + 1, size=M),
                    a=rng.uniform(-0.2, 1.2, size=M),
                    d_local=rng.uniform(0.0, 1.5, size=M) * k * inst.C_rem,
                    d_remote=rng.uniform(0.0, 1.5, size=M) * k * inst.C_rem.max(),
                    b=rng.uniform(0.0, 1.5, size=M) * k * inst.B_rem.max(),
                )
                p = cto.project(inst, dec)
                assert cto.check_feasible(inst, p) == [], (size, seed)
                assert cto.project(inst, p) == p
                if not cto.check_feasible(inst, dec) and inst.capacity == "per-allocation":
                    assert cto.evaluate(inst, p).objective == cto.evaluate(inst, dec).objective


def test_generator_presets_and_tasks_per_server() -> None:
    inst = P.make_instance("small", 0)
    assert inst.M == 3 and np.all(inst.D > 0) and inst.kappa == 0.4
    assert inst.P_min == 176.0 and inst.P_max == 396.0 and inst.eta_db == 10.0
    assert np.all(inst.C_rem <= inst.C_cap) and np.all(inst.C_rem >= 0.5 * inst.C_cap)
    cfg = replace(cto.PRESETS["small"], M=5, tasks_per_server=4)
    i5 = cto.generate(cfg, make_rng(0, "g"))
    assert i5.M == 5 and np.all(i5.F >= 4 * 40e6) and np.all(i5.F <= 4 * 160e6)
    assert P.make_instance("small", 7) == P.make_instance("small", 7)


# ------------------------------------------------------------------------------------------------------------
# environment
# ------------------------------------------------------------------------------------------------------------
def test_env_reward_is_eq15_of_evaluate() -> None:
    from mecopt.envs.cto import make_env

    env = make_env("small", episode_slots=12, window=6, n_min=2)
    env.reset(seed=1)
    Ls, Es = [], []
    rng = make_rng(1, "act")
    for _ in range(12):
        inst = env.instance
        act = rng.uniform(0, 1, size=(3, 5))
        dec = env.decision(act)
        m = cto.evaluate(inst, dec)
        _, r, _, trunc, info = env.step(act)
        Ls.append(m.values["L_total_s"])
        Es.append(m.values["E_total_J"])
        L_star = np.mean(sorted(Ls[-6:])[:2])
        E_star = np.mean(sorted(Es[-6:])[:2])
        assert r == pytest.approx(0.5 * L_star / Ls[-1] + 0.5 * E_star / Es[-1])
        assert info["objective"] == pytest.approx(m.objective)
        if trunc:
            break


def test_idle_server_missing_link_and_single_server() -> None:
    """A server without tasks (its d_mt appears nowhere), a missing link (B = 0) and M = 1."""
    inst = cto.Instance(
        M=3,
        D=[5e9, 0.0, 3e10],
        F=[1e8, 0.0, 5e8],
        C_rem=[5e10, 8e10, 2e10],
        C_cap=[1e11] * 3,
        B_rem=[[0, 0, 1e9], [1e9, 0, 1e9], [0, 1e9, 0]],
    )
    assert ex.target_options(inst) == [[0, 3], [0], [0, 2]]
    for units in ["raw", "normalized"]:
        agg = inst.replace(cost_units=units)
        ra, rsa = solve("cto", agg, "exact"), solve("cto", agg, "pyomo-scip", SolveOptions(time_limit=30))
        assert ra.status == rsa.status == "optimal" and ra.objective == pytest.approx(rsa.objective, rel=1e-6)
        i = agg.replace(capacity="per-allocation")  # the vertex enumeration needs Lemma 1
        bv, _ = ex.brute_force(i)
        for method in ["exact", "exact-milp", "pyomo-scip"]:
            r = solve("cto", i, method, SolveOptions(time_limit=30))
            assert r.status == "optimal" and r.objective == pytest.approx(bv, rel=1e-6), (method, r.message)
            assert r.decision["target"][1] == 0 and r.decision["a"][1] == 0.0
    one = cto.Instance(M=1, D=[5e9], F=[1e8], C_rem=[5e10], C_cap=[1e11], B_rem=[[0.0]])
    # only local computing: L = 5e9 / 2e10 = 0.25 s, E = 176 * 0.25 + 220 * 0.05 = 55 J
    for method in methods_for("cto"):
        r = solve("cto", one, method, SolveOptions(time_limit=30))
        assert r.feasible, method
        if method == "ra":  # random local share: never better
            assert r.objective > 0.5 * 0.25 + 0.5 * 55.0
        else:
            assert r.objective == pytest.approx(0.5 * 0.25 + 0.5 * 55.0), method


def _random_decisions(inst: cto.Instance, rng: np.random.Generator, Q: int) -> tuple[np.ndarray, ...]:
    """Q random feasible decisions (targets, ratios, allocations); aggregate capacity enforced by scaling."""
    M, k = inst.M, inst.kappa
    T = np.stack([rng.choice(o, size=Q) for o in ex.target_options(inst)], axis=1)
    A = np.where(T > 0, rng.uniform(0, 1, size=(Q, M)), 0.0)
    A = np.where(rng.uniform(size=(Q, M)) < 0.2, np.where(T > 0, 1.0, 0.0), A)  # some full offloads
    sh = 1.0 - rng.uniform(0, 1, size=(3, Q, M)) ** 3  # biased towards full allocation
    n = np.clip(T - 1, 0, M - 1)
    d_loc = k * sh[0] * inst.C_rem
    d_rem = np.where(T > 0, k * sh[1] * inst.C_rem[n], 0.0)
    b = np.where(T > 0, k * sh[2] * inst.B_rem[np.arange(M), n], 0.0)
    if inst.capacity == "aggregate":
        onehot = T[:, :, None] == np.arange(1, M + 1)
        used = np.where((1 - A) * inst.D > 0, d_loc, 0.0) + np.where(onehot, d_rem[:, :, None], 0.0).sum(axis=1)
        f = np.minimum(1.0, inst.C_rem / np.maximum(used, 1e-30) * (1 - 1e-12))  # (Q, s)
        d_loc = d_loc * f
        d_rem = d_rem * np.take_along_axis(f, n, axis=1)
    return T, A, d_loc, d_rem, b


@pytest.mark.parametrize(
    ("variant", "size", "method"),
    [("literal", "small", "exact"), ("peak-utilisation", "tiny", "pyomo-scip")],
)
def test_no_random_decision_beats_certified(variant: str, size: str, method: str) -> None:
    """Readings without Lemma 1 (aggregate (8c), peak energy): the certified optimum is never beaten by random
    feasible decisions."""
    for s in range(2):
        inst = P.make_instance(size, s, variant)
        rs = solve("cto", inst, method, SolveOptions(time_limit=30))
        assert rs.status == "optimal"
        T, A, d_loc, d_rem, b = _random_decisions(inst, make_rng(s, "scip"), 20000)
        for q in range(5):
            dec = cto.Decision(target=T[q], a=A[q], d_local=d_loc[q], d_remote=d_rem[q], b=b[q])
            assert cto.evaluate(inst, dec).feasible, cto.evaluate(inst, dec).violations
        vals = cto.evaluate_batch(inst, T, A, d_loc, d_rem, b)
        assert vals.min() >= rs.objective * (1 - 1e-7)
        assert vals.min() <= rs.objective * 1.05  # samples get within 1 % in practice: the check has teeth
