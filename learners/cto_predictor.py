"""CTO-TP's transformer workload predictor (Liu et al., Section III-A, Section IV and Fig. 3): Q_Mt of eq. (9).

The paper trains a transformer offline on the trace's "task arrival time and computational requirements" and feeds
its predictions Q_Mt of "the next task arrival time and the upcoming task requirements" of every MEC server into the
global state s_t = [C_Mt, B_Kt, D_Mt, Q_Mt] (eq. 9) of the MADQN and the DDPG critics. Section IV fixes the model:
d_model 512, 4 attention heads, 1 encoder layer, feed-forward 1024; it reports R^2 > 0.90 (Fig. 3, "a sliding window
of size 20 to smooth fluctuations").

What is predicted here (decision P1, docs/cto_predictor.md). The learners work in slots of 1 s (D10 of
docs/problems/cto.md), so Q_Mt is the next slot's workload of each server m:

* ``D``: D_m,t+1, the cycles of the tasks arriving at m in slot t+1 (eq. 9's D_Mt one slot ahead; the paper's
  "computational resource requirement");
* ``n``: n_m,t+1, the number of tasks arriving at m in slot t+1 (the slot-level form of the paper's "task arrival
  time": the mean inter-arrival time in the slot is 1/n).

Input: the window of the last ``window`` slots of (D, n) of all M servers, one token per slot. Output: 2M numbers.
The encoder is ``torch.nn.TransformerEncoderLayer`` (post-norm, ReLU); only the last token's output is read, so the
last layer is evaluated for the last query only (:meth:`WorkloadTransformer.forward`; the same numbers as running the
full layer, checked in the tests, at a third of the cost).

``smooth`` > 1 replaces the series by its trailing moving average over ``smooth`` slots first (the paper's Fig. 3
protocol uses 20); the R^2 of smoothed series is then largely the smoothing's (a last-value predictor gets it too),
which the table shows beside the raw one.

Run: ``python -m learners.cto_predictor --help`` (subcommands ``train``, ``table``).
"""

from __future__ import annotations

import copy
import io
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from torch import nn

from mecopt.core import (
    InvalidInputError,
    MecoptError,
    atomic_write_bytes,
    atomic_write_text,
    make_rng,
    read_json,
    results_dir,
    to_json,
)
from mecopt.problems.cto_trace import Trace, TraceParams, load_google_task_events, slot_workloads, synthetic_trace

#: Features of Q_Mt per server, in this order (decision P1).
FEATURES = ("D", "n")
FORMAT = "mecopt.cto_predictor/1"
#: Moving-average lengths tried for the baseline (the best on the training part is reported).
MA_CANDIDATES = (2, 3, 5, 10, 20)


