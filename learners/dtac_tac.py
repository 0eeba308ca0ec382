"""TAC, DTAC and TL-transformer (Han et al., Section III, Algorithm 1): one transformer actor-critic file.

Stage ``tac`` (Algorithm 1, lines 1-12; centralized training):

* state eq. (14)/(15): the (N, 6) per-UE states (log features, L1 of ``learners/dtac.py``), server id as the
  position embedding (Fig. 3);
* action eq. (16): A_t = {p_x, p_l, a, b}; executed x = argmax (p_x + noise), l = argmax (p_l + noise), a / b from
  the noisy pre-activations mapped into [a_min, 1] (always feasible, L2); Gaussian noise N(0, v) whose variance
  decays per episode v <- v eps (Algorithm 1, lines 4 and 12);
* vector reward eq. (17): r_t = {-w1 tau_n, -w2 E_n} (the per-UE entries of the norm in eq. 12 and the per-UE
  energies of eq. 7, ``info["vector_reward"]`` of the env); the critic outputs per-UE Q = (Q1, Q2) ~ costs
  (w1 tau_n, w2 E_n) (the negated reward, so the actor *minimizes*);
* critic loss eq. (18): MSE between Q(s, A) and the immediate vector reward (no bootstrapping: the paper's critic
  regresses r_t);
* actor loss eq. (19): max_n Q1 + sum_n Q2 - omega_s sum_n entropy(p_x^n, p_l^n) with A = pi(s) (the weights
  w1, w2 are already inside the regressed costs), through the frozen-for-this-step critic.

Stage ``dtac`` (Algorithm 1, lines 13-19): a copy of the converged TAC actor with the attention replaced by the
identity (eq. 21), retrained with eq. (22) (= eq. 19 with the decentralized actions A'_t) against the frozen TAC
critic on the states of the replay memory.

Stage ``tl-transformer`` (Section IV-A): the same decentralized copy, trained instead by MSE to TAC's actions,
eq. (26).

Every stage runs the centralized TAC training first (same seed, same TAC ``Args`` -> the same teacher); the
executed policy of ``dtac`` / ``tl-transformer`` uses only each UE's own state (identity attention; per-token
layers). Run: ``PYTHONPATH=. python -m learners.dtac_tac --stage dtac --total-steps 2000 --out PATH``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from learners.common import ReplayBuffer, TrainingLog, resolve_device, run_cli, seed_everything, write_log_csv
from learners.dtac import (
    ACTION_DIM,
    KEY,
    L_MAX,
    MASKED,
    N_MAX,
    STATE_DIM,
    TRAIN_UE_PER_SERVER,
    DtacPolicy,
    TransformerNet,
    features,
    hybrid_decision,
    make_train_env,
    n_params,
    ratio,
    split_head,
    transformer_policy_outputs,
)
from learners.protocol import train_episode_seeds
from mecopt.core import InvalidInputError, atomic_write_bytes, make_rng, read_json, results_dir, to_json
from mecopt.envs.dtac import DtacEnv
from mecopt.problems.dtac import PRESETS, VARIANTS, Instance, evaluate, generate

STAGES = ("tac", "dtac", "tl-transformer")


@dataclass
class Args:
    """TAC / DTAC / TL-transformer hyperparameters. Defaults = the paper setting (Table II: AdamW, learning rate
    2e-5, entropy coefficient omega_s = 0.01); the transformer sizes match Table IV's budgets (~8.2k actor, ~8.5k
    critic parameters; the paper gives no layer sizes)."""

    seed: int = 1
    """root seed: torch init, noise, replay sampling, env episodes"""
    stage: str = "tac"
    """'tac' (centralized), 'dtac' (eq. 21 + eq. 22), 'tl-transformer' (eq. 21 + MSE eq. 26)"""
    preset: str = "tiny"
    """generator preset of the training env (the number of UEs per server is ``ue_per_server``)"""
    variant: str = "literal"
    """model variant of the training env (the default: physically consistent eqs. 5 and 12)"""
    ue_per_server: list[int] = field(default_factory=lambda: list(TRAIN_UE_PER_SERVER))
    """UEs per edge server, drawn per episode (variable N, Fig. 11)"""
    coverage_m: list[float] = field(default_factory=list)
    """[edge, cloud] coverage radii [m] of the training env (empty: the preset's; Fig. 11's "trained" model of
    the larger coverage: [600, 800])"""
    total_steps: int = 2_000
    """environment steps (rounds) of the centralized TAC training"""
    rounds: int = 10
    """rounds per episode (Algorithm 1's L)"""
    d_model: int = 32
    """transformer width (actor and critic)"""
    heads: int = 4
    """attention heads"""
    layers: int = 1
    """encoder layers (actor and critic)"""
    ff_actor: int = 44
    """feed-forward width of the actor's encoder layer (44: 8.15k actor parameters, Table IV: 8.17k)"""
    ff_critic: int = 48
    """feed-forward width of the critic's encoder layer (48: 8.47k critic parameters, Table IV: 8.52k)"""
    lr_actor: float = 2e-5
    """AdamW learning rate of the actor (Table II)"""
    lr_critic: float = 2e-5
    """AdamW learning rate of the critic (Table II)"""
    weight_decay: float = 0.01
    """AdamW weight decay (torch default)"""
    entropy_coef: float = 0.01
    """omega_s of eq. (19) (Table II)"""
    ab_init_bias: float = 2.0
    """initial bias of the a / b pre-activations (2: a = b ~ 0.88 at start; the paper gives no initialisation)"""
    log_targets: bool = True
    """L4: the critic regresses log(1 + cost) (exploration with small a gives uplink times up to 1e3 s, which an MSE
    on raw costs cannot fit); the actor loss (19) is evaluated on expm1(Q), the cost scale"""
    batch_size: int = 64
    """experiences per update"""
    buffer_size: int = 20_000
    """replay memory capacity"""
    learning_starts: int = 200
    """env steps before the first update"""
    train_frequency: int = 2
    """one gradient update (critic + actor) every this many env steps (Algorithm 1's U = rounds / train_frequency
    updates per episode)"""
    noise_var: float = 0.25
    """initial variance v of the Gaussian exploration noise on p_x, p_l (Algorithm 1, line 4)"""
    noise_decay: float = 0.99
    """per-episode decay eps of the noise variance, v <- v eps (Algorithm 1, line 12)"""
    ab_noise_scale: float = 4.0
    """the noise on the a / b pre-activations is this many times the noise on the probabilities"""
    channel_decode: str = "argmax"
    """L11: 'argmax' (eq. 16: each UE's argmax p_l) or the variant 'cell-distinct' (a cell's offloading UEs get
    distinct channels, in order of confidence) -- used in the exploration decisions and by the saved policy"""
    tl_updates: int = 2_000
    """gradient steps of the decentralized stage (eq. 22 or eq. 26) on the replay memory's states"""
    lr_tl: float = 2e-5
    """AdamW learning rate of the decentralized stage (Table II's learning rate)"""
    tl_entropy_coef: float = 0.01
    """omega_s of eq. (22) in the decentralized stage (Table II)"""
    tl_batch_size: int = 64
    """states per update of the decentralized stage"""
    eval_every: int = 200
    """log the deterministic policy's mean objective on 8 fixed monitor rounds every this many steps / updates"""
    time_budget_s: float | None = None
    """stop training early after this much wall time"""
    device: str = "cpu"
    """torch device of training; checkpoints run on the CPU"""


#: Args fields of the decentralized stages (not part of the centralized TAC training, the teacher)
STAGE_FIELDS = ("stage", "tl_updates", "lr_tl", "tl_entropy_coef", "tl_batch_size", "time_budget_s", "device")
#: bump when the centralized training changes: cached teachers of older code are then not reused
TEACHER_VERSION = 1


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of TAC (issue #11): the centralized training's parameters."""
    return {
        "lr_actor": trial.suggest_float("lr_actor", 1e-4, 3e-3, log=True),
        "lr_critic": trial.suggest_float("lr_critic", 1e-4, 3e-3, log=True),
        "entropy_coef": trial.suggest_float("entropy_coef", 1e-4, 3e-2, log=True),
        "noise_var": trial.suggest_float("noise_var", 0.01, 0.5, log=True),
        "noise_decay": trial.suggest_categorical("noise_decay", [0.97, 0.99, 0.995]),
        "ab_noise_scale": trial.suggest_float("ab_noise_scale", 0.25, 4.0, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
    }


def tuned_teacher_overrides(tuning: str = "tuning") -> dict[str, Any]:
    """TAC's tuned parameters (``results/dtac/<tuning>/tac.json``) if TAC was tuned, else none (the paper setting):
    the decentralized methods (dtac, tl-transformer, tl) learn from the TAC teacher at TAC's tuned parameters.

    A study folder other than the committed ``tuning`` (e.g. ``tuning_cd``, L11) must hold its own TAC study: its
    decentralized studies learn from that TAC (tune ``tac`` there first), never silently from another one."""
    path = results_dir() / KEY / tuning / "tac.json"
    if not path.exists():
        if tuning != "tuning":
            raise InvalidInputError(
                f"{KEY}: no TAC study in {path.parent} (python -m learners.tune dtac --method tac --tuning {tuning})"
            )
        return {}
    return {k: v for k, v in dict(read_json(path, "tuning result")["args"]).items() if k not in STAGE_FIELDS}


def actor_net(args: Args) -> TransformerNet:
    net = TransformerNet(STATE_DIM, ACTION_DIM, args.d_model, args.heads, args.ff_actor, args.layers)
    with torch.no_grad():
        net.head.bias[3 + L_MAX :] = float(getattr(args, "ab_init_bias", 0.0))
    return net


def critic_net(args: Args) -> TransformerNet:
    return TransformerNet(STATE_DIM + ACTION_DIM, 2, args.d_model, args.heads, args.ff_critic, args.layers)


class TacPolicy(DtacPolicy):
    """The transformer actor; ``decentralized`` (dtac, tl-transformer): identity attention, eq. (21)."""

    centralized = True

    @property
    def name(self) -> str:
        return str(self.args.stage)

    @property
    def obs_dim(self) -> int:
        return STATE_DIM

    def build(self) -> nn.Module:
        if self.args.stage not in STAGES:
            raise InvalidInputError(f"{KEY}: unknown stage {self.args.stage!r}; choose from {STAGES}")
        net = actor_net(self.args)
        net.set_identity_attention(self.args.stage != "tac")
        return net

    def outputs(self, inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return transformer_policy_outputs(self.net, inst)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------------
# Batched helpers
# ----------------------------------------------------------------------------------------------------------------
def action_vector(out: torch.Tensor, mask: torch.Tensor, a_min: float, b_min: float) -> dict[str, torch.Tensor]:
    """Network output -> p_x, p_l (softmax), a, b (ratios) and A = [p_x, p_l, a, b] (eq. 16)."""
    h = split_head(out, mask)
    px = torch.softmax(h["x"], -1)
    pl = torch.softmax(h["l"], -1)
    a = ratio(h["ab"][..., 0:1], a_min)
    b = ratio(h["ab"][..., 1:2], b_min)
    return {"px": px, "pl": pl, "A": torch.cat([px, pl, a, b], dim=-1), "lx": h["x"], "ll": h["l"]}


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits); masked logits (MASKED, finite) contribute exactly 0 with a finite gradient."""
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def masks_for(L: torch.Tensor) -> torch.Tensor:
    """(B,) channel counts -> (B, 1, L_MAX) additive masks."""
    idx = torch.arange(L_MAX, device=L.device)
    return torch.where(idx[None, :] < L[:, None], 0.0, MASKED)[:, None, :]


def actor_loss(
    critic: TransformerNet,
    f: torch.Tensor,
    srv: torch.Tensor,
    pad: torch.Tensor,
    act: dict[str, torch.Tensor],
    ent: float,
    log_targets: bool = True,
) -> torch.Tensor:
    """Eq. (19) / (22): max_n Q1 + sum_n Q2 - omega_s sum_n S[pi], batch mean (padded UEs excluded)."""
    q = critic(torch.cat([f, act["A"]], -1), srv, pad)
    if log_targets:
        q = torch.expm1(q)
    q1 = q[..., 0].masked_fill(pad, float("-inf")).max(-1).values
    q2 = q[..., 1].masked_fill(pad, 0.0).sum(-1)
    h = (entropy(act["lx"]) + entropy(act["ll"])).masked_fill(pad, 0.0).sum(-1)
    return (q1 + q2 - ent * h).mean()


def monitor_instances(preset: str, variant_over: dict[str, str], n: int = 8) -> list[Instance]:
    """Fixed rounds (not a protocol split) on which training logs the deterministic policy's objective."""
    out = [generate(PRESETS[preset], make_rng(2026, "dtac-learners", "monitor", preset, k)) for k in range(n)]
    return [i.replace(**variant_over) for i in out] if variant_over else out


def mean_objective(decide: Callable[[Instance], Any], insts: list[Instance]) -> float:
    return float(np.mean([evaluate(i, decide(i)).objective for i in insts]))


# ----------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Teacher:
    """The centralized TAC model after training, its replay memory (what the decentralized stages learn from),
    its training log rows and counters."""

    actor: TransformerNet
    critic: TransformerNet
    data: dict[str, np.ndarray]
    rows: list[dict[str, float]]
    steps: int
    meta: dict[str, Any]


def train_tac(args: Args, env_fn: Callable[[], DtacEnv] | None = None, progress: bool = False) -> Teacher:
    """Algorithm 1, lines 1-12: centralized training of the TAC actor and critic (with its replay memory)."""
    rng = seed_everything(args.seed, "tac")
    next_seed = train_episode_seeds(KEY, args.seed, "tac")
    resolve_device(args.device)
    dev = torch.device("cpu")  # ~8k-parameter networks: training runs on the CPU
    env = (
        env_fn()
        if env_fn is not None
        else make_train_env(args.preset, args.variant, args.rounds, args.ue_per_server, tuple(args.coverage_m))
    )
    n_pad = max(N_MAX, env.cfg.K * max(env.cfg.ue_per_server))
    actor = actor_net(args).to(dev)
    critic = critic_net(args).to(dev)
    opt_a = torch.optim.AdamW(actor.parameters(), lr=args.lr_actor, weight_decay=args.weight_decay)
    opt_c = torch.optim.AdamW(critic.parameters(), lr=args.lr_critic, weight_decay=args.weight_decay)
    rb = ReplayBuffer(
        args.buffer_size,
        {
            "f": ((n_pad, STATE_DIM), np.float32),
            "srv": ((n_pad,), np.int64),
            "pad": ((n_pad,), np.bool_),
            "A": ((n_pad, ACTION_DIM), np.float32),
            "cost": ((n_pad, 2), np.float32),
            "L": ((), np.int64),
        },
        rng,
    )
    a_min, b_min = env.cfg.a_min, env.cfg.b_min
    monitor = monitor_instances(args.preset, env.variant)
    noise_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))

    def update() -> None:
        b = rb.sample(args.batch_size, dev)
        mask = masks_for(b["L"])
        q = critic(torch.cat([b["f"], b["A"]], -1), b["srv"], b["pad"])
        valid = (~b["pad"]).float()[..., None]
        target = torch.log1p(b["cost"]) if args.log_targets else b["cost"]
        loss_c = (((q - target) ** 2) * valid).sum() / valid.sum()  # eq. (18) (L4: log targets)
        opt_c.zero_grad()
        loss_c.backward()
        opt_c.step()
        act = action_vector(actor(b["f"], b["srv"], b["pad"]), mask, a_min, b_min)
        loss_a = actor_loss(critic, b["f"], b["srv"], b["pad"], act, args.entropy_coef, args.log_targets)  # (19)
        opt_a.zero_grad()
        loss_a.backward()
        opt_a.step()

    def greedy_decide(inst: Instance) -> Any:
        px, pl, a, b = transformer_policy_outputs(actor, inst)
        return hybrid_decision(inst, px, pl, a, b, args.channel_decode)

    log = TrainingLog(args.total_steps, "tac", None, progress)
    env.reset(seed=next_seed())
    v = args.noise_var
    ep_obj, ep_len, step = 0.0, 0, 0
    for step in range(args.total_steps):
        inst = env.instance
        N, L = inst.N, inst.L
        f = features(inst)
        with torch.no_grad():  # Algorithm 1, lines 3-4: deterministic argmax of noisy probabilities
            srv_t = torch.as_tensor(np.array(inst.server), device=dev)[None]
            out = actor(torch.as_tensor(f, device=dev)[None], srv_t)[0].cpu()
            h = split_head(out, L)
            sd = float(np.sqrt(v))
            px = torch.softmax(h["x"], -1) + sd * torch.randn(N, 3, generator=noise_gen)
            pl = torch.softmax(h["l"], -1)
            pl[:, :L] += sd * torch.randn(N, L, generator=noise_gen)
            ab = h["ab"] + args.ab_noise_scale * sd * torch.randn(N, 2, generator=noise_gen)
            a, b_ = ratio(ab[:, 0], a_min), ratio(ab[:, 1], b_min)
        dec = hybrid_decision(inst, px.numpy(), pl.numpy(), a.numpy(), b_.numpy(), args.channel_decode)
        _, r, _, trunc, info = log.timed_env_step(
            lambda dec=dec: env.step({"x": dec.x, "l": dec.l - 1, "a": dec.a, "b": dec.b})
        )
        cost = -np.asarray(info["vector_reward"]).reshape(2, N).T  # eq. (17), negated: (w1 tau_n, w2 E_n)
        fp = np.zeros((n_pad, STATE_DIM), np.float32)
        fp[:N] = f
        srv = np.zeros(n_pad, np.int64)
        srv[:N] = inst.server
        pad = np.ones(n_pad, bool)
        pad[:N] = False
        A = np.zeros((n_pad, ACTION_DIM), np.float32)
        A[:N] = torch.cat([px, pl, a[:, None], b_[:, None]], -1).numpy()
        cp = np.zeros((n_pad, 2), np.float32)
        cp[:N] = cost
        rb.add(f=fp, srv=srv, pad=pad, A=A, cost=cp, L=L)  # Algorithm 1, line 5
        ep_obj += -r
        ep_len += 1
        if trunc:
            log.episode(step + 1, -ep_obj / ep_len, phase=1.0, eval_objective=float("nan"))
            ep_obj, ep_len = 0.0, 0
            v *= args.noise_decay  # Algorithm 1, line 12
            env.reset(seed=next_seed())
        if step >= args.learning_starts and step % args.train_frequency == 0:
            log.timed_update(update)
        if args.eval_every and (step + 1) % args.eval_every == 0:
            m = mean_objective(greedy_decide, monitor)
            log.episode(step + 1, float("nan"), phase=1.0, eval_objective=m)
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    log.close()
    meta = {
        "teacher_wall_s": round(log.elapsed(), 1),
        "updates": log.updates,
        "env_steps_per_s": round(log.env_steps / log.env_s, 1) if log.env_s > 0 else None,
        "updates_per_s": round(log.updates / log.update_s, 1) if log.update_s > 0 else None,
    }
    data = {k: v[: rb.size].copy() for k, v in rb.data.items()}
    return Teacher(actor.cpu().eval(), critic.cpu().eval(), data, log.rows, step + 1, meta)


def teacher_key(args: Args) -> str:
    """Hash of everything the centralized training depends on (not the decentralized stage's fields)."""
    d = {f.name: getattr(args, f.name) for f in fields(Args) if f.name not in STAGE_FIELDS}
    blob = to_json({"version": TEACHER_VERSION, "args": d})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def teacher_cache_dir() -> Path:
    return Path(os.environ.get("MECOPT_DTAC_TEACHERS", Path(tempfile.gettempdir()) / "mecopt-dtac-teachers"))


def get_teacher(args: Args, env_fn: Callable[[], DtacEnv] | None = None, progress: bool = False) -> Teacher:
    """The TAC teacher of ``args`` (seed + TAC fields): trained once, then reused from a cache on disk
    (``$MECOPT_DTAC_TEACHERS`` or the temp dir), so tac / dtac / tl-transformer / tl of one seed share one teacher."""
    path = teacher_cache_dir() / f"{teacher_key(args)}.pt"
    if env_fn is None and path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=False)
        actor, critic = actor_net(args), critic_net(args)
        actor.load_state_dict(blob["actor"])
        critic.load_state_dict(blob["critic"])
        return Teacher(actor.eval(), critic.eval(), blob["data"], blob["rows"], blob["steps"], blob["meta"])
    t = train_tac(args, env_fn, progress)
    if env_fn is None:
        buf = io.BytesIO()
        torch.save(
            {
                "actor": t.actor.state_dict(),
                "critic": t.critic.state_dict(),
                "data": t.data,
                "rows": t.rows,
                "steps": t.steps,
                "meta": t.meta,
            },
            buf,
        )
        atomic_write_bytes(path, buf.getvalue())
    return t


