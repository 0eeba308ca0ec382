"""Task-arrival traces for CTO-TP (Liu et al., Section IV): a synthetic generator and a Google-trace loader.

The paper drives its simulation with the Google cluster-usage traces (Reiss et al. 2011: task arrival time
and CPU requirement). They cannot be downloaded here, so :func:`synthetic_trace` produces a seeded stand-in
with the character documented for those traces (decision D9 in ``docs/problems/cto.md``):

* bursty arrivals: each server alternates heavy-tailed (Pareto) ON and OFF periods; inside ON periods the
  inter-arrival times are log-normal (heavy-tailed, coefficient of variation > 1);
* heavy-tailed requirements: CPU requests are log-normal in the traces' normalised units (fraction of the
  largest machine), clipped to (0, 1];
* asynchronous, heterogeneous servers: every server has its own rate and its own independent process.

:func:`load_google_task_events` reads the real ``task_events`` CSV format (2011 schema: no header, column
0 the timestamp in microseconds, 2 the job ID, 5 the event type, 9 the normalised CPU request) so a user
holding the traces can replay them. :func:`slot_workloads` aggregates a trace into per-slot, per-server
workloads D (cycles) and F (bits), drawing each task's size U[5, 20] MB (Section IV: the traces have none).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mecopt.core import InvalidInputError

#: 2011 Google trace task_events columns (Reiss et al., "Google cluster-usage traces: format + schema").
COL_TIME, COL_JOB, COL_EVENT, COL_CPU = 0, 2, 5, 9
EVENT_SUBMIT = 0
#: Timestamps before the trace window are 0; the window starts 600 s (600e6 us) after the trace epoch.
TRACE_START_US = 600_000_000


@dataclass(frozen=True)
class Trace:
    """Task arrivals of M servers: ``times[m]`` (s, sorted), ``cpu[m]`` (normalised CPU request in (0, 1])."""

    times: tuple[np.ndarray, ...]
    cpu: tuple[np.ndarray, ...]

    @property
    def M(self) -> int:
        return len(self.times)

    def horizon(self) -> float:
        ends = [float(t[-1]) for t in self.times if t.size]
        return max(ends) if ends else 0.0


@dataclass(frozen=True)
class TraceParams:
    """Parameters of the synthetic trace (D9); defaults give ~2-8 tasks/s per server while ON."""

    rate_range: tuple[float, float] = (2.0, 8.0)  # mean arrival rate inside ON periods, tasks/s, per server
    iat_sigma: float = 1.0  # log-normal sigma of inter-arrival times inside ON periods (CV ~ 1.3)
    on_mean_s: float = 8.0  # mean ON period (Pareto)
    off_mean_s: float = 4.0  # mean OFF period (Pareto)
    pareto_shape: float = 1.5  # tail index of ON/OFF periods (infinite variance: bursty at every scale)
    cpu_median: float = 0.02  # median normalised CPU request
    cpu_sigma: float = 1.0  # log-normal sigma of the CPU request


def _pareto(rng: np.random.Generator, mean: float, shape: float) -> float:
    """One Pareto(shape) draw with the given mean (scale x_m = mean (shape - 1) / shape)."""
    xm = mean * (shape - 1.0) / shape
    return float(xm * (1.0 + rng.pareto(shape)))


def synthetic_trace(M: int, horizon_s: float, rng: np.random.Generator, params: TraceParams | None = None) -> Trace:
    """Seeded bursty, heavy-tailed, per-server asynchronous arrivals over [0, horizon_s) (D9)."""
    p = params or TraceParams()
    if M < 1 or not np.isfinite(horizon_s) or horizon_s <= 0:
        raise InvalidInputError(f"cto: synthetic_trace needs M >= 1 and horizon_s > 0, got M={M}, {horizon_s}")
    times: list[np.ndarray] = []
    cpus: list[np.ndarray] = []
    mu_cpu = np.log(p.cpu_median)
    for _ in range(M):
        rate = rng.uniform(*p.rate_range)
        mean_iat = 1.0 / rate
        mu_iat = np.log(mean_iat) - 0.5 * p.iat_sigma**2  # log-normal with mean 1/rate
        t = -rng.uniform(0.0, p.on_mean_s + p.off_mean_s)  # random phase: servers are not synchronised
        on = bool(rng.random() < p.on_mean_s / (p.on_mean_s + p.off_mean_s))
        out: list[float] = []
        while t < horizon_s:
            length = _pareto(rng, p.on_mean_s if on else p.off_mean_s, p.pareto_shape)
            if on:
                s = t + rng.lognormal(mu_iat, p.iat_sigma)
                while s < min(t + length, horizon_s):
                    if s >= 0.0:
                        out.append(s)
                    s += rng.lognormal(mu_iat, p.iat_sigma)
            t += length
            on = not on
        arr = np.array(out, dtype=float)
        times.append(arr)
        cpus.append(np.clip(rng.lognormal(mu_cpu, p.cpu_sigma, size=arr.size), 1e-4, 1.0))
    return Trace(tuple(times), tuple(cpus))


def load_google_task_events(path: str | Path, M: int, *, max_rows: int | None = None) -> Trace:
    """Arrivals of the 2011 Google ``task_events`` CSV (plain or .gz) split over M servers by job ID mod M
    (D9).

    SUBMIT events (type 0) with a CPU request are kept; times are seconds after the first kept event.
    """
    path = Path(path)
    if M < 1:
        raise InvalidInputError(f"cto: load_google_task_events needs M >= 1, got {M}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"cto: cannot read trace file {path}: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    rows_t: list[int] = []
    rows_s: list[int] = []
    rows_c: list[float] = []
    reader = csv.reader(io.StringIO(raw.decode("utf-8")))
    for i, row in enumerate(reader):
        if max_rows is not None and i >= max_rows:
            break
        if not row:
            continue
        if len(row) <= COL_CPU:
            raise InvalidInputError(f"cto: {path} line {i + 1}: task_events rows have 13 columns, got {len(row)}")
        try:
            if int(row[COL_EVENT]) != EVENT_SUBMIT or row[COL_CPU].strip() == "":
                continue
            ts, job, cpu = int(row[COL_TIME]), int(row[COL_JOB]), float(row[COL_CPU])
        except ValueError:
            raise InvalidInputError(f"cto: {path} line {i + 1}: malformed task_events row {row!r}") from None
        if not np.isfinite(cpu) or cpu <= 0.0:
            continue
        rows_t.append(ts)
        rows_s.append(job % M)
        rows_c.append(min(cpu, 1.0))
    if not rows_t:
        raise InvalidInputError(f"cto: {path} has no SUBMIT event with a CPU request")
    t_us = np.array(rows_t, dtype=np.int64)
    t = (t_us - t_us.min()) / 1e6  # integer microseconds first: no round-off in the offsets
    s = np.array(rows_s)
    c = np.array(rows_c)
    times, cpus = [], []
    for m in range(M):
        sel = np.flatnonzero(s == m)
        order = np.argsort(t[sel], kind="stable")
        times.append(t[sel][order])
        cpus.append(c[sel][order])
    return Trace(tuple(times), tuple(cpus))


def write_google_task_events(path: str | Path, rows: list[tuple[int, int, int, int, float]]) -> None:
    """Write (timestamp_us, job_id, task_index, event_type, cpu) rows in the 13-column task_events format."""
    lines = []
    for ts, job, idx, ev, cpu in rows:
        cols = [
            str(ts),
            "",
            str(job),
            str(idx),
            "",
            str(ev),
            "user",
            "0",
            "0",
            repr(cpu),
            "0.01",
            "0.0001",
            "0",
        ]
        lines.append(",".join(cols))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class SlotWorkloads:
    """Per-slot, per-server aggregates: D (cycles), F (bits), n (tasks); shape (slots, M)."""

    D: np.ndarray
    F: np.ndarray
    n: np.ndarray


def slot_workloads(
    trace: Trace,
    rng: np.random.Generator,
    *,
    slot_s: float = 1.0,
    n_slots: int | None = None,
    cycles_per_cpu: float = 100e9,
    size_range_bits: tuple[float, float] = (5e6 * 8, 20e6 * 8),
) -> SlotWorkloads:
    """Aggregate arrivals into slots (D10): D = sum cpu * cycles_per_cpu, F = sum of U[5,20] MB sizes."""
    if n_slots is None:
        n_slots = int(np.floor(trace.horizon() / slot_s)) + 1
    D = np.zeros((n_slots, trace.M))
    F = np.zeros((n_slots, trace.M))
    n = np.zeros((n_slots, trace.M), dtype=np.int64)
    for m in range(trace.M):
        k = np.floor(trace.times[m] / slot_s).astype(np.int64)
        keep = k < n_slots
        k = k[keep]
        sizes = rng.uniform(*size_range_bits, size=int(keep.sum()))
        np.add.at(D[:, m], k, trace.cpu[m][keep] * cycles_per_cpu)
        np.add.at(F[:, m], k, sizes)
        np.add.at(n[:, m], k, 1)
    return SlotWorkloads(D, F, n)
