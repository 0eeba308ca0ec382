"""DTAC's learner suite (Han et al., Sections III-IV): state features, the hybrid action mapping, the transformer
blocks shared by TAC / DTAC / TL-transformer, the method table and the protocol settings of ``learners.train`` /
``learners.tune``.

Methods (one file each, CleanRL style):

* ``tac``: centralized transformer actor-critic, eqs. (14)-(19), Algorithm 1 lines 1-12 (``learners/dtac_tac.py``);
* ``dtac``: TAC, then attention replaced by the identity (eq. 21) and the actor retrained against the frozen critic
  (eq. 22), Algorithm 1 lines 13-19 (``learners/dtac_dtac.py``: TAC's ``Args``/``train``, ``stage="dtac"``);
* ``tl-transformer``: TAC's decentralized (identity-attention) actor trained by MSE on TAC's actions, eq. (26)
  (``learners/dtac_dtac.py``, ``stage="tl-transformer"``);
* ``tl``: HAPPO's RNN actor trained by MSE on TAC's actions, eq. (26) (``learners/dtac_tl.py``);
* ``happo``: HAPPO with RNN actors, shared reward eq. (23), local state eq. (24), zero-padded global state eq. (25)
  (``learners/dtac_happo.py``). ``random`` stays a heuristic (``solvers/heuristics/dtac.py``).

Choices the paper leaves open (docs/learners/dtac.md lists them with reasons):

* L1 features: the state of eq. (14) spans ~20 orders of magnitude (received power ~1e-12 W, times 1e-3..1e2 s),
  so the networks read log10 of each entry (times floored at 1e-6 s); the raw state is what the env returns.
* L2 hybrid action (eq. 16): per UE, logits over x in {0,1,2} and over L_MAX channels (channels >= L masked), and
  two pre-activations mapped to a = a_min + (1 - a_min) sigmoid(.), b likewise: every output is a feasible decision
  of problem (13) (D3 closes (0,1] to [a_min, 1]), whatever the weights or the noise.
* L3 training distribution: the ``tiny`` preset (K = 2 edge servers, L = 2 channels) with a variable number of UEs
  per server, 1..3 (N = 2..6), a new scenario per episode (``DtacEnv(redraw_scenario=True)``); one checkpoint per
  method serves every size it can (``meta.any_size``: transformers any N, the RNN actors N <= N_MAX).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import Any

import numpy as np
import torch
from torch import nn

from learners.common import TorchPolicy
from learners.protocol import split_instances
from mecopt.core import InvalidInputError
from mecopt.envs.dtac import DtacEnv
from mecopt.problems.dtac import PRESETS, VARIANTS, Config, Decision, Instance, state

KEY = "dtac"
PRESET = "tiny"
#: the number of UEs per edge server varies over training episodes (Fig. 11; L3)
TRAIN_UE_PER_SERVER = (1, 2, 3)
#: channel logits the networks output (channels l > L of an instance are masked); the largest L of the presets
L_MAX = 8
#: server-id position embeddings (the paper's pos = id of the associated edge server k); K <= K_MAX
K_MAX = 8
#: largest N the RNN actors (HAPPO, TL: one actor per UE id) and HAPPO's zero-padded critic (eq. 25) take
N_MAX = 6
#: per-UE action vector A^n = [p_x (3), p_l (L_MAX), a, b] (eq. 16)
ACTION_DIM = 3 + L_MAX + 2
STATE_DIM = 6
#: logit of a masked channel / padded UE: finite, so p = 0 exactly and p log p has a finite gradient (0 * -inf = nan)
MASKED = -1e9

# -- protocol settings (issue #11) -------------------------------------------------------------------------------
#: held-out test set: seeded `tiny` rounds (N = 4), every one certified optimal by `exact`
TEST_INSTANCES = 48
#: held-out `small` rounds (N = 6): exact certifies every one (0.3-5 s each since issue #12)
TEST_INSTANCES_SMALL = 40
SMALL_TIME_LIMIT = 60.0
TUNE_INSTANCES = 24
#: the same trial budget for every learned method: TUNE_TRIALS trials x TUNE_STEPS env steps (rounds)
TUNE_TRIALS = 4
TUNE_STEPS = 2_000
TUNE_SEED = 0
FINAL_SEEDS = (1, 2, 3)
#: paper setting (Table II: AdamW, lr 2e-5, omega_s 0.01): the same env-step budget as the tuned runs
PAPER_STEPS = 2_000
EXACT_TIME_LIMIT = 60.0
BUDGET_S = 900.0


@dataclass(frozen=True)
class Recipe:
    """A learned method = a method module plus fixed ``Args`` overrides (e.g. DTAC = the TAC file, stage dtac)."""

    module: str
    fixed: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, Recipe] = {
    "tac": Recipe("learners.dtac_tac", {"stage": "tac"}),
    "dtac": Recipe("learners.dtac_dtac", {"stage": "dtac"}),
    "tl-transformer": Recipe("learners.dtac_dtac", {"stage": "tl-transformer"}),
    "tl": Recipe("learners.dtac_tl"),
    "happo": Recipe("learners.dtac_happo"),
}


def train_config(
    preset: str = PRESET,
    ue_per_server: tuple[int, ...] | None = TRAIN_UE_PER_SERVER,
    coverage_m: tuple[float, ...] = (),
) -> Config:
    """The preset with the training range of UEs per server and, if given, the (edge, cloud) coverage radii [m]."""
    cfg = PRESETS[preset]
    if ue_per_server is not None:
        cfg = dc_replace(cfg, ue_per_server=tuple(int(u) for u in ue_per_server))
    if coverage_m:
        if len(coverage_m) != 2:
            raise InvalidInputError(f"{KEY}: coverage_m takes [edge radius, cloud radius], got {list(coverage_m)}")
        cfg = dc_replace(cfg, edge_radius_m=float(coverage_m[0]), cloud_radius_m=float(coverage_m[1]))
    return cfg


def make_train_env(
    preset: str = PRESET,
    variant: str = "literal",
    rounds: int = 10,
    ue_per_server: tuple[int, ...] | None = TRAIN_UE_PER_SERVER,
    coverage_m: tuple[float, ...] = (),
) -> DtacEnv:
    """The training env: a new scenario (and number of UEs) per episode (L3)."""
    if variant not in VARIANTS:
        raise InvalidInputError(f"{KEY}: unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
    cfg = train_config(preset, ue_per_server, coverage_m)
    return DtacEnv(preset, variant, rounds=rounds, config=cfg, redraw_scenario=True)


def instances(
    split: str, n: int, preset: str = PRESET, variant: str = "literal", ue_per_server: tuple[int, ...] | None = None
) -> list[Instance]:
    """The ``tune`` or ``test`` split (protocol streams) of ``preset``; ``ue_per_server`` replaces the preset's
    (Fig. 11), on its own stream; ``variant`` applies the model variant's overrides."""
    over = VARIANTS[variant]
    cfg = None if ue_per_server is None else dc_replace(PRESETS[preset], ue_per_server=tuple(ue_per_server))
    tag = "" if ue_per_server is None else "upS=" + ",".join(str(u) for u in ue_per_server)
    return split_instances(
        KEY, split, n, preset, transform=(lambda i: i.replace(**over)) if over else None, config=cfg, tag=tag
    )


