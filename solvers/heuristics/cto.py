"""Heuristics of CTO-TP (Section IV baselines FA and RA, plus local-only and two cooperative splits).

* ``fa`` (Full Allocation): "fully allocating resources without considering specific system states and
  optimisation goals" -- every allocation at its eq. (12) maximum kappa * remaining; the state-agnostic target
  is the next server cyclically (m -> m + 1), the ratio a = 1/2 (D12).
* ``ra`` (Random Allocation): "all the allocation decisions are made randomly within defined constraints" -- a
  target uniform over {none} and the linked cooperative servers, a ~ U[0, 1], allocation shares ~ U(0, 1] of
  kappa * remaining (eq. 12).
* ``local``: no cooperation, d_mt = kappa * C_mt.
* ``even-split``: offload a = 1/2 to the linked cooperative server with the most remaining computing
  resources, full allocation.
* ``balanced``: same target, a chosen so the two branches of eq. (6) finish together, full allocation.

Under capacity='aggregate' (D4) the allocations at an overloaded server are scaled down proportionally so that
they sum to its remaining resources (so every heuristic stays feasible in every variant).
"""

from __future__ import annotations

import numpy as np

from mecopt.core import MethodOutput, SolveOptions, make_rng
from mecopt.problems.cto import Decision, Instance, full_allocation, project
from mecopt.spec import MethodSpec


def _fit(
    inst: Instance, target: np.ndarray, a: np.ndarray, d_loc: np.ndarray, d_rem: np.ndarray, b: np.ndarray
) -> Decision:
    """Zero the action of servers without tasks, drop zero offloads, scale overloaded servers (aggregate):
    :func:`mecopt.problems.cto.project`."""
    return project(inst, Decision(target=target, a=a, d_local=d_loc, d_remote=d_rem, b=b))


def _linked(inst: Instance, m: int) -> list[int]:
    return [n for n in range(inst.M) if n != m and inst.B_rem[m, n] > 0]


def full_allocation_fa(inst: Instance, opts: SolveOptions) -> MethodOutput:
    M = inst.M
    target = np.zeros(M, dtype=np.int64)
    for m in range(M):
        links = _linked(inst, m)
        if links:
            nxt = [n for n in links if n > m] or links  # next server cyclically
            target[m] = nxt[0] + 1
    a = np.full(M, 0.5)
    return MethodOutput(_fit(inst, target, a, *full_allocation(inst, target)), "feasible")


def random_allocation(inst: Instance, opts: SolveOptions) -> MethodOutput:
    rng = make_rng(opts.seed, "cto", "ra")
    M = inst.M
    k = inst.kappa
    target = np.zeros(M, dtype=np.int64)
    for m in range(M):
        choices = [0] + [n + 1 for n in _linked(inst, m)]
        target[m] = choices[int(rng.integers(len(choices)))]
    a = rng.uniform(0.0, 1.0, size=M)
    share = 1.0 - rng.uniform(0.0, 1.0, size=(3, M))  # U(0, 1]: never a zero allocation
    n = np.clip(target - 1, 0, M - 1)
    d_loc = k * share[0] * inst.C_rem
    d_rem = k * share[1] * inst.C_rem[n]
    b = k * share[2] * inst.B_rem[np.arange(M), n]
    return MethodOutput(_fit(inst, target, a, d_loc, d_rem, b), "feasible")


def local_only(inst: Instance, opts: SolveOptions) -> MethodOutput:
    M = inst.M
    target = np.zeros(M, dtype=np.int64)
    return MethodOutput(_fit(inst, target, np.zeros(M), *full_allocation(inst, target)), "feasible")


def _richest_target(inst: Instance) -> np.ndarray:
    target = np.zeros(inst.M, dtype=np.int64)
    for m in range(inst.M):
        links = _linked(inst, m)
        if links:
            target[m] = max(links, key=lambda n: (inst.C_rem[n], -n)) + 1
    return target


def even_split(inst: Instance, opts: SolveOptions) -> MethodOutput:
    target = _richest_target(inst)
    return MethodOutput(_fit(inst, target, np.full(inst.M, 0.5), *full_allocation(inst, target)), "feasible")


def balanced(inst: Instance, opts: SolveOptions) -> MethodOutput:
    target = _richest_target(inst)
    d_loc, d_rem, b = full_allocation(inst, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = inst.D / d_loc
        beta = np.where(
            target > 0,
            inst.F / np.where(b > 0, b * inst.spectral_eff, 1.0) + inst.D / np.where(d_rem > 0, d_rem, 1.0),
            0.0,
        )
        a = np.where(alpha + beta > 0, alpha / (alpha + beta), 0.0)  # (1 - a) alpha = a beta, eq. (6)
    return MethodOutput(_fit(inst, target, a, d_loc, d_rem, b), "feasible")


METHODS: list[MethodSpec] = [
    MethodSpec(
        "fa",
        "heuristic",
        full_allocation_fa,
        "Full Allocation (Section IV): kappa*remaining, a=1/2, next server",
    ),
    MethodSpec(
        "ra",
        "heuristic",
        random_allocation,
        "Random Allocation (Section IV): random target, ratio and shares within eq. (12)",
    ),
    MethodSpec("local", "heuristic", local_only, "no cooperation, full local allocation"),
    MethodSpec("even-split", "heuristic", even_split, "a=1/2 to the cooperative server with most remaining CPU"),
    MethodSpec("balanced", "heuristic", balanced, "equalise both branches of eq. (6), richest cooperative server"),
]
