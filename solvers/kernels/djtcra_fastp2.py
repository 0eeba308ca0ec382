"""Fast batched P2 of DJTCRA (eq. 17 with C2, C3): a heuristic CPU allocation for the environment's inner loop.

P2 on one server: maximise sum_i f_i(x_i) s.t. sum_i x_i <= C, x >= 0, with (x in GHz)

    f_i(x) = Lm_i * sigma(k_i - m_i / x),   k = alpha (beta - d^c - d^f),   m = alpha eta V^T kappa / 1e9,

i.e. the QoE of eq. (11) with the latency of eqs. (8)-(9) substituted. The certified solver (sigmoidal-programming
branch and bound, ``solvers.exact.djtcra.solve_p2``) costs about a second per environment step at paper size;
this kernel solves every server of a batch of states at once, in numpy, over padded (rows x users) arrays (a row
is one server of one state), without branch and bound:

1. **Concave envelopes in closed form.** With t = m / x, f = Lm sigma(k - t). The envelope of f on [0, C] is the
   chord from the origin to the tangent point w = m / t_w, t_w sigma(t_w - k) = 1, i.e.
   t_w = 1 + W(e^(k-1)) (Lambert W, by Newton), then f itself; when w >= C the envelope is the chord to C.
   Its slope s = f(w) / w is the breakpoint of the term's dual response.
2. **Dual of the envelope relaxation.** For a price lambda = e^mu a term answers 0 if lambda > s, otherwise the
   point of its concave branch where f'(x) = lambda. In t, phi(t) = log f' = log(Lm/m) + 2 log t - softplus(t-k)
   - softplus(k-t) is strictly concave (phi'' = -2/t^2 - 2 sigma'(t-k) < 0), so Newton from either side of the
   root lands left of it and then climbs monotonically. The total demand drops by a jump at every breakpoint;
   a binary search over the sorted breakpoints finds the breakpoint rank K where the demand crosses C. If it
   crosses inside a continuous piece, the relaxation's solution is feasible and exact (the envelope equals f
   there): it is the global optimum of P2. Otherwise the term K is fractional on its chord (Udell and Boyd's
   single-term rounding gap) and the relaxation value is an upper bound.
3. **Rounding and repair (local search).** A set of served users is solved exactly on the concave branches
   (KKT: one common lambda with sum x = C; safeguarded Newton on the price, inner Newton steps warm-started).
   The first pass solves the rounded set (the K - 1 terms with the largest breakpoints: the fractional term gets
   0 CPU) together with its neighbours: serve one of the ``window`` unserved users with the largest Lagrangian
   profit max_x f(x) - lambda x at the current price, drop one of the ``window`` served users with the smallest,
   or swap such a pair (serving term K, the other rounding, is one of them). All 1 + 2w + w^2 sets of every row
   are solved in one vectorised pass and the best kept; up to ``rounds`` passes while a row improves. Users
   outside the served set get 0 CPU (QoE 0, as in ``evaluate``). Defaults: window 2, rounds 2.

All constraints are enforced exactly: x >= 0 and sum x <= C in floating point (a sum above C (1 - 1e-13) is
rescaled to that). The result is feasible, never above the optimum, not certified; ``FastP2Result.upper`` is the
envelope relaxation's value (an upper bound up to the Newton tolerances) and ``exact`` marks rows whose
relaxation had no fractional term (then x is optimal). Accuracy and speed against the certified P2 are measured in
``tests/test_djtcra_fastp2.py`` (``python -m tests.test_djtcra_fastp2``) and reported in docs/problems/djtcra.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mecopt.problems.djtcra import Instance, coefficients

GHZ = 1e9
_NEWTON_ITERS = 60  # cap on every (quadratically convergent, safeguarded) Newton loop
_BISECT_ITERS = 60
_TOL = 1e-12  # relative step of the inner Newton (t)
_PRICE_TOL = 1e-10  # relative |sum x - cap| at which a price solve stops (the rest is rescaled away)
_INNER_STEPS = _NEWTON_ITERS  # inner Newton steps per price update in _solve_sets (all: nested; fastest)


def _expit(z: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-z)); 0 without a warning where exp overflows."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _log_dsig(a: np.ndarray) -> np.ndarray:
    """log(sigma(a) sigma(-a)) = -(softplus(a) + softplus(-a)) = -|a| - 2 log1p(e^-|a|)."""
    b = np.abs(a)
    return -b - 2.0 * np.log1p(np.exp(-b))


@dataclass(frozen=True)
class Rows:
    """Padded P2 instances, one per row: f_ri(x) = Lm_ri sigma(k_ri - m_ri / x) (x in GHz), sum_i x_ri <= cap_r.

    ``valid`` marks the real terms; padded entries hold harmless dummies and are never allocated.
    """

    Lm: np.ndarray  # (R, n)
    k: np.ndarray  # (R, n)
    m: np.ndarray  # (R, n) > 0
    cap: np.ndarray  # (R,) GHz > 0
    valid: np.ndarray  # (R, n) bool

    @staticmethod
    def make(Lm: np.ndarray, k: np.ndarray, m: np.ndarray, cap: np.ndarray, valid: np.ndarray | None = None) -> Rows:
        Lm = np.atleast_2d(np.asarray(Lm, dtype=float))
        valid = np.ones(Lm.shape, dtype=bool) if valid is None else np.atleast_2d(np.asarray(valid, dtype=bool))
        k = np.atleast_2d(np.asarray(k, dtype=float))
        m = np.atleast_2d(np.asarray(m, dtype=float))
        cap = np.atleast_1d(np.asarray(cap, dtype=float))
        valid = valid & (Lm > 0) & (m > 0) & (cap[:, None] > 0)
        return Rows(np.where(valid, Lm, 1.0), np.where(valid, k, 0.0), np.where(valid, m, 1.0), cap, valid)


@dataclass(frozen=True)
class FastP2Result:
    x: np.ndarray  # (R, n) GHz, feasible: x >= 0, sum_i x_ri <= cap_r; 0 on padding
    value: np.ndarray  # (R,) true objective sum_i f_ri(x_ri)
    upper: np.ndarray  # (R,) value of the envelope relaxation (an upper bound on P2 up to the inner tolerances)
    exact: np.ndarray  # (R,) bool: the relaxation had no fractional term, so x is optimal (value == upper)


# ------------------------------------------------------------------------------------------------------------
# Per-term quantities in t = m / x
# ------------------------------------------------------------------------------------------------------------
def _phi(logc: np.ndarray, k: np.ndarray, t: np.ndarray) -> np.ndarray:
    """phi(t) = log f'(x) at x = m / t: log(Lm/m) + 2 log t + log(sigma(k - t) sigma(t - k))."""
    return logc + 2.0 * np.log(t) + _log_dsig(t - k)


