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

Options for the learners (issue #14, docs/learners/djtcra.md):

* ``rcs='action'`` (default): the RCS is an action (0), as above. ``rcs='fallback'`` (decision D13): the action
  covers the ES columns only, ``MultiDiscrete([H] * U)`` with a = h - 1 for ES h (the paper's |U| x |H| action,
  eqs. 20-22); after the CPU allocation every ES user whose latency exceeds its RCS latency moves to the RCS and the
  ESs re-allocate, until nobody moves (the heuristics' rule, Sec. III-A "further offloaded to the RCS if it can
  achieve higher QoS").
* ``info`` of ``step`` carries the per-user QoE Omega_u (eq. 11, ``qoe_per_user``), the executed assignment ``y``
  (after the fallback), ``moved_to_rcs``, and the per-ES action masks of the *next* observation (``es_mask``, also
  in the ``info`` of ``reset``): ``es_mask[h, u]`` is True when user u is a CA user of ES h (Sec. V-C: ES h sets the
  action rows of its CA users only; every user is in exactly one ES's mask). :func:`local_observation` is the
  local state O^h of eq. (18) (rows of other ESs' users zeroed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mecopt.core import InvalidInputError
from mecopt.problems.djtcra import (
    PRESETS,
    Config,
    Decision,
    Instance,
    coefficients,
    equal_share,
    evaluate,
    generate,
    latencies,
)
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


def es_masks(inst: Instance) -> np.ndarray:
    """Per-ES action masks (H, U): ``mask[h, u]`` = user u is a CA user of ES h+1, the rows ES h+1's actor sets
    (Sec. V-C, eqs. 20-22)."""
    return inst.ca[None, :] == np.arange(inst.H)[:, None]


def local_observation(inst: Instance, h: int) -> np.ndarray:
    """Local state O^h of ES h (1-based) = the system state of eq. (19) with the rows of users that are not CA users
    of h filled with 0 (eq. 18 and the paragraph after eq. 19)."""
    if not 1 <= h <= inst.H:
        raise InvalidInputError(f"djtcra env: ES index must be in 1..{inst.H}, got {h}")
    return observation(inst) * (inst.ca == h - 1)[:, None].astype(np.float32)


def rcs_fallback(
    inst: Instance, y0: np.ndarray, allocate: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, int]:
    """D13: allocate, move every ES user whose latency exceeds its RCS latency to the RCS, re-allocate, until no
    user moves. Returns (y, p, users moved). (The env only generates the ``literal`` variant; the shared-RCS latency
    uses an equal share of the RCS among its users plus the mover, as in the heuristics.)"""
    co = coefficients(inst)
    y = np.asarray(y0, dtype=np.int64).copy()
    moved = 0
    for _ in range(inst.U + 1):
        p = allocate(y)
        D = latencies(inst, y, p, co)
        n_rcs = int((y == 0).sum()) + 1 if co.rcs_shared else 1
        rcs = co.fixed[:, 0] + co.work[:, 0] * n_rcs / co.capacity[0]
        worse = (y > 0) & (D > rcs)
        if not worse.any():
            return y, p, moved
        y[worse] = 0
        moved += int(worse.sum())
    return y, allocate(y), moved


class DJTCRAEnv(gym.Env):
    """One slot per step; reward = system QoE (eq. 23) with P2-optimal or equal-share allocation."""

    metadata = {"render_modes": []}

    def __init__(
        self, config: Config | str = "small", horizon: int = 10, allocation: str = "p2", rcs: str = "action"
    ) -> None:
        if isinstance(config, str):
            if config not in PRESETS:
                raise InvalidInputError(f"djtcra env: unknown preset {config!r}; choose from {sorted(PRESETS)}")
            config = PRESETS[config]
        if allocation not in ("p2", "equal", "fast"):
            raise InvalidInputError(f"djtcra env: allocation must be 'p2', 'fast' or 'equal', got {allocation!r}")
        if rcs not in ("action", "fallback"):
            raise InvalidInputError(f"djtcra env: rcs must be 'action' or 'fallback', got {rcs!r}")
        if horizon < 1:
            raise InvalidInputError(f"djtcra env: horizon must be >= 1, got {horizon}")
        self.config = config
        self.horizon = int(horizon)
        self.allocation = allocation
        self.rcs = rcs
        U, H = config.U, config.H
        # finite bounds (check_env warns on infinite ones); every feature is far inside them
        self.observation_space = spaces.Box(-1e9, 1e9, shape=(U, len(OBS_COLUMNS)), dtype=np.float32)
        # rcs='action': 0 = RCS, h = ES h; rcs='fallback': a = h - 1 for ES h (the RCS only by D13's fallback)
        self.action_space = spaces.MultiDiscrete(np.full(U, H + 1 if rcs == "action" else H, dtype=np.int64))
        self._moved = 0
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
        return observation(self.instance), {"es_mask": es_masks(self.instance)}

    def allocate(self, y: np.ndarray) -> np.ndarray:
        """CPU allocation p of assignment y (index form) by the env's P2: exact, fast or equal share."""
        assert self.instance is not None
        if self.allocation == "equal":
            return equal_share(self.instance, y)
        if self.allocation == "fast":  # fast batched P2 heuristic (issue 14), docs/problems/djtcra.md "Fast P2"
            from solvers.kernels.djtcra_fastp2 import allocate

            return allocate(self.instance, y)
        return allocate_p2(self.instance, y)[0]

    def decision(self, action: np.ndarray) -> Decision:
        """The Decision of an action: y from the action (with rcs='fallback': ES a + 1, then D13), p by the env's
        P2 (exact, fast) or equal share."""
        assert self.instance is not None
        a = np.asarray(action, dtype=np.int64)
        top = self.instance.H if self.rcs == "action" else self.instance.H - 1
        if a.shape != (self.instance.U,) or a.min() < 0 or a.max() > top:
            raise InvalidInputError(f"djtcra env: action must be {self.instance.U} integers in 0..{top}")
        if self.rcs == "fallback":
            y, p, self._moved = rcs_fallback(self.instance, a + 1, self.allocate)
            return Decision(y=y, p=p)
        self._moved = 0
        return Decision(y=a, p=self.allocate(a))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.instance is None:
            raise InvalidInputError("djtcra env: call reset() before step()")
        dec = self.decision(action)
        met = evaluate(self.instance, dec)
        info: dict[str, Any] = {k: met.values[k] for k in ("mean_latency_s", "n_SU", "n_DU", "n_GU", "n_CU", "qoe")}
        info["p2"] = self.allocation  # which CPU allocation (P2 solver) produced the reward
        info["qoe_per_user"] = np.asarray(met.values["qoe"], dtype=float)  # Omega_u, eq. (11); sums to the reward
        info["y"] = dec.y
        info["moved_to_rcs"] = self._moved
        self._t += 1
        self.instance = generate(self.config, self._rng)
        info["es_mask"] = es_masks(self.instance)  # per-ES action masks of the returned (next) observation
        return observation(self.instance), float(met.objective), False, self._t >= self.horizon, info


def make_env(size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> DJTCRAEnv:
    """:class:`DJTCRAEnv` on preset ``size``; only the ``literal`` variant (every slot is a fresh ``generate``d
    instance). Nothing is drawn at construction: ``seed`` only seeds the action sampler."""
    from mecopt.envs import seed_actions, variant_overrides
    from mecopt.problems.djtcra import VARIANTS

    if variant_overrides("djtcra", variant, VARIANTS):
        raise InvalidInputError(f"djtcra env: variant {variant!r} is not modelled by the environment; use 'literal'")
    return seed_actions(DJTCRAEnv(size, **kwargs), "djtcra", seed)
