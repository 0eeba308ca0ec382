"""MAMaxEnt (Sections V-C to V-E, Alg. 1-2, Fig. 3) and MADDPG (Sec. VI-A benchmark 1 = ``--no-entropy``).

* Agents are the edge servers h = 1..H. Actor pi_theta_h reads the local state O^h (eq. 18: the |U| x F feature
  array with the rows of other ESs' users zeroed; features: learners/djtcra.py, decision L1) and outputs a |U| x A
  matrix of logits; a row softmax gives the per-user allocation probabilities a^h (eq. 20, Fig. 3). Execution:
  user u's server is the argmax of row u of the actor of its connected ES (eqs. 21-22); A = |H| (RCS by the D13
  fallback) or |H| + 1 (``rcs='action'``).
* Twin critics Q_psi_h^i(S, A), i = 1, 2, per ES (Alg. 1, line 9), read the system state S (eq. 19, flattened) and
  the system action A (|U| x A, eq. 22). Reward: the system QoE of eq. (23), divided by |U| (a constant scale).
* Critic target (eqs. 30-32, Alg. 1 lines 6-12): Psi = R + gamma (min_i Q'_h^i(S', A') + omega_h S'^h), A' = the
  target actors' executable actions (eq. 21, one-hot), S'^h = the entropy (eq. 32) of the target actor's
  probabilities over ES h's CA users. MADDPG: omega = 0 (eq. 30).
* Actor loss (eq. 33, Alg. 1 lines 15-19): maximise min_i Q_h^i(S, A~_h) + omega_h S~^h, where A~_h takes ES h's rows
  from a straight-through Gumbel-softmax sample of pi_theta_h (so the gradient of eq. 27 flows through the
  probabilities) and the other rows from the other current actors (detached).
* Temperature omega_h (eq. 34, Alg. 1 lines 21-25), trainable, learning rate 1e-3 (Table IV). Eq. (34) as printed,
  omega_h sum_u (sum_h' p log p - 1), has the gradient -sum_u (H_u + 1) < 0 whatever the policy (an entropy can
  never reach the "negative action dimension" target -1), so omega would drift monotonically. We use the SAC form
  the paper cites ([45]): loss = log omega_h (S~^h - target), target = ``target_entropy_ratio`` x log A per CA
  user (Christodoulou's discrete SAC), which raises omega when the entropy falls below the target (decision L2).
* Delays (Table IV): the actors and all target networks update every lambda = 15 critic updates, omega every
  lambda_S = 5. Alg. 1 prints ``t' % lambda_S`` on both lines 13 and 21; the text ("updating omega_h faster than
  the actor", lambda_S < lambda) fixes line 13 to lambda: logged in the checkpoint meta (``delay_note``).
* Soft update with mu = 0.995 (line 20: theta' = mu theta' + (1 - mu) theta); warm-up T_c = ``learning_starts``.
* Exploration (the paper names none besides the entropy): the executed server of each user is sampled from the
  softmax (Gumbel-max, noise scale 1 = exact sampling), the scale annealing linearly to ``explore_noise_end``.
* Episode end: the horizon is a truncation (bootstrapped, issue #11 item 4); no DJTCRA state is terminal.

All H actors (and all 2H critics) are trained in parallel as one ensemble network with disjoint per-agent weights.

Run: ``PYTHONPATH=. python -m learners.djtcra_mamaxent [--no-entropy] [--total-steps N] [--seed S] --out PATH``.
Tuned: ``python -m learners.tune djtcra --method mamaxent`` (or ``maddpg``).
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
    RowwiseEnsemble,
    SetCritic,
    TrainingLog,
    ensemble_mlp,
    gumbel_softmax,
    linear_schedule,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.djtcra import (
    KEY,
    DjtcraArgs,
    DjtcraPolicy,
    ca_of,
    features,
    make_env,
    n_actions,
    n_features,
    train_loop,
)
from learners.protocol import train_episode_seeds
from mecopt.core import InvalidInputError
from mecopt.envs.djtcra import DJTCRAEnv


@dataclass
class Args(DjtcraArgs):
    """Hyperparameters of MAMaxEnt/MADDPG: the fields of every DJTCRA learner (``DjtcraArgs``, learners/djtcra.py)
    and these; Table IV where the paper gives them, documented choices otherwise."""

    entropy: bool = True
    """True: MAMaxEnt (eqs. 31-34); False: MADDPG (eq. 30, no entropy terms)"""
    mu: float = 0.995
    """soft update coefficient mu (Table IV, Alg. 1 line 20)"""
    lr_actor: float = 1e-4
    """learning rate of the actors (Table IV)"""
    lr_critic: float = 1e-4
    """learning rate of the critics (Table IV)"""
    lr_omega: float = 1e-3
    """learning rate of the max-entropy coefficients omega_h (Table IV)"""
    omega_init: float = 0.05
    """initial omega_h (not given in the paper)"""
    target_entropy_ratio: float = 0.5
    """target entropy per CA user = ratio x log A (decision L2; eq. 34 as printed has no fixed point)"""
    actor_delay: int = 15
    """lambda: critic updates per actor + target update (Table IV)"""
    omega_delay: int = 5
    """lambda_S: critic updates per omega update (Table IV)"""
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    """hidden layers of actors and critics (Table IV: 3 x 256, ReLU)"""
    gumbel_temperature: float = 1.0
    """temperature of the straight-through Gumbel-softmax in the actor update"""
    explore_noise_start: float = 1.0
    """scale of the Gumbel exploration noise at step 0 (1 = sample the executed server from the softmax)"""
    explore_noise_end: float = 1.0
    """final scale (linear anneal over ``explore_fraction`` of the steps)"""
    explore_fraction: float = 0.5
    """fraction of ``total_steps`` over which the noise scale anneals"""
    actor_logit_reg: float = 1e-3
    """L2 penalty on the actor's logits"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of MAMaxEnt/MADDPG (the entropy parameters are unused by MADDPG)."""
    width = trial.suggest_categorical("width", [64, 128, 256])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.1, 0.5]),
        "lr_actor": trial.suggest_float("lr_actor", 1e-4, 3e-3, log=True),
        "lr_critic": trial.suggest_float("lr_critic", 1e-4, 3e-3, log=True),
        "actor_delay": trial.suggest_categorical("actor_delay", [1, 2, 5, 15]),
        "mu": trial.suggest_categorical("mu", [0.95, 0.99, 0.995]),
        "hidden": [width] * 3,
        "target_entropy_ratio": trial.suggest_float("target_entropy_ratio", 0.05, 0.8),
        "explore_noise_end": trial.suggest_float("explore_noise_end", 0.0, 1.0),
    }


