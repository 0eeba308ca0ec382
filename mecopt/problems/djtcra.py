"""DJTCRA (Chen, Sun, Yu, Taleb, "Joint Task and Computing Resource Allocation in Distributed Edge Computing
Systems via Multi-Agent Deep Reinforcement Learning"), Sections III-IV, one time slot of P1.

H radio access networks (RANs), each with its edge server (ES); U users, each connected (CA) to one RAN.
Every user's task is processed by exactly one ES (y_u^h = 1) or, when no ES is chosen (C1, eq. 13, allows
sum_h y_u^h = 0), by the remote cloud server (RCS). An ES h splits its capacity P^h among its users (C2,
eq. 14). Each user's QoE is a sigmoid of its service latency (eq. 11); P1 (eq. 12) maximises the system QoE.

The decision is stored in index form: ``y[u] = h`` (1..H) means y_u^h = 1, ``y[u] = 0`` means "no ES" = RCS,
so C1 and C4 (eqs. 13, 16) hold by construction when 0 <= y[u] <= H. ``p[u]`` is the CPU speed (cycles/s)
allocated to u by its ES (eq. 7); it is ignored for RCS users unless the RCS capacity is shared (variant
``rcs-shared``).

Units are SI inside (s, bit, Hz = cycles/s); the paper's alpha (per ms) and beta (ms) are converted (D2).
Every modelling choice the paper leaves open is listed in ``docs/problems/djtcra.md`` (decisions D1-D18).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from mecopt.core import InvalidInputError, Metrics
from mecopt.schema import Record, array, choice, record, scalar
from mecopt.spec import ProblemSpec

KEY = "djtcra"
C_LIGHT = 3e8  # m/s, eq. (5)
#: QoE thresholds of the user classes SU (>= 0.9) and GU (<= 0.1), Section VI-A (as fractions of L_u).
SU_THRESHOLD = 0.9
GU_THRESHOLD = 0.1
#: Relative tolerance of the capacity constraint C2 (eq. 14) in check_feasible.
CAPACITY_RTOL = 1e-9


@record
class Instance(Record):
    """One time slot of DJTCRA (SI units; see D2 for the paper's ms-based alpha/beta)."""

    problem_key = KEY
    U: int = scalar("number of users |U| (Section III-A)", "", ge=1, le=10000, integer=True)
    H: int = scalar("number of RANs/ESs |H| (Section III-A)", "", ge=1, le=100, integer=True)
    ca: np.ndarray = array(
        "RAN (0-based) that user u is connected to (communication association, Sec. V-A)",
        "",
        ("U",),
        ge=0,
        integer=True,
    )
    VT: np.ndarray = array("task volume V_u^T, eqs. (1), (6), (7)", "bit", ("U",), ge=1, le=1e13)
    VR: np.ndarray = array("result volume V_u^R, eqs. (1), (6)", "bit", ("U",), ge=0, le=1e13)
    kappa: np.ndarray = array("computing intensity kappa_u, eq. (7)", "cycle/bit", ("U",), ge=1e-3, le=1e6)
    bandwidth: np.ndarray = array("wireless bandwidth B_u allocated to u, eq. (1)", "Hz", ("U",), ge=1, le=1e12)
    tx_power: np.ndarray = array("transmitting power I_u, eq. (1)", "W", ("U",), ge=1e-9, le=1e4)
    noise: np.ndarray = array("noise power N_u, eq. (1)", "W", ("U",), ge=1e-24, le=1e3)
    dist2d: np.ndarray = array(
        "2D distance Upsilon_2d from u to its connected BS, eqs. (2)-(4)", "m", ("U",), ge=1e-2, le=1e5
    )
    alpha: np.ndarray = array(
        "QoE steepness alpha_u, eq. (11) (paper: per ms; here per s, D2)", "1/s", ("U",), ge=1e-6, le=1e6
    )
    beta: np.ndarray = array(
        "QoE mid-point latency beta_u, eq. (11) (paper: ms; here s, D2)", "s", ("U",), ge=-1e3, le=1e3
    )
    Lmax: np.ndarray = array("maximum QoE L_u, eq. (11)", "", ("U",), ge=1e-6, le=1e6)
    eta: np.ndarray = array("processing factor eta_u^h of u's task on ES h, eq. (8)", "", ("U", "H"), ge=1e-3, le=1e3)
    P: np.ndarray = array("computing capacity P^h of ES h, eq. (14)", "cycle/s", ("H",), ge=1, le=1e14)
    link_rate: np.ndarray = array(
        "rate B_{i,j} of the link between RANs i and j, eq. (6)", "bit/s", ("H", "H"), ge=1, le=1e13
    )
    link_delay: np.ndarray = array(
        "propagation delay delta_{i,j} between RANs i and j, eq. (6)", "s", ("H", "H"), ge=0, le=1e3
    )
    fc_ghz: float = scalar("carrier frequency f_c, eqs. (3), (5)", "GHz", ge=0.1, le=1e3, default=5.0)
    h_bs: float = scalar("BS antenna height H_BS, eqs. (3), (5)", "m", ge=0.1, le=1e3, default=35.0)
    h_ut: float = scalar("user antenna height H_UT, eqs. (3), (5)", "m", ge=0.1, le=1e3, default=1.5)
    h_building: float = scalar("average building height h, eq. (3)", "m", ge=0.1, le=1e3, default=5.0)
    rcs_rate: float = scalar(
        "rate between a RAN and the RCS (Sec. VI-A: 100 Mbps), eq. (6)", "bit/s", ge=1, le=1e13, default=100e6
    )
    rcs_delay: float = scalar("propagation delay RAN-RCS (Sec. VI-A: 200 ms), eq. (6)", "s", ge=0, le=1e3, default=0.2)
    rcs_speed: float = scalar(
        "processing speed of the RCS (Sec. VI-A: 20 GHz), eq. (7)", "cycle/s", ge=1, le=1e14, default=20e9
    )
    rcs_capacity: str = choice(
        "D4: 'dedicated' = every RCS user is processed at rcs_speed (literal: C2 covers ESs only); "
        "'shared' = rcs_speed is a capacity shared by the RCS users like an ES's P^h (p[u] allocates it)",
        ("dedicated", "shared"),
        "dedicated",
    )
    rcs_propagation: str = choice(
        "D5: RCS propagation delay in eq. (6): 'twice' = 2*delta (literal, there and back) or 'once'",
        ("twice", "once"),
        "twice",
    )
    rcs_rule: str = choice(
        "D17: 'free' = the RCS is one more option of the optimisation (literal P1, C1); 'if-better' = a user may be "
        "on the RCS only if it achieves a lower latency there than at every ES with an equal share of that ES "
        "(Sec. III-A: 'further offloaded to the RCS if it can achieve higher QoS')",
        ("free", "if-better"),
        "free",
    )
    bandwidth_model: str = choice(
        "D8: 'continuous' = B_u as drawn, U(16, 56) MHz; 'subchannels' = the RAN grants k_u whole 8 MHz sub-channels, "
        "k_u = 2 + floor(6 (B_u - 16 MHz) / 40 MHz) clipped to 2..7 (uniform on {2..7} for the generated B_u)",
        ("continuous", "subchannels"),
        "continuous",
    )

    def validate(self) -> None:
        if np.any(self.ca >= self.H):
            bad = int(np.flatnonzero(self.ca >= self.H)[0])
            raise InvalidInputError(
                f"{KEY}: Instance.ca: user {bad} is connected to RAN {int(self.ca[bad])}, not in 0..H-1={self.H - 1}"
            )


@record
class Decision(Record):
    """Task allocation y (index form of y_u^h, eqs. 13, 16) and computing resource allocation p (eqs.
    14-15)."""

    problem_key = KEY
    y: np.ndarray = array(
        "server of user u: 0 = RCS (no ES, C1 eq. 13), h = ES h (1..H), eq. (16)", "", ("*",), integer=True
    )
    p: np.ndarray = array(
        "CPU speed p_u allocated to u by its ES, eqs. (7), (14), (15)", "cycle/s", ("*",), ge=0, le=1e15
    )


def trivial_bound(inst: Instance) -> float:
    """A cheap valid upper bound on the system QoE (max), for results that stop without a proven bound.

    Each user's QoE (eq. 11) decreases with its latency; its latency (eq. 9) on any option is at least the fixed
    part plus the work at the option's whole capacity (P^h on an ES, eq. 14; the RCS speed), so eq. (12) is at most
    the sum of every user's best such QoE.
    """
    co = coefficients(inst)
    latency = co.fixed + co.work / co.capacity[None, :]  # eqs. (1), (6)-(9) with p = capacity
    with np.errstate(over="ignore", invalid="ignore"):
        best = inst.Lmax[:, None] * expit(-inst.alpha[:, None] * (latency - inst.beta[:, None]))  # eq. (11)
    return float(best.max(axis=1).sum())  # eq. (12)


# ------------------------------------------------------------------------------------------------------------
# Model equations
# ------------------------------------------------------------------------------------------------------------
def path_loss_db(inst: Instance) -> np.ndarray:
    """3GPP TR 38.900 RMa LOS path loss, eqs. (2)-(5), per user (dB)."""
    d2 = inst.dist2d
    d3 = np.sqrt(d2**2 + (inst.h_bs - inst.h_ut) ** 2)
    fc = inst.fc_ghz
    h = inst.h_building
    d_bp = 2 * np.pi * inst.h_bs * inst.h_ut * (fc * 1e9) / C_LIGHT  # eq. (5), f_c in Hz

    def pl1(d: np.ndarray) -> np.ndarray:  # eq. (3), f_c in GHz
        return (
            20 * np.log10(40 * np.pi * d * fc / 3)
            + min(0.03 * h**1.72, 10) * np.log10(d)
            - min(0.044 * h**1.72, 14.77)
            + 0.002 * np.log10(h) * d
        )

    # eq. (4) as printed: PL2 = PL1(Upsilon_BP) + 40 lg(Upsilon_3d / Upsilon_BP) (D18; never reached by generated users)
    return np.where(d2 <= d_bp, pl1(d3), pl1(np.full_like(d3, d_bp)) + 40 * np.log10(d3 / d_bp))  # eqs. (2), (4)


#: D8 sub-channel reading of Table III's "[2, 7] x 8 MHz".
SUBCHANNEL_HZ = 8e6
SUBCHANNELS = (2, 7)


def effective_bandwidth(inst: Instance) -> np.ndarray:
    """B_u of eq. (1): as stored ('continuous') or k_u whole 8 MHz sub-channels ('subchannels', D8)."""
    if inst.bandwidth_model == "continuous":
        return inst.bandwidth
    lo, hi = SUBCHANNELS
    span = (hi - lo) * SUBCHANNEL_HZ  # 40 MHz: the generated U(16, 56) MHz range
    k = lo + np.floor((hi - lo + 1) * (inst.bandwidth - lo * SUBCHANNEL_HZ) / span)
    return np.clip(k, lo, hi) * SUBCHANNEL_HZ


def comm_latency(inst: Instance) -> np.ndarray:
    """Wireless latency d_u^c, eq. (1) (s)."""
    g = 10 ** (-path_loss_db(inst) / 10)
    rate = effective_bandwidth(inst) * np.log1p(inst.tx_power * g / inst.noise) / np.log(2.0)  # D8; exact log2(1+x)
    return (inst.VT + inst.VR) / rate


def forward_latency_matrix(inst: Instance) -> np.ndarray:
    """Forwarding latency d_u^f for every option (U, H+1): column 0 = RCS, column h = ES h; eq. (6), D3,
    D5."""
    vol = inst.VT + inst.VR
    out = np.empty((inst.U, inst.H + 1))
    k = 2.0 if inst.rcs_propagation == "twice" else 1.0
    out[:, 0] = vol / inst.rcs_rate + k * inst.rcs_delay
    rate = inst.link_rate[inst.ca]  # (U, H): B_{i,j} from the connected RAN i
    delay = inst.link_delay[inst.ca]
    out[:, 1:] = vol[:, None] / rate + 2 * delay
    out[np.arange(inst.U), inst.ca + 1] = 0.0  # D3: no forwarding to the directly associated ES
    return out


@dataclass(frozen=True)
class Coefficients:
    """Per (user, option) constants: latency = fixed + work/p, QoE = L / (1 + exp(alpha (latency - beta))).

    Option 0 is the RCS, option h the ES h. ``work[u, o]`` is the cycle count eta * V^T * kappa (eq. 8; eta =
    1 on
    the RCS, D6); ``fixed[u, o]`` = d^c + d^f (eqs. 1, 6).
    """

    fixed: np.ndarray  # (U, H+1) s
    work: np.ndarray  # (U, H+1) cycles
    capacity: np.ndarray  # (H+1,) cycles/s; entry 0 = RCS speed
    rcs_shared: bool


def coefficients(inst: Instance) -> Coefficients:
    dc = comm_latency(inst)
    fixed = dc[:, None] + forward_latency_matrix(inst)
    base = inst.VT * inst.kappa
    work = np.concatenate([base[:, None], inst.eta * base[:, None]], axis=1)
    cap = np.concatenate([[inst.rcs_speed], inst.P])
    return Coefficients(fixed, work, cap, inst.rcs_capacity == "shared")


def qoe(inst: Instance, latency: np.ndarray) -> np.ndarray:
    """QoE Omega_u of a latency (s), eq. (11); an infinite latency gives 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        return inst.Lmax * expit(-inst.alpha * (latency - inst.beta))


def latencies(inst: Instance, y: np.ndarray, p: np.ndarray, co: Coefficients | None = None) -> np.ndarray:
    """Service latency D_u, eq. (9), of a batch: y, p of shape (B, U). p = 0 on an ES gives an infinite
    latency."""
    co = co or coefficients(inst)
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=float)
    rows = np.arange(inst.U)
    fixed = co.fixed[rows, y]  # d^c + d^f, eqs. (1), (6)
    work = co.work[rows, y]  # eta V^T kappa, eq. (8)
    dedicated_rcs = (y == 0) & (not co.rcs_shared)
    speed = np.where(dedicated_rcs, co.capacity[0], p)
    with np.errstate(divide="ignore"):
        proc = np.where(speed > 0, work / np.where(speed > 0, speed, 1.0), np.inf)  # eq. (8)
    return fixed + proc  # eq. (9)


def rcs_rule_slack(inst: Instance, Y: np.ndarray, co: Coefficients | None = None) -> np.ndarray:
    """D17 ('if-better'): for each user of a batch of assignments Y (B, U), min over ESs h of the latency it would
    get at h with an equal share P^h / (n_h + 1) (n_h = users at h), minus its RCS latency (with an equal share of
    the RCS among its users when the RCS is shared, as in D13). A user may be on the RCS only if this is >= 0; the
    value is +inf for ES users."""
    co = co or coefficients(inst)
    Y = np.atleast_2d(np.asarray(Y, dtype=np.int64))
    n = np.stack([(Y == o).sum(axis=1) for o in range(inst.H + 1)], axis=1)  # (B, H+1)
    es = co.fixed[None, :, 1:] + co.work[None, :, 1:] * (n[:, None, 1:] + 1) / co.capacity[None, None, 1:]
    n_rcs = n[:, 0:1] if co.rcs_shared else np.ones((Y.shape[0], 1))
    rcs = co.fixed[None, :, 0] + co.work[None, :, 0] * n_rcs / co.capacity[0]
    return np.where(Y == 0, es.min(axis=2) - rcs, np.inf)


def check_shape(inst: Instance, dec: Decision) -> None:
    for name in ("y", "p"):
        arr = getattr(dec, name)
        if arr.shape != (inst.U,):
            raise InvalidInputError(f"{KEY}: Decision.{name}: expected shape (U={inst.U},), got {arr.shape}")


def check_feasible(inst: Instance, dec: Decision) -> list[str]:
    """Violated constraints of P1: C1/C4 (eqs. 13, 16) via the index range, C2 (eq. 14); C3 (eq. 15) is
    checked
    by the Decision record (p >= 0)."""
    check_shape(inst, dec)
    viol = [
        f"eqs. (13)/(16) C1/C4: user {u} picks server {int(dec.y[u])}, not in 0..H={inst.H} (0 = RCS)"
        for u in np.flatnonzero((dec.y < 0) | (dec.y > inst.H))
    ]
    if viol:
        return viol
    load = np.bincount(dec.y, weights=dec.p, minlength=inst.H + 1)
    for h in range(1, inst.H + 1):
        if load[h] > inst.P[h - 1] * (1 + CAPACITY_RTOL):
            viol.append(f"eq. (14) C2: ES {h} allocates {load[h]:.6g} cycle/s > capacity P^h = {inst.P[h - 1]:.6g}")
    if inst.rcs_capacity == "shared" and load[0] > inst.rcs_speed * (1 + CAPACITY_RTOL):
        viol.append(f"eq. (14) C2 (RCS, D4 shared): RCS allocates {load[0]:.6g} cycle/s > {inst.rcs_speed:.6g}")
    if inst.rcs_rule == "if-better":
        slack = rcs_rule_slack(inst, dec.y)[0]
        for u in np.flatnonzero(slack < 0):
            viol.append(
                f"Sec. III-A RCS rule (D17): user {u} is on the RCS although an ES with an equal share would serve "
                f"it {-slack[u]:.3g} s faster"
            )
    return viol


def evaluate(inst: Instance, dec: Decision) -> Metrics:
    """System QoE (eq. 12, one slot) and the quantities of Section VI-A (the single source of the
    objective)."""
    viol = check_feasible(inst, dec)
    if viol:
        return Metrics(float("nan"), False, tuple(viol))
    D = latencies(inst, dec.y, dec.p)
    om = qoe(inst, D)
    ratio = om / inst.Lmax
    return Metrics(
        objective=float(om.sum()),  # eq. (12) for one slot
        feasible=True,
        values={
            "system_qoe": float(om.sum()),
            "mean_latency_s": float(D.mean()),
            "n_SU": int((ratio >= SU_THRESHOLD).sum()),
            "n_DU": int(((ratio > GU_THRESHOLD) & (ratio < SU_THRESHOLD)).sum()),
            "n_GU": int((ratio <= GU_THRESHOLD).sum()),
            "n_CU": int((dec.y == 0).sum()),
            "n_starved": int(np.isinf(D).sum()),
            "latency_s": D.tolist(),
            "qoe": om.tolist(),
        },
    )


def evaluate_batch(inst: Instance, Y: np.ndarray, Pm: np.ndarray) -> np.ndarray:
    """System QoE of a batch of decisions (B, U) without the feasibility check (caller guarantees it)."""
    Y = np.atleast_2d(np.asarray(Y, dtype=np.int64))
    Pm = np.atleast_2d(np.asarray(Pm, dtype=float))
    co = coefficients(inst)
    rows = np.arange(inst.U)
    fixed = co.fixed[rows, Y]
    work = co.work[rows, Y]
    speed = np.where((Y == 0) & (not co.rcs_shared), co.capacity[0], Pm)
    with np.errstate(divide="ignore"):
        D = fixed + np.where(speed > 0, work / np.where(speed > 0, speed, 1.0), np.inf)
    return qoe(inst, D).sum(axis=1)


def equal_share(inst: Instance, y: np.ndarray) -> np.ndarray:
    """p_u = P^h / |U_h| for the users of every ES h (and of the RCS when shared): the equal-share
    allocation."""
    y = np.asarray(y, dtype=np.int64)
    cap = np.concatenate([[inst.rcs_speed], inst.P])
    cnt = np.bincount(y, minlength=inst.H + 1)
    p = cap[y] / np.maximum(cnt[y], 1)
    if inst.rcs_capacity == "dedicated":
        p = np.where(y == 0, 0.0, p)
    return p


# ------------------------------------------------------------------------------------------------------------
# Generator (Table III and Section VI-A; D7-D13)
# ------------------------------------------------------------------------------------------------------------
PAPER_CAPACITIES_GHZ: tuple[float, ...] = (60, 60, 80, 90, 100, 120, 160)
PAPER_USERS_PER_GHZ = 110 / sum(PAPER_CAPACITIES_GHZ)  # |U| = 110 (middle of 100-120) over 670 GHz


@dataclass(frozen=True)
class Config:
    """Generator parameters (Table III and Section VI-A unless noted; see docs/problems/djtcra.md)."""

    U: int = 100
    H: int = 7
    capacities_ghz: tuple[float, ...] = PAPER_CAPACITIES_GHZ
    match_paper_load: bool = False  # D10: scale capacities so users per GHz equals the paper's 110 / 670
    load_users: int | None = None  # D10 for Fig. 8: scale capacities for this many users instead of U (None: U)
    link_rate_mbps: tuple[float, float] = (80.0, 200.0)  # [8, 20] x 10 Mbps
    link_delay_ms: tuple[float, float] = (10.0, 20.0)
    bandwidth_mhz: tuple[float, float] = (16.0, 56.0)  # [2, 7] x 8 MHz (D8)
    noise_dbm: tuple[float, float] = (-120.0, -80.0)
    alpha_per_ms: tuple[float, float] = (15 / 1000, 4 / 1000)  # N(15, 4^2)/1000, truncated to > 0 (D11)
    beta_ms: tuple[float, float] = (350.0, 10.0)  # N(350, 10^2) ms (Figs. 6-8)
    eta_range: tuple[float, float] = (0.5, 8.0)
    kappa_range: tuple[float, float] = (228.0, 328.0)
    VT_kb: tuple[float, float] = (200.0, 800.0)  # Figs. 6-8: U(200, 800) KB
    VR_kb: tuple[float, float] = (10.0, 20.0)
    tx_power_dbm: float = 20.0
    dist_m: tuple[float, float] = (30.0, 100.0)
    fc_ghz: float = 5.0
    h_bs: float = 35.0
    h_ut: float = 1.5
    h_building: float = 5.0
    rcs_rate_mbps: float = 100.0
    rcs_delay_ms: float = 200.0
    rcs_speed_ghz: float = 20.0
    kb_bits: float = 8000.0  # D9: 1 KB = 1000 bytes


def _swap_min_eta(eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """D12: draw how many users get their fastest ES at each ES, sample those users, and swap each user's
    minimum
    eta into that ES's column ("set the corresponding eta as the minimum value by swapping", Sec. VI-A)."""
    U, H = eta.shape
    counts = rng.multinomial(U, rng.dirichlet(np.ones(H)))
    owner = np.repeat(np.arange(H), counts)
    users = rng.permutation(U)
    eta = eta.copy()
    for u, h in zip(users, owner, strict=True):
        j = int(np.argmin(eta[u]))
        eta[u, h], eta[u, j] = eta[u, j], eta[u, h]
    return eta


def _sym(rng: np.random.Generator, lo: float, hi: float, H: int) -> np.ndarray:
    a = rng.uniform(lo, hi, size=(H, H))
    return np.triu(a) + np.triu(a, 1).T


def generate(cfg: Config, rng: np.random.Generator) -> Instance:
    """A random slot with the paper's distributions (Table III, Sec. VI-A)."""
    U, H = cfg.U, cfg.H
    if U < 1 or H < 1:
        raise InvalidInputError(f"{KEY}: Config needs U >= 1 and H >= 1, got U={U}, H={H}")
    if len(cfg.capacities_ghz) < H:
        raise InvalidInputError(f"{KEY}: Config.capacities_ghz has {len(cfg.capacities_ghz)} entries < H={H}")
    if H == len(cfg.capacities_ghz):
        cap = np.array(cfg.capacities_ghz, dtype=float)
    else:  # D10: a random subset of the paper's capacities
        cap = np.sort(rng.choice(np.array(cfg.capacities_ghz, dtype=float), size=H, replace=False))
    if cfg.match_paper_load:
        cap = cap * (U if cfg.load_users is None else cfg.load_users) / (cap.sum() * PAPER_USERS_PER_GHZ)
    alpha = np.empty(U)
    for u in range(U):  # D11: truncated normal, alpha > 0
        a = 0.0
        while a <= 1e-6:
            a = rng.normal(*cfg.alpha_per_ms)
        alpha[u] = a
    eta = _swap_min_eta(rng.uniform(*cfg.eta_range, size=(U, H)), rng)
    return Instance(
        U=U,
        H=H,
        ca=rng.integers(0, H, size=U),
        VT=rng.uniform(*cfg.VT_kb, size=U) * cfg.kb_bits,
        VR=rng.uniform(*cfg.VR_kb, size=U) * cfg.kb_bits,
        kappa=rng.uniform(*cfg.kappa_range, size=U),
        bandwidth=rng.uniform(*cfg.bandwidth_mhz, size=U) * 1e6,
        tx_power=np.full(U, 10 ** (cfg.tx_power_dbm / 10) / 1000),
        noise=10 ** (rng.uniform(*cfg.noise_dbm, size=U) / 10) / 1000,
        dist2d=rng.uniform(*cfg.dist_m, size=U),
        alpha=alpha * 1000.0,  # per ms -> per s (D2)
        beta=rng.normal(*cfg.beta_ms, size=U) / 1000.0,  # ms -> s (D2)
        Lmax=np.ones(U),
        eta=eta,
        P=cap * 1e9,
        link_rate=_sym(rng, *cfg.link_rate_mbps, H) * 1e6,
        link_delay=_sym(rng, *cfg.link_delay_ms, H) / 1000.0,
        fc_ghz=cfg.fc_ghz,
        h_bs=cfg.h_bs,
        h_ut=cfg.h_ut,
        h_building=cfg.h_building,
        rcs_rate=cfg.rcs_rate_mbps * 1e6,
        rcs_delay=cfg.rcs_delay_ms / 1000.0,
        rcs_speed=cfg.rcs_speed_ghz * 1e9,
    )


PRESETS: dict[str, Config] = {
    "tiny": Config(U=4, H=2, match_paper_load=True),
    "small": Config(U=10, H=3, match_paper_load=True),
    "medium": Config(U=16, H=4, match_paper_load=True),
    "paper": Config(U=100, H=7),
    "paper120": Config(U=120, H=7),
}

VARIANTS: dict[str, dict[str, str]] = {
    "literal": {},
    "rcs-shared": {"rcs_capacity": "shared"},
    "rcs-once": {"rcs_propagation": "once"},
    "rcs-if-better": {"rcs_rule": "if-better"},
    "subchannels": {"bandwidth_model": "subchannels"},
}

PROBLEM = ProblemSpec(
    key=KEY,
    title="DJTCRA: users to ESs/RCS + per-ES CPU shares, max sum of sigmoid QoE",
    sense="max",
    Instance=Instance,
    Decision=Decision,
    evaluate=evaluate,
    check_feasible=check_feasible,
    generate=generate,
    presets=PRESETS,
    variants=VARIANTS,
    bench_sizes=("small",),
    bench_variants=("literal", "rcs-if-better", "subchannels"),
    paper="Chen, Sun, Yu, Taleb - Joint Task and Computing Resource Allocation in Distributed Edge Computing "
    "Systems via Multi-Agent Deep Reinforcement Learning",
    env="mecopt.envs.djtcra",
)
