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

``arch="per-device"`` (not in the paper; docs/learners/into.md L1): the branches share their weights -- one
MLP maps each device row (:func:`learners.into.device_rows`: own features, BS one-hot, cell context) to that
device's Q_k(s, a_k); the same decomposition and target, parameters independent of K (runs on `paper` cells).

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
    EpsilonArgs,
    ReplayBuffer,
    TrainingLog,
    linear_schedule,
    mlp,
    off_policy_loop,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.into import (
    DEVICE_DIM,
    K_MAX,
    KEY,
    N_BS,
    OBS_DIM,
    DeviceEpisodes,
    Episodes,
    IntoArgs,
    IntoPolicy,
    PaddedEpisodes,
    k_cap,
    observe,
    observe_rows,
    pad,
)
from learners.protocol import train_episode_seeds
from mecopt.problems.into import Decision, Instance, decision_from_targets
from solvers.kernels.into_refine import refine

A = N_BS + 1  # per branch: 0 = discard, b + 1 = run on BS b
#: what the replay memory stores as the action (Args.replay_action)
REPLAY_ACTIONS = ("refined", "chosen")


@dataclass
class Args(IntoArgs, EpsilonArgs):
    """Hyperparameters of DDQN. Defaults = the paper's (1000, 600), lr 1e-3, target rate 1e-3 (the "paper
    setting"); the rest are Table II's INTO values (:class:`learners.into.IntoArgs`) or our choices.
    ``search_space`` is what ``learners.tune`` searches."""

    lr: float = 1e-3
    """Adam step size (Section V-B)"""
    target_tau: float = 1e-3
    """soft update rate of the target network Q' (Section V-B)"""
    hidden: list[int] = field(default_factory=lambda: [1000, 600])
    """trunk widths (Section V-B); the heads are linear, one per device slot"""
    replay_action: str = "refined"
    """action stored in the replay memory: 'refined' (the targets that ran after Alg. 1) or 'chosen' (the
    epsilon-greedy choice before Alg. 1; variant ``ddqn-chosen-replay``, docs/learners/into.md)"""


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


class DeviceQ(nn.Module):
    """Branches with shared weights: one MLP per device row, (B, K, DEVICE_DIM) -> Q_k(s, a_k), (B, K, N + 1)."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.body = mlp(DEVICE_DIM, hidden, A)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.body(s)


class IntoDdqnPolicy(IntoPolicy):
    """Branching Q-network; decide = per-device argmax, Alg. 1, eq. (18)'s minimum CPU scaled."""

    method = "ddqn"

    def build(self) -> nn.Module:
        return (DeviceQ if self.per_device else BranchingQ)(list(self.args.hidden))

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def decision(self, instance: Instance, actions: np.ndarray) -> Decision:
        a = self.rows(instance, actions).argmax(-1) if actions.ndim == 2 else self.rows(instance, actions)
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
    per_device = policy.per_device
    # per-device: slots stored in device order, padded to the preset's largest K (padded: the K_MAX layout slots)
    rows = k_cap(env.preset) if per_device else K_MAX
    s_shape = (rows, DEVICE_DIM) if per_device else (OBS_DIM,)
    q_net = policy.net.to(dev)
    q_target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=args.lr)
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "s": (s_shape, np.float32),
            "a": ((rows,), np.int64),
            "m": ((rows,), np.float32),
            "r": ((), np.float32),
            "s2": (s_shape, np.float32),
            "m2": ((rows,), np.float32),
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

    def act(step: int, inst: Instance, obs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        eps = linear_schedule(args.eps_start, args.eps_end, int(args.eps_fraction * args.total_steps), step)
        with torch.no_grad():
            greedy = q_net(torch.as_tensor(obs[0], device=dev)[None])[0].argmax(-1).cpu().numpy()
        return np.where(rng.random(rows) < eps, rng.integers(0, A, size=rows), greedy)

    def store(inst: Instance, obs: Any, a_pad: np.ndarray, info: dict, r: float, obs2: Any, done: float) -> None:
        (s, m), (s2, m2) = obs, obs2
        if args.replay_action == "refined" and per_device:
            ran = np.zeros(rows, dtype=np.int64)
            ran[: inst.K] = np.asarray(info["refined_targets"], dtype=np.int64) + 1
        elif args.replay_action == "refined":
            ran = pad(inst, np.asarray(info["refined_targets"], dtype=np.int64) + 1)  # the refined action that ran
        else:
            ran = np.where(m > 0, a_pad, 0).astype(np.int64)  # the choice before Alg. 1
        rb.add(s=s, a=ran, m=m, r=args.reward_scale * r, s2=s2, m2=m2, done=done)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    # Alg. 1 runs in the env on the unpadded per-device targets
    if per_device:
        steps = off_policy_loop(
            args, log, DeviceEpisodes(env), next_seed, lambda i: observe_rows(i, rows), act, store, update
        )
    else:
        steps = off_policy_loop(args, log, PaddedEpisodes(env), next_seed, observe, act, store, update)
    log.finish(policy, args.seed, steps, args.total_steps)
    q_net.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
