"""The fair-DRL protocol of issue #11, problem-agnostic: data splits, statistics, latency.

1. **Splits.** Three disjoint seeded streams per problem: ``train`` (the env's episode seeds during training),
   ``tune`` (the tuning-validation instances Optuna scores trials on) and ``test`` (the held-out instances every
   reported gap comes from). Each stream is its own ``SeedSequence`` path ``(ROOT_SEED, "protocol", key, split,
   ...)``, so no stream can reproduce another's draws; ``tests/test_learners.py`` checks the instances too.
2. **Statistics.** :func:`mean_ci`: mean with a 95 % bootstrap confidence interval (``scipy.stats.bootstrap``,
   BCa, seeded) over the pooled seeds x instances values; :func:`separated`: "A beats B" only when intervals do not
   overlap; :func:`gap_table_row` adds the max and the share of instances within 1 % of the optimum.
3. **Latency.** :func:`decision_latency`: torch pinned to one thread, warm-up, median of >= 100 decisions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mecopt.core import InvalidInputError, make_rng, seed_sequence
from mecopt.registry import get_problem

#: Root of every protocol stream (never a training seed: trainings use seeds 0 (tuning) and 1, 2, 3 (final)).
ROOT_SEED = 2026
SPLITS = ("train", "tune", "test")
CONFIDENCE = 0.95
WITHIN_PCT = 1.0


def split_rng(key: str, split: str, *path: str | int) -> np.random.Generator:
    """The numpy Generator of one element of a split stream (``path``: preset, index, ...)."""
    if split not in SPLITS:
        raise InvalidInputError(f"unknown split {split!r}; choose from {SPLITS}")
    return make_rng(ROOT_SEED, "protocol", key, split, *path)


def split_instances(
    key: str,
    split: str,
    n: int,
    preset: str = "paper",
    transform: Callable[[Any], Any] | None = None,
    config: Any = None,
    tag: str | int = "",
) -> list[Any]:
    """``n`` instances of the ``tune`` or ``test`` split of problem ``key`` (generator preset ``preset``).

    ``config``: a generator config replacing the preset's (e.g. another number of users), with ``tag`` naming it
    in the stream's key path so every config has its own stream."""
    if split == "train":
        raise InvalidInputError("the train split is a stream of env episode seeds: use train_episode_seeds")
    spec = get_problem(key)
    if preset not in spec.presets:
        raise InvalidInputError(f"{key}: unknown preset {preset!r}; choose from {sorted(spec.presets)}")
    cfg = spec.presets[preset] if config is None else config
    path: tuple[str | int, ...] = (preset,) if config is None else (preset, "config", tag)
    out = [spec.generate(cfg, split_rng(key, split, *path, k)) for k in range(n)]
    return [transform(i) for i in out] if transform is not None else out


def train_episode_seeds(key: str, seed: int, *tags: str | int) -> Callable[[], int]:
    """The ``train`` stream: a function returning the next env ``reset(seed=...)`` of a training run."""
    rng = np.random.default_rng(seed_sequence(ROOT_SEED, "protocol", key, "train", int(seed), *tags))
    return lambda: int(rng.integers(0, 2**31 - 1))


# ----------------------------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CI:
    mean: float
    lo: float
    hi: float
    n: int

    def fmt(self, nd: int = 2) -> str:
        return f"{self.mean:.{nd}f} [{self.lo:.{nd}f}, {self.hi:.{nd}f}]"


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = 4999, seed: int = 0) -> CI:
    """Mean and its bootstrap confidence interval (BCa, ``scipy.stats.bootstrap``, seeded).

    The values are the pooled per-(seed, instance) gaps of one method: every training seed's policy on every test
    instance. A constant sample has the degenerate interval [mean, mean].
    """
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        raise InvalidInputError("mean_ci: no values")
    m = float(v.mean())
    if v.size < 2 or np.all(v == v[0]):
        return CI(m, m, m, int(v.size))
    res = stats.bootstrap(
        (v,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="BCa",
        rng=np.random.default_rng(seed_sequence(ROOT_SEED, "bootstrap", seed)),
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can fail on near-degenerate data: fall back to percentile
        res = stats.bootstrap(
            (v,),
            np.mean,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
            rng=np.random.default_rng(seed_sequence(ROOT_SEED, "bootstrap", seed)),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return CI(m, lo, hi, int(v.size))


def separated(a: CI, b: CI) -> bool:
    """True when the two confidence intervals do not overlap (the only case a table may say "A beats B")."""
    return a.hi < b.lo or b.hi < a.lo


def gap_table_row(gaps_pct: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Mean gap [%] with its 95 % CI, max gap and % of (seed, instance) pairs within 1 % of the optimum."""
    g = np.asarray([x for x in gaps_pct if x is not None], dtype=float)
    ci = mean_ci(g, seed=seed)
    return {
        "mean gap %": round(ci.mean, 3),
        "95% CI": f"[{ci.lo:.2f}, {ci.hi:.2f}]",
        "max gap %": round(float(g.max()), 2),
        "within 1 % of opt": f"{100.0 * float(np.mean(g <= WITHIN_PCT)):.0f} %",
        "n": int(g.size),
        "_ci": ci,
    }


# ----------------------------------------------------------------------------------------------------------------
# Latency
# ----------------------------------------------------------------------------------------------------------------
def decision_latency(policy: Any, instances: Sequence[Any], n: int = 200, warmup: int = 20) -> dict[str, float]:
    """Median (and p10/p90) wall time of one ``policy.decide`` [ms]: torch pinned to 1 thread, ``warmup`` untimed
    calls first, then ``n`` >= 100 timed calls cycling over ``instances``."""
    if n < 100:
        raise InvalidInputError(f"decision_latency: need >= 100 timed decisions, got {n}")
    if not instances:
        raise InvalidInputError("decision_latency: no instances")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k in range(warmup):
            policy.decide(instances[k % len(instances)])
        t = np.empty(n)
        for k in range(n):
            inst = instances[k % len(instances)]
            t0 = time.perf_counter()
            policy.decide(inst)
            t[k] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    ms = 1e3 * t
    return {
        "median_ms": float(np.median(ms)),
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
    }
