"""DJTCRA's learner suite: features of a slot, the policy base class, the method table and the protocol settings
(split sizes, tuning budget, seeds) shared by ``learners.train`` and ``learners.tune`` (issue #14).

Methods (Sections V-VI of the paper), each in ``learners/djtcra_<method>.py``:

* ``mamaxent``: the paper's method, edge servers (ESs) are the agents; MADDPG-style actor-critic with twin critics
  and the maximum-entropy terms of eqs. (31)-(34) (Alg. 1);
* ``maddpg``: the same file with the entropy terms off (Sec. VI-A benchmark 1);
* ``vdn-l`` / ``vdn-g``: users are the agents, value decomposition (Q_tot = sum of per-user Q), local (own row) or
  global (system state) observation (benchmarks 2-3);
* ``idqn``: independent DQN per user (benchmark 4).

Observation (decision L1, docs/learners/djtcra.md). The paper's state rows (eq. 19) are [u_h, V^T, V^R, kappa,
alpha, beta, Upsilon_2d, B_u, N_u]. The paper keeps eta_u^h and the ES capacities fixed over training; our generator
draws them per slot (and the small presets draw their H capacities from the paper's seven, D10), so a policy that
cannot see them cannot do what GA-Aware does (argmin_h eta_u^h). Each user's feature row therefore is
[one-hot(u_h) (H), the 8 other columns of eq. (19) standardised, eta_u^h for every h (H), P^h / mean P (H)]:
``F = 8 + 3H`` features. The learners read it from the env's current instance, like ``learners/dtomalb.py`` does.

RCS (decision D13, issue #14): every method acts on the ES columns only (``rcs='fallback'``: A = H actions per
user, the paper's |U| x |H| action of eqs. 20-22); the RCS is reached by the fallback (an ES user whose latency
exceeds its RCS latency moves there). ``Args.rcs = 'action'`` makes the RCS an action (A = H + 1) instead.

Scoring: ``decide`` maps the actions to servers and allocates CPU by the certified P2 (``allocate_p2``) with the
fallback, so a gap to the optimum measures the task allocation only (training uses the fast P2; issue #14 docs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learners.common import TorchPolicy
from learners.protocol import split_instances
from mecopt.core import InvalidInputError
from mecopt.envs.djtcra import DJTCRAEnv
from mecopt.problems.djtcra import PRESETS, Decision, Instance

KEY = "djtcra"
PRESET = "small"

# -- protocol settings (issue #11) -------------------------------------------------------------------------------
#: held-out test set: this many seeded `small` slots, every one certified optimal by `exact`
TEST_INSTANCES = 48
#: tuning-validation set Optuna scores a trial on (its mean gap to the certified optimum)
TUNE_INSTANCES = 16
#: the same thin trial budget for every learned method: TUNE_TRIALS trials x TUNE_STEPS env steps
TUNE_TRIALS = 2
TUNE_STEPS = 1_500
#: training seed of every tuning trial (the final seeds are FINAL_SEEDS, so tuning never saw them)
TUNE_SEED = 0
FINAL_SEEDS = (1, 2, 3)
#: paper setting (Table IV where given, Args defaults otherwise): env steps per run (thin, see findings)
PAPER_STEPS = 1_500
#: time limit of the exact reference solves (`small`: ~1 s each on an idle core)
EXACT_TIME_LIMIT = 600.0
#: safety stop of one training run (a run that hits it says so: meta.stopped_by_time_budget)
BUDGET_S = 900.0


# -- features (decision L1) --------------------------------------------------------------------------------------
def n_features(H: int) -> int:
    return 8 + 3 * H


def features(inst: Instance) -> np.ndarray:
    """Per-user feature rows (U, 8 + 3H), float32: the system state of eq. (19) (u_h one-hot, the other columns
    standardised by the generator's Table III ranges) plus eta_u^h and the relative ES capacities (L1)."""
    H = inst.H
    onehot = (inst.ca[:, None] == np.arange(H)[None, :]).astype(float)
    cols = np.stack(
        [
            (inst.VT / 8000 - 500.0) / 300.0,  # V^T in KB, U(200, 800)
            (inst.VR / 8000 - 15.0) / 5.0,  # V^R in KB, U(10, 20)
            (inst.kappa - 278.0) / 50.0,  # kappa, U(228, 328)
            (inst.alpha - 15.0) / 4.0,  # alpha per ms x 1000, N(15, 4^2)
            (inst.beta * 1000 - 350.0) / 10.0,  # beta in ms, N(350, 10^2)
            (inst.dist2d - 65.0) / 35.0,  # Upsilon_2d, U(30, 100) m
            (inst.bandwidth / 1e6 - 36.0) / 20.0,  # B_u, U(16, 56) MHz
            (10 * np.log10(inst.noise * 1000) + 100.0) / 20.0,  # N_u, U(-120, -80) dBm
        ],
        axis=1,
    )
    eta = (inst.eta - 4.25) / 3.75  # eta_u^h, U(0.5, 8)
    cap = np.broadcast_to(inst.P / inst.P.mean() - 1.0, (inst.U, H))
    return np.concatenate([onehot, cols, eta, cap], axis=1).astype(np.float32)


def ca_of(feats: np.ndarray, H: int) -> np.ndarray:
    """The connected RAN (0-based) of every user from its feature rows (the one-hot columns)."""
    return np.asarray(feats)[..., :H].argmax(axis=-1)


def global_state(inst: Instance) -> np.ndarray:
    """System state S_t (eq. 19, with L1's columns) flattened: (U F,)."""
    return features(inst).ravel()


def make_env(preset: str, rcs: str, horizon: int, n_users: int | None = None, **cfg: Any) -> DJTCRAEnv:
    """The training env: fast batched P2 (``allocation='fast'``), RCS as action or fallback; ``n_users`` and
    ``cfg`` override generator fields (Figs. 8-10)."""
    from dataclasses import replace

    over = dict(cfg)
    if n_users is not None:
        over["U"] = int(n_users)
    config = replace(PRESETS[preset], **over) if over else PRESETS[preset]
    return DJTCRAEnv(config, horizon=horizon, allocation="fast", rcs=rcs)


def n_actions(H: int, rcs: str) -> int:
    if rcs not in ("fallback", "action"):
        raise InvalidInputError(f"djtcra learners: rcs must be 'fallback' or 'action', got {rcs!r}")
    return H if rcs == "fallback" else H + 1


class DjtcraPolicy(TorchPolicy):
    """Base of the DJTCRA policies: per-user scores over the actions, built from the slot's features.

    In TorchPolicy terms N = |U| (users, the rows of the action) and M = |H| (ESs)."""

    @property
    def n_actions(self) -> int:
        return n_actions(self.M, self.args.rcs)

    def decision(self, instance: Instance, actions: np.ndarray) -> Decision:
        """Servers from the actions; CPU by the certified P2; RCS fallback (D13) with ``rcs='fallback'`` -- the
        heuristics' ``with_rcs_fallback``, which also repairs the RCS rule of the ``rcs-if-better`` variant (D17)
        and equals the env's ``rcs_fallback`` on the literal variant."""
        from solvers.heuristics.djtcra import with_rcs_fallback
        from solvers.kernels.djtcra_p2 import allocate_p2

        a = np.asarray(actions, dtype=np.int64)

        def alloc(y: np.ndarray) -> np.ndarray:
            return allocate_p2(instance, y)[0]

        if self.args.rcs == "fallback":
            y, p, _ = with_rcs_fallback(instance, a + 1, alloc)
            return Decision(y=y, p=p)
        return Decision(y=a, p=alloc(a))

    def decide(self, instance: Instance) -> Decision:
        if (instance.U, instance.H) != (self.N, self.M):
            raise InvalidInputError(
                f"{self.name}: policy was trained for U={self.N}, H={self.M}; instance has U={instance.U}, "
                f"H={instance.H}"
            )
        return super().decide(instance)


@dataclass(frozen=True)
class Recipe:
    """A learned method = a method module plus fixed ``Args`` overrides (e.g. MADDPG = MAMaxEnt without entropy)."""

    module: str
    fixed: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, Recipe] = {
    "mamaxent": Recipe("learners.djtcra_mamaxent", {"entropy": True}),
    "maddpg": Recipe("learners.djtcra_mamaxent", {"entropy": False}),
    "vdn-l": Recipe("learners.djtcra_vdn", {"global_state": False}),
    "vdn-g": Recipe("learners.djtcra_vdn", {"global_state": True}),
    "idqn": Recipe("learners.djtcra_idqn"),
}


def instances(split: str, n: int, preset: str = PRESET, **cfg: Any) -> list[Instance]:
    """The ``tune`` or ``test`` split (protocol streams); ``cfg`` overrides generator fields (own stream)."""
    if not cfg:
        return split_instances(KEY, split, n, preset)
    from dataclasses import replace

    tag = ",".join(f"{k}={v}" for k, v in sorted(cfg.items()))
    return split_instances(KEY, split, n, preset, config=replace(PRESETS[preset], **cfg), tag=tag)
