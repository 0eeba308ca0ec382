"""Tune a learned method with Optuna (issue #11, item 2): ``python -m learners.tune dtomalb --method dtomalb``.

One trial = one training run of ``TUNE_STEPS`` env steps (training seed ``TUNE_SEED``, never a final seed) with
``Args`` from the method's ``search_space(trial)`` (in the method file, next to ``Args``), scored by its mean gap
to the certified optimum [%] on the suite's ``tune`` split (``TUNE_INSTANCES`` instances, disjoint from the test
split and from the training stream). TPE sampler seeded from the key and method, ``TUNE_TRIALS`` trials for every
method of a paper (the same budget), the first quarter of them random start-up trials.

The study persists in SQLite under ``results/<key>/tuning/<method>.db`` (``--storage`` takes any Optuna RDB URL,
e.g. a shared PostgreSQL, so trials can run on several machines; a rerun resumes and only adds the missing
trials). The best trial's ``Args`` overrides are written to ``results/<key>/tuning/<method>.json``, which
``python -m learners.train --setting tuned`` reads; ``<method>-trials.md`` lists every trial.

``--fixed '{"channel_decode": "cell-distinct"}' --tuning tuning_cd`` runs a separate study (own folder
``results/<key>/tuning_cd/``, study name ``<key>-<method>-tuning_cd``, same budget, tune split, references and
sampler seeding rule as the committed one) with those ``Args`` fixed in every trial; a method module's
``teacher_overrides(tuning)`` (DTAC's decentralized stages) adds the teacher's parameters from the same folder,
and both are part of the written ``args`` (``python -m learners.train --setting tuned --tuning tuning_cd``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from learners.train import TUNING, best_params_path, make_args, method_module, suite, tuning_dir
from learners.validate import cached_reference, validate
from mecopt.core import InvalidInputError, atomic_write_text, read_json, seed_sequence, write_json


def default_storage(key: str, method: str, tuning: str = TUNING) -> str:
    return f"sqlite:///{tuning_dir(key, tuning) / f'{method}.db'}"


def study_name(key: str, method: str, tuning: str = TUNING) -> str:
    return f"{key}-{method}" if tuning == TUNING else f"{key}-{method}-{tuning}"


def fixed_overrides(key: str, method: str, fixed: dict[str, Any] | None = None, tuning: str = TUNING) -> dict[str, Any]:
    """``Args`` fixed in every trial of a study: the method's ``teacher_overrides(tuning)`` (if it has one: the
    parameters of the study it learns from, in the same tuning folder), then ``fixed``; they override the search
    space's values."""
    mod = method_module(key, method)
    hook = getattr(mod, "teacher_overrides", None)
    return {**(hook(tuning) if hook is not None else {}), **(fixed or {})}


def tune(
    key: str,
    method: str,
    trials: int | None = None,
    steps: int | None = None,
    storage: str | None = None,
    n_tune: int | None = None,
    write_best: bool = True,
    preset: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    fixed: dict[str, Any] | None = None,
    tuning: str = TUNING,
) -> Any:
    """Run (or resume) the study of ``method`` up to ``trials`` completed trials; returns the Optuna study.

    ``fixed``: ``Args`` overrides of every trial (with ``teacher_overrides``, see ``fixed_overrides``); ``tuning``:
    the folder under ``results/<key>/`` of the study's database and result (the tune split's references are the
    committed ``tuning/reference.json`` either way).

    With ``workers`` (a local Dask cluster of that many processes) or ``scheduler`` (an existing Dask cluster) the
    missing trials run as Dask tasks, one trial each, against the same study storage (SQLite on one machine; an
    Optuna RDB URL that every worker reaches across machines). Each task's sampler is seeded from the trial slot, so
    parallel start-up trials do not repeat each other.
    """
    import optuna

    s = suite(key)
    trials = s.TUNE_TRIALS if trials is None else int(trials)
    steps = s.TUNE_STEPS if steps is None else int(steps)
    preset = preset or s.PRESET
    n_tune = s.TUNE_INSTANCES if n_tune is None else int(n_tune)
    fixed = fixed_overrides(key, method, fixed, tuning)
    if storage is None:
        tuning_dir(key, tuning).mkdir(parents=True, exist_ok=True)
        storage = default_storage(key, method, tuning)
    study, objective = _study(key, method, trials, steps, storage, n_tune, preset, 0, fixed, tuning)
    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    missing = trials - done
    if missing > 0 and workers is None and scheduler is None:
        study.optimize(objective, n_trials=missing)
    elif missing > 0:
        from mecopt.cluster import dask_client

        first = len(study.trials)
        with dask_client(workers, scheduler) as client:
            futures = [
                client.submit(
                    _one_trial,
                    key,
                    method,
                    trials,
                    steps,
                    storage,
                    n_tune,
                    preset,
                    first + i + 1,
                    fixed,
                    tuning,
                    pure=False,
                )
                for i in range(missing)
            ]
            client.gather(futures)
        study = optuna.load_study(study_name=study.study_name, storage=storage)
    if write_best:
        write_best_json(key, method, study, steps, n_tune, trials, fixed, tuning)
    return study


