"""DTAC learners (issue #16): the hybrid action mapping is always feasible, the env varies the number of UEs, the
policies save / load / serve through the registry, training is seeded-deterministic, DTAC's actor is decentralized
(eq. 21), parameter counts match Table IV's budgets, and a smoke learning check. Whole file: well under a minute."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from learners import dtac as suite
from learners import dtac_dtac, dtac_happo, dtac_tac, dtac_tl
from learners.common import load_policy
from learners.dtac import L_MAX, N_MAX, features, hybrid_decision, local_state
from mecopt.core import InvalidInputError, make_rng
from mecopt.envs.dtac import DtacEnv
from mecopt.problems.dtac import PRESETS, check_feasible, evaluate, generate

TINY = dict(total_steps=30, learning_starts=10, rounds=5, eval_every=15, tl_updates=8, batch_size=8, tl_batch_size=8)


def _inst(preset: str, k: int = 0, **cfg):
    c = replace(PRESETS[preset], **cfg) if cfg else PRESETS[preset]
    return generate(c, make_rng(5, "test-dtac-learners", preset, k))


def _untrained(kind: str):
    torch.manual_seed(0)
    if kind in dtac_tac.STAGES:
        return dtac_tac.TacPolicy(dtac_tac.Args(stage=kind), N_MAX, 2, {"preset": "tiny", "any_size": True})
    if kind == "tl":
        return dtac_tl.TlPolicy(dtac_tl.Args(), N_MAX, 2, {"preset": "tiny", "any_size": True})
    return dtac_happo.HappoPolicy(dtac_happo.Args(), N_MAX, 2, {"preset": "tiny", "any_size": True})


KINDS = ["tac", "dtac", "tl-transformer", "tl", "happo"]


@pytest.fixture(autouse=True)
def _teacher_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MECOPT_DTAC_TEACHERS", str(tmp_path / "teachers"))


# ---------------------------------------------------------------------------------------------------------------
# Hybrid action mapping (eq. 16 -> problem 13): always feasible
# ---------------------------------------------------------------------------------------------------------------
def test_hybrid_mapping_feasible_for_any_output():
    rng = np.random.default_rng(0)
    for preset, k in [("tiny", 0), ("small", 1), ("fig5", 2), ("tiny", 3)]:
        inst = _inst(preset, k)
        for scale in (0.0, 1.0, 1e3, 1e12):
            px = scale * rng.standard_normal((inst.N, 3))
            pl = scale * rng.standard_normal((inst.N, L_MAX))
            a = scale * rng.standard_normal(inst.N)
            b = scale * rng.standard_normal(inst.N)
            dec = hybrid_decision(inst, px, pl, a, b)
            assert check_feasible(inst, dec) == []
            assert np.all(dec.l <= inst.L)  # channel logits beyond the instance's L are never chosen
        nan = np.full(inst.N, np.nan)
        assert check_feasible(inst, hybrid_decision(inst, np.zeros((inst.N, 3)), np.zeros((inst.N, 8)), nan, nan)) == []
    # the network-side mapping: pre-activations of any size land in [a_min, 1]
    u = torch.tensor([-1e9, -50.0, 0.0, 50.0, 1e9])
    r = suite.ratio(u, 1e-3)
    assert float(r.min()) >= 1e-3 and float(r.max()) <= 1.0


def _encode(inst, dec) -> torch.Tensor:
    """Network outputs (N, ACTION_DIM) whose decode (eq. 16, L2) is ``dec``: saturated one-hot logits for x and l,
    the inverse of the ratio map for a and b (clipped to +-30: sigmoid(30) = 1 - 1e-13)."""
    out = torch.zeros(inst.N, suite.ACTION_DIM, dtype=torch.float64)
    rows = torch.arange(inst.N)
    out[rows, torch.as_tensor(np.array(dec.x))] = 30.0
    out[rows, 3 + torch.as_tensor(np.array(dec.l) - 1)] = 30.0
    for j, (v, lo) in enumerate(((dec.a, inst.a_min), (dec.b, inst.b_min))):
        q = np.clip((np.asarray(v, float) - lo) / (1.0 - lo), 1e-13, 1 - 1e-13)
        out[:, 3 + L_MAX + j] = torch.as_tensor(np.clip(np.log(q / (1 - q)), -30, 30))
    return out


def _decode(inst, out: torch.Tensor, channel_decode: str = "argmax"):
    h = suite.split_head(out, inst.L)
    px, pl = torch.softmax(h["x"], -1).numpy(), torch.softmax(h["l"], -1).numpy()
    a, b = suite.ratio(h["ab"][:, 0], inst.a_min).numpy(), suite.ratio(h["ab"][:, 1], inst.b_min).numpy()
    return hybrid_decision(inst, px, pl, a, b, channel_decode)


def test_decode_reproduces_greedy_and_optimum():
    """A policy that imitates greedy or the certified optimum through the networks' action decode (softmax / argmax
    for x and l, the sigmoid ratio map for a and b) reproduces its objective: the decode can express every decision,
    so the learners' gaps are not a decode artefact (issue #16)."""
    from mecopt.core import SolveOptions
    from solvers.exact.dtac import solve_exact
    from solvers.heuristics.dtac import greedy

    for k in range(3):
        inst = _inst("tiny", k)
        for dec in (greedy(inst, SolveOptions()).decision, solve_exact(inst, SolveOptions(time_limit=30)).decision):
            target = evaluate(inst, dec).objective
            got = evaluate(inst, _decode(inst, _encode(inst, dec))).objective
            assert got == pytest.approx(target, rel=1e-6)


