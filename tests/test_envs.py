"""The environment contract, once for every registered problem (``ProblemSpec.env`` + ``make_env``).

Every env: passes Gymnasium's ``check_env``; is deterministic given ``make_env(seed=...)`` and ``reset(seed=...)``
and differs across seeds; keeps every observation inside its observation space; computes its reward from the
problem's ``evaluate`` (the single source of every objective); refuses an unknown size or variant with one clear
error and applies every variant it accepts to the instances it builds. Problem-specific env tests (eq. 15 of CTO,
the INTO queue dynamics, DTOMALB's PettingZoo env, DTAC's vector reward) stay in ``tests/test_<key>.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mecopt.core import InvalidInputError
from mecopt.registry import get_problem, make_env, problem_keys

KEYS = problem_keys()
STEPS = 4
SIZE = "tiny"

#: How each env's reward is defined in terms of ``evaluate(instance, decision).objective`` (sign of the
#: objective), or None where the reward is not a function of one step (CTO: eq. (15) divides by sliding-window
#: minima; there ``info['objective']`` is the step's objective and test_cto checks eq. (15) itself).
REWARD_SIGN: dict[str, float | None] = {
    "dtomalb": -1.0,  # eq. (20) averaged over users = -objective under 'delay+lb'
    "djtcra": 1.0,  # system QoE, eq. (23)
    "into": 1.0,  # slot income, eq. (11)
    "dtac": -1.0,  # -(w1 T_t + w2 sum E), eq. (23)
    "cto": None,
}


def instance_of(env: gym.Env) -> Any:
    """The instance the next step decides on (INTO's env calls it ``inst``)."""
    inner = env.unwrapped
    return inner.inst if hasattr(inner, "inst") else inner.instance  # type: ignore[attr-defined]


def decision_of(key: str, env: gym.Env, inst: Any, action: Any, info: dict[str, Any]) -> Any:
    """The decision the env evaluated for ``action`` in the step just taken (``inst`` = instance before it)."""
    spec = get_problem(key)
    inner: Any = env.unwrapped
    if key == "dtomalb":
        return spec.Decision(a=np.asarray(action))
    if key == "into":  # Algorithm 1 refines the action inside step; the refined targets come back in info
        from mecopt.problems.into import decision_from_targets

        return decision_from_targets(inst, info["refined_targets"])
    return inner.decision(action)


def rollout(key: str, seed: int, steps: int = STEPS) -> list[Any]:
    env = make_env(key, SIZE, seed=seed)
    obs, _ = env.reset(seed=seed)
    out: list[Any] = [np.asarray(obs).tolist()]
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        out += [np.asarray(obs).tolist(), r]
        if term or trunc:
            break
    return out


@pytest.mark.parametrize("key", KEYS)
def test_registered_and_check_env(key: str) -> None:
    spec = get_problem(key)
    assert spec.env == f"mecopt.envs.{key}"
    env = make_env(key, SIZE, seed=0)
    assert isinstance(env, gym.Env)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("key", KEYS)
def test_seeded_determinism(key: str) -> None:
    assert rollout(key, 3) == rollout(key, 3)
    assert rollout(key, 3) != rollout(key, 4)


@pytest.mark.parametrize("key", KEYS)
def test_observations_in_space_and_reward_is_evaluate(key: str) -> None:
    spec = get_problem(key)
    env = make_env(key, SIZE, seed=1)
    obs, _ = env.reset(seed=5)
    assert env.observation_space.contains(obs)
    for _ in range(STEPS):
        inst = instance_of(env)
        action = env.action_space.sample()
        dec = None if key == "into" else decision_of(key, env, inst, action, {})
        obs, r, term, trunc, info = env.step(action)
        assert env.observation_space.contains(obs), key
        if dec is None:
            dec = decision_of(key, env, inst, action, info)
        met = spec.evaluate(inst, dec)
        assert met.feasible, met.violations
        sign = REWARD_SIGN[key]
        if sign is None:
            assert info["objective"] == pytest.approx(met.objective, rel=1e-12)
        else:
            assert r == pytest.approx(sign * met.objective, rel=1e-12)
        if term or trunc:
            break


@pytest.mark.parametrize("key", KEYS)
def test_bad_size_or_variant_is_one_clear_error(key: str) -> None:
    with pytest.raises(InvalidInputError, match="size|preset"):
        make_env(key, "huge")
    with pytest.raises(InvalidInputError, match="variant"):
        make_env(key, SIZE, variant="no-such-variant")


@pytest.mark.parametrize("key", KEYS)
def test_accepted_variants_reach_the_instances(key: str) -> None:
    """A variant is either refused with a clear error or applied to every instance the env builds."""
    spec = get_problem(key)
    accepted = []
    for variant, overrides in spec.variants.items():
        try:
            env = make_env(key, SIZE, variant=variant, seed=0)
        except InvalidInputError as e:
            assert variant != "literal" and "variant" in str(e)
            continue
        accepted.append(variant)
        env.reset(seed=0)
        for _ in range(2):
            inst = instance_of(env)
            for field, value in overrides.items():
                assert getattr(inst, field) == value, (variant, field)
            env.step(env.action_space.sample())
    assert "literal" in accepted
