"""INTO learners (issue #15): the proto-action kernel (eq. 15 + Alg. 1 + the CPU split), the env's proto/agent-CPU
mode, the padded layout, save/load, seeded training, a smoke learning check and the registry."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from learners import into as suite
from learners import into_ddpg, into_ddqn
from learners.common import load_policy
from learners.into import Episodes
from mecopt.core import InvalidInputError, SolveOptions, make_rng
from mecopt.envs.into import IntoEnv
from mecopt.methods import all_methods, solve
from mecopt.problems.into import PRESETS, decision_from_targets, evaluate, generate, min_cpu, rate
from solvers.kernels.into_refine import decision_from_proto, nearest_discrete, refine, split_cpu

SMALL_DDPG = {"actor_hidden": [32, 32], "critic_hidden": [32, 32], "learning_starts": 50, "batch_size": 32}
SMALL_DDQN = {"hidden": [32, 32], "learning_starts": 50, "batch_size": 32}


def _insts(preset: str, n: int, seed: int = 0) -> list:
    return [generate(PRESETS[preset], make_rng(seed, "into-learners-test", preset, k)) for k in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# Kernel: eq. (15), Algorithm 1, the CPU split
# ---------------------------------------------------------------------------------------------------------------
def test_nearest_discrete_is_the_euclidean_nearest_valid_action():
    """Eq. (15)'s closed form equals a brute-force argmin over the N + 1 valid (C1-C3) actions of each device."""
    rng = np.random.default_rng(0)
    N = 3
    valid = [np.zeros(N + 1)] + [np.concatenate([[1.0], np.eye(N)[b]]) for b in range(N)]
    proto = rng.uniform(size=(500, N + 2))
    got = nearest_discrete(proto, N)
    for k in range(proto.shape[0]):
        d = [float(np.sum((proto[k, : N + 1] - v) ** 2)) for v in valid]
        best = int(np.argmin(d)) - 1
        assert got[k] == best or abs(d[got[k] + 1] - d[best + 1]) < 1e-12


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_every_refined_proto_action_is_feasible(preset):
    """Random proto-actions (uniform, all-ones, all-zeros) through eq. (15) + Alg. 1 give feasible IMP actions, in
    both CPU modes; with eq. (18)'s scaled minimum no run task misses its deadline."""
    rng = np.random.default_rng(1)
    for inst in _insts(preset, 4 if preset == "paper" else 12):
        protos = [rng.uniform(size=(inst.K, inst.N + 2)) for _ in range(6)]
        protos += [np.ones((inst.K, inst.N + 2)), np.zeros((inst.K, inst.N + 2))]
        for proto, cpu in itertools.product(protos, ("agent", "min-scaled")):
            target, dec = decision_from_proto(inst, proto, cpu)
            met = evaluate(inst, dec)
            assert met.feasible, met.violations[:3]
            if cpu == "min-scaled":
                assert met.values["n_on_time"] == int((target >= 0).sum())
        # the discrete path of the env and DDQN: every target vector refines to a feasible action
        for _ in range(10):
            t = refine(inst, rng.integers(-1, inst.N, size=inst.K))
            assert evaluate(inst, decision_from_targets(inst, t)).feasible


def test_cpu_split_follows_the_agents_weights():
    inst = _insts("small", 1, seed=3)[0]
    target = refine(inst, inst.bs.copy())
    w = np.random.default_rng(2).uniform(0.1, 1.0, size=inst.K)
    f = split_cpu(inst, target, w)
    for b in range(inst.N):
        mine = np.flatnonzero(target == b)
        if mine.size:
            assert abs(f[mine, b].sum() - inst.F[b]) <= 1e-6 * inst.F[b]  # (10) tight
            np.testing.assert_allclose(f[mine, b] / f[mine, b].sum(), w[mine] / w[mine].sum())
        assert np.all(f[target != b, b] == 0)
    # a split that starves a task below its minimum l (eq. 18) loses that task's award
    run = np.flatnonzero(target >= 0)
    if run.size >= 2:
        proto = np.zeros((inst.K, inst.N + 2))
        proto[run, 0] = 1.0
        proto[run, 1 + target[run]] = 1.0
        proto[:, -1] = 1.0
        proto[run[0], -1] = 1e-6
        _, starve = decision_from_proto(inst, proto, "agent")
        _, fair = decision_from_proto(inst, proto, "min-scaled")
        nu = rate(inst, (target >= 0)[None, :].astype(float))[0]
        lk = min_cpu(inst, nu, np.where(target >= 0, target, inst.bs))
        if starve.f[run[0]].sum() < lk[run[0]]:
            assert evaluate(inst, starve).objective < evaluate(inst, fair).objective