def test_cell_distinct_channels():
    """L11 variant: a cell's offloading UEs get distinct channels while free ones remain, in order of confidence;
    locals and a decision that is already distinct keep the argmax."""
    inst = _inst("small", 0)  # K = 2, N = 6, L = 2: three UEs per cell
    px = np.tile([0.0, 1.0, 0.0], (inst.N, 1))  # everyone offloads to the edge
    pl = np.tile([0.9, 0.1] + [0.0] * (L_MAX - 2), (inst.N, 1))  # everyone prefers channel 1
    pl[:, 0] -= 0.01 * np.arange(inst.N)  # confidence decreasing with n
    one = np.ones(inst.N)
    plain = hybrid_decision(inst, px, pl, one, one)
    assert np.all(plain.l == 1)
    dec = hybrid_decision(inst, px, pl, one, one, "cell-distinct")
    assert check_feasible(inst, dec) == []
    for k in range(inst.K):
        cell = np.flatnonzero(inst.server == k)
        assert sorted(dec.l[cell[:2]]) == [1, 2]  # the two most confident UEs of the cell take both channels
        assert dec.l[cell[2]] == 1  # no channel left: the argmax
    px[0] = [1.0, 0.0, 0.0]  # a local UE keeps its argmax and takes no channel from the cell
    assert hybrid_decision(inst, px, pl, one, one, "cell-distinct").l[0] == 1
    with pytest.raises(InvalidInputError):
        hybrid_decision(inst, px, pl, one, one, "nope")
    tiny = _inst("tiny", 0)  # two UEs per cell on L = 2: preferences already distinct within each cell
    pl2 = np.zeros((tiny.N, L_MAX))
    for k in range(tiny.K):
        cell = np.flatnonzero(tiny.server == k)
        pl2[cell, np.arange(cell.size) % tiny.L] = 1.0
    px2, ones = np.tile([0.0, 1.0, 0.0], (tiny.N, 1)), np.ones(tiny.N)
    plain, cd = (hybrid_decision(tiny, px2, pl2, ones, ones, m).l for m in ("argmax", "cell-distinct"))
    assert np.array_equal(plain, cd)


def test_happo_cell_distinct_sampling():
    """L11 for HAPPO: a cell's offloaders sample distinct channels (in the decode's order) while free ones remain,
    each from its p_l restricted to the free channels, and the stored exclusions give that restricted categorical;
    locals and the offloaders past the cell's L channels keep their unrestricted samples."""
    inst = _inst("small", 0)  # K = 2, N = 6, L = 2: three UEs per cell
    x = np.ones(inst.N, np.int64)
    x[np.flatnonzero(inst.server == 1)[0]] = 0  # one local in cell 1
    lg = suite.split_head(torch.zeros(inst.N, suite.ACTION_DIM), inst.L)["l"]
    lg[:, 0] += 3.0 + 0.1 * torch.arange(inst.N)  # everyone prefers channel 1; confidence increasing with n
    torch.manual_seed(0)
    for _ in range(20):
        free = np.zeros(inst.N, np.int64)  # the unrestricted samples (here all channel 1)
        l = free.copy()
        excl = dtac_happo.cell_distinct_sample(inst, lg, x, l)
        lp = dtac_happo.channel_dist(lg, excl).log_prob(torch.as_tensor(l))
        assert torch.isfinite(lp).all()
        for k in range(inst.K):
            cell = np.flatnonzero(inst.server == k)
            off = cell[x[cell] >= 1]
            order = off[np.argsort(-off, kind="stable")]  # decreasing confidence = decreasing n here
            assert sorted(l[order[:2]]) == [0, 1]  # the first L offloaders take distinct channels
            assert not excl[order[0]].any() and excl[order[1], l[order[0]]] and excl[order[1]].sum() == 1
            assert float(lp[order[1]]) == 0.0  # one free channel left: taken with probability 1
            for n in (*order[2:], *cell[x[cell] == 0]):  # past the L channels, or local: unrestricted, untouched
                assert l[n] == free[n] and not excl[n].any()
    with pytest.raises(InvalidInputError):
        dtac_happo.train(dtac_happo.Args(channel_decode="nope", total_steps=1), progress=False)


