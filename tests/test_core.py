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
    assert relative_gap(10.0, 9.0, "min") == pytest.approx(0.1)
    assert relative_gap(9.0, 10.0, "max") == pytest.approx(1 / 9)
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