# ----------------------------------------------------------------------------------------------------------------
# Features and the hybrid action mapping
# ----------------------------------------------------------------------------------------------------------------
def features(inst: Instance) -> np.ndarray:
    """(N, 6) network input from the state of eq. (14) (L1: log10, times floored at 1e-6 s)."""
    s = state(inst)
    f = np.log10(np.maximum(s, 1e-6))
    f[:, 0] = (np.log10(np.maximum(s[:, 0], 1e-30)) + 10.0) / 2.0  # received power P_UE |h|^2, ~1e-14..1e-8 W
    return f.astype(np.float32)


def rnn_actor_ids(N: int) -> np.ndarray:
    """L14: the RNN actor (and UE-id feature) of each UE: n mod N_MAX. For N <= N_MAX that is n itself (training
    never saw more UEs); beyond, UE n borrows actor n mod N_MAX with that actor's own id, the only id it was
    trained with."""
    return np.arange(N) % N_MAX


def local_state(inst: Instance) -> np.ndarray:
    """(N, 8) local state of HAPPO / TL, eq. (24): [n, k, features of eq. (14)] (ids scaled to [0, 1]; the UE id is
    ``rnn_actor_ids``' n mod N_MAX, i.e. n for every N the actors were trained on, L14)."""
    n = rnn_actor_ids(inst.N).astype(np.float32) / max(N_MAX - 1, 1)
    k = inst.server.astype(np.float32) / max(K_MAX - 1, 1)
    return np.concatenate([n[:, None], k[:, None], features(inst)], axis=1).astype(np.float32)


