"""Validated, frozen, JSON-round-trippable records of numpy arrays.

Problem modules declare their ``Instance`` and ``Decision`` as frozen dataclasses deriving from :class:`Record`,
with every field made by :func:`array`, :func:`scalar` or :func:`choice`. The field metadata carries the unit,
the documentation (with the paper equation), the shape (dimension names refer to integer scalar fields of the
same record, or are integers) and the admissible range. ``Record`` converts inputs to numpy arrays, freezes them,
and validates on construction, raising one :class:`~mecopt.core.InvalidInputError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from mecopt.core import InvalidInputError

_MISSING = dataclasses.MISSING


def _meta(kind: str, doc: str, unit: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "doc": doc, "unit": unit, **kw}


def array(
    doc: str,
    unit: str,
    shape: tuple[str | int, ...],
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    default: Any = _MISSING,
) -> Any:
    """A numpy array field. ``shape`` names integer scalar fields of the record (or gives integers)."""
    md = _meta("array", doc, unit, shape=shape, ge=ge, gt=gt, le=le, lt=lt, integer=integer)
    if default is _MISSING:
        return dataclasses.field(metadata=md)
    return dataclasses.field(default_factory=lambda: default, metadata=md)


def scalar(
    doc: str,
    unit: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    default: Any = _MISSING,
) -> Any:
    """A finite float (or int with ``integer=True``) field."""
    md = _meta("scalar", doc, unit, ge=ge, gt=gt, le=le, lt=lt, integer=integer)
    if default is _MISSING:
        return dataclasses.field(metadata=md)
    return dataclasses.field(default=default, metadata=md)


def choice(doc: str, options: tuple[str, ...], default: str) -> Any:
    """A string field restricted to ``options`` (used for named model variants)."""
    return dataclasses.field(default=default, metadata=_meta("choice", doc, "", options=options))


def _check_range(name: str, values: np.ndarray, md: Mapping[str, Any]) -> None:
    checks = (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    )
    for key, ok, sym in checks:
        b = md.get(key)
        if b is None:
            continue
        good = ok(values, b)
        if not np.all(good):
            bad = values[~good] if values.ndim else values
            first = np.atleast_1d(bad)[0]
            raise InvalidInputError(f"{name}: every value must be {sym} {b}, got {first!r}")


def record(cls: type) -> Any:
    """Class decorator for Record subclasses: a frozen dataclass compared by value (arrays included)."""
    return dataclasses.dataclass(frozen=True, eq=False)(cls)


@dataclasses.dataclass(frozen=True, eq=False)
class Record:
    """Base of Instance/Decision records: converts, freezes and validates fields on construction."""

    problem_key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        fields = dataclasses.fields(self)
        # scalars and choices first: array shapes refer to them
        ordered = [f for f in fields if f.metadata.get("kind") != "array"] + [
            f for f in fields if f.metadata.get("kind") == "array"
        ]
        for f in ordered:
            object.__setattr__(self, f.name, self._coerce(f, getattr(self, f.name)))
        self.validate()

    # -- conversion ------------------------------------------------------------------------------------------
    def _where(self, name: str) -> str:
        prefix = f"{self.problem_key}: " if self.problem_key else ""
        return f"{prefix}{type(self).__name__}.{name}"

    def _dim(self, d: str | int, actual: int) -> int:
        if isinstance(d, int):
            return d
        if d == "*":  # any length (checked against the instance by the problem's evaluate)
            return actual
        return int(getattr(self, d))

    def _coerce(self, f: dataclasses.Field[Any], value: Any) -> Any:
        md = f.metadata
        kind = md.get("kind")
        where = self._where(f.name)
        if kind == "choice":
            if not isinstance(value, str) or value not in md["options"]:
                raise InvalidInputError(f"{where}: must be one of {list(md['options'])}, got {value!r}")
            return value
        if kind == "scalar":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidInputError(f"{where}: expected a number, got {type(value).__name__}")
            v = float(value)
            if not math.isfinite(v):
                raise InvalidInputError(f"{where}: must be finite, got {value!r}")
            if md.get("integer"):
                if v != round(v):
                    raise InvalidInputError(f"{where}: must be an integer, got {value!r}")
                out: Any = int(round(v))
            else:
                out = v
            _check_range(where, np.asarray(v), md)
            return out
        if kind == "array":
            try:
                arr = np.array(value, dtype=float)
            except (TypeError, ValueError):
                raise InvalidInputError(f"{where}: expected a numeric array") from None
            spec = md["shape"]
            actual = arr.shape if arr.ndim == len(spec) else (0,) * len(spec)
            shape = tuple(self._dim(d, a) for d, a in zip(spec, actual, strict=True))
            if arr.shape != shape:
                dims = ", ".join(f"{d}={s}" if isinstance(d, str) else str(d) for d, s in zip(spec, shape, strict=True))
                raise InvalidInputError(f"{where}: expected shape ({dims}), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise InvalidInputError(f"{where}: every value must be finite (found NaN or inf)")
            if md.get("integer"):
                if not np.all(arr == np.round(arr)):
                    raise InvalidInputError(f"{where}: every value must be an integer")
                arr = arr.astype(np.int64)
            _check_range(where, arr, md)
            arr.flags.writeable = False
            return arr
        return value

    def validate(self) -> None:
        """Cross-field checks; subclasses override (call super) and raise InvalidInputError."""

    # -- JSON ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        name = f"{cls.problem_key + ': ' if cls.problem_key else ''}{cls.__name__}"
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{name}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(f"{name}: unknown field(s) {unknown}")
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in data and f.default is _MISSING and f.default_factory is _MISSING
        ]
        if missing:
            raise InvalidInputError(f"{name}: missing field(s) {missing}")
        return cls(**dict(data))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_docs(cls) -> list[tuple[str, str, str]]:
        """(name, unit, doc) of every field: used by docs and ``--help``."""
        return [(f.name, f.metadata.get("unit", ""), f.metadata.get("doc", "")) for f in dataclasses.fields(cls)]
