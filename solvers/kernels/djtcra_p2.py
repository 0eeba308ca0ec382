"""DJTCRA's per-server subproblem P2 (eq. 17): maximise a sum of sigmoids of the allocated CPU under one budget.

Shared, numpy-only kernel (used by ``mecopt.envs.djtcra``, ``solvers.heuristics.djtcra`` and ``solvers.exact.djtcra``).
Sigmoidal programming branch and bound (after Udell & Boyd, "Maximizing a sum of sigmoids"; written from the
algorithm's description): each node is a box l <= x <= u; every term is replaced by its concave envelope on its
interval; the resulting separable concave problem with one budget constraint is solved through its Lagrange dual
(bisection over the breakpoints of the multiplier, then safeguarded Newton); the dual value is a proven upper bound,
the true value of the relaxed primal a lower bound; the node splits the term with the largest envelope gap at its
relaxed value.

All CPU speeds are in GHz (x = p / 1e9) so that every quantity is O(1).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mecopt.core import Deadline
from mecopt.problems.djtcra import Instance, coefficients

GHZ = 1e9
_BISECT_ITERS = 64


def expit(z: np.ndarray | float) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-z)) (bit-identical to ``scipy.special.expit`` on float64; no warning
    when exp overflows: the result is then 0)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


# ============================================================================================================
# Sigmoid terms f(x) = Lm * sigma(k - m / x), x >= 0 (GHz): QoE of eq. (17) as a function of the allocated CPU
# ============================================================================================================
@dataclass(frozen=True)
class Terms:
    """Parameters of n sigmoid terms: f_i(x) = Lm_i / (1 + exp(alpha_i (fixed_i + work_i / x - beta_i)))."""

    Lm: np.ndarray
    k: np.ndarray  # alpha (beta - fixed)
    m: np.ndarray  # alpha * work / 1e9 (x in GHz)

    @property
    def n(self) -> int:
        return int(self.Lm.shape[0])

    def take(self, idx: np.ndarray | list[int]) -> Terms:
        idx = np.asarray(idx, dtype=np.int64)
        return Terms(self.Lm[idx], self.k[idx], self.m[idx])


def make_terms(alpha: np.ndarray, beta: np.ndarray, Lm: np.ndarray, fixed: np.ndarray, work: np.ndarray) -> Terms:
    """Terms of eq. (17): latency = fixed + work / p (eqs. 8-9), QoE eq. (11)."""
    return Terms(
        np.asarray(Lm, float),
        np.asarray(alpha * (beta - fixed), float),
        np.asarray(alpha * work / GHZ, float),
    )


def f_val(t: Terms, x: np.ndarray, idx: Any = slice(None)) -> np.ndarray:
    """f(x) (eq. 11 with eqs. 8-9 substituted); f(0) = 0."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        z = t.k[idx] - t.m[idx] / x
    return t.Lm[idx] * expit(z)


def f_der(t: Terms, x: np.ndarray, idx: Any = slice(None)) -> np.ndarray:
    """f'(x) = Lm sigma'(z) m / x^2; f'(0) = 0 (limit)."""
    x = np.asarray(x, dtype=float)
    xs = np.where(x > 0, x, 1.0)
    s = expit(t.k[idx] - t.m[idx] / xs)
    return np.where(x > 0, t.Lm[idx] * s * (1 - s) * t.m[idx] / xs**2, 0.0)


def f_der2(t: Terms, x: np.ndarray, idx: Any = slice(None)) -> np.ndarray:
    """f''(x) = Lm sigma'(z) m / x^4 * ((1 - 2 sigma(z)) m - 2 x)."""
    x = np.asarray(x, dtype=float)
    xs = np.where(x > 0, x, 1.0)
    s = expit(t.k[idx] - t.m[idx] / xs)
    return np.where(x > 0, t.Lm[idx] * s * (1 - s) * t.m[idx] / xs**4 * ((1 - 2 * s) * t.m[idx] - 2 * xs), 0.0)


