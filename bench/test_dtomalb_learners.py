"""DTOMALB learned policies vs the certified optimum and the heuristics, under the protocol of issue #11.

Runs only with ``pytest --benchmark``; it reads the committed checkpoints and never trains (``--retrain`` first
reruns the committed recipes: ``python -m learners.train dtomalb`` for the tuned seeds, ~10 minutes). Inputs:

* tuned runs: ``checkpoints/<method>-paper`` (seed 1) and ``seeds/checkpoints/<method>-paper-seed{2,3}``, trained
  with the best parameters of ``tuning/<method>.json`` (``python -m learners.tune``);
* paper-setting (untuned) runs: ``untuned/checkpoints/<method>-paper-seed{1,2,3}`` (30 000 env steps, Args
  defaults, trained before issue #11: the time limit was stored as terminal);
* Fig. 7 / Fig. 8 runs: ``fig7/checkpoints/dtomalb-paper-n_users<N>``, ``checkpoints/dtomalb-fig8``.

Outputs under ``results/dtomalb/``: ``learners.md``/``.json`` (held-out test split, 95 % bootstrap CIs over seeds x
instances, max gap, % within 1 %, latency), ``learners_seeds.md``, ``env_utility.md``, ``training_fig5.png``,
``training_fig6.png``, ``fig7_users.md``/``.png``, ``fig8_load.md``/``.png``. Exact references are cached in
``learners_reference.json`` (keyed by a hash of the instances; every test instance must be certified optimal).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tabulate import tabulate

from bench import learner_suite as LS
from learners import dtomalb as suite
from learners.common import TorchPolicy, load_policy, plot_training_curves, read_log_csv
from learners.protocol import decision_latency, mean_ci, separated, split_rng
from learners.train import train_and_save
from learners.validate import SolverPolicy, summarize, validate
from mecopt.core import SolveOptions, atomic_write_bytes, atomic_write_text, write_json
from mecopt.envs.dtomalb import DtomalbEnv
from mecopt.problems.dtomalb import KEY, PRESETS, Decision, Instance, evaluate
from solvers import solve

LEARNED = tuple(suite.METHODS)
FIG8_INSTANCES = 16
FIG7_USERS = (4, 6, 8, 10, 12)
FIG7_INSTANCES = 12
ENV_EPISODES = 20
VALUES = ("mean_delay_s", "var_LD")


@pytest.fixture(scope="module", autouse=True)
def _bench_selection(bench_cfg):  # type: ignore[no-untyped-def]
    """Honour --bench-problems; the learner evaluation (minutes of exact references) is not part of --bench-quick."""
    LS.skip_unless_selected(bench_cfg, KEY)


class RoundRobin:
    """Diagnostic, not a paper method: user n -> server (n mod M) + 1, whatever the instance (uses no information)."""

    name = "round-robin"

    def decide(self, inst: Instance) -> Decision:
        return Decision(a=np.arange(inst.N) % inst.M + 1)


def out_dir() -> Path:
    return LS.out_dir(KEY)


def refs_for(name: str, insts: list[Instance]) -> list[dict[str, Any]]:
    return LS.certified_refs(KEY, insts, name, suite.EXACT_TIME_LIMIT)


@pytest.fixture(scope="module")
def runs(request) -> dict[str, dict[int, TorchPolicy]]:
    """{"<method>" (tuned) / "<method> (paper setting)": {seed: policy}} plus "dtomalb@fig8"."""

    def retrain() -> None:
        for seed in suite.FINAL_SEEDS:
            for m in LEARNED:
                train_and_save(KEY, m, "tuned", seed, progress=False)
        train_and_save(KEY, "dtomalb", "tuned", 1, preset="fig8", progress=False)

    out = LS.load_runs(KEY, "paper", LEARNED, retrain=retrain if request.config.getoption("--retrain") else None)
    fig8 = out_dir() / "checkpoints" / "dtomalb-fig8.json"
    if fig8.exists():
        out["dtomalb@fig8"] = {1: load_policy(fig8.with_suffix(""))}
    return out


def _fmt(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def test_learners_vs_optimum(benchmark, runs):
    """Held-out test split: every method's gap to the certified optimum, 95 % CI over seeds x instances."""
    insts = suite.instances("test", suite.TEST_INSTANCES)
    refs = refs_for("test-paper", insts)
    contenders = LS.contenders(
        KEY, runs, LEARNED, extra={"random": SolverPolicy(KEY, "random"), "round-robin (diagnostic)": RoundRobin()}
    )
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {}
    latency: dict[str, dict[str, float]] = {}

    def run():
        LS.prevalidate(KEY, "test-paper", [p for bs in contenders.values() for p in bs.values()], insts, refs)
        for name, by_seed in contenders.items():
            raw[name] = {s: LS.validated(KEY, "test-paper", p, insts, refs) for s, p in by_seed.items()}
            first = by_seed[min(by_seed)]
            latency[name] = decision_latency(first, insts, n=200, warmup=20)

    benchmark.pedantic(run, rounds=1, iterations=1)
    table, cis = [], {}
    for name, by_seed in raw.items():
        row, cis[name], summ = LS.gap_row(name, by_seed, contenders[name][min(by_seed)], VALUES, "objective")
        table.append(
            {
                **row,
                "gap to best heur. %": _fmt(float(np.mean([s["gap_to_best_heuristic_pct"] for s in summ])), 2),
                "latency median [ms]": round(latency[name]["median_ms"], 3),
            }
        )
    pairs = [
        ("dtomalb", "lb-greedy"),
        ("dtomalb", "selfish"),
        ("dtomalb", "dtoma"),
        ("dtomalb", "dqn-tolb"),
        ("dtomalb", "idql-tolb"),
        ("dqn-tolb", "idql-tolb"),
        ("dtomalb", "dtomalb (paper setting)"),
        ("dtoma", "dtoma (paper setting)"),
        ("idql-tolb", "idql-tolb (paper setting)"),
        ("dqn-tolb", "dqn-tolb (paper setting)"),
        ("dtomalb", "round-robin (diagnostic)"),
    ]
    verdicts = []
    for a, b in pairs:
        if a in cis and b in cis:
            ca, cb = cis[a], cis[b]
            if separated(ca, cb):
                win, lose = (a, b) if ca.mean < cb.mean else (b, a)
                verdicts.append(f"* `{win}` beats `{lose}`: {cis[win].fmt()} vs {cis[lose].fmt()} % (CIs separate)")
            else:
                verdicts.append(f"* `{a}` vs `{b}`: {ca.fmt()} vs {cb.fmt()} % -- CIs overlap, no claim")
    opt_obj = float(np.mean([r["opt_objective"] for r in refs]))
    md = (
        f"# DTOMALB learned policies vs certified optimum: held-out test split ({len(insts)} seeded `paper` "
        "slots, N=10, M=5, objective `delay+lb` = w1 mean delay + w2 var(LD), the negated mean reward of eq. (20))\n\n"
        f"`exact`: certified optimal on all {len(insts)} test slots (mean optimum {opt_obj:.4f}). Protocol "
        "(docs/learners.md): test slots come from their own seeded stream, disjoint from training episodes and "
        "from the tuning-validation split. `mean gap %` = mean of `relative_gap` (denominator = optimum) over "
        "seeds x instances with its 95 % BCa bootstrap CI (`scipy.stats.bootstrap`, pooled pairs); deterministic "
        "methods have one 'seed'. `within 1 % of opt` = share of (seed, instance) pairs. `gap to best heur.` is "
        "signed (negative = better than every heuristic). Latency: median of 200 `decide` calls after 20 warm-up "
        "calls, torch pinned to 1 thread (seed-1 policy; shared 2-core machine). Tuned runs: "
        f"{suite.TUNE_STEPS} env steps with the parameters of `tuning/<method>.json`; paper setting: Args "
        f"defaults, {suite.PAPER_STEPS} env steps.\n\n"
        + tabulate(table, headers="keys", tablefmt="github")
        + "\n\n## Comparisons (a claim only where the 95 % CIs separate)\n\n"
        + "\n".join(verdicts)
        + "\n"
    )
    atomic_write_text(out_dir() / "learners.md", md)
    write_json(
        out_dir() / "learners.json",
        {
            "summary": table,
            "ci": {k: [c.mean, c.lo, c.hi, c.n] for k, c in cis.items()},
            "latency": latency,
            "per_instance": {
                n: {
                    s: [{k: r[k] for k in ("objective", "gap_to_opt", "decision")} for r in rows]
                    for s, rows in d.items()
                }
                for n, d in raw.items()
            },
        },
    )
    benchmark.extra_info.update({k: c.mean for k, c in cis.items()})
    for m in LEARNED:
        for rows in raw[m].values():
            assert all(r["feasible"] for r in rows)
            assert all(r["gap_to_bound"] >= -1e-6 for r in rows)  # nothing beats the proven bound


