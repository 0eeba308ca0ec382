"""DDQN baseline of INTO (Section V-B): double deep Q-network, (1000, 600) neurons, learning rate and target update
rate 1e-3 (the paper's settings are the ``Args`` defaults).

**Decomposition of the joint action.** The action of one slot is a target per device in {discard, BS 1..N}, so the
joint space has (N+1)^K elements (4^24 ~ 2.8e14 on the padded `small` layout, 4^165 at the paper's size); the paper
does not say how its DDQN coped. As for DQN-TOLB (:mod:`learners.dtomalb_dqn_tolb`) we use an **action-branching**
Q-network (BDQ, Tavakoli et al., AAAI 2018, no dueling stream): the (1000, 600) trunk reads s(t) and one linear head
per device slot gives Q_k(s, a_k) for a_k in {discard, BS 1..N}. The joint greedy action is the per-branch argmax,
made valid by Alg. 1 (eqs. 16-18, the env); the CPU is eq. (18)'s minimum scaled to fill each BS (DDQN has no
continuous output for the split). The double-DQN target shared by every present branch is

    y = r + gamma * mean_k Q'_k(s', argmax_a Q_k(s', a))       (online net selects, target net evaluates)

and the loss is the mean over present branches of (y - Q_k(s, a_k))^2, a_k = the *refined* target that ran.
What it gives up: Q is additive over devices, so the couplings that make the slot hard -- intra-cell interference
(eq. 3), the shared CPU of a BS (eq. 10) and peer-offloading choices that compete for one BS -- are only seen through
the shared reward, never as a joint value; the per-branch argmax is not the joint argmax; and the CPU split is not
learned. Exploration: epsilon-greedy per branch.

Episode end: the ``horizon``-slot limit is a truncation: the target keeps the bootstrap term (issue #11, item 4).

Run: ``PYTHONPATH=. python -m learners.into_ddqn [--total-steps N] [--seed S] --out PATH`` (tyro flags).
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
from learners.into import (
    K_MAX,
    KEY,
    N_BS,
    OBS_DIM,
    Episodes,
    IntoPolicy,
    episode_extras,
    pad,
    padded_observation,
    presence,
    unpad,
)
from learners.protocol import train_episode_seeds
from mecopt.problems.into import Decision, Instance, decision_from_targets
from solvers.kernels.into_refine import refine

A = N_BS + 1  # per branch: 0 = discard, b + 1 = run on BS b
#: what the replay memory stores as the action (Args.replay_action)
REPLAY_ACTIONS = ("refined", "chosen")


@dataclass
class Args:
    """Hyperparameters of DDQN. Defaults = the paper's (1000, 600), lr 1e-3, target rate 1e-3 (the "paper
    setting"); the rest are Table II's INTO values or our choices. ``search_space`` is what ``learners.tune``
    searches."""

    seed: int = 1
    """root seed: torch init, exploration, replay sampling and the env episode seeds all derive from it"""
    preset: str = "small"
    """generator preset of the training env (the calibration set)"""
    total_steps: int = 1_500
    """environment steps (slots) of training"""
    horizon: int = 20
    """slots per training episode (not given by the paper)"""
    gamma: float = 0.99
    """discount factor (Table II's value; the paper gives none for DDQN)"""
    lr: float = 1e-3
    """Adam step size (Section V-B)"""
    target_tau: float = 1e-3
    """soft update rate of the target network Q' (Section V-B)"""
    batch_size: int = 64
    """minibatch size (Table II's value)"""
    buffer_size: int = 3_000
    """replay memory capacity (Table II's value)"""
    learning_starts: int = 200
    """env steps before the first update"""
    train_frequency: int = 1
    """one update each this many env steps"""
    hidden: list[int] = field(default_factory=lambda: [1000, 600])
    """trunk widths (Section V-B); the heads are linear, one per device slot"""
    eps_start: float = 1.0
    """initial epsilon (per branch)"""
    eps_end: float = 0.05
    """final epsilon"""
    eps_fraction: float = 0.5
    """fraction of ``total_steps`` over which epsilon decays linearly"""
    reward_scale: float = 0.1
    """the learner trains on reward_scale * r(t) (not in the paper; the optimal policy is unchanged)"""
    replay_action: str = "refined"
    """action stored in the replay memory: 'refined' (the targets that ran after Alg. 1) or 'chosen' (the
    epsilon-greedy choice before Alg. 1; variant ``ddqn-chosen-replay``, docs/learners/into.md)"""
    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of DDQN (issue #11): Args overrides for one trial."""
    width = trial.suggest_categorical("width", [64, 128, 256])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9, 0.99]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "target_tau": trial.suggest_float("target_tau", 1e-3, 0.05, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128]),
        "hidden": [2 * width, width],
        "learning_starts": trial.suggest_categorical("learning_starts", [100, 200, 500]),
        "eps_start": 1.0,
        "eps_end": trial.suggest_float("eps_end", 0.0, 0.2),
        "eps_fraction": trial.suggest_float("eps_fraction", 0.1, 1.0),
    }


