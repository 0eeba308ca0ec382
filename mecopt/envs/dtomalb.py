"""Multi-slot DTOMALB environments (Section 4): Gymnasium (centralized) and PettingZoo (one agent per user).

Each slot is one static DTOMALB :class:`~mecopt.problems.dtomalb.Instance` (``env.instance``): every user has a new
task, servers carry the backlog LD_m(t) left from earlier slots. Rewards come from
:func:`~mecopt.problems.dtomalb.evaluate` only: agent n gets R_n = -w1 t_n - w2 var(LD) (eq. 20); the centralized
env's scalar reward is their mean, i.e. minus the instance objective under ``objective='delay+lb'``.

Between slots every server works for ``slot_length_s`` seconds: LD_m(t+1) = max(0, LD_m(t) + new work - tau) (D3).
Server frequencies and user positions (channel gains) are drawn once per episode; tasks every slot (D8).
An episode ends after ``horizon`` slots; the slot index is not in the observation, so that end is reported as a
*truncation* (``truncated=True``, ``terminated=False``): learners bootstrap through it (issue #11, item 4).

Observation (D9): the state chi(t) = [LD_1(t), ..., LD_M(t)] of eqs. (14)/(21), plus per user its own task:
L_n [Mbit], C_n [Gcycle], local time C_n/f_local [s] and upload time at the literal W/N rate [s].
"""

from __future__ import annotations

import copy
import functools
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from mecopt.core import InvalidInputError
from mecopt.envs import seed_actions, variant_overrides
from mecopt.problems.dtomalb import (
    PRESETS,
    VARIANTS,
    Config,
    Decision,
    Instance,
    evaluate,
    generate,
    upload_rate,
)

USER_FEATURES = 4
OBS_HIGH = 1e6  # finite bound for the Box spaces (all features are non-negative seconds, Mbit, Gcycle)