def test_seed_spread(benchmark, runs):
    """Per training seed: mean gap on the test split, env steps, training wall time, env steps/s, updates/s."""
    insts = suite.instances("test", suite.TEST_INSTANCES)
    refs = refs_for("test-paper", insts)
    table: list[dict[str, Any]] = []

    def run():
        table.extend(
            LS.seed_spread_table(KEY, "test-paper", {n: r for n, r in runs.items() if n != "dtomalb@fig8"}, insts, refs)
        )

    benchmark.pedantic(run, rounds=1, iterations=1)
    atomic_write_text(
        out_dir() / "learners_seeds.md",
        f"# Training-seed spread: mean gap to the certified optimum on the {len(insts)} held-out test slots, per "
        "seed (tuned: seeds 1-3 at the tuning budget; paper setting: seeds 1-3, 30 000 steps, trained before the "
        "speed counters existed). Speeds are measured inside training on the shared 2-core machine (env steps/s "
        "= env.step calls only; updates/s = gradient updates only).\n\n"
        + tabulate(table, headers="keys", tablefmt="github")
        + "\n",
    )
    benchmark.extra_info.update({r["method"]: r["mean over seeds"] for r in table})


def _env_utility(policy: Any, episodes: int = ENV_EPISODES) -> dict[str, float]:
    """Greedy policy in the multi-slot env: Fig. 5's system utility = mean over users of the episode return.
    Episode seeds come from the protocol's test stream."""
    env = DtomalbEnv("paper", objective="delay+lb")
    utils, delays, var = [], [], []
    for ep in range(episodes):
        env.reset(seed=int(split_rng(KEY, "test", "env-episode", ep).integers(0, 2**31 - 1)))
        total, done = 0.0, False
        while not done:
            a = policy.decide(env.instance).a
            _, r, term, trunc, info = env.step(a)
            done = term or trunc
            total += r
            delays.append(info["mean_delay_s"])
            var.append(info["var_LD"])
        utils.append(total)
    ci = mean_ci(utils)
    return {
        "system_utility": ci.mean,
        "95% CI": f"[{ci.lo:.3f}, {ci.hi:.3f}]",
        "mean_delay_s": float(np.mean(delays)),
        "var_LD": float(np.mean(var)),
    }


