"""CTO-TP and CTO (Liu et al., Section III-C, Table I, Fig. 2): asynchronous hybrid MADQN + MADDPG.

* **MADQN (eq. 11).** ONE Q-network shared by the M servers reads the local state s_mt (eq. 10, plus the server's
  one-hot) and scores the M discrete cooperation targets j_mt = [u_mt, w_mt]: 0 = no cooperation (u = 0), j = the
  j-th other server (u = 1, w = it). epsilon-greedy exploration, epsilon from 1 (Table I's initial scale) down to
  ``eps_end``; TD target r + gamma max_j Q'(s'_m, j); soft target update eq. (16) with tau_1 = ``tau``.
* **MADDPG (eq. 12).** Per-server actor mu_m(s_mt, j_mt) ("the action j_mt is diverted to the DDPG's actor") with
  sigmoid outputs = the continuous shares; per-server critic Q_m(s_t, a_1..a_M) on the global state s_t of eq. (9)
  (CTO-TP: with the transformer's Q_Mt; CTO: without) and every server's hybrid action (one-hot j, shares; 0 for
  servers without tasks). OU exploration noise eqs. (13)-(14): a = clip(mu + eps O(mu=0, sigma, beta), 0, 1), the
  noise scale eps annealed with the DQN's epsilon (L4). Soft target updates eq. (17) with tau_2 = ``tau``.
* **Shares (L1).** The paper's action has 3 continuous parts (a_mdt, a_mct, a_mkt); the model needs 4 (the offloaded
  part is computed at the target with its own allocation d_nt, eq. 4). Default ``shares=4``: the actor outputs
  (a_mdt, a_mct local, a_mct at the target, a_mkt); ``shares=3`` (the paper's literal action) uses one a_mct for
  both computing allocations.
* **Reward eq. (15)** (the env's): r_t = lambda L*/L_total + rho E*/E_total, L*, E* = mean of the ``reward_n_min``
  smallest of the last ``reward_window`` steps' values; one shared system reward for all agents.
* **Asynchrony.** Only servers with tasks act (others' action is 0 and they store no transition of their own);
  every step goes to the global replay buffer and to the independent buffer of each server that acted; a critic and
  actor update of server m samples its independent buffer, except every ``sync_every``-th update, which samples the
  global buffer (periodic synchronisation). The shared DQN trains on every acting server's transitions.
* Episode end: the slot budget is a time limit, stored as non-terminal (issue #11, item 4).

All M actors (and all M critics) train in parallel as one "ensemble" network with disjoint per-agent weights (the same
as M separate networks with M Adam optimizers). Execution (``decide``) uses the shared DQN and the actors only: their
states (eq. 10) hold no prediction, so the predictor matters only through training (L3).

Run: ``PYTHONPATH=. python -m learners.cto_ctotp [--no-use-predictor] [--total-steps N] [--seed S] --out PATH``.
Tuned settings: ``python -m learners.tune cto --method cto-tp`` (and ``--method cto``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from learners.common import (
    ReplayBuffer,
    RunArgs,
    TorchPolicy,
    TrainingLog,
    bootstrap_mask,
    ensemble_mlp,
    linear_schedule,
    mlp,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.cto import KEY, global_dim, global_state, local_dim, local_states
from learners.protocol import train_episode_seeds
from mecopt.core import InvalidInputError, results_dir
from mecopt.envs.cto import CTOEnv, action_decision, make_env
from mecopt.problems.cto import Decision, Instance, weights


@dataclass
class Args(RunArgs):
    """Hyperparameters of CTO-TP / CTO. Defaults = Table I where it gives a value (the "paper setting");
    ``time_budget_s`` and ``device`` come from :class:`learners.common.RunArgs`."""

    seed: int = 1
    """root seed: torch init, exploration, replay sampling and the env episode seeds all derive from it"""
    preset: str = "small"
    """generator preset of the training env (Section IV: M = 3 servers)"""
    use_predictor: bool = True
    """True: CTO-TP (critics read the transformer's Q_Mt, eq. 9); False: CTO (Section IV)"""
    predictor: str = ""
    """predictor checkpoint (without suffix); empty: results/cto/predictor/default (learners/cto_predictor.py)"""
    shares: int = 4
    """continuous shares per server: 4 (a, local CPU, remote CPU, bandwidth) or 3 (paper's eq. 12; L1)"""
    total_steps: int = 20_000
    """environment steps (active 1 s slots) of training"""
    episode_slots: int = 50
    """active slots per episode"""
    reward_window: int = 50
    """sliding window of eq. (15)'s L*, E* (steps)"""
    reward_n_min: int = 5
    """number of smallest values averaged into L*, E* (eq. 15)"""
    gamma: float = 0.99
    """discount factor (Table I)"""
    tau: float = 0.005
    """soft update coefficient tau_1 = tau_2 of eqs. (16)-(17) (Table I)"""
    lr: float = 5e-4
    """Adam step size of the Q-network, actors and critics (Table I)"""
    batch_size: int = 300
    """minibatch size (Table I)"""
    buffer_size: int = 100_000
    """capacity of each replay buffer (global and independent)"""
    learning_starts: int = 5_000
    """env steps of pure observation before training (Section IV, Fig. 4: 5 000)"""
    train_frequency: int = 2
    """one DQN + critic + actor update of every agent each this many env steps"""
    sync_every: int = 10
    """every this many updates the MADDPG agents sample the global buffer instead of their own (synchronisation)"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden layer widths of the Q-network, actors and critics (not given by the paper)"""
    eps_start: float = 1.0
    """initial epsilon of the DQN and initial OU noise scale epsilon of eqs. (13)-(14) (Table I: 1)"""
    eps_end: float = 0.05
    """final epsilon / noise scale"""
    explore_fraction: float = 0.5
    """fraction of ``total_steps`` over which epsilon anneals linearly"""
    ou_sigma: float = 0.3
    """OU standard deviation sigma (Table I)"""
    ou_beta: float = 1.0
    """OU rate of mean reversion beta (Table I); the long-term mean mu is 0 (Table I)"""
    ou_dt: float = 0.01
    """OU time step of the Euler-Maruyama discretisation (not given by the paper; L4)"""
    reward: str = "eq15"
    """'eq15': the paper's sliding-window reward (the env's); 'bounded': the named variant L9, r_t = -min(J_t,
    ``reward_clip``) with J_t the slot's D1-normalized objective (local-only processing = 1)"""
    reward_clip: float = 5.0
    """upper clip of J_t in the bounded reward (5 x local-only; only with ``reward='bounded'``)"""
    share_floor: float = 0.0
    """the computing and bandwidth shares are mapped to [floor, 1] (0 = eq. 12's [0, 1]; L9 variant: 0.05)"""
    actor_preact_reg: float = 0.0
    """L2 penalty on the actors' pre-activations (0 = the paper; L9 variant: 1e-3, as DTOMALB's actor_logit_reg)"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of CTO-TP / CTO (the same for both; issue #11)."""
    width = trial.suggest_categorical("width", [64, 128, 256])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9, 0.99]),
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "tau": trial.suggest_float("tau", 2e-3, 0.05, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 300]),
        "hidden": [width, width],
        "learning_starts": trial.suggest_categorical("learning_starts", [250, 500, 1000]),
        "eps_end": trial.suggest_float("eps_end", 0.0, 0.2),
        "explore_fraction": trial.suggest_float("explore_fraction", 0.2, 0.8),
        "ou_sigma": trial.suggest_float("ou_sigma", 0.1, 0.6),
    }


