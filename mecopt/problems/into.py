"""INTO (Zhang, Hu, Min, "Digital Twin-Driven Intelligent Task Offloading for Collaborative MEC"), Section
III.

N base stations (BSs); BS i serves U_i energy-harvesting IoT devices. At the start of a slot every device
has one
task O = <z, v, delta, g>. The action (x, y, f) decides which tasks are uploaded (x, C1), on which BS each
uploaded
task runs (y, C2-C3, peer offloading over wired links) and how much CPU it gets (f, C4, eq. 10). Uploading
devices
of one cell interfere with each other (eqs. 2-3). A task earns its award g only when it finishes by its
deadline
(eq. 11). The uploading energy must be in the device's buffer (eq. 5), which evolves by eq. (6).

One slot of problem IMP (eq. 12) is the static problem of this module: maximise the slot income r(t), eq.
(11),
subject to (5), (10), C1-C4. The multi-slot MDP (buffers carried by eq. 6, new tasks and harvest each slot) is
:mod:`mecopt.envs.into` and the horizon functions in :mod:`solvers.exact.into`.

Devices are stored flat: device k belongs to BS ``bs[k]`` (so the paper's (i, j) is (bs[k], k)).
Every modelling choice the paper leaves open is listed in ``docs/problems/into.md`` (decisions D1-D17).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mecopt.core import InvalidInputError, Metrics
from mecopt.schema import Record, array, record, scalar
from mecopt.spec import ProblemSpec

KEY = "into"

#: The paper's noise density N0 = 1e-8 W/Hz (Section V): the default (D5).
N0_PAPER = 1e-8
#: Thermal noise density -174 dBm/Hz in W/Hz: variant "thermal-3gpp" (D1, D5).
N0_THERMAL = 10 ** (-174 / 10) / 1000.0
#: Default channel-gain scale sigma: h = sigma * unit-mean Rayleigh fading, as Fig. 5(a) scales h (D1).
SIGMA_DEFAULT = 1.0
#: Relative tolerance of the deadline (eq. 11), energy (eq. 5) and capacity (eq. 10) checks.
TOL = 1e-9


@record
class Instance(Record):
    """One slot of IMP (eq. 12); SI units (bit, cycle, s, W, J, Hz)."""

    problem_key = KEY
    N: int = scalar("number of BSs |N| (Section III-A)", "", ge=1, le=100, integer=True)
    K: int = scalar("total number of IoT devices sum_i U_i (Section III-A)", "", ge=1, le=10000, integer=True)
    bs: np.ndarray = array(
        "serving BS i of device k (0-based): k is in U_i (Section III-A)", "", ("K",), ge=0, integer=True
    )
    z: np.ndarray = array("task data size z_ij(t), eq. (1)/(4)", "bit", ("K",), ge=1, le=1e13)
    v: np.ndarray = array("processing density v_ij(t), eq. (9)", "cycle/bit", ("K",), ge=1e-3, le=1e6)
    delta: np.ndarray = array("maximum tolerance delay delta_ij(t), eq. (11)", "s", ("K",), ge=1e-6, le=1e6)
    g: np.ndarray = array("award g_ij(t) paid when the task meets its deadline, eq. (11)", "", ("K",), ge=0, le=1e6)
    p: np.ndarray = array("transmission power p_ij, eqs. (2), (5)", "W", ("K",), ge=1e-9, le=1e4)
    h: np.ndarray = array("channel power gain h_ij(t) (linear, D1), eqs. (2)-(3)", "", ("K",), ge=1e-25, le=1e3)
    Q: np.ndarray = array("energy buffer Q^E_ij(t) at the start of the slot, eq. (5)", "J", ("K",), ge=0, le=1e6)
    e: np.ndarray = array("energy harvested during the slot e_ij(t) (D2), eq. (6)", "J", ("K",), ge=0, le=1e6)
    F: np.ndarray = array("computing capacity F_i(t) of the MEC server of BS i, eq. (10)", "Hz", ("N",), ge=1, le=1e20)
    C: np.ndarray = array(
        "wired rate C_i^{i'}(t) from BS i to BS i' (0 = no link); the diagonal is ignored (C_i^i = inf, "
        "text after eq. 6), eq. (8)",
        "bit/s",
        ("N", "N"),
        ge=0,
        le=1e13,
    )
    B: float = scalar(
        "wireless channel bandwidth B (shared by a cell, orthogonal across cells), eq. (2)", "Hz", ge=1, le=1e12
    )
    N0: float = scalar("noise power spectral density N_0, eq. (2) (D5)", "W/Hz", ge=1e-27, le=100)
    tau: float = scalar(
        "slot length tau; every delta must be <= tau (Section III-A, D3)", "s", ge=1e-6, le=1e6, default=2.0
    )

    def validate(self) -> None:
        if np.any(self.bs >= self.N):
            raise InvalidInputError(f"{KEY}: Instance.bs: every value must be < N={self.N}, got {int(self.bs.max())}")
        if np.any(self.delta > self.tau * (1 + TOL)):
            raise InvalidInputError(
                f"{KEY}: Instance.delta: deadlines must not exceed the slot length "
                f"tau={self.tau} (Section III-A), "
                f"got {float(self.delta.max())}"
            )

    @property
    def U(self) -> np.ndarray:
        """Number of devices U_i of each BS."""
        return np.bincount(self.bs, minlength=self.N)


@record
class Decision(Record):
    """The action a(t) of Section III-B: x (C1), y (C2-C3), f (C4, eq. 10)."""

    problem_key = KEY
    x: np.ndarray = array("offloading decision x_ij(t) in {0,1} (C1); 0 = discarded", "", ("*",), integer=True)
    y: np.ndarray = array(
        "peer-offloading decision y_ij^{i'}(t) in {0,1}, eq. (7) (C2); y[k, i'] = 1: task k "
        "runs on BS i' (own BS included)",
        "",
        ("*", "*"),
        integer=True,
    )
    f: np.ndarray = array(
        "CPU frequency f_ij^{i'}(t) BS i' allocates to task k, eqs. (9)-(10) (C4)", "Hz", ("*", "*"), ge=-1e21, le=1e21
    )


def trivial_bound(inst: Instance) -> float:
    """A valid upper bound on the slot income (max): every task's award paid, eq. (11)."""
    return float(inst.g.sum())


