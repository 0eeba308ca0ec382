"""DJTCRA sweeps: the exact frontier (structured vs Pyomo+SCIP), P2 alone, heuristics at the paper's scale.

* frontier: users in FRONTIER_U x ESs {3, 4}, capacities scaled to the paper's load (D10); the structured
``exact``
  and ``pyomo-scip`` each with a 60 s limit. SCIP is run for growing U only until it first fails to certify
  for
  that H (a larger instance would only time out too); such cells are marked "skipped".
* P2 alone: one server (the 160 GHz ES scaled to ~1 user per 6.7 GHz, the paper's load), n = 10..200 users;
  sigmoidal B&B time and gap; SCIP on the same P2 for n <= 30 (P2_SCIP_LIMIT_S each).
* paper scale: 100 users, 7 ESs; every heuristic against the best proven bound of ``exact`` (PAPER_LIMIT_S).

Writes results/djtcra/{frontier,p2_scaling,paper_scale}.{md,json} and frontier.png, p2_scaling.png.
Timings are wall-clock on a shared 2-core machine: noisy.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tabulate import tabulate

from mecopt.core import SolveOptions, atomic_write_bytes, atomic_write_text, make_rng, spawn_seeds, write_json
from mecopt.problems import djtcra as d
from solvers import methods_for, solve
from solvers.exact.djtcra import build_p2_model, f_val, make_terms, solve_p2
from solvers.pyomo_backend import Backend, solve_model

FULL_SWEEP = False  # True: users 4..20 step 2, 3 instances per cell, P2 SCIP up to 30 users with 60 s
FRONTIER_U = tuple(range(4, 21, 2)) if FULL_SWEEP else (4, 8, 12, 16, 20)
FRONTIER_H = (3, 4)
FRONTIER_SEEDS = 3 if FULL_SWEEP else 1
TIME_LIMIT_S = 60.0
P2_N = (10, 20, 50, 100, 200)
P2_SCIP_N = (5, 10, 20, 30)
P2_SCIP_LIMIT_S = 60.0 if FULL_SWEEP else 15.0
PAPER_INSTANCES = 2
PAPER_LIMIT_S = 20.0
ROOT_SEED = 0
OUT = Path(__file__).resolve().parents[1] / "results" / "djtcra"

_frontier: list[dict[str, Any]] = []
_scip_failed: dict[int, int] = {}  # H -> smallest U where SCIP did not certify
_p2: list[dict[str, Any]] = []
_paper: list[dict[str, Any]] = []


def _frontier_cases() -> list[tuple[int, int, int, int]]:
    out = []
    for H in FRONTIER_H:
        for U in FRONTIER_U:
            for i, s in enumerate(spawn_seeds(ROOT_SEED, FRONTIER_SEEDS, "djtcra-frontier", U, H)):
                out.append((U, H, i, s))
    return out


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("U", "H", "i", "seed"), _frontier_cases(), ids=[f"U{U}-H{H}-{i}" for U, H, i, _ in _frontier_cases()]
)
def test_frontier(U: int, H: int, i: int, seed: int, benchmark) -> None:  # type: ignore[no-untyped-def]
    inst = d.generate(d.Config(U=U, H=H, match_paper_load=True), make_rng(seed, "djtcra", "frontier"))
    opts = SolveOptions(time_limit=TIME_LIMIT_S, seed=seed)
    ex = benchmark.pedantic(solve, args=("djtcra", inst, "exact", opts), kwargs={"seed": seed}, rounds=1, iterations=1)
    row: dict[str, Any] = {
        "U": U,
        "H": H,
        "seed": seed,
        "exact_status": ex.status,
        "exact_time_s": ex.wall_time_s,
        "exact_objective": ex.objective,
        "exact_bound": ex.bound,
        "exact_gap": ex.gap,
        "exact_nodes": ex.info.get("nodes"),
    }
    if H in _scip_failed and U > _scip_failed[H]:
        row.update(scip_status="skipped", scip_time_s=None, scip_objective=None, scip_bound=None, scip_gap=None)
    else:
        sc = solve("djtcra", inst, "pyomo-scip", opts, seed=seed)
        row.update(
            scip_status=sc.status,
            scip_time_s=sc.wall_time_s,
            scip_objective=sc.objective,
            scip_bound=sc.bound,
            scip_gap=sc.gap,
        )
        if sc.status != "optimal":
            _scip_failed.setdefault(H, U)
        if sc.status == "optimal" and ex.status == "optimal":
            # both certified: they must agree
            assert abs(sc.objective - ex.objective) <= 1e-5 * max(1.0, abs(ex.objective))
            row["speedup"] = sc.wall_time_s / max(ex.wall_time_s, 1e-9)
    if ex.feasible and row.get("scip_bound") is not None:
        assert ex.objective <= row["scip_bound"] + 1e-5 * max(1.0, abs(ex.objective))
    benchmark.extra_info.update({k: v for k, v in row.items() if not isinstance(v, float) or np.isfinite(v)})
    _frontier.append(row)


def test_write_frontier() -> None:
    if not _frontier:
        pytest.skip("no frontier rows")
    rows = sorted(_frontier, key=lambda r: (r["H"], r["U"], r["seed"]))
    write_json(OUT / "frontier.json", {"time_limit_s": TIME_LIMIT_S, "rows": rows})

    def fmt(v: Any, f: str = ".3g") -> str:
        return "" if v is None else format(v, f)

    table = [
        [
            r["U"],
            r["H"],
            r["seed"],
            r["exact_status"],
            fmt(r["exact_time_s"], ".2f"),
            fmt(r["exact_gap"], ".1e"),
            r["exact_nodes"],
            r["scip_status"],
            fmt(r["scip_time_s"], ".2f"),
            fmt(r["scip_gap"], ".1e"),
            fmt(r.get("speedup"), ".0f"),
        ]
        for r in rows
    ]
    head = [
        "users",
        "ESs",
        "seed",
        "exact",
        "exact s",
        "exact gap",
        "nodes",
        "SCIP",
        "SCIP s",
        "SCIP gap",
        "SCIP/exact time",
    ]
    text = (
        "# DJTCRA exact frontier (time to certify, 60 s limit each)\n\n"
        "Capacities scaled to the paper's users per GHz (D10). SCIP 'skipped' = SCIP already failed to "
        "certify a smaller instance with the same number of ESs. Wall-clock on a shared 2-core machine "
        "(noisy).\n\n" + tabulate(table, head, tablefmt="github") + "\n"
    )
    atomic_write_text(OUT / "frontier.md", text)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for H, mk in zip(FRONTIER_H, ("o", "s"), strict=True):
        sel = [r for r in rows if r["H"] == H]
        ax.plot([r["U"] for r in sel], [r["exact_time_s"] for r in sel], mk + "-", label=f"exact, {H} ESs")
        sc = [r for r in sel if r["scip_status"] == "optimal"]
        ax.plot([r["U"] for r in sc], [r["scip_time_s"] for r in sc], mk + "--", label=f"Pyomo+SCIP, {H} ESs")
        to = [r for r in sel if r["scip_status"] not in ("optimal", "skipped")]
        ax.plot(
            [r["U"] for r in to],
            [r["scip_time_s"] for r in to],
            "x",
            color="red",
            ms=9,
            label=f"SCIP not certified at the limit, {H} ESs",
        )
    ax.axhline(TIME_LIMIT_S, color="gray", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("users")
    ax.set_ylabel("time to certify (s), 60 s limit")
    ax.set_title("DJTCRA: structured exact vs Pyomo+SCIP")
    ax.legend(fontsize=8)
    atomic_write_bytes(OUT / "frontier.png", _png(fig))
    plt.close(fig)


def _p2_instance(n: int, seed: int) -> tuple[Any, float]:
    inst = d.generate(d.Config(U=n, H=7), make_rng(seed, "djtcra", "p2"))
    co = d.coefficients(inst)
    h = 7  # the 160 GHz ES, scaled to the paper's load
    t = make_terms(inst.alpha, inst.beta, inst.Lmax, co.fixed[:, h], co.work[:, h])
    return t, n / d.PAPER_USERS_PER_GHZ


@pytest.mark.parametrize("n", P2_N)
def test_p2_scaling(n: int, benchmark) -> None:  # type: ignore[no-untyped-def]
    seed = spawn_seeds(ROOT_SEED, 1, "djtcra-p2", n)[0]
    t, cap = _p2_instance(n, seed)
    import time

    clock: dict[str, float] = {}

    def run() -> Any:
        t0 = time.perf_counter()
        out = solve_p2(t, cap, time_limit=TIME_LIMIT_S)
        clock["s"] = time.perf_counter() - t0
        return out

    r = benchmark.pedantic(run, rounds=1, iterations=1)
    gap = (r.upper - r.lower) / max(abs(r.lower), 1e-12)
    benchmark.extra_info.update(
        n=n, seed=seed, objective=r.lower, bound=r.upper, gap=gap, status=r.status, nodes=r.nodes
    )
    assert r.x.sum() <= cap and r.lower <= r.upper
    _p2.append(
        {
            "kind": "sigmoidal B&B",
            "n": n,
            "seed": seed,
            "status": r.status,
            "time_s": clock["s"],
            "objective": r.lower,
            "bound": r.upper,
            "gap": gap,
            "nodes": r.nodes,
        }
    )


@pytest.mark.parametrize("n", P2_SCIP_N)
def test_p2_vs_scip(n: int) -> None:
    import time

    seed = spawn_seeds(ROOT_SEED, 1, "djtcra-p2", n)[0]
    t, cap = _p2_instance(n, seed)
    t0 = time.perf_counter()
    r = solve_p2(t, cap, time_limit=TIME_LIMIT_S)
    t_sp = time.perf_counter() - t0
    m = build_p2_model(t, cap)
    out = solve_model(m, Backend.SCIP, SolveOptions(time_limit=P2_SCIP_LIMIT_S))
    x = np.maximum([m.x[i].value or 0.0 for i in range(n)], 0.0)
    x = x * min(1.0, cap / max(x.sum(), 1e-300))
    scip_true = float(f_val(t, x).sum())
    assert scip_true <= r.upper + 1e-9  # SCIP's incumbent respects our bound
    assert out.bound is None or r.lower <= out.bound + 1e-5 * max(1.0, abs(out.bound))
    _p2.append(
        {
            "kind": "vs SCIP",
            "n": n,
            "seed": seed,
            "status": r.status,
            "time_s": t_sp,
            "objective": r.lower,
            "bound": r.upper,
            "gap": (r.upper - r.lower) / max(abs(r.lower), 1e-12),
            "scip_status": out.status,
            "scip_time_s": out.wall_time_s,
            "scip_objective": scip_true,
            "scip_bound": out.bound,
        }
    )


def test_write_p2() -> None:
    if not _p2:
        pytest.skip("no P2 rows")
    write_json(OUT / "p2_scaling.json", {"rows": _p2})
    a = [r for r in _p2 if r["kind"] == "sigmoidal B&B"]
    b = [r for r in _p2 if r["kind"] == "vs SCIP"]
    t1 = tabulate(
        [
            [
                r["n"],
                r["status"],
                f"{r['time_s']:.3f}",
                f"{r['gap']:.1e}",
                r["nodes"],
                f"{r['objective']:.6f}",
            ]
            for r in a
        ],
        ["users", "status", "time s", "gap", "nodes", "QoE"],
        tablefmt="github",
    )
    t2 = tabulate(
        [
            [
                r["n"],
                f"{r['time_s']:.3f}",
                f"{r['objective']:.6f}",
                r["scip_status"],
                f"{r['scip_time_s']:.2f}",
                f"{r['scip_objective']:.6f}",
                "" if r["scip_bound"] is None else f"{r['scip_bound']:.6f}",
            ]
            for r in b
        ],
        ["users", "B&B s", "B&B QoE (certified)", "SCIP", "SCIP s", "SCIP QoE", "SCIP bound"],
        tablefmt="github",
    )
    atomic_write_text(
        OUT / "p2_scaling.md",
        "# DJTCRA P2 alone (one ES, sum of sigmoids, one budget)\n\nOne server at the paper's load "
        "(~6.1 users per 10 GHz). Wall-clock on a shared machine (noisy).\n\n## Sigmoidal B&B\n\n"
        + t1
        + f"\n\n## Against Pyomo+SCIP ({P2_SCIP_LIMIT_S:.0f} s limit)\n\n"
        + t2
        + "\n",
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["n"] for r in a], [r["time_s"] for r in a], "o-", label="sigmoidal B&B (certified)")
    ok = [r for r in b if r["scip_status"] == "optimal"]
    bad = [r for r in b if r["scip_status"] != "optimal"]
    ax.plot([r["n"] for r in ok], [r["scip_time_s"] for r in ok], "s--", label="SCIP (certified)")
    ax.plot(
        [r["n"] for r in bad],
        [r["scip_time_s"] for r in bad],
        "x",
        color="red",
        ms=9,
        label=f"SCIP not certified at the {P2_SCIP_LIMIT_S:.0f} s limit",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users on the server")
    ax.set_ylabel("time (s)")
    ax.set_title("DJTCRA P2 alone")
    ax.legend(fontsize=8, loc="center right")
    atomic_write_bytes(OUT / "p2_scaling.png", _png(fig))
    plt.close(fig)


HEURISTICS = [m.name for m in methods_for("djtcra").values() if m.kind == "heuristic"]


@pytest.mark.parametrize("i", range(PAPER_INSTANCES))
def test_paper_scale(i: int) -> None:
    seed = spawn_seeds(ROOT_SEED, PAPER_INSTANCES, "djtcra-paper")[i]
    inst = d.PROBLEM.make_instance("paper", seed)
    ex = solve("djtcra", inst, "exact", SolveOptions(time_limit=PAPER_LIMIT_S), seed=seed)
    assert ex.bound is not None
    row = {
        "seed": seed,
        "exact_status": ex.status,
        "exact_objective": ex.objective,
        "bound": ex.bound,
        "exact_gap": ex.gap,
        "exact_time_s": ex.wall_time_s,
    }
    for name in HEURISTICS:
        h = solve("djtcra", inst, name, SolveOptions(time_limit=TIME_LIMIT_S, seed=seed), seed=seed)
        assert h.feasible, (name, h.message)
        row[name] = {
            "objective": h.objective,
            "gap_to_bound": (ex.bound - h.objective) / max(abs(h.objective), 1e-12),
            "time_s": h.wall_time_s,
            "n_CU": h.metrics.get("n_CU"),
            "n_SU": h.metrics.get("n_SU"),
        }
    _paper.append(row)


def test_write_paper() -> None:
    if not _paper:
        pytest.skip("no paper-scale rows")
    write_json(OUT / "paper_scale.json", {"time_limit_exact_s": PAPER_LIMIT_S, "rows": _paper})
    table = []
    for name in ["exact", *HEURISTICS]:
        if name == "exact":
            objs = [r["exact_objective"] for r in _paper]
            gaps = [r["exact_gap"] for r in _paper]
            times = [r["exact_time_s"] for r in _paper]
        else:
            objs = [r[name]["objective"] for r in _paper]
            gaps = [r[name]["gap_to_bound"] for r in _paper]
            times = [r[name]["time_s"] for r in _paper]
        table.append([name, f"{np.mean(objs):.3f}", f"<= {100 * np.mean(gaps):.2f} %", f"{np.nanmean(times):.2f}"])
    atomic_write_text(
        OUT / "paper_scale.md",
        "# DJTCRA at the paper's scale (100 users, 7 ESs)\n\n"
        f"Gap to the best proven bound of `exact` after {PAPER_LIMIT_S:.0f} s (not certified optimal at "
        f"this size, so every gap is an upper bound). Mean over {len(_paper)} instances.\n\n"
        + tabulate(table, ["method", "system QoE", "gap to bound", "time s"], tablefmt="github")
        + "\n",
    )