@dataclass
class Args:
    """Training of the CTO-TP workload predictor (Section III-A; architecture of Section IV)."""

    seed: int = 1
    """root seed: trace, task sizes, weight init, dropout and minibatch order all derive from it"""
    source: Literal["synthetic", "periodic", "csv"] = "synthetic"
    """trace: the Google-like synthetic generator (D9), a periodic test trace, or a task_events CSV (``trace_csv``)"""
    trace_csv: str | None = None
    """path of a 2011 Google ``task_events`` CSV (plain or .gz) when ``source`` is csv"""
    M: int = 3
    """number of MEC servers (Section IV: three)"""
    horizon_s: float = 20_000.0
    """length of the synthetic/periodic trace in seconds (= slots of 1 s)"""
    slot_s: float = 1.0
    """slot length (Section IV: one training step is 1 s)"""
    max_rows: int | None = None
    """read at most this many CSV rows (None: all)"""
    smooth: int = 1
    """trailing moving average over this many slots applied to the series first (1: none; Fig. 3 used 20)"""
    window: int = 24
    """number of past slots the transformer sees (the paper does not give it)"""
    residual: bool = False
    """predict the change from the last slot (a last-value skip connection) instead of the value itself"""
    d_model: int = 512
    """model dimension (Section IV: 512)"""
    n_heads: int = 4
    """attention heads (Section IV: 4)"""
    n_layers: int = 1
    """encoder layers (Section IV: 1)"""
    dim_feedforward: int = 1024
    """feed-forward dimension (Section IV: 1024)"""
    dropout: float = 0.1
    """dropout in the encoder layer (not given by the paper; PyTorch's default)"""
    lr: float = 5e-4
    """Adam learning rate (Table I's 0.0005)"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    batch_size: int = 256
    """minibatch size"""
    epochs: int = 3
    """passes over the training windows"""
    train_frac: float = 0.7
    """first part of the slots used for training"""
    val_frac: float = 0.1
    """next part used to select the best epoch; the rest (the latest slots) is the held-out test part"""
    device: str = "cpu"
    """torch device ("cpu", "cuda", ...)"""
    threads: int = 1
    """torch.set_num_threads (the machine is shared)"""
    time_budget_s: float | None = None
    """stop after this much training wall time (None: all epochs; a budget makes the result time-dependent)"""
    log_every: int = 50
    """print the training loss every this many minibatches (0: never)"""

    def validate(self) -> None:
        if self.M < 1:
            raise InvalidInputError(f"cto_predictor: M must be >= 1, got {self.M}")
        if self.window < 1 or self.smooth < 1:
            raise InvalidInputError(f"cto_predictor: window and smooth must be >= 1, got {self.window}, {self.smooth}")
        if not (self.horizon_s > 0 and np.isfinite(self.horizon_s)) or not (self.slot_s > 0):
            raise InvalidInputError("cto_predictor: horizon_s and slot_s must be positive")
        if self.d_model % self.n_heads:
            raise InvalidInputError(f"cto_predictor: d_model {self.d_model} not a multiple of n_heads {self.n_heads}")
        if min(self.d_model, self.n_heads, self.n_layers, self.dim_feedforward, self.batch_size, self.epochs) < 1:
            raise InvalidInputError("cto_predictor: model sizes, batch_size and epochs must be >= 1")
        if not (0 < self.train_frac and 0 <= self.val_frac and self.train_frac + self.val_frac < 1):
            raise InvalidInputError("cto_predictor: need 0 < train_frac, 0 <= val_frac, train_frac + val_frac < 1")
        if not (self.lr > 0) or not (0 <= self.dropout < 1):
            raise InvalidInputError("cto_predictor: lr must be > 0 and dropout in [0, 1)")
        if self.source == "csv" and not self.trace_csv:
            raise InvalidInputError("cto_predictor: source csv needs --trace-csv PATH")


# ----------------------------------------------------------------------------------------------------------------
# Traces -> per-slot series of (D, n), shape (slots, M, 2)
# ----------------------------------------------------------------------------------------------------------------
def periodic_trace(
    M: int,
    horizon_s: float,
    rng: np.random.Generator,
    *,
    period_s: float = 24.0,
    base_rate: float = 40.0,
    amplitude: float = 0.8,
    cpu: float = 0.01,
) -> Trace:
    """Test trace: Poisson arrivals with rate base_rate (1 + amplitude sin(2 pi t / period + phase_m)), one random
    phase per server, every CPU request ``cpu``. Its next-slot workload is predictable up to Poisson noise."""
    if M < 1 or not (horizon_s > 0) or not (0 <= amplitude <= 1) or not (base_rate > 0) or not (period_s > 0):
        raise InvalidInputError("cto_predictor: periodic_trace needs M >= 1, horizon, rate, period > 0, 0<=amp<=1")
    peak = base_rate * (1.0 + amplitude)
    times, cpus = [], []
    for _ in range(M):
        phase = rng.uniform(0.0, 2.0 * np.pi)
        n = rng.poisson(peak * horizon_s)
        t = np.sort(rng.uniform(0.0, horizon_s, size=n))
        keep = rng.random(n) * peak < base_rate * (1.0 + amplitude * np.sin(2.0 * np.pi * t / period_s + phase))
        times.append(t[keep])
        cpus.append(np.full(int(keep.sum()), cpu))
    return Trace(tuple(times), tuple(cpus))


def trace_series(
    trace: Trace, rng: np.random.Generator, *, slot_s: float = 1.0, n_slots: int | None = None
) -> np.ndarray:
    """Per-slot (D_mt cycles, n_mt tasks) of every server, shape (slots, M, 2) (D10 of docs/problems/cto.md)."""
    w = slot_workloads(trace, rng, slot_s=slot_s, n_slots=n_slots)
    return np.stack([w.D, w.n.astype(float)], axis=-1)


def smooth_series(x: np.ndarray, k: int) -> np.ndarray:
    """Trailing moving average over ``k`` slots (causal; the first k-1 slots average what exists)."""
    if k <= 1:
        return x.astype(float)
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), x], axis=0), axis=0)
    idx = np.arange(1, x.shape[0] + 1)
    lo = np.maximum(idx - k, 0)
    return (c[idx] - c[lo]) / (idx - lo).reshape(-1, *([1] * (x.ndim - 1)))


def make_series(args: Args) -> np.ndarray:
    """The (slots, M, 2) series of ``args.source``, smoothed by ``args.smooth``."""
    rng = make_rng(args.seed, "cto-predictor", "trace")
    sizes = make_rng(args.seed, "cto-predictor", "sizes")
    if args.source == "synthetic":
        trace = synthetic_trace(args.M, args.horizon_s, rng, TraceParams())
        n_slots = int(np.floor(args.horizon_s / args.slot_s))
    elif args.source == "periodic":
        trace = periodic_trace(args.M, args.horizon_s, rng)
        n_slots = int(np.floor(args.horizon_s / args.slot_s))
    else:
        trace = load_google_task_events(str(args.trace_csv), args.M, max_rows=args.max_rows)
        n_slots = None
    return smooth_series(trace_series(trace, sizes, slot_s=args.slot_s, n_slots=n_slots), args.smooth)


def windows(series: np.ndarray, window: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs series[t-window:t] and targets series[t] for every target slot t in [max(lo, window), hi)."""
    t = np.arange(max(lo, window), hi)
    if t.size == 0:
        return np.zeros((0, window, *series.shape[1:])), np.zeros((0, *series.shape[1:]))
    view = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)  # (slots-window+1, M, 2, window)
    X = np.moveaxis(view[t - window], -1, 1)  # (n, window, M, 2)
    return np.ascontiguousarray(X), series[t]


