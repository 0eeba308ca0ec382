"""CTO-TP (Liu, Li, Vasilakos, Hussain, Simeonidou, "Cooperative Task Offloading through Asynchronous Deep
Reinforcement Learning in Mobile Edge Computing for Future Networks"), Section II, one time slot t.

M MEC servers joined by fibre links. In slot t server m holds the aggregate of the tasks that arrived
there: D_m cycles (required computing resources, eq. 3) and F_m bits. It keeps a share 1 - a_m local and
offloads a_m (eq. 8e, the ratio a_mdt of eq. 12; size and cycles in equal proportion) to at most one
cooperative server n (eq. 11), allocating d_m (local computing, eq. 3), d_mn (computing at n, eq. 4) and
bandwidth b_mn (eq. 1), each at most kappa times the remaining resource (eq. 12, constraints 8c-8d). Latency
eq. (6) is a sum over servers of max{local computing, transmission + remote computing}; energy eq. (5) is the
linear power model per server; the objective eq. (8a) is lambda * L_total + rho * E_total.

Decision encoding: ``target[m] = n`` (1-based) means server m offloads to server n (u_mt = 1, w_mt = n in
eq. 11), ``target[m] = 0`` means no cooperative server (u_mt = 0, then a_m must be 0). Allocations are
absolute (Hz).

Every modelling choice the paper leaves open is listed in ``docs/problems/cto.md`` (decisions D1-D14).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mecopt.core import InvalidInputError, Metrics
from mecopt.problems.cto_trace import TraceParams, slot_workloads, synthetic_trace
from mecopt.schema import Record, array, choice, record, scalar
from mecopt.spec import ProblemSpec

KEY = "cto"
#: Relative tolerance of the resource constraints (8c)-(8d) and of eq. (8b).
TOL = 1e-9


@record
class Instance(Record):
    """One slot t of the CTO-TP problem (SI units: cycles, bit, Hz, s, W, J)."""

    problem_key = KEY
    M: int = scalar("number of MEC servers M (Section II)", "", ge=1, le=1000, integer=True)
    D: np.ndarray = array(
        "required computing resources D_mt of the tasks arriving at server m in slot t, eq. (3)",
        "cycle",
        ("M",),
        ge=0,
        le=1e16,
    )
    F: np.ndarray = array(
        "size of the tasks arriving at server m in slot t (F_mnt = a_m F_m), eq. (2)", "bit", ("M",), ge=0, le=1e13
    )
    C_rem: np.ndarray = array(
        "remaining computing resources C_mt of server m at slot t, eqs. (8c), (12)", "Hz", ("M",), ge=1, le=1e14
    )
    C_cap: np.ndarray = array(
        "computing capacity of server m (denominator of U_mt in eq. 5; Table I)", "Hz", ("M",), ge=1, le=1e14
    )
    B_rem: np.ndarray = array(
        "remaining bandwidth B_kt of the link k from server m to server n, eqs. (8d), (12); diagonal 0",
        "Hz",
        ("M", "M"),
        ge=0,
        le=1e13,
    )
    eta_db: float = scalar(
        "signal-to-noise ratio eta of the fibre links, eq. (1) (Table I)", "dB", ge=-50, le=100, default=10.0
    )
    kappa: float = scalar("limit factor kappa of eq. (12) (Table I)", "", gt=0, le=1, default=0.4)
    P_min: float = scalar("server power at zero load P_min, eq. (5) (Section IV)", "W", ge=0, le=1e6, default=176.0)
    P_max: float = scalar("server power at full load P_max, eq. (5) (Section IV)", "W", ge=0, le=1e6, default=396.0)
    lam: float = scalar("latency weight lambda, eqs. (8a)-(8b) (Table I; unit: see D1)", "1/s", gt=0, lt=1, default=0.5)
    rho: float = scalar("energy weight rho, eqs. (8a)-(8b) (Table I; unit: see D1)", "1/J", gt=0, lt=1, default=0.5)
    cost_units: str = choice(
        "eq. (8a) units (D1): 'raw' = lambda*L_total[s] + rho*E_total[J] (literal); 'normalized' = "
        "lambda*L_total/L_ref + rho*E_total/E_ref with L_ref, E_ref of local-only full allocation",
        ("raw", "normalized"),
        "raw",
    )
    energy_model: str = choice(
        "U_mt of eq. (5) (D2): 'average' = time-averaged utilisation over [0, T_mt] (literal, E = "
        "integral of "
        "the linear power model); 'peak' = sum of allocations held during all of T_mt",
        ("average", "peak"),
        "average",
    )
    capacity: str = choice(
        "eq. (8c) (D4): 'per-allocation' = each allocation <= kappa * remaining (literal); "
        "'aggregate' = also "
        "the allocations served by one server sum to <= its remaining resources",
        ("per-allocation", "aggregate"),
        "per-allocation",
    )

    def validate(self) -> None:
        super().validate()
        where = f"{KEY}: Instance"
        if abs(self.lam + self.rho - 1.0) > TOL:
            raise InvalidInputError(
                f"{where}.lam/rho: eq. (8b) requires lambda + rho = 1, got "
                f"{self.lam!r} + {self.rho!r} = {self.lam + self.rho!r}"
            )
        if self.P_max < self.P_min:
            raise InvalidInputError(f"{where}.P_max: eq. (5) needs P_max >= P_min, got {self.P_max} < {self.P_min}")
        if np.any(self.C_rem > self.C_cap * (1 + TOL)):
            m = int(np.flatnonzero(self.C_rem > self.C_cap * (1 + TOL))[0])
            raise InvalidInputError(f"{where}.C_rem: remaining resources exceed the capacity at server {m + 1}")
        if np.any(np.diag(self.B_rem) != 0):
            raise InvalidInputError(f"{where}.B_rem: diagonal must be 0 (no link from a server to itself)")
        if np.any((self.D > 0) != (self.F > 0)):
            m = int(np.flatnonzero((self.D > 0) != (self.F > 0))[0])
            raise InvalidInputError(f"{where}.D/F: server {m + 1} has D > 0 xor F > 0 (tasks have both)")
        if not np.any(self.D > 0):
            raise InvalidInputError(f"{where}.D: no server has a task in this slot (the paper skips such slots)")

    @property
    def spectral_eff(self) -> float:
        """log2(1 + eta) of eq. (1), eta converted from dB (D5)."""
        return float(np.log2(1.0 + 10.0 ** (self.eta_db / 10.0)))


@record
class Decision(Record):
    """Action of eqs. (11)-(12) for every server, in absolute units."""

    problem_key = KEY
    target: np.ndarray = array(
        "cooperative server n (1-based) that server m offloads to, 0 = none; eq. (11)",
        "",
        ("*",),
        integer=True,
    )
    a: np.ndarray = array("offloading ratio a_mdt, eqs. (8e), (12)", "", ("*",), ge=-1e6, le=1e6)
    d_local: np.ndarray = array(
        "computing allocated at server m to its local share d_mt, eqs. (3), (12)", "Hz", ("*",), ge=0, le=1e15
    )
    d_remote: np.ndarray = array(
        "computing allocated at the target n to m's offloaded share d_nt, eqs. (4), (12)", "Hz", ("*",), ge=0, le=1e15
    )
    b: np.ndarray = array(
        "bandwidth b_mnt allocated on the link m -> target, eqs. (1), (12)", "Hz", ("*",), ge=0, le=1e14
    )


def trivial_bound(inst: Instance) -> float:
    """A valid lower bound on eq. (8a) (min): latency (eq. 6) and energy (eq. 5) are non-negative."""
    return 0.0


# ------------------------------------------------------------------------------------------------------------
# Model equations, vectorized over a batch of decisions (arrays of shape (B, M))
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Costs:
    """Per-server and total quantities of a batch of decisions (unscaled)."""

    L_m: np.ndarray  # (B, M) max{L^compu_mt, L^trans_mnt + L^compu_mnt}, eq. (6)
    T_s: np.ndarray  # (B, M) maximum computing time T_mt, eq. (5)
    U_s: np.ndarray  # (B, M) utilisation U_mt, eq. (5) (D2)
    E_s: np.ndarray  # (B, M) energy E_mt, eq. (5)
    L_total: np.ndarray  # (B,) eq. (6)
    E_total: np.ndarray  # (B,) eq. (7)
    objective: np.ndarray  # (B,) eq. (8a)
    trans: np.ndarray = field(repr=False)  # (B, M) L^trans, eq. (2)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0/0 = 0 (no work takes no time); num>0 with den=0 gives inf (caught by check_feasible)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(num > 0, num / np.where(den > 0, den, 0.0), 0.0)
    return out


def costs_raw(
    inst: Instance,
    target: np.ndarray,
    a: np.ndarray,
    d_local: np.ndarray,
    d_remote: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """L_m, T_s, U_s, E_s, trans for a batch (no objective scaling)."""
    target = np.asarray(target, dtype=np.int64)
    a = np.where(target > 0, np.asarray(a, dtype=float), 0.0)  # no target: nothing offloaded (eq. 11)
    w_loc = (1.0 - a) * inst.D  # cycles computed locally, eq. (3)
    w_rem = a * inst.D  # cycles offloaded, eq. (4); equal proportion of size and cycles (Section III-B)
    tau_loc = _safe_div(w_loc, d_local)  # L^compu_mt = D_mt / d_mt, eq. (3)
    tau_rem = _safe_div(w_rem, d_remote)  # L^compu_mnt = D_nt / d_nt, eq. (4)
    trans = _safe_div(a * inst.F, b * inst.spectral_eff)  # eqs. (1)-(2): F_mnt / (b log2(1 + eta))
    L_m = np.maximum(tau_loc, trans + tau_rem)  # eq. (6)
    onehot = target[..., :, None] == np.arange(1, inst.M + 1)  # (B, m, s): m offloads to s
    T_s = np.maximum(tau_loc, np.where(onehot, tau_rem[..., :, None], 0.0).max(axis=-2))  # T_mt, eq. (5)
    cycles = w_loc + np.where(onehot, w_rem[..., :, None], 0.0).sum(axis=-2)
    dP = inst.P_max - inst.P_min
    if inst.energy_model == "average":
        # U_mt averaged over [0, T_mt]: sum_j d_j tau_j / (C T) = cycles / (C T) (D2)
        U_s = _safe_div(cycles, inst.C_cap * T_s)
        E_s = inst.P_min * T_s + dP * cycles / inst.C_cap  # eq. (5) = P_min T + dP U T
    else:
        held = np.where(w_loc > 0, d_local, 0.0) + np.where(
            onehot & (w_rem[..., :, None] > 0), d_remote[..., :, None], 0.0
        ).sum(axis=-2)
        U_s = held / inst.C_cap
        E_s = (inst.P_min + dP * U_s) * T_s  # eq. (5)
    return L_m, T_s, U_s, E_s, trans


def reference_costs(inst: Instance) -> tuple[float, float]:
    """L_ref, E_ref: latency and energy of local-only processing with full allocation kappa*C_rem (D1)."""
    M = inst.M
    z = np.zeros((1, M))
    L_m, _, _, E_s, _ = costs_raw(inst, np.zeros((1, M), dtype=np.int64), z, inst.kappa * inst.C_rem[None, :], z, z)
    return float(L_m.sum()), float(E_s.sum())


def weights(inst: Instance) -> tuple[float, float]:
    """Coefficients (w_L, w_E) with objective = w_L * L_total + w_E * E_total, eq. (8a) (D1)."""
    if inst.cost_units == "raw":
        return inst.lam, inst.rho
    L_ref, E_ref = reference_costs(inst)
    return inst.lam / L_ref, inst.rho / E_ref


def costs(
    inst: Instance,
    target: np.ndarray,
    a: np.ndarray,
    d_local: np.ndarray,
    d_remote: np.ndarray,
    b: np.ndarray,
) -> Costs:
    """Evaluate a batch of decisions (each array (B, M)); feasibility must be checked by the caller."""
    L_m, T_s, U_s, E_s, trans = costs_raw(inst, target, a, d_local, d_remote, b)
    L_total = L_m.sum(axis=-1)  # eq. (6)
    E_total = E_s.sum(axis=-1)  # eq. (7)
    wL, wE = weights(inst)
    return Costs(L_m, T_s, U_s, E_s, L_total, E_total, wL * L_total + wE * E_total, trans)  # eq. (8a)


def _check_shape(inst: Instance, dec: Decision) -> None:
    for name in ("target", "a", "d_local", "d_remote", "b"):
        arr = getattr(dec, name)
        if arr.shape != (inst.M,):
            raise InvalidInputError(f"{KEY}: Decision.{name}: expected shape (M={inst.M},), got {arr.shape}")


def check_feasible(inst: Instance, dec: Decision) -> list[str]:
    """Violated constraints (8b)-(8e), (11)-(12) of one decision, each naming its equation."""
    _check_shape(inst, dec)
    v: list[str] = []
    k = inst.kappa
    M = inst.M
    for m in range(M):
        s = m + 1
        t = int(dec.target[m])
        a = float(dec.a[m])
        if not 0.0 <= a <= 1.0:
            v.append(f"eq. (8e): a[{s}] = {a!r} is not in [0, 1]")
        if t < 0 or t > M:
            v.append(f"eq. (11): target[{s}] = {t} is not a server 1..M={M} or 0 (none)")
            continue
        if t == s:
            v.append(f"eq. (11): server {s} selects itself as cooperative server (needs n != m)")
            continue
        if inst.D[m] == 0 and (t != 0 or a != 0.0):
            v.append(f"Section III-C: server {s} has no task, its action must be 0 (target 0, a 0)")
        if t == 0 and a != 0.0:
            v.append(f"eq. (11): server {s} selects no cooperative server (u=0) but offloads a = {a!r}")
        if dec.d_local[m] > k * inst.C_rem[m] * (1 + TOL):
            v.append(
                f"eq. (8c)/(12): d_local[{s}] = {dec.d_local[m]:.6g} Hz exceeds kappa * C_rem[{s}] = "
                f"{k * inst.C_rem[m]:.6g} Hz (remaining resources)"
            )
        if t > 0:
            n = t - 1
            if dec.d_remote[m] > k * inst.C_rem[n] * (1 + TOL):
                v.append(
                    f"eq. (8c)/(12): d_remote[{s}] = {dec.d_remote[m]:.6g} Hz exceeds kappa * C_rem[{t}] = "
                    f"{k * inst.C_rem[n]:.6g} Hz (remaining resources of the cooperative server)"
                )
            if dec.b[m] > k * inst.B_rem[m, n] * (1 + TOL):
                v.append(
                    f"eq. (8d)/(12): b[{s}] = {dec.b[m]:.6g} Hz exceeds kappa * B_rem[{s},{t}] = "
                    f"{k * inst.B_rem[m, n]:.6g} Hz (remaining bandwidth of link {s}->{t})"
                )
        if 0.0 <= a <= 1.0 and inst.D[m] > 0:
            if a < 1.0 and dec.d_local[m] <= 0:
                v.append(
                    f"eq. (3): server {s} computes 1 - a = {1 - a:.6g} of its tasks locally with d_local = 0 "
                    "(infinite latency)"
                )
            if a > 0.0 and t > 0 and dec.d_remote[m] <= 0:
                v.append(f"eq. (4): server {s} offloads a = {a:.6g} with d_remote = 0 (infinite latency)")
            if a > 0.0 and t > 0 and dec.b[m] <= 0:
                v.append(f"eqs. (1)-(2): server {s} offloads a = {a:.6g} with bandwidth b = 0 (infinite latency)")
    if inst.capacity == "aggregate" and not v:
        tgt = dec.target
        a = np.where(tgt > 0, dec.a, 0.0)
        for s in range(M):
            used = (dec.d_local[s] if (1 - a[s]) * inst.D[s] > 0 else 0.0) + sum(
                float(dec.d_remote[m]) for m in range(M) if tgt[m] == s + 1 and a[m] * inst.D[m] > 0
            )
            if used > inst.C_rem[s] * (1 + TOL):
                v.append(
                    f"eq. (8c) aggregate: server {s + 1} serves allocations summing to {used:.6g} Hz > "
                    f"C_rem[{s + 1}] = {inst.C_rem[s]:.6g} Hz (remaining resources)"
                )
    return v


def evaluate(inst: Instance, dec: Decision) -> Metrics:
    """Objective eq. (8a) of one slot and the quantities of Fig. 6 (single source of the CTO objective)."""
    viol = check_feasible(inst, dec)
    if viol:
        return Metrics(float("nan"), False, tuple(viol))
    c = costs(inst, dec.target[None], dec.a[None], dec.d_local[None], dec.d_remote[None], dec.b[None])
    return Metrics(
        objective=float(c.objective[0]),
        feasible=True,
        values={
            "L_total_s": float(c.L_total[0]),
            "E_total_J": float(c.E_total[0]),
            "latency_per_server_s": c.L_m[0].tolist(),
            "energy_per_server_J": c.E_s[0].tolist(),
            "T_per_server_s": c.T_s[0].tolist(),
            "U_per_server": c.U_s[0].tolist(),
            "n_offloading": int(np.sum((dec.target > 0) & (dec.a > 0))),
            "mean_offload_ratio": float(np.mean(np.where(dec.target > 0, dec.a, 0.0)[inst.D > 0])),
        },
    )


def evaluate_batch(
    inst: Instance,
    target: np.ndarray,
    a: np.ndarray,
    d_local: np.ndarray,
    d_remote: np.ndarray,
    b: np.ndarray,
) -> np.ndarray:
    """Objectives of a batch of decisions the caller knows to be feasible (e.g. brute force candidates)."""
    return costs(inst, target, a, d_local, d_remote, b).objective


def full_allocation(inst: Instance, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d_local, d_remote, b at their eq. (12) maxima kappa * remaining for the given targets (batch-aware)."""
    target = np.asarray(target, dtype=np.int64)
    n = np.clip(target - 1, 0, inst.M - 1)
    k = inst.kappa
    m_idx = np.broadcast_to(np.arange(inst.M), target.shape)
    d_local = np.broadcast_to(k * inst.C_rem, target.shape).astype(float)
    d_remote = np.where(target > 0, k * inst.C_rem[n], 0.0)
    b = np.where(target > 0, k * inst.B_rem[m_idx, n], 0.0)
    return d_local, d_remote, b


