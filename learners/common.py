"""Problem-agnostic pieces shared by every learner: the Policy contract and its checkpoint format, seeding, devices,
a replay buffer, per-agent ("ensemble") networks, Gumbel-softmax, soft target updates and the training log.

Each method lives in its own readable file ``learners/<key>_<method>.py`` (CleanRL style) that defines ``Args``
(parsed with ``tyro``), ``search_space(trial)`` (its Optuna search space, next to ``Args``), a ``TorchPolicy``
subclass and ``train(args, env_fn=None, csv_path=None, progress=True) -> Policy``. What is specific to one problem
(observations built from an instance, the method table, split sizes) lives in ``learners/<key>.py``.

Checkpoint format (``TorchPolicy.save(path)``): ``<path>.pt`` holds the torch ``state_dict`` of the policy network
(actors only for actor-critic methods) and ``<path>.json`` the method module, the ``Args`` dataclass as JSON and
metadata (N, M, preset, training seed, steps, wall time, speed). Both are written atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mecopt.core import InvalidInputError, atomic_write_bytes, atomic_write_text, read_json, seed_sequence, to_json

#: Modules renamed since checkpoints were committed (issue #10: ``<key>_<method>.py``): old header -> new module.
MODULE_ALIASES = {"learners.idql_tolb": "learners.dtomalb_idql_tolb", "learners.dqn_tolb": "learners.dtomalb_dqn_tolb"}


# ----------------------------------------------------------------------------------------------------------------
# Policy contract
# ----------------------------------------------------------------------------------------------------------------
@runtime_checkable
class Policy(Protocol):
    """What every learned (or hand-written) policy offers to the scoring code."""

    name: str

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Actions from the env observation (per-agent rows or the global state)."""
        ...

    def decide(self, instance: Any) -> Any:
        """Decision of one static instance, built from the observation of ``instance``."""
        ...

    def save(self, path: str | Path) -> None: ...


class TorchPolicy:
    """A policy whose network maps observations to per-agent scores over discrete actions; act = argmax.

    Subclasses set ``centralized`` (True: the network reads one global state; False: agent n's network reads its
    own row, decentralized execution) and implement ``build``, ``scores``, ``obs_dim``, ``observation`` and
    ``decision`` (the problem-specific part, usually from a ``learners/<key>.py`` base class).
    """

    centralized: ClassVar[bool] = False
    method: ClassVar[str] = ""

    def __init__(self, args: Any, N: int, M: int, meta: dict[str, Any] | None = None):
        self.args = args
        self.N, self.M = int(N), int(M)
        self.meta: dict[str, Any] = dict(meta or {})
        self.net = self.build()
        self.net.eval()

    @property
    def name(self) -> str:
        return self.method

    @property
    def obs_dim(self) -> int:
        raise NotImplementedError

    def build(self) -> nn.Module:
        raise NotImplementedError

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        """Batched scores: decentralized obs (N, B, d) or centralized obs (B, d) -> (B, N, actions)."""
        raise NotImplementedError

    def observation(self, instance: Any) -> np.ndarray:
        """The env observation of a static instance (what ``act`` reads)."""
        raise NotImplementedError

    def decision(self, instance: Any, actions: np.ndarray) -> Any:
        """The problem's Decision record from the per-agent actions."""
        raise NotImplementedError

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        want = (self.obs_dim,) if self.centralized else (self.N, self.obs_dim)
        if obs.shape != want:
            raise InvalidInputError(f"{self.name}: observation has shape {obs.shape}, expected {want}")
        with torch.no_grad():
            t = torch.as_tensor(obs, device=_net_device(self.net))
            s = self.scores(t[None, :] if self.centralized else t[:, None, :])
        return s[0].argmax(dim=-1).cpu().numpy().astype(np.int64)

    def decide(self, instance: Any) -> Any:
        return self.decision(instance, self.act(self.observation(instance)))

    # -- checkpoints -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        buf = io.BytesIO()
        half = self.meta.get("weights_dtype") == "float16"  # stored in half precision, loaded back as float32
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save({k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}, buf)
        atomic_write_bytes(path.with_suffix(".pt"), buf.getvalue())
        header = {
            "method": self.name,
            "module": type(self).__module__,
            "class": type(self).__name__,
            "N": self.N,
            "M": self.M,
            "args": dataclasses.asdict(self.args),
            "meta": self.meta,
        }
        atomic_write_text(path.with_suffix(".json"), to_json(header))

    @classmethod
    def load(cls, path: str | Path) -> TorchPolicy:
        return load_policy(path)


