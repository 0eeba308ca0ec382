"""Issue #18: honest statuses, strict JSON boundary, final finite guard, CLI options and --out, evaluate's claims."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mecopt import cli
from mecopt.core import (
    OPTIMALITY_TOL,
    STATUSES,
    InvalidInputError,
    MethodOutput,
    Metrics,
    SolveOptions,
    nonfinite_term,
    parse_json_bytes,
    require_finite,
)
from mecopt.problems import cto as C
from mecopt.problems import dtomalb as D
from mecopt.registry import get_problem
from mecopt.spec import MethodSpec
from solvers import finish, trivial_bound

SPEC = get_problem("dtomalb")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    inst, sol = tmp_path / "i.json", tmp_path / "s.json"
    assert _run(capsys, "generate", "dtomalb", "--size", "tiny", "--seed", "1", "--out", str(inst))[0] == 0
    assert _run(capsys, "solve", "dtomalb", "--instance", str(inst), "--method", "exact", "--out", str(sol))[0] == 0
    return inst, sol


# ------------------------------------------------------------------------------------------------------------
# Statuses (finish)
# ------------------------------------------------------------------------------------------------------------
def test_statuses_include_not_attempted() -> None:
    assert "not_attempted" in STATUSES and set(STATUSES) >= {"optimal", "feasible", "time_limit", "infeasible", "error"}


def test_loose_gap_never_makes_optimal() -> None:
    """--gap only stops the search early: 'optimal' needs the recomputed gap <= 1e-6 whatever mip_gap says."""
    inst = SPEC.make_instance("tiny", 0)
    dec = D.Decision(a=np.ones(inst.N, dtype=np.int64))
    obj = SPEC.evaluate(inst, dec).objective
    loose = SolveOptions(mip_gap=0.5)
    r = finish(SPEC, inst, "x", MethodOutput(dec, "optimal", obj / 1.02), 0.0, loose, 0)
    assert r.status == "feasible" and r.gap is not None and r.gap > OPTIMALITY_TOL
    r = finish(SPEC, inst, "x", MethodOutput(dec, "optimal", obj * (1 - 1e-8)), 0.0, loose, 0)
    assert r.status == "optimal"


def test_not_attempted_keeps_reason_and_no_decision() -> None:
    inst = SPEC.make_instance("tiny", 0)
    r = finish(SPEC, inst, "x", MethodOutput(None, "not_attempted", message="N = 99 > 14"), 0.1, SolveOptions(), 0)
    assert r.status == "not_attempted" and r.message == "N = 99 > 14" and r.decision is None and r.bound is None
    assert r.to_dict()["status"] == "not_attempted"
    dec = D.Decision(a=np.zeros(inst.N, dtype=np.int64))  # a decision does not turn a refusal into a result
    assert finish(SPEC, inst, "x", MethodOutput(dec, "not_attempted"), 0.1, SolveOptions(), 0).decision is None


def test_a_method_may_decline_by_raising() -> None:
    from mecopt.core import NotAttemptedError
    from solvers import solve

    def picky(inst: object, opts: SolveOptions) -> MethodOutput:
        raise NotAttemptedError("N = 5 > 4: enumeration not attempted")

    r = solve("dtomalb", SPEC.make_instance("tiny", 0), MethodSpec("picky", "exact", picky, "", certified=True))
    assert r.status == "not_attempted" and "not attempted" in r.message and r.decision is None


@pytest.mark.parametrize("key", ["dtomalb", "djtcra", "into", "dtac", "cto"])
def test_time_limit_gets_a_valid_trivial_bound(key: str) -> None:
    spec = get_problem(key)
    inst = spec.make_instance("tiny", 2)
    from solvers import solve

    best = solve(key, inst, "exact", SolveOptions(time_limit=60))
    assert best.status == "optimal"
    dec = spec.Decision.from_dict(best.decision)
    r = finish(spec, inst, "x", MethodOutput(dec, "time_limit"), 1.0, SolveOptions(), 0)
    assert r.status == "time_limit" and r.bound is not None and r.bound == trivial_bound(spec, inst)
    assert (r.bound <= best.objective + 1e-9) if spec.sense == "min" else (r.bound >= best.objective - 1e-9)
    r = finish(spec, inst, "x", MethodOutput(None, "time_limit"), 1.0, SolveOptions(), 0)
    assert r.status == "time_limit" and r.bound is not None and r.decision is None


def test_unknown_status_and_false_infeasible_claim_are_errors() -> None:
    inst = SPEC.make_instance("tiny", 0)
    dec = D.Decision(a=np.zeros(inst.N, dtype=np.int64))
    r = finish(SPEC, inst, "x", MethodOutput(dec, "great"), 0.0, SolveOptions(), 0)  # type: ignore[arg-type]
    assert r.status == "error" and "unknown status" in r.message
    r = finish(SPEC, inst, "x", MethodOutput(dec, "infeasible"), 0.0, SolveOptions(), 0)
    assert r.status == "error" and "infeasible" in r.message


# ------------------------------------------------------------------------------------------------------------
# Final guard: no non-finite objective is ever reported as feasible
# ------------------------------------------------------------------------------------------------------------
def _overflowing(spec: object) -> object:
    def evaluate(inst: object, dec: object) -> Metrics:
        return Metrics(math.inf, True, (), {"mean_delay_s": 1.0, "delay_s": [1.0, math.inf]})

    return dataclasses.replace(spec, evaluate=evaluate)  # type: ignore[type-var]


def test_nonfinite_term_is_named() -> None:
    m = Metrics(math.inf, True, (), {"a": 1.0, "b": [2.0, math.nan], "c": math.inf})
    assert nonfinite_term(m) == "b[1]"
    assert nonfinite_term(Metrics(math.nan, True)) == "objective"
    assert nonfinite_term(Metrics(math.nan, False, ("eq. (2)",))) is None  # infeasible: NaN is expected
    assert nonfinite_term(Metrics(1.0, True, (), {"latency_s": [math.inf]})) is None  # a starved user is legit
    with pytest.raises(InvalidInputError, match=r"b\[1\] is not finite"):
        require_finite("x", m)


def test_finish_and_cli_never_report_a_nonfinite_objective(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inst_path, sol = files
    bad = _overflowing(SPEC)
    inst = SPEC.make_instance("tiny", 1)
    r = finish(bad, inst, "x", MethodOutput(D.Decision(a=np.zeros(inst.N, dtype=np.int64))), 0.0, SolveOptions(), 0)
    assert r.status == "error" and r.feasible is None and r.objective is None
    assert r.info["nonfinite_term"] == "delay_s[1]"
    monkeypatch.setattr(cli, "get_problem", lambda key: bad)
    rc, out, err = _run(capsys, "evaluate", "dtomalb", "--instance", str(inst_path), "--decision", str(sol))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "delay_s[1]" in err


# ------------------------------------------------------------------------------------------------------------
# JSON boundary
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xff\xfe{}", "byte-order mark"),
        ("{}".encode("utf-16-le"), "not valid"),
        (b'{"a": "\xc3\x28"}', "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": 1' + b"0" * 400 + b"}", "out of range"),
    ],
)
def test_decoding_errors_are_invalid_input(data: bytes, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        parse_json_bytes(data, "test file")


def test_strict_numbers_in_arrays_and_integers_checked_before_cast() -> None:
    d = SPEC.make_instance("tiny", 0).to_dict()
    for bad, needle in (
        ([True, *d["L"][1:]], "expected a number, got bool"),
        (["3", *d["L"][1:]], "expected a number, got str"),
        ([None, *d["L"][1:]], "expected a number"),
    ):
        with pytest.raises(InvalidInputError, match=r"Instance\.L\[0\]: " + needle):
            D.Instance.from_dict({**d, "L": bad})
    for bad_index in (True, 10**19, 2**53 + 1, 1e19, 0.5, "1"):
        with pytest.raises(InvalidInputError, match=r"Decision\.a"):
            D.Decision.from_dict({"a": [bad_index] + [0] * (d["N"] - 1)})
    with pytest.raises(InvalidInputError, match=r"Instance\.N"):
        D.Instance.from_dict({**d, "N": True})
    # numpy arrays from Python code: a boolean mask is an integer array, a string array is not numeric
    ok = C.Decision(target=np.array([True, False]), a=[0.0, 0.0], d_local=[1.0, 1.0], d_remote=[0.0, 0.0], b=[0, 0])
    assert ok.target.dtype == np.int64 and ok.target.tolist() == [1, 0]
    with pytest.raises(InvalidInputError, match="numeric"):
        C.Decision(target=np.array(["1", "0"]), a=[0.0, 0.0], d_local=[1.0, 1.0], d_remote=[0.0, 0.0], b=[0, 0])


def test_every_numeric_instance_field_has_a_documented_range() -> None:
    from mecopt.registry import problem_keys

    for key in problem_keys():
        spec = get_problem(key)
        for f in dataclasses.fields(spec.Instance):
            md = f.metadata
            if md.get("kind") not in ("scalar", "array"):
                continue
            lo = md["ge"] if md.get("ge") is not None else md.get("gt")
            hi = md["le"] if md.get("le") is not None else md.get("lt")
            assert lo is not None, f"{key}: Instance.{f.name} has no lower bound"
            if not (md.get("kind") == "array" and md.get("integer")):  # index arrays are checked against a count
                assert hi is not None, f"{key}: Instance.{f.name} has no upper bound"
        docs = dict((n, doc) for n, _, doc in spec.Instance.field_docs())
        assert any("range [" in doc for doc in docs.values())


def test_unused_decision_entries_are_checked() -> None:
    """cto: a user that offloads nothing (target 0) cannot carry a 1e308 remote allocation or bandwidth."""
    inst = C.PROBLEM.make_instance("tiny", 0)
    dec = C.local_only(inst).to_dict()
    for name in ("d_remote", "b"):
        with pytest.raises(InvalidInputError, match=rf"Decision\.{name}"):
            C.Decision.from_dict({**dec, name: [1e308] * inst.M})
    assert C.evaluate(inst, C.Decision.from_dict(dec)).feasible


# ------------------------------------------------------------------------------------------------------------
# CLI: --out, options, evaluate's agreement with the file
# ------------------------------------------------------------------------------------------------------------
def test_failing_solve_never_replaces_a_good_out(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inst, sol = files
    good = sol.read_text()

    def broken(inst: object, opts: SolveOptions) -> MethodOutput:
        raise RuntimeError("backend crashed")

    import mecopt.methods

    monkeypatch.setattr(mecopt.methods, "get_method", lambda key, name: MethodSpec("broken", "heuristic", broken, ""))
    rc, out, err = _run(capsys, "solve", "dtomalb", "--instance", str(inst), "--method", "broken", "--out", str(sol))
    assert rc == 1 and sol.read_text() == good and "left unchanged" in err and len(err.strip().splitlines()) == 1
    fresh = sol.parent / "new.json"
    rc, _, _ = _run(capsys, "solve", "dtomalb", "--instance", str(inst), "--method", "broken", "--out", str(fresh))
    assert rc == 1 and json.loads(fresh.read_text())["status"] == "error"  # no good file to keep: the record


def test_bad_options_fail_before_solving_and_write_nothing(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    inst, sol = files
    good = sol.read_text()
    for flag, value in (("--method-seed", "-1"), ("--time-limit", "nan"), ("--gap", "0.99999999999999999")):
        rc, out, err = _run(capsys, "solve", "dtomalb", "--instance", str(inst), flag, value, "--out", str(sol))
        assert rc == 2 and out == "" and flag in err and sol.read_text() == good


def test_gap_option_does_not_make_optimal_a_lie(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    inst, sol = files
    rc, out, _ = _run(capsys, "solve", "dtomalb", "--instance", str(inst), "--gap", "0.5", "--out", str(sol))
    res = json.loads(sol.read_text())
    assert rc == 0 and (res["status"] != "optimal" or res["gap"] <= OPTIMALITY_TOL)


def test_evaluate_reports_whether_the_file_agrees(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    inst, sol = files
    argv = ("evaluate", "dtomalb", "--instance", str(inst), "--decision", str(sol))
    rc, out, _ = _run(capsys, *argv)
    assert rc == 0 and json.loads(out)["agrees_with_file"] is True
    res = json.loads(sol.read_text())
    true_obj = res["objective"]
    sol.write_text(json.dumps({**res, "objective": true_obj * 0.5}))
    ev = json.loads(_run(capsys, *argv)[1])
    assert ev["agrees_with_file"] is False and ev["file_objective"] == true_obj * 0.5
    assert ev["objective"] == pytest.approx(true_obj) and ev["file_status"] == res["status"]
    bad = {**res, "decision": {"a": [99] * len(res["decision"]["a"])}}  # claims optimal, is infeasible
    sol.write_text(json.dumps(bad))
    rc, out, _ = _run(capsys, *argv)
    assert rc == 1 and json.loads(out)["agrees_with_file"] is False
    sol.write_text(json.dumps(res["decision"]))  # a bare decision makes no claim
    assert "agrees_with_file" not in json.loads(_run(capsys, *argv)[1])


def test_out_is_checked_before_solving(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder, a path below a regular file, or (as a non-root user) a read-only folder: exit 2, nothing computed."""
    import os

    inst, _ = files
    (tmp_path / "afile").write_text("x")
    targets = [tmp_path, tmp_path / "afile" / "o.json"]
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        targets.append(ro / "o.json")
    for out in targets:
        rc, stdout, err = _run(capsys, "solve", "dtomalb", "--instance", str(inst), "--out", str(out))
        assert rc == 2 and stdout == "" and "--out" in err and len(err.strip().splitlines()) == 1
    assert _run(capsys, "generate", "dtomalb", "--out", str(tmp_path))[0] == 2