def channel_mask(L: int) -> torch.Tensor:
    """(L_MAX,) additive mask: 0 for channels 1..L, MASKED beyond."""
    if not 1 <= L <= L_MAX:
        raise InvalidInputError(f"{KEY}: the learned policies take L <= {L_MAX} channels, got L={L}")
    m = torch.full((L_MAX,), MASKED)
    m[:L] = 0.0
    return m


def split_head(out: torch.Tensor, L: int | torch.Tensor) -> dict[str, torch.Tensor]:
    """Network output (..., ACTION_DIM) -> x logits (3), masked channel logits (L_MAX), a / b pre-activations."""
    mask = channel_mask(int(L)) if not isinstance(L, torch.Tensor) else L
    return {"x": out[..., :3], "l": out[..., 3 : 3 + L_MAX] + mask.to(out.device), "ab": out[..., 3 + L_MAX :]}


def ratio(u: torch.Tensor | np.ndarray, lo: float) -> Any:
    """L2: pre-activation -> ratio in [lo, 1] (a_min / b_min of D3)."""
    if isinstance(u, torch.Tensor):
        return lo + (1.0 - lo) * torch.sigmoid(u)
    return lo + (1.0 - lo) / (1.0 + np.exp(-np.asarray(u, dtype=float)))


#: channel decodes (L11): the paper's per-UE argmax p_l, or the variant that gives a cell's offloading UEs distinct
#: channels while free ones remain; ``cell-distinct+power`` adds the L13 power rule for the UEs that must still
#: share a channel (scored as a decode of existing checkpoints; HAPPO, which executes its sampled a, rejects it)
CHANNEL_DECODES = ("argmax", "cell-distinct", "cell-distinct+power")


def check_channel_decode(channel_decode: str) -> str:
    """``channel_decode`` if it is one of CHANNEL_DECODES (L11), else a clear InvalidInputError."""
    if channel_decode not in CHANNEL_DECODES:
        raise InvalidInputError(f"{KEY}: unknown channel decode {channel_decode!r}; choose from {CHANNEL_DECODES}")
    return channel_decode


def cell_distinct_channels(
    inst: Instance, x: np.ndarray, pl: np.ndarray, choose: Callable[[int, np.ndarray], int] | None = None
) -> np.ndarray:
    """L11 variant: in each cell, the offloading UEs (x >= 1) take channels in decreasing order of their largest
    p_l, each the most probable channel (1-based) not yet taken in its cell; once the L channels are taken the rest
    fall back to their argmax. Locals keep their argmax (their channel is irrelevant).

    ``choose(n, taken)`` -> 0-based channel replaces "the most probable free channel" of UE n (``taken``: the (L,)
    channels already taken in its cell); HAPPO samples there from its policy restricted to the free channels."""
    p = np.nan_to_num(np.asarray(pl, dtype=float)[:, : inst.L], nan=0.0)
    l = np.argmax(p, axis=1).astype(np.int64) + 1
    for k in range(inst.K):
        off = np.flatnonzero((np.asarray(inst.server) == k) & (x >= 1))
        taken = np.zeros(inst.L, dtype=bool)
        for n in off[np.argsort(-p[off].max(axis=1), kind="stable")]:
            if taken.all():
                break
            if choose is None:
                c = int(np.argmax(np.where(taken, -np.inf, p[n])))
            else:
                c = int(choose(int(n), taken.copy()))
            taken[c] = True
            l[n] = c + 1
    return l


