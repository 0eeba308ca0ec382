"""INTO (Section IV-B, Alg. 2): DDPG whose continuous proto-action is made feasible by the fast action refinement
of Alg. 1 (eqs. 15-18, the shared kernel :mod:`solvers.kernels.into_refine`).

* State s(t): the padded observation of :mod:`learners.into` (Section III-B (1)).
* Proto-action a_hat(t) = phi(s | theta^phi) + eta(t) (Alg. 2 line 5): a sigmoid actor outputs, per device slot,
  (x_hat, y_hat_1..y_hat_N, w_hat) in [0, 1]^(N+2); eta ~ N(0, sigma^2) (Gaussian exploration), clipped to [0, 1].
* Alg. 1 (line 6): eq. (15) nearest valid discrete action (run on argmax_b y_hat_b iff x_hat + max_b y_hat_b > 1),
  eqs. (16)-(17) drop uploads without the energy of (5), then per BS drop the lowest priority g / l (eq. 18) until
  (10) holds. CPU: the agent's split w_hat (``cpu="agent"``, the paper's action includes f; F_b is shared in
  proportion to w_hat) -- or eq. (18)'s minimum scaled to fill the BS (``cpu="min-scaled"``, an ablation).
* Replay memory Omega stores the *valid* action a(t) (line 8) in proto coordinates: (x, y one-hot, w_hat of the
  tasks that run, 0 otherwise).
* Critic target rho = r + gamma Q'(s', phi'(s')) (line 10), loss (rho - Q(s, a))^2 (eq. 19); actor ascent on
  Q(s, phi(s)) (eq. 20); soft target updates with rates epsilon_1 = epsilon_2 = tau (eqs. 21-22).
* Table II settings are the ``Args`` defaults: critic (1500, 600), actor (3000, 1000), learning rates 1e-4, update
  rates 1e-3, batch 64, replay 3000, gamma 0.99. Not in the paper (our choices): sigma, the reward scale (rewards
  are multiplied by ``reward_scale`` inside the learner only; the optimal policy is unchanged), the warm-up.
* Episode end: the ``horizon``-slot limit is a truncation (the slot index is not observed): the target keeps
  gamma Q'(s', phi'(s')) there (issue #11, item 4).
* ``arch="per-device"`` (not in the paper; docs/learners/into.md L1): the actor is one MLP applied to every
  device row (:func:`learners.into.device_rows`) -> that device's (N + 2) proto-action; the critic is DeepSets-style:
  a shared encoder of [row, action] per device, mean-pooled per BS, the 3 pools -> MLP -> Q. Same losses, same
  Alg. 1; parameters independent of K, so one checkpoint runs on `small` and `paper` cells.

Run: ``PYTHONPATH=. python -m learners.into_ddpg [--total-steps N] [--seed S] --out PATH`` (tyro flags).
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
    mlp,
    off_policy_loop,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.into import (
    BS_COL,
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
    unpad,
)
from learners.protocol import train_episode_seeds
from mecopt.problems.into import Decision, Instance
from solvers.kernels.into_refine import decision_from_proto

A_DIM = N_BS + 2  # per device slot: x_hat, y_hat_1..y_hat_N, w_hat
#: what the replay memory stores as the action (Args.replay_action)
REPLAY_ACTIONS = ("valid", "proto")


@dataclass
class Args(IntoArgs):
    """Hyperparameters of INTO. Defaults = Table II (the "paper setting", untuned); ``search_space`` below is what
    ``learners.tune`` searches. Shared fields (seed, gamma, batch, replay size, ...): ``learners.into.IntoArgs``."""

    tau: float = 1e-3
    """update rates epsilon_1 = epsilon_2 of the target networks (Table II, eqs. 21-22)"""
    lr_actor: float = 1e-4
    """actor learning rate alpha_phi (Table II, eq. 20)"""
    lr_critic: float = 1e-4
    """critic learning rate alpha_Q (Table II, eq. 19)"""
    actor_hidden: list[int] = field(default_factory=lambda: [3000, 1000])
    """actor hidden layers (Table II)"""
    critic_hidden: list[int] = field(default_factory=lambda: [1500, 600])
    """critic hidden layers (Table II)"""
    explore_sigma: float = 0.2
    """std of the Gaussian exploration noise eta (Alg. 2 line 5; the paper gives no value)"""
    cpu: str = "agent"
    """CPU part of the action: 'agent' (the proto-action's split, the paper) or 'min-scaled' (eq. 18 scaled)"""
    replay_action: str = "valid"
    """action stored in Omega: 'valid' (the refined a(t), Alg. 2 line 8, the paper) or 'proto' (the noisy
    proto-action a_hat(t) the actor proposed; variant ``into-proto-replay``, docs/learners/into.md)"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of INTO (issue #11): Args overrides for one trial."""
    width = trial.suggest_categorical("width", [64, 128, 256])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9, 0.99]),
        "lr_actor": trial.suggest_float("lr_actor", 1e-5, 1e-3, log=True),
        "lr_critic": trial.suggest_float("lr_critic", 1e-4, 1e-2, log=True),
        "tau": trial.suggest_float("tau", 1e-3, 0.05, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128]),
        "actor_hidden": [2 * width, width],
        "critic_hidden": [2 * width, width],
        "explore_sigma": trial.suggest_float("explore_sigma", 0.05, 0.5, log=True),
        "learning_starts": trial.suggest_categorical("learning_starts", [100, 200, 500]),
    }


