"""Heuristics for one round of DTAC: the paper's Random baseline (Section IV-A), the three fixed placements
and a
greedy on the lower-bound times of the state, eq. (14)."""

from __future__ import annotations

import numpy as np

from mecopt.core import MethodOutput, SolveOptions, make_rng
from mecopt.problems.dtac import Decision, Instance, lower_bound_times
from mecopt.spec import MethodSpec


def round_robin_channels(inst: Instance, x: np.ndarray) -> np.ndarray:
    """Channels 1, 2, ..., L, 1, ... to each cell's offloading UEs in index order (locals: channel 1)."""
    l = np.ones(inst.N, dtype=np.int64)
    for k in range(inst.K):
        off = np.flatnonzero((inst.server == k) & (x >= 1))
        l[off] = np.arange(off.size) % inst.L + 1
    return l


def _full(inst: Instance, x: np.ndarray) -> Decision:
    return Decision(x=x, l=round_robin_channels(inst, x), a=np.ones(inst.N), b=np.ones(inst.N))


def random_policy(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Section IV-A: x and l uniform, a and b uniform on (0,1] (drawn on [a_min,1], [b_min,1], D3)."""
    rng = make_rng(opts.seed, "dtac", "random")
    N = inst.N
    x = rng.integers(0, 3, size=N)
    l = rng.integers(1, inst.L + 1, size=N)
    a = rng.uniform(inst.a_min, 1.0, size=N)
    b = rng.uniform(inst.b_min, 1.0, size=N)
    return MethodOutput(Decision(x=x, l=l, a=a, b=b), "feasible")


def all_local(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(_full(inst, np.zeros(inst.N, dtype=np.int64)), "feasible")


def all_edge(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(_full(inst, np.ones(inst.N, dtype=np.int64)), "feasible")


def all_cloud(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(_full(inst, np.full(inst.N, 2, dtype=np.int64)), "feasible")


def greedy_times(inst: Instance) -> np.ndarray:
    """(N, 3) lower-bound time T*(x) of each option from the state of eq. (14) (no queuing/interference)."""
    t = lower_bound_times(inst)  # T1*(0), T1*(1), T21*(1), T1*(2), T22*(2)
    cloud = t[:, 3] + t[:, 4]
    if inst.round_time != "literal":
        cloud = cloud + t[:, 2]  # the UE<->edge leg counts unless eq. (12) is read as printed (D1)
    return np.stack([t[:, 0], t[:, 1] + t[:, 2], cloud], axis=1)


def greedy(inst: Instance, opts: SolveOptions) -> MethodOutput:
    """Each UE picks argmin_x T*(x) (ties to the lower x); round-robin channels; a = b = 1."""
    x = np.argmin(greedy_times(inst), axis=1).astype(np.int64)
    return MethodOutput(_full(inst, x), "feasible")


METHODS: list[MethodSpec] = [
    MethodSpec("random", "heuristic", random_policy, "paper Section IV-A: uniform x, l, a, b"),
    MethodSpec("all-local", "heuristic", all_local, "x = 0 for all, b = 1"),
    MethodSpec("all-edge", "heuristic", all_edge, "x = 1 for all, round-robin channels, a = 1"),
    MethodSpec("all-cloud", "heuristic", all_cloud, "x = 2 for all, round-robin channels, a = 1"),
    MethodSpec("greedy", "heuristic", greedy, "argmin of lower-bound times T*(x) of eq. (14), round-robin, a=b=1"),
]