def _study(
    key: str,
    method: str,
    trials: int,
    steps: int,
    storage: str,
    n_tune: int,
    preset: str,
    stream: int,
    fixed: dict[str, Any] | None = None,
    tuning: str = TUNING,
) -> tuple[Any, Any]:
    """The study (created or loaded) with a TPE sampler seeded for ``stream``, and the trial objective."""
    import optuna

    s = suite(key)
    mod = method_module(key, method)
    insts = s.instances("tune", n_tune, preset)
    refs = cached_reference(
        key, insts, tuning_dir(key) / "reference.json", f"tune-{preset}-{len(insts)}", s.EXACT_TIME_LIMIT, ()
    )
    not_opt = [k for k, r in enumerate(refs) if r["opt_status"] != "optimal"]
    if not_opt:
        raise RuntimeError(f"{key}: tuning instances {not_opt} have no certified optimum")
    path = ("tune", key, method) if stream == 0 else ("tune", key, method, stream)
    sampler_seed = int(seed_sequence(0, *path).generate_state(1)[0] % (2**31))
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=max(2, trials // 4), multivariate=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name(key, method, tuning),
        storage=storage,
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )

    def objective(trial: Any) -> float:
        over = {**mod.search_space(trial), **(fixed or {})}
        args = make_args(key, method, "paper", s.TUNE_SEED, preset, steps=steps, overrides=over)
        t0 = time.perf_counter()
        pol = mod.train(args, progress=False)
        rows = validate(key, pol, insts, refs, warmup=False)
        gap = 100.0 * float(np.mean([r["gap_to_opt"] for r in rows]))
        trial.set_user_attr("train_wall_s", round(time.perf_counter() - t0, 1))
        for k in ("env_steps", "env_steps_per_s", "updates_per_s"):
            trial.set_user_attr(k, pol.meta.get(k))
        print(f"{key}/{method} trial {trial.number}: gap {gap:.3f} % {trial.params}", flush=True)
        return gap

    return study, objective


def _one_trial(
    key: str,
    method: str,
    trials: int,
    steps: int,
    storage: str,
    n_tune: int,
    preset: str,
    stream: int,
    fixed: dict[str, Any] | None = None,
    tuning: str = TUNING,
) -> None:
    """One trial of the shared study (a Dask task)."""
    import torch

    torch.set_num_threads(1)
    study, objective = _study(key, method, trials, steps, storage, n_tune, preset, stream, fixed, tuning)
    study.optimize(objective, n_trials=1)


