"""IDQL-TOLB (Fig. 5): independent deep Q-learning, one DQN per user, with the load-balanced reward eq. (20).

Agent i learns Q_i(o_i, a_i) (eq. 22) from its own observation o_i = [chi(t) (eq. 21), own task features] and its
own reward R_i = -w1 t_i - w2 var(LD) (eq. 20), treating the other users as part of the environment (the
non-stationarity the paper blames for IDQL's unstable curve). Standard DQN per agent: epsilon-greedy exploration,
experience replay, a target network, TD target r_i + gamma max_a Q'_i(o'_i, a).

The N Q-networks are trained in parallel as one ensemble network with disjoint per-agent weights.

Episode end: the T-slot time limit is a truncation (the slot index is not observed): the TD target keeps
gamma max Q'_i(o'_i, .) there (issue #11, item 4).

Run: ``PYTHONPATH=. python -m learners.dtomalb_idql_tolb [--total-steps N] [--seed S] --out PATH`` (tyro flags).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from learners.common import (
    TrainingLog,
    agent_replay,
    bootstrap_mask,
    ensemble_dqn_update,
    ensemble_epsilon_greedy,
    ensemble_mlp,
    linear_schedule,
    resolve_device,
    run_cli,
    seed_everything,
)
from learners.dtomalb import KEY, DtomalbPolicy
from learners.protocol import train_episode_seeds
from mecopt.envs.dtomalb import DtomalbParallelEnv


@dataclass
class Args:
    """Hyperparameters of IDQL-TOLB The paper gives none: the defaults are the "paper
    setting" (untuned) of docs/learners.md; ``search_space`` below is what ``learners.tune`` searches."""

    seed: int = 1
    """root seed: torch init, exploration, replay sampling and the env episode seeds all derive from it"""
    preset: str = "paper"
    """generator preset of the training env (Table 2: N=10, M=5)"""
    total_steps: int = 60_000
    """environment steps (slots) of training"""
    horizon: int = 10
    """T, slots per episode"""
    slot_length_s: float = 1.0
    """time a server works off its backlog between slots (env D3)"""
    gamma: float = 0.9
    """discount gamma"""
    lr: float = 1e-3
    """Adam step size of every Q_i"""
    batch_size: int = 128
    """minibatch size"""
    buffer_size: int = 100_000
    """replay memory capacity"""
    learning_starts: int = 1_000
    """env steps before the first update"""
    train_frequency: int = 2
    """one update of every agent each this many env steps"""
    target_tau: float = 0.01
    """soft target update rate of Q'_i"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden layer widths of each Q_i"""
    eps_start: float = 1.0
    """initial epsilon of epsilon-greedy exploration"""
    eps_end: float = 0.05
    """final epsilon"""
    eps_fraction: float = 0.5
    """fraction of ``total_steps`` over which epsilon decays linearly"""
    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of IDQL-TOLB (issue #11): Args overrides for one trial."""
    width = trial.suggest_categorical("width", [32, 64, 128, 256])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9, 0.99]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "target_tau": trial.suggest_float("target_tau", 3e-3, 0.1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "hidden": [width, width],
        "learning_starts": trial.suggest_categorical("learning_starts", [250, 500, 1000]),
        "eps_start": 1.0,
        "eps_end": trial.suggest_float("eps_end", 0.0, 0.2),
        "eps_fraction": trial.suggest_float("eps_fraction", 0.1, 1.0),
    }


class IdqlPolicy(DtomalbPolicy):
    """N independent Q_i(o_i, .); act = argmax_a Q_i(o_i, a) per user (decentralized)."""

    centralized = False
    method = "idql-tolb"

    def build(self) -> nn.Module:
        return ensemble_mlp(self.N, self.M + 4, self.args.hidden, self.M + 1)

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).transpose(0, 1)


def make_env(args: Args) -> DtomalbParallelEnv:
    return DtomalbParallelEnv(args.preset, horizon=args.horizon, slot_length_s=args.slot_length_s, objective="delay+lb")


def train(
    args: Args,
    env_fn: Callable[[], DtomalbParallelEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> IdqlPolicy:
    rng = seed_everything(args.seed, "idql")
    next_seed = train_episode_seeds(KEY, args.seed, "idql")
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_env(args)
    agents = env.possible_agents
    N, M = env.slots.N, env.slots.M
    A = M + 1
    d_o = M + 4
    policy = IdqlPolicy(args, N, M, {"preset": args.preset})
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = agent_replay(args.buffer_size, N, d_o, rng)

    def update() -> None:  # TD target per agent: r_i + gamma max_a Q'_i(o'_i, a)
        ensemble_dqn_update(q_net, q_target, opt, rb.sample(args.batch_size, dev), args.gamma, args.target_tau)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    obs, _ = env.reset(seed=next_seed())
    o = np.stack([obs[ag] for ag in agents])
    ep_reward, ep_delay, ep_var, ep_len = np.zeros(N), 0.0, 0.0, 0
    step = 0
    for step in range(args.total_steps):
        eps = linear_schedule(args.eps_start, args.eps_end, int(args.eps_fraction * args.total_steps), step)
        a = ensemble_epsilon_greedy(q_net, o, eps, A, rng, dev)  # each agent explores independently
        act = {ag: int(a[n]) for n, ag in enumerate(agents)}
        obs, rew, term, trunc, infos = log.timed_env_step(lambda act=act: env.step(act))
        r = np.array([rew[ag] for ag in agents], dtype=np.float32)
        terminated, truncated = bool(term[agents[0]]), bool(trunc[agents[0]])
        o2 = np.stack([obs[ag] for ag in agents])
        rb.add(o=o, a=a, r=r, o2=o2, done=bootstrap_mask(terminated, truncated))
        info = infos[agents[0]]
        ep_reward += r
        ep_delay += info["mean_delay_s"]
        ep_var += info["var_LD"]
        ep_len += 1
        o = o2
        if terminated or truncated:
            log.episode(step + 1, ep_reward.mean(), mean_delay_s=ep_delay / ep_len, var_LD=ep_var / ep_len)
            ep_reward, ep_delay, ep_var, ep_len = np.zeros(N), 0.0, 0.0, 0
            obs, _ = env.reset(seed=next_seed())
            o = np.stack([obs[ag] for ag in agents])
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
