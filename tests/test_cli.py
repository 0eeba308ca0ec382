"""The CLI contract: formats scripts depend on, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mecopt.cli import main
from mecopt.registry import problem_keys


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_problems_and_methods(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "problems")
    assert rc == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == problem_keys()
    for key in problem_keys():
        rc, out, _ = run(capsys, "methods", key)
        names = [line.split("\t")[0] for line in out.splitlines()]
        assert rc == 0 and "exact" in names


@pytest.mark.parametrize("key", problem_keys())
def test_generate_solve_evaluate_round_trip(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inst, sol = tmp_path / "i.json", tmp_path / "s.json"
    assert run(capsys, "generate", key, "--size", "tiny", "--seed", "2", "--out", str(inst))[0] == 0
    rc, out, err = run(
        capsys, "solve", key, "--instance", str(inst), "--method", "exact", "--time-limit", "60", "--out", str(sol)
    )
    assert rc == 0, err
    res = json.loads(sol.read_text())
    for field in ("problem", "method", "sense", "objective", "status", "bound", "gap", "wall_time_s", "decision"):
        assert field in res
    assert res["status"] == "optimal" and res["seed"] == 2
    rc, out, _ = run(capsys, "evaluate", key, "--instance", str(inst), "--decision", str(sol))
    ev = json.loads(out)
    assert rc == 0 and ev["feasible"] is True
    assert ev["objective"] == pytest.approx(res["objective"], rel=1e-12)


def test_evaluate_recomputes_and_ignores_solver_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inst, sol = tmp_path / "i.json", tmp_path / "s.json"
    run(capsys, "generate", "dtomalb", "--size", "tiny", "--seed", "1", "--out", str(inst))
    run(capsys, "solve", "dtomalb", "--instance", str(inst), "--method", "all-local", "--out", str(sol))
    res = json.loads(sol.read_text())
    true_obj = res["objective"]
    res["objective"] = -123.0  # a lying solution file
    sol.write_text(json.dumps(res))
    _, out, _ = run(capsys, "evaluate", "dtomalb", "--instance", str(inst), "--decision", str(sol))
    assert json.loads(out)["objective"] == pytest.approx(true_obj)


BAD = [
    (
        "missing instance file",
        ["solve", "dtomalb", "--instance", "{tmp}/nope.json", "--out", "{tmp}/s.json"],
        "not found",
    ),
    (
        "malformed JSON",
        ["evaluate", "dtomalb", "--instance", "{tmp}/garbage.json", "--decision", "{tmp}/d.json"],
        "not valid JSON",
    ),
    ("wrong shape", ["evaluate", "dtomalb", "--instance", "{tmp}/i.json", "--decision", "{tmp}/short.json"], "shape"),
    ("unknown problem", ["methods", "nope"], "unknown problem"),
    (
        "unknown method",
        ["solve", "dtomalb", "--instance", "{tmp}/i.json", "--method", "magic", "--out", "{tmp}/s.json"],
        "unknown method",
    ),
    ("unknown size", ["generate", "dtomalb", "--size", "huge", "--out", "{tmp}/x.json"], "unknown size"),
    (
        "negative time limit",
        ["solve", "dtomalb", "--instance", "{tmp}/i.json", "--time-limit", "-1", "--out", "{tmp}/s.json"],
        "time-limit",
    ),
    ("negative seed", ["generate", "dtomalb", "--seed", "-3", "--out", "{tmp}/x.json"], "seed"),
    (
        "NaN in instance",
        ["evaluate", "dtomalb", "--instance", "{tmp}/nan.json", "--decision", "{tmp}/d.json"],
        "finite",
    ),
    (
        "instance of another problem",
        ["evaluate", "dtomalb", "--instance", "{tmp}/other.json", "--decision", "{tmp}/d.json"],
        "problem",
    ),
]


@pytest.mark.parametrize(("what", "argv", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_line_error(
    what: str, argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inst = tmp_path / "i.json"
    run(capsys, "generate", "dtomalb", "--size", "tiny", "--seed", "0", "--out", str(inst))
    data = json.loads(inst.read_text())
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "d.json").write_text(json.dumps({"a": [0] * data["instance"]["N"]}))
    (tmp_path / "short.json").write_text(json.dumps({"a": [0]}))
    nan = json.loads(inst.read_text())
    nan["instance"]["C"][0] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(nan))
    (tmp_path / "other.json").write_text(json.dumps({**data, "problem": "cto"}))
    rc, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0]


def test_infeasible_decision_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inst = tmp_path / "i.json"
    run(capsys, "generate", "dtomalb", "--size", "tiny", "--out", str(inst))
    n = json.loads(inst.read_text())["instance"]["N"]
    (tmp_path / "d.json").write_text(json.dumps({"a": [99] * n}))
    rc, out, err = run(capsys, "evaluate", "dtomalb", "--instance", str(inst), "--decision", str(tmp_path / "d.json"))
    assert rc == 1 and json.loads(out)["feasible"] is False
    assert "eq. (2)" in err


def test_console_script_help() -> None:
    out = subprocess.run([sys.executable, "-m", "mecopt", "solve", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--time-limit" in out.stdout


@pytest.mark.parametrize("key", problem_keys())
def test_solve_stdout_is_pure_json_in_a_fresh_process(key: str, tmp_path: Path) -> None:
    """Native solvers print banners to fd 1 (HiGHS does on first use): the CLI keeps stdout parseable JSON."""
    inst, sol = tmp_path / "i.json", tmp_path / "s.json"
    assert main(["generate", key, "--size", "tiny", "--seed", "1", "--out", str(inst)]) == 0
    out = subprocess.run(
        [sys.executable, "-m", "mecopt", "solve", key, "--instance", str(inst), "--method", "exact", "--out", str(sol)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "optimal"
