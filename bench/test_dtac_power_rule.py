"""DTAC: the L13 power rule for unavoidable channel sharing (issue #16; docs/learners/dtac.md L13), scored on the
held-out certified `tiny` and `small` rounds.

Runs only with ``pytest --benchmark``; reads the committed checkpoints of ``bench/test_dtac_learners.py`` (its
``runs`` fixture) and never trains: the power rule is a decode (``hybrid_decision(..., "cell-distinct+power")``,
``DtacPolicy.with_decode``) applied to the existing checkpoints, and a post-processing of the heuristics'
decisions (``PowerRule``). Output: ``results/dtac/learners_power_rule.md`` / ``.json``; regenerate alone with
``pytest --benchmark bench/test_dtac_power_rule.py --bench-problems dtac``.

Rows: ``<m> + cd decode`` / ``<m> + cd+power decode`` (the tuned paper-decode checkpoints, seeds 1-3, with the L11
decode, without and with the rule), every run trained with the L11 decode (``<m> [cd-trained]`` and any other
cell-distinct-trained rows of the learner suite) without and with ``+ power`` (same decode plus the rule), and
the heuristics with round-robin channels (a = 1) without and with ``+ power rule``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from tabulate import tabulate

from bench.learner_suite import out_dir, verdicts
from bench.test_dtac_learners import (  # noqa: F401 (pytest fixtures: the bench selection and the committed runs)
    CD_DECODE,
    FIG11_TRAINED,
    LEARNED,
    POWER,
    POWER_RULE,
    PowerRule,
    _bench_selection,
    _certified_table,
    _opt_shares,
    refs_for,
    runs,
    write_compact_json,
)
from learners import dtac as suite
from learners.protocol import mean_ci
from learners.validate import SolverPolicy
from mecopt.core import atomic_write_text
from mecopt.problems.dtac import KEY, Instance

POWER_DECODE = " + cd+power decode"
#: heuristics scored with and without the rule (all-local offloads nothing: the rule cannot act on it)
RULE_HEURISTICS = ("greedy", "all-edge", "all-cloud")


def _cd_trained(rs: dict[str, dict[int, Any]]) -> list[str]:
    """The suite's rows trained with the L11 decode on the training coverage (``[cd-trained]`` and any later
    cell-distinct-trained rows; Fig. 11's 600 / 800 m runs excluded)."""
    names = [
        name
        for name, by_seed in rs.items()
        if not name.endswith(FIG11_TRAINED)
        and all(getattr(p.args, "channel_decode", "argmax") == "cell-distinct" for p in by_seed.values())
    ]
    return sorted(names, key=lambda n: (LEARNED.index(n.split()[0]) if n.split()[0] in LEARNED else len(LEARNED), n))


def power_contenders(rs: dict[str, dict[int, Any]]) -> dict[str, dict[int, Any]]:
    """Each learned row without and with the rule, then the heuristics without and with it (and all-local)."""
    c: dict[str, dict[int, Any]] = {}
    for m in LEARNED:
        c[f"{m}{CD_DECODE}"] = {s: p.with_decode("cell-distinct") for s, p in rs[m].items()}
        c[f"{m}{POWER_DECODE}"] = {s: p.with_decode("cell-distinct+power") for s, p in rs[m].items()}
    for name in _cd_trained(rs):
        c[name] = rs[name]
        c[f"{name}{POWER}"] = {s: p.with_decode("cell-distinct+power") for s, p in rs[name].items()}
    for h in RULE_HEURISTICS:
        c[h] = {0: SolverPolicy(KEY, h)}
        c[f"{h}{POWER_RULE}"] = {0: PowerRule(SolverPolicy(KEY, h))}
    c["all-local"] = {0: SolverPolicy(KEY, "all-local")}
    return c


def _pairs(names: list[str]) -> list[tuple[str, str]]:
    """Each row vs the same row with the rule; the rule's rows vs greedy + power rule and vs all-local."""
    out = []
    for n in names:
        for plain, suffix in ((n, POWER), (n, POWER_RULE)):
            if f"{plain}{suffix}" in names:
                out.append((plain, f"{plain}{suffix}"))
        if n.endswith(POWER_DECODE) and n.replace(POWER_DECODE, CD_DECODE) in names:
            out.append((n.replace(POWER_DECODE, CD_DECODE), n))
    ruled = [n for n in names if n.endswith((POWER, POWER_DECODE)) and not n.startswith("greedy")]
    out += [(n, f"greedy{POWER_RULE}") for n in ruled] + [(n, "all-local") for n in ruled]
    out += [(f"greedy{POWER_RULE}", "all-local")]
    return out