class MaMaxEntPolicy(DjtcraPolicy):
    """The H actors pi_theta_h(O^h) (Fig. 3); act: each user's row of its connected ES's actor, argmax (eq. 21)."""

    centralized = False

    @property
    def name(self) -> str:
        return "mamaxent" if self.args.entropy else "maddpg"

    @property
    def obs_dim(self) -> int:
        return n_features(self.M)

    def build(self) -> nn.Module:
        if self.per_user:  # L10: ES h's actor applied to each user row, with the mean row of O^h as context
            return RowwiseEnsemble(self.M, self.obs_dim, self.args.hidden, self.n_actions, context=True)
        return ensemble_mlp(self.M, self.N * self.obs_dim, self.args.hidden, self.N * self.n_actions)

    def observation(self, instance: Any) -> np.ndarray:
        return features(instance)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Batched feature arrays (B, U, F) -> every actor's logits (H, B, U, A) on its local state (eq. 18)."""
        B, U, Fd = feats.shape
        mask = F.one_hot(feats[..., : self.M].argmax(-1), self.M).permute(2, 0, 1).to(feats.dtype)  # (H, B, U)
        local = feats[None] * mask[..., None]
        return self.net(local.reshape(self.M, B, U * Fd)).reshape(self.M, B, U, self.n_actions)

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        U = obs.shape[0] if self.per_user and obs.ndim == 2 else self.N
        if obs.shape != (U, self.obs_dim):
            raise InvalidInputError(f"{self.name}: observation has shape {obs.shape}, expected {(U, self.obs_dim)}")
        with torch.no_grad():
            lg = self.logits(torch.as_tensor(obs)[None])[:, 0]  # (H, U, A)
        ca = ca_of(obs, self.M)
        return lg[torch.as_tensor(ca), torch.arange(U)].argmax(-1).numpy().astype(np.int64)


