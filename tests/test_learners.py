"""Learners: Policy contract, checkpoints, registry, validation, seeded determinism, a smoke learning check and the
protocol of issue #11 (split disjointness, bootstrap CI, a tiny tuning run, truncation handling, latency, device)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from learners import common as learners_common
from learners import dtomalb_dqn_tolb as dqn_tolb
from learners import dtomalb_idql_tolb as idql_tolb
from learners import dtomalb_maddpg
from learners.common import (
    Policy,
    ReplayBuffer,
    bootstrap_mask,
    gumbel_softmax,
    load_policy,
    resolve_device,
    seed_everything,
    soft_update,
)
from learners.dtomalb import agent_observations, global_state
from learners.validate import SolverPolicy, reference, summarize, validate
from mecopt.core import InvalidInputError, SolveOptions, make_rng
from mecopt.envs.dtomalb import DtomalbEnv, DtomalbParallelEnv
from mecopt.methods import all_methods, solve
from mecopt.problems.dtomalb import PRESETS, Decision, evaluate, generate

POLICY_CLASSES = [
    (dtomalb_maddpg.MaddpgPolicy, dtomalb_maddpg.Args),
    (idql_tolb.IdqlPolicy, idql_tolb.Args),
    (dqn_tolb.DqnTolbPolicy, dqn_tolb.Args),
]


def _instances(preset: str, n: int, seed: int = 11) -> list:
    return [
        replace(generate(PRESETS[preset], make_rng(seed, "test-learners", k)), objective="delay+lb") for k in range(n)
    ]


def _untrained(cls, args_cls, N: int = 10, M: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return cls(args_cls(), N, M, {"preset": "paper"})


# ---------------------------------------------------------------------------------------------------------------
# Policy contract
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,args_cls", POLICY_CLASSES)
def test_policy_contract(cls, args_cls):
    pol = _untrained(cls, args_cls)
    assert isinstance(pol, Policy)
    inst = _instances("paper", 1)[0]
    dec = pol.decide(inst)
    assert dec.a.shape == (10,) and evaluate(inst, dec).feasible
    obs = pol.observation(inst)
    np.testing.assert_array_equal(pol.act(obs), dec.a)
    with pytest.raises(InvalidInputError, match="observation has shape"):
        pol.act(np.zeros(3, dtype=np.float32))
    small = _instances("small", 1)[0]
    with pytest.raises(InvalidInputError, match="trained for N=10, M=5"):
        pol.decide(small)


def test_observations_match_envs():
    env = DtomalbEnv("paper")
    x, _ = env.reset(seed=3)
    np.testing.assert_array_equal(x, global_state(env.instance))
    penv = DtomalbParallelEnv("paper")
    obs, _ = penv.reset(seed=3)
    np.testing.assert_array_equal(np.stack([obs[a] for a in penv.possible_agents]), agent_observations(penv.instance))


@pytest.mark.parametrize("cls,args_cls", POLICY_CLASSES)
def test_save_load_round_trip(tmp_path, cls, args_cls):
    pol = _untrained(cls, args_cls, seed=5)
    pol.meta["note"] = "x"
    pol.save(tmp_path / "ck")
    header = json.loads((tmp_path / "ck.json").read_text())
    assert header["N"] == 10 and header["M"] == 5 and header["args"]["hidden"] == list(pol.args.hidden)
    back = load_policy(tmp_path / "ck")
    assert type(back) is cls and back.name == pol.name and back.meta["note"] == "x"
    for k, v in pol.net.state_dict().items():
        torch.testing.assert_close(back.net.state_dict()[k], v, rtol=0, atol=0)
    for inst in _instances("paper", 3):
        np.testing.assert_array_equal(back.decide(inst).a, pol.decide(inst).a)


def test_load_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        load_policy(tmp_path / "missing")
    (tmp_path / "bad.json").write_text('{"module": "learners.dtomalb_idql_tolb"}')
    with pytest.raises(InvalidInputError, match="malformed header"):
        load_policy(tmp_path / "bad")


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------------------------
def test_gumbel_softmax_hard_one_hot_with_gradient():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 3.0, -1.0]] * 4000, requires_grad=True)
    y = gumbel_softmax(logits, 1.0, hard=True)
    assert torch.all(y.sum(-1) == 1) and set(y.detach().unique().tolist()) == {0.0, 1.0}
    freq = y.detach().mean(0).numpy()
    np.testing.assert_allclose(freq, torch.softmax(logits[0], -1).detach().numpy(), atol=0.03)  # Gumbel-max law
    (y[:, 0] * 1.0).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0  # straight-through gradient


def test_soft_update_and_replay():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = b.weight.detach().clone()
    soft_update(b, a, 0.25)
    torch.testing.assert_close(b.weight, 0.25 * a.weight + 0.75 * before)
    rb = ReplayBuffer(3, {"x": ((2,), np.float32)}, np.random.default_rng(0))
    for k in range(5):
        rb.add(x=[k, k])
    assert len(rb) == 3 and set(rb.data["x"][:, 0].tolist()) == {2.0, 3.0, 4.0}
    with pytest.raises(InvalidInputError, match="expected fields"):
        rb.add(y=1)


def test_seed_everything_reproducible():
    g1 = seed_everything(4)
    t1 = torch.rand(3)
    g2 = seed_everything(4)
    t2 = torch.rand(3)
    assert torch.equal(t1, t2) and g1.integers(1 << 30) == g2.integers(1 << 30)


# ---------------------------------------------------------------------------------------------------------------
# Training: seeded determinism and a smoke learning check
# ---------------------------------------------------------------------------------------------------------------
def _short(mod, seed: int, steps: int = 300, **kw):
    args = mod.Args(seed=seed, preset="tiny", total_steps=steps, learning_starts=100, batch_size=32, **kw)
    return mod.train(args, progress=False)


@pytest.mark.parametrize("mod", [dtomalb_maddpg, idql_tolb, dqn_tolb])
def test_training_is_seeded(mod):
    p1, p2, p3 = _short(mod, 3), _short(mod, 3), _short(mod, 4)
    s1, s2, s3 = p1.net.state_dict(), p2.net.state_dict(), p3.net.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def _mean_objective(decide, insts) -> float:
    return float(np.mean([evaluate(i, decide(i)).objective for i in insts]))


@pytest.mark.parametrize("mod", [dtomalb_maddpg, idql_tolb])
def test_smoke_learning_beats_random_and_untrained(mod):
    """A few seconds of training on a fixed seed must beat uniform random decisions and the untrained policy."""
    insts = _instances("tiny", 30, seed=99)
    rng = make_rng(0, "random-baseline")
    random = _mean_objective(lambda i: Decision(a=rng.integers(0, i.M + 1, size=i.N)), insts)
    args = mod.Args(seed=2, preset="tiny", total_steps=1500, learning_starts=200, batch_size=64)
    untrained = _mean_objective(mod.train(replace(args, total_steps=1), progress=False).decide, insts)
    trained = _mean_objective(mod.train(args, progress=False).decide, insts)
    assert trained < 0.8 * random, (trained, random)
    assert trained < untrained, (trained, untrained)


# ---------------------------------------------------------------------------------------------------------------
# Validation against the certified optimum, and the registry
# ---------------------------------------------------------------------------------------------------------------
def test_validate_against_exact_and_brute_force():
    insts = _instances("tiny", 3, seed=5)
    refs = reference("dtomalb", insts, exact_time_limit=30)
    for inst, ref in zip(insts, refs, strict=True):
        bf = solve("dtomalb", inst, "brute-force")
        assert ref["opt_status"] == "optimal"
        assert abs(ref["opt_objective"] - bf.objective) <= 1e-6 * bf.objective
    pol = _untrained(idql_tolb.IdqlPolicy, idql_tolb.Args, N=5, M=3)
    rows = validate("dtomalb", pol, insts, refs)
    for r in rows:
        assert r["feasible"] and r["gap_to_opt"] >= -1e-9 and r["gap_to_bound"] >= r["gap_to_opt"] - 1e-6
    exact_rows = validate("dtomalb", SolverPolicy("dtomalb", "exact"), insts, refs)
    assert max(abs(r["gap_to_opt"]) for r in exact_rows) < 1e-9
    greedy_rows = validate("dtomalb", SolverPolicy("dtomalb", "lb-greedy"), insts, refs)
    assert all(r["gap_to_best_heuristic"] >= -1e-12 for r in greedy_rows)
    assert {r["best_heuristic"] for r in greedy_rows} <= {
        "lb-greedy",
        "selfish",
        "fastest",
        "all-server-1",
        "all-local",
    }
    s = summarize(rows)
    assert s["feasible_pct"] == 100.0 and s["instances"] == 3


def test_registry_exposes_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    ck = tmp_path / "dtomalb" / "checkpoints"
    pol = _untrained(dtomalb_maddpg.MaddpgPolicy, dtomalb_maddpg.Args, N=5, M=3)
    pol.save(ck / "dtomalb-tiny")
    fig8 = _untrained(dtomalb_maddpg.MaddpgPolicy, dtomalb_maddpg.Args)
    fig8.meta["preset"] = "fig8"
    fig8.save(ck / "dtomalb-fig8")
    methods = all_methods("dtomalb")
    assert methods["dtomalb"].kind == "learned" and methods["dtomalb"].in_bench
    assert not methods["dtomalb@fig8"].in_bench
    inst = _instances("tiny", 1)[0]
    res = solve("dtomalb", inst, "dtomalb", SolveOptions())
    assert res.feasible and res.status == "feasible"
    np.testing.assert_array_equal(res.decision["a"], pol.decide(inst).a)
    bad = solve("dtomalb", _instances("paper", 1)[0], "dtomalb")
    assert bad.status == "error" and "no checkpoint for N=10, M=5" in bad.message


def test_committed_checkpoints_load_and_decide():
    """Every committed checkpoint loads, matches its header and gives a feasible decision at its size."""
    from learners.registry import checkpoint_dir

    headers = sorted(checkpoint_dir("dtomalb").glob("*.json"))
    if not headers:
        pytest.skip("no committed checkpoints")
    names = {m.name for m in all_methods("dtomalb").values() if m.kind == "learned"}
    assert {"dtomalb", "dtoma", "idql-tolb", "dqn-tolb"} <= names
    for h in headers:
        pol = load_policy(h.with_suffix(""))
        preset = pol.meta["preset"]
        inst = replace(generate(PRESETS[preset], make_rng(0, "ck", preset)), objective="delay+lb")
        dec = pol.decide(inst)
        assert evaluate(inst, dec).feasible, h.name


# ---------------------------------------------------------------------------------------------------------------
# The protocol of issue #11
# ---------------------------------------------------------------------------------------------------------------
def test_splits_are_disjoint_and_seeded():
    """train (env episodes), tune and test are different seeded streams: no slot appears in two of them."""
    from learners import dtomalb as suite
    from learners.protocol import split_instances, train_episode_seeds

    test = suite.instances("test", 12)
    tune = suite.instances("tune", 12)
    assert [i.to_dict() for i in test] == [i.to_dict() for i in suite.instances("test", 12)]  # reproducible
    # the first 12 test instances are the first 12 of a longer test set (a stream, not a resample)
    assert [i.to_dict() for i in suite.instances("test", 20)[:12]] == [i.to_dict() for i in test]
    env = DtomalbEnv("paper", objective="delay+lb")
    next_seed = train_episode_seeds("dtomalb", 1, "maddpg")
    train = []
    for _ in range(4):
        env.reset(seed=next_seed())
        for _ in range(10):
            train.append(env.instance)
            env.step(np.zeros(10, dtype=np.int64))

    def keys(insts):
        return {tuple(np.round(i.L, 3)) for i in insts}

    assert len(keys(test)) == 12 and len(keys(tune)) == 12 and len(keys(train)) == 40
    assert not keys(test) & keys(tune) and not keys(test) & keys(train) and not keys(tune) & keys(train)
    with pytest.raises(InvalidInputError, match="train split"):
        split_instances("dtomalb", "train", 1)
    with pytest.raises(InvalidInputError, match="unknown split"):
        split_instances("dtomalb", "validation", 1)
    # different training seeds -> different episode streams
    assert train_episode_seeds("dtomalb", 1, "x")() != train_episode_seeds("dtomalb", 2, "x")()


def test_bootstrap_ci_known_case():
    """Normal sample: the 95 % CI of the mean is close to mean +- 1.96 s/sqrt(n); constant sample: degenerate."""
    from learners.protocol import CI, gap_table_row, mean_ci, separated

    rng = np.random.default_rng(0)
    v = rng.normal(5.0, 2.0, size=400)
    ci = mean_ci(v)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    assert ci.mean == pytest.approx(v.mean())
    assert ci.lo == pytest.approx(v.mean() - half, abs=0.04) and ci.hi == pytest.approx(v.mean() + half, abs=0.04)
    assert mean_ci(v) == ci  # seeded
    c = mean_ci([0.25] * 10)
    assert (c.mean, c.lo, c.hi, c.n) == (0.25, 0.25, 0.25, 10)
    assert separated(CI(1, 0.5, 1.5, 3), CI(3, 2, 4, 3)) and not separated(CI(1, 0.5, 2.5, 3), CI(3, 2, 4, 3))
    row = gap_table_row([0.0, 0.5, 2.0, 4.0])
    assert row["max gap %"] == 4.0 and row["within 1 % of opt"] == "50 %" and row["n"] == 4


def test_tuning_two_tiny_trials(tmp_path, monkeypatch):
    """python -m learners.tune on a tiny budget: 2 trials persist in SQLite, best Args JSON feeds training."""
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    from learners.train import make_args, tuned_overrides
    from learners.tune import tune

    study = tune("dtomalb", "idql-tolb", trials=2, steps=60, n_tune=2, preset="tiny")
    assert len(study.trials) == 2 and all(t.value is not None and t.value >= 0 for t in study.trials)
    assert (tmp_path / "dtomalb" / "tuning" / "idql-tolb.db").exists()
    best = json.loads((tmp_path / "dtomalb" / "tuning" / "idql-tolb.json").read_text())
    assert best["trials"] == 2 and best["steps_per_trial"] == 60
    over = tuned_overrides("dtomalb", "idql-tolb")
    assert 0.0 <= over["gamma"] <= 0.99 and len(over["hidden"]) == 2
    args = make_args("dtomalb", "idql-tolb", "tuned", seed=2, preset="tiny", steps=50)
    assert args.gamma == over["gamma"] and args.seed == 2 and args.total_steps == 50
    again = tune("dtomalb", "idql-tolb", trials=2, steps=60, n_tune=2, preset="tiny")  # resumes, adds nothing
    assert len(again.trials) == 2


def test_time_limit_is_a_truncation(monkeypatch):
    """The env reports its horizon as a truncation and every learner stores it as non-terminal (bootstrapped)."""
    env = DtomalbParallelEnv("tiny", horizon=2)
    env.reset(seed=0)
    act = {a: 0 for a in env.possible_agents}
    _, _, term, trunc, _ = env.step(act)
    assert not any(term.values()) and not any(trunc.values())
    _, _, term, trunc, _ = env.step(act)
    assert not any(term.values()) and all(trunc.values())
    genv = DtomalbEnv("tiny", horizon=1)
    genv.reset(seed=0)
    assert genv.step(np.zeros(5, dtype=np.int64))[2:4] == (False, True)
    assert bootstrap_mask(terminated=False, truncated=True) == 0.0
    assert bootstrap_mask(terminated=True, truncated=False) == 1.0

    stored: list[float] = []

    class Spy(ReplayBuffer):
        def add(self, **items):
            stored.append(float(items["done"]))
            super().add(**items)

    for mod in (dtomalb_maddpg, idql_tolb, dqn_tolb):
        stored.clear()
        # IDQL-TOLB builds its memory through learners.common.agent_replay (shared with the DJTCRA learners)
        monkeypatch.setattr(mod if hasattr(mod, "ReplayBuffer") else learners_common, "ReplayBuffer", Spy)
        args = mod.Args(seed=0, preset="tiny", total_steps=25, horizon=5, learning_starts=10, batch_size=8)
        pol = mod.train(args, progress=False)
        assert len(stored) == 25 and stored == [0.0] * 25, mod.__name__
        assert pol.meta["time_limit"] == "truncation (bootstrapped)"
        assert pol.meta["env_steps_per_s"] > 0 and pol.meta["updates_per_s"] > 0


def test_latency_protocol_and_device():
    from learners.protocol import decision_latency

    pol = _untrained(idql_tolb.IdqlPolicy, idql_tolb.Args)
    lat = decision_latency(pol, _instances("paper", 3), n=100, warmup=5)
    assert 0 < lat["p10_ms"] <= lat["median_ms"] <= lat["p90_ms"]
    with pytest.raises(InvalidInputError, match=">= 100"):
        decision_latency(pol, _instances("paper", 1), n=10)
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="no CUDA"):
            resolve_device("cuda")


def test_legacy_checkpoint_header_loads(tmp_path):
    """Headers written before the renames (module learners.idql_tolb / dqn_tolb, no 'device' field) still load."""
    pol = _untrained(idql_tolb.IdqlPolicy, idql_tolb.Args, N=5, M=3)
    pol.save(tmp_path / "old")
    h = json.loads((tmp_path / "old.json").read_text())
    h["module"] = "learners.idql_tolb"
    del h["args"]["device"]
    h["args"]["retired_field"] = 1
    (tmp_path / "old.json").write_text(json.dumps(h))
    back = load_policy(tmp_path / "old")
    assert type(back) is idql_tolb.IdqlPolicy and back.meta["legacy_args"] == {"retired_field": 1}


def test_tuning_trials_on_dask_workers(tmp_path, monkeypatch):
    """The same study, its missing trials run as Dask tasks on a LocalCluster of 2 processes (issue #19)."""
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    from learners.tune import tune

    study = tune("dtomalb", "idql-tolb", trials=3, steps=40, n_tune=2, preset="tiny", workers=2)
    assert len([t for t in study.trials if t.value is not None]) == 3
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 3  # parallel start-up trials differ
    best = json.loads((tmp_path / "dtomalb" / "tuning" / "idql-tolb.json").read_text())
    assert best["trials"] == 3


def test_override_suffix_has_no_dot() -> None:
    from learners.train import override_suffix

    assert override_suffix({"w2": 900.0, "n_users": 6}) == "-n_users6-w2900"
    assert override_suffix({"w2": 0.5}) == "-w20p5"
    assert override_suffix(None) == ""
