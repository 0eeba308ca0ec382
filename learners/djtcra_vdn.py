"""VDN-L / VDN-G (Sec. VI-A benchmarks 2-3): users are the agents, value decomposition (Sunehag et al. [52]).

* Agent u (one per user) learns Q_u(o_u, a_u) over its A actions (the ESs; with ``rcs='action'`` also the RCS).
  VDN-L: o_u = its own feature row (the user's state, learners/djtcra.py, decision L1); VDN-G: o_u = the whole
  system state S_t (eq. 19 with L1's columns, flattened), "obtained from a virtual central unity".
* Value decomposition: Q_tot(S, a) = sum_u Q_u(o_u, a_u), trained on the team reward R_t (system QoE, eq. 23,
  divided by |U|) with the TD target R + gamma sum_u max_a Q'_u(o'_u, a) (all users updated simultaneously).
* Exploration: epsilon-greedy with epsilon = 0.15 (Sec. VI-A: "the percentile of greedy selecting a random action
  ... 0.15"), constant; a target network with soft updates (mu = 0.995, as Table IV for the other methods).
* Network sizes and learning rate are not given for VDN: defaults 2 x 64 ReLU, lr 1e-4 (Table IV's policy learning
  rate), tuned by ``search_space``. The horizon is a truncation (bootstrapped, issue #11 item 4).

The |U| Q-networks are trained in parallel as one ensemble network with disjoint per-user weights.

Run: ``PYTHONPATH=. python -m learners.djtcra_vdn [--global-state] [--total-steps N] [--seed S] --out PATH``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from learners.common import (
    ReplayBuffer,
    TrainingLog,
    bootstrap_mask,
    ensemble_mlp,
    linear_schedule,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.djtcra import KEY, DjtcraPolicy, features, make_env, n_actions, n_features
from learners.protocol import train_episode_seeds
from mecopt.envs.djtcra import DJTCRAEnv


@dataclass
class Args:
    """Hyperparameters of VDN-L/VDN-G (the paper gives epsilon only; the rest are documented choices)."""

    seed: int = 1
    """root seed: torch init, exploration, replay sampling and the env episode seeds all derive from it"""
    preset: str = "small"
    """generator preset of the training env"""
    n_users: int | None = None
    """override the preset's number of users |U| (Fig. 8); None: the preset's"""
    global_state: bool = False
    """False: VDN-L (own row); True: VDN-G (system state)"""
    rcs: str = "fallback"
    """'fallback': actions = ESs, RCS by D13; 'action': RCS is an action"""
    total_steps: int = 2_000
    """environment steps (slots) of training"""
    horizon: int = 10
    """slots per episode"""
    gamma: float = 0.1
    """discount gamma (Fig. 6 setting)"""
    lr: float = 1e-4
    """Adam learning rate (Table IV's policy learning rate)"""
    batch_size: int = 64
    """minibatch size"""
    buffer_size: int = 100_000
    """replay memory capacity"""
    learning_starts: int = 500
    """env steps before the first update"""
    train_frequency: int = 1
    """one update each this many env steps"""
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
    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of VDN-L/VDN-G."""
    width = trial.suggest_categorical("width", [32, 64, 128])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.1, 0.5]),
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "target_tau": trial.suggest_float("target_tau", 3e-3, 0.1, log=True),
        "hidden": [width, width],
        "eps_start": trial.suggest_categorical("eps_start", [0.15, 0.5, 1.0]),
        "eps_end": trial.suggest_float("eps_end", 0.0, 0.15),
    }


class VdnPolicy(DjtcraPolicy):
    """|U| per-user Q_u(o_u, .); act = argmax_a Q_u per user (decentralized execution)."""

    centralized = False

    @property
    def name(self) -> str:
        return "vdn-g" if self.args.global_state else "vdn-l"

    @property
    def obs_dim(self) -> int:
        f = n_features(self.M)
        return self.N * f if self.args.global_state else f

    def build(self) -> nn.Module:
        return ensemble_mlp(self.N, self.obs_dim, self.args.hidden, self.n_actions)

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).transpose(0, 1)  # (U, B, A) -> (B, U, A)

    def observation(self, instance: Any) -> np.ndarray:
        return agent_obs(features(instance), self.args.global_state)


def agent_obs(feats: np.ndarray, global_state: bool) -> np.ndarray:
    """Per-user observations: own row (VDN-L) or the flattened system state, one copy per user (VDN-G)."""
    if not global_state:
        return feats
    U = feats.shape[0]
    return np.broadcast_to(feats.reshape(1, -1), (U, feats.size)).copy()


def train(
    args: Args,
    env_fn: Callable[[], DJTCRAEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> VdnPolicy:
    tag = "vdn-g" if args.global_state else "vdn-l"
    rng = seed_everything(args.seed, tag)
    next_seed = train_episode_seeds(KEY, args.seed, tag)
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_env(args.preset, args.rcs, args.horizon, args.n_users)
    U, H = env.config.U, env.config.H
    A = n_actions(H, args.rcs)
    policy = VdnPolicy(args, U, H, {"preset": args.preset})
    d_o = policy.obs_dim
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "o": ((U, d_o), np.float32),
            "a": ((U,), np.int64),
            "r": ((), np.float32),
            "o2": ((U, d_o), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )

    def update() -> None:
        b = rb.sample(args.batch_size, dev)
        with torch.no_grad():  # VDN target: R + gamma sum_u max_a Q'_u(o'_u, a)
            q2 = q_target(b["o2"].transpose(0, 1)).max(-1).values.sum(0)  # (B,)
            y = b["r"] + args.gamma * (1.0 - b["done"]) * q2
        q = q_net(b["o"].transpose(0, 1)).gather(-1, b["a"].T[..., None]).squeeze(-1).sum(0)  # Q_tot (B,)
        loss = F.mse_loss(q, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        soft_update(q_target, q_net, args.target_tau)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    env.reset(seed=next_seed())
    o = agent_obs(features(env.instance), args.global_state)
    ep: dict[str, float] = {}
    ep_len = 0
    step = 0
    for step in range(args.total_steps):
        eps = linear_schedule(args.eps_start, args.eps_end, int(args.eps_fraction * args.total_steps), step)
        with torch.no_grad():
            greedy = q_net(torch.as_tensor(o, device=dev)[:, None, :])[:, 0, :].argmax(-1).cpu().numpy()
        a = np.where(rng.random(U) < eps, rng.integers(0, A, size=U), greedy)
        _, rew, term, trunc, info = log.timed_env_step(lambda a=a: env.step(a))
        o2 = agent_obs(features(env.instance), args.global_state)
        rb.add(o=o, a=a, r=np.float32(rew / U), o2=o2, done=bootstrap_mask(term, trunc))
        for k in ("mean_latency_s", "n_SU", "n_DU", "n_GU", "n_CU"):
            ep[k] = ep.get(k, 0.0) + float(info[k])
        ep["qoe"] = ep.get("qoe", 0.0) + float(rew)
        ep_len += 1
        o = o2
        if term or trunc:
            q = ep.pop("qoe")
            log.episode(step + 1, q / ep_len, **{k: v / ep_len for k, v in ep.items()})
            ep, ep_len = {}, 0
            env.reset(seed=next_seed())
            o = agent_obs(features(env.instance), args.global_state)
        if step >= args.learning_starts and step % args.train_frequency == 0:
            log.timed_update(update)
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    log.finish(policy, args.seed, step + 1, args.total_steps)
    q_net.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