class BranchingQ(nn.Module):
    """Shared trunk over s, one linear head per device slot: Q_k(s, a_k), shape (B, K_MAX, N + 1)."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.trunk = mlp(OBS_DIM, hidden[:-1], hidden[-1])
        self.heads = nn.Linear(hidden[-1], K_MAX * A)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.heads(torch.relu(self.trunk(s))).reshape(-1, K_MAX, A)


class IntoDdqnPolicy(IntoPolicy):
    """Branching Q-network; decide = per-device argmax, Alg. 1, eq. (18)'s minimum CPU scaled."""

    method = "ddqn"

    def build(self) -> nn.Module:
        return BranchingQ(list(self.args.hidden))

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def decision(self, instance: Instance, actions: np.ndarray) -> Decision:
        a = unpad(instance, actions).argmax(-1) if actions.ndim == 2 else unpad(instance, actions)
        return decision_from_targets(instance, refine(instance, np.asarray(a, dtype=np.int64) - 1))


def train(
    args: Args,
    env_fn: Callable[[], Episodes] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> IntoDdqnPolicy:
    rng = seed_everything(args.seed, "into-ddqn")
    next_seed = train_episode_seeds(KEY, args.seed, "into-ddqn")
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else Episodes(args.preset, args.horizon, "discrete", "min-scaled")
    policy = IntoDdqnPolicy(args, meta={"preset": args.preset})
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "s": ((OBS_DIM,), np.float32),
            "a": ((K_MAX,), np.int64),
            "m": ((K_MAX,), np.float32),
            "r": ((), np.float32),
            "s2": ((OBS_DIM,), np.float32),
            "m2": ((K_MAX,), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )

    if args.replay_action not in REPLAY_ACTIONS:
        raise ValueError(f"ddqn: replay_action must be one of {REPLAY_ACTIONS}, got {args.replay_action!r}")

    def update() -> float:
        b = rb.sample(args.batch_size, dev)
        with torch.no_grad():  # double DQN, branch-mean target
            a2 = q_net(b["s2"]).argmax(-1, keepdim=True)
            q2 = q_target(b["s2"]).gather(-1, a2).squeeze(-1)  # (B, K_MAX)
            q2 = (q2 * b["m2"]).sum(-1) / b["m2"].sum(-1).clamp(min=1.0)
            y = b["r"] + args.gamma * (1.0 - b["done"]) * q2
        q = q_net(b["s"]).gather(-1, b["a"][..., None]).squeeze(-1)  # (B, K_MAX)
        loss = (((q - y[:, None]) ** 2) * b["m"]).sum() / b["m"].sum().clamp(min=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        soft_update(q_target, q_net, args.target_tau)
        return float(loss.item())

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    inst = env.reset(next_seed())
    s, m = padded_observation(inst), presence(inst)
    ep_income, ep_len, losses = 0.0, 0, []
    step = 0
    for step in range(args.total_steps):
        eps = linear_schedule(args.eps_start, args.eps_end, int(args.eps_fraction * args.total_steps), step)
        with torch.no_grad():
            greedy = q_net(torch.as_tensor(s, device=dev)[None])[0].argmax(-1).cpu().numpy()
        a_pad = np.where(rng.random(K_MAX) < eps, rng.integers(0, A, size=K_MAX), greedy)
        a = unpad(inst, a_pad)
        inst2, r, terminated, truncated, info = log.timed_env_step(lambda a=a: env.step(a))  # Alg. 1 in the env
        if args.replay_action == "refined":
            ran = pad(inst, np.asarray(info["refined_targets"], dtype=np.int64) + 1)  # the refined action that ran
        else:
            ran = np.where(m > 0, a_pad, 0).astype(np.int64)  # the choice before Alg. 1
        s2, m2 = padded_observation(inst2), presence(inst2)
        rb.add(s=s, a=ran, m=m, r=args.reward_scale * r, s2=s2, m2=m2, done=bootstrap_mask(terminated, truncated))
        ep_income += r
        ep_len += 1
        inst, s, m = inst2, s2, m2
        if terminated or truncated:
            log.episode(step + 1, ep_income, **episode_extras(ep_income / ep_len, losses))
            ep_income, ep_len, losses = 0.0, 0, []
            inst = env.reset(next_seed())
            s, m = padded_observation(inst), presence(inst)
        if step >= args.learning_starts and step % args.train_frequency == 0:
            losses.append(log.timed_update(update))
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
