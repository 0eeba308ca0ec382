"""TL (Han et al., Section IV-A): HAPPO's RNN actor (one GRU actor per UE id, local state eq. 24) trained by MSE
on the actions of the centralized TAC teacher, eq. (26), on the states of TAC's replay memory.

The teacher is the same as DTAC's (``learners/dtac_tac.get_teacher``: TAC at TAC's tuned parameters, one per seed,
cached on disk); "TL has the same labeled data of that during training the DTAC model". A = [p_x, p_l, a, b]
(eq. 16) for both student and teacher, the MSE over the UEs of each sampled round.

Run: ``PYTHONPATH=. python -m learners.dtac_tl --total-steps 2000 --out PATH`` (every Args field is a flag).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from learners.common import resolve_device, run_cli, seed_everything, write_log_csv
from learners.dtac import K_MAX, N_MAX, RnnActors, RnnPolicy, hybrid_decision, n_params
from learners.dtac_tac import Args as TacArgs
from learners.dtac_tac import (
    action_vector,
    get_teacher,
    masks_for,
    mean_objective,
    monitor_instances,
    tuned_teacher_overrides,
)
from mecopt.envs.dtac import DtacEnv
from mecopt.problems.dtac import PRESETS, VARIANTS, Instance


@dataclass
class Args(TacArgs):
    """TL: the teacher's (TAC) fields plus the RNN student's. Defaults = paper setting (Table II learning rate)."""

    stage: str = "tl"
    """fixed: the TL baseline"""
    hidden: int = 64
    """GRU width of each UE's actor (Table IV's HAPPO actor has 799k parameters; not matched at N <= 6, see docs)"""
    shared_actor: bool = False
    """L14 variant: one RNN actor shared by every UE id (input eq. 24 with the id n mod 6), so it acts at any N;
    default: one actor per UE id n < 6 (HAPPO's)"""


def teacher_overrides(tuning: str) -> dict[str, Any]:
    """``learners.tune``: the teacher's parameters fixed in every trial of a study in ``results/dtac/<tuning>/``
    (TAC's best parameters of the same folder, including its fixed overrides, e.g. the L11 ``channel_decode``)."""
    return tuned_teacher_overrides(tuning)


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space of the TL stage (issue #11); the teacher's parameters are TAC's tuned ones."""
    return {
        **tuned_teacher_overrides(),
        "lr_tl": trial.suggest_float("lr_tl", 1e-4, 3e-3, log=True),
        "tl_batch_size": trial.suggest_categorical("tl_batch_size", [32, 64, 128]),
        "hidden": trial.suggest_categorical("hidden", [32, 64, 128]),
    }


class TlPolicy(RnnPolicy):
    method = "tl"


def local_batch(b: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. (24) for a replay batch: [n, k, features] per UE (ids scaled as in ``learners.dtac.local_state``)."""
    B, n_pad, _ = b["f"].shape
    n = (torch.arange(n_pad, dtype=torch.float32) / max(N_MAX - 1, 1)).expand(B, n_pad)
    k = b["srv"].float() / max(K_MAX - 1, 1)
    return torch.cat([n[..., None], k[..., None], b["f"]], -1)


def train(
    args: Args, env_fn: Callable[[], DtacEnv] | None = None, csv_path: str | None = None, progress: bool = True
) -> TlPolicy:
    resolve_device(args.device)
    t0 = time.perf_counter()
    teacher = get_teacher(args, env_fn, progress)
    rng = seed_everything(args.seed, "tl-stage", "tl")
    policy = TlPolicy(args, N_MAX, PRESETS[args.preset].K, {"preset": args.preset, "any_size": True})
    student: RnnActors = policy.net  # type: ignore[assignment]
    student.train()
    for p in teacher.actor.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr_tl, weight_decay=args.weight_decay)
    monitor = monitor_instances(args.preset, dict(VARIANTS[args.variant]))
    a_min, b_min = monitor[0].a_min, monitor[0].b_min
    rows = [{**r, "stage_loss": float("nan")} for r in teacher.rows]
    size = len(teacher.data["L"])
    if teacher.data["f"].shape[1] > N_MAX:
        raise ValueError(f"TL: training rounds have up to {teacher.data['f'].shape[1]} UEs > N_MAX = {N_MAX}")
    t1 = time.perf_counter()
    for k in range(args.tl_updates):
        idx = rng.integers(0, size, size=args.tl_batch_size)
        b = {key: torch.as_tensor(v[idx]) for key, v in teacher.data.items()}
        mask = masks_for(b["L"])
        with torch.no_grad():
            target = action_vector(teacher.actor(b["f"], b["srv"], b["pad"]), mask, a_min, b_min)["A"]
        obs = local_batch(b)
        out, _ = student(obs, torch.zeros(obs.shape[0], obs.shape[1], student.hidden))
        act = action_vector(out, mask, a_min, b_min)
        valid = (~b["pad"]).float()[..., None]
        loss = (((act["A"] - target) ** 2) * valid).sum() / valid.sum()  # eq. (26)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if args.eval_every and ((k + 1) % args.eval_every == 0 or k == 0):
            policy.net.eval()

            def dec(inst: Instance) -> Any:
                return hybrid_decision(inst, *policy.outputs(inst), args.channel_decode)

            rows.append(
                {
                    "episode": float(len(rows)),
                    "global_step": float(teacher.steps + k + 1),
                    "system_utility": float("nan"),
                    "phase": 2.0,
                    "eval_objective": mean_objective(dec, monitor),
                    "stage_loss": float(loss.detach()),
                    "wall_s": time.perf_counter() - t1,
                }
            )
            policy.net.train()
        if args.time_budget_s is not None and time.perf_counter() - t1 > args.time_budget_s:
            break
    policy.net.eval()
    if csv_path is not None:
        write_log_csv(csv_path, rows)
    policy.meta.update(
        {
            "seed": args.seed,
            "env_steps": teacher.steps,
            "stopped_by_time_budget": teacher.steps < args.total_steps,
            "train_wall_s": round(time.perf_counter() - t0, 1),
            **teacher.meta,
            "tl_updates": args.tl_updates,
            "params_actor": n_params(student),
            "params_actor_per_ue": n_params(student) // len(student.agents),
            "params_teacher_actor": n_params(teacher.actor),
            "ue_per_server": list(args.ue_per_server),
            "decentralized": True,
        }
    )
    return policy


def main() -> None:
    run_cli(Args, train, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