def split_bounds(n_slots: int, train_frac: float, val_frac: float) -> tuple[int, int]:
    """Chronological split: [0, a) train, [a, b) validation, [b, n_slots) held-out test (the latest slots)."""
    return int(round(n_slots * train_frac)), int(round(n_slots * (train_frac + val_frac)))


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------
class WorkloadTransformer(nn.Module):
    """Tokens = slots; input Linear(2M -> d_model) + learned positions; ``n_layers`` TransformerEncoderLayer; the
    last token's output -> Linear(d_model -> 2M)."""

    def __init__(self, n_in: int, window: int, d_model: int, n_heads: int, n_layers: int, dim_ff: int, dropout: float):
        super().__init__()
        self.embed = nn.Linear(n_in, d_model)
        self.pos = nn.Parameter(torch.randn(1, window, d_model) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, dim_ff, dropout, batch_first=True) for _ in range(n_layers)
        )
        self.head = nn.Linear(d_model, n_in)

    @staticmethod
    def _last_query(layer: nn.TransformerEncoderLayer, h: torch.Tensor) -> torch.Tensor:
        """Output of ``layer(h)`` at the last position only (post-norm layer: identical numbers)."""
        q = h[:, -1:]
        a = layer.self_attn(q, h, h, need_weights=False)[0]
        z = layer.norm1(q + layer.dropout1(a))
        ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(z))))
        return layer.norm2(z + layer.dropout2(ff))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, window, 2M) scaled inputs -> (batch, 2M) standardised next-slot values."""
        h = self.embed(x) + self.pos
        for layer in self.layers[:-1]:
            h = layer(h)
        return self.head(self._last_query(self.layers[-1], h))

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """The same through the stock full-sequence layers (reference for the tests)."""
        h = self.embed(x) + self.pos
        for layer in self.layers:
            h = layer(h)
        return self.head(h[:, -1])


@dataclass
class Scaler:
    """Inputs: log1p(x / mean); targets: (y - mean) / std; mean and std per (server, feature) on the training part."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        return cls(np.where(mean > 0, mean, 1.0), np.where(std > 0, std, 1.0))

    def inputs(self, X: np.ndarray) -> np.ndarray:
        return np.log1p(np.maximum(X, 0.0) / self.mean).reshape(*X.shape[:-2], -1).astype(np.float32)

    def targets(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.mean) / self.std).reshape(y.shape[0], -1).astype(np.float32)

    def invert(self, z: np.ndarray) -> np.ndarray:
        return z.reshape(z.shape[0], *self.mean.shape) * self.std + self.mean


