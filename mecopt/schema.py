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


def range_text(md: Mapping[str, Any]) -> str:
    """The admissible range of a field as text, e.g. ``[1e-09, 10000] W`` (empty when unbounded)."""
    lo = (
        "[" + f"{md['ge']:g}"
        if md.get("ge") is not None
        else ("(" + f"{md['gt']:g}" if md.get("gt") is not None else "")
    )
    hi = (
        f"{md['le']:g}" + "]"
        if md.get("le") is not None
        else (f"{md['lt']:g}" + ")" if md.get("lt") is not None else "")
    )
    if not lo and not hi:
        return ""
    unit = f" {md['unit']}" if md.get("unit") else ""
    return f"{lo or '(-inf'}, {hi or 'inf)'}{unit}"


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
            at = ""
            if values.ndim:
                idx = np.argwhere(~good)[0]
                first = values[tuple(idx)]
                at = f" at {list(map(int, idx))}"
            else:
                first = values
            raise InvalidInputError(
                f"{name}: every value must be {sym} {b:g} (range {range_text(md)}), got {float(first):g}{at}"
            )


#: Largest magnitude of an integer field (exactly representable in float64, far below the int64 wrap).
MAX_INTEGER = 2**53


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(where: str, value: Any, integer: bool) -> Any:
    """One strict JSON number: int or float (numpy scalars allowed), never bool or str; finite; an integer
    field's value is checked (integral, |v| <= MAX_INTEGER) before it is cast."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{where}: expected a number, got {type(value).__name__} {_short(value)}")
    if isinstance(value, (int, np.integer)):
        if abs(int(value)) > (MAX_INTEGER if integer else 10**308):
            raise InvalidInputError(
                f"{where}: number out of range, got an integer with {len(str(abs(int(value))))} digits"
            )
        return int(value) if integer else float(value)
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInputError(f"{where}: must be finite, got {value!r}")
    if integer:
        if v != math.floor(v):
            raise InvalidInputError(f"{where}: must be an integer, got {value!r}")
        if abs(v) > MAX_INTEGER:
            raise InvalidInputError(f"{where}: integer out of range, got {value!r}")
        return int(v)
    return v


_NUMERIC_KINDS = {"i": "integer", "u": "integer", "f": "float"}


def _to_array(where: str, value: Any, ndim: int, integer: bool) -> np.ndarray:
    """Convert an array field strictly: nested lists of exactly ``ndim`` levels whose leaves are JSON numbers
    (never bool or str), or a numeric numpy array; finite; integer fields checked before the cast to int64."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "b":  # numpy booleans from Python code (a 0/1 mask) are integers, never JSON
            value = value.astype(np.int64)
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidInputError(f"{where}: expected a numeric array, got dtype {value.dtype}")
        if value.ndim != ndim:
            raise InvalidInputError(f"{where}: expected shape with {ndim} dimension(s), got {value.ndim}")
        arr = value.astype(float)
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{where}: every value must be finite (found NaN or inf)")
        if integer:
            if value.dtype.kind == "f" and not np.all(arr == np.floor(arr)):
                raise InvalidInputError(f"{where}: every value must be an integer")
            if arr.size and np.max(np.abs(arr)) > MAX_INTEGER:
                raise InvalidInputError(f"{where}: integer out of range")
            return np.array(value, dtype=np.int64)
        return arr
    # nested sequences (JSON): walk level by level, without recursion (no depth limit can be hit)
    level: list[Any] = [value]
    shape: list[int] = []
    for depth in range(ndim):
        nxt: list[Any] = []
        length: int | None = None
        for item in level:
            if isinstance(item, np.ndarray):  # rows built by Python code (a list of numpy arrays)
                item = item.tolist()
            if not isinstance(item, (list, tuple)):
                got = type(item).__name__
                raise InvalidInputError(
                    f"{where}: expected shape with {ndim} dimension(s), got a {got} at depth {depth}"
                )
            if length is None:
                length = len(item)
            elif len(item) != length:
                raise InvalidInputError(
                    f"{where}: ragged array, not a shape (rows of lengths {length} and {len(item)})"
                )
            nxt.extend(item)
        shape.append(length if length is not None else 0)
        level = nxt
    out = np.empty(len(level), dtype=np.int64 if integer else float)
    for i, leaf in enumerate(level):
        if isinstance(leaf, (list, tuple)):
            raise InvalidInputError(f"{where}: expected shape with {ndim} dimension(s), got deeper nesting")
        try:
            out[i] = _number(where, leaf, integer)
        except InvalidInputError as e:
            idx = np.unravel_index(i, shape) if all(shape) else (i,)
            raise InvalidInputError(str(e).replace(f"{where}:", f"{where}{list(map(int, idx))}:", 1)) from None
    return out.reshape(shape)


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
                raise InvalidInputError(f"{where}: must be one of {list(md['options'])}, got {_short(value)}")
            return value
        if kind == "scalar":
            v = _number(where, value, bool(md.get("integer")))
            _check_range(where, np.asarray(v), md)
            return v
        if kind == "array":
            spec = md["shape"]
            arr = _to_array(where, value, len(spec), bool(md.get("integer")))
            shape = tuple(self._dim(d, a) for d, a in zip(spec, arr.shape, strict=True))
            if arr.shape != shape:
                dims = ", ".join(f"{d}={s}" if isinstance(d, str) else str(d) for d, s in zip(spec, shape, strict=True))
                raise InvalidInputError(f"{where}: expected shape ({dims}), got {arr.shape}")
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
        """(name, unit, doc) of every field: used by docs and ``--help``; the doc ends with the admissible range."""
        out = []
        for f in dataclasses.fields(cls):
            doc = f.metadata.get("doc", "")
            rng = range_text(f.metadata) if f.metadata.get("kind") in ("scalar", "array") else ""
            out.append((f.name, f.metadata.get("unit", ""), f"{doc}; range {rng}" if rng else doc))
        return out
