"""Learned methods of a problem = its committed checkpoints under ``results_dir()/<key>/checkpoints/``.

Every ``<stem>.json`` header written by :meth:`learners.common.TorchPolicy.save` contributes to one method named by
its policy (``dtomalb``, ``dtoma``, ``idql-tolb``, ``dqn-tolb``). Checkpoints trained on a standard preset (tiny,
small, paper) share that name: the method picks the one trained for the instance's (N, M) -- a learned policy only
applies to the size it was trained for. A checkpoint trained on another preset (e.g. ``fig8``) becomes its own
method ``<name>@<preset>``, left out of the default benchmark.

torch is imported only when a learned method first runs, so listing methods stays cheap.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from mecopt.core import InvalidInputError, MethodOutput, SolveOptions, results_dir
from mecopt.spec import MethodSpec

STANDARD_PRESETS = ("tiny", "small", "paper")

#: The size pair a checkpoint header stores as ("N", "M") for each problem: the instance attributes a policy's
#: network shape depends on. A checkpoint whose ``meta`` has ``"any_size": true`` serves every size (e.g. a
#: policy built for a varying number of UEs); the instance must then still fit it (the policy checks). One more
#: checkpoint of the method may have ``"fallback": true`` (with ``any_size``): it serves the instances that no other
#: checkpoint of the method accepts (a policy's optional ``accepts(instance)``; without one it accepts all), e.g.
#: INTO's per-device policy on `paper` cells beside the padded 3 x 8 `small` policy.
SIZE_ATTRS: dict[str, tuple[str, str]] = {
    "dtomalb": ("N", "M"),  # users, servers
    "djtcra": ("U", "H"),  # users, ESs
    "dtac": ("N", "K"),  # UEs, edge servers
    "into": ("K", "N"),  # devices, BSs
    "cto": ("M", "M"),  # servers (the task count per slot varies)
}
ANY_SIZE = (-1, -1)
FALLBACK = (-2, -2)


def instance_size(key: str, inst: Any) -> tuple[int, int]:
    """The (N, M) size pair of ``inst`` that checkpoints of problem ``key`` are keyed by (``SIZE_ATTRS``)."""
    a, b = SIZE_ATTRS.get(key, ("N", "M"))
    return int(getattr(inst, a)), int(getattr(inst, b))


def checkpoint_dir(key: str) -> Path:
    return results_dir() / key / "checkpoints"


@functools.lru_cache(maxsize=64)
def _load(path: str) -> Any:
    from learners.common import load_policy

    return load_policy(path)


def _headers(key: str) -> list[tuple[Path, dict[str, Any]]]:
    d = checkpoint_dir(key)
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("*.json")):
        try:
            h = json.loads(p.read_text(encoding="utf-8"))
            out.append((p.with_suffix(""), {"method": str(h["method"]), "N": int(h["N"]), "M": int(h["M"]), **h}))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InvalidInputError(f"{key}: malformed checkpoint header {p}: {e}") from None
    return out


def _accepts(policy: Any, inst: Any) -> bool:
    """A policy's optional ``accepts(instance)`` (e.g. INTO's padded layout: at most 8 devices per BS); a policy
    without one accepts every instance and refuses an unfit one in ``decide`` with a one-line error. (Kept off
    ``TorchPolicy`` so that its source, which DJTCRA's evaluation cache hashes, stays as it was.)"""
    check = getattr(policy, "accepts", None)
    return True if check is None else bool(check(inst))


def _make_fn(key: str, name: str, by_size: dict[tuple[int, int], Path]):
    def fn(inst: Any, opts: SolveOptions) -> MethodOutput:
        n, m = instance_size(key, inst)
        paths = [by_size[s] for s in ((n, m), ANY_SIZE, FALLBACK) if s in by_size]
        if not paths:
            sizes = ", ".join(f"N={a} M={b}" for a, b in sorted(by_size) if a >= 0)
            raise InvalidInputError(
                f"learned method {name!r} has no checkpoint for N={n}, M={m} (trained for: {sizes})"
            )
        # the first checkpoint whose policy accepts the instance; none: the first one refuses it (one-line error)
        path = next((p for p in paths if _accepts(_load(str(p)), inst)), paths[0])
        policy = _load(str(path))
        return MethodOutput(policy.decide(inst), "feasible", None, {"checkpoint": path.name})

    return fn


def learned_methods(key: str) -> list[MethodSpec]:
    """One MethodSpec (kind 'learned') per learned policy with committed checkpoints for problem ``key``.

    Cached per checkpoint folder and its state (names and modification times of the headers), so the front reads
    the headers once per process unless a checkpoint is written meanwhile."""
    d = checkpoint_dir(key)
    state = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(d.glob("*.json"))) if d.is_dir() else ()
    return list(_learned_methods(key, str(d), state))


@functools.lru_cache(maxsize=32)
def _learned_methods(key: str, folder: str, state: tuple[tuple[str, int], ...]) -> tuple[MethodSpec, ...]:
    groups: dict[str, dict[tuple[int, int], Path]] = {}
    in_bench: dict[str, bool] = {}
    for path, h in _headers(key):
        preset = str(h.get("meta", {}).get("preset", ""))
        standard = preset in STANDARD_PRESETS
        name = h["method"] if standard else f"{h['method']}@{preset}"
        meta = h.get("meta", {})
        if meta.get("fallback") and not meta.get("any_size"):
            raise InvalidInputError(f"{key}: checkpoint {path.name} has meta.fallback without meta.any_size")
        size = (FALLBACK if meta.get("fallback") else ANY_SIZE) if meta.get("any_size") else (h["N"], h["M"])
        if size in groups.setdefault(name, {}):
            what = {ANY_SIZE: "any size", FALLBACK: "the fallback"}.get(size, f"N={size[0]}, M={size[1]}")
            raise InvalidInputError(f"{key}: two checkpoints of {name!r} for {what}")
        groups[name][size] = path
        in_bench[name] = standard
    return tuple(
        MethodSpec(
            name,
            "learned",
            _make_fn(key, name, by_size),
            f"learned policy {name} (checkpoints: {', '.join(p.name for p in by_size.values())})",
            certified=False,
            in_bench=in_bench[name],
        )
        for name, by_size in groups.items()
    )
