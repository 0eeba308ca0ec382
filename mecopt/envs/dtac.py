"""Multi-round Gymnasium environment of DTAC (Section II; the POMDP of Section III-A).

The topology, UE types and task catalogue are fixed per environment (``scenario_seed``); ``reset(seed)`` warms
the LRU caches and draws the first tasks. Each step is one round t: the action is (x, l, a, b) for every UE,
the
reward is ``-(omega_1 T_t + omega_2 sum_n E_t^n)`` computed by :func:`mecopt.problems.dtac.evaluate` (the
scalar objective of eq. 13, as in eq. 23; the paper's vector reward eq. 17 is returned in ``info``). After the
round the caches are updated with LRU (D11) and every UE draws a new task, so rounds depend on each other
through the cache state that the environment carries.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mecopt.core import InvalidInputError, make_rng
from mecopt.envs import seed_actions
from mecopt.problems.dtac import (
    PRESETS,
    VARIANTS,
    Config,
    Decision,
    Instance,
    Scenario,
    draw_tasks,
    evaluate,
    lru_update,
    make_scenario,
    round_instance,
    state,
    warm_cache,
)


class DtacEnv(gym.Env):
    """One episode = ``rounds`` rounds; observation = the stacked state of eq. (15), shape (N, 6)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        size: str = "small",
        variant: str = "literal",
        rounds: int = 50,
        scenario_seed: int = 0,
        config: Config | None = None,
        redraw_scenario: bool = False,
    ):
        if size not in PRESETS:
            raise InvalidInputError(f"dtac env: unknown size {size!r}; choose from {sorted(PRESETS)}")
        if variant not in VARIANTS:
            raise InvalidInputError(f"dtac env: unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
        if rounds < 1:
            raise InvalidInputError(f"dtac env: rounds must be >= 1, got {rounds}")
        self.cfg = PRESETS[size] if config is None else config
        self.variant = dict(VARIANTS[variant])
        self.rounds = int(rounds)
        self.redraw_scenario = bool(redraw_scenario)
        self._set_scenario(make_scenario(self.cfg, make_rng(scenario_seed, "dtac", "env-scenario")))
        self._t = 0
        self._cache = np.zeros((self.cfg.K, self.cfg.M), dtype=np.int64)
        self._last = np.zeros((self.cfg.K, self.cfg.M))
        self._inst: Instance | None = None

    def _set_scenario(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.N = int(self.scenario.server.size)
        self.action_space = spaces.Dict(
            {
                "x": spaces.MultiDiscrete([3] * self.N),
                "l": spaces.MultiDiscrete([self.cfg.L] * self.N),  # channel l - 1
                "a": spaces.Box(0.0, 1.0, shape=(self.N,), dtype=np.float32),
                "b": spaces.Box(0.0, 1.0, shape=(self.N,), dtype=np.float32),
            }
        )
        self.observation_space = spaces.Box(0.0, 1e30, shape=(self.N, 6), dtype=np.float32)

    # ----------------------------------------------------------------------------------------------------
    def _make_instance(self) -> Instance:
        tasks = draw_tasks(self.scenario, self.np_random)
        inst = round_instance(self.scenario, tasks, self._cache)
        return inst.replace(**self.variant) if self.variant else inst

    def _obs(self) -> np.ndarray:
        assert self._inst is not None
        return np.minimum(state(self._inst), 1e30).astype(np.float32)

    @property
    def instance(self) -> Instance:
        """The current round as a problem instance (cache contents included)."""
        if self._inst is None:
            raise InvalidInputError("dtac env: call reset() first")
        return self._inst

    def decision(self, action: dict[str, Any]) -> Decision:
        inst = self.instance
        a = np.clip(np.asarray(action["a"], dtype=float), inst.a_min, 1.0)  # D3
        b = np.clip(np.asarray(action["b"], dtype=float), inst.b_min, 1.0)
        return Decision(
            x=np.asarray(action["x"], dtype=np.int64), l=np.asarray(action["l"], dtype=np.int64) + 1, a=a, b=b
        )

    def reset(  # type: ignore[override]
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ):
        super().reset(seed=seed)
        if self.redraw_scenario:  # a new topology and number of UEs per episode (Fig. 11)
            self._set_scenario(make_scenario(self.cfg, self.np_random))
        self._t = 0
        self._cache, self._last = warm_cache(self.scenario, self.np_random)
        self._inst = self._make_instance()
        return self._obs(), {"cache_bits": (self._cache @ self.scenario.S_out).tolist()}

    def step(self, action: dict[str, Any]):  # type: ignore[override]
        inst = self.instance
        dec = self.decision(action)
        met = evaluate(inst, dec)
        if not met.feasible:
            raise InvalidInputError("dtac env: infeasible action: " + "; ".join(met.violations[:3]))
        reward = -float(met.objective)
        tau = np.asarray(met.values["tau_s"])
        E = np.asarray(met.values["energy_per_ue_J"])
        info = {
            "round_time_s": met.values["round_time_s"],
            "energy_J": met.values["energy_J"],
            "vector_reward": np.concatenate([-inst.w1 * tau, -inst.w2 * E]),  # eq. (17)
            "cache_hits": int(np.sum((dec.x == 1) & (inst.cache[inst.server, inst.task] == 1))),
        }
        self._t += 1
        self._cache, self._last = lru_update(
            inst, dec.x, self._cache, self._last, float(self.cfg.warmup_requests + self._t)
        )
        self._inst = self._make_instance()
        truncated = self._t >= self.rounds
        return self._obs(), reward, False, truncated, info


def make_env(size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> DtacEnv:
    """:class:`DtacEnv` on preset ``size``; ``seed`` fixes the scenario (topology, UE types, task catalogue)."""
    return seed_actions(DtacEnv(size, variant, scenario_seed=seed, **kwargs), "dtac", seed)