def observe(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Observation of one slot (D9): chi(t) of eqs. (14)/(21), shape (M,), and the users' own-task features (N, 4).

    User features: L_n [Mbit], C_n [Gcycle], local time C_n/f_local [s], upload time at the literal W/N rate [s].
    Used by both envs and by learned policies deciding on a static Instance.
    """
    r = upload_rate(inst, np.array([float(inst.N)]))[0]
    users = np.stack([inst.L / 1e6, inst.C / 1e9, inst.C / inst.f_local, inst.L / r], axis=1)
    return inst.backlog.astype(np.float32), users.astype(np.float32)


def _config(cfg: Config | str) -> Config:
    if isinstance(cfg, Config):
        return cfg
    if cfg not in PRESETS:
        raise InvalidInputError(f"dtomalb env: unknown size {cfg!r}; choose from {sorted(PRESETS)}")
    return PRESETS[cfg]


def _trusted_replace(inst: Instance, **arrays: np.ndarray) -> Instance:
    """A copy of ``inst`` with some float arrays replaced, skipping the Record validation (trusted env data only)."""
    out = copy.copy(inst)
    for name, arr in arrays.items():
        arr.flags.writeable = False
        object.__setattr__(out, name, arr)
    return out


class _Slots:
    """Shared slot dynamics of both env flavours."""

    def __init__(
        self,
        cfg: Config,
        horizon: int,
        slot_length_s: float,
        objective: str,
        w2: float | None,
        variant: str = "literal",
    ):
        self.overrides = variant_overrides("dtomalb", variant, VARIANTS)
        if horizon < 1:
            raise InvalidInputError(f"dtomalb env: horizon must be >= 1, got {horizon}")
        if not slot_length_s > 0:
            raise InvalidInputError(f"dtomalb env: slot_length_s must be > 0, got {slot_length_s}")
        self.cfg = cfg if w2 is None else replace(cfg, w2=float(w2))
        self.horizon = horizon
        self.tau = float(slot_length_s)
        self.objective = objective
        self.N, self.M = cfg.N, cfg.M
        self.rng = np.random.default_rng()
        self.instance: Instance | None = None
        self.t = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        base = generate(self.cfg, rng)  # servers and user positions for the episode (validated once)
        self._static = replace(base, **{"objective": self.objective, **self.overrides})  # a variant's field wins
        self.t = 0
        self.instance = self._new_slot(np.zeros(self.M))

    def _new_slot(self, backlog: np.ndarray) -> Instance:
        """The next slot: new tasks L, C on the episode's servers and users (D8), the carried backlog.

        Draws exactly what ``generate`` draws for a slot with fixed servers (positions, L, C, f_local, in that
        order; only L and C are kept), so episodes are the same as with ``generate``. The arrays come from the
        validated generator's ranges and the env's own arithmetic, so the Instance is built without re-validating
        them (item 5 of issue #11: validation stays at the API boundary, i.e. ``evaluate``'s action check).
        """
        cfg, rng, N = self.cfg, self.rng, self.N
        rng.uniform(cfg.min_distance_m**2, cfg.cell_radius_m**2, size=N)  # positions: fixed per episode
        L = rng.uniform(*cfg.L_range_bit, size=N)
        C = rng.uniform(*cfg.C_range_cycles, size=N)
        rng.uniform(*cfg.f_local_range_hz, size=N)  # local CPUs: fixed per episode
        return _trusted_replace(self._static, L=L, C=C, backlog=np.asarray(backlog, dtype=float))

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.instance is not None
        return observe(self.instance)

    def step(self, a: np.ndarray) -> tuple[np.ndarray, dict[str, Any], bool]:
        inst = self.instance
        assert inst is not None
        met = evaluate(inst, Decision(a=a))
        if not met.feasible:
            raise InvalidInputError(f"dtomalb env: {met.violations[0]}")
        t_n = np.asarray(met.values["delay_s"])
        rewards = -inst.w1 * t_n - inst.w2 * met.values["var_LD"]  # eq. (20)
        LD = np.asarray(met.values["load_factor_s"])
        info = {
            "objective": met.objective,
            "mean_delay_s": met.values["mean_delay_s"],
            "var_LD": met.values["var_LD"],
            "load_factor_s": LD,
            "slot": self.t,
        }
        self.t += 1
        done = self.t >= self.horizon
        self.instance = self._new_slot(np.maximum(0.0, LD - self.tau))  # backlog drain (D3)
        return rewards, info, done


class DtomalbEnv(gym.Env):
    """Centralized env: action = target of every user (MultiDiscrete), reward = mean_n R_n (eq. 20)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        cfg: Config | str = "paper",
        horizon: int = 10,
        slot_length_s: float = 1.0,
        objective: str = "delay+lb",
        w2: float | None = None,
        variant: str = "literal",
    ):
        cfg = _config(cfg)
        self.slots = _Slots(cfg, horizon, slot_length_s, objective, w2, variant)
        N, M = cfg.N, cfg.M
        self.action_space = spaces.MultiDiscrete(np.full(N, M + 1))
        self.observation_space = spaces.Box(0.0, OBS_HIGH, shape=(M + N * USER_FEATURES,), dtype=np.float32)

    @property
    def instance(self) -> Instance:
        assert self.slots.instance is not None, "call reset() first"
        return self.slots.instance

    def _obs(self) -> np.ndarray:
        chi, users = self.slots.features()
        return np.concatenate([chi, users.ravel()]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        self.slots.reset(self.np_random)
        return self._obs(), {}

    def step(self, action: np.ndarray):  # type: ignore[override]
        a = np.asarray(action, dtype=np.int64).reshape(self.slots.N)
        rewards, info, done = self.slots.step(a)
        info["rewards"] = rewards
        # the horizon is a time limit and the slot index is not observed: a truncation, not a termination
        return self._obs(), float(rewards.mean()), False, done, info


class DtomalbParallelEnv(ParallelEnv):
    """One agent per user (the Markov game of Section 4-D): Discrete(M+1) actions, own reward R_n (eq. 20).

    Each agent observes chi(t) (eq. 21) and its own task's features.
    """

    metadata = {"name": "dtomalb_v0", "render_modes": []}

    def __init__(
        self,
        cfg: Config | str = "paper",
        horizon: int = 10,
        slot_length_s: float = 1.0,
        objective: str = "delay+lb",
        w2: float | None = None,
        variant: str = "literal",
    ):
        cfg = _config(cfg)
        self.slots = _Slots(cfg, horizon, slot_length_s, objective, w2, variant)
        self.possible_agents = [f"user_{n}" for n in range(cfg.N)]
        self.agents: list[str] = []
        self._np_random = np.random.default_rng()

    @functools.cache  # noqa: B019 - PettingZoo's recommended pattern
    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(0.0, OBS_HIGH, shape=(self.slots.M + USER_FEATURES,), dtype=np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(self.slots.M + 1)

    @property
    def instance(self) -> Instance:
        assert self.slots.instance is not None, "call reset() first"
        return self.slots.instance

    def _obs(self) -> dict[str, np.ndarray]:
        chi, users = self.slots.features()
        return {a: np.concatenate([chi, users[n]]) for n, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        self.slots.reset(self._np_random)
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]):  # type: ignore[override]
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise InvalidInputError(f"dtomalb env: no action for {missing}")
        a = np.array([int(actions[ag]) for ag in self.possible_agents], dtype=np.int64)
        rewards, info, done = self.slots.step(a)
        obs = self._obs()
        rew = {ag: float(rewards[n]) for n, ag in enumerate(self.possible_agents)}
        term = {ag: False for ag in self.possible_agents}  # the horizon is a time limit: truncation (issue #11)
        trunc = {ag: done for ag in self.possible_agents}
        infos = {ag: dict(info) for ag in self.possible_agents}
        if done:
            self.agents = []
        return obs, rew, term, trunc, infos


def make_env(size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> DtomalbEnv:
    """The centralized :class:`DtomalbEnv` on preset ``size`` (nothing is drawn at construction: ``seed`` only
    seeds the action sampler; servers, positions and tasks of an episode come from ``reset(seed=...)``)."""
    return seed_actions(DtomalbEnv(size, variant=variant, **kwargs), "dtomalb", seed)