def test_power_rule_decode_feasible_for_any_output():
    """L13: the ``cell-distinct+power`` decode is feasible for any network output (NaN included); it keeps the
    cell-distinct decode's x, l and b and only lowers a, and only for offloaders sharing a channel in their cell;
    the default decodes are untouched (a = the clipped output)."""
    rng = np.random.default_rng(1)
    for preset, k in [("tiny", 0), ("small", 1), ("small", 2), ("fig5", 3)]:
        inst = _inst(preset, k)
        for scale in (0.0, 1.0, 1e3, 1e12):
            px = scale * rng.standard_normal((inst.N, 3))
            pl = scale * rng.standard_normal((inst.N, L_MAX))
            a = rng.uniform(-0.5, 1.5, inst.N) if scale else np.full(inst.N, np.nan)
            b = scale * rng.standard_normal(inst.N)
            a[rng.random(inst.N) < 0.2] = np.nan
            clipped = np.clip(np.nan_to_num(a, nan=1.0), inst.a_min, 1.0)
            for mode in ("argmax", "cell-distinct"):
                assert np.array_equal(hybrid_decision(inst, px, pl, a, b, mode).a, clipped)
            cd = hybrid_decision(inst, px, pl, a, b, "cell-distinct")
            pw = hybrid_decision(inst, px, pl, a, b, "cell-distinct+power")
            assert check_feasible(inst, pw) == []
            assert np.array_equal(pw.x, cd.x) and np.array_equal(pw.l, cd.l) and np.array_equal(pw.b, cd.b)
            assert np.all(pw.a <= cd.a) and np.all(pw.a >= inst.a_min)
            for n in np.flatnonzero(pw.a != cd.a):  # changed only where the UE shares its channel in its cell
                same = (inst.server == inst.server[n]) & (cd.x >= 1) & (cd.l == cd.l[n])
                assert cd.x[n] >= 1 and same.sum() >= 2


def test_power_rule_on_a_three_ue_cell():
    """L13 on a hand-built cell (small preset: 3 UEs per cell, L = 2): two edge-bound UEs share channel 1, the
    third has channel 2. The stronger co-channel UE lowers its power to the weaker one's received power (equal
    SINR, ~1 each instead of ~g_weak / g_strong), the others keep a; the cell's uplink times and the round get
    cheaper."""
    from mecopt.problems.dtac import precompute, terms

    inst = _inst("small", 0)
    cell = np.flatnonzero(inst.server == 0)
    h = np.array(inst.h_ue, float)
    h[cell] = [1e-9, 1e-11, 1e-10]  # UE cell[0] 100x stronger than cell[1]
    inst = inst.replace(h_ue=h)
    x = np.zeros(inst.N, np.int64)
    x[cell] = 1
    l = np.ones(inst.N, np.int64)
    l[cell[2]] = 2
    a = np.ones(inst.N)
    out = suite.equalise_shared_power(inst, x, l, a)
    assert out[cell[0]] == pytest.approx(1e-2)  # g_weak / g_strong
    assert out[cell[1]] == 1.0 and out[cell[2]] == 1.0 and np.all(out[inst.server == 1] == 1.0)
    g = precompute(inst).g
    assert out[cell[0]] * g[cell[0]] == pytest.approx(out[cell[1]] * g[cell[1]])  # equal received powers
    one = np.ones(inst.N)
    t0 = terms(inst, x[None], l[None], a[None], one[None])
    t1 = terms(inst, x[None], l[None], out[None], one[None])
    sinr = lambda t: 2 ** (inst.B**-1 * t.R_up[0, cell[:2]]) - 1  # noqa: E731 (eq. 4 inverted)
    assert sinr(t0)[1] < 0.02 and np.allclose(sinr(t1), sinr(t1)[0], rtol=1e-6) and 0.9 < sinr(t1)[0] < 1.0
    assert t1.T21[0, cell].sum() < 0.5 * t0.T21[0, cell].sum()  # the cell's queued uplink times (eq. 11)
    assert t1.objective[0] < t0.objective[0]
    a_min_case = suite.equalise_shared_power(inst.replace(a_min=0.05), x, l, a)
    assert a_min_case[cell[0]] == 0.05  # clipped to a_min
    with pytest.raises(InvalidInputError, match="decode"):
        dtac_happo.train(dtac_happo.Args(channel_decode="cell-distinct+power", total_steps=1), progress=False)


