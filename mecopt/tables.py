"""Result tables shared by the benchmark, ``mecopt sweep`` and the learner reports (kernel layer: rows in, numbers out).

A *row* is :meth:`mecopt.core.SolveResult.to_dict` plus a ``kind`` (exact / heuristic / learned) and the axes of
its group. Within one group (one problem, size and variant) rows are matched by instance ``seed``.

* :func:`reference_values` -- per instance, the certified optimum of the exact method, else its best proven bound
  (then every gap against it is an upper bound on the true gap);
* :func:`bootstrap_ci` -- a seeded 95 % percentile-bootstrap interval of a mean (``scipy.stats.bootstrap``);
* :func:`method_stats` -- per method: mean objective, mean gap (with CI), max gap, % within 1 % of the reference,
  % feasible, % certified, median wall time, n.

Every gap is :func:`mecopt.core.relative_gap` (denominator = the reference).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mecopt.core import Sense, relative_gap

#: A gap at or below this counts as "within 1 % of the optimum".
NEAR_OPTIMAL = 0.01


def reference_values(rows: Iterable[dict[str, Any]], sense: Sense) -> dict[Any, tuple[float, bool]]:
    """Per instance seed: (reference value, certified). The certified optimum of an exact method where proven,
    else the best proven bound of any exact method (gaps against it are upper bounds on the true gap)."""
    ref: dict[Any, tuple[float, bool]] = {}
    for r in rows:
        if r.get("kind") != "exact" or r.get("bound") is None:
            continue
        seed = r["seed"]
        certified = r["status"] == "optimal"
        val = r["objective"] if certified else r["bound"]
        old = ref.get(seed)
        if old is None or (certified and not old[1]):
            ref[seed] = (val, certified)
        elif not old[1] and not certified:
            better = val > old[0] if sense == "min" else val < old[0]
            ref[seed] = (val, False) if better else old
    return ref


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, seed: int = 0, n_resamples: int = 2000
) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (None for fewer than 2 values).

    All-equal values give the degenerate interval (v, v)."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size < 2:
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    from scipy.stats import bootstrap

    res = bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def intervals_separate(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """True when two confidence intervals do not overlap (the only case a table may say "A beats B")."""
    return a is not None and b is not None and (a[1] < b[0] or b[1] < a[0])


def method_stats(rows: Sequence[dict[str, Any]], sense: Sense, *, ci_seed: int = 0) -> dict[str, Any]:
    """Per-method statistics of one group of rows against :func:`reference_values`.

    Returns ``{"methods": {name: stats}, "reference_certified": k, "reference_bound_only": j, "instances": n}``.
    """
    ref = reference_values(rows, sense)
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    stats: dict[str, Any] = {}
    for name, rs in by_method.items():
        feasible = [r for r in rs if r.get("feasible")]
        objs = [r["objective"] for r in feasible]
        gaps = [relative_gap(r["objective"], ref[r["seed"]][0], sense) for r in feasible if r["seed"] in ref]
        gaps = [g for g in gaps if g is not None]
        stats[name] = {
            "kind": rs[0].get("kind", ""),
            "n": len(rs),
            "mean_objective": statistics.fmean(objs) if objs else None,
            "mean_gap": statistics.fmean(gaps) if gaps else None,
            "gap_ci": bootstrap_ci(gaps, seed=ci_seed),
            "max_gap": max(gaps) if gaps else None,
            "near_optimal": (sum(1 for g in gaps if g <= NEAR_OPTIMAL) / len(gaps)) if gaps else None,
            "feasible": len(feasible) / len(rs),
            "certified": sum(1 for r in rs if r["status"] == "optimal") / len(rs),
            "errors": sum(1 for r in rs if r["status"] == "error"),
            "median_time_s": statistics.median(r["wall_time_s"] for r in rs),
        }
    uncertified = sum(1 for v in ref.values() if not v[1])
    return {
        "methods": stats,
        "reference_certified": len(ref) - uncertified,
        "reference_bound_only": uncertified,
        "instances": len({r["seed"] for r in rows}),
    }


def fmt(v: float | None, f: str = ".6g") -> str:
    return "-" if v is None else format(v, f)


def pct(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}"


def pct_ci(ci: tuple[float, float] | None, digits: int = 2) -> str:
    return "-" if ci is None else f"[{100 * ci[0]:.{digits}f}, {100 * ci[1]:.{digits}f}]"


__all__ = [
    "NEAR_OPTIMAL",
    "bootstrap_ci",
    "fmt",
    "intervals_separate",
    "method_stats",
    "pct",
    "pct_ci",
    "reference_values",
]
