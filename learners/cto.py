"""CTO-TP's learner suite (Liu et al., Sections III-IV): observations of a slot, the hybrid policy base, the method
table and the protocol settings (split sizes, tuning budget, seeds) shared by ``learners.train`` and ``learners.tune``.

Methods: ``cto-tp`` (the asynchronous hybrid MADQN + MADDPG whose critics read the transformer's predictions Q_Mt,
eq. 9) and ``cto`` (the same without the predictor, Section IV), both in ``learners/cto_ctotp.py``; the workload
predictor itself is ``learners/cto_predictor.py``. Everything is trained and scored under the default (aggregate)
reading of eq. (8c) (decision D4 of docs/problems/cto.md); see docs/learners/cto.md for the decisions L1-L8.

States (from one slot's :class:`~mecopt.problems.cto.Instance`, so a policy decides static instances as well as env
slots):

* local state s_mt of eq. (10), read by the shared DQN and by actor m: [C_mt / capacity, B of the links m -> the
  other servers / 10 GHz, D_mt / 1e10 cycles, F_mt / 1e9 bit, one-hot of m] (the one-hot lets the ONE shared
  Q-network tell the servers apart, L2);
* global state s_t of eq. (9), read by the critics: [C_Mt / capacity, B_Kt / 10 GHz (off-diagonal links), D_Mt /
  1e10, F_Mt / 1e9] and, for CTO-TP, Q_Mt = the predictor's next-slot (D / 1e10, n / 10) of every server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learners.protocol import split_instances
from mecopt.problems.cto import VARIANTS, Instance

KEY = "cto"
PRESET = "small"

# -- protocol settings (issue #11) -------------------------------------------------------------------------------
#: held-out test set: this many seeded `small` slots, every one certified optimal by `exact`
TEST_INSTANCES = 48
#: tuning-validation set Optuna scores a trial on (its mean gap to the certified optimum, literal objective)
TUNE_INSTANCES = 16
#: the same trial budget for both learned methods: TUNE_TRIALS trials x TUNE_STEPS env steps (thin)
TUNE_TRIALS = 4
TUNE_STEPS = 3_000
#: training seed of every tuning trial (the final seeds are FINAL_SEEDS, so tuning never saw them)
TUNE_SEED = 0
FINAL_SEEDS = (1, 2, 3)
#: paper setting (untuned Table I defaults of Args, incl. 5 000 warm-up steps): env steps per run
PAPER_STEPS = 8_000
#: time limit of the exact reference solves (the spatial B&B certifies a `small` slot in ~0.1 s)
EXACT_TIME_LIMIT = 600.0
#: safety stop of one training run (a run that hits it says so: meta.stopped_by_time_budget)
BUDGET_S = 900.0

#: feature scales of the states (L2)
CYCLES_SCALE = 1e10
BITS_SCALE = 1e9
BANDWIDTH_SCALE = 10e9
TASKS_SCALE = 10.0


def local_states(inst: Instance) -> np.ndarray:
    """s_mt of eq. (10) for every server, plus the server's one-hot (L2): shape (M, 2M + 2)."""
    M = inst.M
    others = np.array([[n for n in range(M) if n != m] for m in range(M)], dtype=np.int64).reshape(M, M - 1)
    links = inst.B_rem[np.arange(M)[:, None], others] / BANDWIDTH_SCALE
    return np.concatenate(
        [
            (inst.C_rem / inst.C_cap)[:, None],
            links,
            (inst.D / CYCLES_SCALE)[:, None],
            (inst.F / BITS_SCALE)[:, None],
            np.eye(M),
        ],
        axis=1,
    ).astype(np.float32)