def test_policy_channel_decode_copy():
    pol = _untrained("tac")
    inst = _inst("small", 1)
    cd = pol.with_decode("cell-distinct")
    assert pol.channel_decode is None and cd.channel_decode == "cell-distinct" and cd.net is pol.net
    assert evaluate(inst, cd.decide(inst)).feasible
    with pytest.raises(InvalidInputError):
        pol.with_decode("nope")


@pytest.mark.parametrize("kind", KINDS)
def test_untrained_policies_decide_feasibly(kind):
    pol = _untrained(kind)
    for preset in ("tiny", "small"):
        inst = _inst(preset)
        assert evaluate(inst, pol.decide(inst)).feasible
    big = _inst("fig5")  # N ~ 25: transformers take any N, the RNN actors only N <= N_MAX
    if kind in dtac_tac.STAGES:
        assert evaluate(big, pol.decide(big)).feasible
    else:
        with pytest.raises(InvalidInputError, match="N <= 6"):
            pol.decide(big)


@pytest.mark.parametrize("kind", ["tl", "happo"])
def test_rnn_actors_act_at_any_n(kind):
    """L14: ``with_any_n`` lets the RNN actors (one per UE id, N <= 6) act at the paper's N (14 and 50 here): UE n
    uses actor n mod 6 with that actor's id feature; decisions are feasible with every decode; for N <= 6 the
    decisions are bit-identical to the original policy's (and the original still refuses N > 6)."""
    pol = _untrained(kind)
    wide = pol.with_any_n()
    assert not pol.any_n and wide.any_n and wide.net is pol.net
    for N, cfg in ((14, dict(K=7, ue_per_server=(2,))), (50, dict(K=5, ue_per_server=(10,)))):
        inst = _inst("fig5", N, **cfg)
        assert inst.N == N
        with pytest.raises(InvalidInputError, match="N <= 6"):
            pol.decide(inst)
        for mode in suite.CHANNEL_DECODES:
            assert check_feasible(inst, wide.with_decode(mode).decide(inst)) == []
        ids = local_state(inst)[:, 0] * (N_MAX - 1)
        assert np.allclose(ids, np.arange(N) % N_MAX)  # the ids the actors were trained with
        with torch.no_grad():  # UE n's output is actor (n mod 6)'s on UE n's local state
            out, _ = wide.net(torch.as_tensor(local_state(inst))[None], torch.zeros(1, N, wide.net.hidden), True)
            n = N - 1
            own, _ = wide.net.agents[n % N_MAX](
                torch.as_tensor(local_state(inst))[None, n], torch.zeros(1, wide.net.hidden)
            )
        assert torch.allclose(out[0, n], own[0])
    for preset, k in (
        ("tiny", 0),
        ("small", 1),
        (
            "tiny",
            4,
        ),
        ("small", 5),
    ):
        inst = _inst(preset, k)
        assert np.array_equal(local_state(inst)[:, 0], np.arange(inst.N, dtype=np.float32) / (N_MAX - 1))
        for mode in suite.CHANNEL_DECODES:
            d0, d1 = pol.with_decode(mode).decide(inst), wide.with_decode(mode).decide(inst)
            for f in ("x", "l", "a", "b"):
                assert np.array_equal(getattr(d0, f), getattr(d1, f))


@pytest.mark.parametrize("mod", [dtac_tl, dtac_happo])
def test_shared_actor_variant_trains_and_acts_at_any_n(mod, tmp_path):
    """L14 variant: ``shared_actor=True`` trains one RNN actor for every UE id (HAPPO: MAPPO's joint clipped update)
    that acts at any N without ``with_any_n``; it saves / loads with one actor; the default stays per-UE-id."""
    args = {k: v for k, v in TINY.items() if k in mod.Args.__dataclass_fields__}
    kw = {"rollout": 15} if mod is dtac_happo else {}
    pol = mod.train(mod.Args(seed=2, shared_actor=True, channel_decode="cell-distinct", **args, **kw), progress=False)
    assert len(pol.net.agents) == 1 and pol.meta["params_actor_per_ue"] == sum(p.numel() for p in pol.net.parameters())
    big = _inst("fig5", 50, K=5, ue_per_server=(10,))
    assert check_feasible(big, pol.decide(big)) == []
    pol.save(tmp_path / "p")
    back = load_policy(tmp_path / "p")
    assert len(back.net.agents) == 1
    small = _inst("small", 3)
    assert np.array_equal(back.decide(small).x, pol.decide(small).x)
    assert len(_untrained("tl" if mod is dtac_tl else "happo").net.agents) == N_MAX


