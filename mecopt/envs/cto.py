"""Gymnasium environment of CTO-TP (Section III-B): 1 s slots, bursty asynchronous arrivals, reward eq. (15).

Each step is one active slot t (slots without any task are skipped, Section IV). The observation is the
critic's global state s_t of eq. (9) without the transformer predictions Q_Mt: remaining computing resources
C_Mt and link bandwidths B_Kt (as fractions of capacity) and the slot's requirements D_Mt, F_Mt (in units of
``cycles_scale``/``bits_scale``). The action holds, for every server m, five numbers in [0, 1]: the target
selector (eq. 11: bin 0 = no cooperation, bin k = the k-th other server), the offloading ratio a_mdt, and the
shares a_mct (local), a_mct (at the target) and a_mkt (bandwidth) that eq. (12) scales by kappa * remaining.

Resources are held by a job until it completes (D8): the local share until (1 - a) D / d, the cooperative
share (computing at n and the link) until the transmission + cooperative computing time. The remaining
resources of the next slot are capacity minus what running jobs still hold (floored at ``min_remaining``).

The reward is eq. (15): r_t = lambda L* / L_total + rho E* / E_total, where L*, E* are the mean of the
``n_min`` smallest values of L_total, E_total in a sliding window of the last ``window`` steps (this step
included). L_total and E_total come from :func:`mecopt.problems.cto.evaluate`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from mecopt.core import InvalidInputError
from mecopt.envs import seed_actions
from mecopt.problems.cto import PRESETS, VARIANTS, Config, Decision, Instance, evaluate, project
from mecopt.problems.cto_trace import slot_workloads, synthetic_trace

#: Smallest share an action can allocate (a zero allocation with work would give infinite latency, eq. 3).
MIN_SHARE = 1e-3
#: Upper bound of the observation box (requirements are clipped there; real slots stay far below).
OBS_HIGH = 1e6


class CTOEnv(gym.Env):
    """Multi-server cooperative offloading with asynchronous arrivals; one step = one active 1 s slot."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        cfg: Config | None = None,
        *,
        variant: str = "literal",
        episode_slots: int = 50,
        window: int = 50,
        n_min: int = 5,
        min_remaining: float = 0.01,
        cycles_scale: float = 1e11,
        bits_scale: float = 1e9,
    ):
        if variant not in VARIANTS:
            raise InvalidInputError(f"cto env: unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
        if episode_slots < 1 or window < 1 or not 1 <= n_min <= window or not 0 < min_remaining <= 1:
            raise InvalidInputError("cto env: need episode_slots >= 1, 1 <= n_min <= window, 0 < min_remaining <= 1")
        self.cfg = cfg or PRESETS["small"]
        self.variant = dict(VARIANTS[variant])
        self.episode_slots = episode_slots
        self.window = window
        self.n_min = n_min
        self.min_remaining = min_remaining
        self.cycles_scale = cycles_scale
        self.bits_scale = bits_scale
        M = self.cfg.M
        self.M = M
        self.observation_space = gym.spaces.Box(0.0, OBS_HIGH, shape=(M + M * M + 2 * M,), dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(M, 5), dtype=np.float32)
        self._cap = np.full(M, self.cfg.capacity_hz)
        self._bw = np.full((M, M), self.cfg.bandwidth_hz)
        np.fill_diagonal(self._bw, 0.0)

    # -- episode ---------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        cfg = self.cfg
        horizon = 4.0 * self.episode_slots  # enough trace for episode_slots active slots in most draws
        for _ in range(20):
            tr = synthetic_trace(self.M, horizon, rng, cfg.trace)
            sw = slot_workloads(
                tr,
                rng,
                n_slots=int(horizon),
                cycles_per_cpu=cfg.cycles_per_cpu,
                size_range_bits=cfg.size_range_bits,
            )
            active = np.flatnonzero(sw.n.sum(axis=1) > 0)  # slots without any task are skipped (Section IV)
            if active.size:
                break
        else:
            raise InvalidInputError("cto env: the synthetic trace produced no task in 20 draws")
        self._D, self._F = sw.D, sw.F
        self._n = sw.n  # per-slot task counts n_mt: the predictor's input (Q_Mt of eq. 9)
        self._slots = active[: self.episode_slots]
        self._k = 0
        self._jobs: list[tuple[float, int, float]] = []  # (end time, server, Hz held)
        self._links: list[tuple[float, int, int, float]] = []  # (end time, m, n, Hz held)
        self._hist_L: deque[float] = deque(maxlen=self.window)
        self._hist_E: deque[float] = deque(maxlen=self.window)
        self._inst = self._instance()
        return self._obs(), {"slot": int(self._slots[0])}

    def _remaining(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        self._jobs = [j for j in self._jobs if j[0] > t]
        self._links = [j for j in self._links if j[0] > t]
        C = self._cap.copy()
        B = self._bw.copy()
        for _, s, hz in self._jobs:
            C[s] -= hz
        for _, m, n, hz in self._links:
            B[m, n] -= hz
        C = np.maximum(C, self.min_remaining * self._cap)
        B = np.maximum(B, self.min_remaining * self._bw)
        return C, B

    def _instance(self) -> Instance:
        t = int(self._slots[self._k])
        C, B = self._remaining(float(t))
        cfg = self.cfg
        inst = Instance(
            M=self.M,
            D=self._D[t],
            F=self._F[t],
            C_rem=C,
            C_cap=self._cap,
            B_rem=B,
            eta_db=cfg.eta_db,
            kappa=cfg.kappa,
            P_min=cfg.P_min,
            P_max=cfg.P_max,
            lam=cfg.lam,
            rho=cfg.rho,
        )
        return inst.replace(**self.variant) if self.variant else inst

    def _obs(self) -> np.ndarray:
        inst = self._inst
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(self._bw > 0, inst.B_rem / np.where(self._bw > 0, self._bw, 1.0), 0.0)
        return (
            np.concatenate([inst.C_rem / inst.C_cap, b.ravel(), inst.D / self.cycles_scale, inst.F / self.bits_scale])
            .clip(0.0, OBS_HIGH)
            .astype(np.float32)
        )

    # -- action -> decision (eqs. 11-12) ---------------------------------------------------------------------
    def decision(self, action: np.ndarray) -> Decision:
        """Map an action in [0, 1]^(M x 5) to a feasible Decision of the current slot (:func:`action_decision`)."""
        return action_decision(self._inst, action)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        inst = self._inst
        dec = self.decision(action)
        met = evaluate(inst, dec)
        if not met.feasible:  # cannot happen for actions in the box; fail loudly if the mapping is wrong
            raise InvalidInputError("cto env: infeasible decision: " + "; ".join(met.violations))
        L, E = met.values["L_total_s"], met.values["E_total_J"]
        self._hist_L.append(L)
        self._hist_E.append(E)
        L_star = float(np.mean(sorted(self._hist_L)[: self.n_min]))  # eq. (15), sliding-window minima
        E_star = float(np.mean(sorted(self._hist_E)[: self.n_min]))
        reward = inst.lam * L_star / L + inst.rho * E_star / E  # eq. (15)
        # register the resources held by this slot's jobs (D8)
        t = float(self._slots[self._k])
        a = np.where(dec.target > 0, dec.a, 0.0)
        se = inst.spectral_eff
        for m in range(self.M):
            if (1 - a[m]) * inst.D[m] > 0:
                self._jobs.append((t + (1 - a[m]) * inst.D[m] / dec.d_local[m], m, float(dec.d_local[m])))
            if a[m] * inst.D[m] > 0:
                n = int(dec.target[m]) - 1
                tr = a[m] * inst.F[m] / (dec.b[m] * se)
                self._jobs.append((t + tr + a[m] * inst.D[m] / dec.d_remote[m], n, float(dec.d_remote[m])))
                self._links.append((t + tr, m, n, float(dec.b[m])))
        info = {
            "L_total_s": L,
            "E_total_J": E,
            "objective": met.objective,
            "L_star": L_star,
            "E_star": E_star,
            "slot": int(self._slots[self._k]),
        }
        self._k += 1
        truncated = self._k >= len(self._slots)
        if not truncated:
            self._inst = self._instance()
        return self._obs(), float(reward), False, truncated, info

    @property
    def instance(self) -> Instance:
        """The per-slot problem instance of the current step (for exact solvers / comparisons)."""
        return self._inst

    @property
    def task_counts(self) -> np.ndarray:
        """n_mt: number of tasks that arrived at each server in the current slot, shape (M,)."""
        return np.asarray(self._n[int(self._slots[self._k])], dtype=np.int64)

    @property
    def slot(self) -> int:
        """Index of the current 1 s slot in the episode's trace (slots without tasks are skipped)."""
        return int(self._slots[min(self._k, len(self._slots) - 1)])

    @property
    def active_slots(self) -> np.ndarray:
        """Indices (into :attr:`workload_series`) of the episode's active slots, the steps in order."""
        return self._slots.copy()

    @property
    def workload_series(self) -> np.ndarray:
        """Per-slot (D_mt cycles, n_mt tasks) of every 1 s slot of the episode's trace, shape (slots, M, 2); empty
        slots included (the predictor's input, Q_Mt of eq. 9)."""
        return np.stack([self._D, self._n.astype(float)], axis=-1)

    def workload_history(self, window: int) -> np.ndarray:
        """The last ``window`` rows of :attr:`workload_series` up to the current slot (included), oldest first,
        shape (window, M, 2); slots before the trace start are zero."""
        if window < 1:
            raise InvalidInputError(f"cto env: workload_history needs window >= 1, got {window}")
        t = self.slot
        series = self.workload_series
        out = np.zeros((window, self.M, 2))
        lo = max(0, t + 1 - window)
        out[window - (t + 1 - lo) :] = series[lo : t + 1]
        return out


def action_decision(inst: Instance, action: np.ndarray) -> Decision:
    """Map an action in [0, 1]^(M x 5) to a feasible Decision of ``inst`` (eqs. 11-12): column 0 selects the target
    (bin 0 = no cooperation, bin j = the j-th other server), column 1 is a_mdt, columns 2-4 the shares a_mct (local),
    a_mct (at the target) and a_mkt (bandwidth) that eq. (12) scales by kappa * remaining; then
    :func:`mecopt.problems.cto.project` (feasible under both eq. 8c readings)."""
    M, k = inst.M, inst.kappa
    act = np.clip(np.asarray(action, dtype=float).reshape(M, 5), 0.0, 1.0)
    target = np.zeros(M, dtype=np.int64)
    for m in range(M):
        others = [n for n in range(M) if n != m]
        j = min(int(act[m, 0] * M), M - 1)  # bin 0: no cooperation; bin j: j-th other server (eq. 11)
        if j > 0 and inst.D[m] > 0:
            target[m] = others[j - 1] + 1
    a = np.where(target > 0, act[:, 1], 0.0)
    n = np.clip(target - 1, 0, M - 1)
    share = np.maximum(act[:, 2:], MIN_SHARE)
    d_loc = k * share[:, 0] * inst.C_rem  # eq. (12): kappa a_mct C
    d_rem = np.where(target > 0, k * share[:, 1] * inst.C_rem[n], 0.0)
    b = np.where(target > 0, k * share[:, 2] * inst.B_rem[np.arange(M), n], 0.0)  # eq. (12): kappa a_mkt B
    # drops a = 0 offloads, zeroes allocations that serve no work, scales overloaded servers (aggregate)
    return project(inst, Decision(target=target, a=a, d_local=d_loc, d_remote=d_rem, b=b))


def decision_action(inst: Instance, dec: Decision) -> np.ndarray:
    """The inverse of :func:`action_decision` on feasible decisions: the action in [0, 1]^(M x 5) that maps back to
    ``dec`` (target bin centre, a_mdt, and each allocation as its share of kappa * remaining, eq. 12). Lets a
    solver's or heuristic's decision act in the env; shares above 1 (allocations above kappa * remaining, which
    eq. 12 forbids) are clipped."""
    M, k = inst.M, inst.kappa
    act = np.zeros((M, 5))
    for m in range(M):
        t = int(dec.target[m])
        if t > 0:
            others = [n for n in range(M) if n != m]
            act[m, 0] = (others.index(t - 1) + 1.5) / M
            act[m, 1] = dec.a[m]
            act[m, 3] = dec.d_remote[m] / (k * inst.C_rem[t - 1])
            act[m, 4] = dec.b[m] / (k * inst.B_rem[m, t - 1])
        else:
            act[m, 0] = 0.5 / M
        act[m, 2] = dec.d_local[m] / (k * inst.C_rem[m])
    return np.clip(act, 0.0, 1.0)


def make_env(size: str = "small", variant: str = "literal", seed: int = 0, **kwargs: Any) -> CTOEnv:
    """:class:`CTOEnv` on the resources of preset ``size`` (nothing is drawn at construction: ``seed`` only seeds
    the action sampler; the trace of an episode comes from ``reset(seed=...)``)."""
    if size not in PRESETS:
        raise InvalidInputError(f"cto env: unknown size {size!r}; choose from {sorted(PRESETS)}")
    cfg = PRESETS[size]
    return seed_actions(CTOEnv(replace(cfg, tasks_per_server=None), variant=variant, **kwargs), "cto", seed)