def test_env_accepts_the_agents_cpu_split():
    env = IntoEnv("small", horizon=3, action="proto", cpu="agent")
    env.reset(seed=4)
    assert env.action_space.shape == (env.K, env.N + 2)
    proto = np.random.default_rng(0).uniform(size=(env.K, env.N + 2))
    inst = env.inst
    _, r, _, _, info = env.step(proto)
    _, dec = decision_from_proto(inst, proto, "agent")
    np.testing.assert_allclose(info["decision"].f, dec.f)
    assert r == pytest.approx(evaluate(inst, dec).objective)
    with pytest.raises(InvalidInputError, match="needs action='proto'"):
        IntoEnv("small", cpu="agent")
    with pytest.raises(InvalidInputError, match="proto-action must be finite"):
        env.step(np.zeros((env.K, env.N + 1)))
    with pytest.raises(InvalidInputError, match="action must be one of"):
        IntoEnv("small", action="joint")


def test_padded_layout_round_trip_and_size_cap():
    inst = _insts("small", 1, seed=5)[0]
    x = np.arange(inst.K, dtype=float)
    np.testing.assert_array_equal(suite.unpad(inst, suite.pad(inst, x)), x)
    obs = suite.padded_observation(inst)
    assert obs.shape == (suite.OBS_DIM,) and suite.presence(inst).sum() == inst.K
    with pytest.raises(InvalidInputError, match="at most 8 devices per BS"):
        suite.padded_observation(_insts("paper", 1)[0])


# ---------------------------------------------------------------------------------------------------------------
# Learners: save/load, seeding, smoke learning, registry
# ---------------------------------------------------------------------------------------------------------------
def _short(mod, seed: int, steps: int = 120, **kw):
    small = SMALL_DDPG if mod is into_ddpg else SMALL_DDQN
    return mod.train(mod.Args(seed=seed, total_steps=steps, horizon=10, **{**small, **kw}), progress=False)


@pytest.mark.parametrize("mod", [into_ddpg, into_ddqn])
def test_save_load_round_trip(tmp_path, mod):
    pol = _short(mod, 1)
    pol.save(tmp_path / "ck")
    back = load_policy(tmp_path / "ck")
    assert type(back) is type(pol) and back.meta["any_size"] and (back.N, back.M) == (suite.K_MAX, suite.N_BS)
    for inst in _insts("small", 4, seed=6):
        a, b = pol.decide(inst), back.decide(inst)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_allclose(a.f, b.f)
        assert evaluate(inst, b).feasible


@pytest.mark.parametrize("mod", [into_ddpg, into_ddqn])
def test_training_is_seeded(mod):
    s1, s2, s3 = (_short(mod, s).net.state_dict() for s in (3, 3, 4))
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_table_ii_defaults():
    a = into_ddpg.Args()
    assert (a.actor_hidden, a.critic_hidden, a.lr_actor, a.lr_critic) == ([3000, 1000], [1500, 600], 1e-4, 1e-4)
    assert (a.tau, a.batch_size, a.buffer_size, a.gamma, a.cpu) == (1e-3, 64, 3000, 0.99, "agent")
    d = into_ddqn.Args()
    assert (d.hidden, d.lr, d.target_tau) == ([1000, 600], 1e-3, 1e-3)


