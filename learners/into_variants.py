"""INTO's named replay variants (docs/learners/into.md) at the long budget (issue #15): ``into-proto-replay``
(``replay_action="proto"``) and ``ddqn-chosen-replay`` (``replay_action="chosen"``) trained like the main tuned
runs -- tuned parameters of ``results/into/tuning/<method>.json``, ``LONG_STEPS`` env steps, seeds ``FINAL_SEEDS``
-- so that each variant is compared with its method at an equal budget (the committed ``variants/`` runs have the
tuning budget, 2 000 steps).

``PYTHONPATH=. python -m learners.into_variants [--seeds 1,2,3]`` ->
``results/into/variants_long/{checkpoints,seeds/checkpoints,training,seeds/training}/`` (the layout of
``learners.train``: seed 1 in ``checkpoints/``); resumable: a run whose checkpoint exists is skipped. The bench suite
(``bench/test_into_learners.py::test_learners_vs_optimum``) scores them on the held-out test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from learners.into import FINAL_SEEDS, KEY, LONG_STEPS, PRESET
from learners.train import override_suffix, run_stem, train_and_save
from mecopt.core import results_dir

#: method -> its named replay variant (Args.replay_action)
VARIANTS = {"into": "proto", "ddqn": "chosen"}


def folder() -> Path:
    return results_dir() / KEY / "variants_long"


def stem(method: str, seed: int) -> Path:
    """Checkpoint path (without suffix) of one run (``learners.train.run_stem`` under :func:`folder`)."""
    suffix = override_suffix({"replay_action": VARIANTS[method]})
    return run_stem(KEY, method, "tuned", seed, PRESET, folder(), suffix)


@dataclass
class Cli:
    seeds: str = ",".join(str(s) for s in FINAL_SEEDS)
    """comma-separated training seeds"""
    steps: int = LONG_STEPS
    """env steps per run (the main tuned runs' budget)"""


def main() -> None:
    cli = tyro.cli(Cli, description=__doc__.splitlines()[0])
    for seed in (int(s) for s in cli.seeds.split(",") if s):
        for method, replay in VARIANTS.items():
            if stem(method, seed).with_suffix(".json").exists():
                continue  # resumable
            pol = train_and_save(
                KEY, method, "tuned", seed, steps=cli.steps, out=folder(), overrides={"replay_action": replay}
            )
            print(f"{KEY}/{method} {replay} replay seed {seed}: {pol.meta}", flush=True)


if __name__ == "__main__":
    main()
