"""DJTCRA learners (issue #14): env options (per-ES masks, RCS fallback, per-user QoE), save/load, seeded
determinism, a smoke learning check and the registry. The fast P2 against the certified P2 is covered by
``tests/test_djtcra_fastp2.py`` (shortfall <= 0.1 % on seeded states, batch = per server, env option)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from learners import djtcra as suite
from learners import djtcra_idqn, djtcra_mamaxent, djtcra_vdn
from learners.common import load_policy
from learners.train import make_args, method_module
from mecopt.core import InvalidInputError, SolveOptions, make_rng
from mecopt.envs.djtcra import DJTCRAEnv, es_masks, local_observation, observation, rcs_fallback
from mecopt.methods import all_methods, solve
from mecopt.problems.djtcra import PRESETS, coefficients, evaluate, generate, latencies
from solvers.kernels.djtcra_p2 import allocate_p2


def _inst(preset: str = "small", seed: int = 0):
    return generate(PRESETS[preset], make_rng(seed, "test-djtcra-learners", preset))


# ---------------------------------------------------------------------------------------------------------------
# Env options
# ---------------------------------------------------------------------------------------------------------------
def test_es_masks_partition_users_and_local_observation_zeroes_other_rows():
    env = DJTCRAEnv("small", allocation="fast")
    _, info = env.reset(seed=3)
    inst = env.instance
    m = info["es_mask"]
    assert m.shape == (inst.H, inst.U) and m.dtype == bool
    np.testing.assert_array_equal(m.sum(axis=0), np.ones(inst.U))  # every user in exactly one ES's mask
    np.testing.assert_array_equal(m, es_masks(inst))
    for h in range(1, inst.H + 1):
        o = local_observation(inst, h)
        np.testing.assert_array_equal(o[m[h - 1]], observation(inst)[m[h - 1]])
        assert not o[~m[h - 1]].any()  # eq. (18): other ESs' users are zero rows
    with pytest.raises(InvalidInputError):
        local_observation(inst, 0)
    _, _, _, _, info2 = env.step(np.zeros(inst.U, dtype=np.int64))
    np.testing.assert_array_equal(info2["es_mask"], es_masks(env.instance))  # masks of the next observation


def test_per_user_qoe_sums_to_reward():
    env = DJTCRAEnv("small", allocation="fast")
    env.reset(seed=1)
    _, r, _, _, info = env.step(env.action_space.sample())
    assert info["qoe_per_user"].shape == (10,)
    assert abs(info["qoe_per_user"].sum() - r) <= 1e-9 * max(1.0, r)
    assert info["p2"] == "fast"


def test_rcs_fallback_option():
    """rcs='fallback': actions are ESs only (A = H); after the allocation no ES user is slower than on the RCS."""
    env = DJTCRAEnv("small", allocation="p2", rcs="fallback")
    assert list(env.action_space.nvec) == [3] * 10
    env.reset(seed=5)
    with pytest.raises(InvalidInputError):
        env.step(np.full(10, 3))  # H = 3 is not an action here (0..H-1)
    for seed in range(4):
        env.reset(seed=seed)
        inst = env.instance
        a = make_rng(seed, "fallback-actions").integers(0, 3, size=10)
        _, r, _, _, info = env.step(a)
        y = info["y"]
        assert np.all((y == 0) | (y == a + 1))  # a user either keeps its ES or falls back to the RCS
        assert info["moved_to_rcs"] == int((y == 0).sum())
        p, _ = allocate_p2(inst, y)
        co = coefficients(inst)
        D = latencies(inst, y, p, co)
        rcs = co.fixed[:, 0] + co.work[:, 0] / co.capacity[0]
        assert np.all(D[y > 0] <= rcs[y > 0] + 1e-12)
        assert abs(evaluate(inst, suite.Decision(y=y, p=p)).objective - r) <= 1e-6 * r
    # the function itself: a user with a hopeless ES moves; re-allocation is redone
    inst = _inst("small", 2)
    y, p, moved = rcs_fallback(inst, np.ones(inst.U, dtype=np.int64), lambda y: allocate_p2(inst, y)[0])
    assert moved == int((y == 0).sum()) and evaluate(inst, suite.Decision(y=y, p=p)).feasible
    with pytest.raises(InvalidInputError):
        DJTCRAEnv("small", rcs="cloud")


def test_rcs_action_option_keeps_h_plus_one_actions():
    env = DJTCRAEnv("small", allocation="fast", rcs="action")
    assert list(env.action_space.nvec) == [4] * 10
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(10, dtype=np.int64))
    assert info["n_CU"] == 10 and info["moved_to_rcs"] == 0


# ---------------------------------------------------------------------------------------------------------------
# Methods: save/load, determinism, the suite, the registry
# ---------------------------------------------------------------------------------------------------------------
def _tiny_args(method: str, seed: int = 0, steps: int = 40, **kw):
    over = {"hidden": [16, 16], "learning_starts": 10, "batch_size": 8, "actor_delay": 2, "omega_delay": 1}
    mod = method_module("djtcra", method)
    fields = set(mod.Args.__dataclass_fields__)
    over = {k: v for k, v in over.items() if k in fields}
    over.update(kw)
    return mod, make_args("djtcra", method, "paper", seed, preset="tiny", steps=steps, overrides=over)


@pytest.mark.parametrize("method", list(suite.METHODS))
def test_train_save_load_round_trip(tmp_path, method):
    mod, args = _tiny_args(method)
    pol = mod.train(args, progress=False)
    assert pol.name == method and (pol.N, pol.M) == (4, 2)
    pol.save(tmp_path / method)
    back = load_policy(tmp_path / method)
    assert back.name == method and back.args == pol.args
    for s in range(3):
        inst = _inst("tiny", s)
        d1, d2 = pol.decide(inst), back.decide(inst)
        np.testing.assert_array_equal(d1.y, d2.y)
        assert evaluate(inst, d1).feasible
    with pytest.raises(InvalidInputError, match="trained for U=4, H=2"):
        back.decide(_inst("small"))


@pytest.mark.parametrize("method", ["mamaxent", "vdn-g", "idqn"])
def test_training_is_seeded(method):
    (mod, a1), (_, a2) = _tiny_args(method, seed=3), _tiny_args(method, seed=4)
    p1, p2, p3 = mod.train(a1, progress=False), mod.train(a1, progress=False), mod.train(a2, progress=False)
    s1, s2, s3 = p1.net.state_dict(), p2.net.state_dict(), p3.net.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_mamaxent_temperature_moves_and_maddpg_has_none():
    mod, args = _tiny_args("mamaxent", steps=60)
    pol = mod.train(args, progress=False)
    assert len(pol.meta["omega_final"]) == 2 and pol.meta["omega_final"] != [args.omega_init] * 2
    assert "lambda_S" in pol.meta["delay_note"]
    mod, args = _tiny_args("maddpg", steps=30)
    assert args.entropy is False and "omega_final" not in mod.train(args, progress=False).meta


def test_mamaxent_act_reads_each_users_connected_es():
    """Execution (eq. 21): user u's server is the argmax of row u of the actor of u's connected ES."""
    _, args = _tiny_args("mamaxent")
    pol = djtcra_mamaxent.MaMaxEntPolicy(args, 10, 3)
    inst = _inst("small", 4)
    f = suite.features(inst)
    with torch.no_grad():
        lg = pol.logits(torch.as_tensor(f)[None])[:, 0]  # (H, U, A)
    want = np.array([int(lg[inst.ca[u], u].argmax()) for u in range(inst.U)])
    np.testing.assert_array_equal(pol.act(f), want)
    # the local state: changing a user of ES 1 does not change ES 2's logits
    g = f.copy()
    u = int(np.flatnonzero(inst.ca == 0)[0])
    g[u, 3:8] += 1.0
    with torch.no_grad():
        lg2 = pol.logits(torch.as_tensor(g)[None])[:, 0]
    others = [h for h in range(3) if h != 0]
    assert torch.equal(lg[others], lg2[others]) and not torch.equal(lg[0], lg2[0])


def test_features_and_vdn_observations():
    inst = _inst("small", 1)
    f = suite.features(inst)
    assert f.shape == (10, suite.n_features(3)) and f.dtype == np.float32
    np.testing.assert_array_equal(suite.ca_of(f, 3), inst.ca)
    assert np.all(np.abs(f) < 10)
    _, args = _tiny_args("vdn-g")
    assert djtcra_vdn.VdnPolicy(args, 10, 3).observation(inst).shape == (10, 10 * suite.n_features(3))
    _, args = _tiny_args("idqn")
    assert djtcra_idqn.IdqnPolicy(args, 10, 3).observation(inst).shape == (10, suite.n_features(3))


def test_suite_protocol_settings():
    assert set(suite.METHODS) == {"mamaxent", "maddpg", "vdn-l", "vdn-g", "idqn"}
    assert suite.TEST_INSTANCES >= 40 and len(suite.FINAL_SEEDS) >= 3 and suite.TUNE_SEED not in suite.FINAL_SEEDS
    a, b = suite.instances("test", 2), suite.instances("tune", 2)
    assert a[0].to_dict() != b[0].to_dict()
    assert suite.instances("test", 1, U=12)[0].U == 12  # a generator override gets its own stream


def test_registry_serves_djtcra_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    mod, args = _tiny_args("mamaxent", steps=20)
    pol = mod.train(args, progress=False)
    pol.save(tmp_path / "djtcra" / "checkpoints" / "mamaxent-tiny")
    assert all_methods("djtcra")["mamaxent"].kind == "learned"
    inst = _inst("tiny", 7)
    res = solve("djtcra", inst, "mamaxent", SolveOptions())
    assert res.feasible and res.status == "feasible"
    np.testing.assert_array_equal(res.decision["y"], pol.decide(inst).y)
    bad = solve("djtcra", _inst("small"), "mamaxent")
    assert bad.status == "error" and "no checkpoint" in bad.message


def test_smoke_learning_beats_random():
    """A few seconds of training on a fixed seed beat uniformly random ES choices (same fallback, same P2)."""
    insts = [_inst("tiny", 100 + k) for k in range(12)]
    rng = make_rng(0, "djtcra-random-baseline")
    mod, args = _tiny_args("idqn", seed=2, steps=300, lr=3e-3, learning_starts=50, batch_size=32)
    pol = mod.train(replace(args, hidden=[32, 32]), progress=False)
    trained = np.mean([evaluate(i, pol.decide(i)).objective for i in insts])
    random = np.mean([evaluate(i, pol.decision(i, rng.integers(0, i.H, size=i.U))).objective for i in insts])
    assert trained > random, (trained, random)


def test_env_fallback_equals_the_heuristics_rule_and_policies_respect_the_rcs_rule():
    """The env's D13 fallback (training) equals the heuristics' (scoring) on the literal variant; a policy's decision
    is feasible under ``rcs-if-better`` (D17) too, as the bench tables score every variant."""
    from solvers.heuristics.djtcra import with_rcs_fallback
    from solvers.kernels.djtcra_fastp2 import allocate

    for s in range(10):
        inst = _inst("small", 200 + s)
        y0 = make_rng(s, "fallback-eq").integers(1, inst.H + 1, size=inst.U)
        a = rcs_fallback(inst, y0, lambda y, inst=inst: allocate(inst, y))
        b = with_rcs_fallback(inst, y0, lambda y, inst=inst: allocate(inst, y))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[2] == b[2]
    _, args = _tiny_args("idqn")
    pol = djtcra_idqn.IdqnPolicy(args, 10, 3)
    for s in range(3):
        inst = _inst("small", 300 + s).replace(rcs_rule="if-better")
        assert evaluate(inst, pol.decide(inst)).feasible


# ---------------------------------------------------------------------------------------------------------------
# Issue #14 item 6: the shared training pieces (learners/common.py, learners/djtcra.py) changed no number
# ---------------------------------------------------------------------------------------------------------------
def _digest(arrays) -> str:
    import hashlib

    h = hashlib.sha256()
    for k, v in arrays:
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


#: sha256 (16 hex) of the weights after ``_tiny_args(method, seed=5, steps=60)`` training, computed with the code
#: before the shared pieces were factored out (commit b948767): the refactoring must reproduce them bit for bit
TINY_TRAINING_DIGESTS = {
    "mamaxent": "8fe5ad1e44fbaea5",
    "maddpg": "995498781bd187ca",
    "vdn-l": "fab8f07f3cc1da6b",
    "vdn-g": "6fae836f592dfb9f",
    "idqn": "c336a795e18c0c82",
}
#: the same for the committed `small` checkpoints: their actions on the first 6 test-split slots
CHECKPOINT_ACTION_DIGESTS = {
    "idqn": "c76f9b247d20ff60",
    "maddpg": "0c4bbdd551333a24",
    "mamaxent": "b3f0f17289a4f267",
    "vdn-g": "d8e081c8aa442ae0",
    "vdn-l": "2f68c05ae1676bc9",
}


@pytest.mark.parametrize("method", list(suite.METHODS))
def test_refactored_training_is_bit_identical(method):
    mod, args = _tiny_args(method, seed=5, steps=60)
    pol = mod.train(args, progress=False)
    assert (
        _digest((k, v.detach().cpu().numpy()) for k, v in pol.net.state_dict().items())
        == (TINY_TRAINING_DIGESTS[method])
    )


def test_dtomalb_idql_training_is_bit_identical_after_sharing_the_dqn_pieces():
    from learners import dtomalb_idql_tolb as m

    a = m.Args(seed=5, total_steps=60, learning_starts=10, batch_size=8, hidden=[16, 16])
    pol = m.train(a, progress=False)
    assert _digest((k, v.detach().cpu().numpy()) for k, v in pol.net.state_dict().items()) == "ae6be05d78d75517"


def test_committed_checkpoints_load_and_act_as_before():
    import hashlib

    from mecopt.core import results_dir

    folder = results_dir() / "djtcra" / "checkpoints"
    if not folder.is_dir():
        pytest.skip("no committed djtcra checkpoints")
    insts = suite.instances("test", 6)
    for method, want in CHECKPOINT_ACTION_DIGESTS.items():
        pol = load_policy(folder / f"{method}-small")
        acts = np.concatenate([pol.act(pol.observation(i)) for i in insts]).astype(np.int64)
        assert hashlib.sha256(acts.tobytes()).hexdigest()[:16] == want, method


def test_p2_memo_gives_the_certified_p2_values_and_solves_each_subproblem_once(monkeypatch):
    import solvers.kernels.djtcra_p2 as K

    calls = [0]
    solve = K.solve_p2

    def counting(*a, **kw):
        calls[0] += 1
        return solve(*a, **kw)

    inst = _inst("small", 7)
    ys = [make_rng(s, "memo").integers(0, inst.H + 1, size=inst.U) for s in range(4)]
    plain = [allocate_p2(inst, y)[0] for y in ys]
    monkeypatch.setattr(K, "solve_p2", counting)
    memo: dict = {}
    with K.p2_memo(memo):
        first = [K.allocate_p2(inst, y)[0] for y in ys]
        n = calls[0]
        again = [K.allocate_p2(inst, y)[0] for y in ys]
    assert calls[0] == n and len(memo) == n  # the second pass solved nothing
    for p, q, r in zip(plain, first, again, strict=True):
        np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(p, r)
    K.allocate_p2(inst, ys[0])
    assert calls[0] > n  # outside the block: no memo


def test_load_users_keeps_the_capacities_while_u_varies():
    base = PRESETS["small"]
    caps = [generate(replace(base, U=u, load_users=10), make_rng(0, "load-users")).P.sum() for u in (6, 10, 12)]
    np.testing.assert_allclose(caps, caps[1])
    a = generate(base, make_rng(0, "load-users"))
    b = generate(replace(base, load_users=10), make_rng(0, "load-users"))
    np.testing.assert_array_equal(a.P, b.P)


def test_bench_evaluation_cache_reads_back_the_same_rows(tmp_path, monkeypatch):
    """bench/test_djtcra_learners.py keeps validate rows on disk under a hash of policy + instances + code."""
    import bench.learner_suite as LS
    import bench.test_djtcra_learners as B
    from learners.validate import SolverPolicy, reference

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    B._eval_cache.cache_clear()
    LS._ROWS.clear()
    insts = [_inst("tiny", s) for s in range(2)]
    refs = reference("djtcra", insts, 60.0, ("rcs-only",))
    rows = B.evaluate(SolverPolicy("djtcra", "daes"), insts, refs, "t")
    assert B.eval_cache_path().exists()
    B._eval_cache.cache_clear()
    LS._ROWS.clear()
    monkeypatch.setattr(LS, "validate", lambda *a, **k: pytest.fail("recomputed a cached evaluation"))
    again = B.evaluate(SolverPolicy("djtcra", "daes"), insts, refs, "t")
    for a, b in zip(rows, again, strict=True):
        assert a["objective"] == b["objective"] and a["gap_to_opt"] == b["gap_to_opt"]
        assert {k: v for k, v in a["values"].items() if np.ndim(v) == 0} == b["values"]  # scalars are kept
    B._eval_cache.cache_clear()
    LS._ROWS.clear()


# ---------------------------------------------------------------------------------------------------------------
# Shared-weight per-user networks (decision L10, the `paper` preset)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(suite.METHODS))
def test_per_user_networks_act_on_any_number_of_users_and_round_trip_in_float16(tmp_path, method):
    mod, args = _tiny_args(method, arch="per-user")
    pol = mod.train(args, progress=False)
    n_params = sum(p.numel() for p in pol.net.parameters())
    pol.meta["weights_dtype"] = "float16"
    pol.save(tmp_path / method)
    back = load_policy(tmp_path / method)
    assert back.args.arch == "per-user" and sum(p.numel() for p in back.net.parameters()) == n_params
    for U in (4, 9, 23):  # trained with U = 4; the parameter count does not depend on U
        inst = generate(replace(PRESETS["tiny"], U=U), make_rng(U, "test-per-user"))
        d1, d2 = pol.decide(inst), back.decide(inst)
        assert d1.y.shape == (U,) and evaluate(inst, d2).feasible
        # float16 storage rounds the weights, so only the logits' order can differ; on these slots it does not
        np.testing.assert_array_equal(d1.y, d2.y)
    with pytest.raises(InvalidInputError, match="trained for H=2"):
        back.decide(_inst("small"))
    stored = torch.load((tmp_path / method).with_suffix(".pt"), weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())


def test_per_user_training_is_seeded_and_flat_default_is_unchanged():
    (mod, a1), (_, a2) = _tiny_args("mamaxent", seed=3, arch="per-user"), _tiny_args("mamaxent", seed=3)
    p1, p2 = mod.train(a1, progress=False), mod.train(a1, progress=False)
    assert all(torch.equal(v, p2.net.state_dict()[k]) for k, v in p1.net.state_dict().items())
    assert a2.arch == "flat" and type(mod.MaMaxEntPolicy(a2, 4, 2).net) is not type(p1.net)
    with pytest.raises(InvalidInputError, match="arch must be"):
        mod.MaMaxEntPolicy(replace(a2, arch="wide"), 4, 2).decide(_inst("tiny"))


def test_shared_row_modules_are_permutation_equivariant():
    from learners.common import RowwiseEnsemble, SetCritic, SharedAgentMLP

    torch.manual_seed(0)
    x = torch.randn(3, 5, 6 * 4)  # K = 3 members, B = 5, R = 6 rows of 4 features
    perm = torch.randperm(6)
    net = RowwiseEnsemble(3, 4, [8], 2, context=True)
    y, yp = net(x), net(x.reshape(3, 5, 6, 4)[:, :, perm].reshape(3, 5, 24))
    torch.testing.assert_close(yp.reshape(3, 5, 6, 2), y.reshape(3, 5, 6, 2)[:, :, perm])
    critic = SetCritic(3, 4, 2, [8, 8])
    xa = torch.cat([x, torch.randn(3, 5, 12)], dim=2)
    s, a = xa[..., :24].reshape(3, 5, 6, 4), xa[..., 24:].reshape(3, 5, 6, 2)
    xp = torch.cat([s[:, :, perm].reshape(3, 5, 24), a[:, :, perm].reshape(3, 5, 12)], dim=2)
    torch.testing.assert_close(critic(xa), critic(xp))
    shared = SharedAgentMLP(4, [8], 3, context=True)
    o = torch.randn(6, 5, 4)
    torch.testing.assert_close(shared(o[perm]), shared(o)[perm])
    assert shared(torch.randn(11, 2, 4)).shape == (11, 2, 3)
