"""DTOMALB heuristics: the simple policies the paper's setting suggests, each returning a feasible Decision.

* ``all-local`` -- every task runs on its device (eq. 6).
* ``all-server-1`` -- every task goes to the eNB's own server (nearest; no forwarding, eq. 10 first case).
* ``fastest`` -- every task goes to the server with the largest f_m.
* ``random`` -- uniform over {local, 1..M} (seeded).
* ``selfish`` -- greedy least-load: users in FCFS arrival order each pick the target minimising their *own* delay
  given the users already placed (the "selfish user" of Section 3).
* ``lb-greedy`` -- load-balanced greedy: users in decreasing C_n each pick the target minimising the *system*
  objective of the users placed so far (their own delay plus the wait they add to others, plus w2*var(LD) under
  the 'delay+lb' objective).
"""

from __future__ import annotations

import numpy as np

from mecopt.core import MethodOutput, SolveOptions, make_rng
from mecopt.problems.dtomalb import Decision, Instance, delays
from mecopt.spec import MethodSpec


def all_local(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(Decision(a=np.zeros(inst.N, dtype=np.int64)))


def all_server_1(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(Decision(a=np.ones(inst.N, dtype=np.int64)))


def fastest(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(Decision(a=np.full(inst.N, int(np.argmax(inst.f)) + 1, dtype=np.int64)))


def random_policy(inst: Instance, opts: SolveOptions) -> MethodOutput:
    rng = make_rng(opts.seed, "dtomalb", "random")
    return MethodOutput(Decision(a=rng.integers(0, inst.M + 1, size=inst.N)))


def _partial_costs(inst: Instance, placed: np.ndarray, n: int, system: bool) -> np.ndarray:
    """Cost of each target for user n given the users placed so far (``placed``: target or -1).

    Unplaced users are evaluated as local and their delays masked out; local users never interact with offloaded
    ones except through the number sharing W under bandwidth_split='offloaders', where unplaced users are then
    (optimistically) not counted.
    """
    cand = np.repeat(np.where(placed < 0, 0, placed)[None, :], inst.M + 1, axis=0)
    cand[:, n] = np.arange(inst.M + 1)
    d = delays(inst, cand)
    mask = placed >= 0
    mask[n] = True
    if not system:
        return d.t[:, n]
    cost = (d.t * mask).sum(axis=1) / inst.N
    if inst.objective == "delay+lb":
        cost = inst.w1 * cost + inst.w2 * d.var_LD
    return cost


def _greedy(inst: Instance, order: np.ndarray, system: bool) -> Decision:
    placed = np.full(inst.N, -1, dtype=np.int64)
    for n in order:
        placed[n] = int(np.argmin(_partial_costs(inst, placed, int(n), system)))
    return Decision(a=placed)


def selfish(inst: Instance, opts: SolveOptions) -> MethodOutput:
    # arrival order at server 1 (eq. 7 upload times with the literal W/N split)
    from mecopt.problems.dtomalb import upload_rate

    t_up = inst.L / upload_rate(inst, np.array([float(inst.N)]))[0]
    return MethodOutput(_greedy(inst, np.lexsort((np.arange(inst.N), t_up)), system=False))


def lb_greedy(inst: Instance, opts: SolveOptions) -> MethodOutput:
    return MethodOutput(_greedy(inst, np.argsort(-inst.C, kind="stable"), system=True))


METHODS = [
    MethodSpec("all-local", "heuristic", all_local, "every task computed locally, eq. (6)"),
    MethodSpec("all-server-1", "heuristic", all_server_1, "every task to the eNB's server (nearest)"),
    MethodSpec("fastest", "heuristic", fastest, "every task to the server with the largest f_m"),
    MethodSpec("random", "heuristic", random_policy, "uniform random target (seeded)"),
    MethodSpec("selfish", "heuristic", selfish, "greedy least-load: each user minimises its own delay in turn"),
    MethodSpec(
        "lb-greedy",
        "heuristic",
        lb_greedy,
        "load-balanced greedy: each user (largest C first) minimises the system objective so far",
    ),
]