def inflection(t: Terms) -> np.ndarray:
    """The unique inflection point of each term: f'' > 0 before, < 0 after (sign of (1 - 2 sigma) m - 2x,
    which
    decreases strictly in x, is m > 0 at 0 and < 0 at m/2). Returns the upper end of the bisection bracket."""
    lo = np.zeros(t.n)
    hi = t.m / 2
    for _ in range(_BISECT_ITERS):
        mid = 0.5 * (lo + hi)
        s = expit(t.k - t.m / np.where(mid > 0, mid, 1e-300))
        right = (1 - 2 * s) * t.m - 2 * mid > 0
        lo = np.where(right, mid, lo)
        hi = np.where(right, hi, mid)
    return hi


@dataclass
class Envelope:
    """Concave envelope of each term on [l, u]: chord from (l, f(l)) with slope s up to w, then f on [w,
    u]."""

    l: np.ndarray
    u: np.ndarray
    w: np.ndarray
    s: np.ndarray
    fl: np.ndarray

    def take(self, idx: list[int] | np.ndarray) -> Envelope:
        idx = np.asarray(idx, dtype=np.int64)
        return Envelope(self.l[idx], self.u[idx], self.w[idx], self.s[idx], self.fl[idx])


def envelope(t: Terms, xi: np.ndarray, l: np.ndarray, u: np.ndarray, idx: Any = slice(None)) -> Envelope:
    """Concave envelope on [l, u] (Udell & Boyd): if l is past the inflection point f is concave there (w =
    l);
    otherwise w is the tangent point where f'(w) (w - l) = f(w) - f(l), or u when no tangent point exists
    (the envelope is then the chord). w is the lower end of the bisection bracket, so the chord stays above
    f."""
    l = np.asarray(l, float)
    u = np.asarray(u, float)
    fl = f_val(t, l, idx)
    xi_i = xi[idx]
    concave = l >= xi_i

    def hfun(w: np.ndarray) -> np.ndarray:
        return f_der(t, w, idx) * (w - l) - (f_val(t, w, idx) - fl)

    chord = hfun(u) >= 0
    lo = np.minimum(np.maximum(l, xi_i), u)
    hi = u.copy()
    for _ in range(_BISECT_ITERS):
        mid = 0.5 * (lo + hi)
        right = hfun(mid) >= 0
        lo = np.where(right, mid, lo)
        hi = np.where(right, hi, mid)
    w = np.where(concave, l, np.where(chord, u, lo))
    width = w - l
    s = np.where(width > 0, (f_val(t, w, idx) - fl) / np.where(width > 0, width, 1.0), f_der(t, l, idx))
    return Envelope(l, u, w, s, fl)


def env_val(t: Terms, e: Envelope, x: np.ndarray, idx: Any = slice(None)) -> np.ndarray:
    """Value of the concave envelope at x in [l, u]."""
    return np.where(x <= e.w, e.fl + e.s * (x - e.l), f_val(t, x, idx))