class WorkloadPredictor:
    """A trained predictor: raw per-slot history of (D, n) -> Q_Mt, the next slot's (D, n) of every server."""

    def __init__(self, model: WorkloadTransformer, scaler: Scaler, header: dict[str, Any]):
        self.model = model.eval()
        self.scaler = scaler
        self.header = header
        self.M = int(header["M"])
        self.window = int(header["window"])
        self.smooth = int(header["smooth"])
        self.residual = bool(header["residual"])

    def predict_windows(self, X: np.ndarray, batch: int = 1024) -> np.ndarray:
        """X: (n, window, M, 2) raw (already smoothed if ``smooth`` > 1) -> (n, M, 2) predictions, clipped at 0."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 4 or X.shape[1:] != (self.window, self.M, len(FEATURES)):
            raise InvalidInputError(f"cto_predictor: windows must have shape (n, {self.window}, {self.M}, 2)")
        dev = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, X.shape[0], batch):
                z = torch.from_numpy(self.scaler.inputs(X[i : i + batch])).to(dev)
                out.append(self.model(z).cpu().double().numpy())
        z = np.concatenate(out) if out else np.zeros((0, self.M * len(FEATURES)))
        if self.residual:
            z = z + self.scaler.targets(X[:, -1])
        return np.maximum(self.scaler.invert(z), 0.0)

    def predict(self, history: np.ndarray) -> np.ndarray:
        """Q_Mt from the raw per-slot (D, n) history of shape (>= window, M, 2), oldest first -> (M, 2).

        The history is smoothed here when the predictor was trained on smoothed series."""
        h = np.asarray(history, dtype=float)
        if h.ndim != 3 or h.shape[0] < self.window or h.shape[1:] != (self.M, len(FEATURES)):
            raise InvalidInputError(f"cto_predictor: history must have shape (>= {self.window}, {self.M}, 2)")
        if self.smooth > 1:
            h = smooth_series(h[-(self.window + self.smooth - 1) :], self.smooth)
        return self.predict_windows(h[None, -self.window :])[0]

    # -- checkpoint: <path>.pt (state_dict) + <path>.json (header), both written atomically --------------------
    def save(self, path: str | Path, dtype: Literal["float32", "float16"] = "float32") -> None:
        path = Path(path)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if dtype == "float16":
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        buf = io.BytesIO()
        torch.save(state, buf)
        header = dict(self.header, dtype=dtype, mean=self.scaler.mean, std=self.scaler.std)
        atomic_write_bytes(path.with_suffix(".pt"), buf.getvalue())
        atomic_write_text(path.with_suffix(".json"), to_json(header))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> WorkloadPredictor:
        path = Path(path)
        h = read_json(path.with_suffix(".json"), "predictor header")
        try:
            if h.get("format") != FORMAT:
                raise ValueError(f"format {h.get('format')!r} is not {FORMAT!r}")
            a = h["model"]
            M = int(h["M"])
            model = WorkloadTransformer(
                M * len(FEATURES),
                int(h["window"]),
                int(a["d_model"]),
                int(a["n_heads"]),
                int(a["n_layers"]),
                int(a["dim_feedforward"]),
                float(a["dropout"]),
            )
            scaler = Scaler(np.array(h["mean"], dtype=float), np.array(h["std"], dtype=float))
            if scaler.mean.shape != (M, len(FEATURES)) or scaler.std.shape != (M, len(FEATURES)):
                raise ValueError("mean/std do not have shape (M, 2)")
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"predictor header {path.with_suffix('.json')} is malformed: {e}") from None
        pt = path.with_suffix(".pt")
        if not pt.exists():
            raise InvalidInputError(f"predictor weights not found: {pt}")
        try:
            state = torch.load(pt, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except (RuntimeError, OSError, EOFError) as e:
            raise InvalidInputError(f"predictor weights {pt} do not fit the header: {str(e).splitlines()[0]}") from None
        return cls(model.to(device), scaler, h)


# ----------------------------------------------------------------------------------------------------------------
# Scoring: R^2 on the held-out part, beside last-value and moving-average predictors
# ----------------------------------------------------------------------------------------------------------------
def r2(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Coefficient of determination per (server, feature): 1 - SSE / SST about the held-out part's own mean."""
    sse = ((y - yhat) ** 2).sum(axis=0)
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)