# ------------------------------------------------------------------------------------------------------------
# Model equations, vectorized over a batch of actions (leading axis M)
# ------------------------------------------------------------------------------------------------------------
def received_power(inst: Instance) -> np.ndarray:
    """p_ij h_ij(t): the received signal power of each device at its BS (numerator of eq. 2)."""
    return inst.p * inst.h


def rate(inst: Instance, x: np.ndarray) -> np.ndarray:
    """Eqs. (2)-(3): nu = B log2(1 + p h / (B N0 + G)), G = sum of x p h over the other devices of the cell.

    ``x`` has shape (M, K) (0/1); returns (M, K). Inter-cell interference is zero (orthogonal bands,
    Section III-A).
    """
    x = np.asarray(x, dtype=float)
    a = received_power(inst)
    onehot = np.zeros((inst.K, inst.N))
    onehot[np.arange(inst.K), inst.bs] = 1.0
    cell_total = (x * a) @ onehot  # (M, N): sum_k x_k p_k h_k per cell
    G = cell_total[:, inst.bs] - x * a  # eq. (3): excludes the device itself
    return inst.B * np.log1p(a / (inst.B * inst.N0 + G)) / np.log(2.0)  # log2(1 + x), exact for tiny x


def wired_delay_per_target(inst: Instance) -> np.ndarray:
    """(K, N): z / C_i^{i'} for task k run on BS i' (eq. 8); 0 on the own BS, inf without a link."""
    Crow = inst.C[inst.bs]  # (K, N)
    with np.errstate(divide="ignore"):
        dc = np.where(Crow > 0, inst.z[:, None] / np.where(Crow > 0, Crow, 1.0), np.inf)
    dc[np.arange(inst.K), inst.bs] = 0.0
    return dc


@dataclass(frozen=True)
class SlotOutcome:
    """Per-task quantities of a batch of actions (M, K)."""

    nu: np.ndarray  # uplink rate, eq. (2)
    dw: np.ndarray  # wireless delay, eq. (4)
    dc: np.ndarray  # wired delay, eq. (8)
    dm: np.ndarray  # computing delay, eq. (9)
    d: np.ndarray  # completion delay d = dw + dc + dm (after eq. 11)
    energy: np.ndarray  # x p d^w, eqs. (5)-(6)
    on_time: np.ndarray  # x * 1{d <= delta}, eq. (11)
    income: np.ndarray  # (M,) r(t), eq. (11)


