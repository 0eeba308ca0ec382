"""Tests of DTAC (problem, exact methods, heuristics, environment)."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mecopt.core import Deadline, InvalidInputError, SolveOptions, make_rng
from mecopt.problems import dtac as D
from mecopt.registry import get_problem
from solvers import methods_for, solve
from solvers.exact import dtac as EX
from solvers.heuristics import dtac as H

sys.path.insert(0, str(Path(__file__).parent))
import dtac_bruteforce as BF  # noqa: E402

SPEC = get_problem("dtac")


def hand_instance(**over: object) -> D.Instance:
    base = dict(
        K=1,
        N=2,
        L=1,
        M=2,
        server=[0, 0],
        task=[0, 1],
        S_in=[4.0, 2.0],
        C=[2.0, 3.0],
        S_out=[2.0, 4.0],
        cache=[[0, 0]],
        S_cap=[100.0],
        h_ue=[3.0, 1.0],
        h_ec=[1.0],
        P_UE=1.0,
        P_E=1.0,
        P_C=3.0,
        B=1.0,
        sigma2=1.0,
        F_UE=2.0,
        F_E=4.0,
        F_C=8.0,
        kappa=0.5,
        w1=1.0,
        w2=1.0,
    )
    base.update(over)
    return D.Instance(**base)


def dec(x, l, a, b) -> D.Decision:  # noqa: ANN001
    return D.Decision(x=x, l=l, a=a, b=b)


# ----------------------------------------------------------------------------------------------------
# Formulation
# ----------------------------------------------------------------------------------------------------
def test_hand_example_literal_and_variants() -> None:
    inst = hand_instance(round_time="literal", interference="literal")  # the paper as printed
    d = dec([1, 2], [1, 1], [1.0, 0.5], [1.0, 1.0])
    R0 = math.log2(1 + 3 / (1 + 0.5))  # eq. (4)-(5): UE 1 transmits on the same channel with a P_UE = 0.5
    R1 = math.log2(1 + 0.5 / (1 + 1.0))
    T21_0 = 4 / R0 + 2 / 2.0  # eq. (8): down rate log2(1 + 3) = 2
    T21_1 = 2 / R1 + 4 / 1.0
    T22_1 = 2 / 1.0 + 4 / 2.0  # eq. (9)
    E = 1.0 * 4 / R0 + 0.5 * 2 / R1  # eq. (6)
    T_lit = max(4 * 2 / 4 + T21_0, 2 * 3 / 8 + T22_1)  # eq. (12) literal
    m = D.evaluate(inst, d)
    assert m.feasible
    assert m.values["round_time_s"] == pytest.approx(T_lit, rel=1e-12)
    assert m.values["energy_J"] == pytest.approx(E, rel=1e-12)
    assert m.objective == pytest.approx(T_lit + E, rel=1e-12)
    # consistent eq. (12): the cloud task's T21 counts
    mc = D.evaluate(inst.replace(round_time="consistent"), d)
    assert mc.values["round_time_s"] == pytest.approx(max(2 + T21_0, 0.75 + T21_1 + T22_1), rel=1e-12)
    # received interference eq. (5): a_m P_UE |h(k,m)|^2
    mr = D.evaluate(inst.replace(interference="received"), d)
    R1r = math.log2(1 + 0.5 / (1 + 3.0))
    R0r = math.log2(1 + 3 / (1 + 0.5 * 1.0))
    assert mr.values["energy_J"] == pytest.approx(4 / R0r + 0.5 * 2 / R1r, rel=1e-12)
    # the default (cell reading of eq. 12, received eq. 5): the cloud task pays its UE<->edge time T21 and the
    # (shared) edge<->cloud time T22 on top of the cloud computation
    md = D.evaluate(hand_instance(), d)
    T21_0r, T21_1r = 4 / R0r + 2 / 2.0, 2 / R1r + 4 / 1.0
    assert md.values["round_time_s"] == pytest.approx(max(2 + T21_0r, 0.75 + T21_1r + T22_1), rel=1e-12)
    # local: eqs. (2)-(3)
    ml = D.evaluate(inst, dec([0, 0], [1, 1], [1.0, 1.0], [0.5, 1.0]))
    assert ml.values["round_time_s"] == pytest.approx(8.0)
    assert ml.values["energy_J"] == pytest.approx(0.5 * 8 * 1.0**2 + 0.5 * 6 * 2.0**2)
    # a cached edge task computes in zero time, eq. (2)
    mh = D.evaluate(inst.replace(cache=[[1, 0]]), dec([1, 0], [1, 1], [1.0, 1.0], [1.0, 1.0]))
    assert mh.values["tau_s"][0] == pytest.approx(4 / 2.0 + 2 / 2.0)


@pytest.mark.parametrize("variant", sorted(D.VARIANTS))
def test_vectorized_round_time_equals_matrix_form(variant: str) -> None:
    rng = make_rng(3, "t")
    for seed in range(4):
        inst = SPEC.make_instance("small", seed, variant)
        B = 40
        X = rng.integers(0, 3, size=(B, inst.N))
        Lc = rng.integers(1, inst.L + 1, size=(B, inst.N))
        A = rng.uniform(inst.a_min, 1, size=(B, inst.N))
        Bf = rng.uniform(inst.b_min, 1, size=(B, inst.N))
        t = D.terms(inst, X, Lc, A, Bf)
        for i in range(B):
            ref = D.round_time_matrix(inst, X[i], t.T1[i], t.T21[i], t.T22[i])
            assert t.T[i] == pytest.approx(ref, rel=1e-13)
            m = D.evaluate(inst, dec(X[i], Lc[i], A[i], Bf[i]))
            assert m.objective == pytest.approx(t.objective[i], rel=1e-13)


def test_json_round_trip() -> None:
    inst = SPEC.make_instance("paper", 1)
    assert D.Instance.from_dict(inst.to_dict()) == inst
    d = H.greedy(inst, SolveOptions()).decision
    assert D.Decision.from_dict(d.to_dict()) == d
    assert D.evaluate(inst, D.Decision.from_dict(d.to_dict())).objective == D.evaluate(inst, d).objective


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"S_in": [-1.0, 2.0]}, "S_in"),
        ({"h_ue": [float("nan"), 1.0]}, "h_ue"),
        ({"cache": [0, 0]}, "cache"),
        ({"server": [0, 1]}, "server"),
        ({"task": [0, 2]}, "task"),
        ({"cache": [[1, 1]], "S_cap": [5.0]}, "cache capacity constraint"),
        ({"sigma2": 0.0}, "sigma2"),
        ({"a_min": 0.0}, "a_min"),
        ({"round_time": "fancy"}, "round_time"),
    ],
)
def test_bad_instances(over: dict, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        hand_instance(**over)


def test_unknown_field_and_bad_decisions() -> None:
    data = hand_instance().to_dict()
    data["speed_of_light"] = 3e8
    with pytest.raises(InvalidInputError, match="unknown field"):
        D.Instance.from_dict(data)
    inst = hand_instance()
    with pytest.raises(InvalidInputError, match="Decision.x"):
        D.evaluate(inst, dec([1, 1, 1], [1, 1], [1, 1], [1, 1]))
    with pytest.raises(InvalidInputError, match="Decision.a"):
        dec([1, 1], [1, 1], [float("nan"), 1], [1, 1])
    cases = [
        (dec([3, 0], [1, 1], [1, 1], [1, 1]), "eq. (1)"),
        (dec([1, 0], [2, 1], [1, 1], [1, 1]), "l[0]"),
        (dec([1, 0], [1, 1], [0.0, 1], [1, 1]), "a[0]"),
        (dec([1, 0], [1, 1], [1.5, 1], [1, 1]), "a[0]"),
        (dec([1, 0], [1, 1], [1e-6, 1], [1, 1]), "a_min"),
        (dec([1, 0], [1, 1], [1, 1], [1, -0.2]), "b[1]"),
    ]
    for d, needle in cases:
        m = D.evaluate(inst, d)
        assert not m.feasible and math.isnan(m.objective)
        assert any(needle in v for v in m.violations), (needle, m.violations)
    with pytest.raises(InvalidInputError, match="eq. \\(1\\)"):
        D.evaluate_batch(inst, [[3, 0]], [[1, 1]], [[1, 1]], [[1, 1]])


def test_lru_update_respects_capacity_and_recency() -> None:
    inst = hand_instance(
        M=3,
        S_in=[1.0, 1.0, 1.0],
        C=[1.0, 1.0, 1.0],
        S_out=[4.0, 4.0, 4.0],
        cache=[[0, 0, 0]],
        S_cap=[8.0],
        task=[0, 1],
    )
    cache, last = D.lru_update(inst, np.array([1, 2]), inst.cache, np.zeros((1, 3)), 1.0)
    assert cache.tolist() == [[1, 1, 0]]
    cache, last = D.lru_update(inst.replace(task=[0, 0]), np.array([1, 0]), cache, last, 2.0)  # hit on 0
    cache, last = D.lru_update(inst.replace(task=[2, 2], cache=cache), np.array([1, 0]), cache, last, 3.0)
    assert cache.tolist() == [[1, 0, 1]]  # task 1 was least recently used
    assert (cache @ inst.S_out <= inst.S_cap).all()
    cache2, _ = D.lru_update(inst, np.array([0, 0]), cache, last, 4.0)  # nothing offloaded: unchanged
    assert cache2.tolist() == cache.tolist()


def test_generator_presets_and_logged_parameters() -> None:
    for size in ("tiny", "small", "paper", "fig5", "fig6", "fig7"):
        inst = SPEC.make_instance(size, 0)
        assert inst.N >= 1 and (inst.cache @ inst.S_out <= inst.S_cap).all()
    i5, i7 = SPEC.make_instance("fig5", 0), SPEC.make_instance("fig7", 0)
    assert i5.K == 5 and i7.K == 7
    assert i7.h_ec[0] < i5.h_ec[0]  # 800 m vs 300 m cloud radius
    p = SPEC.make_instance("paper", 0)
    assert p.B * p.L == pytest.approx(80e6) and p.F_E == pytest.approx(14.4e9)


# ----------------------------------------------------------------------------------------------------
# Exact methods
# ----------------------------------------------------------------------------------------------------
def brute_instances(variants: tuple[str, ...] = ("printed", "printed-eq5")) -> list[D.Instance]:
    """30 seeded 3-UE instances, most with forced channel sharing (L = 1 or 3 UEs on L = 2)."""
    out = []
    for seed in range(30):
        if seed % 2 == 0:
            cfg = replace(D.PRESETS["tiny"], K=1, ue_per_server=(3,), L=2 if seed % 6 == 0 else 1)
        else:
            cfg = replace(D.PRESETS["tiny"], K=2, ue_per_server=(1, 2), L=1)
        inst = D.generate(cfg, make_rng(seed, "dtac-brute"))
        if inst.N > 3:
            inst = D.generate(replace(cfg, K=3, ue_per_server=(1,)), make_rng(seed, "dtac-brute"))
        variant = variants[(seed // 3) % len(variants)]
        out.append(inst.replace(**D.VARIANTS[variant]))
    return out


def test_exact_matches_brute_force_on_30_tiny_instances() -> None:
    """Literal eq. (5) (sharing is never competitive): certified, equal to the brute force."""
    BF.STARTS = (0.0,)
    n_inter = 0
    for inst in brute_instances():
        r = solve("dtac", inst, "exact", SolveOptions(time_limit=30))
        assert r.status == "optimal", r.message
        bf, _ = BF.brute_force(inst)
        assert r.objective == pytest.approx(bf, rel=1e-6)
        assert r.bound <= bf * (1 + 1e-9)
        n_inter += int(inst.L == 1)
    assert n_inter >= 20  # most of them have forced channel sharing (interference, eq. 5)


@pytest.mark.parametrize("variant", sorted(D.VARIANTS))
def test_exact_vs_brute_force_every_variant(variant: str) -> None:
    """Every variant on tiny instances: with free channels (no sharing) exact certifies and equals the brute
    force; with forced sharing (L = 1) its bound never exceeds the brute force and a certified optimum matches."""
    BF.STARTS = (0.0, 0.5)
    for seed in (0, 1):
        free = D.generate(replace(D.PRESETS["tiny"], K=2, ue_per_server=(1, 2), L=2), make_rng(seed, "bfv"))
        free = free.replace(**D.VARIANTS[variant])
        r = solve("dtac", free, "exact", SolveOptions(time_limit=20))
        bf, _ = BF.brute_force(free)
        assert r.status == "optimal", r.message
        assert r.objective == pytest.approx(bf, rel=1e-6) and r.bound <= bf * (1 + 1e-9)
    for seed in (2, 14):
        cfg = replace(D.PRESETS["tiny"], K=2, ue_per_server=(1, 2), L=1)
        inst = D.generate(cfg, make_rng(seed, "t")).replace(**D.VARIANTS[variant])
        r = solve("dtac", inst, "exact", SolveOptions(time_limit=20))
        bf, _ = BF.brute_force(inst)
        assert r.feasible and r.bound <= bf * (1 + 1e-9)
        assert r.objective >= bf * (1 - 1e-6)  # SLSQP is local: the brute force is itself an upper bound
        if inst.interference == "received":  # issue #12: sharing is a convex program in log a, solved exactly
            assert r.status == "optimal", r.message
        if r.status == "optimal":
            assert r.objective == pytest.approx(bf, rel=1e-5)


def test_exact_agrees_with_pyomo_scip() -> None:
    for seed, variant in ((0, "literal"), (1, "printed"), (2, "consistent")):
        inst = SPEC.make_instance("tiny", seed, variant)
        ex = solve("dtac", inst, "exact", SolveOptions(time_limit=60))
        sc = solve("dtac", inst, "pyomo-scip", SolveOptions(time_limit=60))
        assert ex.status == "optimal"
        assert sc.feasible and sc.bound is not None
        assert sc.objective == pytest.approx(ex.objective, rel=2e-5)  # SCIP feasibility tolerance ~1e-6
        assert sc.bound <= ex.objective * (1 + 1e-6)
        assert ex.bound <= sc.objective * (1 + 1e-9)


@pytest.mark.parametrize("variant", sorted(D.VARIANTS))
def test_cheap_bound_and_core_bound_are_valid(variant: str) -> None:
    rng = make_rng(5, "t")
    for seed in range(2):
        inst = SPEC.make_instance("small", seed, variant)
        ctx = EX.make_ctx(inst)
        X = rng.integers(0, 3, size=(200, inst.N))
        Lc = rng.integers(1, inst.L + 1, size=(200, inst.N))
        A = np.exp(rng.uniform(np.log(inst.a_min), 0, size=(200, inst.N)))
        Bf = np.exp(rng.uniform(np.log(inst.b_min), 0, size=(200, inst.N)))
        obj = D.terms(inst, X, Lc, A, Bf).objective
        assert np.all(EX.cheap_lower_bounds(ctx, X) <= obj * (1 + 1e-12))
        assert EX.trivial_lower_bound(ctx) <= obj.min() * (1 + 1e-12)
        for i in range(3):
            for l in EX.channel_options(inst, X[i]):
                res = EX.solve_partition(ctx, X[i], l, math.inf, 1e-7, Deadline(None), max_nodes=8)
                assert res.lb <= res.ub * (1 + 1e-12)
                ls = Lc.copy()
                ls[:] = l
                assert res.lb <= D.terms(inst, X[i : i + 1].repeat(200, 0), ls, A, Bf).objective.min() * (1 + 1e-12)


def _groups(inst: D.Instance, x: np.ndarray, l: np.ndarray) -> list[np.ndarray]:
    out = []
    for k in range(inst.K):
        for c in range(1, inst.L + 1):
            g = np.flatnonzero((inst.server == k) & (x >= 1) & (l == c))
            if g.size >= 2:
                out.append(g)
    return out


@pytest.mark.parametrize("variant", ["literal", "consistent", "printed-eq12"])
def test_convex_partition_is_certified_and_valid(variant: str) -> None:
    """Issue #12: for a fixed (x, l) with channel sharing the convex program's dual bound is valid (below every
    sampled decision with that (x, l) and below its own primal point) and closes to 1e-7; the box bound of the
    branch and bound at the root is never above the convex program's value."""
    inst = SPEC.make_instance("small", 1, variant)
    ctx = EX.make_ctx(inst)
    rng = make_rng(7, "convex")
    A = np.exp(rng.uniform(np.log(inst.a_min), 0, size=(300, inst.N)))
    Bf = np.exp(rng.uniform(np.log(inst.b_min), 0, size=(300, inst.N)))
    n_checked = 0
    for x in ([1, 1, 1, 1, 1, 2], [1, 2, 1, 0, 2, 2], [2, 2, 2, 1, 1, 1], [1, 1, 1, 0, 0, 0]):
        x = np.array(x)
        for l in EX.channel_options(inst, x):
            groups = _groups(inst, x, l)
            if not groups:
                continue
            res = EX.structured.convex_partition(ctx, x, l, groups)
            assert res.dec is not None and res.lb <= res.ub * (1 + 1e-12)
            assert res.ub - res.lb <= 1e-7 * res.ub
            assert res.ub == pytest.approx(D.evaluate(inst, res.dec).objective, rel=1e-12)
            obj = D.terms(inst, np.repeat(x[None], 300, 0), np.repeat(l[None], 300, 0), A, Bf).objective
            assert res.lb <= obj.min() * (1 + 1e-12)
            box = EX.solve_partition(ctx, x, l, math.inf, 1e-7, Deadline(None), max_nodes=1, root_only=True)
            assert box.lb <= res.ub * (1 + 1e-9)
            n_checked += 1
    assert n_checked >= 6


