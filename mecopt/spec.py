"""Contracts of the suite (kernel layer): what a problem and a method declare about themselves.

:class:`ProblemSpec` is exported by every problem module as ``PROBLEM``; :class:`MethodSpec` by every method module
(``solvers/exact/<key>/``, ``solvers/heuristics/<key>.py``, learned policies) in its ``METHODS`` list. Both live
here, below every module that declares them, so a problem or a method imports its contract downwards and the
registry (:mod:`mecopt.registry`) looks modules up by name without any import cycle.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mecopt.core import InvalidInputError, MethodOutput, Metrics, Sense, SolveOptions, make_rng
from mecopt.schema import Record

MethodKind = Literal["exact", "heuristic", "learned"]


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
    variant_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Generator-config overrides of a variant, applied to the preset before generating (for variants that change
    how data are drawn, e.g. a channel-gain model); the variant must also be named in ``variants``."""
    bench_sizes: tuple[str, ...] = ("small",)
    """Presets the default ``pytest --benchmark`` run covers."""
    bench_variants: tuple[str, ...] = ("literal",)
    """Variants the default ``pytest --benchmark`` run covers (each size x variant is one table section)."""
    bench_pairs: tuple[tuple[str, str], ...] = ()
    """Explicit (size, variant) sections of the main table instead of ``bench_sizes x bench_variants`` (for a
    problem whose default variant certifies only at a smaller size within the time limit)."""

    table_metrics: tuple[tuple[str, str], ...] = ()
    """Extra main-table columns: (key of ``evaluate``'s values, column header); each cell is the method's mean over
    its feasible rows (a list value counts by its mean, e.g. a 0/1 flag per BS becomes a share)."""

    def bench_groups(self) -> tuple[tuple[str, str], ...]:
        """The (size, variant) sections of the main benchmark table."""
        if self.bench_pairs:
            return self.bench_pairs
        return tuple((s, v) for s in self.bench_sizes for v in self.bench_variants)

    paper: str = ""
    env: str = ""
    """Module of the problem's Gymnasium environment (``mecopt.envs.<key>``); it exposes
    ``make_env(size, variant, seed, **kwargs)``. Imported lazily by :func:`mecopt.registry.make_env`."""

    def make_instance(self, size: str, seed: int, variant: str = "literal") -> Any:
        if size not in self.presets:
            raise InvalidInputError(f"{self.key}: unknown size {size!r}; choose from {sorted(self.presets)}")
        if variant not in self.variants:
            raise InvalidInputError(f"{self.key}: unknown variant {variant!r}; choose from {sorted(self.variants)}")
        cfg = self.presets[size]
        if self.variant_configs.get(variant):
            cfg = dataclasses.replace(cfg, **self.variant_configs[variant])
        inst = self.generate(cfg, make_rng(seed, self.key, "instance", size))
        overrides = dict(self.variants[variant])
        return inst.replace(**overrides) if overrides else inst

    def decision_from_dict(self, data: Any) -> Any:
        return self.Decision.from_dict(data)

    def instance_from_dict(self, data: Any) -> Any:
        return self.Instance.from_dict(data)

    def env_module(self) -> Any:
        if not self.env:
            raise InvalidInputError(f"{self.key}: no environment is registered")
        return importlib.import_module(self.env)


@dataclass(frozen=True)
class MethodSpec:
    """One solution method of one problem: ``fn(inst, opts) -> MethodOutput``."""

    name: str
    kind: MethodKind
    fn: Callable[[Any, SolveOptions], MethodOutput]
    description: str
    certified: bool = False
    """True when the method proves optimality (returns a bound)."""
    in_bench: bool = True
    """Whether the default ``pytest --benchmark`` run includes it."""


__all__ = ["MethodKind", "MethodSpec", "ProblemSpec"]
