"""Gymnasium environments, one module per problem, registered as ``ProblemSpec.env``.

Every module exposes ``make_env(size="small", variant="literal", seed=0, **kwargs) -> gymnasium.Env`` (a
single-agent env; ``kwargs`` go to the env's constructor), which :func:`mecopt.registry.make_env` calls by key:

* ``size`` is a generator preset of the problem (``PROBLEM.presets``);
* ``variant`` is a model variant (``PROBLEM.variants``); an env that cannot model a variant refuses it with one
  clear error instead of silently ignoring it;
* ``seed`` fixes what the env draws once at construction (DTAC's scenario, INTO's device layout) and seeds its
  action space's sampler (derived with SeedSequence); episodes are seeded by ``reset(seed=...)`` as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import gymnasium as gym

from mecopt.core import InvalidInputError, spawn_seeds

E = TypeVar("E", bound=gym.Env)


def variant_overrides(key: str, variant: str, variants: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The field overrides of ``variant`` (one clear error for an unknown name)."""
    if variant not in variants:
        raise InvalidInputError(f"{key} env: unknown variant {variant!r}; choose from {sorted(variants)}")
    return dict(variants[variant])


def seed_actions(env: E, key: str, seed: int) -> E:
    """Seed ``env``'s action-space sampler from the ``make_env`` seed (SeedSequence-derived); returns ``env``."""
    env.action_space.seed(spawn_seeds(seed, 1, key, "env-actions")[0])
    return env


__all__ = ["seed_actions", "variant_overrides"]
