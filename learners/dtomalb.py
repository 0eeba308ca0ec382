"""DTOMALB's learner suite: observations of a static slot, the policy base class, the method table and the
protocol settings (split sizes, tuning budget, seeds) shared by ``learners.train`` and ``learners.tune``.

Methods (Sections 4-5 of the paper): ``dtomalb`` (MADDPG with the load-balanced reward, eq. 20), ``dtoma`` (the
same without the var(LD) term, Fig. 6), ``idql-tolb`` (independent DQN per user) and ``dqn-tolb`` (centralized DQN),
all in ``learners/dtomalb_<method>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import Any

import numpy as np

from learners.common import TorchPolicy
from learners.protocol import split_instances
from mecopt.core import InvalidInputError
from mecopt.envs.dtomalb import USER_FEATURES, observe
from mecopt.problems.dtomalb import PRESETS, Decision, Instance

KEY = "dtomalb"
#: the objective every method is scored on: w1 mean delay + w2 var(LD), the negated mean reward of eq. (20)
OBJECTIVE = "delay+lb"
PRESET = "paper"

# -- protocol settings (issue #11) -------------------------------------------------------------------------------
#: held-out test set: this many seeded `paper` slots, every one certified optimal by `exact`
TEST_INSTANCES = 48
#: tuning-validation set Optuna scores a trial on (its mean gap to the certified optimum)
TUNE_INSTANCES = 24
#: the same trial budget for every learned method of the paper: TUNE_TRIALS trials x TUNE_STEPS env steps
TUNE_TRIALS = 6
TUNE_STEPS = 4_000
#: training seed of every tuning trial (the final seeds are FINAL_SEEDS, so tuning never saw them)
TUNE_SEED = 0
FINAL_SEEDS = (1, 2, 3)
#: paper setting (untuned defaults of each Args): the earlier committed runs, 30 000 env steps per method
PAPER_STEPS = 30_000
#: time limit of the exact reference solves (long: the shared machine can slow a 0.1 s solve 100-fold)
EXACT_TIME_LIMIT = 600.0
#: safety stop of one training run (a run that hits it says so: meta.stopped_by_time_budget)
BUDGET_S = 900.0


def agent_observations(inst: Instance) -> np.ndarray:
    """Per-agent observations o_n = [chi(t), own task features] (eq. 21 + D9), shape (N, M + 4)."""
    chi, users = observe(inst)
    return np.concatenate([np.broadcast_to(chi, (inst.N, inst.M)), users], axis=1).astype(np.float32)


def global_state(inst: Instance) -> np.ndarray:
    """Global state x = [chi(t), all users' task features] (the centralized env's observation), (M + 4N,)."""
    chi, users = observe(inst)
    return np.concatenate([chi, users.ravel()]).astype(np.float32)


class DtomalbPolicy(TorchPolicy):
    """Base of the DTOMALB policies: scores over {local, server 1..M} per user, built from the slot's observation."""

    @property
    def obs_dim(self) -> int:
        return self.M + USER_FEATURES * self.N if self.centralized else self.M + USER_FEATURES

    def observation(self, instance: Instance) -> np.ndarray:
        return global_state(instance) if self.centralized else agent_observations(instance)

    def decision(self, instance: Instance, actions: np.ndarray) -> Decision:
        return Decision(a=actions)

    def decide(self, instance: Instance) -> Decision:
        if (instance.N, instance.M) != (self.N, self.M):
            raise InvalidInputError(
                f"{self.name}: policy was trained for N={self.N}, M={self.M}; instance has N={instance.N}, "
                f"M={instance.M}"
            )
        return super().decide(instance)


@dataclass(frozen=True)
class Recipe:
    """A learned method = a method module plus fixed ``Args`` overrides (e.g. DTOMA = MADDPG with w2 = 0)."""

    module: str
    fixed: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, Recipe] = {
    "dtomalb": Recipe("learners.dtomalb_maddpg", {"load_balancing": True}),
    "dtoma": Recipe("learners.dtomalb_maddpg", {"load_balancing": False}),
    "idql-tolb": Recipe("learners.dtomalb_idql_tolb"),
    "dqn-tolb": Recipe("learners.dtomalb_dqn_tolb"),
}


def instances(split: str, n: int, preset: str = PRESET, n_users: int | None = None) -> list[Instance]:
    """The ``tune`` or ``test`` split (protocol streams), scored with the load-balanced objective of eq. (20);
    ``n_users`` replaces the preset's N (Fig. 7), on its own stream."""
    cfg = None if n_users is None else dc_replace(PRESETS[preset], N=int(n_users))
    return split_instances(
        KEY, split, n, preset, transform=lambda i: i.replace(objective=OBJECTIVE), config=cfg, tag=f"N={n_users}"
    )