#: an easy INTO world for the smoke check: noise-limited wide band (no effective interference), ample CPU and
#: energy, so "offload every task" earns every award and each discarded task loses its own award
EASY = replace(PRESETS["small"], B_hz=1e9, F_hz=50e9, Q_range_j=(1.0, 1.0))


@pytest.mark.parametrize("mod", [into_ddqn, into_ddpg])
def test_smoke_learning_beats_untrained(mod):
    """A few seconds of training in the easy world must beat the untrained network and reach most of sum g."""
    insts = [generate(EASY, make_rng(9, "into-smoke", k)) for k in range(20)]

    def mean_share(pol) -> float:
        return float(np.mean([evaluate(i, pol.decide(i)).objective / i.g.sum() for i in insts]))

    kw = {"gamma": 0.0, "eps_fraction": 0.3} if mod is into_ddqn else {"gamma": 0.0, "lr_actor": 1e-3}
    env = lambda: Episodes(EASY, 10, "discrete" if mod is into_ddqn else "proto", "min-scaled")  # noqa: E731
    small = SMALL_DDPG if mod is into_ddpg else SMALL_DDQN
    untrained = mean_share(mod.train(mod.Args(seed=2, total_steps=1, **small), env_fn=env, progress=False))
    args = mod.Args(seed=2, total_steps=600, **{**small, **kw}, cpu="min-scaled") if mod is into_ddpg else None
    args = args or mod.Args(seed=2, total_steps=600, **{**small, **kw})
    trained = mean_share(mod.train(args, env_fn=env, progress=False))
    assert trained > untrained + 0.05 and trained > 0.85, (trained, untrained)


def test_registry_serves_any_size_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    pol = _short(into_ddpg, 1, steps=5)
    pol.save(tmp_path / "into" / "checkpoints" / "into-small")
    assert all_methods("into")["into"].kind == "learned"
    for inst in _insts("small", 3, seed=8):
        res = solve("into", inst, "into", SolveOptions())
        assert res.feasible and res.status == "feasible"
        np.testing.assert_array_equal(res.decision["y"], pol.decide(inst).y)
    bad = solve("into", _insts("paper", 1)[0], "into")
    assert bad.status == "error" and "at most 8 devices per BS" in bad.message
    # a per-device checkpoint with meta.fallback serves what the padded one refuses; the padded one keeps `small`
    fb = _per_device(into_ddpg, 1, steps=5)
    fb.meta["fallback"] = True
    fb.save(tmp_path / "into" / "checkpoints" / "into-paper")
    big = _insts("paper", 1)[0]
    res = solve("into", big, "into", SolveOptions())
    assert res.feasible and res.status == "feasible"
    np.testing.assert_array_equal(res.decision["y"], fb.decide(big).y)
    inst = _insts("small", 1, seed=8)[0]
    np.testing.assert_array_equal(solve("into", inst, "into").decision["y"], pol.decide(inst).y)
    # two fallbacks of one method are refused with a one-line error
    fb.save(tmp_path / "into" / "checkpoints" / "into-paper2")
    with pytest.raises(InvalidInputError, match="two checkpoints of 'into' for the fallback"):
        all_methods("into")


@pytest.mark.parametrize("method", ["into", "ddqn"])
def test_cli_solves_a_paper_instance_with_the_committed_checkpoints(tmp_path, capsys, method):
    """`mecopt solve into --method into|ddqn` on a `paper` cell (K = 165): the registry serves the committed
    per-device fallback checkpoint (the padded `small` one takes at most 8 devices per BS) -> a feasible solution."""
    import json

    from learners.registry import checkpoint_dir
    from mecopt.cli import main

    if not (checkpoint_dir("into") / f"{method}-paper.json").exists():
        pytest.skip("no committed per-device fallback checkpoint")
    inst, sol = tmp_path / "i.json", tmp_path / "s.json"
    assert main(["generate", "into", "--size", "paper", "--seed", "3", "--out", str(inst)]) == 0
    assert main(["solve", "into", "--instance", str(inst), "--method", method, "--out", str(sol)]) == 0
    res = json.loads(sol.read_text())
    assert res["status"] == "feasible" and res["method"] == method and len(res["decision"]["x"]) == 165
    capsys.readouterr()
    assert main(["evaluate", "into", "--instance", str(inst), "--decision", str(sol)]) == 0
    assert json.loads(capsys.readouterr().out)["feasible"] is True