def respond(t: Terms, e: Envelope, lam: np.ndarray | float, idx: Any = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """argmax and a rigorous upper bound of max_{x in [l,u]} envelope(x) - lam x, per term.

    lam >= s: x = l (the chord and the concave part all have slope <= lam); f'(u) >= lam: x = u; otherwise the
    stationary point f'(x) = lam in [w, u], found by a safeguarded Newton-bisection; for it the bound
    phi(a) + (f'(a) - lam)(b - a) over the final bracket [a, b] holds by concavity.
    """
    lam = np.broadcast_to(np.asarray(lam, float), e.l.shape)
    at_l = lam >= e.s
    fpu = f_der(t, e.u, idx)
    at_u = (~at_l) & (fpu >= lam)
    inner = ~(at_l | at_u)
    x = np.where(at_l, e.l, e.u)
    val = np.where(at_l, e.fl - lam * e.l, env_val(t, e, e.u, idx) - lam * e.u)
    if np.any(inner):
        ii = np.flatnonzero(inner)
        sub = ii if isinstance(idx, slice) else np.asarray(idx)[ii]
        lmb = lam[ii]
        a = e.w[ii].copy()
        b = e.u[ii].copy()
        Lm, k, m = t.Lm[sub], t.k[sub], t.m[sub]
        log_target = np.log(lmb / (Lm * m))
        # Newton on G(v) = log f'(e^v) - log lam in v = log x (f' > lam left of the root, < lam right of it);
        # G'(v) = ((1 - 2 sigma) m - 2x) / x < 0 on the concave part; bisection whenever Newton leaves [a, b]
        xc = np.sqrt(np.maximum(a, 1e-300) * b)
        for _ in range(_BISECT_ITERS):
            z = k - m / xc
            sg = expit(z)
            G = -np.logaddexp(0.0, -z) - np.logaddexp(0.0, z) - 2 * np.log(xc) - log_target
            right = G > 0
            a = np.where(right, xc, a)
            b = np.where(right, b, xc)
            dG = ((1 - 2 * sg) * m - 2 * xc) / xc
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                xn = xc * np.exp(-G / dG)
            ok = (dG < 0) & (xn >= a) & (xn <= b)
            done = (ok & (np.abs(xn - xc) <= 1e-13 * xc)) | (b - a <= 1e-15 * b)
            xc = np.where(ok, xn, 0.5 * (a + b))
            if np.all(done):
                break
        xc = np.clip(xc, a, b)
        g = f_der(t, xc, sub) - lmb
        x[ii] = xc
        # concavity: phi(x*) <= phi(xc) + phi'(xc) (x* - xc) <= phi(xc) + |phi'(xc)| (b - a)
        val[ii] = f_val(t, xc, sub) - lmb * xc + np.abs(g) * (b - a)
    return x, val


# ============================================================================================================
# P2: sigmoidal programming branch and bound (one server)
# ============================================================================================================
@dataclass
class P2Result:
    x: np.ndarray  # GHz, feasible (sum <= cap)
    lower: float  # true objective at x
    upper: float  # proven upper bound
    status: str  # "optimal" | "time_limit"
    nodes: int


@dataclass(order=True)
class _Node:
    neg_ub: float
    seq: int
    l: np.ndarray = field(compare=False)
    u: np.ndarray = field(compare=False)
    env: Envelope = field(compare=False)
    x: np.ndarray = field(compare=False)


def relax(t: Terms, e: Envelope, cap: float) -> tuple[float, np.ndarray]:
    """Solve max sum envelope_i(x_i) s.t. sum x <= cap, x in [l, u] through its Lagrange dual.

    The response x_i(lam) decreases in lam, continuously except for a jump from w_i down to l_i at lam = s_i
    (the
    chord slope). We first bisect over these breakpoints, then solve sum x(lam) = cap on the remaining
    continuous
    piece by safeguarded Newton (d x_i / d lam = 1 / f_i''(x_i)), or stop at the breakpoint where the sum
    jumps
    over cap (that term takes the leftover budget). Returns a proven upper bound (the dual value, minimum over
    the multipliers tried) and a feasible primal x.
    """
    x0, v0 = respond(t, e, 0.0)
    if x0.sum() <= cap:
        return float(v0.sum()), x0
    smax = float(np.max(e.s))
    lo, hi = 0.0, smax * (1 + 1e-12) + 1e-300
    x_hi, v_hi = respond(t, e, hi)
    best_ub = hi * cap + float(v_hi.sum())
    jumps = np.unique(e.s[(e.w > e.l) & (e.s > 0)])
    while True:
        inside = jumps[(jumps > lo) & (jumps < hi)]
        if inside.size == 0:
            break
        b = float(inside[inside.size // 2])
        xb, vb = respond(t, e, b)
        best_ub = min(best_ub, b * cap + float(vb.sum()))
        if xb.sum() > cap:
            lo = b
        else:
            hi, x_hi = b, xb
    # S(hi-) : the terms whose breakpoint is hi sit at their w-side response just below hi
    lam_m = hi * (1 - 1e-15)
    x_m, v_m = respond(t, e, lam_m)
    best_ub = min(best_ub, lam_m * cap + float(v_m.sum()))
    if x_m.sum() > cap:
        # the sum jumps over cap at hi: lam* = hi, the jumping terms share the leftover (fractional, on
        # chords)
        x = x_hi.copy()
        left = cap - x.sum()
        for i in np.argsort(-(x_m - x_hi)):
            extra = min(max(x_m[i] - x[i], 0.0), left)
            if extra <= 0:
                break
            x[i] += extra
            left -= extra
    else:
        # continuous piece on (lo, hi): safeguarded Newton on S(lam) = cap
        lam = 0.5 * (lo + hi)
        x = x_m
        for _ in range(_BISECT_ITERS):
            xl, vl = respond(t, e, lam)
            best_ub = min(best_ub, lam * cap + float(vl.sum()))
            S = xl.sum()
            if S > cap:
                lo = lam
            else:
                hi = lam
            x = xl
            if abs(S - cap) <= 1e-13 * cap or hi - lo <= 1e-15 * hi:
                break
            interior = (xl > e.w) & (xl < e.u)
            d2 = f_der2(t, xl)
            dS = float(np.sum(np.where(interior & (d2 < 0), 1.0 / np.where(d2 < 0, d2, -1.0), 0.0)))
            nxt = lam - (S - cap) / dS if dS < 0 else -1.0
            lam = nxt if lo < nxt < hi else 0.5 * (lo + hi)
    return best_ub, _fit(x, cap)


def _fit(x: np.ndarray, cap: float) -> np.ndarray:
    """Scale x down (by rounding-level factors) until sum(x) <= cap holds in floating point."""
    x = np.maximum(x, 0.0)
    while x.sum() > cap:
        x = x * (cap / x.sum()) * (1 - 1e-15)
    return x


def solve_p2(
    t: Terms,
    cap_ghz: float,
    *,
    rel_gap: float = 1e-9,
    time_limit: float | None = None,
    max_nodes: int = 200000,
    xi: np.ndarray | None = None,
    env0: Envelope | None = None,
) -> P2Result:
    """Maximise sum_i f_i(x_i) s.t. sum_i x_i <= cap, x >= 0 (P2, eq. 17 with C2, C3) to a proven gap."""
    n = t.n
    if n == 0:
        return P2Result(np.zeros(0), 0.0, 0.0, "optimal", 0)
    deadline = Deadline(time_limit)
    xi = inflection(t) if xi is None else xi
    l0 = np.zeros(n)
    u0 = np.full(n, cap_ghz)
    e0 = envelope(t, xi, l0, u0) if env0 is None else env0
    ub0, x0 = relax(t, e0, cap_ghz)
    best_x = x0
    best_lb = float(f_val(t, x0).sum())
    heap: list[_Node] = [_Node(-ub0, 0, l0, u0, e0, x0)]
    seq = 1
    nodes = 1
    closed_ub = -math.inf  # max UB of pruned (fathomed) nodes
    status = "optimal"
    while heap:
        top = heap[0]
        ub_open = -top.neg_ub
        if ub_open - best_lb <= rel_gap * max(abs(best_lb), 1e-12) or ub_open <= best_lb:
            break
        if deadline.expired() or nodes >= max_nodes:
            status = "time_limit"
            break
        node = heapq.heappop(heap)
        gap = env_val(t, node.env, node.x) - f_val(t, node.x)
        i = int(np.argmax(gap))
        if gap[i] <= 0:  # the envelope is exact at x: this node is solved
            closed_ub = max(closed_ub, -node.neg_ub)
            continue
        split = float(node.x[i])
        for lo_i, hi_i in ((node.l[i], split), (split, node.u[i])):
            l = node.l.copy()
            u = node.u.copy()
            l[i], u[i] = lo_i, hi_i
            if l.sum() > cap_ghz:  # infeasible box
                continue
            env = Envelope(
                node.env.l.copy(), node.env.u.copy(), node.env.w.copy(), node.env.s.copy(), node.env.fl.copy()
            )
            one = envelope(t, xi, l[i : i + 1], u[i : i + 1], idx=[i])
            env.l[i], env.u[i], env.w[i], env.s[i], env.fl[i] = (
                one.l[0],
                one.u[0],
                one.w[0],
                one.s[0],
                one.fl[0],
            )
            ub, x = relax(t, env, cap_ghz)
            nodes += 1
            lb = float(f_val(t, x).sum())
            if lb > best_lb:
                best_lb, best_x = lb, x
            ub = min(ub, -node.neg_ub)
            if ub - best_lb <= rel_gap * max(abs(best_lb), 1e-12):
                closed_ub = max(closed_ub, ub)
                continue
            heapq.heappush(heap, _Node(-ub, seq, l, u, env, x))
            seq += 1
    upper = max([best_lb, closed_ub] + [-nd.neg_ub for nd in heap])
    if upper - best_lb > rel_gap * max(abs(best_lb), 1e-12):
        status = "time_limit"
    return P2Result(best_x, best_lb, upper, status, nodes)


# ============================================================================================================
# P2 on every server of a given task allocation y
# ============================================================================================================
#: the memo of :func:`p2_memo` while one is open: (terms, capacity) -> certified P2 result
_P2_MEMO: dict[tuple[bytes, bytes, bytes, float], P2Result] | None = None


class p2_memo:  # noqa: N801 (used as a context manager: ``with p2_memo(): ...``)
    """Within the block, :func:`allocate_p2` solves each distinct per-server P2 (the same users' terms, the same
    capacity, no time limit) once and reuses the result: identical values, for evaluations that meet the same
    subproblems again (the RCS fallback's re-allocation, several policies on one instance set). ``memo``: a dict to
    keep (and reuse) across blocks; default a fresh one. Not for timing measurements (a repeated decision would be
    a cache hit). A nested block without ``memo`` shares the outer one."""

    def __init__(self, memo: dict[tuple[bytes, bytes, bytes, float], P2Result] | None = None) -> None:
        self.memo = memo
        self.outer: dict[tuple[bytes, bytes, bytes, float], P2Result] | None = None

    def __enter__(self) -> None:
        global _P2_MEMO
        self.outer = _P2_MEMO
        _P2_MEMO = self.memo if self.memo is not None else ({} if self.outer is None else self.outer)

    def __exit__(self, *exc: object) -> None:
        global _P2_MEMO
        _P2_MEMO = self.outer


def _solve_p2_memo(t: Terms, cap_ghz: float, time_limit: float | None) -> P2Result:
    """solve_p2 through the open memo (only without a time limit: a time-limited result depends on the clock)."""
    if _P2_MEMO is None or time_limit is not None:
        return solve_p2(t, cap_ghz, time_limit=time_limit)
    key = (t.Lm.tobytes(), t.k.tobytes(), t.m.tobytes(), cap_ghz)
    r = _P2_MEMO.get(key)
    if r is None:
        r = _P2_MEMO[key] = solve_p2(t, cap_ghz)
    return r


def allocate_p2(inst: Instance, y: np.ndarray, time_limit: float | None = None) -> tuple[np.ndarray, bool]:
    """P2 (eq. 17) on every capacitated server; returns p (cycle/s) and whether every P2 was certified. Inside
    :func:`p2_memo`, a subproblem solved before is not solved again."""
    co = coefficients(inst)
    p = np.zeros(inst.U)
    certified = True
    servers = ([0] if co.rcs_shared else []) + list(range(1, inst.H + 1))
    for o in servers:
        idx = np.flatnonzero(y == o)
        if idx.size == 0:
            continue
        t = make_terms(inst.alpha[idx], inst.beta[idx], inst.Lmax[idx], co.fixed[idx, o], co.work[idx, o])
        r = _solve_p2_memo(t, float(co.capacity[o]) / GHZ, time_limit)
        certified &= r.status == "optimal"
        p[idx] = r.x * GHZ
    return p, certified