def equalise_shared_power(inst: Instance, x: np.ndarray, l: np.ndarray, a: np.ndarray) -> np.ndarray:
    """L13 power rule: in each cell, the offloading UEs (x >= 1) that share a channel lower their power ratios so
    that their received powers a_n P_UE |h(k,n)|^2 (the interference terms of eq. 5, default reading D2; P_UE
    |h(k,n)|^2 is the first entry of eq. 14's state) all equal the smallest one of the group:
    a_n <- max(a_min, min_m a_m P_UE |h(k,m)|^2 / (P_UE |h(k,n)|^2)). The ratios never rise (so a stays in
    [a_min, 1]); UEs alone on their channel, locals and the weakest received UE of a group keep their a.

    Why (measured on the certified `small` optima, docs/learners/dtac.md L13): the optimum's co-channel UEs arrive
    with nearly equal received powers (max / min ratio median 1.4, at most 3.3), i.e. SINR ~ 1 each, whereas at
    a = 1 the weaker-gain UE of a pair drowns (SINR ~ g_weak / g_strong)."""
    a = np.array(a, dtype=float)
    g = inst.P_UE * np.asarray(inst.h_ue, dtype=float)
    x, l, server = np.asarray(x), np.asarray(l), np.asarray(inst.server)
    for k in range(inst.K):
        for c in range(1, inst.L + 1):
            grp = np.flatnonzero((server == k) & (x >= 1) & (l == c))
            if grp.size < 2:
                continue
            rx = a[grp] * g[grp]  # received powers of the co-channel group
            a[grp] = np.clip(rx.min() / g[grp], inst.a_min, a[grp])
    return a


def hybrid_decision(
    inst: Instance, px: np.ndarray, pl: np.ndarray, a: np.ndarray, b: np.ndarray, channel_decode: str = "argmax"
) -> Decision:
    """Eq. (16) -> a feasible Decision: x = argmax p_x, l = argmax over the instance's L channels (or the
    ``cell-distinct`` variant, L11), a, b clipped; ``cell-distinct+power`` then applies the L13 power rule
    (``equalise_shared_power``) to the UEs that still share a channel in their cell."""
    check_channel_decode(channel_decode)
    x = np.argmax(np.asarray(px)[:, :3], axis=1).astype(np.int64)
    if channel_decode.startswith("cell-distinct"):
        l = cell_distinct_channels(inst, x, pl)
    else:
        l = np.argmax(np.asarray(pl)[:, : inst.L], axis=1).astype(np.int64) + 1
    a = np.clip(np.nan_to_num(np.asarray(a, dtype=float), nan=1.0), inst.a_min, 1.0)
    b = np.clip(np.nan_to_num(np.asarray(b, dtype=float), nan=1.0), inst.b_min, 1.0)
    if channel_decode == "cell-distinct+power":
        a = equalise_shared_power(inst, x, l, a)
    return Decision(x=x, l=l, a=a, b=b)


# ----------------------------------------------------------------------------------------------------------------
# Transformer blocks (Fig. 3): server-id position embedding, encoder layers with a switchable attention
# ----------------------------------------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    """Multi-head self-attention, eq. (20); ``identity=True`` is eq. (21): Attn' = I V (each UE sees only itself)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        if d % heads:
            raise InvalidInputError(f"{KEY}: d_model {d} not divisible by {heads} heads")
        self.h, self.dk = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.identity = False

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        B, N, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        if self.identity:  # eq. (21)
            return self.out(v)
        q = q.view(B, N, self.h, self.dk).transpose(1, 2)
        k = k.view(B, N, self.h, self.dk).transpose(1, 2)
        v = v.view(B, N, self.h, self.dk).transpose(1, 2)
        w = q @ k.transpose(-1, -2) / math.sqrt(self.dk)  # eq. (20)
        if pad is not None:  # padded UEs (variable N in a batch) receive no attention
            w = w.masked_fill(pad[:, None, None, :], MASKED)
        y = torch.softmax(w, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(B, N, d))