def test_env_utility_and_training_curves(benchmark, runs):
    contenders: dict[str, Any] = {m: runs[m][1] for m in LEARNED}
    contenders.update(
        {f"{m} (paper setting)": runs[f"{m} (paper setting)"][1] for m in LEARNED if f"{m} (paper setting)" in runs}
    )
    contenders.update({h: SolverPolicy(KEY, h) for h in ("lb-greedy", "selfish", "random")})
    contenders["round-robin (diagnostic)"] = RoundRobin()
    res: dict[str, dict] = {}
    benchmark.pedantic(lambda: res.update({n: _env_utility(p) for n, p in contenders.items()}), rounds=1, iterations=1)
    table = [
        {"method": n, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}} for n, r in res.items()
    ]
    atomic_write_text(
        out_dir() / "env_utility.md",
        f"# Greedy system utility in the DTOMALB env (`paper`, {ENV_EPISODES} episodes x 10 slots from the test "
        "stream; higher is better; Fig. 5's y-axis; 95 % bootstrap CI over episodes; learned: seed 1)\n\n"
        + tabulate(table, headers="keys", tablefmt="github")
        + "\n",
    )
    logs: dict[str, list[dict[str, float]]] = {}
    for m in LEARNED:
        for label, p in (
            (m, out_dir() / "training" / f"{m}-paper.csv"),
            (f"{m} (paper setting)", out_dir() / "untuned" / "training" / f"{m}-paper-seed1.csv"),
        ):
            if p.exists():
                logs[label] = read_log_csv(p)
    plot_training_curves(
        {k.upper(): logs[k] for k in ("dtomalb", "dqn-tolb", "idql-tolb") if k in logs},
        out_dir() / "training_fig5.png",
        f"Fig. 5 analogue: tuned training, seed 1 ({suite.TUNE_STEPS} slots)",
    )
    # DTOMA trains on w2 = 0: re-score both runs with eq. (20)'s full reward from the logged mean delay and var(LD)
    cfg, horizon = PRESETS["paper"], 10
    lb_logs = {
        k: [{**r, "system_utility": -horizon * (cfg.w1 * r["mean_delay_s"] + cfg.w2 * r["var_LD"])} for r in logs[k]]
        for k in ("dtomalb", "dtoma", "dtomalb (paper setting)", "dtoma (paper setting)")
        if k in logs
    }
    plot_training_curves(
        {k.upper(): v for k, v in lb_logs.items()},
        out_dir() / "training_fig6.png",
        "Fig. 6 analogue: with / without load balancing (both scored with eq. (20), w2 = 1)",
    )
    benchmark.extra_info.update({n: r["system_utility"] for n, r in res.items()})


