"""Figs. 4-6 of the INTO paper, reduced (issue #15): INTO and DDQN retrained at every point of the sweeps.

The paper retrains its learners for every point of Figs. 4-6 (award g, density v, channel scale sigma, harvested
energy e; task size chi, BS capacity F, deadline factor psi, bandwidth B). Reduced here: the `small` calibration
preset with one swept parameter changed (:data:`FIG45`, :data:`FIG6`, :func:`point_config`), the padded `small`
architecture with the tuned parameters of ``results/into/tuning/<method>.json`` (no per-point tuning), one training
seed (``SEED``) and one equal budget of ``STEPS`` env steps for every point and both methods -- the default point
too, so that every point of a sweep has the same budget (the main tuned runs have ``LONG_STEPS``). Weights are
stored in float16 (``meta.weights_dtype``; 34 checkpoints, DDQN's (512, 256) network is 1.2 MB in float32) and
scored as loaded.

``PYTHONPATH=. python -m learners.into_figs [--methods into,ddqn] [--steps N] [--seed 2 --sweeps fig6]`` ->
``results/into/figs/{checkpoints,training}/<method>-small-<point>-seed<s>``; resumable: a run whose checkpoint exists
is skipped. A second training seed exists at the Fig. 6 points (and the default point) only. The bench suite
(``bench/test_into_learners.py::test_reduced_figures``) scores them on the seeded test slots of each point beside
the default-point policies, the heuristics and the certified optimum.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import tyro

from learners.common import TorchPolicy
from learners.into import KEY, METHODS, PRESET, Episodes
from learners.train import make_args, method_module
from mecopt.core import InvalidInputError, results_dir
from mecopt.problems.into import PRESETS, Config

SEED = 1
#: training seeds a per-point run may have (seed 2 only at the Fig. 6 points: ``--seed 2 --sweeps fig6``)
SEEDS = (1, 2)
#: env steps per run, every point and both methods (measured: see results/into/findings.md, Figs. 4-6)
STEPS = 6_000
#: Fig. 4 (award g, density v), Fig. 5 (channel scale sigma, harvest e): multipliers of the `small` ranges
FIG45: dict[str, tuple[str, tuple[float, ...]]] = {
    "award g (Fig. 4a)": ("g_range", (0.5, 1.0, 2.0)),
    "density v (Fig. 4b)": ("v_range", (0.5, 1.0, 2.0)),
    "channel sigma (Fig. 5a)": ("sigma", (0.5, 1.0, 2.0)),
    "harvest e (Fig. 5b)": ("e_range_w", (0.5, 1.0, 2.0)),
}
#: Fig. 6(a-d): task size chi, capacity F (x 0.5 GHz), deadline psi, bandwidth B (x 1 MHz)
FIG6: dict[str, tuple[str, tuple[float, ...]]] = {
    "task size chi (Fig. 6a)": ("chi", (1.0, 1.3, 1.6)),
    "capacity F (Fig. 6b)": ("F_hz", (0.5, 1.0, 2.0)),
    "deadline psi (Fig. 6c)": ("psi", (1.0, 2.0, 4.0)),
    "bandwidth B (Fig. 6d)": ("B_hz", (0.5, 1.0, 1.5)),
}
#: the x of the default `small` point (every sweep passes through it)
DEFAULT_X = 1.0
#: Figs. 4-5 as the paper runs them (Section V-B 3-6), scored without retraining: Fig. 4(a) scales the awards of
#: BS 1's devices only (xi * g_1j), Fig. 4(b) the densities of BS 2-3's devices only (zeta * v_2j, zeta * v_3j),
#: both through the per-BS multipliers ``Config.g_scale_bs`` / ``v_scale_bs``; Fig. 5 scales every device (sigma *
#: h_ij, rho * e_ij), a plain multiplier of :func:`point_config`. label -> (Config field, the scaled BSs (0-based;
#: None: every device), the paper's x values). The paper has no Fig. 4(c)-(d).
FIG45_PAPER: dict[str, tuple[str, tuple[int, ...] | None, tuple[float, ...]]] = {
    "award xi, BS 1 only (Fig. 4a)": ("g_scale_bs", (0,), (1.0, 1.5, 2.0, 2.5, 3.0)),
    "density zeta, BS 2-3 only (Fig. 4b)": ("v_scale_bs", (1, 2), (1.0, 1.1, 1.2, 1.3, 1.4)),
    "channel sigma, every device (Fig. 5a)": ("sigma", None, (0.2, 0.4, 0.6, 0.8, 1.0, 1.2)),
    "harvest rho, every device (Fig. 5b)": ("e_range_w", None, (0.2, 0.4, 0.6, 0.8, 1.0, 1.2)),
}
#: Config fields that hold one multiplier per BS (:func:`per_bs_config`)
PER_BS_FIELDS = ("g_scale_bs", "v_scale_bs")


def point_config(field_name: str, a: float) -> Config:
    """The `small` generator config with ``field_name`` scaled by ``a`` (chi, psi: set to ``a``; a range: both
    ends times ``a``; a scalar: times ``a``)."""
    base = PRESETS[PRESET]
    if not hasattr(base, field_name):
        raise InvalidInputError(f"into figs: unknown generator field {field_name!r}")
    if not a > 0:
        raise InvalidInputError(f"into figs: the multiplier must be > 0, got {a!r}")
    val = getattr(base, field_name)
    if field_name in ("chi", "psi"):
        new: float | tuple[float, float] = float(a)
    elif isinstance(val, tuple):
        new = (val[0] * a, val[1] * a)
    else:
        new = val * a
    return replace(base, **{field_name: new})


def per_bs_config(field_name: str, bss: tuple[int, ...], a: float) -> Config:
    """The `small` generator config with the per-BS multiplier ``field_name`` (``g_scale_bs`` / ``v_scale_bs``) set
    to ``a`` at the BSs ``bss`` (0-based) and 1 at the others, e.g. Fig. 4(a)'s xi at BS 1: ``("g_scale_bs", (0,),
    xi)``."""
    base = PRESETS[PRESET]
    if field_name not in PER_BS_FIELDS:
        raise InvalidInputError(f"into figs: per-BS field must be one of {PER_BS_FIELDS}, got {field_name!r}")
    if not bss or any(not 0 <= b < base.N for b in bss):
        raise InvalidInputError(f"into figs: {field_name}: the scaled BSs must be in 0..{base.N - 1}, got {bss!r}")
    if not a > 0:
        raise InvalidInputError(f"into figs: {field_name}: the multiplier must be > 0, got {a!r}")
    return replace(base, **{field_name: tuple(float(a) if b in bss else 1.0 for b in range(base.N))})


def paper_point_config(field_name: str, bss: tuple[int, ...] | None, a: float) -> Config:
    """The config of one :data:`FIG45_PAPER` point: :func:`per_bs_config` for a per-BS field, else
    :func:`point_config` (every device)."""
    return point_config(field_name, a) if bss is None else per_bs_config(field_name, bss, a)


def points(sweeps: str = "all") -> list[tuple[str, float]]:
    """Every distinct (field, x) training point of ``sweeps`` ('all', 'fig45' or 'fig6'): the non-default points,
    then the default point once (``("default", 1.0)``)."""
    chosen = {"all": (*FIG45.values(), *FIG6.values()), "fig45": tuple(FIG45.values()), "fig6": tuple(FIG6.values())}
    if sweeps not in chosen:
        raise InvalidInputError(f"into figs: sweeps must be one of {sorted(chosen)}, got {sweeps!r}")
    out = [(f, a) for f, xs in chosen[sweeps] for a in xs if a != DEFAULT_X]
    return [*out, ("default", DEFAULT_X)]


def folder() -> Path:
    return results_dir() / KEY / "figs"


def stem(method: str, field_name: str, a: float, seed: int = SEED) -> Path:
    """Checkpoint path (without suffix) of one run, e.g. ``into-small-g_range0p5-seed1``; log in ``training/``."""
    tag = "default" if field_name == "default" else f"{field_name}{a:g}".replace(".", "p")
    return folder() / "checkpoints" / f"{method}-{PRESET}-{tag}-seed{seed}"


def train_one(method: str, field_name: str, a: float, steps: int = STEPS, seed: int = SEED) -> TorchPolicy:
    """One run at one point: tuned ``Args``, the episode stream drawn from the point's generator config."""
    if method not in METHODS:
        raise InvalidInputError(f"into figs: unknown method {method!r}; choose from {sorted(METHODS)}")
    cfg = PRESETS[PRESET] if field_name == "default" else point_config(field_name, a)
    args = make_args(KEY, method, "tuned", seed, steps=steps)
    action, cpu = ("proto", args.cpu) if method == "into" else ("discrete", "min-scaled")
    path = stem(method, field_name, a, seed)
    pol = method_module(KEY, method).train(
        args,
        env_fn=lambda: Episodes(cfg, args.horizon, action, cpu),
        csv_path=str(folder() / "training" / f"{path.name}.csv"),
        progress=False,
    )
    pol.meta.update({"setting": "tuned", "preset": f"{PRESET}-fig", "fig_point": {field_name: a}})
    pol.meta["weights_dtype"] = "float16"  # 34 checkpoints: stored in half precision (scored as loaded)
    pol.save(path)
    return pol


@dataclass
class Cli:
    methods: str = ",".join(METHODS)
    """comma-separated methods"""
    steps: int = STEPS
    """env steps per run (keep it equal for every point)"""
    seed: int = SEED
    """training seed (one of SEEDS)"""
    sweeps: str = "all"
    """which points: 'all', 'fig45' or 'fig6' (the default point is always included)"""


def main() -> None:
    cli = tyro.cli(Cli, description=__doc__.splitlines()[0])
    if cli.seed not in SEEDS:
        raise InvalidInputError(f"into figs: seed must be one of {SEEDS}, got {cli.seed}")
    for field_name, a in points(cli.sweeps):
        for method in (m for m in cli.methods.split(",") if m):
            if stem(method, field_name, a, cli.seed).with_suffix(".json").exists():
                continue  # resumable
            pol = train_one(method, field_name, a, cli.steps, cli.seed)
            print(f"{KEY}/{method} fig point {field_name}={a:g} seed {cli.seed}: {pol.meta}", flush=True)


if __name__ == "__main__":
    main()