def test_committed_checkpoints_load_and_decide():
    """Every committed INTO checkpoint loads and gives a feasible decision on a `small` slot."""
    from learners.registry import checkpoint_dir

    headers = sorted(checkpoint_dir("into").glob("*.json"))
    if not headers:
        pytest.skip("no committed checkpoints")
    assert {"into", "ddqn"} <= {m.name for m in all_methods("into").values() if m.kind == "learned"}
    inst = _insts("small", 1, seed=10)[0]
    for h in headers:
        pol = load_policy(h.with_suffix(""))
        assert pol.meta["any_size"] and evaluate(inst, pol.decide(inst)).feasible, h.name


# ---------------------------------------------------------------------------------------------------------------
# Diagnosis (issue #15, item 1): Alg. 1 keeps a good proto-action's information; the replay-action variants
# ---------------------------------------------------------------------------------------------------------------
def test_optimum_encoded_as_proto_action_survives_alg1():
    """A hand-built proto-action from the certified optimum's decision (x, y one-hot, w = f / F) maps through eq. (15)
    and Alg. 1 back to a decision with the optimum's income, with either CPU mode."""
    from mecopt.problems.into import targets_of
    from solvers.exact.into.structured import solve_slot
    from solvers.kernels.into_refine import proto_from_decision

    for inst in _insts("small", 6, seed=12):
        dec = solve_slot(inst, SolveOptions(time_limit=60)).decision
        t = targets_of(inst, dec)
        proto = proto_from_decision(inst, dec)
        opt = evaluate(inst, dec).objective
        for cpu in ("agent", "min-scaled"):
            got = decision_from_proto(inst, proto, cpu)
            np.testing.assert_array_equal(got[0], t)
            assert evaluate(inst, got[1]).objective == pytest.approx(opt, rel=1e-9)


@pytest.mark.parametrize(("mod", "variant"), [(into_ddpg, "proto"), (into_ddqn, "chosen")])
def test_replay_action_variants_train_and_log_td_loss(tmp_path, mod, variant):
    """The named replay variants train, save and load; the training log records the TD loss; a bad value is refused."""
    pol = mod.train(
        mod.Args(seed=1, total_steps=60, horizon=10, replay_action=variant, **{**_small(mod), "learning_starts": 20}),
        csv_path=str(tmp_path / "log.csv"),
        progress=False,
    )
    pol.save(tmp_path / "ck")
    assert load_policy(tmp_path / "ck").args.replay_action == variant
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert "td_loss" in rows[0] and len(rows) == 7
    with pytest.raises(ValueError, match="replay_action"):
        mod.train(mod.Args(seed=1, total_steps=2, replay_action="bogus", **_small(mod)), progress=False)


def _small(mod) -> dict:
    return SMALL_DDPG if mod is into_ddpg else SMALL_DDQN


# ---------------------------------------------------------------------------------------------------------------
# Per-device shared-weight architecture (arch="per-device"): any K, `paper` cells
# ---------------------------------------------------------------------------------------------------------------
def _per_device(mod, seed: int, preset: str = "small", steps: int = 60):
    kw = {**_small(mod), "learning_starts": 20, "batch_size": 8}
    return mod.train(
        mod.Args(seed=seed, total_steps=steps, horizon=10, arch="per-device", preset=preset, **kw), progress=False
    )


