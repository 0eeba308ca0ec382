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
    """Hyperparameters of VDN-L/VDN-G: the user-agent DQN fields of ``UserDqnArgs`` (learners/djtcra.py) and the
    observation."""

    global_state: bool = False
    """False: VDN-L (own row); True: VDN-G (system state)"""


search_space = user_dqn_search_space


class VdnPolicy(DjtcraPolicy):
    """|U| per-user Q_u(o_u, .); act = argmax_a Q_u per user (decentralized execution)."""

    centralized = False

    @property
    def name(self) -> str:
        return "vdn-g" if self.args.global_state else "vdn-l"

    @property
    def obs_dim(self) -> int:
        f = n_features(self.M)
        return self.N * f if self.args.global_state and not self.per_user else f

    def build(self) -> nn.Module:
        if self.per_user:  # L10: one Q network shared by all users, VDN-G: + the mean row as pooled state
            return SharedAgentMLP(n_features(self.M), self.args.hidden, self.n_actions, context=self.args.global_state)
        return ensemble_mlp(self.N, self.obs_dim, self.args.hidden, self.n_actions)

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).transpose(0, 1)  # (U, B, A) -> (B, U, A)

    def observation(self, instance: Any) -> np.ndarray:
        return agent_obs(features(instance), self.args.global_state and not self.per_user)


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
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = agent_replay(args.buffer_size, U, policy.obs_dim, rng, per_agent_reward=False)
    anneal = int(args.eps_fraction * args.total_steps)

    def act(o: np.ndarray, step: int) -> np.ndarray:  # epsilon-greedy per user
        return ensemble_epsilon_greedy(
            q_net, o, linear_schedule(args.eps_start, args.eps_end, anneal, step), A, rng, dev
        )

    def store(o: np.ndarray, a: np.ndarray, rew: float, info: dict[str, Any], o2: np.ndarray, done: float) -> None:
        rb.add(o=o, a=a, r=np.float32(rew / U), o2=o2, done=done)  # team reward R_t / |U| (eq. 23)

    def update() -> None:  # VDN target: R + gamma sum_u max_a Q'_u(o'_u, a) against Q_tot = sum_u Q_u
        b = rb.sample(args.batch_size, dev)
        ensemble_dqn_update(q_net, q_target, opt, b, args.gamma, args.target_tau, decompose=True)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    steps = train_loop(env, args, log, next_seed, lambda inst: policy.observation(inst), act, store, update)
    log.finish(policy, args.seed, steps, args.total_steps)
    q_net.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