def test_group_lower_bound_is_below_the_grid_minimum() -> None:
    """The tangent-plane bound of one interference group (a convex function of the log powers) is below the
    minimum of G over a grid of the box, for several prices of the upload times."""
    inst = SPEC.make_instance("small", 0)
    ctx = EX.make_ctx(inst)
    g = np.array([0, 1])
    lmin = math.log(inst.a_min)
    for mu in ([0.0, 0.0], [0.5, 0.1], [2.0, 0.0], [0.3, 0.7]):
        gr = EX.structured._Group(
            idx=g,
            q=np.array([0, 0]),
            lo=np.full(2, lmin),
            hi=np.zeros(2),
            cS=ctx.S[g] * math.log(2.0) / ctx.B,
            gam=ctx.gamma[g],
            wn=ctx.wn[g],
            P=ctx.P,
            u=np.zeros(2),
        )
        lb, _, _ = gr.lower_bound(np.array(mu))
        grid = np.linspace(lmin, 0.0, 61)
        vals = [gr.eval(np.array([u1, u2]), np.array(mu))[0] for u1 in grid for u2 in grid]
        assert lb <= min(vals) * (1 + 1e-12)
        assert lb >= min(vals) * (1 - 1e-2)  # and tight (the grid is coarse)


def test_exact_small_default_certifies() -> None:
    """Issue #12 target: a `small` instance of the default readings (3 UEs per cell on 2 channels: channel sharing
    competes) is certified within 60 s (measured: all 6 of seeds 0-5 in 2-12 s on a loaded machine)."""
    inst = SPEC.make_instance("small", 5)
    r = solve("dtac", inst, "exact", SolveOptions(time_limit=60))
    assert r.status == "optimal" and r.gap <= 1e-6