def _net_device(net: nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def load_policy(path: str | Path) -> TorchPolicy:
    """Load a checkpoint written by :meth:`TorchPolicy.save` (``path`` with or without suffix) onto the CPU.

    Headers written before a module was renamed load through :data:`MODULE_ALIASES`; ``Args`` fields added since
    take their defaults, fields since removed are dropped (kept in ``meta['legacy_args']``)."""
    path = Path(path)
    header = read_json(path.with_suffix(".json"), "checkpoint header")
    try:
        mod = importlib.import_module(MODULE_ALIASES.get(header["module"], header["module"]))
        cls = getattr(mod, header["class"])
        known = {f.name for f in dataclasses.fields(mod.Args)}
        raw = dict(header["args"])
        legacy = {k: v for k, v in raw.items() if k not in known}
        args = mod.Args(**{k: v for k, v in raw.items() if k in known})
        meta = dict(header.get("meta", {}))
        if legacy:
            meta["legacy_args"] = legacy
        pol = cls(args, header["N"], header["M"], meta)
    except (KeyError, TypeError, AttributeError, ModuleNotFoundError) as e:
        raise InvalidInputError(f"checkpoint {path.with_suffix('.json')}: malformed header ({e})") from None
    pt = path.with_suffix(".pt")
    if not pt.exists():
        raise InvalidInputError(f"checkpoint weights not found: {pt}")
    pol.net.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
    pol.net.eval()
    return pol


# ----------------------------------------------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------------------------------------------
def seed_everything(seed: int, *keys: str | int) -> np.random.Generator:
    """Seed torch and return a numpy Generator, both derived from one seed via SeedSequence.

    Also pins torch to one thread (the machine is shared, and one thread keeps CPU runs bit-reproducible).
    """
    ss = seed_sequence(seed, "learners", *keys)
    torch_ss, np_ss = ss.spawn(2)
    torch.set_num_threads(1)
    torch.manual_seed(int(torch_ss.generate_state(1, dtype=np.uint64)[0] % (2**63)))
    return np.random.default_rng(np_ss)


def resolve_device(device: str) -> torch.device:
    """``"cpu"`` (default everywhere) or ``"cuda"``/``"cuda:k"``; a clear error when no GPU is present."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} requested but torch sees no CUDA device")
    if dev.type not in ("cpu", "cuda"):
        raise InvalidInputError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}")
    return dev


def env_seeds(rng: np.random.Generator) -> Callable[[], int]:
    """A stream of episode seeds for ``env.reset(seed=...)`` drawn from ``rng``."""
    return lambda: int(rng.integers(0, 2**31 - 1))


# ----------------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------------
class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul: (K, B, fin) -> (K, B, fout).

    Member k has its own weights, so K agents' networks train exactly as K separate networks (disjoint
    parameters, element-wise Adam) at the cost of one.
    """

    def __init__(self, K: int, fin: int, fout: int):
        super().__init__()
        bound = 1.0 / math.sqrt(fin)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(K, fin, fout).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(K, 1, fout).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def ensemble_mlp(K: int, fin: int, hidden: Sequence[int], fout: int) -> nn.Sequential:
    """K independent MLPs fin -> hidden... -> fout with ReLU, evaluated in parallel."""
    layers: list[nn.Module] = []
    d = fin
    for h in hidden:
        layers += [EnsembleLinear(K, d, h), nn.ReLU()]
        d = h
    layers.append(EnsembleLinear(K, d, fout))
    return nn.Sequential(*layers)


class RowwiseEnsemble(nn.Module):
    """K MLPs fin -> hidden... -> fout, each applied to every row of its input with weights shared across rows:
    (K, B, R * fin) -> (K, B, R * fout) for any number of rows R (the parameter count does not grow with R).

    ``context``: every row also reads the mean of its member's R rows (a DeepSets pooled context), so a row's output
    can depend on the whole set while staying permutation-equivariant."""

    def __init__(self, K: int, fin: int, hidden: Sequence[int], fout: int, context: bool = False):
        super().__init__()
        self.fin, self.fout, self.context = int(fin), int(fout), bool(context)
        self.body = ensemble_mlp(K, fin * (2 if context else 1), hidden, fout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, B, d = x.shape
        R = d // self.fin
        rows = x.reshape(K, B, R, self.fin)
        if self.context:
            rows = torch.cat([rows, rows.mean(2, keepdim=True).expand(K, B, R, self.fin)], dim=-1)
        return self.body(rows.reshape(K, B * R, rows.shape[-1])).reshape(K, B, R * self.fout)


class SharedAgentMLP(nn.Module):
    """One MLP shared by all N agents: (N, B, fin) -> (N, B, fout) for any N, the layout of :func:`ensemble_mlp`
    over agents (so the ensemble DQN helpers take it unchanged). ``context``: every agent also reads the mean of all
    agents' inputs (a pooled global state)."""

    def __init__(self, fin: int, hidden: Sequence[int], fout: int, context: bool = False):
        super().__init__()
        self.rows = RowwiseEnsemble(1, fin, hidden, fout, context)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, B, fin = x.shape
        y = self.rows(x.transpose(0, 1).reshape(1, B, N * fin))  # (1, B, N fout)
        return y.reshape(B, N, -1).transpose(0, 1)


class SetCritic(nn.Module):
    """K DeepSets critics: each of R rows [s_r, a_r] (fs + fa values) is encoded by phi, the codes are averaged over
    the rows and rho maps the mean to one value. Input: the concatenation (K, B, R * fs + R * fa) that a flat critic
    reads ([flattened state, flattened action]); output (K, B, 1). The parameter count does not grow with R."""

    def __init__(self, K: int, fs: int, fa: int, hidden: Sequence[int]):
        super().__init__()
        if len(hidden) < 2:
            raise InvalidInputError("SetCritic needs at least two hidden layers (phi, rho)")
        self.fs, self.fa = int(fs), int(fa)
        self.phi = ensemble_mlp(K, fs + fa, hidden[:-2], hidden[-2])
        self.rho = ensemble_mlp(K, hidden[-2], hidden[-1:], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, B, d = x.shape
        R = d // (self.fs + self.fa)
        s = x[..., : R * self.fs].reshape(K, B, R, self.fs)
        a = x[..., R * self.fs :].reshape(K, B, R, self.fa)
        z = torch.relu(self.phi(torch.cat([s, a], dim=-1).reshape(K, B * R, self.fs + self.fa)))
        return self.rho(z.reshape(K, B, R, -1).mean(2))


def mlp(fin: int, hidden: Sequence[int], fout: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = fin
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, fout))
    return nn.Sequential(*layers)


def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = True) -> torch.Tensor:
    """Gumbel-softmax sample over the last axis (Jang et al. 2017); ``hard``: one-hot forward, soft gradient."""
    u = torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-10)
    y = torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)
    if not hard:
        return y
    one_hot = torch.zeros_like(y).scatter_(-1, y.argmax(dim=-1, keepdim=True), 1.0)
    return one_hot - y.detach() + y  # straight-through estimator


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta' <- tau theta + (1 - tau) theta' (Table 1, line 20)."""
    with torch.no_grad():
        for tp, sp in zip(target.parameters(), source.parameters(), strict=True):
            tp.mul_(1.0 - tau).add_(sp, alpha=tau)


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    return end if t >= duration else start + (end - start) * t / max(duration, 1)


# ----------------------------------------------------------------------------------------------------------------
# Replay buffer
# ----------------------------------------------------------------------------------------------------------------
class ReplayBuffer:
    """Fixed-size FIFO experience replay over named numpy fields (the memory D of Table 1)."""

    def __init__(self, capacity: int, fields: dict[str, tuple[tuple[int, ...], Any]], rng: np.random.Generator):
        if capacity < 1:
            raise InvalidInputError(f"replay buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.data = {k: np.zeros((capacity, *shape), dtype=dt) for k, (shape, dt) in fields.items()}
        self.rng = rng
        self.pos = 0
        self.size = 0

    def add(self, **items: Any) -> None:
        if set(items) != set(self.data):
            raise InvalidInputError(f"replay buffer: expected fields {sorted(self.data)}, got {sorted(items)}")
        for k, v in items.items():
            self.data[k][self.pos] = v
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def __len__(self) -> int:
        return self.size

    def sample(self, batch: int, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, size=batch)
        return {k: torch.as_tensor(v[idx], device=device) for k, v in self.data.items()}


def bootstrap_mask(terminated: bool, truncated: bool) -> float:
    """The ``done`` stored for the TD target: 1 only for a true termination.

    A time-limit end (truncation) whose time is not in the observation keeps the bootstrap term gamma * Q'(s')
    (issue #11, item 4; Pardo et al., "Time Limits in Reinforcement Learning", 2018); the episode still resets.
    """
    del truncated  # a truncation is not a terminal state: the value of s' still counts
    return float(terminated)


# ----------------------------------------------------------------------------------------------------------------
# Training loop helper: progress bar + CSV log
# ----------------------------------------------------------------------------------------------------------------
LOG_FIELDS = ("episode", "global_step", "system_utility", "wall_s")


class TrainingLog:
    """tqdm progress bar over env steps plus one CSV row per episode (written atomically by ``close``).

    ``system_utility`` is the average over agents of the cumulative (undiscounted) episode reward (Fig. 5's y-axis
    for DTOMALB); problem-specific columns (e.g. ``mean_delay_s``) come as keyword extras. The log also times env
    steps and updates separately (``env_timer`` / ``update_timer``) for the env-speed record of issue #11.
    """

    def __init__(self, total_steps: int, desc: str, csv_path: str | Path | None = None, progress: bool = True):
        self.rows: list[dict[str, float]] = []
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.bar = tqdm(total=total_steps, desc=desc, disable=not progress, mininterval=2.0, leave=False)
        self.t0 = time.perf_counter()
        self.env_s = 0.0
        self.update_s = 0.0
        self.env_steps = 0
        self.updates = 0

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def timed_env_step(self, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        self.env_s += time.perf_counter() - t
        self.env_steps += 1
        return out

    def timed_update(self, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        self.update_s += time.perf_counter() - t
        self.updates += 1
        return out

    def episode(self, global_step: int, system_utility: float, **extras: float) -> None:
        row = {
            "episode": len(self.rows),
            "global_step": global_step,
            "system_utility": float(system_utility),
            **{k: float(v) for k, v in extras.items()},
            "wall_s": time.perf_counter() - self.t0,
        }
        self.rows.append(row)
        if len(self.rows) % 20 == 0:
            recent = np.mean([r["system_utility"] for r in self.rows[-20:]])
            self.bar.set_postfix(utility=f"{recent:.3f}")

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def finish(self, policy: TorchPolicy, seed: int, steps: int, total_steps: int) -> list[dict[str, float]]:
        """Record how training ended in the policy's metadata (saved with the checkpoint), then close the log."""
        policy.meta.update(
            {
                "seed": seed,
                "env_steps": steps,
                "stopped_by_time_budget": steps < total_steps,
                "train_wall_s": round(self.elapsed(), 1),
                "updates": self.updates,
                "env_steps_per_s": round(self.env_steps / self.env_s, 1) if self.env_s > 0 else None,
                "updates_per_s": round(self.updates / self.update_s, 1) if self.update_s > 0 else None,
                "time_limit": "truncation (bootstrapped)",
            }
        )
        return self.close()

    def close(self) -> list[dict[str, float]]:
        self.bar.close()
        if self.csv_path is not None:
            write_log_csv(self.csv_path, self.rows)
        return self.rows


def write_log_csv(path: str | Path, rows: list[dict[str, float]]) -> None:
    fields = list(LOG_FIELDS[:-1]) + sorted({k for r in rows for k in r} - set(LOG_FIELDS)) + ["wall_s"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in fields if k in r})
    atomic_write_text(path, buf.getvalue())


