"""Seeded Gymnasium environment of DJTCRA (Section V-C): one step = one time slot.

Observation: the system state S_t of eq. (19), a |U| x 9 array [u_h, V^T, V^R, kappa, alpha, beta, Upsilon_2d,
B_u, N_u] (u_h is the connected RAN, 1-based so that 0 marks an empty row; volumes in KB, alpha per ms, beta
in
ms, distance in m, bandwidth in MHz, noise in dBm, as in Table III). Action: the task allocation of every
user,
``MultiDiscrete([H+1] * U)`` (0 = RCS, h = ES h: the arg max of eq. 21 over the ESs, plus the RCS option of
C1).
Reward: the system QoE of eq. (23) after every ES allocates its CPU by P2 (eq. 17, solved exactly by the
sigmoidal-programming B&B) or, with ``allocation='equal'``, by equal shares; it is computed by
``mecopt.problems.djtcra.evaluate``. Every slot draws a fresh instance (Sec. VI-A: "in each training episode,
the
user positions ... are all randomly generated"); an episode has ``horizon`` slots.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mecopt.core import InvalidInputError
from mecopt.problems.djtcra import PRESETS, Config, Decision, Instance, equal_share, evaluate, generate
from solvers.kernels.djtcra_p2 import allocate_p2

OBS_COLUMNS = (
    "ran",
    "VT_kb",
    "VR_kb",
    "kappa",
    "alpha_per_ms",
    "beta_ms",
    "dist2d_m",
    "bandwidth_mhz",
    "noise_dbm",
)


def observation(inst: Instance) -> np.ndarray:
    """System state S_t of eq. (19) in the paper's units (float32, |U| x 9)."""
    cols = [
        inst.ca + 1.0,
        inst.VT / 8000,
        inst.VR / 8000,
        inst.kappa,
        inst.alpha / 1000,
        inst.beta * 1000,
        inst.dist2d,
        inst.bandwidth / 1e6,
        10 * np.log10(inst.noise * 1000),
    ]
    return np.stack(cols, axis=1).astype(np.float32)


class DJTCRAEnv(gym.Env):
    """One slot per step; reward = system QoE (eq. 23) with P2-optimal or equal-share allocation."""

    metadata = {"render_modes": []}

    def __init__(self, config: Config | str = "small", horizon: int = 10, allocation: str = "p2") -> None:
        if isinstance(config, str):
            if config not in PRESETS:
                raise InvalidInputError(f"djtcra env: unknown preset {config!r}; choose from {sorted(PRESETS)}")
            config = PRESETS[config]
        if allocation not in ("p2", "equal", "fast"):
            raise InvalidInputError(f"djtcra env: allocation must be 'p2', 'fast' or 'equal', got {allocation!r}")
        if horizon < 1:
            raise InvalidInputError(f"djtcra env: horizon must be >= 1, got {horizon}")
        self.config = config
        self.horizon = int(horizon)
        self.allocation = allocation
        U, H = config.U, config.H
        # finite bounds (check_env warns on infinite ones); every feature is far inside them
        self.observation_space = spaces.Box(-1e9, 1e9, shape=(U, len(OBS_COLUMNS)), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(U, H + 1, dtype=np.int64))
        self._rng = np.random.default_rng(0)
        self.instance: Instance | None = None
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._rng = self.np_random  # seeded by gymnasium from ``seed``
        self._t = 0
        self.instance = generate(self.config, self._rng)
        return observation(self.instance), {}

    def decision(self, action: np.ndarray) -> Decision:
        """The Decision of an action: y from the action, p by P2 (exact) or equal share."""
        assert self.instance is not None
        y = np.asarray(action, dtype=np.int64)
        if y.shape != (self.instance.U,) or y.min() < 0 or y.max() > self.instance.H:
            raise InvalidInputError(f"djtcra env: action must be {self.instance.U} integers in 0..{self.instance.H}")
        if self.allocation == "equal":
            p = equal_share(self.instance, y)
        elif self.allocation == "fast":  # fast batched P2 heuristic (issue 14), docs/problems/djtcra.md "Fast P2"
            from solvers.kernels.djtcra_fastp2 import allocate

            p = allocate(self.instance, y)
        else:
            p, _ = allocate_p2(self.instance, y)
        return Decision(y=y, p=p)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.instance is None:
            raise InvalidInputError("djtcra env: call reset() before step()")
        met = evaluate(self.instance, self.decision(action))
        info = {k: met.values[k] for k in ("mean_latency_s", "n_SU", "n_DU", "n_GU", "n_CU", "qoe")}
        info["p2"] = self.allocation  # which CPU allocation (P2 solver) produced the reward
        self._t += 1
        self.instance = generate(self.config, self._rng)
        return observation(self.instance), float(met.objective), False, self._t >= self.horizon, info


def make_env(size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> DJTCRAEnv:
    """:class:`DJTCRAEnv` on preset ``size``; only the ``literal`` variant (every slot is a fresh ``generate``d
    instance). Nothing is drawn at construction: ``seed`` only seeds the action sampler."""
    from mecopt.envs import seed_actions, variant_overrides
    from mecopt.problems.djtcra import VARIANTS

    if variant_overrides("djtcra", variant, VARIANTS):
        raise InvalidInputError(f"djtcra env: variant {variant!r} is not modelled by the environment; use 'literal'")
    return seed_actions(DJTCRAEnv(size, **kwargs), "djtcra", seed)