def _dphi(k: np.ndarray, t: np.ndarray) -> np.ndarray:
    """phi'(t) = 2 / t + tanh((k - t) / 2) (decreasing: phi is concave)."""
    return 2.0 / t + np.tanh(0.5 * (k - t))


def _inflection_t(k: np.ndarray) -> np.ndarray:
    """t of the inflection point of f (the maximum of f': phi'(t) = 0; phi' decreases). The root lies in
    [max(2, k), max(2, k) + 4] (phi' < 0 at the right end: tanh(2) > 2/6); Newton safeguarded by that bracket.
    A root off by rounding is harmless: ``_branch`` sends a non-positive slope to a bound."""
    lo = np.maximum(2.0, k)
    hi = lo + 4.0
    t = lo + 1.0
    done = np.zeros(k.shape, dtype=bool)
    for _ in range(_NEWTON_ITERS):
        th = np.tanh(0.5 * (k - t))
        g = 2.0 / t + th
        dg = -2.0 / (t * t) - 0.5 * (1.0 - th * th)
        lo = np.where(g >= 0, t, lo)
        hi = np.where(g >= 0, hi, t)
        tn = t - g / dg
        tn = np.where((tn >= lo) & (tn <= hi), tn, 0.5 * (lo + hi))
        newly = np.abs(tn - t) <= 1e-14 * t
        t = np.where(done, t, tn)  # every element stops on its own (batch-independent results)
        done |= newly
        if done.all():
            break
    return t


