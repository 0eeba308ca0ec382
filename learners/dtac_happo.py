"""HAPPO (Han et al., Section IV-A baseline; Kuba et al., "Trust Region Policy Optimisation in Multi-Agent
Reinforcement Learning", ICLR 2022): heterogeneous-agent PPO with RNN actors.

* One GRU actor per UE id n < N_MAX (heterogeneous agents: own parameters and own optimizer), local state eq. (24)
  s^n = [n, k, the state of eq. (14)], hidden state carried over the rounds of an episode (reset per episode; a
  single round is decided from h = 0). Hybrid action (eq. 16): x ~ Categorical(p_x), l ~ Categorical(p_l) over the
  instance's L channels, a / b = a_min + (1 - a_min) sigmoid(u), u ~ Normal(mu, std) (always feasible, L2).
* Shared reward eq. (23): every UE gets -(w1 T_t + w2 sum_n E_t^n) (eq. 23 prints the cost; its negation is the
  reward to maximize).
* Centralized critic V(s_g) on the zero-padded global state eq. (25), s_g in R^{8 N_MAX}; GAE(gamma, lambda);
  a time-limit end bootstraps V(s') (issue #11, item 4).
* HAPPO update: agents in a random order; agent i maximizes E[min(r_i M A, clip(r_i) M A)] where M is the product
  of the already-updated agents' probability ratios (the sequential trust-region scheme); UEs absent from an
  episode (N < N_MAX) have no loss there and a ratio of 1.
* Recurrence: PPO epochs re-evaluate each stored step from its stored hidden state (chunk length 1, no BPTT).
* L11 variant (``channel_decode="cell-distinct"``, docs/learners/dtac.md): x, a, b are sampled as above; then in
  each cell the offloading UEs, in decreasing order of their largest p_l (the order of the deterministic decode),
  sample l from their own p_l restricted to the channels not yet taken in the cell, while free channels remain
  (the rest sample from the unrestricted p_l). Agent n's log-probability is that of the restricted categorical it
  sampled from (the excluded channels are stored), so every ratio is exact for the executed action and the
  product of the agents' ratios is the joint ratio. Default ``argmax``: the paper's independent per-UE channel.

Run: ``PYTHONPATH=. python -m learners.dtac_happo --total-steps 2000 --out PATH`` (every Args field is a flag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from learners.common import TrainingLog, mlp, resolve_device, run_cli, seed_everything
from learners.dtac import (
    L_MAX,
    MASKED,
    N_MAX,
    STATE_DIM,
    TRAIN_UE_PER_SERVER,
    RnnActors,
    RnnPolicy,
    cell_distinct_channels,
    check_channel_decode,
    hybrid_decision,
    local_state,
    make_train_env,
    n_params,
    ratio,
    split_head,
)
from learners.dtac_tac import mean_objective, monitor_instances
from learners.protocol import train_episode_seeds
from mecopt.core import InvalidInputError
from mecopt.envs.dtac import DtacEnv
from mecopt.problems.dtac import PRESETS, Instance

KEY = "dtac"
OBS = STATE_DIM + 2


@dataclass
class Args:
    """HAPPO hyperparameters. Defaults = the paper setting: the learning rate of Table II (2e-5, AdamW) for actor
    and critic, the usual PPO constants otherwise (the paper gives none for HAPPO)."""

    seed: int = 1
    """root seed: torch init, action sampling, agent orders, env episodes"""
    preset: str = "tiny"
    """generator preset of the training env"""
    variant: str = "literal"
    """model variant of the training env"""
    ue_per_server: list[int] = field(default_factory=lambda: list(TRAIN_UE_PER_SERVER))
    """UEs per edge server, drawn per episode (variable N)"""
    coverage_m: list[float] = field(default_factory=list)
    """[edge, cloud] coverage radii [m] of the training env (empty: the preset's; Fig. 11's "trained" model: [600,
    800], decision L12)"""
    total_steps: int = 2_000
    """environment steps (rounds)"""
    rounds: int = 10
    """rounds per episode"""
    hidden: int = 64
    """GRU width of each UE's actor"""
    critic_hidden: list[int] = field(default_factory=lambda: [128, 128])
    """hidden widths of the centralized critic V(s_g)"""
    lr_actor: float = 2e-5
    """AdamW learning rate of each actor (Table II)"""
    lr_critic: float = 2e-5
    """AdamW learning rate of the critic (Table II)"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    gamma: float = 0.9
    """discount"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip: float = 0.2
    """PPO clip range"""
    epochs: int = 5
    """PPO epochs per rollout (each agent, sequentially)"""
    rollout: int = 200
    """env steps per rollout"""
    entropy_coef: float = 0.01
    """entropy bonus (Table II's omega_s)"""
    log_std_init: float = 0.0
    """initial log std of the a / b pre-activation Gaussians"""
    ab_init_bias: float = 2.0
    """initial bias of the a / b means (as TAC's)"""
    max_grad_norm: float = 0.5
    """gradient clipping"""
    shared_actor: bool = False
    """L14 variant: one RNN actor shared by every UE id (input eq. 24 with the id n mod 6, so it acts at any N),
    updated by MAPPO's joint clipped objective over all agents (HAPPO's sequential scheme and factor M need
    distinct agents: a departure from heterogeneous agents); default: one actor per UE id n < 6 (the paper's)"""
    channel_decode: str = "argmax"
    """L11: 'argmax' (eq. 16: each UE samples l from its p_l independently; executed: argmax p_l) or the variant
    'cell-distinct' (a cell's offloading UEs sample distinct channels, in order of confidence, while free ones
    remain; executed: the cell-distinct decode) -- used in the sampled training actions and by the saved policy"""
    eval_every: int = 200
    """log the deterministic policy's mean objective on 8 fixed monitor rounds every this many steps"""
    time_budget_s: float | None = None
    """stop training early after this much wall time"""
    device: str = "cpu"
    """torch device (training runs on the CPU)"""


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of HAPPO (issue #11)."""
    return {
        "lr_actor": trial.suggest_float("lr_actor", 1e-4, 3e-3, log=True),
        "lr_critic": trial.suggest_float("lr_critic", 1e-4, 3e-3, log=True),
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9]),
        "entropy_coef": trial.suggest_float("entropy_coef", 1e-4, 3e-2, log=True),
        "rollout": trial.suggest_categorical("rollout", [100, 200, 400]),
        "hidden": trial.suggest_categorical("hidden", [32, 64, 128]),
    }