class EncoderLayer(nn.Module):
    """Post-LN transformer encoder layer: x = LN(x + Attn(x)); x = LN(x + FF(x))."""

    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.attn = SelfAttention(d, heads)
        self.ln1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.ReLU(), nn.Linear(ff, d))
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, pad))
        return self.ln2(x + self.ff(x))


class TransformerNet(nn.Module):
    """Per-UE tokens: Linear(input) + Embedding(server id) (pos of Fig. 3) -> encoder layers -> linear decoder head.

    Actor: input = features (6), output = ACTION_DIM; critic: input = features + A^n (6 + ACTION_DIM), output 2
    (Q1: w1 tau_n, Q2: w2 E_n, eq. 17)."""

    def __init__(self, fin: int, fout: int, d: int, heads: int, ff: int, layers: int):
        super().__init__()
        self.inp = nn.Linear(fin, d)
        self.pos = nn.Embedding(K_MAX, d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff) for _ in range(layers))
        self.head = nn.Linear(d, fout)

    def set_identity_attention(self, on: bool = True) -> None:
        for layer in self.layers:
            layer.attn.identity = on  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor, server: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        if int(server.max()) >= K_MAX:
            raise InvalidInputError(f"{KEY}: the transformer policies take K <= {K_MAX} edge servers")
        h = self.inp(x) + self.pos(server)
        for layer in self.layers:
            h = layer(h, pad)
        return self.head(h)