def global_state(inst: Instance, prediction: np.ndarray | None = None) -> np.ndarray:
    """s_t of eq. (9): [C_Mt, B_Kt, D_Mt, F_Mt] (+ Q_Mt when ``prediction`` (M, 2) = next slot's (D, n) is given)."""
    M = inst.M
    off = ~np.eye(M, dtype=bool)
    parts = [inst.C_rem / inst.C_cap, inst.B_rem[off] / BANDWIDTH_SCALE, inst.D / CYCLES_SCALE, inst.F / BITS_SCALE]
    if prediction is not None:
        q = np.asarray(prediction, dtype=float).reshape(M, 2)
        parts += [q[:, 0] / CYCLES_SCALE, q[:, 1] / TASKS_SCALE]
    return np.concatenate(parts).astype(np.float32)


def local_dim(M: int) -> int:
    return 2 * M + 2


def global_dim(M: int, predictor: bool) -> int:
    return M * M + 2 * M + (2 * M if predictor else 0)


@dataclass(frozen=True)
class Recipe:
    """A learned method = a method module plus fixed ``Args`` overrides (CTO = CTO-TP without the predictor)."""

    module: str
    fixed: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, Recipe] = {
    "cto-tp": Recipe("learners.cto_ctotp", {"use_predictor": True}),
    "cto": Recipe("learners.cto_ctotp", {"use_predictor": False}),
}
#: the paper's methods (tuned and paper setting)
PAPER_METHODS = ("cto-tp", "cto")
#: named variant L9 (docs/learners/cto.md; a departure from the paper): bounded reward, share floor, actor
#: pre-activation penalty. Trained in the paper setting (Table I defaults, PAPER_STEPS env steps: the budget of the
#: eq. (15) paper-setting runs it is compared with) and tuned (its own study at the same TUNE_TRIALS x TUNE_STEPS
#: budget and search space; final runs PAPER_STEPS env steps, TUNED_STEPS, the budget of its paper-setting runs).
L9: dict[str, Any] = {"reward": "bounded", "share_floor": 0.05, "actor_preact_reg": 1e-3}
METHODS["cto-tp-bounded"] = Recipe("learners.cto_ctotp", {"use_predictor": True, **L9})
METHODS["cto-bounded"] = Recipe("learners.cto_ctotp", {"use_predictor": False, **L9})
#: env steps of a final tuned run where it is not TUNE_STEPS (``learners.train.tuned_steps``): every tuned final run
#: gets the budget of the paper-setting runs, so that tuned vs paper setting and eq. (15) vs L9 differ only in the
#: parameters (fifth session; the tuned eq. (15) runs had 3 000 steps before)
TUNED_STEPS: dict[str, int] = {m: PAPER_STEPS for m in ("cto-tp", "cto", "cto-tp-bounded", "cto-bounded")}
#: ablation L9-floor (diagnosis): L9's share floor and pre-activation penalty with the paper's eq. (15) reward
L9_FLOOR: dict[str, Any] = {k: v for k, v in L9.items() if k != "reward"}
METHODS["cto-tp-floor"] = Recipe("learners.cto_ctotp", {"use_predictor": True, **L9_FLOOR})
METHODS["cto-floor"] = Recipe("learners.cto_ctotp", {"use_predictor": False, **L9_FLOOR})
#: ablation L9-reward (diagnosis): L9's bounded reward alone (eq. 12's [0, 1] shares, no penalty)
L9_REWARD: dict[str, Any] = {"reward": L9["reward"]}
METHODS["cto-tp-reward"] = Recipe("learners.cto_ctotp", {"use_predictor": True, **L9_REWARD})
METHODS["cto-reward"] = Recipe("learners.cto_ctotp", {"use_predictor": False, **L9_REWARD})


def instances(split: str, n: int, preset: str = PRESET, variant: str = "literal") -> list[Instance]:
    """The ``tune`` or ``test`` split (protocol streams) under ``variant`` (``literal``: the default readings, raw
    eq. (8a) units; ``normalized``: D1's normalized units). The variants share the slots (the same stream)."""
    over = dict(VARIANTS[variant])
    return split_instances(KEY, split, n, preset, transform=(lambda i: i.replace(**over)) if over else None)
