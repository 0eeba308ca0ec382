"""The training recipes behind the committed DTOMALB checkpoints (one place, used by the CLI and ``--retrain``).

``PYTHONPATH=. python -m learners.train [--presets paper,fig8,small] [--methods dtomalb,dtoma,...]`` writes
``results/dtomalb/checkpoints/<method>-<preset>.{pt,json}`` and ``results/dtomalb/training/<method>-<preset>.csv``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learners import dqn_tolb, dtomalb_maddpg, idql_tolb
from learners.common import TorchPolicy
from mecopt.core import results_dir

KEY = "dtomalb"

#: env steps (slots) per method: the same for all, as Fig. 5 compares methods per episode; BUDGET_S is a
#: safety stop only (a run that hits it is marked meta.stopped_by_time_budget).
STEPS = {"dtomalb": 30_000, "dtoma": 30_000, "idql-tolb": 30_000, "dqn-tolb": 30_000}
BUDGET_S = 480.0
SEED = 1


def recipe(method: str, preset: str, steps: int | None = None, seed: int = SEED) -> tuple[Any, Callable]:
    """(Args, train function) of ``method`` on ``preset``."""
    n = steps if steps is not None else STEPS[method]
    if method in ("dtomalb", "dtoma"):
        args: Any = dtomalb_maddpg.Args(
            seed=seed, preset=preset, load_balancing=method == "dtomalb", total_steps=n, time_budget_s=BUDGET_S
        )
        return args, dtomalb_maddpg.train
    if method == "idql-tolb":
        return idql_tolb.Args(seed=seed, preset=preset, total_steps=n, time_budget_s=BUDGET_S), idql_tolb.train
    if method == "dqn-tolb":
        return dqn_tolb.Args(seed=seed, preset=preset, total_steps=n, time_budget_s=BUDGET_S), dqn_tolb.train
    raise ValueError(f"unknown learned method {method!r}; choose from {list(STEPS)}")


def checkpoint_dir() -> Path:
    return results_dir() / KEY / "checkpoints"


def training_dir() -> Path:
    return results_dir() / KEY / "training"


def train_and_save(
    method: str,
    preset: str,
    steps: int | None = None,
    progress: bool = True,
    seed: int = SEED,
    out: Path | None = None,
) -> TorchPolicy:
    """Train one recipe; save to the committed checkpoint folder, or under ``out`` (e.g. a seed sweep)."""
    args, fn = recipe(method, preset, steps, seed)
    stem = f"{method}-{preset}" if seed == SEED else f"{method}-{preset}-seed{seed}"
    ck_dir, log_dir = (checkpoint_dir(), training_dir()) if out is None else (out / "checkpoints", out / "training")
    policy = fn(args, csv_path=str(log_dir / f"{stem}.csv"), progress=progress)
    policy.save(ck_dir / stem)
    return policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="paper")
    p.add_argument("--methods", default=",".join(STEPS))
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply every method's step count")
    p.add_argument("--seeds", default=str(SEED), help="comma-separated training seeds")
    p.add_argument("--out", default=None, help="folder for checkpoints/ and training/ (default: results/dtomalb)")
    ns = p.parse_args()
    for seed in (int(x) for x in ns.seeds.split(",")):
        for preset in ns.presets.split(","):
            for method in ns.methods.split(","):
                out = Path(ns.out) if ns.out else None
                pol = train_and_save(method, preset, int(STEPS[method] * ns.steps_scale), seed=seed, out=out)
                print(f"{method}-{preset} seed {seed}: {pol.meta}", flush=True)


if __name__ == "__main__":
    main()