def last_value(X: np.ndarray) -> np.ndarray:
    """Q_M,t+1 = the last slot's values."""
    return X[:, -1]


def moving_average(X: np.ndarray, k: int) -> np.ndarray:
    """Q_M,t+1 = mean of the last k slots."""
    return X[:, -k:].mean(axis=1)


def score(pred: WorkloadPredictor, series: np.ndarray, bounds: tuple[int, int]) -> dict[str, Any]:
    """R^2 (mean over servers, per feature) of the transformer, last-value and the best moving average (k picked on
    the training part) on the held-out test part [bounds[1], end)."""
    a, b = bounds
    w = pred.window
    Xtr, ytr = windows(series, w, 0, a)
    ks = [k for k in MA_CANDIDATES if k <= w]
    k_best = min(ks, key=lambda k: float(((moving_average(Xtr, k) - ytr) ** 2 / ytr.var(axis=0).clip(1e-300)).sum()))
    X, y = windows(series, w, b, series.shape[0])
    out: dict[str, Any] = {"test_slots": int(y.shape[0]), "ma_k": int(k_best)}
    for name, yhat in (
        ("transformer", pred.predict_windows(X)),
        ("last_value", last_value(X)),
        ("moving_average", moving_average(X, k_best)),
    ):
        per = r2(y, yhat)  # (M, 2)
        out[name] = {f: float(np.nanmean(per[:, j])) for j, f in enumerate(FEATURES)}
        out[name]["per_server"] = per
    return out