def test_fig7_users(benchmark, runs):
    """Fig. 7 analogue: system utility (= -objective per slot) and gap to the certified optimum vs N (M = 5)."""
    folder = out_dir() / "fig7" / "checkpoints"
    pols: dict[int, TorchPolicy] = {10: runs["dtomalb"][1]}
    for p in LS.load_dir(folder, "dtomalb-paper-n_users*.json"):
        pols[p.N] = p
    if set(FIG7_USERS) - set(pols):
        pytest.skip(f"no Fig. 7 checkpoints for N={sorted(set(FIG7_USERS) - set(pols))}")
    methods = ["dtomalb", "lb-greedy", "selfish", "round-robin (diagnostic)", "random"]
    res: dict[str, dict[int, dict[str, float]]] = {m: {} for m in [*methods, "exact"]}

    def run():
        for N in FIG7_USERS:
            insts = suite.instances("test", FIG7_INSTANCES, n_users=N)
            refs = refs_for(f"test-fig7-N{N}", insts)
            res["exact"][N] = {
                "utility": -float(np.mean([r["opt_objective"] for r in refs])),
                "gap": 0.0,
                "lo": 0.0,
                "hi": 0.0,
            }
            for m in methods:
                pol = pols[N] if m == "dtomalb" else RoundRobin() if m.startswith("round") else SolverPolicy(KEY, m)
                rows = validate(KEY, pol, insts, refs)
                ci = mean_ci([100 * r["gap_to_opt"] for r in rows])
                res[m][N] = {
                    "utility": -float(np.mean([r["objective"] for r in rows])),
                    "gap": ci.mean,
                    "lo": ci.lo,
                    "hi": ci.hi,
                }

    benchmark.pedantic(run, rounds=1, iterations=1)

    def cell(m: str, N: int) -> str:
        r = res[m][N]
        return f"{r['utility']:.4f} / {r['gap']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"

    table = [{"N": N, **{f"{m} utility / gap %": cell(m, N) for m in ["exact", *methods]}} for N in FIG7_USERS]
    atomic_write_text(
        out_dir() / "fig7_users.md",
        f"# Fig. 7 analogue: system utility (mean reward per slot, = -objective `delay+lb`) and gap to the certified "
        f"optimum [%] [95 % CI over instances] vs number of users N (M = 5, {FIG7_INSTANCES} test-stream slots per "
        "N, every one certified optimal). `dtomalb`: the tuned parameters of N = 10, one seed per N "
        f"({suite.TUNE_STEPS} env steps; N = 10 is the seed-1 checkpoint).\n\n"
        + tabulate(table, headers="keys", tablefmt="github")
        + "\n",
    )
    write_json(out_dir() / "fig7_users.json", res)
    _plot_fig7(res, out_dir() / "fig7_users.png")
    benchmark.extra_info.update({m: {N: v["gap"] for N, v in d.items()} for m, d in res.items()})