class Actor(nn.Module):
    """phi(s | theta^phi): MLP with a sigmoid output, (B, OBS_DIM) -> (B, K_MAX, N + 2) in [0, 1]."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.body = mlp(OBS_DIM, hidden, K_MAX * A_DIM)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(s)).reshape(-1, K_MAX, A_DIM)


class Critic(nn.Module):
    """Q(s, a | theta^Q): MLP over [s, a (K_MAX x (N+2), empty slots zeroed)] -> (B,)."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.body = mlp(OBS_DIM + K_MAX * A_DIM, hidden, 1)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([s, a.reshape(a.shape[0], -1)], dim=1)).squeeze(-1)


class DeviceActor(nn.Module):
    """phi(s) with shared weights: one MLP per device row, (B, K, DEVICE_DIM) -> (B, K, N + 2) in [0, 1]."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.body = mlp(DEVICE_DIM, hidden, A_DIM)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(s))


class DeepSetsCritic(nn.Module):
    """Q(s, a) over a set of devices: a shared encoder of [row, a_k] per device, the mean of the encodings of each
    BS's devices (absent rows have a zero BS one-hot, so they drop out), the N_BS pools concatenated -> MLP -> (B,)."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.encoder = mlp(DEVICE_DIM + A_DIM, hidden[:1], hidden[0])
        self.head = mlp(N_BS * hidden[0], hidden[1:], 1)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        e = torch.relu(self.encoder(torch.cat([s, a], dim=-1)))  # (B, K, h)
        onehot = s[:, :, BS_COL : BS_COL + N_BS]  # (B, K, N)
        pooled = torch.einsum("bkh,bkn->bnh", e, onehot) / onehot.sum(1).clamp(min=1.0)[:, :, None]
        return self.head(pooled.reshape(s.shape[0], -1)).squeeze(-1)


class IntoDdpgPolicy(IntoPolicy):
    """The trained actor phi plus Alg. 1: decide = refine(phi(s)) with the CPU mode it was trained with."""

    method = "into"

    def build(self) -> nn.Module:
        return (DeviceActor if self.per_device else Actor)(list(self.args.actor_hidden))

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The proto-action phi(s) (K_MAX, N + 2) of a padded observation, or (K, N + 2) of per-device rows (no
        refinement: needs the instance)."""
        obs = np.asarray(observation, dtype=np.float32)
        ok = obs.ndim == 2 and obs.shape[1] == DEVICE_DIM if self.per_device else obs.shape == (OBS_DIM,)
        if not ok:
            want = f"(K, {DEVICE_DIM})" if self.per_device else f"({OBS_DIM},)"
            raise ValueError(f"into: observation has shape {obs.shape}, expected {want}")
        with torch.no_grad():
            return self.net(torch.as_tensor(obs)[None])[0].numpy()

    def decision(self, instance: Instance, actions: np.ndarray) -> Decision:
        return decision_from_proto(instance, self.rows(instance, actions), self.args.cpu)[1]


def valid_action(inst: Instance, target: np.ndarray, proto: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The valid action a(t) in proto coordinates on the padded layout (or, with ``rows``, in device order padded
    with zero rows to ``rows``): x, y one-hot, w_hat where the task runs."""
    a = np.zeros((inst.K, A_DIM), dtype=np.float32)
    run = target >= 0
    a[run, 0] = 1.0
    a[np.flatnonzero(run), 1 + target[run]] = 1.0
    a[run, A_DIM - 1] = proto[run, A_DIM - 1]
    if rows is None:
        return pad(inst, a)
    out = np.zeros((rows, A_DIM), dtype=np.float32)
    out[: inst.K] = a
    return out


