"""INTO's learners on `paper` cells (issue #15): both methods with the per-device shared-weight architecture
(``Args.arch = "per-device"``, docs/learners/into.md L1), trained on the `paper` preset (30 / 55 / 80
devices per BS, K = 165).

Settings: the tuned parameters of the `small` study (``results/into/tuning/<method>.json``) transferred unchanged
(learning rates, gamma, tau / target rate, sigma or the epsilon schedule, batch, warm-up, hidden widths; no study on
`paper`), only ``arch`` and ``preset`` changed. Budget: ``STEPS`` env steps per run, the same for both methods
(measured at K = 165 on the shared CPU: the env runs ~100 steps/s, DDQN's (512, 256) per-device network ~3.5
updates/s on 64 slots x 165 rows, INTO's ~10), seeds ``FINAL_SEEDS``.

``PYTHONPATH=. python -m learners.into_per_device [--methods into,ddqn] [--seeds 1,2,3]`` ->
``results/into/per_device/{checkpoints,training}/<method>-paper-seed<s>``; ``--methods into --replay-action proto``
trains the named variant ``into-proto-replay`` the same way (``<method>-paper-proto-replay-seed<s>``); the bench suite
(``bench/test_into_learners.py::test_paper_cells``) scores the checkpoints on the held-out `paper` slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from learners.common import TorchPolicy
from learners.into import FINAL_SEEDS, KEY, METHODS
from learners.train import make_args, method_module
from mecopt.core import results_dir

#: training preset of the per-device runs
PRESET = "paper"
#: env steps per run, both methods (the paper-setting budget PAPER_STEPS; ~6 min for DDQN at K = 165)
STEPS = 1_500
#: Args overrides of the per-device runs (on top of the transferred tuned parameters)
OVERRIDES = {"arch": "per-device"}


def folder() -> Path:
    return results_dir() / KEY / "per_device"


def stem(method: str, seed: int, replay_action: str | None = None) -> Path:
    """Checkpoint path (without suffix) of one run; its log is ``training/<same name>.csv``. A named replay variant
    (docs/learners/into.md) gets ``-<replay_action>-replay`` in the name."""
    tag = f"-{replay_action}-replay" if replay_action else ""
    return folder() / "checkpoints" / f"{method}-{PRESET}{tag}-seed{seed}"


def train_one(
    method: str, seed: int, steps: int = STEPS, progress: bool = True, replay_action: str | None = None
) -> TorchPolicy:
    """One per-device run; ``replay_action`` selects a named replay variant (None: the paper's replay)."""
    overrides = {**OVERRIDES, **({"replay_action": replay_action} if replay_action else {})}
    args = make_args(KEY, method, "tuned", seed, preset=PRESET, steps=steps, overrides=overrides)
    path = stem(method, seed, replay_action)
    pol = method_module(KEY, method).train(
        args, csv_path=str(folder() / "training" / f"{path.name}.csv"), progress=progress
    )
    pol.meta.update({"setting": "tuned (transferred from small)", "preset": PRESET})
    pol.save(path)
    return pol


@dataclass
class Cli:
    methods: str = ",".join(METHODS)
    """comma-separated methods"""
    seeds: str = ",".join(str(s) for s in FINAL_SEEDS)
    """comma-separated training seeds"""
    steps: int = STEPS
    """env steps per run"""
    replay_action: str | None = None
    """a named replay variant ('proto' for into, 'chosen' for ddqn; default: the paper's replay)"""


def main() -> None:
    cli = tyro.cli(Cli, description=__doc__.splitlines()[0])
    for seed in (int(s) for s in cli.seeds.split(",") if s):
        for method in (m for m in cli.methods.split(",") if m):
            pol = train_one(method, seed, cli.steps, progress=False, replay_action=cli.replay_action)
            print(f"{KEY}/{method} per-device {PRESET} seed {seed}: {pol.meta}", flush=True)


if __name__ == "__main__":
    main()