def n_params(net: nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def transformer_policy_outputs(
    net: TransformerNet, inst: Instance
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(p_x, p_l, a, b) of one instance (softmax probabilities, ratios in [a_min,1] / [b_min,1])."""
    with torch.no_grad():
        out = net(
            torch.as_tensor(features(inst))[None], torch.as_tensor(np.array(inst.server), dtype=torch.long)[None]
        )[0]
        h = split_head(out, inst.L)
        ab = h["ab"]
        return (
            torch.softmax(h["x"], -1).numpy(),
            torch.softmax(h["l"], -1).numpy(),
            ratio(ab[:, 0], inst.a_min).numpy(),
            ratio(ab[:, 1], inst.b_min).numpy(),
        )


class DtacPolicy(TorchPolicy):
    """Base of the DTAC policies: ``decide`` maps the network's hybrid action (eq. 16) to a feasible Decision.

    Checkpoint headers store (N, M) = (N, K) of the training instance (``registry.SIZE_ATTRS``) and meta.any_size,
    so one checkpoint serves every size the network takes (``check_size``)."""

    def check_size(self, inst: Instance) -> None:
        if inst.K > K_MAX or inst.L > L_MAX:
            raise InvalidInputError(
                f"{self.name}: policy takes K <= {K_MAX}, L <= {L_MAX}; instance has K={inst.K}, L={inst.L}"
            )

    def act(self, observation: np.ndarray) -> np.ndarray:  # observations need the topology: use decide
        raise InvalidInputError(f"{self.name}: DTAC policies act on instances (decide), not bare observations")

    def outputs(self, inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    #: L11: "argmax" (the paper's decode, eq. 16) or "cell-distinct" (variant); None: the training run's
    #: ``args.channel_decode`` (argmax where the run predates the field); set per copy by ``with_decode``
    channel_decode: str | None = None

    def decide(self, instance: Instance) -> Decision:
        self.check_size(instance)
        mode = self.channel_decode or str(getattr(self.args, "channel_decode", "argmax"))
        return hybrid_decision(instance, *self.outputs(instance), channel_decode=mode)

    def with_decode(self, channel_decode: str) -> DtacPolicy:
        """A shallow copy that decodes channels with ``channel_decode`` (same network, no retraining)."""
        out = copy.copy(self)
        out.channel_decode = check_channel_decode(channel_decode)
        return out


# ----------------------------------------------------------------------------------------------------------------
# RNN actors of HAPPO and TL (Section IV-A): one GRU actor per UE id n < N_MAX, local state eq. (24)
# ----------------------------------------------------------------------------------------------------------------
class RnnActor(nn.Module):
    """Agent n's actor: Linear(8, H) + ReLU -> GRUCell(H) -> Linear(H, ACTION_DIM) (the hybrid head of eq. 16);
    ``log_std``: HAPPO's state-independent Gaussian std of the a / b pre-activations."""

    def __init__(self, hidden: int):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(STATE_DIM + 2, hidden), nn.ReLU())
        self.gru = nn.GRUCell(hidden, hidden)
        self.head = nn.Linear(hidden, ACTION_DIM)
        self.log_std = nn.Parameter(torch.zeros(2))

    def forward(self, obs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h2 = self.gru(self.inp(obs), h)
        return self.head(h2), h2


class RnnActors(nn.Module):
    """N_MAX heterogeneous actors (HAPPO's agents have their own parameters); UE n uses actor n. ``n_max = 1``: one
    actor shared by every UE (the parameter-shared variant, L14), which takes any N."""

    def __init__(self, hidden: int, n_max: int = N_MAX):
        super().__init__()
        self.hidden = hidden
        self.agents = nn.ModuleList(RnnActor(hidden) for _ in range(n_max))

    def agent(self, n: int) -> RnnActor:
        """UE n's actor: actor n mod n_max (n itself for n < n_max; the shared actor if n_max = 1)."""
        return self.agents[n % len(self.agents)]  # type: ignore[return-value]

    def forward(self, obs: torch.Tensor, h: torch.Tensor, any_n: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, N, 8), h (B, N, H) with N <= n_max -> out (B, N, ACTION_DIM), h' (B, N, H); ``any_n`` (L14):
        any N, UE n acting with actor n mod n_max."""
        N = obs.shape[1]
        if N > len(self.agents) > 1 and not any_n:
            raise InvalidInputError(f"{KEY}: the RNN actors take N <= {len(self.agents)} UEs, got N={N}")
        outs, hs = zip(*(self.agent(n)(obs[:, n], h[:, n]) for n in range(N)), strict=True)
        return torch.stack(outs, 1), torch.stack(hs, 1)


class RnnPolicy(DtacPolicy):
    """Decentralized RNN actors (HAPPO, TL): UE n decides from its own local state (eq. 24), hidden state 0 for a
    single round; deterministic execution (argmax of x / l, the mean of the a / b Gaussians)."""

    centralized = False
    #: L14: act on any N (UE n with actor n mod N_MAX and that actor's id, ``rnn_actor_ids``); off by default (the
    #: actors were trained on N <= N_MAX); set per copy by ``with_any_n``
    any_n: bool = False

    @property
    def obs_dim(self) -> int:
        return STATE_DIM + 2

    def build(self) -> nn.Module:  # ``shared_actor`` (L14 variant): one actor for every UE id
        return RnnActors(int(self.args.hidden), 1 if getattr(self.args, "shared_actor", False) else N_MAX)

    def check_size(self, inst: Instance) -> None:
        super().check_size(inst)
        if inst.N > N_MAX and not self.any_n and not getattr(self.args, "shared_actor", False):
            raise InvalidInputError(
                f"{self.name}: the RNN actors take N <= {N_MAX} UEs; instance has N={inst.N} (with_any_n: L14)"
            )

    def with_any_n(self) -> RnnPolicy:
        """A shallow copy that acts on any N (L14: UE n uses actor n mod N_MAX; same network, no retraining; the
        decisions for N <= N_MAX are those of the original)."""
        out = copy.copy(self)
        out.any_n = True
        return out

    def outputs(self, inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        with torch.no_grad():
            obs = torch.as_tensor(local_state(inst))[None]
            out, _ = self.net(obs, torch.zeros(1, inst.N, self.net.hidden), self.any_n)  # type: ignore[operator]
            h = split_head(out[0], inst.L)
            return (
                torch.softmax(h["x"], -1).numpy(),
                torch.softmax(h["l"], -1).numpy(),
                ratio(h["ab"][:, 0], inst.a_min).numpy(),
                ratio(h["ab"][:, 1], inst.b_min).numpy(),
            )