def train(
    args: Args,
    env_fn: Callable[[], Episodes] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> IntoDdpgPolicy:
    rng = seed_everything(args.seed, "into-ddpg")
    next_seed = train_episode_seeds(KEY, args.seed, "into-ddpg")
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else Episodes(args.preset, args.horizon, "proto", args.cpu)

    policy = IntoDdpgPolicy(args, meta={"preset": args.preset})
    per_device = policy.per_device
    # per-device: slots stored in device order, padded to the preset's largest K (padded: the K_MAX layout slots)
    rows = k_cap(env.preset) if per_device else K_MAX
    s_shape = (rows, DEVICE_DIM) if per_device else (OBS_DIM,)
    actor = policy.net.to(dev)  # Alg. 2 line 1
    actor_t = copy.deepcopy(actor)  # line 2
    critic = (DeepSetsCritic if per_device else Critic)(list(args.critic_hidden)).to(dev)
    critic_t = copy.deepcopy(critic)
    opt_actor = torch.optim.Adam(actor.parameters(), lr=args.lr_actor)
    opt_critic = torch.optim.Adam(critic.parameters(), lr=args.lr_critic)
    rb = ReplayBuffer(  # line 3: replay memory Omega
        args.buffer_size,
        {
            "s": (s_shape, np.float32),
            "a": ((rows, A_DIM), np.float32),
            "r": ((), np.float32),
            "s2": (s_shape, np.float32),
            "m2": ((rows,), np.float32),
            "m": ((rows,), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )

    if args.replay_action not in REPLAY_ACTIONS:
        raise ValueError(f"into: replay_action must be one of {REPLAY_ACTIONS}, got {args.replay_action!r}")

    def update() -> float:
        b = rb.sample(args.batch_size, dev)  # line 9
        with torch.no_grad():  # line 10: rho = r + gamma Q'(s', phi'(s'))
            a2 = actor_t(b["s2"]) * b["m2"][:, :, None]
            rho = b["r"] + args.gamma * (1.0 - b["done"]) * critic_t(b["s2"], a2)
        critic_loss = F.mse_loss(critic(b["s"], b["a"]), rho)  # eq. (19)
        opt_critic.zero_grad()
        critic_loss.backward()
        opt_critic.step()
        actor_loss = -critic(b["s"], actor(b["s"]) * b["m"][:, :, None]).mean()  # eq. (20)
        opt_actor.zero_grad()
        actor_loss.backward()
        opt_actor.step()
        soft_update(critic_t, critic, args.tau)  # eq. (21)
        soft_update(actor_t, actor, args.tau)  # eq. (22)
        return float(critic_loss.item())

    def act(step: int, inst: Instance, obs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        with torch.no_grad():  # line 5: a_hat = phi(s) + eta
            proto = actor(torch.as_tensor(obs[0], device=dev)[None])[0].cpu().numpy()
        return np.clip(proto + rng.normal(0.0, args.explore_sigma, size=proto.shape), 0.0, 1.0)

    def store(inst: Instance, obs: Any, proto: np.ndarray, info: dict, r: float, obs2: Any, done: float) -> None:
        (s, m), (s2, m2) = obs, obs2
        if args.replay_action == "valid" and per_device:
            a = valid_action(inst, np.asarray(info["refined_targets"]), proto[: inst.K], rows)
        elif args.replay_action == "valid":
            a = valid_action(inst, np.asarray(info["refined_targets"]), unpad(inst, proto))
        else:
            a = (proto * m[:, None]).astype(np.float32)
        # line 8; a time-limit end is stored as non-terminal (bootstrapped)
        rb.add(s=s, a=a, r=args.reward_scale * r, s2=s2, m=m, m2=m2, done=done)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    # lines 4-13; Alg. 1 (lines 6-7) runs inside the env on the unpadded proto-action
    if per_device:
        steps = off_policy_loop(
            args, log, DeviceEpisodes(env), next_seed, lambda i: observe_rows(i, rows), act, store, update
        )
    else:
        steps = off_policy_loop(args, log, PaddedEpisodes(env), next_seed, observe, act, store, update)
    log.finish(policy, args.seed, steps, args.total_steps)
    actor.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