def test_exact_declines_beyond_enumeration_limit() -> None:
    """#18: N > MAX_ENUM_N is declined at once (status not_attempted, a message), not a time_limit after 1 ms."""
    inst = SPEC.make_instance("paper", 0)
    assert inst.N > EX.MAX_ENUM_N
    r = solve("dtac", inst, "exact", SolveOptions(time_limit=5))
    assert r.status == "not_attempted" and r.objective is None
    assert "3^N" in r.message


def test_exact_honours_time_limit() -> None:
    """The time limit is honoured within 10 % + 1 s (an instance that takes longer than 1 s to certify)."""
    import time

    inst = SPEC.make_instance("small", 0)
    for limit in (1.0, 4.0):
        t0 = time.perf_counter()
        r = solve("dtac", inst, "exact", SolveOptions(time_limit=limit))
        wall = time.perf_counter() - t0
        assert wall <= 1.1 * limit + 1.0, wall
        assert r.feasible and r.bound is not None and r.bound <= r.objective * (1 + 1e-12)


def test_convex_min_bound_is_valid() -> None:
    """The fallback branches of the core's bound: a lower bound on min_{T >= lo} of a convex h, also when the root
    of h' is only bracketed up to round-off."""
    for c, lo in ((2.0, 0.5), (2.0, 3.0), (1e-9, 1e-12), (5.0, 5.0 * (1 - 1e-12))):

        def h(T: float, c: float = c) -> float:
            return (T - c) ** 2 + 1.0

        def dh(T: float, c: float = c) -> float:
            return 2.0 * (T - c)

        true = 1.0 if lo <= c else h(lo)
        assert EX.structured._convex_min_bound(h, dh, lo, 1.0) <= true + 1e-15
    assert EX.structured._convex_min_bound(lambda T: -T, lambda T: -1.0, 0.0, 1.0) == -math.inf