def project(inst: Instance, dec: Decision) -> Decision:
    """Repair ``dec`` into feasibility (the one repair used by the env, the exact solvers and the heuristics).

    In this order:

    1. ``a`` is clipped to [0, 1] (eq. 8e);
    2. a server keeps its target only if it has tasks (Section III-C), offloads a > 0 and the target is a linked
       other server (eq. 11); otherwise target 0 and a = 0 (u_mt = 0 offloads nothing);
    3. every allocation is clipped to its eq. (12) box [0, kappa * remaining] (constraints 8c-8d), and an
       allocation that serves no work (local share (1 - a) D = 0, or no target) is 0;
    4. under ``capacity='aggregate'`` (D4) the allocations served by an overloaded server are scaled down
       proportionally so that they sum to its remaining resources (eq. 8c, aggregate).

    A decision that already satisfies 1-4 is returned with the same values (steps 1-3 only clip and zero).
    """
    _check_shape(inst, dec)
    M, k = inst.M, inst.kappa
    m_idx = np.arange(M)
    a = np.clip(np.asarray(dec.a, dtype=float), 0.0, 1.0)
    target = np.asarray(dec.target, dtype=np.int64)
    n_idx = np.clip(target - 1, 0, M - 1)
    linked = (target >= 1) & (target <= M) & (target != m_idx + 1) & (inst.B_rem[m_idx, n_idx] > 0)
    target = np.where(linked & (inst.D > 0) & (a > 0), target, 0)
    a = np.where(target > 0, a, 0.0)
    n_idx = np.clip(target - 1, 0, M - 1)
    d_loc = np.where((1 - a) * inst.D > 0, np.clip(dec.d_local, 0.0, k * inst.C_rem), 0.0)
    d_rem = np.where(target > 0, np.clip(dec.d_remote, 0.0, k * inst.C_rem[n_idx]), 0.0)
    b = np.where(target > 0, np.clip(dec.b, 0.0, k * inst.B_rem[m_idx, n_idx]), 0.0)
    if inst.capacity == "aggregate":
        for s in range(M):
            into = target == s + 1
            used = d_loc[s] + d_rem[into].sum()
            if used > inst.C_rem[s]:
                f = inst.C_rem[s] / used * (1 - 1e-12)
                d_loc[s] *= f
                d_rem[into] *= f
    return Decision(target=target, a=a, d_local=d_loc, d_remote=d_rem, b=b)