def slot_outcome(inst: Instance, x: np.ndarray, target: np.ndarray, fsum: np.ndarray) -> SlotOutcome:
    """Evaluate a batch: x (M, K) in {0,1}; target (M, K) the BS index i' with y = 1 (ignored where x = 0);
    fsum (M, K) the total CPU sum_i' f_ij^{i'} given to the task (eq. 9)."""
    x = np.asarray(x, dtype=float)
    target = np.asarray(target, dtype=np.int64)
    fsum = np.asarray(fsum, dtype=float)
    nu = rate(inst, x)
    dw = np.where(x > 0, inst.z / nu, 0.0)  # eq. (4)
    dc_all = wired_delay_per_target(inst)  # (K, N)
    tgt = np.clip(target, 0, inst.N - 1)
    dc = np.where(x > 0, dc_all[np.arange(inst.K)[None, :], tgt], 0.0)  # eq. (8)
    with np.errstate(divide="ignore", invalid="ignore"):
        dm = np.where(x > 0, np.where(fsum > 0, inst.z * inst.v / np.where(fsum > 0, fsum, 1.0), np.inf), 0.0)
    d = dw + dc + dm
    on_time = (x > 0) & (d <= inst.delta * (1 + TOL))  # indicator of eq. (11)
    income = (inst.g * on_time).sum(axis=1)  # eq. (11)
    energy = inst.p * dw * x  # x p d^w, eqs. (5)-(6)
    return SlotOutcome(nu, dw, dc, dm, d, energy, on_time, income)


