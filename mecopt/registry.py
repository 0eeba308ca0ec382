"""Problem registry: each problem module exposes ``PROBLEM = ProblemSpec(...)``.

Modules are imported lazily by key. A problem module must provide: its key, sense, ``Instance``/``Decision``
record classes, ``evaluate(inst, dec) -> Metrics`` (the single source of every objective),
``check_feasible(inst, dec) -> list[str]`` (violated constraints, each naming its equation), a generator
``generate(cfg, rng) -> Instance`` with named size presets, and named model variants.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mecopt.core import InvalidInputError, Metrics, Sense, make_rng, read_json, write_json
from mecopt.schema import Record

#: Every problem key of the suite, in the order tables list them, with its module.
PROBLEM_MODULES: dict[str, str] = {
    "dtomalb": "mecopt.problems.dtomalb",
    "djtcra": "mecopt.problems.djtcra",
    "into": "mecopt.problems.into",
    "dtac": "mecopt.problems.dtac",
    "cto": "mecopt.problems.cto",
}


@dataclass(frozen=True)
class ProblemSpec:
    """Everything generic code (CLI, solvers, harness, envs) needs to know about one problem."""

    key: str
    title: str
    sense: Sense
    Instance: type[Record]
    Decision: type[Record]
    evaluate: Callable[[Any, Any], Metrics]
    check_feasible: Callable[[Any, Any], list[str]]
    generate: Callable[[Any, np.random.Generator], Any]
    """generate(cfg, rng) -> Instance; cfg is one of ``presets`` (or a user-made config)."""
    presets: Mapping[str, Any]
    """Named generator configs; must contain 'tiny', 'small' and 'paper'."""
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"literal": {}})
    """Named model variants: field overrides applied to a generated instance ('literal' is the default)."""
    bench_sizes: tuple[str, ...] = ("small",)
    """Presets the default ``pytest --benchmark`` run covers."""
    bench_variants: tuple[str, ...] = ("literal",)
    """Variants the default ``pytest --benchmark`` run covers (each size x variant is one table section)."""
    paper: str = ""

    def make_instance(self, size: str, seed: int, variant: str = "literal") -> Any:
        if size not in self.presets:
            raise InvalidInputError(f"{self.key}: unknown size {size!r}; choose from {sorted(self.presets)}")
        if variant not in self.variants:
            raise InvalidInputError(f"{self.key}: unknown variant {variant!r}; choose from {sorted(self.variants)}")
        inst = self.generate(self.presets[size], make_rng(seed, self.key, "instance", size))
        overrides = dict(self.variants[variant])
        return inst.replace(**overrides) if overrides else inst

    def decision_from_dict(self, data: Any) -> Any:
        return self.Decision.from_dict(data)

    def instance_from_dict(self, data: Any) -> Any:
        return self.Instance.from_dict(data)


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