# ----------------------------------------------------------------------------------------------------------------
# Training (flat loop)
# ----------------------------------------------------------------------------------------------------------------
def train(args: Args, series: np.ndarray | None = None) -> tuple[WorkloadPredictor, dict[str, Any]]:
    """Train on the first ``train_frac`` of the slots, pick the epoch with the lowest validation MSE, score on the
    latest slots. ``series`` overrides the trace of ``args`` (shape (slots, M, 2), already smoothed)."""
    args.validate()
    torch.set_num_threads(args.threads)
    if series is None:
        series = make_series(args)
    if series.ndim != 3 or series.shape[1:] != (args.M, len(FEATURES)):
        raise InvalidInputError(f"cto_predictor: series must have shape (slots, {args.M}, 2), got {series.shape}")
    a, b = split_bounds(series.shape[0], args.train_frac, args.val_frac)
    Xtr, ytr = windows(series, args.window, 0, a)
    Xva, yva = windows(series, args.window, a, b)
    n_test = series.shape[0] - max(b, args.window)
    if Xtr.shape[0] < args.batch_size or n_test < 2:
        raise InvalidInputError(
            f"cto_predictor: {series.shape[0]} slots give {Xtr.shape[0]} training windows (need >= batch_size "
            f"{args.batch_size}) and {n_test} test slots (need >= 2); use a longer trace"
        )
    scaler = Scaler.fit(series[:a])
    dev = torch.device(args.device)
    torch.manual_seed(int(make_rng(args.seed, "cto-predictor", "torch").integers(2**31)))
    order_rng = make_rng(args.seed, "cto-predictor", "batches")
    model = WorkloadTransformer(
        args.M * len(FEATURES),
        args.window,
        args.d_model,
        args.n_heads,
        args.n_layers,
        args.dim_feedforward,
        args.dropout,
    ).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    Xt = torch.from_numpy(scaler.inputs(Xtr))
    # residual: the network predicts the standardised change from the last slot (last-value skip connection)
    yt = torch.from_numpy(scaler.targets(ytr) - (scaler.targets(Xtr[:, -1]) if args.residual else 0.0))
    Xv = torch.from_numpy(scaler.inputs(Xva)).to(dev)
    yv = torch.from_numpy(scaler.targets(yva) - (scaler.targets(Xva[:, -1]) if args.residual else 0.0)).to(dev)

    start = time.perf_counter()
    best_val, best_state, best_epoch = float("inf"), copy.deepcopy(model.state_dict()), 0
    history: list[dict[str, float]] = []
    step, stopped = 0, False
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = order_rng.permutation(Xt.shape[0])
        losses = []
        for i in range(0, perm.size - args.batch_size + 1, args.batch_size):
            idx = torch.from_numpy(perm[i : i + args.batch_size])
            loss = F.mse_loss(model(Xt[idx].to(dev)), yt[idx].to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if args.log_every and step % args.log_every == 0:
                print(f"epoch {epoch} step {step} loss {np.mean(losses[-args.log_every :]):.4f}", flush=True)
            if args.time_budget_s is not None and time.perf_counter() - start > args.time_budget_s:
                stopped = True
                break
        model.eval()
        with torch.no_grad():
            sse = sum(
                F.mse_loss(model(Xv[j : j + 1024]), yv[j : j + 1024], reduction="sum").item()
                for j in range(0, Xv.shape[0], 1024)
            )
        val = sse / yv.numel() if Xv.shape[0] else float(np.mean(losses))
        history.append(
            {"epoch": epoch, "train_mse": float(np.mean(losses)) if losses else float("nan"), "val_mse": val}
        )
        print(f"epoch {epoch}: train mse {history[-1]['train_mse']:.4f}, val mse {val:.4f}", flush=True)
        if val < best_val:
            best_val, best_state, best_epoch = val, copy.deepcopy(model.state_dict()), epoch
        if stopped:
            break
    model.load_state_dict(best_state)
    header: dict[str, Any] = {
        "format": FORMAT,
        "what": "CTO-TP workload predictor (Liu et al. Section III-A): next slot's (D, n) per server = Q_Mt of eq. (9)",
        "features": list(FEATURES),
        "M": args.M,
        "window": args.window,
        "smooth": args.smooth,
        "residual": args.residual,
        "model": {
            "d_model": args.d_model,
            "n_heads": args.n_heads,
            "n_layers": args.n_layers,
            "dim_feedforward": args.dim_feedforward,
            "dropout": args.dropout,
        },
        "args": asdict(args),
        "training": {
            "best_epoch": best_epoch,
            "history": history,
            "wall_s": round(time.perf_counter() - start, 1),
            "stopped_by_budget": stopped,
            "train_windows": int(Xtr.shape[0]),
            "slots": int(series.shape[0]),
            "split": [a, b],
        },
        "torch": torch.__version__,
    }
    pred = WorkloadPredictor(model, scaler, header)
    report = score(pred, series, (a, b))
    pred.header["r2"] = report
    return pred, report


# ----------------------------------------------------------------------------------------------------------------
# The committed predictor and R^2 table
# ----------------------------------------------------------------------------------------------------------------
def default_dir() -> Path:
    return results_dir() / "cto" / "predictor"


@dataclass
class TrainCmd(Args):
    """Train one predictor, print its R^2 report and save it (``<out>.pt`` + ``<out>.json``)."""

    out: str | None = None
    """checkpoint path without suffix (None: do not save)"""
    dtype: Literal["float32", "float16"] = "float32"
    """precision of the saved state dict"""


@dataclass
class TableCmd:
    """Retrain the committed default predictor and write results/cto/predictor.md (about 10 CPU-minutes)."""

    seed: int = 1
    """root seed of every row"""
    epochs: int = 3
    """epochs of the 512-wide rows"""
    device: str = "cpu"
    """torch device"""
    save: bool = True
    """save the default (raw, synthetic) predictor to results/cto/predictor/default.{pt,json}"""


#: Rows of the table: (label, Args overrides). The first is the committed default predictor.
TABLE_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("synthetic Google-like (D9), next slot, raw", {}),
    (
        "synthetic Google-like (D9), smoothed over 20 slots (Fig. 3 protocol), residual",
        {"smooth": 20, "residual": True},
    ),
    ("periodic test trace (period 24 s), raw", {"source": "periodic", "horizon_s": 8_000.0}),
]


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def write_table(rows: list[tuple[str, Args, dict[str, Any], dict[str, Any]]], path: Path) -> None:
    lines = [
        "# CTO-TP workload predictor: R^2 on the held-out (latest) part of the trace",
        "",
        "Generated by `python -m learners.cto_predictor table` (learners/cto_predictor.py, docs/cto_predictor.md).",
        "Transformer of Section IV (d_model 512, 4 heads, 1 encoder layer, feed-forward 1024), trained offline on the",
        "first 70 % of the slots, best epoch on the next 10 %, scored on the last 20 % (chronological split).",
        "Q_Mt = next slot's D (cycles) and n (tasks) per server, M = 3; R^2 per server about the test part's mean,",
        "averaged over servers. Baselines: last value; moving average over k slots (k picked on the training part).",
        "The paper reports R^2 > 0.90 (Fig. 3, series smoothed over 20).",
        "",
        "| trace | feature | transformer | last value | moving average (k) | test slots | epochs (best) | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, _args, rep, tr in rows:
        for f in FEATURES:
            lines.append(
                f"| {label} | {f} | {_fmt(rep['transformer'][f])} | {_fmt(rep['last_value'][f])} | "
                f"{_fmt(rep['moving_average'][f])} ({rep['ma_k']}) | {rep['test_slots']} | "
                f"{len(tr['history'])} ({tr['best_epoch']}) | {tr['wall_s']:.0f} |"
            )
    lines += [
        "",
        f"Seed {rows[0][1].seed}; window {rows[0][1].window} slots; lr {rows[0][1].lr}; batch {rows[0][1].batch_size};"
        f" torch {torch.__version__}, CPU, 1 thread.",
        "",
    ]
    atomic_write_text(path, "\n".join(lines))


def make_table(cmd: TableCmd) -> list[tuple[str, Args, dict[str, Any], dict[str, Any]]]:
    rows = []
    for i, (label, over) in enumerate(TABLE_ROWS):
        args = Args(seed=cmd.seed, epochs=cmd.epochs, device=cmd.device, **over)
        print(f"== {label}", flush=True)
        pred, rep = train(args)
        rows.append((label, args, rep, pred.header["training"]))
        if i == 0 and cmd.save:
            pred.save(default_dir() / "default")
    write_table(rows, results_dir() / "cto" / "predictor.md")
    return rows


def summary(rep: dict[str, Any]) -> str:
    """One line per predictor: mean R^2 over servers of each feature on the held-out part."""
    lines = [f"R^2 on the held-out {rep['test_slots']} slots (mean over servers):"]
    for name in ("transformer", "last_value", "moving_average"):
        label = f"moving_average(k={rep['ma_k']})" if name == "moving_average" else name
        lines.append(f"  {label:<22}" + "  ".join(f"{f} {rep[name][f]:.3f}" for f in FEATURES))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    cmd = tyro.extras.subcommand_cli_from_dict(
        {"train": TrainCmd, "table": TableCmd}, args=argv, description=__doc__.splitlines()[0]
    )
    try:
        if isinstance(cmd, TrainCmd):
            pred, rep = train(cmd)
            if cmd.out:
                pred.save(cmd.out, cmd.dtype)
            print(summary(rep))
        else:
            make_table(cmd)
    except MecoptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
