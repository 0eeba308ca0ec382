"""Fig. 3 of the INTO paper, reduced (issue #15): INTO trained at 3 learning rates and 3 discount factors.

The paper varies the learning rate of both networks over {1e-4, 1e-3, 1e-2} at gamma = 0.99 (Fig. 3a) and gamma over
{0.59, 0.79, 0.99} at learning rate 1e-4 (Fig. 3b); (1e-4, 0.99) is shared, so 5 runs. Reduced: one training seed
(``SEED``), ``STEPS`` env steps each (the paper's curves converge within 600-1 500 slots), on the `small`
calibration set, with the *tuned* INTO settings (``results/into/tuning/into.json``: its (128, 64) networks, tau,
sigma, batch) instead of Table II's 3000 x 1000 actor, which trains at < 3 updates/s here. Only the learning rates
and gamma vary.

``PYTHONPATH=. python -m learners.into_fig3`` -> ``results/into/fig3/{checkpoints,training}/``; the bench suite
(``bench/test_into_learners.py::test_fig3``) scores the checkpoints on the test split and draws the curves.

Full size (``--full``): the same 5 runs with Table II's networks and the rest of the paper setting (actor (3000,
1000), critic (1500, 600), tau = 0.001, batch 64, replay 3 000: the ``Args`` defaults), lr / gamma varied as above,
training seed ``--seed`` (default ``SEED``; the protocol asks for seeds 1-3), one equal budget of ``FULL_STEPS`` env
steps for every run (the wall-clock safety stop is raised to ``FULL_BUDGET_S`` so that no run is cut short) ->
``results/into/fig3_full/{checkpoints,training}/``, the seed in every file name. Resumable: a run whose checkpoint
JSON exists is skipped (``--full --seed 2`` resumes seed 2 only; one process per seed can run at once). The float32
Table II actor is ~16 MB per checkpoint, so the ``.pt`` files are not committed; the bench (``test_fig3_full``)
scores them once, caches the per-slot test results in ``fig3_full/results/<run>.json`` next to the committed
training curves, and pools every seed it finds (``full_seeds``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from learners.common import TorchPolicy
from learners.into import KEY
from learners.train import log_path, make_args, method_module, override_suffix, train_and_save
from mecopt.core import results_dir

SEED = 1
STEPS = 2_000
LEARNING_RATES = (1e-4, 1e-3, 1e-2)
GAMMAS = (0.59, 0.79, 0.99)
#: the paper's defaults the other panel holds fixed
LR_DEFAULT = 1e-4
GAMMA_DEFAULT = 0.99
#: env steps of every full-size (Table II) run: one equal budget, 2 x the 1 500 slots after which the paper's
#: slowest curve (lr 1e-4) converges; measured 8.5 updates/s for the Table II networks on an idle core (nice 10)
FULL_STEPS = 3_000
#: wall-clock safety stop of one full-size run, high enough that every run reaches FULL_STEPS on the loaded machine
FULL_BUDGET_S = 3_600.0


def runs() -> list[dict[str, Any]]:
    """``Args`` overrides of the 5 distinct runs (Fig. 3a then the rest of Fig. 3b)."""
    out = [{"lr_actor": lr, "lr_critic": lr, "gamma": GAMMA_DEFAULT} for lr in LEARNING_RATES]
    out += [{"lr_actor": LR_DEFAULT, "lr_critic": LR_DEFAULT, "gamma": g} for g in GAMMAS if g != GAMMA_DEFAULT]
    return out


def full_folder() -> Path:
    return results_dir() / KEY / "fig3_full"


def full_stem(overrides: dict[str, Any], seed: int = SEED) -> Path:
    """Checkpoint path (without suffix) of one full-size run, e.g. ``into-small-gamma0p99-lr_actor0p0001-...-seed1``;
    its CSV log is ``training/<same name>.csv``."""
    return full_folder() / "checkpoints" / f"into-small{override_suffix(overrides)}-seed{seed}"


def full_seeds() -> list[int]:
    """Training seeds with at least one finished full-size run here (a checkpoint header or a cached per-slot test
    result under ``fig3_full/``), ascending."""
    found: set[int] = set()
    for sub in ("checkpoints", "results"):
        for path in (full_folder() / sub).glob("into-small-*-seed*.json"):
            m = re.search(r"-seed(\d+)$", path.stem)
            if m:
                found.add(int(m.group(1)))
    return sorted(found)


def train_full(overrides: dict[str, Any], steps: int = FULL_STEPS, seed: int = SEED) -> TorchPolicy:
    """One full-size run: the paper setting (Table II ``Args`` defaults) with ``overrides`` (lr, gamma), ``steps``
    env steps and the safety stop raised to ``FULL_BUDGET_S``."""
    args = make_args(KEY, "into", "paper", seed, steps=steps, overrides=overrides)
    args.time_budget_s = FULL_BUDGET_S
    stem = full_stem(overrides, seed)
    pol = method_module(KEY, "into").train(args, csv_path=str(log_path(stem)), progress=False)
    pol.meta.update({"setting": "paper", "preset": args.preset, "fig3": "full"})
    pol.save(stem)
    return pol


@dataclass
class Cli:
    full: bool = False
    """train the full-size (Table II networks) runs instead of the reduced ones"""
    steps: int = 0
    """env steps per run (0: STEPS, or FULL_STEPS with --full; keep it equal for the 5 runs)"""
    seed: int = SEED
    """training seed of the full-size runs (--full only; it is part of the checkpoint stem, so each seed resumes on
    its own); the reduced runs always use SEED"""


def main() -> None:
    cli = tyro.cli(Cli, description=__doc__.splitlines()[0])
    if cli.seed != SEED and not cli.full:
        raise SystemExit("--seed applies to the full-size runs only (add --full)")
    for ov in runs():
        if not cli.full:
            train_and_save(
                KEY, "into", "tuned", SEED, steps=cli.steps or STEPS, out=results_dir() / KEY / "fig3", overrides=ov
            )
            continue
        if full_stem(ov, cli.seed).with_suffix(".json").exists():
            continue  # resumable
        pol = train_full(ov, cli.steps or FULL_STEPS, cli.seed)
        print(f"{KEY}/into fig3 full {ov}: {pol.meta}", flush=True)


if __name__ == "__main__":
    main()