# ---------------------------------------------------------------------------------------------------------------
# Variable-UE env (Fig. 11)
# ---------------------------------------------------------------------------------------------------------------
def test_env_varies_the_number_of_ues():
    env = suite.make_train_env(rounds=3)
    sizes = []
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        assert obs.shape == (env.N, 6) and env.action_space["x"].shape == (env.N,)
        sizes.append(env.N)
        done = False
        while not done:
            _, r, _, trunc, info = env.step(env.action_space.sample())
            assert np.isfinite(r) and info["vector_reward"].shape == (2 * env.N,)
            done = trunc
    assert len(set(sizes)) >= 3 and min(sizes) >= 2 and max(sizes) <= 6
    env2 = suite.make_train_env(rounds=3)
    assert [env2.reset(seed=s)[0].shape[0] for s in range(12)] == sizes  # seeded
    fixed = DtacEnv("tiny")  # the default env keeps one scenario
    assert {fixed.reset(seed=s)[0].shape[0] for s in range(5)} == {4}


def test_features_and_local_state():
    inst = _inst("small")
    f = features(inst)
    assert f.shape == (inst.N, 6) and np.all(np.isfinite(f)) and np.abs(f).max() < 20
    s = local_state(inst)
    assert s.shape == (inst.N, 8) and s[0, 0] == 0.0  # eq. (24): [n, k, state]


# ---------------------------------------------------------------------------------------------------------------
# Architecture: Table IV budgets, decentralized DTAC (eq. 21)
# ---------------------------------------------------------------------------------------------------------------
def test_parameter_counts_match_table_iv():
    a = dtac_tac.Args()
    n_actor = suite.n_params(dtac_tac.actor_net(a))
    n_critic = suite.n_params(dtac_tac.critic_net(a))
    assert abs(n_actor - 8170) / 8170 < 0.03  # Table IV: DTAC actor 8.17k
    assert abs(n_critic - 8520) / 8520 < 0.03  # Table IV: DTAC critic 8.52k


def test_dtac_actor_is_decentralized():
    """Eq. (21): with identity attention UE n's action depends only on its own state and server id."""
    inst = _inst("small")
    torch.manual_seed(1)
    for stage, local in (("dtac", True), ("tl-transformer", True), ("tac", False)):
        net = dtac_tac.TacPolicy(dtac_tac.Args(stage=stage), N_MAX, 2).net
        f = torch.as_tensor(features(inst))[None]
        srv = torch.as_tensor(np.array(inst.server))[None]
        with torch.no_grad():
            out = net(f, srv)[0, 0]
            f2 = f.clone()
            f2[0, 1:] += 1.0  # every other UE's state changes
            out2 = net(f2, srv)[0, 0]
        assert torch.allclose(out, out2) == local


# ---------------------------------------------------------------------------------------------------------------
# Save / load, registry
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(tmp_path, kind):
    pol = _untrained(kind)
    pol.save(tmp_path / "ck")
    back = load_policy(tmp_path / "ck")
    assert back.name == kind and type(back) is type(pol)
    for preset in ("tiny", "small"):
        inst = _inst(preset, 3)
        d1, d2 = pol.decide(inst), back.decide(inst)
        np.testing.assert_array_equal(d1.x, d2.x)
        np.testing.assert_array_equal(d1.l, d2.l)
        np.testing.assert_allclose(d1.a, d2.a)


def test_registry_serves_any_size_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    from learners.registry import checkpoint_dir
    from mecopt.methods import all_methods, solve

    _untrained("dtac").save(checkpoint_dir("dtac") / "dtac-tiny")
    assert "dtac" in all_methods("dtac")
    for preset in ("tiny", "small"):
        res = solve("dtac", _inst(preset), "dtac")
        assert res.feasible


# ---------------------------------------------------------------------------------------------------------------
# Seeded determinism and a smoke learning check
# ---------------------------------------------------------------------------------------------------------------
def _state(pol) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in pol.net.state_dict().items()}


@pytest.mark.parametrize(
    "mod,kw",
    [
        (dtac_tac, {"stage": "tac"}),
        (dtac_dtac, {"stage": "dtac"}),
        (dtac_tl, {}),
        (dtac_happo, {"rollout": 15}),
        (dtac_happo, {"rollout": 15, "channel_decode": "cell-distinct"}),
    ],
)
def test_seeded_determinism(mod, kw, tmp_path, monkeypatch):
    args = {k: v for k, v in TINY.items() if k in {f for f in mod.Args.__dataclass_fields__}}
    p1 = mod.train(mod.Args(seed=3, **args, **kw), progress=False)
    monkeypatch.setenv("MECOPT_DTAC_TEACHERS", str(tmp_path / "other"))  # retrain the teacher from scratch
    p2 = mod.train(mod.Args(seed=3, **args, **kw), progress=False)
    s1, s2 = _state(p1), _state(p2)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    if mod is dtac_tac:
        p3 = mod.train(mod.Args(seed=4, **args, **kw), progress=False)
        assert not all(torch.equal(s1[k], v) for k, v in _state(p3).items())
    assert p1.meta["env_steps"] == TINY["total_steps"] and p1.meta["any_size"]


