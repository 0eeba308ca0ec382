"""DTOMALB scaling sweep: N = 5..100 users, M = 5 servers (Table 2 otherwise).

For every N: the exact method's status, time and final gap under a 60 s limit, and each heuristic's gap to the
certified optimum (or, past the frontier, to the best proven bound: then the gap is an upper bound, marked <=).
The generic MILP (HiGHS) is timed up to N = 12. Defaults: 3 instances per N up to 12, 1 above; limits 60 s
(MILP 30 s); the sweep stops after the first N where every exact solve hit the limit; the MILP stops at its first
failure to certify. Scaling by the options: see bench/sweep.py. Writes results/dtomalb/scaling.{md,json,png}.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from bench.sweep import BenchConfig, Cell, Sweep, md_table, pyplot
from mecopt.core import SolveOptions, make_rng
from mecopt.problems.dtomalb import PRESETS, Instance, generate
from solvers import methods_for, solve

SCALING_N = (5, 8, 10, 12, 15, 20, 30, 40, 50, 70, 100)
MILP_MAX_N = 12  # the generic MILP (HiGHS) is timed too up to this N, to show what the structure buys
TIME_LIMIT_S = 60.0
#: limit of the MILP yardstick cells: half of exact's (it fails at N = 12 either way; #20's 15-minute budget)
YARDSTICK_LIMIT_S = 30.0
INSTANCES_BELOW = 3  # instances per N up to N_FEW
N_FEW = 12
INSTANCES_ABOVE = 1
HEURISTICS = [m.name for m in methods_for("dtomalb").values() if m.kind == "heuristic"]


@cache
def _instance(N: int, seed: int) -> Instance:
    return generate(replace(PRESETS["paper"], N=N), make_rng(seed, "dtomalb", "scaling"))


def sweeps(cfg: BenchConfig) -> list[Sweep]:
    sw = Sweep(
        cfg, "dtomalb", "scaling", size_axis="N", frontier_methods=("exact",), yardstick=("milp",), writer=write_scaling
    )
    limit = sw.limit(TIME_LIMIT_S)
    for N in sw.points(SCALING_N):
        k = INSTANCES_BELOW if N <= N_FEW else INSTANCES_ABOVE
        for seed in sw.seeds(k, "dtomalb-scaling", N):
            methods = ["exact", *HEURISTICS] + (["milp"] if N <= MILP_MAX_N else [])
            for m in methods:
                lim = None if m in HEURISTICS else (sw.limit(YARDSTICK_LIMIT_S) if m == "milp" else limit)

                def fn(N: int = N, seed: int = seed, m: str = m, tl: float = lim or limit) -> Any:
                    return solve("dtomalb", _instance(N, seed), m, SolveOptions(time_limit=tl, seed=seed), seed=seed)

                sw.add(fn, method=m, seed=seed, limit=lim, N=N)
    return [sw]


def test_cell(cell: Cell, benchmark: Any) -> None:
    res = cell.run(benchmark)
    if res is not None and cell.method == "exact":
        assert res.status in ("optimal", "time_limit"), res.message


def write_scaling(sw: Sweep) -> None:
    limit = sw.limit(TIME_LIMIT_S)
    Ns = sorted({r["N"] for r in sw.rows})
    table = []
    heur_gaps: dict[tuple[str, int], list[float]] = {}
    for N in Ns:
        ex = sw.select("exact", N=N)
        cert = sum(r["status"] == "optimal" for r in ex)
        exact_gaps = [r["gap"] for r in ex if r["gap"] is not None]
        milp = sw.select("milp", N=N)
        milp_txt = (
            f"{sum(m['status'] == 'optimal' for m in milp)}/{len(milp)}, "
            f"max {max(m['wall_time_s'] for m in milp):.2f} s"
            if milp
            else "not run"
        )
        line = [
            N,
            len(ex),
            f"{cert}/{len(ex)}",
            f"{max(r['wall_time_s'] for r in ex):.3f}",
            f"{100 * max(exact_gaps):.3f}" if exact_gaps else "-",
            milp_txt,
        ]
        for h in HEURISTICS:
            gs = []
            for r in sw.select(h, N=N):
                e = next(x for x in ex if x["seed"] == r["seed"])
                ref = e["objective"] if e["status"] == "optimal" else e["bound"]
                g = sw.gap(r["objective"], ref)
                # gaps against a bound that proves little (exact gap >= 50 %) say nothing: leave them out
                if g is not None and (e["gap"] is None or e["gap"] < 0.5):
                    gs.append(g)
            heur_gaps[(h, N)] = gs
            mark = "" if cert == len(ex) else "<= "
            line.append(f"{mark}{100 * sum(gs) / len(gs):.2f}" if gs else "no useful bound")
        table.append(line)
    frontier = [N for N in Ns if any(r["status"] != "optimal" for r in sw.select("exact", N=N))]
    note = (
        f"Exact stops certifying within {limit:g} s from N = {frontier[0]} users on (status time_limit, "
        "final gap shown); beyond it heuristic gaps are measured against the best proven lower bound and are "
        "upper bounds on the true gap (marked <=)."
        if frontier
        else f"Exact certified every instance within {limit:g} s."
    )
    headers = ["N", "instances", "exact certified", "exact max time s", "exact max gap %", "milp certified / s"] + [
        f"{h} mean gap %" for h in HEURISTICS
    ]
    sw.write(
        "dtomalb: scaling with the number of users (M = 5)",
        "Generated by `pytest --benchmark` (bench/test_dtomalb_scaling.py). Timings were taken on a shared 2-core "
        "machine. `exact` is the count-state DP (docs/problems/dtomalb.md); `milp` is the linearized MILP on HiGHS "
        f"({sw.limit(YARDSTICK_LIMIT_S):g} s limit, stopping at its first failure), timed up to N = {MILP_MAX_N} to "
        "show what the structure buys. Gap = "
        "`mecopt.core.relative_gap` (denominator = the optimum or bound).\n\n" + note,
        md_table(table, headers),
        extra={"time_limit_s": limit, "milp_time_limit_s": sw.limit(YARDSTICK_LIMIT_S)},
    )
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for status, marker in (("optimal", "o"), ("time_limit", "x")):
        pts = [(r["N"], r["wall_time_s"]) for r in sw.select("exact") if r["status"] == status]
        if pts:
            a1.scatter(*zip(*pts, strict=True), marker=marker, label=f"exact ({status})")
    pts = [(r["N"], r["wall_time_s"]) for r in sw.select("milp")]
    if pts:
        a1.scatter(*zip(*pts, strict=True), marker="s", facecolors="none", edgecolors="C3", label="milp (HiGHS)")
    a1.axhline(limit, color="grey", ls="--", lw=0.8)
    a1.set(xlabel="users N", ylabel="exact wall time [s]", yscale="log", title="exact solve time (M = 5)")
    a1.legend()
    for h in HEURISTICS:
        ys = [100 * sum(g) / len(g) if (g := heur_gaps[(h, N)]) else float("nan") for N in Ns]
        a2.plot(Ns, ys, marker=".", label=h)
    a2.set(xlabel="users N", ylabel="mean gap to optimum / bound [%]", yscale="log", title="heuristic gaps")
    a2.legend(fontsize=7)
    fig.tight_layout()
    sw.save_png(fig)
