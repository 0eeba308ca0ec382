"""Core types shared by every problem, solver and learner.

* errors with one clear message (the CLI prints them on one line, never a traceback),
* :class:`Metrics` -- what ``evaluate`` returns (the single source of every objective),
* :class:`SolveOptions`, :class:`MethodOutput`, :class:`SolveResult` -- the solver contract,
* seeding helpers (one seed in, everything derived with ``SeedSequence.spawn``),
* atomic file writes (nothing already written is lost when a run is interrupted).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Sense = Literal["min", "max"]
Status = Literal["optimal", "feasible", "time_limit", "infeasible", "not_attempted", "error"]
#: Every status a result may carry (README "Error contract"):
#: ``optimal`` -- proven: recomputed gap to the method's bound <= OPTIMALITY_TOL;
#: ``feasible`` -- a feasible decision without such a proof (heuristics, learned policies, ``--gap`` stops);
#: ``time_limit`` -- the limit stopped the search (incumbent if any, and a valid bound where one is known);
#: ``infeasible`` -- the method proved that the instance has no feasible decision;
#: ``not_attempted`` -- the method declined the instance (e.g. too large for it); the reason is in ``message``;
#: ``error`` -- the method failed or returned something wrong (message says what).
STATUSES: tuple[str, ...] = ("optimal", "feasible", "time_limit", "infeasible", "not_attempted", "error")
#: Statuses that come without a decision by definition.
NO_DECISION_STATUSES: tuple[str, ...] = ("infeasible", "not_attempted", "error")

#: Relative gap at or below which an exact method may report ``optimal``.
OPTIMALITY_TOL = 1e-6


class MecoptError(Exception):
    """Base class of every error mecopt raises on purpose (the CLI prints its message on one line)."""


class InvalidInputError(MecoptError, ValueError):
    """An instance, decision or option is malformed (wrong shape, NaN, negative, unknown key...)."""


class InfeasibleDecisionError(MecoptError):
    """A decision violates a constraint; the message names the constraint (and its equation)."""

    def __init__(self, problem: str, violations: list[str]):
        self.problem = problem
        self.violations = list(violations)
        shown = "; ".join(self.violations[:3])
        more = f" (+{len(self.violations) - 3} more)" if len(self.violations) > 3 else ""
        super().__init__(f"{problem}: infeasible decision: {shown}{more}")


class SolverError(MecoptError):
    """A solver could not be run (missing backend, bad status...)."""


class NotAttemptedError(MecoptError):
    """A method declines an instance (too large for it, outside what it handles); :func:`solvers.solve` records
    status ``not_attempted`` with this message. Equivalent to returning ``MethodOutput(None, "not_attempted",
    message=...)``."""


# --------------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metrics:
    """Result of ``evaluate(inst, dec)``.

    ``objective`` is the value of the problem's objective in the problem's sense; ``feasible`` says whether the
    decision satisfies every constraint (``violations`` names the violated ones); ``values`` holds the other
    quantities the paper reports (floats or lists of floats), keyed by a descriptive name.
    """

    objective: float
    feasible: bool
    violations: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": _jsonable(self.objective),
            "feasible": bool(self.feasible),
            "violations": list(self.violations),
            **{k: _jsonable(v) for k, v in self.values.items()},
        }


# --------------------------------------------------------------------------------------------------------------
# Solver contract
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SolveOptions:
    """Options every method accepts (methods ignore what does not apply to them)."""

    time_limit: float | None = 60.0
    """Wall-clock limit in seconds (None: no limit)."""
    mip_gap: float = 1e-9
    """Relative optimality gap at which exact solvers may stop (reported gap is what was reached)."""
    threads: int = 1
    """Solver threads."""
    seed: int = 0
    """Seed for randomized methods (the method name is mixed in, so methods never share a stream)."""
    verbose: bool = False


@dataclass
class MethodOutput:
    """What a method function returns; :func:`solvers.solve` turns it into a :class:`SolveResult`.

    The objective is *not* part of it: ``solve`` always recomputes it with the problem's ``evaluate``.
    ``bound`` is a proven bound on the optimum (lower for min, upper for max) or None. A method that declines an
    instance returns ``MethodOutput(None, "not_attempted", message="why")``.
    """

    decision: Any
    status: Status = "feasible"
    bound: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass
class SolveResult:
    """The solution record written by ``mecopt solve`` and by the benchmark harness."""

    problem: str
    method: str
    sense: Sense
    objective: float | None
    status: Status
    bound: float | None
    gap: float | None
    wall_time_s: float
    decision: dict[str, Any] | None
    seed: int | None = None
    feasible: bool | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @classmethod
    def failure(
        cls,
        problem: str,
        method: str,
        sense: Sense,
        message: str,
        *,
        wall_time_s: float = 0.0,
        status: Status = "error",
        bound: float | None = None,
        seed: int | None = None,
        info: dict[str, Any] | None = None,
    ) -> SolveResult:
        """A result without a decision (solver error, refusal, time-out before any incumbent)."""
        return cls(
            problem, method, sense, None, status, bound, None, wall_time_s, None, seed, None, {}, info or {}, message
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "method": self.method,
            "sense": self.sense,
            "objective": _jsonable(self.objective),
            "status": self.status,
            "bound": _jsonable(self.bound),
            "gap": _jsonable(self.gap),
            "wall_time_s": float(self.wall_time_s),
            "seed": self.seed,
            "feasible": self.feasible,
            "decision": self.decision,
            "metrics": {k: _jsonable(v) for k, v in self.metrics.items()},
            "info": {k: _jsonable(v) for k, v in self.info.items()},
            "message": self.message,
        }


def relative_gap(value: float | None, reference: float | None, sense: Sense) -> float | None:
    """The suite's one relative gap: how much worse ``value`` is than ``reference``, relative to the reference.

    ``gap = max(0, value - reference) / |reference|`` for min (``reference - value`` for max). The denominator is
    always the reference: the proven bound for a solver's certificate (``SolveResult.gap``), the certified optimum
    or the best proven bound for a table's gap to the optimum. Every table and every status check uses this
    function. Tiny negative values from solver tolerances are clipped to 0. Returns None when either number is
    missing or non-finite, and when the reference is 0 while the value is not (a relative gap is then undefined).
    """
    if value is None or reference is None or not math.isfinite(value) or not math.isfinite(reference):
        return None
    diff = value - reference if sense == "min" else reference - value
    if diff <= 0.0:
        return 0.0
    if abs(reference) < 1e-12:
        return None
    return diff / abs(reference)


class Deadline:
    """One wall-clock budget for a method (every exact solver's time-limit idiom goes through it).

    ``Deadline(None)`` never expires. ``remaining()`` is the seconds left (``inf`` without a limit, never negative);
    ``expired()`` says whether the budget is spent; ``sub(fraction)`` is a deadline for a phase that may use at most
    ``fraction`` of what is left; ``at`` is the absolute ``time.perf_counter()`` value of the end (``inf`` if none).
    """

    __slots__ = ("start", "limit", "at")

    def __init__(self, limit: float | None, *, start: float | None = None):
        self.start = time.perf_counter() if start is None else start
        self.limit = None if limit is None else float(limit)
        self.at = math.inf if self.limit is None else self.start + self.limit

    @classmethod
    def of(cls, opts: SolveOptions) -> Deadline:
        return cls(opts.time_limit)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return max(0.0, self.at - time.perf_counter())

    def expired(self) -> bool:
        return time.perf_counter() >= self.at

    def sub(self, fraction: float) -> Deadline:
        return Deadline(None if self.limit is None else fraction * self.remaining())

    def limit_or_none(self, floor: float = 0.0) -> float | None:
        """Seconds left for a back-end that takes a time limit (None without one), at least ``floor``."""
        return None if self.limit is None else max(floor, self.remaining())


# --------------------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------------------
def _key_int(key: str | int) -> int:
    if isinstance(key, int):
        return key
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")


def seed_sequence(seed: int, *keys: str | int) -> np.random.SeedSequence:
    """A SeedSequence derived from one user seed and a path of keys (strings are hashed stably)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence([int(seed), *[_key_int(k) for k in keys]])


def make_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An explicit numpy Generator for ``seed`` and a key path; never use the global np.random."""
    return np.random.default_rng(seed_sequence(seed, *keys))


def spawn_seeds(seed: int, n: int, *keys: str | int) -> list[int]:
    """``n`` independent integer seeds derived from one seed (SeedSequence.spawn)."""
    return [int(s.generate_state(1)[0]) for s in seed_sequence(seed, *keys).spawn(n)]


# --------------------------------------------------------------------------------------------------------------
# JSON and atomic writes
# --------------------------------------------------------------------------------------------------------------
def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return v


def to_json(obj: Any) -> str:
    return json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, os.replace).

    An interrupted or failed write leaves the previous file untouched and no temp file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, to_json(obj))


#: Largest JSON input accepted (bytes): far above any instance of the suite, small enough to parse safely.
MAX_JSON_BYTES = 256 * 1024 * 1024
#: Largest number of digits of a JSON integer (a float64 holds ~1.8e308; larger integers cannot be a value).
MAX_INT_DIGITS = 309


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _JsonValueError(f"integer with {len(text.lstrip('-'))} digits is out of range")
    return int(text)


class _JsonValueError(ValueError):
    pass


def parse_json_bytes(data: bytes, what: str = "input") -> Any:
    """Decode JSON from raw bytes with one clear :class:`InvalidInputError` for every way it can be malformed.

    Strict UTF-8 without a byte-order mark (RFC 8259), no integer longer than :data:`MAX_INT_DIGITS` digits, and
    no nesting deeper than the interpreter can parse; every failure names ``what`` (a file, usually).
    """
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInputError(f"{what} starts with a byte-order mark; JSON must be UTF-8 without one")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{what} is not valid UTF-8 (byte {e.start})") from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{what} is not valid JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:
        raise InvalidInputError(f"{what} is not valid JSON: nested too deeply") from None
    except _JsonValueError as e:
        raise InvalidInputError(f"{what} is not valid JSON: {e}") from None
    except ValueError as e:  # e.g. the interpreter's limit on integer string conversion
        raise InvalidInputError(f"{what} is not valid JSON: {e}") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """Read JSON with one clear error for a missing file or malformed content (see :func:`parse_json_bytes`)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise InvalidInputError(f"{what} {path} is a directory, not a file")
        with path.open("rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInputError(f"{what} not found: {path}") from None
    except OSError as e:
        raise InvalidInputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > MAX_JSON_BYTES:
        raise InvalidInputError(f"{what} {path} is larger than {MAX_JSON_BYTES} bytes")
    return parse_json_bytes(data, f"{what} {path}")


def check_writable(path: str | Path, what: str = "output file") -> None:
    """Raise :class:`InvalidInputError` unless ``path`` can be written atomically (call it before any work).

    ``path`` must not be a folder; its folder is created if missing and must accept a new file (probed by creating
    and removing a temporary file there, which is exactly what :func:`atomic_write_bytes` will do).
    """
    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise InvalidInputError(f"{what} {str(path)!r} is not a file name")
    if path.is_dir():
        raise InvalidInputError(f"{what} {path} is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise InvalidInputError(f"{what} {path} is not writable: {e.strerror or e}") from None


def nonfinite_term(metrics: Metrics) -> str | None:
    """Name of the first non-finite quantity of a feasible evaluation (None when the objective is finite).

    The reported quantities (``values``) are searched in order; a list entry is named ``name[i]``. Quantities that
    are legitimately infinite (a starved user's latency) are only reported when the objective itself is not finite.
    """
    if not metrics.feasible or math.isfinite(metrics.objective):
        return None
    for name, v in metrics.values.items():
        if isinstance(v, (list, tuple, np.ndarray)):
            for i, x in enumerate(np.ravel(np.asarray(v, dtype=object))):
                if isinstance(x, (float, np.floating)) and not math.isfinite(x):
                    return f"{name}[{i}]"
        elif isinstance(v, (float, np.floating)) and not math.isfinite(v):
            return name
    return "objective"


def require_finite(problem: str, metrics: Metrics) -> Metrics:
    """The final guard: a feasible evaluation with a non-finite objective is bad input, never a result."""
    term = nonfinite_term(metrics)
    if term is not None:
        raise InvalidInputError(
            f"{problem}: evaluation overflowed: {term} is not finite (objective {metrics.objective!r}); "
            "the instance's values are outside the range the model can evaluate"
        )
    return metrics


def results_dir() -> Path:
    """Where result tables, raw JSON, plots and checkpoints live.

    ``$MECOPT_RESULTS`` if set, else ``results/`` beside the installed source tree (a checkout or an editable
    install), else ``./results``.
    """
    env = os.environ.get("MECOPT_RESULTS")
    if env:
        return Path(env)
    tree = Path(__file__).resolve().parents[1]
    if (tree / "pyproject.toml").exists():
        return tree / "results"
    return Path.cwd() / "results"
