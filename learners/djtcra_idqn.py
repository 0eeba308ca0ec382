"""IDQN (Sec. VI-A benchmark 4): independent DQN per user ("each user maintains and trains a policy by DQN
independently ... with local state observation" [8]).

* Agent u (one per user) learns Q_u(o_u, a_u) over its A actions (the ESs; with ``rcs='action'`` also the RCS) from
  its own feature row o_u (learners/djtcra.py, decision L1) and its own reward: its QoE Omega_u (eq. 11, the env's
  ``info['qoe_per_user']``; the system reward of eq. 23 is their sum). ``team_reward=True`` uses R_t / |U| instead.
* Standard DQN per agent, treating the other users as part of the environment: TD target
  r_u + gamma max_a Q'_u(o'_u, a).
* Exploration: epsilon-greedy with epsilon = 0.15 (Sec. VI-A: "the percentile of greedy selecting a random action
  ... 0.15"), constant; a target network with soft updates (mu = 0.995, as Table IV for the other methods).
* Network sizes and learning rate are not given for IDQN: defaults 2 x 64 ReLU, lr 1e-4 (Table IV's policy learning
  rate), tuned by ``search_space``. The horizon is a truncation (bootstrapped, issue #11 item 4).

The |U| Q-networks are trained in parallel as one ensemble network with disjoint per-user weights.

Run: ``PYTHONPATH=. python -m learners.djtcra_idqn [--total-steps N] [--seed S] --out PATH``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from learners.common import (
    SharedAgentMLP,
    TrainingLog,
    agent_replay,
    ensemble_dqn_update,
    ensemble_epsilon_greedy,
    ensemble_mlp,
    linear_schedule,
    resolve_device,
    run_cli,
    seed_everything,
)
from learners.djtcra import (
    KEY,
    DjtcraPolicy,
    UserDqnArgs,
    features,
    make_env,
    n_actions,
    n_features,
    train_loop,
    user_dqn_search_space,
)
from learners.protocol import train_episode_seeds
from mecopt.envs.djtcra import DJTCRAEnv


@dataclass
class Args(UserDqnArgs):
    """Hyperparameters of IDQN: the user-agent DQN fields of ``UserDqnArgs`` (learners/djtcra.py) and the reward."""

    team_reward: bool = False
    """False: each user's own QoE Omega_u (eq. 11); True: the system QoE R_t / |U| (eq. 23)"""


search_space = user_dqn_search_space


class IdqnPolicy(DjtcraPolicy):
    """|U| independent Q_u(o_u, .); act = argmax_a Q_u per user (decentralized execution)."""

    centralized = False
    method = "idqn"

    @property
    def obs_dim(self) -> int:
        return n_features(self.M)

    def build(self) -> nn.Module:
        if self.per_user:  # L10: one Q network shared by all users
            return SharedAgentMLP(n_features(self.M), self.args.hidden, self.n_actions, context=False)
        return ensemble_mlp(self.N, self.obs_dim, self.args.hidden, self.n_actions)

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).transpose(0, 1)  # (U, B, A) -> (B, U, A)

    def observation(self, instance: Any) -> np.ndarray:
        return features(instance)


def train(
    args: Args,
    env_fn: Callable[[], DJTCRAEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> IdqnPolicy:
    tag = "idqn"
    rng = seed_everything(args.seed, tag)
    next_seed = train_episode_seeds(KEY, args.seed, tag)
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_env(args.preset, args.rcs, args.horizon, args.n_users)
    U, H = env.config.U, env.config.H
    A = n_actions(H, args.rcs)
    policy = IdqnPolicy(args, U, H, {"preset": args.preset})
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = agent_replay(args.buffer_size, U, policy.obs_dim, rng)
    anneal = int(args.eps_fraction * args.total_steps)

    def act(o: np.ndarray, step: int) -> np.ndarray:  # epsilon-greedy per user
        return ensemble_epsilon_greedy(
            q_net, o, linear_schedule(args.eps_start, args.eps_end, anneal, step), A, rng, dev
        )

    def store(o: np.ndarray, a: np.ndarray, rew: float, info: dict[str, Any], o2: np.ndarray, done: float) -> None:
        r = np.full(U, rew / U) if args.team_reward else info["qoe_per_user"]
        rb.add(o=o, a=a, r=r.astype(np.float32), o2=o2, done=done)

    def update() -> None:  # per user: r_u + gamma max_a Q'_u(o'_u, a)
        ensemble_dqn_update(q_net, q_target, opt, rb.sample(args.batch_size, dev), args.gamma, args.target_tau)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    steps = train_loop(env, args, log, next_seed, features, act, store, update)
    log.finish(policy, args.seed, steps, args.total_steps)
    q_net.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