def _tangent_t(k: np.ndarray) -> np.ndarray:
    """t_w = 1 + W(e^(k-1)): the tangent point from the origin, t sigma(t - k) = 1. W(e^a) = e^v where
    e^v + v = a; Newton on this convex increasing function from v0 = log softplus(a) >= v* converges
    monotonically (W(e^a) <= log(1 + e^a) for every a)."""
    a = k - 1.0
    v = np.log(np.logaddexp(0.0, a))
    done = np.zeros(k.shape, dtype=bool)
    for _ in range(_NEWTON_ITERS):
        ev = np.exp(v)
        step = (ev + v - a) / (ev + 1.0)
        newly = np.abs(step) <= 1e-15 * np.maximum(1.0, np.abs(v))
        v = np.where(done, v, v - step)
        done |= newly
        if done.all():
            break
    return 1.0 + np.exp(v)


@dataclass(frozen=True)
class _Prep:
    logc: np.ndarray  # log(Lm / m)
    tC: np.ndarray  # m / cap: x = cap
    txi: np.ndarray  # inflection
    phiC: np.ndarray  # phi(tC)
    phixi: np.ndarray  # phi(txi) = max log f'
    jump: np.ndarray  # x at which the term joins (w, or cap for a chord envelope)
    logs: np.ndarray  # log of the chord slope (breakpoint), -inf on padding


def _prepare(r: Rows) -> _Prep:
    logc = np.log(r.Lm / r.m)
    tC = r.m / r.cap[:, None]
    txi = np.maximum(_inflection_t(r.k), tC)
    tw = np.maximum(_tangent_t(r.k), tC)  # chord to cap when the tangent point lies beyond cap
    jump = r.m / tw
    logs = np.log(r.Lm) + np.log(_expit(r.k - tw)) - np.log(jump)
    logs = np.where(r.valid, logs, -np.inf)
    return _Prep(logc, tC, txi, _phi(logc, r.k, tC), _phi(logc, r.k, txi), jump, logs)


