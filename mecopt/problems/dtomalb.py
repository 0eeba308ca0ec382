"""DTOMALB (Zhang, Li, Peng, Pei, "A New Task Offloading Algorithm in Edge Computing"), Section 3.

One LTE cell, N users, M edge servers; server 1 is attached to the eNB, servers 2..M are reached through it
over fibre. In a slot every user has one task S_n = (L_n, C_n) (eq. 4) that runs locally or on exactly one
server (eqs. 1-2). Offloaded tasks queue first-come-first-served (eq. 8). P1 (eq. 12) minimises the mean
delay; the load-balanced objective is the negated mean of the reward eq. (20).

The decision is stored as the index form of the one-hot matrix of eqs. (1)-(3): ``a[n] = m`` means
``a_{n,m} = 1`` (0 = local), so eq. (2) holds by construction when ``0 <= a[n] <= M``.

Every modelling choice the paper leaves open is listed in ``docs/problems/dtomalb.md`` (decisions D1-D12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mecopt.core import InvalidInputError, Metrics
from mecopt.schema import Record, array, choice, record, scalar
from mecopt.spec import ProblemSpec

KEY = "dtomalb"

#: Thermal noise density -174 dBm/Hz in W/Hz (D5: the paper gives no N_0).
N0_THERMAL = 10 ** (-174 / 10) / 1000.0


@record
class Instance(Record):
    """One slot of the DTOMALB problem (all SI units)."""

    problem_key = KEY
    N: int = scalar("number of users |N| (Section 3)", "", ge=1, le=10000, integer=True)
    M: int = scalar(
        "number of edge servers |M|; server 1 is attached to the eNB (Section 3)", "", ge=1, le=1000, integer=True
    )
    L: np.ndarray = array("task length L_n, eq. (4)", "bit", ("N",), ge=1, le=1e13)
    C: np.ndarray = array("CPU cycles C_n required by the task, eq. (4)", "cycle", ("N",), ge=1, le=1e16)
    f_local: np.ndarray = array("local CPU frequency f_local of user n, eq. (6)", "Hz", ("N",), ge=1, le=1e13)
    f: np.ndarray = array("CPU frequency f_m of edge server m, eq. (8)", "Hz", ("M",), ge=1, le=1e14)
    p: np.ndarray = array("upload power p_n, eq. (5)", "W", ("N",), ge=1e-9, le=1e4)
    g: np.ndarray = array("channel power gain g_n (linear), eq. (5)", "", ("N",), ge=1e-25, le=1e3)
    backlog: np.ndarray = array(
        "load factor LD_m(t) of work already queued at server m when the slot's tasks arrive, eqs. (8), (13)",
        "s",
        ("M",),
        ge=0,
        le=1e6,
    )
    W: float = scalar("bandwidth of the whole wireless channel, eq. (5)", "Hz", ge=1, le=1e12)
    N0: float = scalar("noise power spectral density N_0, eq. (5)", "W/Hz", ge=1e-27, le=100)
    mu: float = scalar("forwarding rate between edge servers, eq. (9)", "bit/s", ge=1, le=1e13)
    w1: float = scalar("weight omega_1 of the mean delay, eq. (20)", "1/s", ge=0, le=1e6, default=1.0)
    w2: float = scalar("weight omega_2 of var(LD), eq. (20)", "1/s^2", ge=0, le=1e6, default=1.0)
    bandwidth_split: str = choice(
        "eq. (5): 'all' = W/N for every user (literal); 'offloaders' = W/K over the K users that offload",
        ("all", "offloaders"),
        "all",
    )
    queue_order: str = choice(
        "eq. (8) FCFS order at a server: 'arrival' = by arrival time t_up (+ t_tran), ties by user index; "
        "'index' = by user index",
        ("arrival", "index"),
        "arrival",
    )
    queue_model: str = choice(
        "eq. (8) wait (D12): 'fcfs' = physical FCFS queue, service starts at max(arrival, previous finish) "
        "(the wait is the work still queued when the task arrives); 'cumulative' = eq. (8) literally, the full work "
        "of every earlier task at the server (plus the backlog), idle time never credited",
        ("fcfs", "cumulative"),
        "cumulative",
    )
    objective: str = choice(
        "'delay' = P1, eq. (12), mean delay; 'delay+lb' = w1*mean delay + w2*var(LD), the negated mean reward "
        "of eq. (20)",
        ("delay", "delay+lb"),
        "delay",
    )


@record
class Decision(Record):
    """Offloading decision: a[n] = m <=> a_{n,m} = 1 in eq. (1); 0 = local, 1 = eNB server, 2..M forwarded."""

    problem_key = KEY
    a: np.ndarray = array(
        "chosen target of user n (0 = local, m = edge server m), eqs. (1)-(2)", "", ("*",), integer=True
    )


def trivial_bound(inst: Instance) -> float:
    """A cheap valid lower bound on the objective (min), for results that stop without a proven bound.

    Every user's delay (eqs. 10-11) is at least min(t_local, min_m L/r_max + t_tran + C/f_m + LD_m), with the
    largest rate r_max of eq. (5) (share W/N, or W when only the offloaders share it) and no queueing ahead of it
    (eq. 8); var(LD) >= 0 in eq. (20).
    """
    r_max = upload_rate(inst, float(inst.N) if inst.bandwidth_split == "all" else 1.0)  # eq. (5)
    fwd = np.where(np.arange(inst.M) >= 1, 1.0, 0.0)  # eq. (9): servers 2..M are reached over fibre
    offload = (
        (inst.L / r_max)[:, None] + np.outer(inst.L / inst.mu, fwd) + inst.C[:, None] / inst.f + inst.backlog
    )  # eqs. (7)-(9)
    best = np.minimum(inst.C / inst.f_local, offload.min(axis=1))  # eqs. (6), (10)-(11)
    mean = float(best.mean())  # eq. (12)
    return mean if inst.objective == "delay" else inst.w1 * mean  # eq. (20)


# ----------------------------------------------------------------------------------------------------------------
# Model equations, vectorized over a batch of decisions A with shape (B, N)
# ----------------------------------------------------------------------------------------------------------------
def upload_rate(inst: Instance, n_sharing: np.ndarray | float) -> np.ndarray:
    """Eq. (5): r_n = (W/N') log2(1 + p_n g_n / ((W/N') N_0)); N' = N (literal) or the number offloading."""
    share = inst.W / np.maximum(np.asarray(n_sharing, dtype=float), 1.0)
    share = np.asarray(share)[..., None]
    return share * np.log1p(inst.p * inst.g / (share * inst.N0)) / np.log(2.0)  # log2(1 + x), exact for tiny x


