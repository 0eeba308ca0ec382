"""The benchmark suites (README's main job) must at least import and collect: CI runs only the fast tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_suites_collect() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--benchmark", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "tests collected" in out.stdout
    for key in ("dtomalb", "djtcra", "into", "dtac", "cto"):
        assert f"test_solve[{key}-" in out.stdout, f"no benchmark table entries for {key}"
