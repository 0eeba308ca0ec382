"""DTAC and TL-transformer (Han et al., Section III-C.2, Algorithm 1 lines 13-19; Section IV-A): the decentralized
stage on top of the centralized TAC of ``learners/dtac_tac.py`` (same ``Args``, ``train`` and policy class).

* ``dtac``: a copy of the converged TAC actor with the attention replaced by the identity, Attn' = I V (eq. 21),
  so UE n's action depends only on its own state s_t^n (and its server id, the position embedding); retrained
  with eq. (22) -- eq. (19) evaluated on the stacked decentralized actions A'_t -- against the *frozen* TAC critic,
  on the states of TAC's replay memory.
* ``tl-transformer``: the same decentralized copy trained by MSE to TAC's actions, eq. (26).

The teacher is TAC at TAC's tuned parameters (``results/dtac/tuning/tac.json``; tune ``tac`` first) or at the
paper setting when TAC was not tuned; one teacher per seed, shared with ``tl`` through a disk cache
(``dtac_tac.get_teacher``). This file's ``search_space`` tunes only the decentralized stage.

Run: ``PYTHONPATH=. python -m learners.dtac_dtac --stage dtac --out PATH`` (every Args field is a flag).
"""

from __future__ import annotations

from typing import Any

from learners.common import run_cli
from learners.dtac_tac import Args, TacPolicy, train, tuned_teacher_overrides

__all__ = ["Args", "TacPolicy", "search_space", "teacher_overrides", "train"]


def teacher_overrides(tuning: str) -> dict[str, Any]:
    """``learners.tune``: the teacher's parameters fixed in every trial of a study in ``results/dtac/<tuning>/``
    (TAC's best parameters of the same folder, including its fixed overrides, e.g. the L11 ``channel_decode``)."""
    return tuned_teacher_overrides(tuning)


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of the decentralized stage (issue #11); the teacher's parameters are TAC's tuned ones."""
    return {
        **tuned_teacher_overrides(),
        "lr_tl": trial.suggest_float("lr_tl", 1e-4, 3e-3, log=True),
        "tl_entropy_coef": trial.suggest_float("tl_entropy_coef", 1e-4, 3e-2, log=True),
        "tl_batch_size": trial.suggest_categorical("tl_batch_size", [32, 64, 128]),
    }


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