def test_channel_options_count() -> None:
    inst = hand_instance(N=4, server=[0, 0, 0, 0], task=[0, 1, 0, 1], h_ue=[1.0, 2.0, 3.0, 4.0], L=2)
    # 4 offloaders, L = 2: Stirling S(4, 2) = 7 partitions; 2 offloaders: one (distinct channels)
    assert len(list(EX.channel_options(inst, np.array([1, 2, 1, 1])))) == 7
    assert len(list(EX.channel_options(inst, np.array([1, 0, 0, 2])))) == 1


def test_exact_small_printed_certifies_quickly() -> None:
    inst = SPEC.make_instance("small", 0, "printed")
    r = solve("dtac", inst, "exact", SolveOptions(time_limit=60))
    assert r.status == "optimal" and r.gap <= 1e-6
    for name in ("greedy", "all-edge", "all-cloud", "all-local", "random"):
        h = solve("dtac", inst, name, SolveOptions(seed=1))
        assert h.feasible and h.objective >= r.bound * (1 - 1e-9)


def test_round_time_counts_every_transmission() -> None:
    """#12, the physical fact: under the default every transmission of the round ends within T_t -- each
    offloader's UE<->edge time T21 (eq. 8), and the shared edge<->cloud links (eq. 9, clause 2 of eq. 11, Fig. 1)
    carry every cloud-bound task within T_t. The printed eq. (12) violates it (a cloud task's upload is free)."""
    rng = make_rng(11, "t")
    for size in ("small", "paper"):
        inst = SPEC.make_instance(size, 1)
        B = 50
        X = rng.integers(0, 3, size=(B, inst.N))
        Lc = rng.integers(1, inst.L + 1, size=(B, inst.N))
        A = np.exp(rng.uniform(np.log(inst.a_min), 0, size=(B, inst.N)))
        Bf = rng.uniform(inst.b_min, 1, size=(B, inst.N))
        t = D.terms(inst, X, Lc, A, Bf)
        T = t.T[:, None] * (1 + 1e-12)
        off = X >= 1
        cloud = X == 2
        assert np.all(np.where(off, t.T21 + t.T1, 0.0) <= T)  # own upload + download (+ computation)
        assert np.all(np.where(cloud, t.T21 + t.T22 + t.T1, 0.0) <= T)
        assert np.all((t.T22 * cloud).sum(axis=1) <= t.T * (1 + 1e-12))  # one shared edge<->cloud channel
        for k in range(inst.K):  # TDMA within a cell: the cell's edge-bound and cloud-bound legs each in sequence
            cell = inst.server == k
            assert np.all((t.T21 * ((X == 1) & cell)).sum(axis=1) <= t.T * (1 + 1e-12))
            assert np.all((t.T21 * (cloud & cell)).sum(axis=1) <= t.T * (1 + 1e-12))
    # the printed reading: the round time ignores how long the cloud-bound uploads take; the default does not
    for variant, changes in (("printed", False), ("literal", True)):
        inst = SPEC.make_instance("small", 1, variant)
        X = np.full((2, inst.N), 2)
        Lc = np.tile(np.arange(inst.N) % inst.L + 1, (2, 1))
        A = np.stack([np.ones(inst.N), np.full(inst.N, inst.a_min)])
        tp = D.terms(inst, X, Lc, A, np.ones((2, inst.N)))
        assert tp.T21[1].max() > tp.T21[0].max()
        assert (tp.T[1] > tp.T[0] * (1 + 1e-9)) == changes


