"""``mecopt sweep`` on a LocalCluster of 2 workers, tiny instances: plan, tables, errors, resume after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mecopt.core import InvalidInputError
from mecopt.sweep import Cell, Store, parse_seeds, plan, run_cell, write_tables

ARGS = ["--problems", "dtomalb,djtcra", "--sizes", "tiny", "--methods", "exact,lb-greedy,selfish,random"]


def _cli(out: Path, seeds: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mecopt", "sweep", *ARGS, "--seeds", seeds, "--time-limit", "20", "--out",
            str(out), "--workers", "2", "--no-progress", *extra]  # fmt: skip


def _objectives(out: Path) -> dict[tuple, tuple]:
    rows = json.loads((out / "rows.json").read_text())["rows"]
    return {(r["problem"], r["seed"], r["method"]): (r["objective"], r["status"]) for r in rows}


def test_parse_seeds() -> None:
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    for bad in ("", "a", "5-1", "-1", "1.5"):
        with pytest.raises(InvalidInputError):
            parse_seeds(bad)


def test_plan_adds_the_reference_and_rejects_typos() -> None:
    cells = plan(["dtomalb", "djtcra"], ["tiny"], ["literal"], [0, 1], ["lb-greedy", "random"])
    assert Cell("dtomalb", "tiny", "literal", 0, "exact") in cells  # the shared reference
    assert Cell("djtcra", "tiny", "literal", 1, "random") in cells
    assert not any(c.problem == "djtcra" and c.method == "lb-greedy" for c in cells)  # djtcra has no lb-greedy
    assert len(cells) == 2 * 3 + 2 * 2
    with pytest.raises(InvalidInputError, match="no-such"):
        plan(["dtomalb"], ["tiny"], ["literal"], [0], ["no-such"])
    with pytest.raises(InvalidInputError, match="size"):
        plan(["dtomalb"], ["huge"], ["literal"], [0], ["exact"])


def test_failing_cell_is_a_row(tmp_path: Path) -> None:
    row = run_cell(Cell("dtomalb", "tiny", "no-such-variant", 0, "exact"), 5.0)
    assert row["status"] == "error" and "variant" in row["message"] and row["seed"] == 0
    store = Store(tmp_path)
    cell = Cell("dtomalb", "tiny", "no-such-variant", 0, "exact")
    store.write(cell, row)
    table = write_tables(tmp_path, [cell]).read_text()
    assert "Cells that failed (1)" in table


@pytest.mark.slow
def _strip_wall_times(out: Path) -> list[str]:
    """table.md without its wall-time column (the only column that may differ between runs)."""
    return [
        "|".join(c for i, c in enumerate(line.split("|")) if i != 10)
        for line in (out / "table.md").read_text().splitlines()
    ]


def test_resume_after_kill_equals_uninterrupted(tmp_path: Path) -> None:
    """Ctrl-C midway, then the same command: the resumed output equals an uninterrupted run's. Where the signal
    lands is up to the scheduler (on a loaded machine the sweep may finish first); the partial resume is therefore
    also checked deterministically, from a copy of the full run with half of its cells removed."""
    seeds = "0-7"
    full = tmp_path / "full"
    subprocess.run(_cli(full, seeds), check=True, capture_output=True, timeout=300)
    total = len(_objectives(full))
    cut = tmp_path / "cut"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cli(cut, seeds), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(cut.glob("cells/**/*.json"))) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C midway
    proc.communicate(timeout=120)
    done_before = len(list(cut.glob("cells/**/*.json")))
    assert 6 <= done_before <= total
    res = subprocess.run(_cli(cut, seeds), check=True, capture_output=True, text=True, timeout=300)
    assert f"{done_before} already done" in res.stderr
    assert _objectives(cut) == _objectives(full)
    assert _strip_wall_times(cut) == _strip_wall_times(full)
    plan_json = json.loads((cut / "sweep.json").read_text())
    assert plan_json["last_run"]["skipped"] == done_before and plan_json["workers"] == 2

    # deterministic partial resume: every other cell of the full run removed
    part = tmp_path / "part"
    shutil.copytree(full, part)
    cells = sorted(part.glob("cells/**/*.json"))
    assert len(cells) == total
    for f in cells[::2]:
        f.unlink()
    kept = total - len(cells[::2])
    res = subprocess.run(_cli(part, seeds), check=True, capture_output=True, text=True, timeout=300)
    assert f"{total - kept} cells run, {kept} already done" in res.stderr
    assert _objectives(part) == _objectives(full)
    assert _strip_wall_times(part) == _strip_wall_times(full)


def test_other_time_limit_refused(tmp_path: Path) -> None:
    Store(tmp_path).out.mkdir(parents=True, exist_ok=True)
    (tmp_path / "sweep.json").write_text(json.dumps({"time_limit_s": 5.0, "cells": 1}))
    from mecopt.cli import main

    rc = main(["sweep", "--problems", "dtomalb", "--sizes", "tiny", "--seeds", "0", "--out", str(tmp_path),
               "--time-limit", "20", "--workers", "1", "--no-progress"])  # fmt: skip
    assert rc == 2