def _sharing(contenders: dict[str, dict[int, Any]], insts: list[Instance]) -> dict[str, float]:
    """Per row: the share [%] of offloading UEs that share a channel in their cell (what the rule acts on)."""
    out = {}
    for name, by_seed in contenders.items():
        shared, off = 0, 0
        for p in by_seed.values():
            for inst in insts:
                d = p.decide(inst)
                for n in np.flatnonzero(d.x >= 1):
                    off += 1
                    shared += int(np.sum((inst.server == inst.server[n]) & (d.x >= 1) & (d.l == d.l[n])) >= 2)
        out[name] = round(100.0 * shared / off, 1) if off else 0.0
    return out


def optimum_structure(insts: list[Instance], refs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """What the certified optimum does with the co-channel UEs of ``insts`` (exact re-solved for its decisions,
    which the reference cache does not keep): per sharing pair the received-power ratio, which UE has the lower a,
    the SINRs; and the rule applied to the optimum's own x and l (a = b = 1, then the rule). Markdown + numbers."""
    from mecopt.core import SolveOptions, relative_gap
    from mecopt.problems.dtac import evaluate, precompute
    from solvers.exact.dtac import solve_exact

    ratio, strong_low, sinr_lo, sinr_hi, a_pair, gaps = [], [], [], [], [], {"a = b = 1": [], "a = b = 1 + rule": []}
    gaps["optimum + rule"] = []
    for inst, ref in zip(insts, refs, strict=True):
        d = solve_exact(inst, SolveOptions(time_limit=suite.SMALL_TIME_LIMIT)).decision
        opt = evaluate(inst, d).objective
        assert abs(opt - ref["opt_objective"]) <= 1e-6 * ref["opt_objective"], "exact re-solve differs from the cache"
        snr = precompute(inst).g / inst.sigma2  # full-power received SNR of each UE
        rx = d.a * snr
        for k in range(inst.K):
            for c in range(1, inst.L + 1):
                grp = np.flatnonzero((inst.server == k) & (d.x >= 1) & (d.l == c))
                if grp.size != 2:
                    continue
                s, w = (grp[0], grp[1]) if snr[grp[0]] >= snr[grp[1]] else (grp[1], grp[0])
                ratio.append(float(rx[grp].max() / rx[grp].min()))
                strong_low.append(bool(d.a[s] <= d.a[w]))
                si = rx[grp] / (1.0 + rx[grp][::-1])  # eq. (5) with received interference (D2), noise-normalised
                sinr_lo.append(float(si[np.argmin(rx[grp])]))
                sinr_hi.append(float(si[np.argmax(rx[grp])]))
                a_pair += [float(d.a[s]), float(d.a[w])]
        one = np.ones(inst.N)
        for name, dec in (
            ("a = b = 1", replace(d, a=one, b=one)),
            ("a = b = 1 + rule", replace(d, a=suite.equalise_shared_power(inst, d.x, d.l, one), b=one)),
            ("optimum + rule", replace(d, a=suite.equalise_shared_power(inst, d.x, d.l, d.a))),
        ):
            gaps[name].append(100.0 * relative_gap(evaluate(inst, dec).objective, opt, "min"))
    q = np.percentile(ratio, [50, 90, 100])
    cis = {k: mean_ci(v) for k, v in gaps.items()}
    md = (
        f"{len(ratio)} co-channel pairs (two offloading UEs of one cell on one channel) in the {len(insts)} optima. "
        f"Received-power ratio max / min within a pair: median {q[0]:.2f}, 90th percentile {q[1]:.2f}, max "
        f"{q[2]:.2f}. The stronger-gain UE has the lower (or equal) a in {100 * np.mean(strong_low):.0f} % of the "
        f"pairs. SINR (eq. 5) of the lower-received UE: {min(sinr_lo):.2f}-{max(sinr_lo):.2f} (median "
        f"{np.median(sinr_lo):.2f}); of the higher: {min(sinr_hi):.2f}-{max(sinr_hi):.2f} (median "
        f"{np.median(sinr_hi):.2f}). The pairs' a: {min(a_pair):.3f}-{max(a_pair):.3f} (median "
        f"{np.median(a_pair):.3f}).\n\nThe optimum's own x and l (mean gap to the optimum [%], 95 % BCa CI): "
        + "; ".join(f"{k}: {c.fmt(1)}" for k, c in cis.items())
        + "."
    )
    nums = {"ratio_pct": q.tolist(), "strong_low_pct": 100 * float(np.mean(strong_low)), "n_pairs": len(ratio)}
    return md, {**nums, "ci": {k: [c.mean, c.lo, c.hi, c.n] for k, c in cis.items()}}


def test_power_rule(benchmark, runs):  # noqa: F811 (the imported fixture)
    """L13: every row without and with the power rule on the certified `tiny` and `small` test splits."""
    splits = {
        "tiny": (suite.instances("test", suite.TEST_INSTANCES), "test-tiny", suite.EXACT_TIME_LIMIT),
        "small": (
            suite.instances("test", suite.TEST_INSTANCES_SMALL, preset="small"),
            "test-small-certified",
            suite.SMALL_TIME_LIMIT,
        ),
    }
    contenders = power_contenders(runs)
    out: dict[str, Any] = {}

    def run() -> None:
        for split, (insts, ref_name, limit) in splits.items():
            refs = refs_for(ref_name, insts, limit)
            table, cis, raw, _ = _certified_table(f"test-{split}", insts, refs, contenders)
            share = _sharing(contenders, insts)
            for row in table:
                row["offloaders sharing a channel %"] = share[row["method"]]
            out[split] = (insts, refs, table, cis, raw)
        insts, _, _ = splits["small"]
        out["structure"] = optimum_structure(insts, out["small"][1])

    benchmark.pedantic(run, rounds=1, iterations=1)
    structure_md, structure_js = out.pop("structure")
    parts, js = [], {}
    for split, (insts, refs, table, cis, raw) in out.items():
        opt = _opt_shares(refs)
        parts.append(
            f"## `{split}` ({len(insts)} held-out rounds, K = 2, N = {insts[0].N}, L = 2; every round certified "
            f"optimal, mean optimum {float(np.mean([r['opt_objective'] for r in refs])):.4f}, optimum's local / edge "
            f"/ cloud = {opt[0]:.0f} / {opt[1]:.0f} / {opt[2]:.0f} %)\n\n"
            + tabulate(table, headers="keys", tablefmt="github")
            + "\n\n### Comparisons (a claim only where the 95 % CIs separate)\n\n"
            + "\n".join(verdicts(cis, _pairs(list(cis))))
        )
        js[split] = {"summary": table, "ci": {k: [c.mean, c.lo, c.hi, c.n] for k, c in cis.items()}}
        for name, by_seed in raw.items():  # the rule never breaks feasibility
            assert all(r["feasible"] for rs in by_seed.values() for r in rs), name
    atomic_write_text(
        out_dir(KEY) / "learners_power_rule.md",
        "# DTAC: the L13 power rule for unavoidable channel sharing (default variant; certified test splits)\n\n"
        "L13 (docs/learners/dtac.md): after the L11 cell-distinct channel decode, the offloading UEs that still "
        "share a channel in their cell (`small`: 3 UEs per cell on L = 2 channels) lower their power ratio a so "
        "that their received powers a_n P_UE |h(k,n)|^2 all equal the group's smallest (eq. 5: SINR ~ 1 each "
        "instead of ~ g_weak / g_strong for the weaker UE at a = 1); nothing else changes. The paper has no such "
        "rule (eq. 16: each UE picks its own l and a). No retraining: `<m>"
        + CD_DECODE
        + "` / `<m>"
        + POWER_DECODE
        + "` are the tuned paper-decode checkpoints (seeds 1-3) decoded with L11 without / with the rule; `<run>"
        + POWER
        + "` is an L11-trained run decoded with L11 plus the rule; `<h>"
        + POWER_RULE
        + "` a heuristic's "
        "decision (round-robin channels, a = b = 1) with the rule applied. `mean gap %`: mean relative gap to the "
        "certified optimum over seeds x rounds with its 95 % BCa bootstrap CI. `offloaders sharing a channel %`: "
        "what the rule acts on (0 on `tiny` with the L11 decode: 2 UEs per cell on 2 channels, so the rule leaves "
        "those rows unchanged there). Regenerate: `pytest --benchmark bench/test_dtac_power_rule.py "
        "--bench-problems dtac`.\n\n## What the certified optimum does on `small` (why this rule)\n\n"
        + structure_md
        + "\n\n"
        + "\n\n".join(parts)
        + "\n",
    )
    write_compact_json(out_dir(KEY) / "learners_power_rule.json", {**js, "optimum_structure": structure_js})
    benchmark.extra_info.update({f"{s}: {k}": c.mean for s, v in out.items() for k, c in v[3].items()})