def train_decentralized(args: Args, t: Teacher, monitor: list[Instance], log: list[dict[str, float]]) -> TransformerNet:
    """Algorithm 1, lines 13-19 (eq. 21 + eq. 22) or the TL-transformer baseline (eq. 21 + eq. 26)."""
    rng = seed_everything(args.seed, "tl-stage", args.stage)
    student = copy.deepcopy(t.actor)  # line 14
    student.set_identity_attention(True)  # line 15, eq. (21)
    teacher, critic = t.actor, t.critic
    for p in [*critic.parameters(), *teacher.parameters()]:
        p.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr_tl, weight_decay=args.weight_decay)
    a_min, b_min = (monitor[0].a_min, monitor[0].b_min) if monitor else (1e-3, 1e-3)
    size = len(t.data["L"])
    t0 = time.perf_counter()
    for k in range(args.tl_updates):
        idx = rng.integers(0, size, size=args.tl_batch_size)
        b = {key: torch.as_tensor(v[idx]) for key, v in t.data.items()}
        mask = masks_for(b["L"])
        act = action_vector(student(b["f"], b["srv"], b["pad"]), mask, a_min, b_min)
        if args.stage == "dtac":
            loss = actor_loss(critic, b["f"], b["srv"], b["pad"], act, args.tl_entropy_coef, args.log_targets)  # (22)
        else:
            with torch.no_grad():
                target = action_vector(teacher(b["f"], b["srv"], b["pad"]), mask, a_min, b_min)["A"]
            valid = (~b["pad"]).float()[..., None]
            loss = (((act["A"] - target) ** 2) * valid).sum() / valid.sum()  # eq. (26)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if args.eval_every and ((k + 1) % args.eval_every == 0 or k == 0):

            def dec(inst: Instance) -> Any:
                return hybrid_decision(inst, *transformer_policy_outputs(student, inst), args.channel_decode)

            log.append(
                {
                    "episode": float(len(log)),
                    "global_step": float(t.steps + k + 1),
                    "system_utility": float("nan"),
                    "phase": 2.0,
                    "eval_objective": mean_objective(dec, monitor),
                    "stage_loss": float(loss.detach()),
                    "wall_s": time.perf_counter() - t0,
                }
            )
        if args.time_budget_s is not None and time.perf_counter() - t0 > args.time_budget_s:
            break
    return student