def test_happo_default_training_unchanged_by_l11():
    """HAPPO's default (paper, ``argmax``) training is bit-identical to the code before the L11 cell-distinct
    sampling was added (weights digest computed at commit 7335d40 with torch 2.13.0+cpu; if torch changes, re-pin
    from that commit)."""
    import hashlib

    pol = dtac_happo.train(dtac_happo.Args(seed=3, total_steps=30, rounds=5, eval_every=15, rollout=15), progress=False)
    h = hashlib.sha256()
    for k, v in sorted(pol.net.state_dict().items()):
        h.update(k.encode() + v.numpy().tobytes())
    assert h.hexdigest()[:16] == "409d48d288ef577d"


def test_smoke_learning_tl_imitates_teacher(tmp_path):
    """The TL stage (eq. 26: RNN actors, MSE to the teacher's actions) reduces its loss on the replay states."""
    csv = tmp_path / "log.csv"
    args = dtac_tl.Args(**{**TINY, "tl_updates": 120, "eval_every": 40}, lr_tl=3e-3, seed=2)
    dtac_tl.train(args, csv_path=str(csv), progress=False)
    from learners.common import read_log_csv

    losses = [r["stage_loss"] for r in read_log_csv(csv) if r["phase"] == 2.0]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]  # first row: the loss at the first update


def test_smoke_learning_critic_fits_rewards():
    """The TAC critic's regression of the vector reward (eq. 18) improves over its first updates."""
    args = dtac_tac.Args(total_steps=120, learning_starts=20, train_frequency=1, lr_critic=3e-3, rounds=5, seed=2)
    t = dtac_tac.train_tac(args)
    d = t.data
    b = {k: torch.as_tensor(v) for k, v in d.items()}
    with torch.no_grad():
        q = t.critic(torch.cat([b["f"], b["A"]], -1), b["srv"], b["pad"])
        target = torch.log1p(b["cost"])
        valid = ~b["pad"]
        mse = float(((q - target) ** 2)[valid].mean())
        var = float(target[valid].var())
    assert mse < 0.8 * var


def test_train_config_coverage():
    """L12: the training env of Fig. 11's "trained" model uses the larger coverage; bad input is a clear error."""
    cfg = suite.train_config("tiny", (1, 2), (600.0, 800.0))
    assert (cfg.edge_radius_m, cfg.cloud_radius_m, cfg.ue_per_server) == (600.0, 800.0, (1, 2))
    assert suite.train_config("tiny").edge_radius_m == PRESETS["tiny"].edge_radius_m
    with pytest.raises(InvalidInputError):
        suite.train_config("tiny", None, (600.0,))
    env = suite.make_train_env(rounds=2, coverage_m=(600.0, 800.0))
    assert env.cfg.edge_radius_m == 600.0


# ---------------------------------------------------------------------------------------------------------------
# L11 re-tuning: studies with fixed Args overrides in their own folder (results/dtac/tuning_cd/)
# ---------------------------------------------------------------------------------------------------------------
def test_tuning_with_fixed_overrides_in_own_folder(tmp_path, monkeypatch):
    """A study with ``fixed`` overrides (the L11 decode) lives in its own folder, records them in its result and
    every trial; the decentralized studies learn from the TAC of the same folder; train --tuning reads it."""
    import json

    from learners.train import TUNING, best_params_path, make_args, tuning_dir
    from learners.tune import fixed_overrides, parse_fixed, study_name, tune

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    monkeypatch.setenv("MECOPT_DTAC_TEACHERS", str(tmp_path / "teachers"))
    cd = parse_fixed('{"channel_decode": "cell-distinct"}')
    assert cd == {"channel_decode": "cell-distinct"} and parse_fixed(" ") == {}
    with pytest.raises(InvalidInputError, match="JSON object"):
        parse_fixed("[1]")
    with pytest.raises(InvalidInputError, match="folder name"):
        tuning_dir("dtac", "../elsewhere")
    with pytest.raises(InvalidInputError, match="no TAC study"):  # never silently another folder's teacher
        fixed_overrides("dtac", "dtac", cd, "tuning_cd")
    assert fixed_overrides("dtac", "tac", cd, "tuning_cd") == cd
    assert study_name("dtac", "tac") == "dtac-tac" and study_name("dtac", "tac", "tuning_cd") == "dtac-tac-tuning_cd"

    seen: list[str] = []
    orig = dtac_tac.train

    def spy(args, *a, **k):
        seen.append(args.channel_decode)
        return orig(args, *a, **k)

    monkeypatch.setattr(dtac_tac, "train", spy)
    monkeypatch.setattr(dtac_dtac, "train", spy)
    tac = tune("dtac", "tac", trials=2, steps=30, n_tune=2, fixed=cd, tuning="tuning_cd")
    assert len(tac.trials) == 2 and tac.study_name == "dtac-tac-tuning_cd"
    res = json.loads(best_params_path("dtac", "tac", "tuning_cd").read_text())
    assert res["fixed"] == cd and res["args"]["channel_decode"] == "cell-distinct"
    assert (
        "Fixed in every trial: `channel_decode` = 'cell-distinct'"
        in (tmp_path / "dtac" / "tuning_cd" / "tac-trials.md").read_text()
    )
    assert not best_params_path("dtac", "tac", TUNING).exists()  # the committed folder is untouched
    teacher = {k: v for k, v in res["args"].items() if k != "stage"}
    assert fixed_overrides("dtac", "tl", cd, "tuning_cd") == teacher

    tune("dtac", "dtac", trials=2, steps=30, n_tune=2, fixed={**cd, "tl_updates": 4}, tuning="tuning_cd")
    assert seen == ["cell-distinct"] * 4
    dres = json.loads(best_params_path("dtac", "dtac", "tuning_cd").read_text())
    assert {k: dres["args"][k] for k in teacher} == teacher  # the cd TAC's parameters, not the committed ones
    args = make_args("dtac", "dtac", "tuned", seed=2, steps=10, tuning="tuning_cd")
    assert args.channel_decode == "cell-distinct" and args.lr_tl == dres["args"]["lr_tl"]
    assert args.lr_actor == teacher["lr_actor"] and args.stage == "dtac"
    with pytest.raises(InvalidInputError, match="no tuning result"):
        make_args("dtac", "dtac", "tuned", seed=2, tuning=TUNING)


