"""DTOMALB (Section 4-D, Table 1, Fig. 4): MADDPG with one agent per user, Gumbel-softmax discrete actions.

* Decentralized actors mu_i(o_i): agent i sees o_i = [chi(t) (eq. 21), its own task's features] and outputs logits
  over {local, server 1..M}; execution uses only the actors (argmax).
* Centralized critics Q_i(x, a_1..a_N) (eq. 33-35): x = [chi(t), every user's task features], a_j one-hot.
* Exploration (Table 1, line 10: a_i = mu_i + N_t): a_i = argmax(logits_i + s_t G), G standard Gumbel noise. With
  s_t = 1 this is a Gumbel-softmax (Gumbel-max) sample of mu_i -- the paper setting, which never anneals; the noise
  scale s_t anneals linearly from ``explore_noise_start`` to ``explore_noise_end`` (tuned, issue #11). Note that the
  Gumbel-softmax *temperature* cannot anneal a hard sample: argmax((l + G)/T) = argmax(l + G) for every T.
* Critic target eq. (35): y_i = r_i + gamma Q'_i(x', a'_1..a'_N), a'_j = one-hot argmax mu'_j(o'_j).
* Actor update eq. (34): a_i = Gumbel-softmax(mu_i(o_i)) (straight-through), the other agents' actions from D.
* Soft target updates theta' = tau theta + (1 - tau) theta' (Table 1, line 20).
* Reward: agent i's own R_i = -w1 t_i - w2 var(LD) (eq. 20). ``load_balancing=False`` sets w2 = 0: DTOMA (Fig. 6).
* Episode end: the T-slot time limit is a truncation (the slot index is not observed): the target keeps
  gamma Q'(x', a') there (issue #11, item 4); no DTOMALB state is terminal.

All N actors (and all N critics) are trained in parallel as one "ensemble" network with disjoint per-agent weights,
which is mathematically the same as N separate networks with N separate Adam optimizers.

Run: ``PYTHONPATH=. python -m learners.dtomalb_maddpg [--no-load-balancing] [--total-steps N] [--seed S] --out PATH``
(every ``Args`` field is a flag, tyro). Tuned settings: ``python -m learners.tune dtomalb --method dtomalb``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    gumbel_softmax,
    linear_schedule,
    resolve_device,
    run_cli,
    seed_everything,
    soft_update,
)
from learners.dtomalb import KEY, DtomalbPolicy, global_state
from learners.protocol import train_episode_seeds
from mecopt.envs.dtomalb import DtomalbParallelEnv
from mecopt.problems.dtomalb import PRESETS


@dataclass
class Args:
    """Hyperparameters of DTOMALB/DTOMA. The paper gives none: the defaults are the "paper setting" (untuned) of
    docs/learners.md; ``search_space`` below is what ``learners.tune`` searches."""

    seed: int = 1
    """root seed: torch init, exploration noise, replay sampling and the env episode seeds all derive from it"""
    preset: str = "paper"
    """generator preset of the training env (Table 2: N=10 users, M=5 servers)"""
    n_users: int | None = None
    """override the preset's number of users N (Fig. 7's sweep); None: the preset's N"""
    load_balancing: bool = True
    """True: DTOMALB, reward eq. (20) with the w2 var(LD) penalty; False: DTOMA, w2 = 0 (Fig. 6)"""
    w2: float | None = None
    """w2 of the reward eq. (20) when ``load_balancing``; None: the preset's (D7: 1 s^-2); the Fig. 8 check under
    the `lb-heavy` weight uses 900 (``mecopt.problems.dtomalb.W2_LB_HEAVY``)"""
    total_steps: int = 60_000
    """environment steps (slots t) of training; episode = ``horizon`` slots"""
    horizon: int = 10
    """T, slots per episode (Table 1, line 8)"""
    slot_length_s: float = 1.0
    """time a server works off its backlog between slots (env D3)"""
    gamma: float = 0.9
    """discount gamma of eqs. (24), (32), (35)"""
    tau: float = 0.01
    """soft target update rate tau (Table 1, line 20)"""
    lr_actor: float = 1e-3
    """Adam step size of the actors theta_i"""
    lr_critic: float = 1e-3
    """Adam step size of the critics"""
    batch_size: int = 128
    """S, minibatch size (Table 1, line 15-17)"""
    buffer_size: int = 100_000
    """capacity of the replay memory D (Table 1, line 1)"""
    learning_starts: int = 1_000
    """env steps of pure exploration before the first update"""
    train_frequency: int = 2
    """one critic+actor update of every agent each this many env steps"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden layer widths of actors and critics"""
    gumbel_temperature: float = 1.0
    """temperature of the Gumbel-softmax relaxation in the actor update (eq. 34)"""
    explore_noise_start: float = 1.0
    """scale s of the Gumbel exploration noise at step 0: a = argmax(logits + s G) (1 = a Gumbel-max sample)"""
    explore_noise_end: float = 1.0
    """final noise scale (1 = the paper setting: exploration never anneals)"""
    explore_fraction: float = 0.5
    """fraction of ``total_steps`` over which the noise scale anneals linearly"""
    actor_logit_reg: float = 1e-3
    """L2 penalty on the actor's logits (keeps the relaxation from saturating, as in the MADDPG reference)"""
    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of DTOMALB/DTOMA (issue #11): Args overrides for one trial."""
    width = trial.suggest_categorical("width", [32, 64, 128, 256])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9, 0.99]),
        "lr_actor": trial.suggest_float("lr_actor", 1e-4, 1e-2, log=True),
        "lr_critic": trial.suggest_float("lr_critic", 1e-4, 1e-2, log=True),
        "tau": trial.suggest_float("tau", 3e-3, 0.1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "hidden": [width, width],
        "learning_starts": trial.suggest_categorical("learning_starts", [250, 500, 1000]),
        "gumbel_temperature": trial.suggest_float("gumbel_temperature", 0.3, 3.0, log=True),
        "explore_noise_start": 1.0,
        "explore_noise_end": trial.suggest_float("explore_noise_end", 0.0, 1.0),
        "explore_fraction": trial.suggest_float("explore_fraction", 0.1, 1.0),
        "actor_logit_reg": trial.suggest_float("actor_logit_reg", 1e-4, 1e-2, log=True),
    }


