"""Gymnasium environment of the INTO MDP (Section III-B): one step = one slot.

State (Section III-B (1)), per device: z, v, delta, g, the interference-free SNR p h / (B N0) (the DT's
channel
estimate; the actual rate, eq. (2), depends on the action), Q^E and the harvest of the slot; per BS: F.
Action (option ``action``):

* ``"discrete"`` (default): ``MultiDiscrete([N + 1] * K)``: 0 = discard, b + 1 = run the task on BS b (C1-C3 by
  construction), made valid by Algorithm 1 (eqs. 16-18, :func:`solvers.kernels.into_refine.refine`);
* ``"proto"``: INTO's continuous proto-action, ``Box(0, 1, (K, N + 2))``: row k = (x_hat, y_hat_1..y_hat_N, w_hat)
  relaxes x (C1), y (C2) and the CPU split (C4); eq. (15) maps (x_hat, y_hat) to the nearest valid discrete action
  (run on argmax_b y_hat_b when x_hat + max_b y_hat_b > 1, else discard), then Algorithm 1 as above.

The CPU part f (option ``cpu``): ``"min-scaled"`` (default) gives each task the minimum CPU of eq. (18) scaled to
fill its BS; ``"agent"`` (``action="proto"`` only) splits F_b in proportion to the agent's w_hat (the paper's action
includes f; a share below eq. (18)'s minimum misses the deadline). The reward is the slot income of eq. (11),
computed by :func:`mecopt.problems.into.evaluate`; buffers follow eq. (6). Episodes are truncated after ``horizon``
slots.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from mecopt.core import InvalidInputError, make_rng
from mecopt.problems.into import (
    PRESETS,
    Config,
    Instance,
    decision_from_targets,
    draw_devices,
    draw_slot,
    evaluate,
)
from solvers.kernels.into_refine import CPU_MODES, decision_from_proto, refine

N_DEVICE_FEATURES = 7
OBS_BOUND = 1e4  # features are scaled to O(1); clipped to this box
ACTION_MODES = ("discrete", "proto")


def device_features(inst: Instance) -> np.ndarray:
    """(K, 7) per-device state features (Section III-B (1)) scaled to O(1): z, v, delta, g, SNR (dB), Q^E, e."""
    snr_db = 10 * np.log10(inst.p * inst.h / (inst.B * inst.N0))
    return np.stack(
        [inst.z / 1e5, inst.v / 1e4, inst.delta, inst.g, snr_db / 100.0, inst.Q * 100.0, inst.e * 1000.0], axis=1
    )


def observe(inst: Instance) -> np.ndarray:
    """The env observation of a slot: device features (K x 7, flattened) then F / 1e10 per BS."""
    obs = np.concatenate([device_features(inst).ravel(), inst.F / 1e10])
    return np.clip(obs, -OBS_BOUND, OBS_BOUND).astype(np.float32)


class IntoEnv(gym.Env):
    """Seeded multi-slot INTO environment (reward = slot income, eq. 11)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: Config | str = "small",
        horizon: int = 20,
        layout_seed: int = 0,
        N0: float | None = None,
        action: str = "discrete",
        cpu: str = "min-scaled",
    ) -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in PRESETS:
                raise InvalidInputError(f"into env: unknown preset {config!r}; choose from {sorted(PRESETS)}")
            config = PRESETS[config]
        if action not in ACTION_MODES:
            raise InvalidInputError(f"into env: action must be one of {ACTION_MODES}, got {action!r}")
        if cpu not in CPU_MODES:
            raise InvalidInputError(f"into env: cpu must be one of {CPU_MODES}, got {cpu!r}")
        if cpu == "agent" and action != "proto":
            raise InvalidInputError("into env: cpu='agent' needs action='proto' (the split is in the proto-action)")
        if horizon < 1:
            raise InvalidInputError(f"into env: horizon must be >= 1, got {horizon}")
        if config.U is None:  # fix the device counts once so the spaces have a fixed shape
            rng = make_rng(layout_seed, "into", "env-layout")
            U = tuple(int(u) for u in rng.integers(config.U_range[0], config.U_range[1] + 1, size=config.N))
            config = replace(config, U=U)
        if N0 is not None:
            config = replace(config, N0_w_per_hz=float(N0))
        self.cfg = config
        self.horizon = int(horizon)
        self.K = int(sum(config.U or ()))
        self.N = config.N
        self.action_mode, self.cpu = action, cpu
        self.action_space: gym.Space = (
            gym.spaces.MultiDiscrete(np.full(self.K, self.N + 1, dtype=np.int64))
            if action == "discrete"
            else gym.spaces.Box(0.0, 1.0, shape=(self.K, self.N + 2), dtype=np.float32)
        )
        self.observation_space = gym.spaces.Box(
            -OBS_BOUND, OBS_BOUND, shape=(self.K * N_DEVICE_FEATURES + self.N,), dtype=np.float32
        )
        self._rng: np.random.Generator | None = None
        self.inst: Instance | None = None
        self._t = 0
        self._dev = None

    # --------------------------------------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        assert self.inst is not None
        return observe(self.inst)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._rng = make_rng(int(seed), "into", "env")
        elif self._rng is None:
            self._rng = self.np_random
        rng = self._rng
        self._dev = draw_devices(self.cfg, rng)
        Q0 = rng.uniform(*self.cfg.Q_range_j, size=self.K)
        self.inst = draw_slot(self.cfg, self._dev, Q0, rng)
        self._t = 0
        return self._obs(), {"slot": 0}

    def targets_from_action(self, action: np.ndarray) -> np.ndarray:
        a = np.asarray(action, dtype=np.int64)
        if a.shape != (self.K,) or np.any(a < 0) or np.any(a > self.N):
            raise InvalidInputError(f"into env: action must have shape ({self.K},) with values in 0..{self.N}")
        return a - 1

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.inst is None or self._rng is None or self._dev is None:
            raise InvalidInputError("into env: call reset() before step()")
        inst = self.inst
        if self.action_mode == "proto":
            a = np.asarray(action, dtype=float)
            if a.shape != (self.K, self.N + 2) or not np.all(np.isfinite(a)):
                raise InvalidInputError(f"into env: proto-action must be finite with shape ({self.K}, {self.N + 2})")
            target, dec = decision_from_proto(inst, np.clip(a, 0.0, 1.0), self.cpu)  # eq. (15) + Algorithm 1
        else:
            target = refine(inst, self.targets_from_action(action))  # Algorithm 1
            dec = decision_from_targets(inst, target)
        met = evaluate(inst, dec)
        if not met.feasible:  # cannot happen after Algorithm 1; never hide it
            raise InvalidInputError(f"into env: refined action infeasible: {met.violations[:2]}")
        reward = float(met.objective)
        Q_next = np.asarray(met.values["Q_next_j"])  # eq. (6)
        self._t += 1
        self.inst = draw_slot(self.cfg, self._dev, Q_next, self._rng)
        truncated = self._t >= self.horizon
        info = {
            "slot": self._t,
            "income": reward,
            "n_on_time": met.values["n_on_time"],
            "n_offloaded": met.values["n_offloaded"],
            "refined_targets": target,
            "decision": dec,
        }
        return self._obs(), reward, False, truncated, info


def make_env(size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> IntoEnv:
    """:class:`IntoEnv` on preset ``size``; ``seed`` fixes the device layout (device counts per cell when the
    preset draws them). The ``paper-N0`` variant is the env's ``N0``; other variants are refused."""
    from mecopt.envs import seed_actions, variant_overrides
    from mecopt.problems.into import VARIANTS

    overrides = variant_overrides("into", variant, VARIANTS)
    if set(overrides) - {"N0"}:
        raise InvalidInputError(f"into env: variant {variant!r} is not modelled by the environment")
    if "N0" in overrides:
        kwargs.setdefault("N0", overrides["N0"])
    return seed_actions(IntoEnv(size, layout_seed=seed, **kwargs), "into", seed)