def test_cd_tuned_runs_driver(tmp_path, monkeypatch):
    """``python -m bench.test_dtac_learners cdtrain``: seeds at the tuning_cd parameters into cell_distinct_tuned/
    (seed 1 -> checkpoints/, others -> seeds/checkpoints/), resumable; refuses a study without the L11 decode."""
    import json

    from bench import test_dtac_learners as bench_dtac

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    monkeypatch.setenv("MECOPT_DTAC_TEACHERS", str(tmp_path / "teachers"))
    monkeypatch.setattr(suite, "TUNE_STEPS", 30)
    study = tmp_path / "dtac" / "tuning_cd"
    study.mkdir(parents=True)
    (study / "tac.json").write_text(json.dumps({"args": {"lr_actor": 1e-3, "tl_updates": 4, "eval_every": 15}}))
    with pytest.raises(RuntimeError, match="does not fix channel_decode"):
        bench_dtac.train_cd_tuned(("tac",), (2,))
    (study / "tac.json").write_text(
        json.dumps({"args": {"lr_actor": 1e-3, "eval_every": 15, "channel_decode": "cell-distinct"}})
    )
    bench_dtac.train_cd_tuned(("tac",), (1, 2))
    one, two = bench_dtac.cd_tuned_stem("tac", 1), bench_dtac.cd_tuned_stem("tac", 2)
    assert one == tmp_path / "dtac" / "cell_distinct_tuned" / "checkpoints" / "tac-tiny"
    assert two == tmp_path / "dtac" / "cell_distinct_tuned" / "seeds" / "checkpoints" / "tac-tiny-seed2"
    pol = load_policy(two)
    assert pol.args.channel_decode == "cell-distinct" and pol.args.lr_actor == 1e-3 and pol.args.total_steps == 30
    assert pol.meta["tuning"] == "tuning_cd" and pol.meta["seed"] == 2
    mtime = two.with_suffix(".json").stat().st_mtime_ns
    bench_dtac.train_cd_tuned(("tac",), (2,))  # resumes: a finished run is kept
    assert two.with_suffix(".json").stat().st_mtime_ns == mtime


