"""DJTCRA sweeps: the exact frontier (structured vs Pyomo+SCIP), P2 alone, heuristics at the paper's scale.

* frontier: users in FRONTIER_U x ESs {3, 4}, capacities scaled to the paper's load (D10); the structured ``exact``
  with a 60 s limit, ``pyomo-scip`` with YARDSTICK_LIMIT_S = 30 s. SCIP is run for growing U only until it first
  fails to certify for that H (a larger instance would only time out too); such cells are marked "skipped". The
  axis stops after the first U where every ``exact`` solve hit the limit.
* P2 alone: one server (the 160 GHz ES scaled to ~1 user per 6.7 GHz, the paper's load), n = 10..200 users;
  sigmoidal B&B time and gap; SCIP on the same P2 for n <= 30 (P2_SCIP_LIMIT_S each), not again after the first n
  where it failed to certify (the yardstick rule of bench/sweep.py).
* paper scale: 100 users, 7 ESs; every heuristic against the best proven bound of ``exact`` (PAPER_LIMIT_S).

Counts and limits scale with the options (bench/sweep.py). Writes results/djtcra/{frontier,p2_scaling,paper_scale}
.{md,json} and frontier.png, p2_scaling.png. Timings are wall-clock on a shared 2-core machine: noisy.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import numpy as np

from bench.sweep import BenchConfig, Cell, Sweep, md_table, pyplot
from mecopt.core import SolveOptions, SolveResult, make_rng, relative_gap
from mecopt.problems import djtcra as d
from solvers import methods_for, solve
from solvers.exact.djtcra import build_p2_model, f_val, make_terms, solve_p2
from solvers.pyomo_backend import Backend, solve_model

FULL_SWEEP = False  # True: users 4..20 step 2, 3 instances per cell, P2 SCIP up to 30 users with 60 s
FRONTIER_U = tuple(range(4, 21, 2)) if FULL_SWEEP else (4, 8, 12, 16, 20)
FRONTIER_H = (3, 4)
FRONTIER_SEEDS = 3 if FULL_SWEEP else 1
TIME_LIMIT_S = 60.0
#: limit of the Pyomo+SCIP yardstick cells: half of exact's (it fails at U = 8 either way; #20's 15-minute budget)
YARDSTICK_LIMIT_S = 30.0
P2_N = (10, 20, 50, 100, 200)
P2_SCIP_N = (5, 10, 20, 30)
P2_SCIP_LIMIT_S = 60.0 if FULL_SWEEP else 15.0
PAPER_INSTANCES = 2
PAPER_LIMIT_S = 20.0
HEURISTICS = [m.name for m in methods_for("djtcra").values() if m.kind == "heuristic"]


@cache
def _frontier_instance(U: int, H: int, seed: int) -> d.Instance:
    return d.generate(d.Config(U=U, H=H, match_paper_load=True), make_rng(seed, "djtcra", "frontier"))


@cache
def _p2_instance(n: int, seed: int) -> tuple[Any, float]:
    inst = d.generate(d.Config(U=n, H=7), make_rng(seed, "djtcra", "p2"))
    co = d.coefficients(inst)
    h = 7  # the 160 GHz ES, scaled to the paper's load
    t = make_terms(inst.alpha, inst.beta, inst.Lmax, co.fixed[:, h], co.work[:, h])
    return t, n / d.PAPER_USERS_PER_GHZ


def _p2_result(method: str, seed: int, status: str, obj: float, bound: float | None, wall: float, **info: Any) -> Any:
    return SolveResult(
        problem="djtcra",
        method=method,
        sense="max",
        objective=obj,
        status=status,  # type: ignore[arg-type]
        bound=bound,
        gap=None,
        wall_time_s=wall,
        decision=None,
        seed=seed,
        feasible=True,
        info=info,
    )


def _p2_bnb(n: int, seed: int, limit: float) -> SolveResult:
    t, cap = _p2_instance(n, seed)
    t0 = time.perf_counter()
    r = solve_p2(t, cap, time_limit=limit)
    wall = time.perf_counter() - t0
    assert r.x.sum() <= cap and r.lower <= r.upper
    res = _p2_result("p2-bnb", seed, r.status, r.lower, r.upper, wall, nodes=r.nodes)
    res.gap = relative_gap(r.lower, r.upper, "max")
    return res


def _p2_scip(n: int, seed: int, limit: float) -> SolveResult:
    t, cap = _p2_instance(n, seed)
    m = build_p2_model(t, cap)
    out = solve_model(m, Backend.SCIP, SolveOptions(time_limit=limit))
    x = np.maximum([m.x[i].value or 0.0 for i in range(n)], 0.0)
    x = x * min(1.0, cap / max(x.sum(), 1e-300))
    return _p2_result("p2-scip", seed, out.status, float(f_val(t, x).sum()), out.bound, out.wall_time_s)


def sweeps(cfg: BenchConfig) -> list[Sweep]:
    fr = Sweep(
        cfg,
        "djtcra",
        "frontier",
        sense="max",
        size_axis="U",
        frontier_methods=("exact",),
        yardstick=("pyomo-scip",),
        writer=write_frontier,
    )
    limit = fr.limit(TIME_LIMIT_S)
    for H in FRONTIER_H:
        for U in fr.points(FRONTIER_U):
            for seed in fr.seeds(FRONTIER_SEEDS, "djtcra-frontier", U, H):
                for m in ("exact", "pyomo-scip"):
                    lim = limit if m == "exact" else fr.limit(YARDSTICK_LIMIT_S)

                    def fn(U: int = U, H: int = H, s: int = seed, m: str = m, lim: float = lim) -> SolveResult:
                        opts = SolveOptions(time_limit=lim, seed=s)
                        return solve("djtcra", _frontier_instance(U, H, s), m, opts, seed=s)

                    fr.add(fn, method=m, seed=seed, limit=lim, H=H, U=U)
    # SCIP is the yardstick of the "vs-scip" part: not run again after its first failure (bench/sweep.py)
    p2 = Sweep(cfg, "djtcra", "p2_scaling", sense="max", size_axis="n", yardstick=("p2-scip",), writer=write_p2)
    scip_limit = p2.limit(P2_SCIP_LIMIT_S)
    for part, ns, methods in (("bnb", P2_N, ("p2-bnb",)), ("vs-scip", P2_SCIP_N, ("p2-bnb", "p2-scip"))):
        for n in p2.points(ns):
            seed = p2.seeds(1, "djtcra-p2", n)[0]
            for m in methods:
                lim = limit if m == "p2-bnb" else scip_limit
                call = _p2_bnb if m == "p2-bnb" else _p2_scip
                p2.add(
                    lambda call=call, n=n, s=seed, lim=lim: call(n, s, lim),
                    method=m,
                    seed=seed,
                    limit=lim,
                    part=part,
                    n=n,
                )
    ps = Sweep(cfg, "djtcra", "paper_scale", sense="max", writer=write_paper)
    paper_limit = ps.limit(PAPER_LIMIT_S)
    for seed in ps.seeds(PAPER_INSTANCES, "djtcra-paper"):
        for m in ("exact", *HEURISTICS):
            lim = paper_limit if m == "exact" else limit

            def fnp(s: int = seed, m: str = m, lim: float = lim) -> SolveResult:
                inst = d.PROBLEM.make_instance("paper", s)
                return solve("djtcra", inst, m, SolveOptions(time_limit=lim, seed=s), seed=s)

            ps.add(fnp, method=m, seed=seed, limit=lim)
    return [fr, p2, ps]


def test_cell(cell: Cell, benchmark: Any) -> None:
    res = cell.run(benchmark)
    if res is not None and cell.sweep.name == "paper_scale":
        assert res.feasible, res.message


# ------------------------------------------------------------------------------------------------ frontier
def write_frontier(sw: Sweep) -> None:
    limit = sw.limit(TIME_LIMIT_S)
    rows = []
    for ex in sorted(sw.select("exact"), key=lambda r: (r["H"], r["U"], r["seed"])):
        sc = next((r for r in sw.select("pyomo-scip", H=ex["H"], U=ex["U"]) if r["seed"] == ex["seed"]), None)
        row = dict(ex, scip=sc)
        if sc is not None and sc["status"] == "optimal" and ex["status"] == "optimal":
            # both certified: they must agree
            assert abs(sc["objective"] - ex["objective"]) <= 1e-5 * max(1.0, abs(ex["objective"]))
            row["speedup"] = sc["wall_time_s"] / max(ex["wall_time_s"], 1e-9)
        if ex["feasible"] and sc is not None and sc["bound"] is not None:
            assert ex["objective"] <= sc["bound"] + 1e-5 * max(1.0, abs(ex["objective"]))
        rows.append(row)

    def fmt(v: Any, f: str = ".3g") -> str:
        return "" if v is None else format(v, f)

    table = [
        [
            r["U"],
            r["H"],
            r["seed"],
            r["status"],
            fmt(r["wall_time_s"], ".2f"),
            fmt(r["gap"], ".1e"),
            r["info"].get("nodes"),
            r["scip"]["status"] if r["scip"] else "skipped",
            fmt(r["scip"] and r["scip"]["wall_time_s"], ".2f"),
            fmt(r["scip"] and r["scip"]["gap"], ".1e"),
            fmt(r.get("speedup"), ".0f"),
        ]
        for r in rows
    ]
    head = ["users", "ESs", "seed", "exact", "exact s", "exact gap", "nodes", "SCIP", "SCIP s", "SCIP gap"]
    sw.write(
        f"DJTCRA exact frontier (time to certify, {limit:g} s limit for exact, {sw.limit(YARDSTICK_LIMIT_S):g} s "
        "for SCIP)",
        "Capacities scaled to the paper's users per GHz (D10). SCIP 'skipped' = SCIP already failed to certify a "
        "smaller instance with the same number of ESs. Wall-clock on a shared 2-core machine (noisy).",
        md_table(table, [*head, "SCIP/exact time"]),
        extra={"time_limit_s": limit, "scip_time_limit_s": sw.limit(YARDSTICK_LIMIT_S)},
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for H, mk in zip(FRONTIER_H, ("o", "s"), strict=True):
        sel = [r for r in rows if r["H"] == H]
        ax.plot([r["U"] for r in sel], [r["wall_time_s"] for r in sel], mk + "-", label=f"exact, {H} ESs")
        sc = [r["scip"] for r in sel if r["scip"] and r["scip"]["status"] == "optimal"]
        ax.plot([r["U"] for r in sc], [r["wall_time_s"] for r in sc], mk + "--", label=f"Pyomo+SCIP, {H} ESs")
        to = [r["scip"] for r in sel if r["scip"] and r["scip"]["status"] != "optimal"]
        ax.plot(
            [r["U"] for r in to],
            [r["wall_time_s"] for r in to],
            "x",
            color="red",
            ms=9,
            label=f"SCIP not certified at the limit, {H} ESs",
        )
    ax.axhline(limit, color="gray", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("users")
    ax.set_ylabel(f"time to certify (s), {limit:g} s limit")
    ax.set_title("DJTCRA: structured exact vs Pyomo+SCIP")
    ax.legend(fontsize=8)
    sw.save_png(fig)


# ------------------------------------------------------------------------------------------------ P2 alone
def write_p2(sw: Sweep) -> None:
    a = sw.select("p2-bnb", part="bnb")
    b = []
    for r in sw.select("p2-bnb", part="vs-scip"):
        sc = next((x for x in sw.select("p2-scip", part="vs-scip", n=r["n"])), None)
        if sc is None:  # SCIP already failed at a smaller n (the yardstick rule)
            continue
        assert sc["objective"] <= r["bound"] + 1e-9  # SCIP's incumbent respects our bound
        assert sc["bound"] is None or r["objective"] <= sc["bound"] + 1e-5 * max(1.0, abs(sc["bound"]))
        b.append((r, sc))
    t1 = md_table(
        [
            [
                r["n"],
                r["status"],
                f"{r['wall_time_s']:.3f}",
                f"{r['gap']:.1e}",
                r["info"]["nodes"],
                f"{r['objective']:.6f}",
            ]
            for r in a
        ],
        ["users", "status", "time s", "gap", "nodes", "QoE"],
    )
    t2 = md_table(
        [
            [
                r["n"],
                f"{r['wall_time_s']:.3f}",
                f"{r['objective']:.6f}",
                sc["status"],
                f"{sc['wall_time_s']:.2f}",
                f"{sc['objective']:.6f}",
                "" if sc["bound"] is None else f"{sc['bound']:.6f}",
            ]
            for r, sc in b
        ],
        ["users", "B&B s", "B&B QoE (certified)", "SCIP", "SCIP s", "SCIP QoE", "SCIP bound"],
    )
    scip_limit = sw.limit(P2_SCIP_LIMIT_S)
    sw.write(
        "DJTCRA P2 alone (one ES, sum of sigmoids, one budget)",
        "One server at the paper's load (~6.1 users per 10 GHz). Gap = `relative_gap` (bound - QoE) / |bound|. "
        "Wall-clock on a shared machine (noisy).",
        f"## Sigmoidal B&B\n\n{t1}\n\n## Against Pyomo+SCIP ({scip_limit:g} s limit)\n\n{t2}",
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["n"] for r in a], [r["wall_time_s"] for r in a], "o-", label="sigmoidal B&B (certified)")
    ok = [sc for _, sc in b if sc["status"] == "optimal"]
    bad = [sc for _, sc in b if sc["status"] != "optimal"]
    ax.plot([r["n"] for r in ok], [r["wall_time_s"] for r in ok], "s--", label="SCIP (certified)")
    ax.plot(
        [r["n"] for r in bad],
        [r["wall_time_s"] for r in bad],
        "x",
        color="red",
        ms=9,
        label=f"SCIP not certified at the {scip_limit:g} s limit",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users on the server")
    ax.set_ylabel("time (s)")
    ax.set_title("DJTCRA P2 alone")
    ax.legend(fontsize=8, loc="center right")
    sw.save_png(fig)


# ------------------------------------------------------------------------------------------------ paper scale
def write_paper(sw: Sweep) -> None:
    table = []
    for name in ["exact", *HEURISTICS]:
        rs = sw.select(name)
        for r in rs:
            ex = next(x for x in sw.select("exact") if x["seed"] == r["seed"])
            r["gap_to_bound"] = r["gap"] if name == "exact" else sw.gap(r["objective"], ex["bound"])
        table.append(
            [
                name,
                f"{np.mean([r['objective'] for r in rs]):.3f}",
                f"<= {100 * np.mean([r['gap_to_bound'] for r in rs]):.2f} %",
                f"{np.nanmean([r['wall_time_s'] for r in rs]):.2f}",
            ]
        )
    limit = sw.limit(PAPER_LIMIT_S)
    n = len(sw.select("exact"))
    sw.write(
        "DJTCRA at the paper's scale (100 users, 7 ESs)",
        f"Gap (`relative_gap`, (bound - QoE) / |bound|) to the best proven bound of `exact` after {limit:g} s (not "
        f"certified optimal at this size, so every gap is an upper bound). Mean over {n} instances.",
        md_table(table, ["method", "system QoE", "gap to bound", "time s"]),
        extra={"time_limit_exact_s": limit},
    )