class HappoPolicy(RnnPolicy):
    method = "happo"


def critic_net(args: Args) -> nn.Module:
    return mlp(OBS * N_MAX, args.critic_hidden, 1)


def channel_dist(lg: torch.Tensor, excl: torch.Tensor | None = None) -> Categorical:
    """The categorical of l from the (..., L_MAX) masked channel logits; ``excl`` (..., L_MAX) bool: the channels
    taken earlier in the UE's cell (L11 cell-distinct sampling), masked out."""
    return Categorical(logits=lg if excl is None else torch.where(excl, MASKED, lg))


def distributions(
    out: torch.Tensor, log_std: torch.Tensor, L: int, excl: torch.Tensor | None = None
) -> tuple[Categorical, Categorical, Normal]:
    """x, l, (a, b) pre-activation distributions of one agent's output (``excl``: see ``channel_dist``)."""
    h = split_head(out, L)
    return Categorical(logits=h["x"]), channel_dist(h["l"], excl), Normal(h["ab"], log_std.exp())


def cell_distinct_sample(inst: Instance, lg: torch.Tensor, x: np.ndarray, l: np.ndarray) -> torch.Tensor:
    """L11 sampling: in each cell the offloading UEs (x >= 1), in decreasing order of their largest p_l (as the
    deterministic cell-distinct decode), sample l from p_l restricted to the channels not yet taken in the cell,
    while free channels remain. ``lg``: (N, L_MAX) masked channel logits; ``l`` (N,) 0-based: the unrestricted
    samples, overwritten in place for the UEs that sample a free channel. Returns the (N, L_MAX) excluded channels
    of each UE's categorical (all False for locals and for offloaders past the cell's L channels)."""
    excl = torch.zeros(lg.shape, dtype=torch.bool)

    def choose(n: int, taken: np.ndarray) -> int:
        excl[n, : inst.L] = torch.as_tensor(taken)
        l[n] = int(channel_dist(lg[n], excl[n]).sample())
        return int(l[n])

    cell_distinct_channels(inst, x, torch.softmax(lg, -1).numpy(), choose)
    return excl