def test_device_rows_features():
    """One row per device in device order: own features as a padded slot, BS one-hot, cell means, cell size, F_b and
    the priority rank within the cell; a `paper` cell (K = 165) is accepted."""
    inst = _insts("small", 1, seed=5)[0]
    rows = suite.device_rows(inst)
    assert rows.shape == (inst.K, suite.DEVICE_DIM) and rows.dtype == np.float32
    np.testing.assert_allclose(
        suite.unpad(inst, suite.padded_observation(inst)[: -suite.N_BS].reshape(suite.K_MAX, -1))[:, :11],
        rows[:, :11],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(rows[:, suite.BS_COL : suite.BS_COL + suite.N_BS].argmax(1), inst.bs)
    for b in range(inst.N):
        mine = inst.bs == b
        np.testing.assert_allclose(
            rows[mine, 14:25], np.broadcast_to(rows[mine, :11].mean(0), (mine.sum(), 11)), rtol=1e-5, atol=1e-6
        )
        assert np.allclose(rows[mine, 25], mine.sum() / 10.0)
        ranks = np.rint(rows[mine, 27] * mine.sum()).astype(int)
        assert sorted(ranks) == list(range(mine.sum()))
        assert rows[mine, 10][ranks.argmin()] == rows[mine, 10].max()  # rank 0 = highest priority g / l
    big = _insts("paper", 1)[0]
    assert suite.device_rows(big).shape == (165, suite.DEVICE_DIM)
    obs, m = suite.observe_rows(inst, 24)
    assert obs.shape == (24, suite.DEVICE_DIM) and m.sum() == inst.K and not obs[inst.K :].any()
    assert suite.k_cap("small") == 24 and suite.k_cap("paper") == 165


@pytest.mark.parametrize("mod", [into_ddpg, into_ddqn])
def test_per_device_policy_runs_on_any_k(tmp_path, mod):
    """A per-device policy trained on `small` decides feasibly on `small` (K varies) and on `paper` cells (K = 165);
    its parameter count does not depend on K; save/load gives the same decisions."""
    pol = _per_device(mod, 1)
    assert pol.per_device and pol.meta["any_size"]
    n_par = sum(p.numel() for p in pol.net.parameters())
    pol.save(tmp_path / "ck")
    back = load_policy(tmp_path / "ck")
    assert type(back) is type(pol) and back.args.arch == "per-device"
    assert sum(p.numel() for p in back.net.parameters()) == n_par
    for inst in _insts("small", 3, seed=6) + _insts("paper", 2, seed=6):
        a, b = pol.decide(inst), back.decide(inst)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_allclose(a.f, b.f)
        assert evaluate(inst, b).feasible
        out = pol.output(inst)
        assert out.shape[0] == inst.K
    with pytest.raises((InvalidInputError, ValueError)):
        pol.act(np.zeros((5, suite.DEVICE_DIM + 1), dtype=np.float32))


@pytest.mark.parametrize("mod", [into_ddpg, into_ddqn])
def test_per_device_training_on_paper_is_seeded(mod):
    """A tiny per-device run on the `paper` preset (K = 165) is bit-identical under the same seed."""
    s1, s2, s3 = (_per_device(mod, s, "paper", steps=40).net.state_dict() for s in (3, 3, 4))
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_per_device_critic_is_permutation_invariant():
    """The DeepSets critic's Q does not change when the devices (rows with their actions) are permuted, and absent
    rows (zero BS one-hot) do not count."""
    torch.manual_seed(0)
    critic = into_ddpg.DeepSetsCritic([16, 8])
    inst = _insts("small", 1, seed=7)[0]
    s = torch.as_tensor(suite.observe_rows(inst, 24)[0])[None]
    a = torch.rand(1, 24, into_ddpg.A_DIM)
    a[:, inst.K :] = 0.0
    perm = torch.cat([torch.randperm(inst.K), torch.arange(inst.K, 24)])
    q = critic(s, a)
    torch.testing.assert_close(critic(s[:, perm], a[:, perm]), q)
    torch.testing.assert_close(critic(s[:, : inst.K], a[:, : inst.K]), q)


def test_arch_is_checked_and_padded_is_the_default():
    assert into_ddpg.Args().arch == "padded" and into_ddqn.Args().arch == "padded"
    with pytest.raises(InvalidInputError, match="arch must be one of"):
        into_ddqn.IntoDdqnPolicy(into_ddqn.Args(arch="graph"))


def test_committed_per_device_checkpoints_run_on_small_and_paper():
    """Every committed per-device checkpoint (results/into/per_device, trained on `paper`) loads and decides
    feasibly on a `paper` cell and on a `small` slot."""
    from mecopt.core import results_dir

    headers = sorted((results_dir() / "into" / "per_device" / "checkpoints").glob("*.json"))
    if not headers:
        pytest.skip("no committed per-device checkpoints")
    insts = _insts("paper", 1, seed=11) + _insts("small", 1, seed=11)
    for h in headers:
        pol = load_policy(h.with_suffix(""))
        assert pol.per_device and pol.meta["preset"] == "paper", h.name
        for inst in insts:
            assert evaluate(inst, pol.decide(inst)).feasible, h.name


# ---------------------------------------------------------------------------------------------------------------
# Reduced Figs. 4-6: per-point retraining (learners.into_figs)
# ---------------------------------------------------------------------------------------------------------------
def test_fig_points_configs_and_names():
    """Every non-default sweep point once plus the default point; configs scale one field; bad input is refused."""
    from learners import into_figs as F

    pts = F.points()
    assert pts[-1] == ("default", F.DEFAULT_X) and len(pts) == len(set(pts)) == 17
    assert all(a != F.DEFAULT_X for _, a in pts[:-1])
    base = PRESETS["small"]
    assert F.point_config("g_range", 2.0).g_range == (2 * base.g_range[0], 2 * base.g_range[1])
    assert F.point_config("F_hz", 0.5).F_hz == 0.5 * base.F_hz and F.point_config("psi", 4.0).psi == 4.0
    assert F.point_config("sigma", 1.0) == base
    assert F.stem("into", "chi", 1.3).name == "into-small-chi1p3-seed1"
    assert F.stem("ddqn", "psi", 4.0, seed=2).name == "ddqn-small-psi4-seed2"
    fig6 = F.points("fig6")
    assert len(fig6) == 9 and fig6[-1] == ("default", F.DEFAULT_X) and set(fig6) <= set(pts)
    assert {f for f, _ in fig6[:-1]} == {f for f, _ in F.FIG6.values()}
    with pytest.raises(InvalidInputError, match="sweeps must be one of"):
        F.points("fig7")
    with pytest.raises(InvalidInputError, match="unknown generator field"):
        F.point_config("nope", 2.0)
    with pytest.raises(InvalidInputError, match="must be > 0"):
        F.point_config("chi", 0.0)
    with pytest.raises(InvalidInputError, match="unknown method"):
        F.train_one("ppo", "chi", 1.3)


def test_paper_fig45_points_scale_the_named_bss():
    """Fig. 4(a): BS 1's awards only; Fig. 4(b): BS 2-3's densities only; Fig. 5: every device; bad input refused."""
    from learners import into_figs as F

    base = PRESETS["small"]
    assert F.per_bs_config("g_scale_bs", (0,), 2.5).g_scale_bs == (2.5, 1.0, 1.0)
    assert F.per_bs_config("v_scale_bs", (1, 2), 1.3).v_scale_bs == (1.0, 1.3, 1.3)
    assert F.paper_point_config("sigma", None, 0.2) == replace(base, sigma=0.2)
    for label, (field_name, bss, xs) in F.FIG45_PAPER.items():
        assert xs[0] <= 1.0 <= xs[-1], label  # every sweep passes the `small` default
        cfg = F.paper_point_config(field_name, bss, 1.0)
        assert (cfg == base) if bss is None else (getattr(cfg, field_name) == (1.0, 1.0, 1.0)), label
    assert F.FIG45_PAPER["award xi, BS 1 only (Fig. 4a)"][1] == (0,)
    assert F.FIG45_PAPER["density zeta, BS 2-3 only (Fig. 4b)"][1] == (1, 2)
    with pytest.raises(InvalidInputError, match="per-BS field must be one of"):
        F.per_bs_config("g_range", (0,), 2.0)
    with pytest.raises(InvalidInputError, match="scaled BSs must be in 0..2"):
        F.per_bs_config("g_scale_bs", (3,), 2.0)
    with pytest.raises(InvalidInputError, match="scaled BSs must be in 0..2"):
        F.per_bs_config("g_scale_bs", (), 2.0)
    with pytest.raises(InvalidInputError, match="must be > 0"):
        F.per_bs_config("v_scale_bs", (1, 2), 0.0)


def test_fig3_full_runs_are_the_paper_setting(tmp_path, monkeypatch):
    """The full-size Fig. 3 runs: Table II networks, only lr / gamma changed, one equal budget, no early stop."""
    from learners import into_fig3 as F3

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    runs = F3.runs()
    assert len(runs) == 5 and len({F3.full_stem(ov) for ov in runs}) == 5
    ov = runs[1]  # lr 1e-3, gamma 0.99
    pol = F3.train_full(ov, steps=3)
    a = pol.args
    assert (a.actor_hidden, a.critic_hidden) == ([3000, 1000], [1500, 600])
    assert (a.tau, a.batch_size, a.buffer_size) == (1e-3, 64, 3_000)
    assert (a.lr_actor, a.lr_critic, a.gamma) == (1e-3, 1e-3, 0.99)
    assert a.time_budget_s == F3.FULL_BUDGET_S and pol.meta["env_steps"] == 3 and pol.meta["fig3"] == "full"
    stem = F3.full_stem(ov)
    assert stem.parent == tmp_path / "into" / "fig3_full" / "checkpoints"
    assert stem.with_suffix(".json").exists() and (stem.parent.parent / "training" / f"{stem.name}.csv").exists()


def test_fig3_full_seed_option_trains_and_resumes_per_seed(tmp_path, monkeypatch):
    """``--full --seed 2`` trains every missing seed-2 run with seed 2, skips the seed-2 runs already saved (not those
    of another seed), and ``full_seeds`` lists the seeds with a saved run or a cached result."""
    import sys
    from types import SimpleNamespace

    from learners import into_fig3 as F3

    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    runs = F3.runs()
    assert F3.full_stem(runs[0], 2).name.endswith("-seed2") and F3.full_stem(runs[0]) == F3.full_stem(runs[0], 1)
    assert F3.full_seeds() == []
    F3.full_stem(runs[0], 2).parent.mkdir(parents=True)
    F3.full_stem(runs[0], 2).with_suffix(".json").write_text("{}")  # seed 2 of run 0: done
    F3.full_stem(runs[1], 1).with_suffix(".json").write_text("{}")  # seed 1 of run 1: not seed 2's
    (F3.full_folder() / "results").mkdir()
    (F3.full_folder() / "results" / f"{F3.full_stem(runs[2], 5).name}.json").write_text("{}")
    (F3.full_folder() / "checkpoints" / "into-small-notes.json").write_text("{}")  # no seed: ignored
    assert F3.full_seeds() == [1, 2, 5]
    calls = []

    def fake(ov, steps=F3.FULL_STEPS, seed=F3.SEED):
        calls.append((ov, steps, seed))
        return SimpleNamespace(meta={})

    monkeypatch.setattr(F3, "train_full", fake)
    monkeypatch.setattr(sys, "argv", ["into_fig3", "--full", "--seed", "2", "--steps", "7"])
    F3.main()
    assert calls == [(ov, 7, 2) for ov in runs[1:]]
    monkeypatch.setattr(sys, "argv", ["into_fig3", "--seed", "2"])
    with pytest.raises(SystemExit, match="full-size runs only"):
        F3.main()


def test_fig3_full_pooling_pairs_seeds_and_slots():
    """The bench pools the Fig. 3 paired comparison over the seeds both runs have x slots, keeps one CI per seed,
    and averages the seeds' curves episode by episode."""
    from bench import test_into_learners as B

    a = {1: {"objective": [3.0, 2.0, 4.0]}, 2: {"objective": [1.0, 1.0, 1.0]}, 3: {"objective": [5.0, 5.0, 5.0]}}
    b = {1: {"objective": [1.0, 1.0, 1.0]}, 2: {"objective": [2.0, 2.0, 2.0]}}
    curve = [{"income_per_slot": float(k), "global_step": 20.0 * (k + 1)} for k in range(20)]
    flat = [{"income_per_slot": 1.0, "global_step": 20.0 * (k + 1)} for k in range(20)]
    c = B._fig3_full_pair(a, b, {1: curve, 2: curve}, {1: flat, 2: flat})
    assert c is not None and c["seeds"] == [1, 2]  # seed 3 has no B run
    assert c["pooled"].n == 6 and c["pooled"].mean == pytest.approx((2 + 1 + 3 - 1 - 1 - 1) / 6)
    assert c["per_seed"][1].mean == pytest.approx(2.0) and c["per_seed"][2].mean == pytest.approx(-1.0)
    assert B._fig3_direction(c["per_seed"][2]) == "opposite"  # a constant sample: degenerate CI at -1
    assert c["train"].n == 4 and c["train"].mean == pytest.approx(np.mean([17.0, 18.0, 17.0, 18.0]))  # last tenth
    assert B._fig3_full_pair(a, {4: b[1]}, {}, {}) is None
    mean = B._mean_curve([curve, flat[:10], []])
    assert len(mean) == 10 and mean[3] == {"income_per_slot": 2.0, "global_step": 80.0}


def test_fig_point_training_uses_the_point_config(tmp_path, monkeypatch):
    """A per-point run trains on its point's generator config, records the point and saves under figs/."""
    import shutil

    from learners import into_figs as F
    from learners.train import best_params_path

    tuned = best_params_path("into", "ddqn")
    monkeypatch.setenv("MECOPT_RESULTS", str(tmp_path))
    best_params_path("into", "ddqn").parent.mkdir(parents=True)
    shutil.copyfile(tuned, best_params_path("into", "ddqn"))
    seen = []
    real = Episodes.reset

    def spy(self, seed):
        seen.append(self.preset)
        return real(self, seed)

    monkeypatch.setattr(Episodes, "reset", spy)
    pol = F.train_one("ddqn", "B_hz", 0.5, steps=3)
    assert seen and all(c == F.point_config("B_hz", 0.5) for c in seen)
    assert pol.meta["fig_point"] == {"B_hz": 0.5} and pol.meta["env_steps"] == 3
    assert pol.meta["weights_dtype"] == "float16"
    assert load_policy(F.stem("ddqn", "B_hz", 0.5)).meta["fig_point"] == {"B_hz": 0.5}


def test_fig5b_rho_horizons_are_paired():
    """Fig. 5(b) over a horizon (bench ``test_fig5b_horizon``): the same seed at every rho gives the same devices,
    tasks, fading and Q(0), and only the harvest e(t) scales, by rho (the paired comparison along rho)."""
    from learners import into_figs as F
    from mecopt.problems.into import generate_horizon

    fname, bss, xs = F.FIG45_PAPER["harvest rho, every device (Fig. 5b)"]
    hs = {a: generate_horizon(F.paper_point_config(fname, bss, a), make_rng(7, "into", "fig5b"), 4) for a in xs}
    ref = hs[1.0]
    for a, h in hs.items():
        for s, r in zip(h, ref, strict=True):
            for f in ("bs", "z", "v", "delta", "g", "p", "h", "Q"):
                np.testing.assert_array_equal(getattr(s, f), getattr(r, f))
            np.testing.assert_allclose(s.e, a * r.e, rtol=1e-12)
