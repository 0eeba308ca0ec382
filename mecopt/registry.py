"""Problem registry: each problem module exposes ``PROBLEM = ProblemSpec(...)`` (the contract in :mod:`mecopt.spec`).

Modules are looked up lazily by key (by name, so the registry imports no problem module and no problem module
imports the registry). A problem module must provide: its key, sense, ``Instance``/``Decision``
record classes, ``evaluate(inst, dec) -> Metrics`` (the single source of every objective),
``check_feasible(inst, dec) -> list[str]`` (violated constraints, each naming its equation), a generator
``generate(cfg, rng) -> Instance`` with named size presets, and named model variants.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from mecopt.core import InvalidInputError, read_json, write_json
from mecopt.spec import MethodSpec, ProblemSpec

#: Every problem key of the suite, in the order tables list them, with its module.
PROBLEM_MODULES: dict[str, str] = {
    "dtomalb": "mecopt.problems.dtomalb",
    "djtcra": "mecopt.problems.djtcra",
    "into": "mecopt.problems.into",
    "dtac": "mecopt.problems.dtac",
    "cto": "mecopt.problems.cto",
}


def problem_keys(available_only: bool = True) -> list[str]:
    """Registered problem keys (by default only those whose module is present)."""
    if not available_only:
        return list(PROBLEM_MODULES)
    keys = []
    for key, mod in PROBLEM_MODULES.items():
        if importlib.util.find_spec(mod) is not None:
            keys.append(key)
    return keys


def get_problem(key: str) -> ProblemSpec:
    """The ProblemSpec for ``key`` (clear error for an unknown key)."""
    if key not in PROBLEM_MODULES:
        raise InvalidInputError(f"unknown problem {key!r}; choose from {list(PROBLEM_MODULES)}")
    try:
        mod = importlib.import_module(PROBLEM_MODULES[key])
    except ModuleNotFoundError as e:
        if e.name == PROBLEM_MODULES[key]:
            raise InvalidInputError(f"problem {key!r} is registered but not implemented yet") from None
        raise
    spec = mod.PROBLEM
    assert isinstance(spec, ProblemSpec) and spec.key == key
    return spec


# --------------------------------------------------------------------------------------------------------------
# Instance files: {"problem", "size", "seed", "variant", "instance": {...}}
# --------------------------------------------------------------------------------------------------------------
def instance_envelope(spec: ProblemSpec, inst: Any, *, size: str | None, seed: int | None, variant: str) -> dict:
    return {"problem": spec.key, "size": size, "seed": seed, "variant": variant, "instance": inst.to_dict()}


def save_instance(
    path: str, spec: ProblemSpec, inst: Any, *, size: str | None, seed: int | None, variant: str = "literal"
) -> None:
    write_json(path, instance_envelope(spec, inst, size=size, seed=seed, variant=variant))


def load_instance(path: str, key: str) -> tuple[Any, dict[str, Any]]:
    """Load an instance file for problem ``key``; returns (Instance, envelope metadata)."""
    spec = get_problem(key)
    data = read_json(path, "instance file")
    if isinstance(data, dict) and "instance" in data:
        if data.get("problem", key) != key:
            raise InvalidInputError(f"instance file {path} is for problem {data.get('problem')!r}, not {key!r}")
        meta = {k: v for k, v in data.items() if k != "instance"}
        body = data["instance"]
    else:
        meta, body = {}, data
    return spec.instance_from_dict(body), meta


def make_env(key: str, size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> Any:
    """The Gymnasium environment of problem ``key`` (``ProblemSpec.env``) on the generator preset ``size``."""
    return get_problem(key).env_module().make_env(size=size, variant=variant, seed=seed, **kwargs)


__all__ = [
    "PROBLEM_MODULES",
    "MethodSpec",
    "ProblemSpec",
    "get_problem",
    "load_instance",
    "make_env",
    "problem_keys",
    "save_instance",
]
