"""DTAC benchmark sweeps (run with ``pytest --benchmark bench/test_dtac_scaling.py``).

* ``scaling``: time of the certified structured ``exact`` method (and of Pyomo+SCIP on the smaller sizes)
  against the number of UEs, 2 edge servers, L = 2 (the ``small`` preset's structure), 60 s per solve;
* ``gaps_small``: every method on seeded ``small`` instances, gap to the certified optimum;
* ``heuristics_paper``: the heuristics on the ``paper`` preset and the Figs. 5-7 scenarios, three variants.

Outputs: ``results/dtac/<name>.md`` / ``.json`` / ``.png``. Timings are wall-clock on a shared 2-core machine
and are noisy. Set ``BIG = True`` for a larger sweep (N up to 12, more seeds).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from tabulate import tabulate

from mecopt.core import SolveOptions, atomic_write_bytes, atomic_write_text, make_rng, spawn_seeds, write_json
from mecopt.problems import dtac as D
from mecopt.registry import get_problem
from solvers import solve

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BIG = False
OUT = Path(__file__).resolve().parents[1] / "results" / "dtac"
SPEC = get_problem("dtac")
TIME_LIMIT = 60.0
SCALING_N = (4, 6, 8, 10, 12) if BIG else (4, 6, 8, 10)
SCALING_SEEDS = 5 if BIG else 2
SCIP_SEEDS = {4: 2, 6: 1}  # N -> seeds given to Pyomo+SCIP (it does not certify N = 6 within 60 s)
RECEIVED_SEEDS = 10 if BIG else 3
RECEIVED_LIMIT = 60.0 if BIG else 20.0
HEURISTICS = ("greedy", "all-edge", "all-cloud", "all-local", "random")


def _png(fig: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _md(
    path: Path, title: str, rows: list[dict[str, Any]], notes: str = "", details: list[dict[str, Any]] | None = None
) -> None:
    text = f"# {title}\n\n{notes}\n\n" + tabulate(rows, headers="keys", tablefmt="github", floatfmt=".6g") + "\n"
    if details:
        text += "\n## Per instance\n\n" + tabulate(details, headers="keys", tablefmt="github", floatfmt=".6g") + "\n"
    atomic_write_text(path, text)


def _scaling_instance(n: int, seed: int) -> D.Instance:
    cfg = replace(D.PRESETS["small"], K=2, ue_per_server=(n // 2,))
    return D.generate(cfg, make_rng(seed, "dtac", "scaling", n))


def test_dtac_scaling(benchmark: Any) -> None:
    rows: list[dict[str, Any]] = []

    def sweep() -> None:
        for n in SCALING_N:
            for s in range(SCALING_SEEDS):
                inst = _scaling_instance(n, s)
                methods = ["exact"] + (["pyomo-scip"] if s < SCIP_SEEDS.get(n, 0) else [])
                for meth in methods:
                    r = solve("dtac", inst, meth, SolveOptions(time_limit=TIME_LIMIT), seed=s)
                    rows.append(
                        {
                            "N": n,
                            "seed": s,
                            "method": meth,
                            "status": r.status,
                            "objective": r.objective,
                            "bound": r.bound,
                            "gap": r.gap,
                            "time_s": round(r.wall_time_s, 3),
                            "x_candidates_processed": r.info.get("processed"),
                        }
                    )

    benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    write_scaling(rows)


def write_scaling(rows: list[dict[str, Any]]) -> None:
    """Tables and plot of the scaling sweep (also re-renders from results/dtac/scaling.json)."""
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "scaling.json", {"time_limit_s": TIME_LIMIT, "rows": rows})
    summary = []
    for meth in ("exact", "pyomo-scip"):
        for n in SCALING_N:
            sel = [r for r in rows if r["N"] == n and r["method"] == meth]
            if not sel:
                continue
            summary.append(
                {
                    "method": meth,
                    "N": n,
                    "instances": len(sel),
                    "certified": sum(r["status"] == "optimal" for r in sel),
                    "mean_time_s": float(np.mean([r["time_s"] for r in sel])),
                    "max_time_s": float(np.max([r["time_s"] for r in sel])),
                    "max_gap": max((r["gap"] for r in sel if r["gap"] is not None), default=None),
                }
            )
    notes = (
        f"2 edge servers, L = 2, N/2 UEs each (``small`` structure), literal variant; "
        f"{TIME_LIMIT:.0f} s limit "
        "per solve. Wall-clock on a shared 2-core machine (noisy)."
    )
    _md(OUT / "scaling.md", "DTAC: exact solve time vs number of UEs", summary, notes, details=rows)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for meth, mk in (("exact", "o-"), ("pyomo-scip", "s--")):
        pts = [(r["N"], r["mean_time_s"]) for r in summary if r["method"] == meth]
        if pts:
            ax.semilogy(*zip(*pts, strict=True), mk, label=meth)
    ax.axhline(TIME_LIMIT, color="grey", lw=0.8, ls=":", label="time limit")
    ax.set_xlabel("number of UEs N")
    ax.set_ylabel("mean wall time [s]")
    ax.set_title("DTAC: certified solve time")
    ax.legend()
    _png(fig, OUT / "scaling.png")
    for r in rows:
        if r["method"] == "exact" and r["N"] <= 8:
            assert r["status"] == "optimal"


def test_dtac_gaps_small(benchmark: Any) -> None:
    seeds = spawn_seeds(0, 10, "dtac", "gaps")
    rows: list[dict[str, Any]] = []

    def sweep() -> None:
        for variant in ("literal", "consistent", "received"):
            # received interference: the power branch and bound rarely closes; 3 instances, 20 s each
            vseeds = seeds if variant != "received" else seeds[:RECEIVED_SEEDS]
            limit = TIME_LIMIT if variant != "received" else RECEIVED_LIMIT
            for s in vseeds:
                inst = SPEC.make_instance("small", s, variant)
                ex = solve("dtac", inst, "exact", SolveOptions(time_limit=limit), seed=s)
                rows.append(
                    {
                        "variant": variant,
                        "seed": s,
                        "method": "exact",
                        "status": ex.status,
                        "objective": ex.objective,
                        "gap_to_opt": ex.gap,
                        "time_s": ex.wall_time_s,
                    }
                )
                for h in HEURISTICS:
                    r = solve("dtac", inst, h, SolveOptions(seed=s), seed=s)
                    rows.append(
                        {
                            "variant": variant,
                            "seed": s,
                            "method": h,
                            "status": r.status,
                            "objective": r.objective,
                            "gap_to_opt": (r.objective - ex.bound) / r.objective,
                            "time_s": r.wall_time_s,
                        }
                    )

    benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    write_json(OUT / "gaps_small.json", rows)
    summary = []
    for variant in ("literal", "consistent", "received"):
        for meth in ("exact",) + HEURISTICS:
            sel = [r for r in rows if r["variant"] == variant and r["method"] == meth]
            g = np.array([r["gap_to_opt"] for r in sel])
            summary.append(
                {
                    "variant": variant,
                    "method": meth,
                    "instances": len(sel),
                    "certified": sum(r["status"] == "optimal" for r in sel),
                    "mean_objective": float(np.mean([r["objective"] for r in sel])),
                    "median_gap": float(np.median(g)),
                    "max_gap": float(np.max(g)),
                    "mean_time_s": float(np.mean([r["time_s"] for r in sel])),
                }
            )
    _md(
        OUT / "gaps_small.md",
        "DTAC: methods on `small` (10 seeded instances per variant; 3 for `received`)",
        summary,
        "gap_to_opt = (objective - certified lower bound) / objective; for `exact` it is its own "
        "certified gap. Objective = omega_1 T_t + omega_2 sum E of one round, eq. (13). Literal "
        "interference (eq. 5, no channel gain) makes any channel sharing catastrophic (objectives ~1e9),"
        " which sinks the round-robin baselines whenever a cell has more offloaders than channels. With "
        "`received` interference the power branch and bound of `exact` does not close within 20 s "
        "(status time_limit): there gap_to_opt is measured against a valid lower bound, so it over-"
        "estimates the true gap.",
    )
    for r in rows:
        if r["method"] == "exact" and r["variant"] != "received":
            assert r["status"] == "optimal"


def test_dtac_heuristics_paper(benchmark: Any) -> None:
    rows: list[dict[str, Any]] = []
    seeds = spawn_seeds(0, 5, "dtac", "paper")

    def sweep() -> None:
        for size in ("paper", "fig5", "fig6", "fig7"):
            for variant in ("literal", "consistent", "received"):
                for s in seeds:
                    inst = SPEC.make_instance(size, s, variant)
                    for h in HEURISTICS:
                        r = solve("dtac", inst, h, SolveOptions(seed=s), seed=s)
                        rows.append(
                            {
                                "preset": size,
                                "variant": variant,
                                "N": inst.N,
                                "seed": s,
                                "method": h,
                                "objective": r.objective,
                                "round_time_s": r.metrics["round_time_s"],
                                "energy_J": r.metrics["energy_J"],
                                "time_s": r.wall_time_s,
                            }
                        )

    benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info["n_rows"] = len(rows)
    write_json(OUT / "heuristics_paper.json", rows)
    summary = []
    for size in ("paper", "fig5", "fig6", "fig7"):
        for variant in ("literal", "consistent", "received"):
            for h in HEURISTICS:
                sel = [r for r in rows if r["preset"] == size and r["variant"] == variant and r["method"] == h]
                summary.append(
                    {
                        "preset": size,
                        "variant": variant,
                        "method": h,
                        "mean_N": float(np.mean([r["N"] for r in sel])),
                        "median_objective": float(np.median([r["objective"] for r in sel])),
                        "median_T_s": float(np.median([r["round_time_s"] for r in sel])),
                        "median_energy_J": float(np.median([r["energy_J"] for r in sel])),
                    }
                )
    _md(
        OUT / "heuristics_paper.md",
        "DTAC: heuristics at paper scale (5 seeded rounds per preset)",
        summary,
        "Presets: paper = Table I (6 edge servers, 3-5 UEs each, radii 200/300 m); fig5 = 5 "
        "servers, 4-6 UEs, "
        "200/300 m; fig6 = 7 servers, 4-6 UEs, 300/400 m; fig7 = 7 servers, 4-6 UEs, 600/800 m. No certified "
        "optimum at these sizes (3^N offloading vectors). Medians, since literal interference (eq. "
        "5) produces "
        "objectives of order 1e9 when channels are shared.",
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.15
    presets = ("paper", "fig5", "fig6", "fig7")
    for i, h in enumerate(HEURISTICS):
        vals = [
            next(
                r["median_objective"]
                for r in summary
                if r["preset"] == p and r["variant"] == "consistent" and r["method"] == h
            )
            for p in presets
        ]
        ax.bar(np.arange(len(presets)) + (i - 2) * width, vals, width, label=h)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(presets)), presets)
    ax.set_ylabel("median objective (13), one round")
    ax.set_title("DTAC heuristics, consistent eq. (12)")
    ax.legend(fontsize=7)
    _png(fig, OUT / "heuristics_paper.png")


@pytest.mark.skipif(not BIG, reason="long multi-round sweep; set BIG = True")
def test_dtac_env_rounds(benchmark: Any) -> None:  # pragma: no cover - optional
    from mecopt.envs.dtac import DtacEnv
    from solvers.heuristics.dtac import greedy

    env = DtacEnv("paper", rounds=100)
    env.reset(seed=0)
    total = []

    def run() -> None:
        for _ in range(100):
            d = greedy(env.instance, SolveOptions()).decision
            act = {"x": d.x, "l": d.l - 1, "a": d.a.astype(np.float32), "b": d.b.astype(np.float32)}
            total.append(env.step(act)[1])

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["mean_reward"] = float(np.mean(total))


def test_dtac_parameters(benchmark: Any) -> None:
    """Log every generator parameter of every preset (omega, kappa, F_UE, sigma^2, splits, cache, types)."""
    import dataclasses

    rows: list[dict[str, Any]] = []

    def collect() -> None:
        for name, cfg in D.PRESETS.items():
            inst = SPEC.make_instance(name, 0)
            row: dict[str, Any] = {"preset": name}
            row.update({k: (str(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()})
            row.update(
                {
                    "B_hz": inst.B,
                    "sigma2_W": inst.sigma2,
                    "F_C_hz": inst.F_C,
                    "P_UE_W": inst.P_UE,
                    "path_loss": "128.1+37.6log10(d/km) dB",
                    "N_seed0": inst.N,
                }
            )
            rows.append(row)

    benchmark.pedantic(collect, rounds=1, iterations=1)
    write_json(OUT / "parameters.json", rows)
    keys = list(rows[0])
    table = [{"parameter": k, **{r["preset"]: r[k] for r in rows}} for k in keys if k != "preset"]
    _md(
        OUT / "parameters.md",
        "DTAC: generator parameters of every preset",
        table,
        "See docs/problems/dtac.md (D5-D12): each value comes from Table I or a modelling decision.",
    )
