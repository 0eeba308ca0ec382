"""Issue #18: every hostile input of the generated corpus (tests/corpus.py) is rejected by name, in process.

Exit 2 with exactly one stderr line naming the field / file / flag, or exit 1 with one line naming an equation;
never an internal error, never a traceback, never a ``--out`` written by a rejected solve.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from mecopt.cli import main
from mecopt.registry import get_problem, problem_keys
from tests.corpus import DEC, INST, Mutant, base_files, mutants

KEYS = problem_keys()
EQUATION = re.compile(r"\beqs?\. \(?\d+")  # "eq. (2)", "eq. 12", "eqs. (13)/(16)": a paper equation
CLASSES = ("decoding", "types", "extreme", "unused", "structure", "infeasible", "options")


@pytest.fixture(scope="module")
def corpora() -> dict[str, list[Mutant]]:
    return {key: mutants(key) for key in KEYS}


def _run(m: Mutant, d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    for rel, data in m.files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    capsys.readouterr()
    rc = main([a.replace("{dir}", str(d)) for a in m.argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("key", KEYS)
def test_corpus_is_large_and_covers_every_class(key: str, corpora: dict[str, list[Mutant]]) -> None:
    ms = corpora[key]
    assert len(ms) >= 40
    counts = Counter(m.cls for m in ms)
    floats = any(not f.metadata.get("integer") for f in dataclasses.fields(get_problem(key).Decision))
    want = set(CLASSES) if floats else set(CLASSES) - {"unused"}  # dtomalb's decision has no float entry
    assert want <= set(counts), counts
    assert len({m.name for m in ms}) == len(ms), "mutant names are unique"


@pytest.mark.parametrize("key", KEYS)
def test_every_mutant_is_rejected_by_name(
    key: str, corpora: dict[str, list[Mutant]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = []
    for i, m in enumerate(corpora[key]):
        d = tmp_path / str(i)
        d.mkdir()
        rc, out, err = _run(m, d, capsys)
        lines = err.strip().splitlines()
        ok = (
            rc == m.exit_code
            and len(lines) == 1
            and m.needle in lines[0]
            and "internal error" not in err
            and "Traceback" not in err
            and (m.exit_code == 2 or EQUATION.search(lines[0]) is not None)
            and not any((d / f).exists() for f in m.forbid_written)
        )
        if rc == 2:
            assert out == "", f"{m.name}: a rejected input prints nothing on stdout"
        if not ok:
            failures.append(f"{m.cls}/{m.name}: rc={rc} (want {m.exit_code}, needle {m.needle!r}): {err.strip()[:300]}")
    assert not failures, "\n".join(failures)


def test_base_files_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus starts from a valid pair: evaluate accepts it, and it agrees with its own solution file."""
    for key in KEYS:
        env, sol = base_files(key)
        (tmp_path / INST).write_text(json.dumps(env))
        (tmp_path / DEC).write_text(json.dumps(sol))
        rc = main(["evaluate", key, "--instance", str(tmp_path / INST), "--decision", str(tmp_path / DEC)])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert json.loads(out)["agrees_with_file"] is True