def _plot_fig7(res: dict[str, dict[int, dict[str, float]]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for m, d in res.items():
        Ns = sorted(d)
        if m != "random":  # off the scale; its numbers are in the table
            axes[0].plot(Ns, [d[N]["utility"] for N in Ns], marker="o", label=m)
        if m != "exact":
            axes[1].errorbar(
                Ns,
                [d[N]["gap"] for N in Ns],
                yerr=[[d[N]["gap"] - d[N]["lo"] for N in Ns], [d[N]["hi"] - d[N]["gap"] for N in Ns]],
                marker="o",
                capsize=3,
                label=m,
            )
    axes[0].set_ylabel("system utility per slot (higher is better)")
    axes[1].set_ylabel("gap to certified optimum [%] (95 % CI)")
    axes[1].set_yscale("symlog", linthresh=1.0)
    for ax in axes:
        ax.set_xlabel("number of users N (M = 5)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.suptitle("Fig. 7 analogue: utility and gap vs number of users")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())


def test_fig8_load_balance(benchmark, runs):
    insts = suite.instances("test", FIG8_INSTANCES, preset="fig8")
    refs = refs_for("test-fig8", insts)
    contenders: dict[str, Any] = {m: runs[m][1] for m in LEARNED}
    if "dtomalb@fig8" in runs:
        contenders["dtomalb@fig8"] = runs["dtomalb@fig8"][1]
    contenders.update({h: SolverPolicy(KEY, h) for h in ("lb-greedy", "selfish")})
    contenders["round-robin (diagnostic)"] = RoundRobin()
    out: dict[str, dict] = {}

    def run():
        for name, pol in contenders.items():
            r = validate(KEY, pol, insts, refs)
            ci = mean_ci([100 * x["gap_to_opt"] for x in r])
            out[name] = {
                **summarize(r),
                "gap_ci": [ci.lo, ci.hi],
                "tasks_per_server": np.mean([x["values"]["n_per_server"] for x in r], axis=0).tolist(),
                "n_local": float(np.mean([x["values"]["n_local"] for x in r])),
                "LD_per_server_s": np.mean([x["values"]["load_factor_s"] for x in r], axis=0).tolist(),
            }

    benchmark.pedantic(run, rounds=1, iterations=1)
    out["exact"] = {
        "objective": float(np.mean([r["opt_objective"] for r in refs])),
        "tasks_per_server": np.mean([r["opt_values"]["n_per_server"] for r in refs], axis=0).tolist(),
        "n_local": float(np.mean([r["opt_values"]["n_local"] for r in refs])),
        "LD_per_server_s": np.mean([r["opt_values"]["load_factor_s"] for r in refs], axis=0).tolist(),
        "gap_to_opt_pct": 0.0,
        "gap_ci": [0.0, 0.0],
    }
    f_ghz = [12, 14, 16, 18, 20]
    table = []
    for name, r in out.items():
        ld = r["LD_per_server_s"]
        table.append(
            {
                "method": name,
                "objective": _fmt(r["objective"], 4),
                "gap to opt % [95% CI]": f"{r['gap_to_opt_pct']:.2f} [{r['gap_ci'][0]:.2f}, {r['gap_ci'][1]:.2f}]",
                "tasks on servers 1..5": " / ".join(f"{v:.1f}" for v in r["tasks_per_server"]),
                "local": round(r["n_local"], 1),
                "LD_m [s] servers 1..5": " / ".join(f"{v:.3f}" for v in ld),
                "CV of LD": round(float(np.std(ld) / np.mean(ld)), 3),
            }
        )
    atomic_write_text(
        out_dir() / "fig8_load.md",
        f"# Fig. 8 analogue: load on servers f = {f_ghz} GHz ({len(insts)} test-stream `fig8` slots, means; every "
        "slot certified optimal)\n\nLD_m = queued cycles / f_m (eq. 13) after the slot's tasks joined; CV = "
        "std/mean of the mean LD_m. Learned: seed 1; `dtomalb@fig8` = tuned DTOMALB trained on the fig8 servers.\n\n"
        + tabulate(table, headers="keys", tablefmt="github")
        + "\n",
    )
    write_json(out_dir() / "fig8_load.json", out)
    _plot_fig8(out, f_ghz, out_dir() / "fig8_load.png")
    benchmark.extra_info.update({n: r["tasks_per_server"] for n, r in out.items()})


def _plot_fig8(out: dict, f_ghz: list[int], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(out)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    w = 0.8 / max(len(names), 1)
    x = np.arange(len(f_ghz))
    for k, n in enumerate(names):
        axes[0].bar(x + k * w, out[n]["tasks_per_server"], w, label=n)
        axes[1].bar(x + k * w, out[n]["LD_per_server_s"], w, label=n)
    for ax, yl in zip(axes, ("tasks per server (mean)", "load factor LD_m [s] (mean)"), strict=True):
        ax.set_xticks(x + 0.4 - w / 2, [f"{f} GHz" for f in f_ghz])
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    fig.suptitle("Fig. 8 analogue: load on servers [12..20] GHz")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())


# ------------------------------------------------------------------------------------------------------------------
# Fig. 8 under the `lb-heavy` weight (issue #13): does a load-balancing reward balance the heterogeneous servers?
# ------------------------------------------------------------------------------------------------------------------
#: Reduced Fig. 8: the fig8 servers [12..20] GHz with N = 6 users, because `lb-heavy` (w2 = 900) certifies in ~5 s
#: per slot at N = 6 but not within 60 s at the paper's N = 10 (docs/problems/dtomalb.md, D7).
FIG8H_USERS = 6
FIG8H_INSTANCES = 40


def _fig8_heavy_instances() -> list[Instance]:
    from mecopt.problems.dtomalb import W2_LB_HEAVY

    base = suite.instances("test", FIG8H_INSTANCES, preset="fig8", n_users=FIG8H_USERS)
    return [i.replace(w2=W2_LB_HEAVY) for i in base]


def _cv(ld: Any) -> float:
    ld = np.asarray(ld, dtype=float)
    return float(np.std(ld) / np.mean(ld)) if np.mean(ld) > 0 else 0.0


def test_fig8_heavy_load_balance(benchmark):
    """Fig. 8 under `lb-heavy`: DTOMALB trained with the w2 = 900 reward vs DTOMA (w2 = 0), 3 seeds each, on 40
    held-out certified slots; per-slot CV of the load factors LD_m with bootstrap CIs (``results/dtomalb/fig8_heavy``
    holds the checkpoints: ``python -m learners.train dtomalb --methods dtomalb --preset fig8 --n-users 6 --w2 900
    --out results/dtomalb/fig8_heavy``, and ``--methods dtoma`` without ``--w2``)."""
    folder = out_dir() / "fig8_heavy"
    pols: dict[str, dict[int, TorchPolicy]] = {}
    for pol in LS.load_dir(folder / "checkpoints", "*.json") + LS.load_dir(folder / "seeds" / "checkpoints", "*.json"):
        pols.setdefault(f"{pol.name} (w2 = {'900' if pol.name == 'dtomalb' else '0'})", {})[int(pol.meta["seed"])] = pol
    if len(pols) < 2:
        pytest.skip(f"no fig8_heavy checkpoints under {folder}")
    insts = _fig8_heavy_instances()
    refs = refs_for("test-fig8-heavy", insts)
    contenders: dict[str, dict[int, Any]] = dict(pols)
    contenders.update({h: {0: SolverPolicy(KEY, h)} for h in ("lb-greedy", "selfish")})
    contenders["round-robin (diagnostic)"] = {0: RoundRobin()}
    out: dict[str, dict[str, Any]] = {}

    def run() -> None:
        for name, by_seed in contenders.items():
            rows = [x for pol in by_seed.values() for x in validate(KEY, pol, insts, refs)]
            gap = mean_ci([100 * x["gap_to_opt"] for x in rows])
            cv = mean_ci([_cv(x["values"]["load_factor_s"]) for x in rows])
            out[name] = {
                "seeds": len(by_seed),
                "objective": float(np.mean([x["objective"] for x in rows])),
                "gap_pct": [gap.mean, gap.lo, gap.hi],
                "cv": [cv.mean, cv.lo, cv.hi],
                "mean_delay_s": float(np.mean([x["values"]["mean_delay_s"] for x in rows])),
                "tasks_per_server": np.mean([x["values"]["n_per_server"] for x in rows], axis=0).tolist(),
                "LD_per_server_s": np.mean([x["values"]["load_factor_s"] for x in rows], axis=0).tolist(),
            }

    benchmark.pedantic(run, rounds=1, iterations=1)
    # the certified optima: of `lb-heavy` itself and, for contrast, of the delay-only objective P1 on the same slots
    p1 = [solve(KEY, i.replace(objective="delay"), "exact", SolveOptions(time_limit=60.0)) for i in insts]
    p1_met = [evaluate(i, Decision.from_dict(r.decision)) for i, r in zip(insts, p1, strict=True)]
    for name, vals, objs in (
        ("exact (lb-heavy optimum)", [r["opt_values"] for r in refs], [r["opt_objective"] for r in refs]),
        ("exact P1 (delay only)", [m.values for m in p1_met], [m.objective for m in p1_met]),
    ):
        cv = mean_ci([_cv(v["load_factor_s"]) for v in vals])
        out[name] = {
            "seeds": 0,
            "objective": float(np.mean(objs)),
            "gap_pct": [0.0, 0.0, 0.0] if name.startswith("exact (") else None,
            "cv": [cv.mean, cv.lo, cv.hi],
            "mean_delay_s": float(np.mean([v["mean_delay_s"] for v in vals])),
            "tasks_per_server": np.mean([v["n_per_server"] for v in vals], axis=0).tolist(),
            "LD_per_server_s": np.mean([v["load_factor_s"] for v in vals], axis=0).tolist(),
        }
    assert all(r.status == "optimal" for r in p1)
    lb, no = out[next(n for n in pols if n.startswith("dtomalb"))], out[next(n for n in pols if n.startswith("dtoma "))]
    verdict = (
        "DTOMALB's CV of LD is below DTOMA's with separated 95 % intervals"
        if lb["cv"][2] < no["cv"][1]
        else "DTOMALB's and DTOMA's CV-of-LD intervals overlap or DTOMA is lower: no separated difference"
    )
    table = [
        {
            "method": n,
            "seeds": r["seeds"] or "",
            "lb-heavy objective": round(r["objective"], 4),
            "gap to opt % [95% CI]": ""
            if r["gap_pct"] is None
            else f"{r['gap_pct'][0]:.2f} [{r['gap_pct'][1]:.2f}, {r['gap_pct'][2]:.2f}]",
            "mean delay s": round(r["mean_delay_s"], 4),
            "CV of LD [95% CI]": f"{r['cv'][0]:.3f} [{r['cv'][1]:.3f}, {r['cv'][2]:.3f}]",
            "tasks on servers 1..5": " / ".join(f"{v:.2f}" for v in r["tasks_per_server"]),
            "LD_m [s] servers 1..5": " / ".join(f"{v:.3f}" for v in r["LD_per_server_s"]),
        }
        for n, r in out.items()
    ]
    atomic_write_text(
        out_dir() / "fig8_heavy.md",
        f"# Fig. 8 under `lb-heavy` (w2 = 900): servers [12, 14, 16, 18, 20] GHz, N = {FIG8H_USERS} users, "
        f"{len(insts)} held-out slots, every one certified optimal\n\n"
        "Reduced from the paper's N = 10 because `lb-heavy` does not certify within 60 s there (D7). Objective = "
        "mean delay + 900 var(LD) (eq. 20 with the heavy weight); CV = std/mean of a slot's LD_m (eq. 13), averaged "
        "over slots (x seeds) with a 95 % BCa bootstrap interval. Learned: tuned Args (the paper-preset study), "
        "4 000 env steps, seeds 1-3, trained on the fig8 servers with 6 users; DTOMALB's reward uses w2 = 900, "
        "DTOMA's w2 = 0. `exact P1` = the certified optimum of the delay-only objective on the same slots (its "
        f"objective column is its lb-heavy value).\n\n**Verdict:** {verdict}.\n\n"
        + tabulate(table, headers="keys", tablefmt="github")
        + "\n",
    )
    write_json(out_dir() / "fig8_heavy.json", out)