def system_action(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Union of the ESs' actions (eq. 22): row u from the actor of u's ES. probs (H, B, U, A), mask (H, B, U)."""
    return (probs * mask[..., None]).sum(0)


def entropy_per_es(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Action entropy of every ES over its CA users, eq. (32): (H, B)."""
    h = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)  # (H, B, U)
    return (h * mask).sum(-1)


def train(
    args: Args,
    env_fn: Callable[[], DJTCRAEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> MaMaxEntPolicy:
    tag = "mamaxent" if args.entropy else "maddpg"
    rng = seed_everything(args.seed, tag)
    next_seed = train_episode_seeds(KEY, args.seed, tag)
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_env(args.preset, args.rcs, args.horizon, args.n_users)
    U, H = env.config.U, env.config.H
    A, Fd = n_actions(H, args.rcs), n_features(H)
    d_s, d_a = U * Fd, U * A
    policy = MaMaxEntPolicy(
        args,
        U,
        H,
        {
            "preset": args.preset,
            "delay_note": "Alg. 1 prints t' % lambda_S on lines 13 and 21; we update actors every lambda = "
            f"{args.actor_delay} and omega every lambda_S = {args.omega_delay} critic updates "
            "(text: lambda_S < lambda)",
        },
    )
    actor = policy.net.to(dev)
    actor_t = copy.deepcopy(actor)
    if policy.per_user:  # L10: twin DeepSets critics per ES over the rows [S_u, A_u]
        critic: nn.Module = SetCritic(2 * H, Fd, A, args.hidden).to(dev)
    else:  # twin critics per ES: member i * H + h
        critic = ensemble_mlp(2 * H, d_s + d_a, args.hidden, 1).to(dev)
    critic_t = copy.deepcopy(critic)
    log_omega = torch.full((H,), float(np.log(args.omega_init)), device=dev, requires_grad=True)
    opt_actor = torch.optim.Adam(actor.parameters(), lr=args.lr_actor)
    opt_critic = torch.optim.Adam(critic.parameters(), lr=args.lr_critic)
    opt_omega = torch.optim.Adam([log_omega], lr=args.lr_omega)
    tau = 1.0 - args.mu
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "s": ((U, Fd), np.float32),
            "a": ((U,), np.int64),
            "r": ((), np.float32),
            "s2": ((U, Fd), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )

    def masks(s: torch.Tensor) -> torch.Tensor:
        return F.one_hot(s[..., :H].argmax(-1), H).permute(2, 0, 1).float()  # (H, B, U): CA users of each ES

    def local_logits(net: nn.Module, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B = s.shape[0]
        return net((s[None] * mask[..., None]).reshape(H, B, d_s)).reshape(H, B, U, A)  # eq. (18) -> (20)

    def q_min(net: nn.Module, s: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """min over the twin critics of Q_h(S, A_h): s (B, U, F), joint (H, B, U, A) -> (H, B)."""
        B = s.shape[0]
        x = torch.cat([s.reshape(1, B, d_s).expand(H, B, d_s), joint.reshape(H, B, d_a)], dim=2)
        q = net(torch.cat([x, x], dim=0)).squeeze(-1).reshape(2, H, B)
        return q.min(0).values

    n_updates = [0]

    def update() -> None:
        b = rb.sample(args.batch_size, dev)
        B = args.batch_size
        omega = log_omega.exp().detach() if args.entropy else torch.zeros(H, device=dev)
        with torch.no_grad():  # Alg. 1 lines 6-10, eqs. (31)-(32)
            m2 = masks(b["s2"])
            lg2 = local_logits(actor_t, b["s2"], m2)
            p2 = torch.softmax(lg2, -1)
            a2 = F.one_hot(system_action(p2, m2).argmax(-1), A).float()  # executable A'_{t+1} (eq. 21)
            y = b["r"][None] + args.gamma * (1.0 - b["done"][None]) * (
                q_min(critic_t, b["s2"], a2.expand(H, B, U, A)) + omega[:, None] * entropy_per_es(p2, m2)
            )  # (H, B)
        x = torch.cat(
            [
                b["s"].reshape(1, B, d_s).expand(H, B, d_s),
                F.one_hot(b["a"], A).float().reshape(1, B, d_a).expand(H, B, d_a),
            ],
            dim=2,
        )
        q = critic(torch.cat([x, x], dim=0)).squeeze(-1)  # (2H, B)
        critic_loss = F.mse_loss(q, torch.cat([y, y], dim=0))  # eq. (29), Alg. 1 line 11
        opt_critic.zero_grad()
        critic_loss.backward()
        opt_critic.step()
        n_updates[0] += 1
        k = n_updates[0]
        if k % args.actor_delay == 0:  # Alg. 1 lines 13-20 (lambda)
            m = masks(b["s"])
            lg = local_logits(actor, b["s"], m)
            probs = torch.softmax(lg, -1)
            a_pi = gumbel_softmax(lg, args.gumbel_temperature, hard=True)
            others = system_action(a_pi, m).detach()
            joint = m[..., None] * a_pi + (1.0 - m[..., None]) * others[None]  # ES h's rows from pi_h, eq. (33)
            obj = q_min(critic, b["s"], joint) + omega[:, None] * entropy_per_es(probs, m)
            actor_loss = -obj.mean() + args.actor_logit_reg * (lg**2).mean()
            opt_actor.zero_grad()
            actor_loss.backward()
            opt_actor.step()
            soft_update(actor_t, actor, tau)  # Alg. 1 line 20
            soft_update(critic_t, critic, tau)
        if args.entropy and k % args.omega_delay == 0:  # Alg. 1 lines 21-25, eq. (34) in SAC form (L2)
            with torch.no_grad():
                m = masks(b["s"])
                ent = entropy_per_es(torch.softmax(local_logits(actor, b["s"], m), -1), m)  # (H, B)
                target = args.target_entropy_ratio * float(np.log(A)) * m.sum(-1)
            omega_loss = (log_omega[:, None] * (ent - target)).mean()
            opt_omega.zero_grad()
            omega_loss.backward()
            opt_omega.step()

    anneal = int(args.explore_fraction * args.total_steps)

    def act(s: np.ndarray, step: int) -> np.ndarray:  # Alg. 2 lines 2-3: every ES acts on its local state
        noise = linear_schedule(args.explore_noise_start, args.explore_noise_end, anneal, step)
        with torch.no_grad():
            st = torch.as_tensor(s, device=dev)[None]
            lg = local_logits(actor, st, masks(st))[:, 0].cpu()  # (H, U, A)
            row = lg[torch.as_tensor(ca_of(s, H)), torch.arange(U)]  # (U, A)
            g = -torch.log(-torch.log(torch.rand(row.shape).clamp_(1e-10, 1.0 - 1e-10)))
            return (row + noise * g).argmax(-1).numpy()

    def store(s: np.ndarray, a: np.ndarray, rew: float, info: dict[str, Any], s2: np.ndarray, done: float) -> None:
        rb.add(s=s, a=a, r=np.float32(rew / U), s2=s2, done=done)  # Alg. 2 lines 7-9

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    steps = train_loop(env, args, log, next_seed, features, act, store, update)  # Alg. 2 lines 4-6: env.step
    log.finish(policy, args.seed, steps, args.total_steps)
    if args.entropy:
        policy.meta["omega_final"] = [round(float(w), 5) for w in log_omega.exp().detach().cpu()]
    actor.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