# ---------------------------------------------------------------------------------------------------------------
# Paper-scale and Fig. 11 tables (bench/test_dtac_learners.py): seeds pooled with CIs, the L13 rule's rows
# ---------------------------------------------------------------------------------------------------------------
def test_paper_scale_rows_pool_seeds_with_cis():
    """A paper-scale block pools each row's seeds x rounds (95 % BCa CIs), the best incumbent is the best of every
    row and seed per round, and the verdict matrix names a winner only where the CIs separate."""
    from bench import test_dtac_learners as bench_dtac
    from learners.protocol import CI
    from learners.validate import SolverPolicy

    insts = [_inst("tiny", k) for k in range(4)]
    pols = {
        "two seeds": {1: SolverPolicy("dtac", "all-edge"), 2: SolverPolicy("dtac", "all-cloud")},
        "greedy": {0: SolverPolicy("dtac", "greedy")},
    }
    rows, cis = bench_dtac._paper_scale_rows("cell", insts, pols)
    assert [r["method"] for r in rows] == ["two seeds", "greedy"]
    assert rows[0]["seeds"] == "1, 2" and rows[0]["n"] == 8 and rows[1]["seeds"] == "-" and rows[1]["n"] == 4
    assert rows[0]["reward per seed"].startswith("1: -") and ", 2: -" in rows[0]["reward per seed"]
    assert rows[1]["reward per seed"] == "-"
    objs = {
        h: [evaluate(i, SolverPolicy("dtac", h).decide(i)).objective for i in insts]
        for h in ("all-edge", "all-cloud", "greedy")
    }
    assert np.isclose(cis["two seeds"]["reward"].mean, -np.mean(objs["all-edge"] + objs["all-cloud"]))
    best = np.min(list(objs.values()), axis=0)
    gaps = [100 * (v - b) / b for h in ("all-edge", "all-cloud") for v, b in zip(objs[h], best, strict=True)]
    assert np.isclose(cis["two seeds"]["incumbent"].mean, np.mean(gaps))
    for c in cis.values():
        assert c["incumbent"].lo <= c["incumbent"].mean <= c["incumbent"].hi and c["incumbent"].mean >= 0
        assert c["bound"].mean >= c["incumbent"].mean - 1e-9  # the valid bound is below every objective
    fake = {
        "c1": {"a": {"incumbent": CI(1, 0, 2, 5)}, "b": {"incumbent": CI(5, 4, 6, 5)}},
        "c2": {"a": {"incumbent": CI(1, 0, 5, 5)}, "b": {"incumbent": CI(5, 4, 6, 5)}},
    }
    m = bench_dtac._verdict_matrix(fake, [("a", "b"), ("b", "a"), ("a", "z")])
    assert [(r["c1"], r["c2"]) for r in m] == [("A", "~"), ("B", "~"), ("-", "-")]


def test_power_rule_idle_at_paper_scale():
    """At the paper-scale presets every server holds at most L = 8 UEs (UE sweep up to 8 per server), so with the
    L11 decode no two offloaders of a cell share a channel and ``cell-distinct+power`` equals ``cell-distinct``."""
    from bench import test_dtac_learners as bench_dtac

    pol = _untrained("tac")
    for preset in bench_dtac.PAPER_SCALE:
        insts = suite.instances("test", 2, preset=preset, ue_per_server=bench_dtac.UE_SWEEP[-1])
        assert bench_dtac._max_ues_per_cell(insts) <= insts[0].L == 8
        for inst in insts:
            d0, d1 = pol.with_decode("cell-distinct").decide(inst), pol.with_decode("cell-distinct+power").decide(inst)
            for f in ("x", "l", "a", "b"):
                assert np.array_equal(getattr(d0, f), getattr(d1, f))


def test_fig11_rows_with_power_rule():
    """Fig. 11's rows: every L11 run (here a cd-tuned TAC) also with the L13 rule, greedy / all-edge with the rule;
    the rule keeps x and l, never raises a, stays feasible; a run without the L11 decode is refused as L11 row."""
    from bench import test_dtac_learners as bench_dtac

    torch.manual_seed(0)
    cd = dtac_tac.TacPolicy(dtac_tac.Args(channel_decode="cell-distinct"), N_MAX, 2, {"preset": "tiny"})
    runs = {m: {1: _untrained(m)} for m in KINDS}
    runs[f"tac{bench_dtac.CD_TUNED}"] = {1: cd, 2: cd}
    rows = bench_dtac.fig11_policies(runs)
    tuned, ruled = f"tac{bench_dtac.CD_TUNED}", f"tac{bench_dtac.CD_TUNED}{bench_dtac.POWER}"
    assert list(rows) == [*KINDS, tuned, ruled, "greedy", "all-edge", "greedy + power rule", "all-edge + power rule"]
    assert len(rows[ruled]) == 2 and rows["greedy + power rule"][0].name == "greedy + power rule"
    inst = generate(replace(PRESETS["tiny"], ue_per_server=(4,)), make_rng(5, "fig11-rule"))  # 4 UEs, L = 2 a cell
    for plain, rule in ((tuned, ruled), ("greedy", "greedy + power rule")):
        d0, d1 = rows[plain][0].decide(inst), rows[rule][0].decide(inst)
        assert np.array_equal(d0.x, d1.x) and np.array_equal(d0.l, d1.l) and np.all(d1.a <= d0.a)
        assert check_feasible(inst, d1) == []
    assert not np.array_equal(rows["greedy"][0].decide(inst).a, rows["greedy + power rule"][0].decide(inst).a)
    runs[f"tl{bench_dtac.CD_TRAINED}"] = {1: _untrained("tl")}  # default (paper) decode: not an L11 run
    with pytest.raises(RuntimeError, match="L11"):
        bench_dtac.fig11_policies(runs)
