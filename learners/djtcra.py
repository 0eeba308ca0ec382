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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from learners.common import TorchPolicy, TrainingLog, bootstrap_mask
from learners.protocol import split_instances
from mecopt.core import InvalidInputError
from mecopt.envs.djtcra import DJTCRAEnv
from mecopt.problems.djtcra import PRESETS, Decision, Instance

#: per-slot values of the env's ``info`` averaged over each training episode in the CSV log
INFO_KEYS = ("mean_latency_s", "n_SU", "n_DU", "n_GU", "n_CU")

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

# -- larger presets and the paper's sweeps (issue #14 items 2-4): reduced, equal budgets -------------------------
#: `medium` (16 x 4): held-out test slots (each certified by `exact`); training: the `small` tuned parameters,
#: transferred, FINAL_SEEDS x TUNE_STEPS env steps per method
MEDIUM_PRESET = "medium"
MEDIUM_TEST_INSTANCES = 40
#: `paper` (100 x 7): `exact` is not certified there; gaps are to its best proven bound after this many seconds
PAPER_PRESET = "paper"
PAPER_TEST_INSTANCES = 10
PAPER_EXACT_LIMIT = 20.0
#: `paper` training (decision L10): the shared-weight per-user networks, FINAL_SEEDS x this many env steps per
#: method and setting, the first PAPER_SCALE_WARMUP without updates, minibatches of PAPER_SCALE_BATCH slots (each
#: slot holds 100 users' rows); weights stored in float16 (the MAMaxEnt actors are 1.04 M parameters)
PAPER_SCALE_STEPS = 600
PAPER_SCALE_WARMUP = 100
PAPER_SCALE_BATCH = 16
PAPER_SCALE_ARCH = "per-user"
#: Fig. 8 at the paper's scale: |U| points with the paper's 7 ESs, slots per point; the `paper` (|U| = 100) tuned
#: seed-1 policies applied unchanged (L10: any |U|), gaps to exact's best bound after PAPER_EXACT_LIMIT s
FIG8_PAPER_USERS = (70, 90, 110, 130)
FIG8_PAPER_INSTANCES = 4
#: wall-clock safety stop of one `paper` run (a MAMaxEnt run needs ~7 min of one idle core)
PAPER_SCALE_BUDGET_S = 3_600.0
#: Figs. 8-10 (reduced, `small` scale): the points (generator overrides), test slots per point, the learned
#: methods trained per point (paper setting, seed 1, FIG_STEPS env steps each)
FIG_POINTS: dict[str, dict[str, dict[str, Any]]] = {
    "fig8": {f"U{u}": {"U": u, "load_users": 10} for u in (6, 8, 10, 12)},  # paper: 70-130 users, x 10 / 110
    "fig9": {f"beta{b}": {"beta_ms": (float(b), 10.0)} for b in (300, 350, 400)},  # mean of beta_u [ms]
    "fig10": {f"mtv{v}": {"VT_kb": (200.0, float(v))} for v in (500, 800, 1100)},  # max task volume [KB]
}
FIG_INSTANCES = 16
FIG_METHODS = ("idqn", "vdn-l", "mamaxent", "maddpg")
FIG_STEPS = 1_000


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

    @property
    def per_user(self) -> bool:
        """True for the shared-weight per-user networks (L10): they run on any number of users."""
        if self.args.arch not in ("flat", "per-user"):
            raise InvalidInputError(f"{self.name}: arch must be 'flat' or 'per-user', got {self.args.arch!r}")
        return self.args.arch == "per-user"

    def act(self, observation: np.ndarray) -> np.ndarray:
        if not self.per_user:
            return super().act(observation)
        obs = np.asarray(observation, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise InvalidInputError(f"{self.name}: observation has shape {obs.shape}, expected (users, {self.obs_dim})")
        with torch.no_grad():
            s = self.scores(torch.as_tensor(obs)[:, None, :])
        return s[0].argmax(dim=-1).numpy().astype(np.int64)

    def decide(self, instance: Instance) -> Decision:
        if self.per_user and instance.H != self.M:
            raise InvalidInputError(f"{self.name}: policy was trained for H={self.M}; instance has H={instance.H}")
        if not self.per_user and (instance.U, instance.H) != (self.N, self.M):
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


# -- what the learners share (issue #14 item 6) -------------------------------------------------------------------
@dataclass
class DjtcraArgs:
    """Hyperparameters every DJTCRA learner has (each method's ``Args`` extends it)."""

    seed: int = 1
    """root seed: torch init, exploration, replay sampling and the env episode seeds all derive from it"""
    preset: str = "small"
    """generator preset of the training env"""
    n_users: int | None = None
    """override the preset's number of users |U| (Fig. 8); None: the preset's"""
    rcs: str = "fallback"
    """'fallback': actions = ESs, RCS by D13 (the paper's |U| x |H| action); 'action': RCS is an action"""
    total_steps: int = 2_000
    """environment steps (slots) of training"""
    horizon: int = 10
    """slots per episode"""
    gamma: float = 0.1
    """discount gamma (Fig. 6 setting; Fig. 7 varies it)"""
    batch_size: int = 64
    """minibatch size (not given in the paper)"""
    buffer_size: int = 100_000
    """replay memory capacity"""
    learning_starts: int = 500
    """warm-up: env steps (T_c) before the first update"""
    train_frequency: int = 1
    """one (critic) update each this many env steps"""
    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""
    arch: str = "flat"
    """'flat': each agent's network reads the flattened state (Table IV MLPs; size grows with |U|); 'per-user':
    the same layers applied to every user's row with weights shared across users, DeepSets critics; size and
    policy independent of |U| (decision L10, the `paper` preset)"""


@dataclass
class UserDqnArgs(DjtcraArgs):
    """Hyperparameters of the user-agent DQN learners IDQN / VDN-L / VDN-G (the paper gives epsilon only; the rest
    are documented choices)."""

    lr: float = 1e-4
    """Adam learning rate (Table IV's policy learning rate)"""
    target_tau: float = 0.005
    """soft target update rate (1 - mu, mu = 0.995 as Table IV)"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden layers of each Q_u"""
    eps_start: float = 0.15
    """initial epsilon (paper: 0.15, constant)"""
    eps_end: float = 0.15
    """final epsilon"""
    eps_fraction: float = 0.5
    """fraction of ``total_steps`` over which epsilon anneals linearly"""


def user_dqn_search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of IDQN and VDN-L/VDN-G."""
    width = trial.suggest_categorical("width", [32, 64, 128])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.1, 0.5]),
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "target_tau": trial.suggest_float("target_tau", 3e-3, 0.1, log=True),
        "hidden": [width, width],
        "eps_start": trial.suggest_categorical("eps_start", [0.15, 0.5, 1.0]),
        "eps_end": trial.suggest_float("eps_end", 0.0, 0.15),
    }


def train_loop(
    env: DJTCRAEnv,
    args: DjtcraArgs,
    log: TrainingLog,
    next_seed: Callable[[], int],
    observe: Callable[[Instance], np.ndarray],
    act: Callable[[np.ndarray, int], np.ndarray],
    store: Callable[[np.ndarray, np.ndarray, float, dict[str, Any], np.ndarray, float], None],
    update: Callable[[], None],
) -> int:
    """The env loop of every DJTCRA learner (Alg. 2 for MAMaxEnt): ``act(o, step)`` on the observation of the
    current slot, one env step, ``store(o, a, reward, info, o2, done)``, the episode means of the system QoE and
    ``INFO_KEYS`` to the log, a seeded reset at each episode end, ``update()`` every ``train_frequency`` steps
    after ``learning_starts``, the wall-clock stop. Returns the number of env steps run."""
    env.reset(seed=next_seed())
    o = observe(env.instance)
    ep: dict[str, float] = {}
    ep_len = 0
    step = 0
    for step in range(args.total_steps):
        a = act(o, step)
        _, rew, term, trunc, info = log.timed_env_step(lambda a=a: env.step(a))
        o2 = observe(env.instance)
        store(o, a, rew, info, o2, bootstrap_mask(term, trunc))
        for k in INFO_KEYS:
            ep[k] = ep.get(k, 0.0) + float(info[k])
        ep["qoe"] = ep.get("qoe", 0.0) + float(rew)
        ep_len += 1
        o = o2
        if term or trunc:
            q = ep.pop("qoe")
            log.episode(step + 1, q / ep_len, **{k: v / ep_len for k, v in ep.items()})
            ep, ep_len = {}, 0
            env.reset(seed=next_seed())
            o = observe(env.instance)
        if step >= args.learning_starts and step % args.train_frequency == 0:
            log.timed_update(update)
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    return step + 1