class MaddpgPolicy(DtomalbPolicy):
    """The decentralized actors mu_i(o_i) of DTOMALB/DTOMA; act = argmax of each actor's logits."""

    centralized = False

    @property
    def name(self) -> str:
        return "dtomalb" if self.args.load_balancing else "dtoma"

    def build(self) -> nn.Module:
        return ensemble_mlp(self.N, self.M + 4, self.args.hidden, self.M + 1)

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).transpose(0, 1)  # (N, B, M+1) -> (B, N, M+1)


def make_env(args: Args) -> DtomalbParallelEnv:
    cfg = PRESETS[args.preset] if args.n_users is None else replace(PRESETS[args.preset], N=int(args.n_users))
    return DtomalbParallelEnv(
        cfg,
        horizon=args.horizon,
        slot_length_s=args.slot_length_s,
        objective="delay+lb",
        w2=(None if args.w2 is None else float(args.w2)) if args.load_balancing else 0.0,
    )


def train(
    args: Args,
    env_fn: Callable[[], DtomalbParallelEnv] | None = None,
    csv_path: str | None = None,
    progress: bool = True,
) -> MaddpgPolicy:
    rng = seed_everything(args.seed, "maddpg")
    next_seed = train_episode_seeds(KEY, args.seed, "maddpg")
    dev = resolve_device(args.device)
    env = env_fn() if env_fn is not None else make_env(args)
    agents = env.possible_agents
    N, M = env.slots.N, env.slots.M
    A = M + 1
    d_o, d_x = M + 4, M + 4 * N

    policy = MaddpgPolicy(args, N, M, {"preset": args.preset})
    actor = policy.net.to(dev)
    actor_t = copy.deepcopy(actor)
    critic = ensemble_mlp(N, d_x + N * A, args.hidden, 1).to(dev)  # Q_i(x, a_1..a_N), one per agent
    critic_t = copy.deepcopy(critic)
    opt_actor = torch.optim.Adam(actor.parameters(), lr=args.lr_actor)
    opt_critic = torch.optim.Adam(critic.parameters(), lr=args.lr_critic)
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "x": ((d_x,), np.float32),
            "o": ((N, d_o), np.float32),
            "a": ((N,), np.int64),
            "r": ((N,), np.float32),
            "x2": ((d_x,), np.float32),
            "o2": ((N, d_o), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )
    E = torch.eye(N, device=dev).reshape(N, 1, N, 1)  # E[i, :, j, :] = [i == j]: swaps agent i's own action in eq. (34)

    def update() -> None:
        b = rb.sample(args.batch_size, dev)
        B = args.batch_size
        a_onehot = F.one_hot(b["a"], A).float()  # (B, N, A)
        with torch.no_grad():  # eq. (35): y_i = r_i + gamma Q'_i(x', mu'_1(o'_1), ..., mu'_N(o'_N))
            a2 = F.one_hot(actor_t(b["o2"].transpose(0, 1)).argmax(-1), A).float().transpose(0, 1)  # (B, N, A)
            q2_in = torch.cat([b["x2"], a2.reshape(B, N * A)], dim=1).expand(N, B, d_x + N * A)
            y = b["r"].T + args.gamma * (1.0 - b["done"]) * critic_t(q2_in).squeeze(-1)  # (N, B)
        q_in = torch.cat([b["x"], a_onehot.reshape(B, N * A)], dim=1).expand(N, B, d_x + N * A)
        critic_loss = F.mse_loss(critic(q_in).squeeze(-1), y)  # Table 1, line 17
        opt_critic.zero_grad()
        critic_loss.backward()
        opt_critic.step()

        # eq. (34): grad of Q_i(x, a_1.., a_i = mu_i(o_i), .., a_N) w.r.t. theta_i, other actions from D
        logits = actor(b["o"].transpose(0, 1))  # (N, B, A)
        a_pi = gumbel_softmax(logits, args.gumbel_temperature, hard=True)
        joint = a_onehot[None] * (1.0 - E) + a_pi[:, :, None, :] * E  # (N, B, N, A)
        pi_in = torch.cat([b["x"].expand(N, B, d_x), joint.reshape(N, B, N * A)], dim=2)
        actor_loss = -critic(pi_in).mean() + args.actor_logit_reg * (logits**2).mean()
        opt_actor.zero_grad()
        actor_loss.backward()
        opt_actor.step()
        soft_update(critic_t, critic, args.tau)  # Table 1, line 20
        soft_update(actor_t, actor, args.tau)

    log = TrainingLog(args.total_steps, policy.name, csv_path, progress)
    obs, _ = env.reset(seed=next_seed())
    o = np.stack([obs[ag] for ag in agents])
    x = global_state(env.instance)
    ep_reward, ep_delay, ep_var, ep_len = np.zeros(N), 0.0, 0.0, 0
    anneal = int(args.explore_fraction * args.total_steps)
    step = 0
    for step in range(args.total_steps):
        noise = linear_schedule(args.explore_noise_start, args.explore_noise_end, anneal, step)
        with torch.no_grad():  # Table 1, line 10: a_i = mu_i(o_i) + exploration (scaled Gumbel noise)
            logits = actor(torch.as_tensor(o, device=dev)[:, None, :])[:, 0, :].cpu()
            g = -torch.log(-torch.log(torch.rand(logits.shape).clamp_(1e-10, 1.0 - 1e-10)))
            a = (logits + noise * g).argmax(-1).numpy()
        act = {ag: int(a[n]) for n, ag in enumerate(agents)}
        obs, rew, term, trunc, infos = log.timed_env_step(lambda act=act: env.step(act))
        r = np.array([rew[ag] for ag in agents], dtype=np.float32)
        terminated, truncated = bool(term[agents[0]]), bool(trunc[agents[0]])
        o2 = np.stack([obs[ag] for ag in agents])
        x2 = global_state(env.instance)
        # Table 1, line 13; a time-limit end is stored as non-terminal (bootstrapped)
        rb.add(x=x, o=o, a=a, r=r, x2=x2, o2=o2, done=bootstrap_mask(terminated, truncated))
        info = infos[agents[0]]
        ep_reward += r
        ep_delay += info["mean_delay_s"]
        ep_var += info["var_LD"]
        ep_len += 1
        o, x = o2, x2
        if terminated or truncated:
            log.episode(step + 1, ep_reward.mean(), mean_delay_s=ep_delay / ep_len, var_LD=ep_var / ep_len)
            ep_reward, ep_delay, ep_var, ep_len = np.zeros(N), 0.0, 0.0, 0
            obs, _ = env.reset(seed=next_seed())
            o = np.stack([obs[ag] for ag in agents])
            x = global_state(env.instance)
        if step >= args.learning_starts and step % args.train_frequency == 0:
            log.timed_update(update)
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    log.finish(policy, args.seed, step + 1, args.total_steps)
    actor.to("cpu").eval()
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
