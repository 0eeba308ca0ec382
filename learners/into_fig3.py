"""Fig. 3 of the INTO paper, reduced (issue #15): INTO trained at 3 learning rates and 3 discount factors.

The paper varies the learning rate of both networks over {1e-4, 1e-3, 1e-2} at gamma = 0.99 (Fig. 3a) and gamma over
{0.59, 0.79, 0.99} at learning rate 1e-4 (Fig. 3b); (1e-4, 0.99) is shared, so 5 runs. Reduced: one training seed
(``SEED``), ``STEPS`` env steps each (the paper's curves converge within 600-1 500 slots), on the `small`
calibration set, with the *tuned* INTO settings (``results/into/tuning/into.json``: its (128, 64) networks, tau,
sigma, batch) instead of Table II's 3000 x 1000 actor, which trains at < 3 updates/s here. Only the learning rates
and gamma vary.

``PYTHONPATH=. python -m learners.into_fig3`` -> ``results/into/fig3/{checkpoints,training}/``; the bench suite
(``bench/test_into_learners.py::test_fig3``) scores the checkpoints on the test split and draws the curves.
"""

from __future__ import annotations

from typing import Any

from learners.into import KEY
from learners.train import train_and_save
from mecopt.core import results_dir

SEED = 1
STEPS = 2_000
LEARNING_RATES = (1e-4, 1e-3, 1e-2)
GAMMAS = (0.59, 0.79, 0.99)
#: the paper's defaults the other panel holds fixed
LR_DEFAULT = 1e-4
GAMMA_DEFAULT = 0.99


def runs() -> list[dict[str, Any]]:
    """``Args`` overrides of the 5 distinct runs (Fig. 3a then the rest of Fig. 3b)."""
    out = [{"lr_actor": lr, "lr_critic": lr, "gamma": GAMMA_DEFAULT} for lr in LEARNING_RATES]
    out += [{"lr_actor": LR_DEFAULT, "lr_critic": LR_DEFAULT, "gamma": g} for g in GAMMAS if g != GAMMA_DEFAULT]
    return out


def main() -> None:
    for ov in runs():
        train_and_save(KEY, "into", "tuned", SEED, steps=STEPS, out=results_dir() / KEY / "fig3", overrides=ov)


if __name__ == "__main__":
    main()