def default_predictor_path() -> Path:
    return results_dir() / KEY / "predictor" / "default"


class HybridNet(nn.Module):
    """The acting part of the hybrid: the shared MADQN Q-network and the M DDPG actors (ensemble)."""

    def __init__(self, M: int, hidden: list[int], shares: int):
        super().__init__()
        d = local_dim(M)
        self.dqn = mlp(d, hidden, M)  # Q(s_mt, j) for j in {no cooperation, other server 1..M-1} (eq. 11)
        self.actors = ensemble_mlp(M, d + M, hidden, shares)  # mu_m(s_mt, one-hot j_mt) -> shares (eq. 12)


class HybridPolicy(TorchPolicy):
    """CTO-TP / CTO at execution: per server with tasks, j = argmax of the shared Q-network, shares = actor m."""

    centralized = False

    def __init__(self, args: Args, N: int, M: int, meta: dict[str, Any] | None = None):
        if args.shares not in (3, 4):
            raise InvalidInputError(f"cto hybrid: shares must be 3 or 4, got {args.shares}")
        if args.reward not in REWARDS:
            raise InvalidInputError(f"cto hybrid: reward must be one of {REWARDS}, got {args.reward!r}")
        if not 0.0 <= args.share_floor < 1.0:
            raise InvalidInputError(f"cto hybrid: share_floor must be in [0, 1), got {args.share_floor}")
        super().__init__(args, N, M, meta)

    @property
    def name(self) -> str:
        return method_name(self.args)

    @property
    def obs_dim(self) -> int:
        return local_dim(self.M)

    def build(self) -> nn.Module:
        return HybridNet(self.M, list(self.args.hidden), self.args.shares)

    def observation(self, instance: Instance) -> np.ndarray:
        return local_states(instance)

    def hybrid(self, obs: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy (j, shares) of every server from local states (M, d); inactive servers get (0, 0)."""
        with torch.no_grad():
            o = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            j = self.net.dqn(o).argmax(-1)
            j = torch.where(torch.as_tensor(active), j, torch.zeros_like(j))
            u = torch.sigmoid(self.net.actors(torch.cat([o, F.one_hot(j, self.M).float()], -1)[:, None, :]))[:, 0]
        act = np.asarray(active, dtype=bool)
        return j.numpy() * act, u.numpy() * act[:, None]

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The env action (M, 5) of local states ``observation`` (servers with D = 0 are inactive)."""
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != (self.M, self.obs_dim):
            raise InvalidInputError(
                f"{self.name}: observation has shape {obs.shape}, expected {(self.M, self.obs_dim)}"
            )
        active = obs[:, self.M + 1] > 0  # the D_mt column of local_states
        j, u = self.hybrid(obs, active)
        return env_action(j, u, self.M, self.args.share_floor)

    def decision(self, instance: Instance, actions: np.ndarray) -> Decision:
        return action_decision(instance, actions)

    def decide(self, instance: Instance) -> Decision:
        if instance.M != self.M:
            raise InvalidInputError(f"{self.name}: policy was trained for M={self.M}; instance has M={instance.M}")
        return super().decide(instance)


REWARDS = ("eq15", "bounded")


def method_name(args: Args) -> str:
    """``cto-tp`` / ``cto``; the L9 variant (bounded reward with a share floor or pre-activation penalty) is
    ``<name>-bounded``; its ablations: the bounded reward alone ``<name>-reward``, the floor / penalty with the
    paper's eq. (15) reward ``<name>-floor``."""
    base = "cto-tp" if args.use_predictor else "cto"
    regularised = args.share_floor > 0 or args.actor_preact_reg > 0
    if args.reward == "bounded":
        return base + ("-bounded" if regularised else "-reward")
    return base + ("-floor" if regularised else "")


def env_action(j: np.ndarray, u: np.ndarray, M: int, share_floor: float = 0.0) -> np.ndarray:
    """Hybrid action -> the env's [0, 1]^(M x 5) action: column 0 selects target bin j, columns 1-4 the shares
    (a 3-share action uses its a_mct for both computing allocations, L1). ``share_floor`` maps the computing and
    bandwidth shares (not the offloading ratio a_mdt) from [0, 1] to [floor, 1] (L9 variant; 0 = eq. 12)."""
    j = np.asarray(j, dtype=np.int64)
    u = np.asarray(u, dtype=float)
    shares = u if u.shape[1] == 4 else np.stack([u[:, 0], u[:, 1], u[:, 1], u[:, 2]], axis=1)
    if share_floor > 0.0:
        shares = np.concatenate([shares[:, :1], share_floor + (1.0 - share_floor) * shares[:, 1:]], axis=1)
    return np.concatenate([((j + 0.5) / M)[:, None], shares], axis=1)


def bounded_reward(inst: Instance, L_total: float, E_total: float, clip: float) -> float:
    """L9 variant reward of one slot: -min(J, clip), J = the D1-normalized objective eq. (8a) of the slot (latency
    and energy in units of the slot's local-only processing, so J = 1 for local-only; mecopt.problems.cto.weights).
    Bounded in [-clip, 0] and monotone in eq. (8a), unlike eq. (15)."""
    wL, wE = weights(inst.replace(cost_units="normalized"))
    return -min(wL * L_total + wE * E_total, clip)


class OUNoise:
    """Ornstein-Uhlenbeck process O(mu, sigma, beta) of eqs. (13)-(14), Euler-Maruyama with step dt."""

    def __init__(self, shape: tuple[int, ...], sigma: float, beta: float, dt: float, rng: np.random.Generator):
        self.shape, self.sigma, self.beta, self.dt, self.rng = shape, sigma, beta, dt, rng
        self.x = np.zeros(shape)

    def reset(self) -> None:
        self.x = np.zeros(self.shape)

    def __call__(self) -> np.ndarray:
        self.x = (
            self.x
            + self.beta * (0.0 - self.x) * self.dt
            + self.sigma * np.sqrt(self.dt) * self.rng.normal(size=self.shape)
        )
        return self.x


def episode_predictions(predictor: Any, series: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Q_Mt after each slot t in ``slots`` of ``series`` (slots, M, 2): the predictor applied to the ``window``
    slots up to t (zero before the trace start), shape (len(slots), M, 2), one batch."""
    from learners.cto_predictor import smooth_series

    W = predictor.window
    pad = np.concatenate([np.zeros((W, *series.shape[1:])), series], axis=0)
    if predictor.smooth > 1:
        pad = smooth_series(pad, predictor.smooth)
    idx = np.asarray(slots, dtype=np.int64)[:, None] + 1 + np.arange(W)[None, :]  # pad rows of slots t-W+1..t
    return predictor.predict_windows(pad[idx])


def make_training_env(args: Args) -> CTOEnv:
    return make_env(args.preset, episode_slots=args.episode_slots, window=args.reward_window, n_min=args.reward_n_min)


def train(
    args: Args,
    env_fn: Callable[[], CTOEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> HybridPolicy:
    tag = "cto-tp" if args.use_predictor else "cto"
    rng = seed_everything(args.seed, "cto-hybrid", tag)
    next_seed = train_episode_seeds(KEY, args.seed, tag)
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_training_env(args)
    M = env.M
    S = args.shares
    A = M + S  # one agent's hybrid action in the critic input: one-hot j, shares
    d_o, d_x = local_dim(M), global_dim(M, args.use_predictor)
    predictor = None
    if args.use_predictor:
        from learners.cto_predictor import WorkloadPredictor

        predictor = WorkloadPredictor.load(args.predictor or default_predictor_path())
        if predictor.M != M:
            raise InvalidInputError(f"cto-tp: predictor is for M={predictor.M}, env has M={M}")

    cache: dict[str, np.ndarray] = {}

    def predict_episode(e: CTOEnv) -> None:
        """Q_Mt of every slot of the new episode's trace in one batch (the same numbers as slot-by-slot
        ``predictor.predict(e.workload_history(window))``, checked in the tests)."""
        if predictor is not None:
            slots = e.active_slots
            cache["Q"] = episode_predictions(predictor, e.workload_series, slots)
            cache["row"] = {int(t): k for k, t in enumerate(slots)}

    def state(e: CTOEnv) -> np.ndarray:
        return global_state(e.instance, cache["Q"][cache["row"][e.slot]] if predictor is not None else None)

    policy = HybridPolicy(args, M, M, {"preset": args.preset})
    net = policy.net.to(dev)
    dqn, actor = net.dqn, net.actors
    dqn_t, actor_t = copy.deepcopy(dqn), copy.deepcopy(actor)
    critic = ensemble_mlp(M, d_x + M * A, args.hidden, 1).to(dev)  # Q_m(s_t, a_1..a_M) per server
    critic_t = copy.deepcopy(critic)
    opt_dqn = torch.optim.Adam(dqn.parameters(), lr=args.lr)
    opt_actor = torch.optim.Adam(actor.parameters(), lr=args.lr)
    opt_critic = torch.optim.Adam(critic.parameters(), lr=args.lr)
    joint_fields = {
        "x": ((d_x,), np.float32),
        "o": ((M, d_o), np.float32),
        "j": ((M,), np.int64),
        "u": ((M, S), np.float32),
        "act": ((M,), np.float32),
        "r": ((), np.float32),
        "x2": ((d_x,), np.float32),
        "o2": ((M, d_o), np.float32),
        "act2": ((M,), np.float32),
        "done": ((), np.float32),
    }
    global_rb = ReplayBuffer(args.buffer_size, joint_fields, rng)
    own_rb = [ReplayBuffer(args.buffer_size, joint_fields, rng) for _ in range(M)]  # independent buffers
    dqn_rb = ReplayBuffer(
        args.buffer_size,
        {
            "o": ((d_o,), np.float32),
            "j": ((), np.int64),
            "r": ((), np.float32),
            "o2": ((d_o,), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )
    eye = torch.eye(M, device=dev)
    E = eye.reshape(M, 1, M, 1)  # E[m, :, k, :] = [m == k]: swaps agent m's own shares in the actor update
    n_updates = [0]

    def joint(j: torch.Tensor, u: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """(..., M) j, (..., M, S) u, (..., M) active -> (..., M, A) per-agent hybrid actions, 0 when inactive."""
        return torch.cat([F.one_hot(j, M).float(), u], dim=-1) * act[..., None]

    def target_actions(o2: torch.Tensor, act2: torch.Tensor) -> torch.Tensor:
        """Target networks' hybrid actions of all agents: o2 (..., M, d_o) -> (..., M, A)."""
        lead = o2.shape[:-2]
        j2 = dqn_t(o2).argmax(-1)  # (..., M)
        inp = torch.cat([o2, F.one_hot(j2, M).float()], -1).reshape(-1, M, d_o + M).transpose(0, 1)  # (M, n, .)
        u2 = torch.sigmoid(actor_t(inp)).transpose(0, 1).reshape(*lead, M, S)
        return joint(j2, u2, act2)

    def update() -> None:
        B = args.batch_size
        # -- MADQN: the shared Q-network on every acting server's transitions (eq. 11, soft update eq. 16)
        b = dqn_rb.sample(B, dev)
        with torch.no_grad():
            y = b["r"] + args.gamma * (1.0 - b["done"]) * dqn_t(b["o2"]).max(-1).values
        q = dqn(b["o"]).gather(1, b["j"][:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, y)
        opt_dqn.zero_grad()
        loss.backward()
        opt_dqn.step()
        soft_update(dqn_t, dqn, args.tau)
        # -- MADDPG: agent m samples its independent buffer, every sync_every-th update the global one
        sync = n_updates[0] % args.sync_every == args.sync_every - 1
        parts = [(global_rb if sync or len(own_rb[m]) < B else own_rb[m]).sample(B, dev) for m in range(M)]
        bb = {k: torch.stack([p[k] for p in parts]) for k in parts[0]}  # (M agents, B, ...)
        a_joint = joint(bb["j"], bb["u"], bb["act"])  # (M, B, M, A)
        with torch.no_grad():
            a2 = target_actions(bb["o2"], bb["act2"])  # (M, B, M, A)
            q2 = critic_t(torch.cat([bb["x2"], a2.reshape(M, B, M * A)], -1)).squeeze(-1)
            y = bb["r"] + args.gamma * (1.0 - bb["done"]) * q2  # (M, B)
        q = critic(torch.cat([bb["x"], a_joint.reshape(M, B, M * A)], -1)).squeeze(-1)
        critic_loss = F.mse_loss(q, y)
        opt_critic.zero_grad()
        critic_loss.backward()
        opt_critic.step()
        own_o = (bb["o"] * E[:, :, :, 0:1]).sum(2)  # (M, B, d_o): agent m's own local state in its batch
        own_j = (bb["j"] * eye[:, None, :].long()).sum(2)  # (M, B)
        own_act = (bb["act"] * eye[:, None, :]).sum(2)  # (M, B)
        z_pi = actor(torch.cat([own_o, F.one_hot(own_j, M).float()], -1))  # (M, B, S) pre-activations
        u_pi = torch.sigmoid(z_pi)
        pi_own = torch.cat([F.one_hot(own_j, M).float(), u_pi], -1) * own_act[..., None]  # (M, B, A)
        a_pi = a_joint * (1.0 - E) + pi_own[:, :, None, :] * E
        q_pi = critic(torch.cat([bb["x"], a_pi.reshape(M, B, M * A)], -1)).squeeze(-1)
        actor_loss = -(q_pi * own_act).sum() / own_act.sum().clamp(min=1.0)
        if args.actor_preact_reg > 0.0:  # L9 variant: keeps the sigmoids off their flat tails
            penalty = (z_pi.pow(2).mean(-1) * own_act).sum() / own_act.sum().clamp(min=1.0)
            actor_loss = actor_loss + args.actor_preact_reg * penalty
        opt_actor.zero_grad()
        actor_loss.backward()
        opt_actor.step()
        soft_update(critic_t, critic, args.tau)  # eq. (17)
        soft_update(actor_t, actor, args.tau)
        n_updates[0] += 1

    ou = OUNoise((M, S), args.ou_sigma, args.ou_beta, args.ou_dt, rng)
    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    env.reset(seed=next_seed())
    predict_episode(env)
    ou.reset()
    x, o, active = state(env), local_states(env.instance), env.instance.D > 0
    ep_r, ep_r15, ep_L, ep_E, ep_len = 0.0, 0.0, 0.0, 0.0, 0
    anneal = int(args.explore_fraction * args.total_steps)
    step = 0
    for step in range(args.total_steps):
        eps = linear_schedule(args.eps_start, args.eps_end, anneal, step)
        noise = ou()
        if step < args.learning_starts:  # observation phase (Fig. 4): uniform random hybrid actions
            j = rng.integers(0, M, size=M)
            u = rng.random((M, S))
        else:
            with torch.no_grad():
                ot = torch.as_tensor(o, device=dev)
                j = dqn(ot).argmax(-1).cpu().numpy()
                explore = rng.random(M) < eps  # epsilon-greedy over the cooperation target
                j = np.where(explore, rng.integers(0, M, size=M), j)
                inp = torch.cat([ot, F.one_hot(torch.as_tensor(j, device=dev), M).float()], -1)[:, None, :]
                u = torch.sigmoid(actor(inp))[:, 0].cpu().numpy()
            u = np.clip(u + eps * noise, 0.0, 1.0)  # eqs. (13)-(14)
        j = np.where(active, j, 0)  # only servers with tasks act; the others' action is 0
        u = (u * active[:, None]).astype(np.float32)
        a_env = env_action(j, u, M, args.share_floor)
        inst_t = env.instance
        _, r, term, trunc, info = log.timed_env_step(lambda a_env=a_env: env.step(a_env))
        ep_r15 += r  # the env's eq. (15), logged under both rewards (Fig. 4)
        if args.reward == "bounded":  # L9 variant instead of eq. (15)
            r = bounded_reward(inst_t, info["L_total_s"], info["E_total_J"], args.reward_clip)
        done = term or trunc
        if done:  # the env keeps the last slot's instance: no successor slot is observed at a time limit
            x2, o2, active2 = x, o, active
        else:
            x2, o2, active2 = state(env), local_states(env.instance), env.instance.D > 0
        tr = {
            "x": x, "o": o, "j": j, "u": u, "act": active.astype(np.float32), "r": r,
            "x2": x2, "o2": o2, "act2": active2.astype(np.float32), "done": bootstrap_mask(term, trunc),
        }  # fmt: skip
        global_rb.add(**tr)
        for m in np.flatnonzero(active):
            own_rb[m].add(**tr)
            dqn_rb.add(o=o[m], j=j[m], r=r, o2=o2[m], done=tr["done"])
        ep_r += r
        ep_L += info["L_total_s"]
        ep_E += info["E_total_J"]
        ep_len += 1
        x, o, active = x2, o2, active2
        if done:
            log.episode(
                step + 1,
                ep_r,
                mean_reward=ep_r / ep_len,
                eq15_reward=ep_r15 / ep_len,
                L_total_s=ep_L / ep_len,
                E_total_J=ep_E / ep_len,
                eps=eps,
            )
            ep_r, ep_r15, ep_L, ep_E, ep_len = 0.0, 0.0, 0.0, 0.0, 0
            env.reset(seed=next_seed())
            predict_episode(env)
            ou.reset()
            x, o, active = state(env), local_states(env.instance), env.instance.D > 0
        if step >= args.learning_starts and step % args.train_frequency == 0 and len(dqn_rb) >= args.batch_size:
            log.timed_update(update)
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    log.finish(policy, args.seed, step + 1, args.total_steps)
    net.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