def read_log_csv(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def plot_training_curves(curves: dict[str, list[dict[str, float]]], png: str | Path, title: str, window: int = 50):
    """Fig. 5/6-style plot: moving average of the system utility against env steps, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rows in curves.items():
        if not rows:
            continue
        x = np.array([r["global_step"] for r in rows])
        y = np.array([r["system_utility"] for r in rows])
        k = max(1, min(window, len(y)))
        ma = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], ma, label=label)
    ax.set_xlabel("environment steps (slots)")
    ax.set_ylabel(f"system utility (moving avg. {window} ep.)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())


def args_json(args: Any) -> str:
    return json.dumps(dataclasses.asdict(args), sort_keys=True)


# ----------------------------------------------------------------------------------------------------------------
# Command line (tyro, the CleanRL convention: every Args field with its docstring becomes a flag)
# ----------------------------------------------------------------------------------------------------------------
def run_cli(args_cls: type, train_fn: Callable[..., TorchPolicy], description: str) -> None:
    """``python -m learners.<key>_<method> --seed 3 --total-steps 5000 --out ck/x [--log x.csv]``: parse ``Args``
    with tyro (flat flags), train, save the checkpoint."""
    from typing import Annotated

    import tyro

    run_cls = dataclasses.make_dataclass(
        "Run",
        [
            ("args", args_cls),
            ("out", Annotated[str, tyro.conf.arg(help="checkpoint path without suffix")]),
            (
                "log",
                Annotated[str | None, tyro.conf.arg(help="CSV training log path")],
                dataclasses.field(default=None),
            ),
        ],
    )
    run = tyro.cli(run_cls, description=description, config=(tyro.conf.OmitArgPrefixes,))
    train_fn(run.args, csv_path=run.log).save(run.out)


# ----------------------------------------------------------------------------------------------------------------
# Model complexity
# ----------------------------------------------------------------------------------------------------------------
def forward_flops(module: nn.Module, *inputs: Any) -> int:
    """Floating-point operations of one forward pass of ``module`` on ``inputs`` (``torch.utils.flop_counter``:
    2 per multiply-accumulate of the matmuls / linear layers / attention products; element-wise ops not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------------------------------------------
# Shared Args fields and the single-agent off-policy training loop (INTO's DDPG and DDQN; issue #15 item 6)
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunArgs:
    """``Args`` fields every learner has the same way (a method's ``Args`` inherits them; tyro shows them too)."""

    time_budget_s: float | None = None
    """stop training early after this much wall time (None: run all ``total_steps``)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda'); checkpoints are saved and executed on the CPU"""


@dataclasses.dataclass
class EpsilonArgs:
    """The per-branch epsilon-greedy schedule of the branching Q-learners (``linear_schedule``)."""

    eps_start: float = 1.0
    """initial epsilon (per branch)"""
    eps_end: float = 0.05
    """final epsilon"""
    eps_fraction: float = 0.5
    """fraction of ``total_steps`` over which epsilon decays linearly"""


def off_policy_loop(
    args: Any,
    log: TrainingLog,
    env: Any,
    next_seed: Callable[[], int],
    observe: Callable[[Any], Any],
    act: Callable[[int, Any, Any], Any],
    store: Callable[[Any, Any, Any, dict[str, Any], float, Any, float], None],
    update: Callable[[], float],
) -> int:
    """The env-step loop of a single-agent off-policy learner; returns the env steps run.

    ``env.reset(seed) -> state`` and ``env.step(action) -> (state', r, terminated, truncated, info)`` (e.g.
    :class:`learners.into.Episodes`); ``observe(state)`` is the network input, computed once per state;
    ``act(step, state, obs)`` the (exploring) action; ``store(state, obs, action, info, r, obs', done)`` writes the
    transition (``done`` = :func:`bootstrap_mask`: a time-limit end is bootstrapped); ``update()`` one gradient step
    returning its TD loss. Updates run from ``args.learning_starts`` every ``args.train_frequency`` steps; training
    stops after ``args.total_steps`` or ``args.time_budget_s``. Each episode logs its income, the mean reward per
    step (``income_per_slot``) and the mean TD loss of its updates (``td_loss``, NaN before the first update)."""
    state = env.reset(next_seed())
    obs = observe(state)
    ep_income, ep_len, losses = 0.0, 0, []
    step = 0
    for step in range(args.total_steps):
        action = act(step, state, obs)
        state2, r, terminated, truncated, info = log.timed_env_step(lambda a=action: env.step(a))
        obs2 = observe(state2)
        store(state, obs, action, info, r, obs2, bootstrap_mask(terminated, truncated))
        ep_income += r
        ep_len += 1
        state, obs = state2, obs2
        if terminated or truncated:
            td = float(np.mean(losses)) if losses else float("nan")
            log.episode(step + 1, ep_income, income_per_slot=ep_income / ep_len, td_loss=td)
            ep_income, ep_len, losses = 0.0, 0, []
            state = env.reset(next_seed())
            obs = observe(state)
        if step >= args.learning_starts and step % args.train_frequency == 0:
            losses.append(log.timed_update(update))
        log.step()
        if args.time_budget_s is not None and log.elapsed() > args.time_budget_s:
            break
    return step + 1


# ----------------------------------------------------------------------------------------------------------------
# Per-agent DQN on an ensemble network (one member Q_i per agent): the pieces the independent and value-decomposed
# DQN learners share (DJTCRA IDQN / VDN-L / VDN-G, DTOMALB IDQL-TOLB; issue #14 item 6)
# ----------------------------------------------------------------------------------------------------------------
def agent_replay(
    capacity: int, n_agents: int, d_obs: int, rng: np.random.Generator, per_agent_reward: bool = True
) -> ReplayBuffer:
    """Replay memory of joint transitions: observations ``o``/``o2`` (N, d_obs), actions ``a`` (N,), reward ``r``
    per agent (N,) or one team reward (), ``done`` (the :func:`bootstrap_mask`)."""
    return ReplayBuffer(
        capacity,
        {
            "o": ((n_agents, d_obs), np.float32),
            "a": ((n_agents,), np.int64),
            "r": ((n_agents,) if per_agent_reward else (), np.float32),
            "o2": ((n_agents, d_obs), np.float32),
            "done": ((), np.float32),
        },
        rng,
    )


def ensemble_epsilon_greedy(
    q_net: nn.Module, o: np.ndarray, eps: float, n_actions: int, rng: np.random.Generator, device: torch.device
) -> np.ndarray:
    """Every agent's action: argmax_a Q_i(o_i, a) of its ensemble member, or (each agent independently, with
    probability ``eps``) a uniformly random action. ``o``: (N, d_obs)."""
    with torch.no_grad():
        greedy = q_net(torch.as_tensor(o, device=device)[:, None, :])[:, 0, :].argmax(-1).cpu().numpy()
    n = len(greedy)
    explore = rng.random(n) < eps
    return np.where(explore, rng.integers(0, n_actions, size=n), greedy)


def ensemble_dqn_update(
    q_net: nn.Module,
    q_target: nn.Module,
    opt: torch.optim.Optimizer,
    b: dict[str, torch.Tensor],
    gamma: float,
    tau: float,
    decompose: bool = False,
) -> None:
    """One TD step on a batch ``b`` of :func:`agent_replay`, then the soft target update. Independent DQN: per agent
    Q_i(o_i, a_i) against r_i + gamma max_a Q'_i(o'_i, a). ``decompose`` (VDN): Q_tot = sum_i Q_i(o_i, a_i) against
    the team reward R + gamma sum_i max_a Q'_i(o'_i, a)."""
    import torch.nn.functional as F

    with torch.no_grad():
        q2 = q_target(b["o2"].transpose(0, 1)).max(-1).values  # (N, B)
        if decompose:
            y = b["r"] + gamma * (1.0 - b["done"]) * q2.sum(0)  # (B,)
        else:
            y = b["r"].T + gamma * (1.0 - b["done"]) * q2  # (N, B)
    q = q_net(b["o"].transpose(0, 1)).gather(-1, b["a"].T[..., None]).squeeze(-1)  # (N, B)
    loss = F.mse_loss(q.sum(0) if decompose else q, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    soft_update(q_target, q_net, tau)