def min_cpu(inst: Instance, nu: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Eq. (18): l = z v / (delta - d^w - d^c), the least CPU meeting the deadline (inf if no slack)."""
    dc_all = wired_delay_per_target(inst)
    tgt = np.clip(np.asarray(target, dtype=np.int64), 0, inst.N - 1)
    dc = dc_all[np.arange(inst.K)[None, :], tgt] if tgt.ndim == 2 else dc_all[np.arange(inst.K), tgt]
    slack = inst.delta - inst.z / nu - dc
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(slack > 0, inst.z * inst.v / np.where(slack > 0, slack, 1.0), np.inf)


def _check_shapes(inst: Instance, dec: Decision) -> None:
    K, N = inst.K, inst.N
    if dec.x.shape != (K,):
        raise InvalidInputError(f"{KEY}: Decision.x: expected shape (K={K},), got {dec.x.shape}")
    if dec.y.shape != (K, N):
        raise InvalidInputError(f"{KEY}: Decision.y: expected shape (K={K}, N={N}), got {dec.y.shape}")
    if dec.f.shape != (K, N):
        raise InvalidInputError(f"{KEY}: Decision.f: expected shape (K={K}, N={N}), got {dec.f.shape}")


def check_feasible(inst: Instance, dec: Decision) -> list[str]:
    """Violated constraints of IMP (eq. 12) for one slot: C1-C4, (5), (10), and y only over existing links."""
    _check_shapes(inst, dec)
    out: list[str] = []
    x, y, f = dec.x, dec.y, dec.f
    for k in np.flatnonzero((x != 0) & (x != 1)):
        out.append(f"C1 (eq. 12): x[{k}] = {int(x[k])} is not in {{0, 1}}")
    for k, b in zip(*np.nonzero((y != 0) & (y != 1)), strict=True):
        out.append(f"C2 (eq. 12): y[{k}, {b}] = {int(y[k, b])} is not in {{0, 1}}")
    for k in np.flatnonzero(y.sum(axis=1) != x):
        out.append(f"C3 (eq. 12): sum_i' y[{k}, i'] = {int(y[k].sum())} != x[{k}] = {int(x[k])}")
    Fb = inst.F[None, :]
    for k, b in zip(*np.nonzero((f < 0) | (f > Fb * (1 + TOL))), strict=True):
        out.append(f"C4 (eq. 12): f[{k}, {b}] = {f[k, b]:.6g} Hz is outside [0, F_{b} = {inst.F[b]:.6g}]")
    for k, b in zip(*np.nonzero((y == 0) & (f != 0)), strict=True):
        out.append(f"eq. (9) (f = 0 when y = 0): f[{k}, {b}] = {f[k, b]:.6g} Hz but y[{k}, {b}] = 0")
    link = inst.C[inst.bs] > 0
    link[np.arange(inst.K), inst.bs] = True
    for k, b in zip(*np.nonzero((y == 1) & ~link), strict=True):
        out.append(f"eq. (8): task {k} peer-offloaded from BS {int(inst.bs[k])} to BS {b} without a wired link (C = 0)")
    load = np.where(f > 0, f, 0.0).sum(axis=0)
    for b in np.flatnonzero(load > inst.F * (1 + TOL)):
        out.append(f"eq. (10): BS {b} allocates {load[b]:.6g} Hz > F_{b} = {inst.F[b]:.6g} Hz")
    if out:  # the energy check needs a well-formed x
        return out
    res = _outcome(inst, dec)
    over = res.energy[0] > inst.Q * (1 + TOL) + 1e-15
    for k in np.flatnonzero(over):
        out.append(f"eq. (5): device {k} needs p d^w = {res.energy[0, k]:.6g} J > Q^E = {inst.Q[k]:.6g} J")
    return out


def _outcome(inst: Instance, dec: Decision) -> SlotOutcome:
    target = np.where(dec.y.any(axis=1), dec.y.argmax(axis=1), inst.bs)
    return slot_outcome(inst, dec.x[None, :], target[None, :], dec.f.sum(axis=1)[None, :])


def evaluate(inst: Instance, dec: Decision) -> Metrics:
    """Slot income r(t), eq. (11), and reported quantities (the single source of the INTO objective)."""
    viol = check_feasible(inst, dec)
    if viol:
        return Metrics(float("nan"), False, tuple(viol))
    res = _outcome(inst, dec)
    on = res.on_time[0]
    target = np.where(on, targets_of(inst, dec), -1)
    uploads = dec.x > 0
    need, bound = cpu_need(inst, uploads, target), cpu_bound(inst, uploads, target)
    return Metrics(
        objective=float(res.income[0]),
        feasible=True,
        values={
            "n_offloaded": int(dec.x.sum()),
            "n_on_time": int(on.sum()),
            "n_missed": int(dec.x.sum() - on.sum()),
            "n_peer_offloaded": int(sum(dec.y[k, b] for k in range(inst.K) for b in range(inst.N) if b != inst.bs[k])),
            "cpu_load_hz": dec.f.sum(axis=0).tolist(),
            "cpu_need_share": (need / inst.F).tolist(),
            "cpu_bound": [int(b) for b in bound],
            "n_cpu_bound": int(bound.sum()),
            "energy_used_j": res.energy[0].tolist(),
            "Q_next_j": next_energy(inst, res.energy[0]).tolist(),
            "delay_s": [float(v) if np.isfinite(v) else None for v in res.d[0]],
        },
    )


def cpu_need(inst: Instance, uploads: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N,): sum of the minimum CPU l (eq. 18) of the tasks each BS runs (target[k] = BS, -1 = not run), under
    the interference of every upload (``uploads``, eq. 3)."""
    nu = rate(inst, np.asarray(uploads, dtype=float)[None, :])[0]
    run = target >= 0
    lk = min_cpu(inst, nu, np.where(run, target, inst.bs))
    return np.bincount(target[run], weights=lk[run], minlength=inst.N).astype(float)


def cpu_bound(inst: Instance, uploads: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N,) bool: BS b is CPU-bound when the computing capacity (10) of b is what stops one more task.

    That is, some task k that is not uploaded could be uploaded and run on b (wired link, eq. 8) with every
    uploader still meeting (5), every running task still meeting its deadline (l finite, eq. 18) and (10) holding
    at every BS except b, but not at b. ``uploads`` (K,) are the x of eq. (12); ``target`` (K,) the BS running
    each on-time task (-1: none)."""
    uploads = np.asarray(uploads, dtype=bool)
    target = np.asarray(target, dtype=np.int64)
    link = inst.C[inst.bs] > 0
    link[np.arange(inst.K), inst.bs] = True
    cand = [(k, b) for k in np.flatnonzero(~uploads) for b in range(inst.N) if link[k, b]]
    out = np.zeros(inst.N, dtype=bool)
    if not cand:
        return out
    ks = np.array([c[0] for c in cand])
    bs = np.array([c[1] for c in cand])
    M = len(cand)
    x = np.tile(uploads.astype(float), (M, 1))
    x[np.arange(M), ks] = 1.0
    tgt = np.tile(target, (M, 1))
    tgt[np.arange(M), ks] = bs
    nu = rate(inst, x)
    energy_ok = np.all(x * inst.p * inst.z / nu <= inst.Q * (1 + TOL) + 1e-15, axis=1)  # eq. (5)
    run = tgt >= 0
    lk = np.where(run, min_cpu(inst, nu, np.where(run, tgt, inst.bs[None, :])), 0.0)
    deadline_ok = np.all(np.isfinite(lk), axis=1)
    onehot = np.eye(inst.N)[np.where(run, tgt, 0)] * run[:, :, None]  # (M, K, N)
    load = np.einsum("mk,mkn->mn", np.where(np.isfinite(lk), lk, 0.0), onehot)
    over = load > inst.F[None, :] * (1 + TOL)
    others_ok = ~(over & (np.arange(inst.N)[None, :] != bs[:, None])).any(axis=1)
    blocked = energy_ok & deadline_ok & others_ok & over[np.arange(M), bs]
    out[np.unique(bs[blocked])] = True
    return out


def next_energy(inst: Instance, energy_used: np.ndarray) -> np.ndarray:
    """Eq. (6): Q(t+1) = Q(t) + e(t) - x p d^w."""
    return np.maximum(inst.Q + inst.e - energy_used, 0.0)


# ------------------------------------------------------------------------------------------------------------
# Building decisions from "who runs where" (used by every solver)
# ------------------------------------------------------------------------------------------------------------
def decision_from_targets(inst: Instance, target: np.ndarray) -> Decision:
    """Decision for target[k] in {-1 (discard), 0..N-1 (BS running the task)}.

    Every offloaded task gets the minimum CPU l of eq. (18) scaled up by F_b / sum(l) at its BS, so each task
    finishes no later than its deadline whenever sum(l) <= F_b (eq. 10). Tasks that cannot meet the
    deadline get
    f = 0 (they still upload, consume energy and interfere: eqs. 3, 5, 6)."""
    target = np.asarray(target, dtype=np.int64)
    if target.shape != (inst.K,) or np.any(target < -1) or np.any(target >= inst.N):
        raise InvalidInputError(f"{KEY}: target must have shape (K={inst.K},) with values in -1..N-1")
    x = (target >= 0).astype(np.int64)
    nu = rate(inst, x[None, :])[0]
    lk = min_cpu(inst, nu, np.where(x > 0, target, inst.bs))
    lk = np.where(x > 0, lk, 0.0)
    y = np.zeros((inst.K, inst.N), dtype=np.int64)
    f = np.zeros((inst.K, inst.N))
    for b in range(inst.N):
        mine = (target == b) & np.isfinite(lk)
        y[target == b, b] = 1
        tot = lk[mine].sum()
        if tot > 0:
            scale = inst.F[b] / tot if tot <= inst.F[b] else 1.0
            f[mine, b] = np.minimum(lk[mine] * scale, inst.F[b])
    return Decision(x=x, y=y, f=f)


def targets_of(inst: Instance, dec: Decision) -> np.ndarray:
    """Inverse of :func:`decision_from_targets` for the (x, y) part."""
    return np.where(dec.x > 0, dec.y.argmax(axis=1), -1)


# ------------------------------------------------------------------------------------------------------------
# Generator (Section V and D1-D6, D12)
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Generator parameters (Section V unless noted; see docs/problems/into.md)."""

    N: int = 3
    U: tuple[int, ...] | None = (30, 55, 80)  # devices per BS (Section V); None: draw from U_range
    U_range: tuple[int, int] = (2, 8)  # inclusive, when U is None
    z_range_bit: tuple[float, float] = (50e3, 80e3)  # z ~ U[50, 80] kbit
    v_range: tuple[float, float] = (3000.0, 8000.0)  # cycles/bit
    delta_range_s: tuple[float, float] = (0.2, 2.0)  # delta ~ U[0.2 psi, 2] s
    g_range: tuple[float, float] = (1.0, 3.0)
    p_range_w: tuple[float, float] = (0.050, 0.180)  # 50-180 mW
    e_range_w: tuple[float, float] = (1e-3, 1.5e-3)  # "U[1, 1.5] mW": harvested power; energy = e tau (D2)
    Q_range_j: tuple[float, float] = (0.0, 0.02)  # initial buffer (D4)
    tau_s: float = 2.0  # D3
    B_hz: float = 1e6
    N0_w_per_hz: float = N0_PAPER  # Section V (D5)
    F_hz: float = 5e9
    C_bps: float = 100e6  # every pair of BSs linked (D6)
    gain_model: str = "unit"  # D1: "unit" (h = sigma * fading) or "3gpp" (h = 3GPP path gain * fading)
    sigma: float = SIGMA_DEFAULT  # D1, Fig. 5(a): channel-gain scale of the "unit" model
    cell_radius_m: float = 200.0  # D1 ("3gpp" only)
    min_distance_m: float = 10.0  # D1 ("3gpp" only)
    rayleigh: bool = True  # D1: unit-mean exponential power fading per slot
    chi: float = 1.0  # Fig. 6(a): task size scale
    psi: float = 1.0  # Fig. 6(c): delta ~ U[0.2 psi, 2]
    # Figs. 4(a)-(b) scale one quantity of the devices of *some* BSs only: a multiplier per BS (length N, each
    # finite and > 0) applied to the drawn value of every device of that BS; None = 1 everywhere. The draws
    # themselves are unchanged, so two configs that differ only here give the same slots up to the scaling.
    g_scale_bs: tuple[float, ...] | None = None  # Fig. 4(a): award xi * g_1j(t) of BS 1's devices only
    v_scale_bs: tuple[float, ...] | None = None  # Fig. 4(b): density zeta * v_ij(t) of BS 2-3's devices only

    def __post_init__(self) -> None:
        for name in ("g_scale_bs", "v_scale_bs"):
            val = getattr(self, name)
            if val is None:
                continue
            arr = np.asarray(val, dtype=float) if isinstance(val, (tuple, list)) else None
            if arr is None or arr.shape != (self.N,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise InvalidInputError(
                    f"{KEY}: Config.{name} must be None or one finite multiplier > 0 per BS (N={self.N}), got {val!r}"
                )
            object.__setattr__(self, name, tuple(float(x) for x in arr))


def path_gain(distance_m: np.ndarray) -> np.ndarray:
    """Linear gain of the 3GPP macro path loss 128.1 + 37.6 log10(d / km) dB (D1)."""
    return 10 ** (-(128.1 + 37.6 * np.log10(distance_m / 1000.0)) / 10)


@dataclass(frozen=True)
class Devices:
    """What stays fixed over a horizon: serving BS, position (path gain) and transmit power."""

    bs: np.ndarray
    path: np.ndarray
    p: np.ndarray


def draw_devices(cfg: Config, rng: np.random.Generator) -> Devices:
    U = np.array(cfg.U if cfg.U is not None else rng.integers(cfg.U_range[0], cfg.U_range[1] + 1, size=cfg.N))
    if U.shape != (cfg.N,) or np.any(U < 1):
        raise InvalidInputError(f"{KEY}: Config.U must give N={cfg.N} positive device counts, got {cfg.U}")
    bs = np.repeat(np.arange(cfg.N), U)
    K = int(U.sum())
    if cfg.gain_model not in ("unit", "3gpp"):
        raise InvalidInputError(f"{KEY}: Config.gain_model must be 'unit' or '3gpp', got {cfg.gain_model!r}")
    # The positions are drawn under both gain models so that both see the same tasks, powers and fading (D1).
    dist = np.sqrt(rng.uniform(cfg.min_distance_m**2, cfg.cell_radius_m**2, size=K))
    path = path_gain(dist) if cfg.gain_model == "3gpp" else np.full(K, cfg.sigma)
    return Devices(bs=bs, path=path, p=rng.uniform(*cfg.p_range_w, size=K))


def _per_bs(scale: tuple[float, ...] | None, bs: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """``drawn`` times the multiplier of each device's BS (Config.g_scale_bs / v_scale_bs); unchanged for None."""
    return drawn if scale is None else drawn * np.asarray(scale)[bs]


def draw_slot(cfg: Config, dev: Devices, Q: np.ndarray, rng: np.random.Generator) -> Instance:
    """One slot: new tasks, fading and harvest for fixed devices with buffers Q."""
    K = dev.bs.size
    fading = rng.exponential(1.0, size=K) if cfg.rayleigh else np.ones(K)
    lo = min(cfg.delta_range_s[0] * cfg.psi, cfg.delta_range_s[1])
    C = np.full((cfg.N, cfg.N), cfg.C_bps)
    np.fill_diagonal(C, 0.0)
    return Instance(
        N=cfg.N,
        K=K,
        bs=dev.bs,
        z=cfg.chi * rng.uniform(*cfg.z_range_bit, size=K),
        v=_per_bs(cfg.v_scale_bs, dev.bs, rng.uniform(*cfg.v_range, size=K)),  # Fig. 4(b): zeta v_ij
        delta=rng.uniform(lo, cfg.delta_range_s[1], size=K),
        g=_per_bs(cfg.g_scale_bs, dev.bs, rng.uniform(*cfg.g_range, size=K)),  # Fig. 4(a): xi g_ij
        p=dev.p,
        h=dev.path * fading,
        Q=np.asarray(Q, dtype=float),
        e=rng.uniform(*cfg.e_range_w, size=K) * cfg.tau_s,
        F=np.full(cfg.N, cfg.F_hz),
        C=C,
        B=cfg.B_hz,
        N0=cfg.N0_w_per_hz,
        tau=cfg.tau_s,
    )


def generate(cfg: Config, rng: np.random.Generator) -> Instance:
    """A random slot with the paper's parameters (Section V) and D1-D6, D12."""
    dev = draw_devices(cfg, rng)
    Q = rng.uniform(*cfg.Q_range_j, size=dev.bs.size)
    return draw_slot(cfg, dev, Q, rng)


def generate_horizon(cfg: Config, rng: np.random.Generator, T: int) -> list[Instance]:
    """T slots of the MDP with fixed devices; slot t's Q field is the initial buffer Q(0) (only slot 0's is
    used:
    later buffers follow eq. (6) from the actions taken)."""
    if T < 1:
        raise InvalidInputError(f"{KEY}: horizon T must be >= 1, got {T}")
    dev = draw_devices(cfg, rng)
    Q0 = rng.uniform(*cfg.Q_range_j, size=dev.bs.size)
    return [draw_slot(cfg, dev, Q0, rng) for _ in range(T)]


def with_Q(inst: Instance, Q: np.ndarray) -> Instance:
    return replace(inst, Q=np.maximum(np.asarray(Q, dtype=float), 0.0))


PRESETS: dict[str, Config] = {
    # tiny: small enough for brute force; capacity lowered so that (10) binds (D12)
    "tiny": Config(N=2, U=None, U_range=(2, 3), F_hz=1.5e9),
    # small: a scaled-down paper; F scaled with the cell size (5 GHz x 5 / 55 devices, about 0.5 GHz) so that
    # computing binds and peer offloading happens, as in the paper's text (D12)
    "small": Config(N=3, U=None, U_range=(2, 8), F_hz=0.5e9),
    "paper": Config(N=3, U=(30, 55, 80)),
}

VARIANTS: dict[str, dict[str, float]] = {
    "literal": {},  # N0 = 1e-8 (Section V) with calibrated unit-mean gains (D1, D5)
    "thermal-3gpp": {},  # 3GPP path loss + thermal noise (the pre-calibration default): see VARIANT_CONFIGS
}

#: Variants that change how data are drawn (generator-config overrides, D1, D5).
VARIANT_CONFIGS: dict[str, dict[str, object]] = {
    "thermal-3gpp": {"gain_model": "3gpp", "N0_w_per_hz": N0_THERMAL},
}

PROBLEM = ProblemSpec(
    key=KEY,
    title="INTO: one slot of IMP, income of on-time tasks, intra-cell interference, energy, peer offloading",
    sense="max",
    Instance=Instance,
    Decision=Decision,
    evaluate=evaluate,
    check_feasible=check_feasible,
    generate=generate,
    presets=PRESETS,
    variants=VARIANTS,
    variant_configs=VARIANT_CONFIGS,
    bench_sizes=("small",),
    # issue #13: show that peer offloading happens and CPU binds on the default benchmark
    table_metrics=(("n_peer_offloaded", "peer-offloaded / slot"), ("cpu_bound", "CPU-bound BS share")),
    paper="Zhang, Hu, Min - Digital Twin-Driven Intelligent Task Offloading for Collaborative MEC",
    env="mecopt.envs.into",
)
