"""DQN-TOLB (Fig. 5): one centralized DQN deciding every user's target, reward = mean_n R_n (eq. 20).

The central agent observes the global state x = [chi(t) (eq. 14), every user's task features] and picks the joint
action A(t) of eq. (18). One output per joint action would need (M+1)^N = 6^10 ~ 6e7 outputs at Table 2's size,
which the paper does not say how it handled. We use an **action-branching** Q-network (BDQ, Tavakoli et al.,
AAAI 2018, without the dueling stream): a shared trunk over x and one head per user with M+1 outputs Q_n(x, a_n).
The joint greedy action is the per-branch argmax; the TD target shared by all branches is

    y = r + gamma * (1/N) sum_n max_a Q'_n(x', a)          (BDQ's mean-over-branches target)

and the loss is (1/N) sum_n (y - Q_n(x, a_n))^2. Exploration is epsilon-greedy per branch. It is still one
centralized learner with one system reward (the "centralized DQN introducing the load factor" of Section 5),
and it still faces the joint action space: it only represents Q additively over users.

Episode end: the T-slot time limit is a truncation (the slot index is not observed): the TD target keeps the
bootstrap term there (issue #11, item 4).

Run: ``PYTHONPATH=. python -m learners.dtomalb_dqn_tolb [--total-steps N] [--seed S] --out PATH`` (tyro flags).
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
    linear_schedule,
    mlp,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.dtomalb import KEY, DtomalbPolicy
from learners.protocol import train_episode_seeds
from mecopt.envs.dtomalb import DtomalbEnv


@dataclass
class Args:
    """Hyperparameters of DQN-TOLB The paper gives none: the defaults are the "paper
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
    """Adam step size"""
    batch_size: int = 128
    """minibatch size"""
    buffer_size: int = 100_000
    """replay memory capacity"""
    learning_starts: int = 1_000
    """env steps before the first update"""
    train_frequency: int = 2
    """one update each this many env steps"""
    target_tau: float = 0.01
    """soft target update rate of Q'"""
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    """shared trunk widths (the heads are linear, one per user)"""
    eps_start: float = 1.0
    """initial epsilon (per branch)"""
    eps_end: float = 0.05
    """final epsilon"""
    eps_fraction: float = 0.5
    """fraction of ``total_steps`` over which epsilon decays linearly"""
    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of DQN-TOLB (issue #11): Args overrides for one trial."""
    width = trial.suggest_categorical("width", [64, 128, 256, 512])
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


class BranchingQ(nn.Module):
    """Shared trunk over x, N linear heads of M+1 values: Q_n(x, a_n), shape (B, N, M+1)."""

    def __init__(self, d_x: int, hidden: list[int], N: int, M: int):
        super().__init__()
        self.N, self.A = N, M + 1
        self.trunk = mlp(d_x, hidden[:-1], hidden[-1])
        self.heads = nn.Linear(hidden[-1], N * (M + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(torch.relu(self.trunk(x))).reshape(-1, self.N, self.A)


class DqnTolbPolicy(DtomalbPolicy):
    """Centralized branching Q-network; act = per-user argmax of Q_n(x, .)."""

    centralized = True
    method = "dqn-tolb"

    def build(self) -> nn.Module:
        return BranchingQ(self.M + 4 * self.N, list(self.args.hidden), self.N, self.M)

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def make_env(args: Args) -> DtomalbEnv:
    return DtomalbEnv(args.preset, horizon=args.horizon, slot_length_s=args.slot_length_s, objective="delay+lb")


def train(
    args: Args,
    env_fn: Callable[[], DtomalbEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> DqnTolbPolicy:
    rng = seed_everything(args.seed, "dqn-tolb")
    next_seed = train_episode_seeds(KEY, args.seed, "dqn-tolb")
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_env(args)
    N, M = env.slots.N, env.slots.M
    A = M + 1
    d_x = M + 4 * N
    policy = DqnTolbPolicy(args, N, M, {"preset": args.preset})
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "x": ((d_x,), np.float32),
            "a": ((N,), np.int64),
            "r": ((), np.float32),
            "x2": ((d_x,), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )

    def update() -> None:
        b = rb.sample(args.batch_size, dev)
        with torch.no_grad():  # BDQ target: y = r + gamma * mean_n max_a Q'_n(x', a)
            y = b["r"] + args.gamma * (1.0 - b["done"]) * q_target(b["x2"]).max(-1).values.mean(-1)
        q = q_net(b["x"]).gather(-1, b["a"][..., None]).squeeze(-1)  # (B, N)
        loss = F.mse_loss(q, y[:, None].expand_as(q))
        opt.zero_grad()
        loss.backward()
        opt.step()
        soft_update(q_target, q_net, args.target_tau)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    x, _ = env.reset(seed=next_seed())
    ep_reward, ep_delay, ep_var, ep_len = 0.0, 0.0, 0.0, 0
    step = 0
    for step in range(args.total_steps):
        eps = linear_schedule(args.eps_start, args.eps_end, int(args.eps_fraction * args.total_steps), step)
        with torch.no_grad():
            greedy = q_net(torch.as_tensor(x, device=dev)[None])[0].argmax(-1).cpu().numpy()
        explore = rng.random(N) < eps
        a = np.where(explore, rng.integers(0, A, size=N), greedy)
        x2, r, terminated, truncated, info = log.timed_env_step(lambda a=a: env.step(a))  # r = mean_n R_n, eq. (20)
        rb.add(x=x, a=a, r=r, x2=x2, done=bootstrap_mask(terminated, truncated))
        ep_reward += r
        ep_delay += info["mean_delay_s"]
        ep_var += info["var_LD"]
        ep_len += 1
        x = x2
        if terminated or truncated:
            log.episode(step + 1, ep_reward, mean_delay_s=ep_delay / ep_len, var_LD=ep_var / ep_len)
            ep_reward, ep_delay, ep_var, ep_len = 0.0, 0.0, 0.0, 0
            x, _ = env.reset(seed=next_seed())
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