def agent_logp_ent(ag: nn.Module, b: dict[str, torch.Tensor], i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability and entropy of agent slot i's stored actions (x, l with its stored exclusions, u) under
    actor ``ag``, for every step of the rollout ``b`` (channel masks differ per L)."""
    T = b["L"].shape[0]
    Ls = b["L"]
    out, _ = ag(b["obs"][:, i], b["h"][:, i])
    lps, ents = [], []
    for L in torch.unique(Ls).tolist():  # channel masks differ per L
        sel = Ls == L
        dx, dl, du = distributions(out[sel], ag.log_std, int(L), b["excl"][sel, i])  # type: ignore[arg-type]
        lps.append(
            (sel, dx.log_prob(b["x"][sel, i]) + dl.log_prob(b["l"][sel, i]) + du.log_prob(b["u"][sel, i]).sum(-1))
        )
        ents.append((sel, dx.entropy() + dl.entropy() + du.entropy().sum(-1)))
    lp = torch.zeros(T)
    en = torch.zeros(T)
    for sel, x in lps:
        lp = lp.masked_scatter(sel, x)
    for sel, x in ents:
        en = en.masked_scatter(sel, x)
    return lp, en


def train(
    args: Args, env_fn: Callable[[], DtacEnv] | None = None, csv_path: str | None = None, progress: bool = True
) -> HappoPolicy:
    if check_channel_decode(args.channel_decode) == "cell-distinct+power":  # the executed a is the sampled one
        raise InvalidInputError(
            "happo: 'cell-distinct+power' (L13) is a decode, not a sampling rule; train with "
            "'cell-distinct' and decode with 'cell-distinct+power' (with_decode)"
        )
    rng = seed_everything(args.seed, "happo")
    next_seed = train_episode_seeds(KEY, args.seed, "happo")
    resolve_device(args.device)
    env = (
        env_fn()
        if env_fn is not None
        else make_train_env(args.preset, args.variant, args.rounds, args.ue_per_server, tuple(args.coverage_m))
    )
    policy = HappoPolicy(args, N_MAX, PRESETS[args.preset].K, {"preset": args.preset, "any_size": True})
    actors: RnnActors = policy.net  # type: ignore[assignment]
    with torch.no_grad():
        for ag in actors.agents:
            ag.head.bias[-2:] = args.ab_init_bias  # type: ignore[index]
            ag.log_std.fill_(args.log_std_init)  # type: ignore[attr-defined]
    critic = critic_net(args)
    opts = [
        torch.optim.AdamW(ag.parameters(), lr=args.lr_actor, weight_decay=args.weight_decay) for ag in actors.agents
    ]
    opt_c = torch.optim.AdamW(critic.parameters(), lr=args.lr_critic, weight_decay=args.weight_decay)
    H = args.hidden
    monitor = monitor_instances(args.preset, env.variant)
    T = args.rollout
    buf: dict[str, np.ndarray] = {
        "obs": np.zeros((T, N_MAX, OBS), np.float32),
        "h": np.zeros((T, N_MAX, H), np.float32),
        "x": np.zeros((T, N_MAX), np.int64),
        "l": np.zeros((T, N_MAX), np.int64),
        "excl": np.zeros((T, N_MAX, L_MAX), bool),
        "u": np.zeros((T, N_MAX, 2), np.float32),
        "logp": np.zeros((T, N_MAX), np.float32),
        "valid": np.zeros((T, N_MAX), bool),
        "L": np.zeros(T, np.int64),
        "sg": np.zeros((T, OBS * N_MAX), np.float32),
        "r": np.zeros(T, np.float32),
        "v_next": np.zeros(T, np.float32),
        "end": np.zeros(T, bool),
    }

    def global_state(inst: Instance) -> np.ndarray:
        sg = np.zeros((N_MAX, OBS), np.float32)  # eq. (25): zero padding up to N_max
        sg[: inst.N] = local_state(inst)
        return sg.ravel()

    def decide_det(inst: Instance) -> Any:
        return hybrid_decision(inst, *policy.outputs(inst), channel_decode=args.channel_decode)

    def update() -> None:
        b = {k: torch.as_tensor(v) for k, v in buf.items()}
        with torch.no_grad():
            v = critic(b["sg"]).squeeze(-1)
            adv = torch.zeros(T)
            last = torch.tensor(0.0)
            for t in reversed(range(T)):  # GAE; a round-limit end bootstraps V(s') (truncation)
                nxt_v = b["v_next"][t]
                delta = b["r"][t] + args.gamma * nxt_v - v[t]
                last = delta + args.gamma * args.gae_lambda * (0.0 if b["end"][t] else 1.0) * last
                adv[t] = last
            ret = adv + v
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        for _ in range(args.epochs):
            loss_v = ((critic(b["sg"]).squeeze(-1) - ret) ** 2).mean()
            opt_c.zero_grad()
            loss_v.backward()
            nn.utils.clip_grad_norm_(critic.parameters(), args.max_grad_norm)
            opt_c.step()
        if args.shared_actor:  # L14 variant: one actor for every UE id -> MAPPO's joint clipped update (no M)
            ag = actors.agents[0]
            valid_all = b["valid"].float()
            for _ in range(args.epochs):
                surr = torch.zeros(())
                ent = torch.zeros(())
                for i in range(N_MAX):
                    if not bool(b["valid"][:, i].any()):
                        continue
                    lp, en = agent_logp_ent(ag, b, i)
                    r_i = torch.exp(lp - b["logp"][:, i])
                    s1 = r_i * adv
                    s2 = torch.clamp(r_i, 1 - args.clip, 1 + args.clip) * adv
                    surr = surr + (torch.min(s1, s2) * valid_all[:, i]).sum()
                    ent = ent + (en * valid_all[:, i]).sum()
                loss = -(surr + args.entropy_coef * ent) / valid_all.sum()
                opts[0].zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(ag.parameters(), args.max_grad_norm)
                opts[0].step()
            return
        M = torch.ones(T)
        order = rng.permutation(N_MAX)
        for i in order:  # HAPPO: sequential agent updates, M = product of the earlier agents' ratios
            valid = b["valid"][:, i]
            if not bool(valid.any()):
                continue
            ag = actors.agents[int(i)]

            def logp_ent(ag: nn.Module = ag, i: int = int(i)) -> tuple[torch.Tensor, torch.Tensor]:
                return agent_logp_ent(ag, b, i)

            old = b["logp"][:, i]
            for _ in range(args.epochs):
                lp, en = logp_ent()
                r_i = torch.exp(lp - old)
                s1 = r_i * M * adv
                s2 = torch.clamp(r_i, 1 - args.clip, 1 + args.clip) * M * adv
                vf = valid.float()
                loss = -(torch.min(s1, s2) * vf).sum() / vf.sum() - args.entropy_coef * (en * vf).sum() / vf.sum()
                opts[int(i)].zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(ag.parameters(), args.max_grad_norm)
                opts[int(i)].step()
            with torch.no_grad():
                lp, _ = logp_ent()
                M = M * torch.where(valid, torch.exp(lp - old), torch.ones(T))

    log = TrainingLog(args.total_steps, "happo", csv_path, progress)
    env.reset(seed=next_seed())
    h = torch.zeros(1, N_MAX, H)
    ep_obj, ep_len, step, t = 0.0, 0, 0, 0
    for step in range(args.total_steps):
        inst = env.instance
        N, L = inst.N, inst.L
        if N > N_MAX:
            raise ValueError(f"HAPPO: training round has N={N} > N_MAX={N_MAX}")
        obs = np.zeros((N_MAX, OBS), np.float32)
        obs[:N] = local_state(inst)
        with torch.no_grad():
            out, h2 = actors(torch.as_tensor(obs[:N])[None], h[:, :N])
            dists = [distributions(out[0, n], actors.agent(n).log_std, L) for n in range(N)]  # type: ignore[arg-type]
            xs, ls, us = [], [], []
            for dx, dl, du in dists:
                xs.append(dx.sample())
                ls.append(dl.sample())
                us.append(du.sample())
            x_arr = torch.stack(xs).numpy()
            l_arr = torch.stack(ls).numpy()
            lg = split_head(out[0], L)["l"]
            excl = torch.zeros(N, L_MAX, dtype=torch.bool)
            if args.channel_decode == "cell-distinct":  # L11: a cell's offloaders sample distinct channels
                excl = cell_distinct_sample(inst, lg, x_arr, l_arr)
            lp_l = channel_dist(lg, excl).log_prob(torch.as_tensor(l_arr))
            lps = [dx.log_prob(xs[n]) + lp_l[n] + du.log_prob(us[n]).sum() for n, (dx, _, du) in enumerate(dists)]
        u_arr = torch.stack(us).numpy()
        a = ratio(u_arr[:, 0], inst.a_min)
        b_ = ratio(u_arr[:, 1], inst.b_min)
        buf["obs"][t] = obs
        buf["h"][t] = 0.0
        buf["h"][t, :N] = h[0, :N].numpy()
        buf["x"][t] = 0
        buf["x"][t, :N] = x_arr
        buf["l"][t] = 0
        buf["l"][t, :N] = l_arr
        buf["excl"][t] = False
        buf["excl"][t, :N] = excl.numpy()
        buf["u"][t] = 0.0
        buf["u"][t, :N] = u_arr
        buf["logp"][t] = 0.0
        buf["logp"][t, :N] = torch.stack(lps).numpy()
        buf["valid"][t] = False
        buf["valid"][t, :N] = True
        buf["L"][t] = L
        buf["sg"][t] = global_state(inst)
        _, r, _, trunc, _ = log.timed_env_step(
            lambda act={"x": x_arr, "l": l_arr, "a": a, "b": b_}: env.step(act)
        )  # eq. (23): shared reward -(w1 T + w2 sum E)
        buf["r"][t] = r
        buf["end"][t] = bool(trunc)
        with torch.no_grad():
            buf["v_next"][t] = float(critic(torch.as_tensor(global_state(env.instance))[None])[0, 0])
        h = torch.zeros(1, N_MAX, H)
        h[:, :N] = h2
        ep_obj += -r
        ep_len += 1
        if trunc:
            log.episode(step + 1, -ep_obj / ep_len, phase=1.0, eval_objective=float("nan"), stage_loss=float("nan"))
            ep_obj, ep_len = 0.0, 0
            env.reset(seed=next_seed())
            h = torch.zeros(1, N_MAX, H)
        t += 1
        if t == T:
            log.timed_update(update)
            t = 0
        if args.eval_every and (step + 1) % args.eval_every == 0:
            log.episode(
                step + 1,
                float("nan"),
                phase=1.0,
                eval_objective=mean_objective(decide_det, monitor),
                stage_loss=float("nan"),
            )
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    log.finish(policy, args.seed, step + 1, args.total_steps)
    policy.net.eval()
    policy.meta.update(
        {
            "params_actor": n_params(actors),
            "params_actor_per_ue": n_params(actors) // len(actors.agents),
            "params_critic": n_params(critic),
            "ue_per_server": list(args.ue_per_server),
            "decentralized": True,
        }
    )
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
