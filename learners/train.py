"""Train a paper's learned methods under the protocol (issue #11): paper setting or tuned, several seeds.

``PYTHONPATH=. python -m learners.train dtomalb --methods dtomalb,dtoma --setting tuned --seeds 1,2,3``

* ``--setting paper``: each method's ``Args`` defaults (the paper setting, untuned), ``PAPER_STEPS`` env steps;
* ``--setting tuned``: the defaults overridden by the best parameters of the committed tuning study
  (``results/<key>/tuning/<method>.json``, written by ``python -m learners.tune``), ``TUNE_STEPS`` env steps (the
  budget the parameters were tuned for) unless the suite's ``TUNED_STEPS`` (method -> env steps) names another.

The suite ``learners/<key>.py`` names the methods (``METHODS``), the seeds and the budgets. Outputs (under
``results_dir()/<key>/``, or ``--out``): tuned seed ``FINAL_SEEDS[0]`` goes to ``checkpoints/<method>-<preset>``
(the committed method the registry serves), the other tuned seeds to ``seeds/checkpoints/<method>-<preset>-seed<s>``,
paper-setting runs to ``untuned/checkpoints/<method>-<preset>-seed<s>``; CSV logs next to them in ``training/``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import tyro

from learners.common import TorchPolicy
from mecopt.core import InvalidInputError, read_json, results_dir

Setting = Literal["paper", "tuned"]


def suite(key: str) -> ModuleType:
    """The learner suite ``learners/<key>.py`` of a problem (methods, protocol settings)."""
    try:
        return importlib.import_module(f"learners.{key}")
    except ModuleNotFoundError:
        raise InvalidInputError(f"problem {key!r} has no learner suite (learners/{key}.py)") from None


def method_module(key: str, method: str) -> ModuleType:
    s = suite(key)
    if method not in s.METHODS:
        raise InvalidInputError(f"{key}: unknown learned method {method!r}; choose from {list(s.METHODS)}")
    return importlib.import_module(s.METHODS[method].module)


#: the folder (under ``results/<key>/``) of the committed tuning studies; others (e.g. ``tuning_cd``, studies with
#: fixed ``Args`` overrides) are named by ``--tuning``
TUNING = "tuning"


def tuning_dir(key: str, tuning: str = TUNING) -> Path:
    if not tuning or "/" in tuning or tuning.startswith("."):
        raise InvalidInputError(f"{key}: tuning must be a folder name under results/{key}/, got {tuning!r}")
    return results_dir() / key / tuning


def best_params_path(key: str, method: str, tuning: str = TUNING) -> Path:
    return tuning_dir(key, tuning) / f"{method}.json"


def tuned_overrides(key: str, method: str, tuning: str = TUNING) -> dict[str, Any]:
    """``Args`` overrides found by the tuning study of ``method`` in ``results/<key>/<tuning>/`` (the best trial's
    parameters plus the study's fixed overrides)."""
    path = best_params_path(key, method, tuning)
    if not path.exists():
        raise InvalidInputError(
            f"{key}/{method}: no tuning result {path} (run python -m learners.tune {key} --tuning {tuning} ...)"
        )
    return dict(read_json(path, "tuning result")["args"])


def tuned_steps(key: str, method: str) -> int:
    """Env steps of a final tuned run of ``method``: the suite's ``TUNED_STEPS[method]``, else ``TUNE_STEPS``."""
    s = suite(key)
    return int(getattr(s, "TUNED_STEPS", {}).get(method, s.TUNE_STEPS))


def make_args(
    key: str,
    method: str,
    setting: Setting,
    seed: int,
    preset: str | None = None,
    steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    tuning: str = TUNING,
) -> Any:
    """The ``Args`` of one training run: defaults (+ tuned parameters of the study in ``results/<key>/<tuning>/``)
    (+ ``overrides``) + seed/preset/steps."""
    s = suite(key)
    mod = method_module(key, method)
    kw: dict[str, Any] = dict(s.METHODS[method].fixed)
    if setting == "tuned":
        kw.update(tuned_overrides(key, method, tuning))
    elif setting != "paper":
        raise InvalidInputError(f"setting must be 'paper' or 'tuned', got {setting!r}")
    kw.update(overrides or {})
    n = steps if steps is not None else (tuned_steps(key, method) if setting == "tuned" else s.PAPER_STEPS)
    kw.update(seed=int(seed), preset=preset or s.PRESET, total_steps=int(n), time_budget_s=s.BUDGET_S, device=device)
    return mod.Args(**kw)


def run_stem(
    key: str, method: str, setting: Setting, seed: int, preset: str, out: Path | None = None, suffix: str = ""
) -> Path:
    """Checkpoint path (without suffix) of one run; its CSV log is ``training/<same name>.csv`` next to it."""
    s = suite(key)
    base = out if out is not None else results_dir() / key
    name = f"{method}-{preset}{suffix}"
    if setting == "paper":
        return base / "untuned" / "checkpoints" / f"{name}-seed{seed}"
    if seed == s.FINAL_SEEDS[0]:
        return base / "checkpoints" / name
    return base / "seeds" / "checkpoints" / f"{name}-seed{seed}"


def log_path(stem: Path) -> Path:
    return stem.parent.parent / "training" / f"{stem.name}.csv"


def override_suffix(overrides: dict[str, Any] | None) -> str:
    """Checkpoint-name suffix of ``Args`` overrides, e.g. ``-n_users6-w2900``: floats without a dot (``0.5`` ->
    ``0p5``), which ``Path.with_suffix`` would take for a file extension and two seeds would then share a file."""
    return "".join(
        f"-{k}{v:g}".replace(".", "p") if isinstance(v, float) else f"-{k}{v}"
        for k, v in sorted((overrides or {}).items())
    )


def train_and_save(
    key: str,
    method: str,
    setting: Setting = "tuned",
    seed: int = 1,
    preset: str | None = None,
    steps: int | None = None,
    out: Path | None = None,
    progress: bool = True,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
    tuning: str = TUNING,
) -> TorchPolicy:
    args = make_args(key, method, setting, seed, preset, steps, overrides, device=device, tuning=tuning)
    mod = method_module(key, method)
    suffix = override_suffix(overrides)
    stem = run_stem(key, method, setting, seed, args.preset, out, suffix)
    policy = mod.train(args, csv_path=str(log_path(stem)), progress=progress)
    policy.meta.update({"setting": setting, "preset": args.preset})
    if setting == "tuned" and tuning != TUNING:
        policy.meta["tuning"] = tuning
    policy.save(stem)
    return policy


@dataclass
class Cli:
    key: tyro.conf.Positional[str]
    """problem key (a learner suite learners/<key>.py must exist)"""
    methods: str = ""
    """comma-separated learned methods (default: all of the suite; with --setting tuned, those with a tuning study)"""
    setting: Setting = "tuned"
    """'paper' (Args defaults, untuned) or 'tuned' (best parameters of the committed study)"""
    tuning: str = TUNING
    """with --setting tuned: the folder under results/<key>/ whose studies give the parameters (e.g. tuning_cd)"""
    seeds: str = ""
    """comma-separated training seeds (default: the suite's FINAL_SEEDS)"""
    preset: str = ""
    """generator preset of the training env (default: the suite's PRESET)"""
    steps: int | None = None
    """env steps per run (default: TUNED_STEPS / TUNE_STEPS when tuned, PAPER_STEPS for the paper setting)"""
    out: str | None = None
    """folder instead of results/<key>/ (e.g. a scratch run)"""
    device: str = "cpu"
    """torch device of training ('cpu' or 'cuda')"""
    n_users: int | None = None
    """override the preset's number of users (methods whose Args has ``n_users``; checkpoint name gets -n_usersN)"""
    w2: float | None = None
    """override the reward's load-balancing weight w2 (methods whose Args has ``w2``; checkpoint name gets -w2X)"""


def main() -> None:
    cli = tyro.cli(Cli, description=__doc__.splitlines()[0])
    s = suite(cli.key)
    methods = [m for m in cli.methods.split(",") if m] or list(s.METHODS)
    if not cli.methods and cli.setting == "tuned":  # default: the methods that have a tuning study
        untuned = [m for m in methods if not best_params_path(cli.key, m, cli.tuning).exists()]
        methods = [m for m in methods if m not in untuned]
        if untuned:
            print(f"skipping {untuned}: no tuning result (name them with --methods and --setting paper)", flush=True)
    seeds = [int(x) for x in cli.seeds.split(",") if x] or list(s.FINAL_SEEDS)
    for seed in seeds:
        for method in methods:
            pol = train_and_save(
                cli.key,
                method,
                cli.setting,
                seed,
                cli.preset or None,
                cli.steps,
                Path(cli.out) if cli.out else None,
                device=cli.device,
                overrides={k: v for k, v in (("n_users", cli.n_users), ("w2", cli.w2)) if v is not None} or None,
                tuning=cli.tuning,
            )
            print(f"{cli.key}/{method} {cli.setting} seed {seed}: {pol.meta}", flush=True)


if __name__ == "__main__":
    main()