def _phi_dphi(logc: np.ndarray, k: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi(t) and phi'(t) together (one exp, one log1p, one tanh)."""
    a = t - k
    b = np.abs(a)
    return logc + 2.0 * np.log(t) - b - 2.0 * np.log1p(np.exp(-b)), 2.0 / t - np.tanh(0.5 * a)


def _branch(
    k: np.ndarray,
    logc: np.ndarray,
    tC: np.ndarray,
    txi: np.ndarray,
    mu: np.ndarray,
    t0: np.ndarray,
    max_iter: int = _NEWTON_ITERS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t(mu) on the concave branch, clipped to [tC, txi]: the root of phi(t) = mu (tC if phi(tC) >= mu: x = cap;
    txi if mu >= max phi). Newton from any start in [tC, txi]: the first step from the right of the root lands
    left of it (phi is concave), then the iterates climb monotonically (phi' >= 0 on [tC, txi]; a zero slope
    sends the step to a bound). So after at least one step t <= t(mu), i.e. x = m/t is never below the exact
    response, even when ``max_iter`` stops early. Every element stops on its own (a term's result does not depend
    on the other terms of the batch). Returns t, the per-element convergence flags and phi' at the last step."""
    t = np.minimum(np.maximum(t0, tC), txi)
    done = np.zeros(t.shape, dtype=bool)
    d = np.ones(t.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_iter):
            ph, d = _phi_dphi(logc, k, t)
            tn = np.minimum(np.maximum(t + (mu - ph) / np.maximum(d, 1e-300), tC), txi)
            newly = np.abs(tn - t) <= _TOL * t
            t = np.where(done, t, tn)
            done |= newly
            if done.all():
                break
    return t, done, d


def _segsum(w: np.ndarray, seg: np.ndarray, G: int) -> np.ndarray:
    """Per-segment sums, accumulated in element order (independent of the other segments)."""
    return np.bincount(seg, weights=w, minlength=G)


# ------------------------------------------------------------------------------------------------------------
# KKT on a fixed active set: one price for all served terms, sum x = cap
# ------------------------------------------------------------------------------------------------------------
def _solve_sets(
    r: Rows, p: _Prep, act: np.ndarray, mu0: np.ndarray, t0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """x (R, c, n) maximising sum_{i in A} f_i on the concave branches with sum x = cap, for c active sets per row.

    The price mu solves S(mu) = sum_A m / t(mu) = cap by Newton safeguarded with a bracket (S decreases in mu;
    dS/dmu = -sum m / (t^2 phi'(t)) over unclipped terms), started at ``mu0`` (R, c) and the inner solves at ``t0``
    (R, n; default x = cap). Only the served terms are
    computed (flattened, one segment per set). When even the inflection points do not fit (S(max phi) > cap) the
    set cannot be served on its concave branches: the inflection points are scaled down to fit (a feasible, poor
    candidate). Returns x and the final price mu (R, c).
    """
    R, c, n = act.shape
    G = R * c
    rr, cc, ii = np.nonzero(act)
    seg = rr * c + cc
    k, m = r.k[rr, ii], r.m[rr, ii]
    logc, tC, txi = p.logc[rr, ii], p.tC[rr, ii], p.txi[rr, ii]
    capg = np.repeat(r.cap, c)
    cnt = np.bincount(seg, minlength=G)
    nz = np.flatnonzero(cnt)
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])[nz]
    lo = np.zeros(G)  # empty sets keep a finite dummy bracket (they are never iterated)
    hi = np.zeros(G)
    if nz.size:
        lo[nz] = np.minimum.reduceat(p.phiC[rr, ii], starts)  # S(lo) >= cap: that term sits at x = cap
        hi[nz] = np.maximum.reduceat(p.phixi[rr, ii], starts)  # every term at its inflection point
    xxi = m / txi
    fits = _segsum(xxi, seg, G) <= capg
    live = (cnt >= 2) & fits & (hi > lo)
    mu = np.clip(np.asarray(mu0, dtype=float).reshape(G), lo, hi)
    mu = np.where(np.isfinite(mu), mu, 0.5 * (lo + hi))
    t = tC.copy() if t0 is None else np.minimum(np.maximum(t0[rr, ii], tC), txi)
    dx = dx_old = hi - lo
    for _ in range(_NEWTON_ITERS * 2):
        if not np.any(live):
            break
        le = np.flatnonzero(live[seg])
        sl = seg[le]
        # a few warm-started inner steps only: x >= the exact response, so S <= cap is conclusive (hi = mu, then a
        # Newton step from the approximate S); S > cap is conclusive (lo = mu) only once the segment's inner
        # solves have converged, otherwise the price stays and the inner steps continue
        ts, dn, d = _branch(k[le], logc[le], tC[le], txi[le], mu[sl], t[le], max_iter=_INNER_STEPS)
        t[le] = ts
        x = m[le] / ts
        S = _segsum(x, sl, G)
        settled = _segsum((~dn).astype(float), sl, G) == 0
        inner = (ts > tC[le] * (1 + 1e-12)) & (ts < txi[le] * (1 - 1e-12)) & (d > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dS = -_segsum(np.where(inner, x / (ts * np.where(inner, d, 1.0)), 0.0), sl, G)
            nxt = mu - (S - capg) / dS
        over = S > capg
        lo = np.where(live & over & settled, mu, lo)
        hi = np.where(live & ~over, mu, hi)
        # rtsafe-style safeguard: Newton only strictly inside the bracket and while its steps at least halve
        # every two iterations (S has infinite slope where a term reaches its inflection point, and Newton can
        # cycle there); otherwise bisect
        ok = np.isfinite(nxt) & (nxt > lo) & (nxt < hi) & (2.0 * np.abs(nxt - mu) <= np.abs(dx_old))
        nxt = np.where(ok, nxt, 0.5 * (lo + hi))
        tiny = hi - lo <= 1e-14 * np.maximum(1.0, np.abs(hi))
        conv = (settled & (np.abs(S - capg) <= _PRICE_TOL * capg)) | tiny
        move = live & ~conv & (settled | ~over)
        dx_old = np.where(move, dx, dx_old)
        dx = np.where(move, nxt - mu, dx)
        mu = np.where(move, nxt, mu)
        live &= ~conv
    xe = np.where(fits[seg], m / t, xxi)
    xe = np.where(cnt[seg] == 1, capg[seg], xe)  # one served term takes the whole capacity
    x = np.zeros((R, c, n))
    x[rr, cc, ii] = xe
    return _fit(x, r.cap[:, None]), mu.reshape(R, c)


def _fit(x: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """x >= 0 and sum_i x_i <= cap in floating point, whatever the summation order: a sum above
    cap (1 - 1e-13) is rescaled to that (a change of the order of the solver's tolerance)."""
    x = np.maximum(x, 0.0)
    target = cap * (1 - 1e-13)
    s = np.cumsum(x, axis=-1)[..., -1]
    bad = s > target
    return np.where(bad[..., None], x * (target / np.where(bad, s, 1.0))[..., None], x)


def _values(r: Rows, x: np.ndarray) -> np.ndarray:
    """sum_i f_i(x_i) over the last axis (sequential sum); x is (R, n) or (R, c, n)."""
    sh = (slice(None),) + (None,) * (x.ndim - 2) + (slice(None),)
    Lm, k, m, valid = r.Lm[sh], r.k[sh], r.m[sh], r.valid[sh]
    pos = valid & (x > 0)
    f = np.where(pos, Lm * _expit(k - m / np.where(pos, x, 1.0)), 0.0)
    return np.cumsum(f, axis=-1)[..., -1]


# ------------------------------------------------------------------------------------------------------------
# The solver
# ------------------------------------------------------------------------------------------------------------
def _profit(r: Rows, p: _Prep, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each term's best Lagrangian profit on its concave branch at the row price e^mu: max_x f(x) - e^mu x over
    x = m/t, t in [tC, txi] (R, n); it ranks the candidates of the local search (larger: more worth serving).
    Also returns that x and -dx/dmu (0 where x sits at a bound), from which a candidate set's price is predicted
    by one Newton step."""
    t, _, _ = _branch(r.k, p.logc, p.tC, p.txi, mu[:, None], p.tC)
    x = r.m / t
    d = _dphi(r.k, t)
    free = r.valid & (t > p.tC * (1 + 1e-12)) & (t < p.txi * (1 - 1e-12)) & (d > 0)
    slope = np.where(free, x / (t * np.where(free, d, 1.0)), 0.0)
    score = np.where(r.valid, r.Lm * _expit(r.k - t) - np.exp(mu)[:, None] * x, -np.inf)
    return score, np.where(r.valid, x, 0.0), slope


def _predict_mu(mu: np.ndarray, cand: np.ndarray, x: np.ndarray, slope: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """One Newton step on sum_{i in set} x_i(mu) = cap from the current price, per candidate set (R, c)."""
    S = np.cumsum(np.where(cand, x[:, None, :], 0.0), axis=-1)[..., -1]  # sequential sums: batch-independent
    D = np.cumsum(np.where(cand, slope[:, None, :], 0.0), axis=-1)[..., -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = (S - cap[:, None]) / D
    return mu[:, None] + np.where(np.isfinite(step), step, 0.0)


def _moves(A: np.ndarray, score: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Candidate sets around A (R, n): drop one of the ``window`` served terms with the lowest score, serve one of
    the ``window`` unserved terms with the highest, or swap such a pair. Returns (R, 2w + w^2, n)."""
    R, n = A.shape
    w = min(window, n)
    rows = np.arange(R)[:, None]
    weak = np.argsort(np.where(A, score, np.inf), axis=1, kind="stable")[:, :w]  # served, weakest first
    strong = np.argsort(np.where(valid & ~A, -score, np.inf), axis=1, kind="stable")[:, :w]
    weak_ok = A[rows, weak]
    strong_ok = (valid & ~A)[rows, strong]
    eye = np.eye(n, dtype=bool)
    drop = eye[weak] & weak_ok[..., None]  # (R, w, n)
    add = eye[strong] & strong_ok[..., None]
    swap = drop[:, :, None, :] | add[:, None, :, :]
    swap &= drop.any(axis=2)[:, :, None, None] & add.any(axis=2)[:, None, :, None]
    flips = np.concatenate([drop, add, swap.reshape(R, w * w, n)], axis=1)
    return A[:, None, :] ^ flips


def solve_rows(r: Rows, rounds: int = 2, window: int = 2) -> FastP2Result:
    """Fast P2 on every row of ``r`` (see the module docstring): ``rounds`` (>= 1) passes of local search over
    ``window``-sized neighbourhoods of the active set (the first pass contains both roundings)."""
    R, n = r.Lm.shape
    p = _prepare(r)
    nvalid = r.valid.sum(axis=1)
    order = np.argsort(-p.logs, axis=1, kind="stable")  # breakpoints, largest first; padding last
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), (R, n)).copy(), axis=1)
    b = np.take_along_axis(p.logs, order, axis=1)  # (R, n) sorted breakpoints
    rows = np.arange(R)
    on_row = r.valid

    # binary search for K* = max{K : E_K <= cap}, E_K = sum_{rank < K-1} x_i(b_K) (demand just at breakpoint K)
    # Terms ranked above K sit right of their tangent points at b_K, so E_K >= sum_{rank < K-1} jump: K* is at
    # most the largest K whose K-1 strongest jumps fit in cap (no inner solve needed for this bound).
    jumps = np.cumsum(np.where(r.valid, np.take_along_axis(p.jump, order, axis=1), 0.0), axis=1)
    lo = np.ones(R, dtype=np.int64)
    hi = np.minimum(nvalid, 1 + (jumps <= r.cap[:, None]).sum(axis=1)) + 1
    t = p.tC.copy()
    while True:
        live = hi - lo > 1
        if not np.any(live):
            break
        mid = np.where(live, (lo + hi) // 2, lo)
        mu = b[rows, np.clip(mid, 1, n) - 1]
        t = _branch(r.k, p.logc, p.tC, p.txi, mu[:, None], t)[0]
        E = np.cumsum(np.where(rank < (mid - 1)[:, None], r.m / t, 0.0), axis=1)[:, -1]
        ok = E <= r.cap
        lo = np.where(live & ok, mid, lo)
        hi = np.where(live & ~ok, mid, hi)
    has = nvalid > 0
    K = lo
    muK = b[rows, K - 1]
    tK = _branch(r.k, p.logc, p.tC, p.txi, muK[:, None], p.tC)[0]
    xK = np.where((rank < (K - 1)[:, None]) & on_row, r.m / tK, 0.0)
    EK = np.cumsum(xK, axis=1)[:, -1]
    jK = p.jump[rows, order[rows, K - 1]]
    frac = has & (EK + jK >= r.cap)  # the demand jumps over cap at breakpoint K: term K is fractional
    # the envelope relaxation's value: the top K-1 terms at x(b_K), term K on its chord with the leftover
    ub_frac = _values(r, xK) + np.exp(muK) * np.maximum(r.cap - EK, 0.0)

    # rounding and local search. The first pass solves the start set A0 (top-K when exact; top-(K-1) when term K
    # is fractional) together with its boundary moves (which include serving term K: top-K); later passes only
    # the moves around rows that improved. Exact rows get no moves (A0 is optimal).
    A = (rank < np.where(frac, K - 1, K)[:, None]) & on_row
    x = np.zeros((R, n))
    val = np.zeros(R)
    mu = muK.copy()
    todo = has.copy()
    for rnd in range(max(rounds, 1)):
        if not np.any(todo):
            break
        ri = np.flatnonzero(todo)
        sub = Rows(r.Lm[ri], r.k[ri], r.m[ri], r.cap[ri], r.valid[ri])
        subp = _Prep(*(getattr(p, f)[ri] for f in _Prep.__dataclass_fields__))
        score, xs, slope = _profit(sub, subp, mu[ri])
        cand = _moves(A[ri], score, sub.valid, window)
        if rnd == 0:
            cand = np.concatenate([A[ri][:, None, :], cand & frac[ri][:, None, None]], axis=1)
        mu0 = _predict_mu(mu[ri], cand, xs, slope, sub.cap)
        xf, muf = _solve_sets(sub, subp, cand, mu0, sub.m / np.where(xs > 0, xs, 1.0))
        vf = _values(sub, xf)
        g = np.arange(ri.size)
        if rnd == 0:
            x[ri], val[ri], mu[ri] = xf[:, 0], vf[:, 0], muf[:, 0]
        j = np.argmax(vf, axis=1)
        better = vf[g, j] > val[ri] * (1 + 1e-12)
        upd = ri[better]
        gb, jb = g[better], j[better]
        x[upd], val[upd], A[upd], mu[upd] = xf[gb, jb], vf[gb, jb], cand[gb, jb], muf[gb, jb]
        todo[:] = False
        todo[upd] = True
    upper = np.where(has, np.where(frac, np.maximum(ub_frac, val), val), 0.0)
    return FastP2Result(np.where(r.valid, x, 0.0), np.where(has, val, 0.0), upper, ~frac)


def solve(Lm: np.ndarray, k: np.ndarray, m: np.ndarray, cap: float, rounds: int = 2, window: int = 2) -> FastP2Result:
    """Fast P2 on one server (1-D parameter arrays, as ``solvers.exact.djtcra.Terms``; cap in GHz)."""
    return solve_rows(Rows.make(Lm[None, :], k[None, :], m[None, :], np.array([cap])), rounds=rounds, window=window)


# ------------------------------------------------------------------------------------------------------------
# DJTCRA states: every capacitated server of a batch of (instance, y) pairs
# ------------------------------------------------------------------------------------------------------------
def pack(insts: list[Instance], ys: list[np.ndarray]) -> tuple[Rows, list[tuple[int, int, np.ndarray]]]:
    """Padded rows for every capacitated server (every ES; the RCS too when it is shared, D4) of every state.

    Returns the rows and, per row, (state index, server, user indices)."""
    meta: list[tuple[int, int, np.ndarray]] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    for s, (inst, y) in enumerate(zip(insts, ys, strict=True)):
        y = np.asarray(y, dtype=np.int64)
        co = coefficients(inst)
        servers = ([0] if co.rcs_shared else []) + list(range(1, inst.H + 1))
        for o in servers:
            idx = np.flatnonzero(y == o)
            if idx.size == 0:
                continue
            k = inst.alpha[idx] * (inst.beta[idx] - co.fixed[idx, o])  # eq. (11) with eqs. (1), (6), (9)
            m = inst.alpha[idx] * co.work[idx, o] / GHZ  # eq. (8), x in GHz
            parts.append((inst.Lmax[idx], k, m, float(co.capacity[o]) / GHZ))
            meta.append((s, o, idx))
    n = max((len(pt[0]) for pt in parts), default=1)
    R = len(parts)
    Lm = np.zeros((R, n))
    k = np.zeros((R, n))
    m = np.ones((R, n))
    cap = np.ones(R)
    valid = np.zeros((R, n), dtype=bool)
    for i, (a, b, c, cp) in enumerate(parts):
        j = len(a)
        Lm[i, :j], k[i, :j], m[i, :j], cap[i], valid[i, :j] = a, b, c, cp, True
    return Rows.make(Lm, k, m, cap, valid), meta


def allocate_batch(insts: list[Instance], ys: list[np.ndarray], rounds: int = 2, window: int = 2) -> list[np.ndarray]:
    """p (cycle/s) of every state: fast P2 on all its capacitated servers, all states in one vectorised pass."""
    out = [np.zeros(inst.U) for inst in insts]
    if not insts:
        return out
    rows, meta = pack(insts, ys)
    if not meta:
        return out
    res = solve_rows(rows, rounds=rounds, window=window)
    for i, (s, _o, idx) in enumerate(meta):
        out[s][idx] = res.x[i, : idx.size] * GHZ
    return out


def allocate(inst: Instance, y: np.ndarray, rounds: int = 2, window: int = 2) -> np.ndarray:
    """p (cycle/s) of one state: the drop-in fast counterpart of ``allocate_p2`` (without its certificate)."""
    return allocate_batch([inst], [y], rounds=rounds, window=window)[0]
