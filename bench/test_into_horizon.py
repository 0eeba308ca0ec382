"""INTO horizon benchmark: income over T slots with energy buffers coupled by eq. (6).

* ``clairvoyant``: certified optimum with all future tasks, channels and harvests known (an upper bound no causal
  policy can beat), :func:`solvers.exact.into.clairvoyant`;
* ``myopic-exact``: every slot solved to certified optimality with the current buffers;
* the heuristics, rolled out slot by slot.

Defaults: 6 seeded horizons of T = 10 slots, 120 s limit (scaled by the options, see bench/sweep.py). Every
(horizon, method) is one cell. Writes results/into/horizon.{md,json,png}. Timings are wall-clock, noisy.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from bench.sweep import BenchConfig, Cell, Sweep, fmt_status, md_table, mean, pyplot
from mecopt.core import SolveOptions, SolveResult, make_rng, relative_gap
from mecopt.problems import into as P
from solvers.exact import into as E
from solvers.heuristics import into as H

HORIZON_T = 10
HORIZON_SEEDS = 6
HORIZON_SIZE = "small"
TIME_LIMIT = 120.0


@cache
def _slots(seed: int) -> list[P.Instance]:
    return P.generate_horizon(P.PRESETS[HORIZON_SIZE], make_rng(seed, "into", "horizon"), HORIZON_T)


def _result(method: str, seed: int, r: E.HorizonResult) -> SolveResult:
    """A horizon result as a SolveResult (objective = income over the horizon; sense max)."""
    extra = {"n_sets": r.info.get("n_sets")} if r.info.get("n_sets") is not None else {}
    return SolveResult(
        problem="into",
        method=method,
        sense="max",
        objective=r.income,
        status=r.status,  # type: ignore[arg-type]
        bound=r.bound,
        gap=None,
        wall_time_s=r.wall_s,
        decision=None,
        seed=seed,
        feasible=True,
        info={"per_slot": r.per_slot, **extra},
    )


def _run(method: str, seed: int, limit: float) -> SolveResult:
    slots = _slots(seed)
    opts = SolveOptions(time_limit=limit)
    if method == "clairvoyant":
        r = E.clairvoyant(slots, opts)
        assert r.status in ("optimal", "time_limit", "feasible"), r.info
        res = _result(method, seed, r)
        res.gap = relative_gap(r.income, r.bound, "max")
        return res
    if method == "myopic-exact":
        return _result(method, seed, E.myopic(slots, opts))
    m = next(m for m in H.METHODS if m.name == method)
    r = E.rollout(slots, lambda inst, t: m.fn(inst, SolveOptions(seed=seed + t)).decision)
    r.status = "feasible"
    return _result(method, seed, r)


def sweeps(cfg: BenchConfig) -> list[Sweep]:
    sw = Sweep(cfg, "into", "horizon", sense="max", writer=write_horizon)
    limit = sw.limit(TIME_LIMIT)
    for seed in sw.seeds(HORIZON_SEEDS, "into", "horizon"):
        for m in ("clairvoyant", "myopic-exact", *[h.name for h in H.METHODS]):
            lim = limit if m in ("clairvoyant", "myopic-exact") else None
            sw.add(lambda m=m, seed=seed: _run(m, seed, limit), method=m, seed=seed, limit=lim)
    return [sw]


def test_cell(cell: Cell, benchmark: Any) -> None:
    cell.run(benchmark)


def write_horizon(sw: Sweep) -> None:
    methods = ["clairvoyant", "myopic-exact", *[m.name for m in H.METHODS]]
    for r in sw.rows:
        cv = next(x for x in sw.select("clairvoyant") if x["seed"] == r["seed"])
        my = next(x for x in sw.select("myopic-exact") if x["seed"] == r["seed"])
        assert r["objective"] <= cv["bound"] + 1e-9, (r["method"], r["objective"], cv["bound"])
        r["bound"] = cv["bound"]
        r["gap_vs_bound"] = sw.gap(r["objective"], cv["bound"])
        r["gap_vs_myopic"] = sw.gap(r["objective"], my["objective"])
    rows = []
    for m in methods:
        rs = sw.select(m)
        gaps = [100 * r["gap_vs_bound"] for r in rs if r["gap_vs_bound"] is not None]
        gm = [100 * r["gap_vs_myopic"] for r in rs if r["gap_vs_myopic"] is not None]
        rows.append(
            [
                m,
                len(rs),
                mean(r["objective"] for r in rs),
                mean(gaps),
                max(gaps, default=None),
                mean(gm),
                mean(r["wall_time_s"] for r in rs),
                fmt_status(r["status"] for r in rs),
            ]
        )
    sw.write(
        f"INTO: income over T = {HORIZON_T} slots vs the clairvoyant optimum",
        f"`{HORIZON_SIZE}` devices (3 BSs x 2-8 devices), {sw.count(HORIZON_SEEDS)} seeded horizons, each with fixed "
        "devices, per-slot tasks/fading/harvest; buffers start from Q(0) and follow eq. (6). Income = undiscounted "
        "sum of eq. (11) over the slots (gamma = 1).\n\n"
        "`clairvoyant` is certified (MILP over admissible uploader sets of every slot with cumulative energy rows) "
        "and bounds every causal policy; gap % vs bound = (clairvoyant bound - income) / |bound|; gap % vs myopic = "
        "(myopic - income) / |myopic| (`mecopt.core.relative_gap`). Wall-clock on a shared 2-core machine (noisy).",
        md_table(
            rows,
            [
                "method",
                "n",
                "mean income",
                "gap % vs bound (mean)",
                "gap % vs bound (max)",
                "gap % vs myopic",
                "mean s",
                "status",
            ],
        ),
        extra={"T": HORIZON_T, "time_limit_s": sw.limit(TIME_LIMIT)},
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    seeds = sorted({r["seed"] for r in sw.rows})
    for m in methods:
        ys = [next(r["objective"] for r in sw.select(m) if r["seed"] == s) for s in seeds]
        ax.plot(range(len(seeds)), ys, "o-" if m in ("clairvoyant", "myopic-exact") else ".--", label=m)
    ax.set_xlabel("horizon instance")
    ax.set_ylabel(f"income over {HORIZON_T} slots")
    ax.legend(fontsize=7)
    sw.save_png(fig)