def write_best_json(
    key: str,
    method: str,
    study: Any,
    steps: int,
    n_tune: int,
    budget: int,
    fixed: dict[str, Any] | None = None,
    tuning: str = TUNING,
) -> Path:
    """Best of the first ``budget`` completed trials (by trial number): a study that ran past the budget (e.g. the
    budget was lowered for every method) is scored on the same number of trials as the others. ``fixed`` (the
    study's fixed overrides) is recorded and part of ``args``."""
    import optuna

    mod = method_module(key, method)
    all_complete = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.number
    )
    complete = all_complete[:budget]
    best = min(complete, key=lambda t: t.value)
    overrides = {**mod.search_space(optuna.trial.FixedTrial(best.params)), **(fixed or {})}
    path = best_params_path(key, method, tuning)
    extra = {"fixed": fixed} if fixed else {}
    write_json(
        path,
        {
            "key": key,
            "method": method,
            "study": study.study_name,
            "objective": f"mean gap to the certified optimum [%] on {n_tune} tune-split instances",
            "trials": len(complete),
            "steps_per_trial": steps,
            "best_trial": best.number,
            "best_gap_pct": best.value,
            "params": best.params,
            **extra,
            "args": overrides,
        },
    )
    fixed_note = (
        "Fixed in every trial: " + ", ".join(f"`{k}` = {v!r}" for k, v in sorted(fixed.items())) + "\n" if fixed else ""
    )
    lines = [
        f"# Tuning study `{study.study_name}`: {len(complete)} trials x {steps} env steps, objective = mean gap to the "
        f"certified optimum [%] on {n_tune} tune-split instances (best: trial {best.number})"
        + (
            f"; {len(all_complete) - len(complete)} later trial(s) beyond the budget are in the database, not used\n"
            if len(all_complete) > len(complete)
            else "\n"
        )
        + ("\n" + fixed_note if fixed_note else ""),
        "| trial | gap % | " + " | ".join(sorted(best.params)) + " | wall s |",
        "|---|---|" + "---|" * len(best.params) + "---|",
    ]
    for t in sorted(complete, key=lambda t: t.value):
        cells = [
            f"{t.params.get(k):.4g}" if isinstance(t.params.get(k), float) else str(t.params.get(k))
            for k in sorted(best.params)
        ]
        lines.append(
            f"| {t.number} | {t.value:.3f} | " + " | ".join(cells) + f" | {t.user_attrs.get('train_wall_s')} |"
        )
    atomic_write_text(path.with_name(f"{method}-trials.md"), "\n".join(lines) + "\n")
    return path


@dataclass
class Cli:
    key: tyro.conf.Positional[str]
    """problem key (a learner suite learners/<key>.py must exist)"""
    method: str
    """learned method to tune (one of the suite's METHODS)"""
    trials: int | None = None
    """completed trials the study should reach (default: the suite's TUNE_TRIALS, the same for every method)"""
    steps: int | None = None
    """env steps of one trial's training (default: the suite's TUNE_STEPS)"""
    storage: str | None = None
    """Optuna RDB URL (default: sqlite:///results/<key>/tuning/<method>.db)"""
    workers: int | None = None
    """run the missing trials as Dask tasks on a local cluster of this many processes (docs/scale-out.md)"""
    scheduler: str | None = None
    """run the missing trials on an existing Dask cluster (tcp://HOST:8786); storage must reach every worker"""
    fixed: str = ""
    """JSON object of Args overrides fixed in every trial, e.g. '{"channel_decode": "cell-distinct"}'"""
    tuning: str = TUNING
    """folder under results/<key>/ of the study (a study with --fixed belongs in its own, e.g. tuning_cd)"""


def parse_fixed(text: str) -> dict[str, Any]:
    """``--fixed``: a JSON object (empty text: none)."""
    if not text.strip():
        return {}
    try:
        out = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"--fixed must be a JSON object: {e}") from None
    if not isinstance(out, dict):
        raise InvalidInputError(f"--fixed must be a JSON object, got {text!r}")
    return out


def main() -> None:
    cli = tyro.cli(Cli, description=__doc__.splitlines()[0])
    tune(
        cli.key,
        cli.method,
        cli.trials,
        cli.steps,
        cli.storage,
        workers=cli.workers,
        scheduler=cli.scheduler,
        fixed=parse_fixed(cli.fixed),
        tuning=cli.tuning,
    )
    best = read_json(best_params_path(cli.key, cli.method, cli.tuning), "tuning result")
    print(f"best of {best['trials']} trials: trial {best['best_trial']}, gap {best['best_gap_pct']:.3f} %")


if __name__ == "__main__":
    main()
