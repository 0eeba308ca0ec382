"""Pieces shared by every learner (and only those): the Policy contract and its checkpoint format, seeding,
a replay buffer, per-agent ("ensemble") networks, Gumbel-softmax, soft target updates and the training log.

Each method lives in its own readable file (CleanRL style) that defines ``Args``, a ``TorchPolicy`` subclass and
``train(args, env_fn) -> Policy``.

Checkpoint format (``TorchPolicy.save(path)``): ``<path>.pt`` holds the torch ``state_dict`` of the policy network
(actors only for actor-critic methods) and ``<path>.json`` the method module, the ``Args`` dataclass as JSON and
metadata (N, M, preset, training seed, steps, wall time). Both are written atomically.
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
from mecopt.envs.dtomalb import observe
from mecopt.problems.dtomalb import Decision, Instance


# ----------------------------------------------------------------------------------------------------------------
# Policy contract
# ----------------------------------------------------------------------------------------------------------------
@runtime_checkable
class Policy(Protocol):
    """What every learned (or hand-written) policy offers to the scoring code."""

    name: str

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Targets a[n] in 0..M of every user from the env observation (per-agent rows or the global state)."""
        ...

    def decide(self, instance: Instance) -> Decision:
        """Decision of one static slot (eqs. 1-2) built from the observation of ``instance``."""
        ...

    def save(self, path: str | Path) -> None: ...


def agent_observations(inst: Instance) -> np.ndarray:
    """Per-agent observations o_n = [chi(t), own task features] (eq. 21 + D9), shape (N, M + 4)."""
    chi, users = observe(inst)
    return np.concatenate([np.broadcast_to(chi, (inst.N, inst.M)), users], axis=1).astype(np.float32)


def global_state(inst: Instance) -> np.ndarray:
    """Global state x = [chi(t), all users' task features] (the centralized env's observation), (M + 4N,)."""
    chi, users = observe(inst)
    return np.concatenate([chi, users.ravel()]).astype(np.float32)


class TorchPolicy:
    """A policy whose network maps observations to per-user scores over {local, 1..M}; act = argmax.

    Subclasses set ``centralized`` (True: the network reads the global state x; False: agent n's network reads its
    own o_n only, the decentralized execution of MADDPG) and implement ``build`` and ``scores``.
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
        return self.M + 4 * self.N if self.centralized else self.M + 4

    def build(self) -> nn.Module:
        raise NotImplementedError

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        """Batched scores: decentralized obs (N, B, M+4) or centralized obs (B, M+4N) -> (B, N, M+1)."""
        raise NotImplementedError

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        want = (self.obs_dim,) if self.centralized else (self.N, self.obs_dim)
        if obs.shape != want:
            raise InvalidInputError(f"{self.name}: observation has shape {obs.shape}, expected {want}")
        with torch.no_grad():
            t = torch.as_tensor(obs)
            s = self.scores(t[None, :] if self.centralized else t[:, None, :])
        return s[0].argmax(dim=-1).numpy().astype(np.int64)

    def observation(self, inst: Instance) -> np.ndarray:
        return global_state(inst) if self.centralized else agent_observations(inst)

    def decide(self, instance: Instance) -> Decision:
        if (instance.N, instance.M) != (self.N, self.M):
            raise InvalidInputError(
                f"{self.name}: policy was trained for N={self.N}, M={self.M}; instance has N={instance.N}, "
                f"M={instance.M}"
            )
        return Decision(a=self.act(self.observation(instance)))

    # -- checkpoints -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        buf = io.BytesIO()
        torch.save(self.net.state_dict(), buf)
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


def load_policy(path: str | Path) -> TorchPolicy:
    """Load a checkpoint written by :meth:`TorchPolicy.save` (``path`` with or without suffix)."""
    path = Path(path)
    header = read_json(path.with_suffix(".json"), "checkpoint header")
    try:
        mod = importlib.import_module(header["module"])
        cls = getattr(mod, header["class"])
        args = mod.Args(**header["args"])
        pol = cls(args, header["N"], header["M"], header.get("meta", {}))
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

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, size=batch)
        return {k: torch.as_tensor(v[idx]) for k, v in self.data.items()}


# ----------------------------------------------------------------------------------------------------------------
# Training loop helper: progress bar + CSV log
# ----------------------------------------------------------------------------------------------------------------
LOG_FIELDS = ("episode", "global_step", "system_utility", "mean_delay_s", "var_LD", "wall_s")


class TrainingLog:
    """tqdm progress bar over env steps plus one CSV row per episode (written atomically by ``close``).

    ``system_utility`` is Fig. 5's y-axis: the average over agents of the cumulative (undiscounted) episode reward.
    """

    def __init__(self, total_steps: int, desc: str, csv_path: str | Path | None = None, progress: bool = True):
        self.rows: list[dict[str, float]] = []
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.bar = tqdm(total=total_steps, desc=desc, disable=not progress, mininterval=2.0, leave=False)
        self.t0 = time.perf_counter()

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def episode(self, global_step: int, system_utility: float, mean_delay_s: float, var_LD: float) -> None:
        row = {
            "episode": len(self.rows),
            "global_step": global_step,
            "system_utility": float(system_utility),
            "mean_delay_s": float(mean_delay_s),
            "var_LD": float(var_LD),
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
            }
        )
        return self.close()

    def close(self) -> list[dict[str, float]]:
        self.bar.close()
        if self.csv_path is not None:
            write_log_csv(self.csv_path, self.rows)
        return self.rows


def write_log_csv(path: str | Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(LOG_FIELDS))
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in LOG_FIELDS})
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