def sharing_count(inst: Instance, A: np.ndarray) -> np.ndarray:
    """Number of users the bandwidth is divided by in eq. (5), per batch row (D1)."""
    if inst.bandwidth_split == "all":
        return np.full(A.shape[0], float(inst.N))
    return (A > 0).sum(axis=1).astype(float)


@dataclass(frozen=True)
class Delays:
    """Per-user and per-server quantities of a batch of decisions."""

    t: np.ndarray  # (B, N) delay t_n, eq. (11)
    t_up: np.ndarray  # (B, N) eq. (7)
    LD: np.ndarray  # (B, M) load factor after this slot's tasks joined, eqs. (13)/(15)
    mean_delay: np.ndarray  # (B,) eq. (12)
    var_LD: np.ndarray  # (B,) eq. (19)
    objective: np.ndarray  # (B,)


def delays(inst: Instance, A: np.ndarray) -> Delays:
    """Evaluate a batch of decisions ``A`` (B, N) with entries in 0..M (range checked by the caller)."""
    A = np.asarray(A, dtype=np.int64)
    B, N = A.shape
    off = A > 0
    r = upload_rate(inst, sharing_count(inst, A))  # (B, N) eq. (5)
    t_up = inst.L / r  # eq. (7)
    t_tran = np.where(A >= 2, inst.L / inst.mu, 0.0)  # eq. (9), only when m != 1
    f_of = np.concatenate([[1.0], inst.f])[A]  # f_m of the chosen server (dummy 1 for local)
    comp = np.where(off, inst.C / f_of, 0.0)  # t_comp = C_n / f_m, eq. (8)
    # FCFS order at each server (eq. 8, D2): earlier arrival first, ties by user index
    if inst.queue_order == "arrival":
        key = t_up + t_tran
    else:
        key = np.broadcast_to(np.arange(N, dtype=float), (B, N))
    order = np.lexsort((np.broadcast_to(np.arange(N), (B, N)), key), axis=1)
    rows = np.arange(B)[:, None]
    A_s = A[rows, order]
    comp_s = comp[rows, order]
    wait_s = np.zeros((B, N))
    if inst.queue_model == "cumulative":  # eq. (8) literally: the full work of every task ahead (D2, D12)
        for m in range(1, inst.M + 1):
            w = np.where(A_s == m, comp_s, 0.0)
            ahead = np.cumsum(w, axis=1) - w  # work of the tasks ahead at server m
            wait_s += np.where(A_s == m, ahead + inst.backlog[m - 1], 0.0)
    else:  # physical FCFS (D12): a server busy until `free` starts the next arrival at max(arrival, free)
        arrive_s = (t_up + t_tran)[rows, order]
        free = np.concatenate([np.zeros((B, 1)), np.broadcast_to(inst.backlog, (B, inst.M))], axis=1)
        for j in range(N):
            m = A_s[:, j]
            start = np.maximum(arrive_s[:, j], free[rows[:, 0], m])
            on = m > 0
            wait_s[:, j] = np.where(on, start - arrive_s[:, j], 0.0)
            free[rows[:, 0], m] = np.where(on, start + comp_s[:, j], free[rows[:, 0], m])
    wait = np.empty_like(wait_s)
    wait[rows, order] = wait_s  # t_wait, eq. (8)
    resp = wait + comp  # t_resp = t_wait + t_comp, eq. (8)
    t_local = inst.C / inst.f_local  # eq. (6)
    t = np.where(off, t_up + resp + t_tran, t_local)  # eqs. (10)-(11)
    mean_delay = t.mean(axis=1)  # P1 objective, eq. (12)
    LD = np.repeat(inst.backlog[None, :], B, axis=0).astype(float)  # eq. (13): queued work / f_m
    for m in range(1, inst.M + 1):
        LD[:, m - 1] += np.where(A == m, comp, 0.0).sum(axis=1)
    var_LD = ((LD - LD.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)  # eq. (19)
    if inst.objective == "delay":
        obj = mean_delay
    else:
        obj = inst.w1 * mean_delay + inst.w2 * var_LD  # -(1/N) sum_n R_n, eq. (20)
    return Delays(t, t_up, LD, mean_delay, var_LD, obj)


def rewards(inst: Instance, A: np.ndarray) -> np.ndarray:
    """Per-user rewards R_n = -w1 t_n - w2 var(LD), eq. (20), shape (B, N)."""
    d = delays(inst, A)
    return -inst.w1 * d.t - inst.w2 * d.var_LD[:, None]


def _check_shape(inst: Instance, dec: Decision) -> None:
    if dec.a.shape != (inst.N,):
        raise InvalidInputError(f"{KEY}: Decision.a: expected shape (N={inst.N},), got {dec.a.shape}")


def check_feasible(inst: Instance, dec: Decision) -> list[str]:
    """Violated constraints of P1 (eq. 12): every user picks exactly one of local/1..M (eq. 2)."""
    _check_shape(inst, dec)
    bad = np.flatnonzero((dec.a < 0) | (dec.a > inst.M))
    return [f"eq. (2): user {n} picks target {int(dec.a[n])}, not in 0..M={inst.M}" for n in bad]


def evaluate(inst: Instance, dec: Decision) -> Metrics:
    """Objective and reported quantities of one decision (the single source of the DTOMALB objective)."""
    viol = check_feasible(inst, dec)
    if viol:
        return Metrics(float("nan"), False, tuple(viol))
    d = delays(inst, dec.a[None, :])
    counts = np.bincount(dec.a, minlength=inst.M + 1)
    return Metrics(
        objective=float(d.objective[0]),
        feasible=True,
        values={
            "mean_delay_s": float(d.mean_delay[0]),
            "var_LD": float(d.var_LD[0]),
            "load_factor_s": d.LD[0].tolist(),
            "delay_s": d.t[0].tolist(),
            "n_local": int(counts[0]),
            "n_per_server": counts[1:].tolist(),
        },
    )


def evaluate_batch(inst: Instance, A: np.ndarray) -> np.ndarray:
    """Objectives of a batch of decisions (B, N); entries must lie in 0..M."""
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[1] != inst.N:
        raise InvalidInputError(f"{KEY}: batch must have shape (B, N={inst.N}), got {A.shape}")
    if A.size and (A.min() < 0 or A.max() > inst.M):
        raise InvalidInputError(f"{KEY}: eq. (2): batch entries must lie in 0..M={inst.M}")
    return delays(inst, A).objective


# ----------------------------------------------------------------------------------------------------------------
# Generator (Table 2 and D3-D7)
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Generator parameters (Table 2 unless noted; see docs/problems/dtomalb.md)."""

    N: int = 10
    M: int = 5
    f_range_hz: tuple[float, float] = (12e9, 20e9)  # Table 2, f ~ U[12, 20] GHz
    f_fixed_hz: tuple[float, ...] | None = None  # Fig. 8: [12, 14, 16, 18, 20] GHz
    f_local_range_hz: tuple[float, float] = (300e6, 500e6)  # Table 2
    L_range_bit: tuple[float, float] = (300e3 * 8, 500e3 * 8)  # Table 2, U[300, 500] KB, 1 KB = 1000 B (D6)
    C_range_cycles: tuple[float, float] = (800e6, 1200e6)  # Table 2
    W_hz: float = 20e6  # Table 2
    p_w: float = 0.5  # Table 2, 500 mW
    cell_radius_m: float = 500.0  # D4
    min_distance_m: float = 10.0  # D4
    N0_w_per_hz: float = N0_THERMAL  # D5
    mu_bps: float = 1e9  # D3, fibre forwarding rate
    w1: float = 1.0  # D7
    w2: float = 1.0  # D7


def path_gain(distance_m: np.ndarray) -> np.ndarray:
    """Linear channel gain from the 3GPP macro-cell path loss 128.1 + 37.6 log10(d/km) dB (D4)."""
    pl_db = 128.1 + 37.6 * np.log10(distance_m / 1000.0)
    return 10 ** (-pl_db / 10)


def generate(cfg: Config, rng: np.random.Generator) -> Instance:
    """A random instance with the paper's parameters; users uniform in the cell disk (D4)."""
    N, M = cfg.N, cfg.M
    if cfg.f_fixed_hz is not None:
        if len(cfg.f_fixed_hz) != M:
            raise InvalidInputError(f"{KEY}: f_fixed_hz has {len(cfg.f_fixed_hz)} entries, M={M}")
        f = np.array(cfg.f_fixed_hz, dtype=float)
    else:
        f = rng.uniform(*cfg.f_range_hz, size=M)
    radius = np.sqrt(rng.uniform(cfg.min_distance_m**2, cfg.cell_radius_m**2, size=N))
    return Instance(
        N=N,
        M=M,
        L=rng.uniform(*cfg.L_range_bit, size=N),
        C=rng.uniform(*cfg.C_range_cycles, size=N),
        f_local=rng.uniform(*cfg.f_local_range_hz, size=N),
        f=f,
        p=np.full(N, cfg.p_w),
        g=path_gain(radius),
        backlog=np.zeros(M),
        W=cfg.W_hz,
        N0=cfg.N0_w_per_hz,
        mu=cfg.mu_bps,
        w1=cfg.w1,
        w2=cfg.w2,
    )


PRESETS: dict[str, Config] = {
    "tiny": Config(N=5, M=3),
    "small": Config(N=8, M=4),
    "paper": Config(N=10, M=5),
    "fig8": Config(N=10, M=5, f_fixed_hz=(12e9, 14e9, 16e9, 18e9, 20e9)),
}

#: D7: w2 at which w2 var(LD) is ~30 % of the 'delay+lb' objective at the P1 optimum on `paper` (cumulative eq. (8):
#: median var(LD)/mean delay = 4.71e-4 over 8 seeds, 0.3/0.7/4.71e-4 = 909; physical FCFS: 5.95e-3, 72)
W2_LB_HEAVY = 900.0
W2_LB_HEAVY_FCFS = 70.0

VARIANTS: dict[str, dict[str, object]] = {
    "literal": {},
    "lb": {"objective": "delay+lb"},
    "split-offloaders": {"bandwidth_split": "offloaders"},
    "index-order": {"queue_order": "index"},
    # D12: the physical FCFS queue (service starts at max(arrival, previous finish)); see the decision for why the
    # cumulative eq. (8) stays the default for now
    "fcfs": {"queue_model": "fcfs"},
    "fcfs-lb": {"queue_model": "fcfs", "objective": "delay+lb"},
    "lb-heavy": {"objective": "delay+lb", "w2": W2_LB_HEAVY},
    "fcfs-lb-heavy": {"queue_model": "fcfs", "objective": "delay+lb", "w2": W2_LB_HEAVY_FCFS},
}

PROBLEM = ProblemSpec(
    key=KEY,
    title="DTOMALB: users to local/servers, FCFS queues, min mean delay (+ load balance)",
    sense="min",
    Instance=Instance,
    Decision=Decision,
    evaluate=evaluate,
    check_feasible=check_feasible,
    generate=generate,
    presets=PRESETS,
    variants=VARIANTS,
    bench_sizes=("small",),
    bench_variants=("literal", "lb", "fcfs", "fcfs-lb", "fcfs-lb-heavy"),
    paper="Zhang, Li, Peng, Pei - A New Task Offloading Algorithm in Edge Computing",
    env="mecopt.envs.dtomalb",
)