def train(
    args: Args, env_fn: Callable[[], DtacEnv] | None = None, csv_path: str | None = None, progress: bool = True
) -> TacPolicy:
    """Train one stage; ``dtac`` / ``tl-transformer`` first get (or reuse) the TAC teacher of the same seed."""
    if args.stage not in STAGES:
        raise InvalidInputError(f"{KEY}: unknown stage {args.stage!r}; choose from {STAGES}")
    resolve_device(args.device)  # training runs on the CPU (tiny networks); the flag is validated only
    t0 = time.perf_counter()
    t = get_teacher(args, env_fn, progress)
    rows = [{**r, "stage_loss": float("nan")} for r in t.rows]
    policy = TacPolicy(args, N_MAX, PRESETS[args.preset].K, {"preset": args.preset, "any_size": True})
    net = t.actor
    if args.stage != "tac":
        net = train_decentralized(args, t, monitor_instances(args.preset, dict(VARIANTS[args.variant])), rows)
    policy.net.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
    policy.net.eval()
    if csv_path is not None:
        write_log_csv(csv_path, rows)
    policy.meta.update(
        {
            "seed": args.seed,
            "env_steps": t.steps,
            "stopped_by_time_budget": t.steps < args.total_steps,
            "train_wall_s": round(time.perf_counter() - t0, 1),
            **t.meta,
            "tl_updates": args.tl_updates if args.stage != "tac" else 0,
            "params_actor": n_params(t.actor),
            "params_critic": n_params(t.critic),
            "ue_per_server": list(args.ue_per_server),
            "decentralized": args.stage != "tac",
        }
    )
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