# ----------------------------------------------------------------------------------------------------
# Heuristics and environment
# ----------------------------------------------------------------------------------------------------
def test_heuristics_feasible_everywhere() -> None:
    names = [n for n, m in methods_for("dtac").items() if m.kind == "heuristic"]
    assert set(names) == {"random", "all-local", "all-edge", "all-cloud", "greedy"}
    for size in ("tiny", "paper", "fig7"):
        for variant in D.VARIANTS:
            inst = SPEC.make_instance(size, 2, variant)
            for name in names:
                r = solve("dtac", inst, name, SolveOptions(seed=3))
                assert r.status == "feasible" and r.feasible, (name, r.message)


def test_greedy_picks_lower_bound_argmin() -> None:
    inst = SPEC.make_instance("paper", 4, "printed")  # printed eq. (12): the cloud option omits T21*(1)
    d = H.greedy(inst, SolveOptions()).decision
    t = D.lower_bound_times(inst)
    best = np.argmin(np.stack([t[:, 0], t[:, 1] + t[:, 2], t[:, 3] + t[:, 4]], axis=1), axis=1)
    assert d.x.tolist() == best.tolist()
    assert (d.a == 1).all() and (d.b == 1).all()
    dflt = SPEC.make_instance("paper", 4)  # the default counts the cloud task's UE<->edge time too
    best = np.argmin(np.stack([t[:, 0], t[:, 1] + t[:, 2], t[:, 2] + t[:, 3] + t[:, 4]], axis=1), axis=1)
    assert H.greedy(dflt, SolveOptions()).decision.x.tolist() == best.tolist()


def test_env_vector_reward_is_eq17() -> None:
    """DTAC-specific (the contract is in tests/test_envs.py): info['vector_reward'] is eq. (17) of the step."""
    from mecopt.registry import make_env

    env = make_env("dtac", "small", seed=0, rounds=2)
    env.reset(seed=7)
    inst = env.unwrapped.instance
    act = env.action_space.sample()
    met = D.evaluate(inst, env.unwrapped.decision(act))
    _, _, _, _, info = env.step(act)
    tau, E = np.asarray(met.values["tau_s"]), np.asarray(met.values["energy_per_ue_J"])
    assert info["vector_reward"].shape == (2 * inst.N,)
    np.testing.assert_allclose(info["vector_reward"], np.concatenate([-inst.w1 * tau, -inst.w2 * E]))
