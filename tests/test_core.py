from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mecopt.core import (
    InvalidInputError,
    MethodOutput,
    SolveOptions,
    atomic_write_text,
    make_rng,
    read_json,
    relative_gap,
    spawn_seeds,
)
from mecopt.problems import dtomalb as D
from mecopt.registry import get_problem
from solvers import finish


def test_relative_gap_senses() -> None:
    # the denominator is always the reference (the bound, or the optimum in a table)
    assert relative_gap(10.0, 9.0, "min") == pytest.approx(1 / 9)
    assert relative_gap(9.0, 10.0, "max") == pytest.approx(0.1)
    assert relative_gap(5.0, 0.0, "min") is None  # undefined relative to a zero reference
    assert relative_gap(0.0, 0.0, "min") == 0.0
    assert relative_gap(10.0, None, "min") is None
    assert relative_gap(10.0, 10.0 + 1e-15, "min") == 0.0  # clipped


def test_seeding_is_derived_and_stable() -> None:
    a = make_rng(5, "x").random(3)
    assert np.array_equal(a, make_rng(5, "x").random(3))
    assert not np.array_equal(a, make_rng(5, "y").random(3))
    s = spawn_seeds(1, 4)
    assert len(set(s)) == 4 and s == spawn_seeds(1, 4)
    with pytest.raises(InvalidInputError):
        make_rng(-1)


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "t.json"
    atomic_write_text(p, "old")

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["t.json"]  # no temp file left behind


def test_read_json_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        read_json(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text(json.dumps({"a": 1}))
    assert read_json(tmp_path / "ok.json") == {"a": 1}


def test_finish_downgrades_unsupported_optimal_and_catches_bad_bound() -> None:
    spec = get_problem("dtomalb")
    inst = spec.make_instance("tiny", 0)
    dec = D.Decision(a=np.ones(inst.N, dtype=np.int64))
    obj = spec.evaluate(inst, dec).objective
    r = finish(spec, inst, "x", MethodOutput(dec, "optimal", obj * 0.5), 0.0, SolveOptions(), 0)
    assert r.status == "feasible" and "claimed optimal" in r.message
    r = finish(spec, inst, "x", MethodOutput(dec, "optimal", obj * 1.5), 0.0, SolveOptions(), 0)
    assert r.status == "error" and "bound" in r.message
    bad = D.Decision(a=np.full(inst.N, 99))
    r = finish(spec, inst, "x", MethodOutput(bad, "feasible"), 0.0, SolveOptions(), 0)
    assert r.status == "error" and r.feasible is False and "eq. (2)" in r.message


def test_deadline() -> None:
    from mecopt.core import Deadline

    d = Deadline(None)
    assert d.remaining() == float("inf") and not d.expired() and d.limit_or_none() is None
    d = Deadline(0.0)
    assert d.expired() and d.remaining() == 0.0 and d.limit_or_none(0.5) == 0.5
    d = Deadline(100.0)
    assert 99.0 < d.remaining() <= 100.0 and d.sub(0.5).limit is not None and d.sub(0.5).limit <= 50.0


def test_failure_result_has_no_decision() -> None:
    from mecopt.core import SolveResult

    r = SolveResult.failure("dtomalb", "exact", "min", "boom", wall_time_s=1.5, seed=3, bound=2.0)
    d = r.to_dict()
    assert d["status"] == "error" and d["decision"] is None and d["bound"] == 2.0 and d["seed"] == 3
    assert d["message"] == "boom" and d["objective"] is None