def local_only(inst: Instance) -> Decision:
    """Every server computes everything locally with d = kappa * C_rem (the D1 reference)."""
    M = inst.M
    return Decision(
        target=np.zeros(M, dtype=int),
        a=np.zeros(M),
        d_local=inst.kappa * inst.C_rem,
        d_remote=np.zeros(M),
        b=np.zeros(M),
    )


# ------------------------------------------------------------------------------------------------------------
# Generator (Table I, Section IV and D8-D11)
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Generator parameters (Table I / Section IV unless noted; see docs/problems/cto.md)."""

    M: int = 3  # Section IV: three MEC servers
    capacity_hz: float = 100e9  # Table I: CPU clock speed 100 GHz
    bandwidth_hz: float = 10e9  # Table I: bandwidth capacity 10 "Gbps", used as 10 GHz in eq. (1) (D5)
    occupancy_max: float = 0.5  # D8: remaining = capacity * (1 - U[0, occupancy_max]) (earlier slots' work)
    size_range_bits: tuple[float, float] = (5e6 * 8, 20e6 * 8)  # Section IV: U[5, 20] MB per task (D10)
    cycles_per_cpu: float = 100e9  # D10: normalised CPU request r needs r * 100 GHz * 1 s cycles
    horizon_s: float = 120.0  # length of the synthetic trace the slot is drawn from (D9)
    require_all_active: bool = True  # Section IV: "all the MEC servers have task requests"
    tasks_per_server: int | None = None  # if set: exactly this many tasks per server (scaling sweeps)
    trace: TraceParams = TraceParams()
    kappa: float = 0.4  # Table I
    eta_db: float = 10.0  # Table I (D5)
    P_min: float = 176.0  # Section IV
    P_max: float = 396.0  # Section IV
    lam: float = 0.5  # Table I
    rho: float = 0.5  # Table I


def _draw_slot(cfg: Config, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    M = cfg.M
    if cfg.tasks_per_server is not None:
        n = int(cfg.tasks_per_server)
        if n < 1:
            raise InvalidInputError(f"{KEY}: Config.tasks_per_server must be >= 1, got {n}")
        p = cfg.trace
        cpu = np.clip(rng.lognormal(np.log(p.cpu_median), p.cpu_sigma, size=(M, n)), 1e-4, 1.0)
        sizes = rng.uniform(*cfg.size_range_bits, size=(M, n))
        return (cpu * cfg.cycles_per_cpu).sum(axis=1), sizes.sum(axis=1)
    for _ in range(50):
        tr = synthetic_trace(M, cfg.horizon_s, rng, cfg.trace)
        sw = slot_workloads(
            tr,
            rng,
            n_slots=int(cfg.horizon_s),
            cycles_per_cpu=cfg.cycles_per_cpu,
            size_range_bits=cfg.size_range_bits,
        )
        active = (sw.n > 0).all(axis=1) if cfg.require_all_active else (sw.n > 0).any(axis=1)
        slots = np.flatnonzero(active)
        if slots.size:
            t = int(rng.choice(slots))
            return sw.D[t], sw.F[t]
    raise InvalidInputError(f"{KEY}: no active slot found in 50 synthetic traces (M={M}, horizon {cfg.horizon_s})")


def generate(cfg: Config, rng: np.random.Generator) -> Instance:
    """One slot of a synthetic Google-like trace with Table I resources (D8-D11)."""
    M = cfg.M
    if M < 1:
        raise InvalidInputError(f"{KEY}: Config.M must be >= 1, got {M}")
    D, F = _draw_slot(cfg, rng)
    cap = np.full(M, cfg.capacity_hz)
    C_rem = cap * (1.0 - rng.uniform(0.0, cfg.occupancy_max, size=M))
    B_rem = cfg.bandwidth_hz * (1.0 - rng.uniform(0.0, cfg.occupancy_max, size=(M, M)))
    np.fill_diagonal(B_rem, 0.0)
    return Instance(
        M=M,
        D=D,
        F=F,
        C_rem=C_rem,
        C_cap=cap,
        B_rem=B_rem,
        eta_db=cfg.eta_db,
        kappa=cfg.kappa,
        P_min=cfg.P_min,
        P_max=cfg.P_max,
        lam=cfg.lam,
        rho=cfg.rho,
    )


PRESETS: dict[str, Config] = {
    "tiny": Config(M=2, horizon_s=60.0),
    "small": Config(M=3),
    "paper": Config(M=3, require_all_active=False),
    "m4": Config(M=4),
}

VARIANTS: dict[str, dict[str, str]] = {
    "literal": {},
    "normalized": {"cost_units": "normalized"},
    "peak-utilisation": {"energy_model": "peak"},
    "aggregate-capacity": {"capacity": "aggregate"},
}

PROBLEM = ProblemSpec(
    key=KEY,
    title="CTO-TP: cooperative offloading among MEC servers, min lambda*latency + rho*energy per slot",
    sense="min",
    Instance=Instance,
    Decision=Decision,
    evaluate=evaluate,
    check_feasible=check_feasible,
    generate=generate,
    presets=PRESETS,
    variants=VARIANTS,
    bench_sizes=("small",),
    bench_variants=("literal", "normalized"),
    paper="Liu, Li, Vasilakos, Hussain, Simeonidou - Cooperative Task Offloading through Async. DRL in MEC",
    env="mecopt.envs.cto",
)
