"""A corpus of hostile inputs for the CLI (issue #18), generated from a valid tiny instance of every problem.

Each :class:`Mutant` is a set of files plus one ``mecopt`` command line and what the CLI must answer: exit 2 with
one stderr line that names the broken field / file / flag (``needle``), or exit 1 with one line naming an equation
of the paper (an infeasible decision). Classes (``Mutant.cls``):

* ``decoding`` -- non-UTF-8 bytes, UTF-8 / UTF-16 byte-order marks, nesting deeper than any parser allows, an
  integer of 400 digits, truncated or empty files, a top-level array;
* ``types`` -- booleans and numeric strings inside arrays and as scalars, null, objects where numbers belong, wrong
  nesting depth, ragged arrays, decision indices given as booleans, floats, strings or 1e19 (int64 wrap);
* ``extreme`` -- 1e308, -1e308 and 5e-324 (where outside the field's range) in every numeric instance field, and
  literal NaN / Infinity / 1e400;
* ``unused`` -- 1e308 / -1e308 in every float decision entry, including entries the decision does not use;
* ``structure`` -- a missing field, an unknown field, a wrong length, another problem's file;
* ``infeasible`` -- decision indices far outside their set (exit 1 naming the equation);
* ``options`` -- ``solve`` options: time limit NaN / inf / 0 / -1, gap NaN / -1 / 1, threads 0, method seed -1,
  ``--out`` a directory or below a regular file (exit 2 before any work; nothing written).

Run ``python tests/corpus.py OUTDIR`` to write the corpus to disk (one folder per mutant with ``argv.json``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mecopt.core import SolveOptions, make_rng
from mecopt.registry import get_problem, problem_keys

INST, DEC, OUT = "inst.json", "dec.json", "out.json"
#: Methods used to build the valid decision each problem's mutants start from (cheap and deterministic).
BASE_METHOD = "exact"


@dataclass(frozen=True)
class Mutant:
    key: str
    cls: str
    name: str
    files: dict[str, bytes]
    argv: list[str]  # "{dir}" is replaced by the mutant's folder
    needle: str  # must appear in the one stderr line
    exit_code: int = 2
    forbid_written: tuple[str, ...] = field(default=())  # files that must not exist afterwards


def _dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def base_files(key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(instance envelope, solution record) of the valid starting point: tiny preset, seed 0, solved by exact."""
    from solvers import solve

    spec = get_problem(key)
    inst = spec.make_instance("tiny", 0)
    env = {"problem": key, "size": "tiny", "seed": 0, "variant": "literal", "instance": inst.to_dict()}
    res = solve(key, inst, BASE_METHOD, SolveOptions(time_limit=30))
    if res.decision is None or not res.feasible:
        raise RuntimeError(f"{key}: no feasible base decision ({res.status}: {res.message})")
    return env, res.to_dict()


def _first_leaf_path(value: Any) -> list[int]:
    path = []
    while isinstance(value, list) and value:
        path.append(0)
        value = value[0]
    return path


def _set_leaf(value: Any, path: list[int], new: Any) -> Any:
    if not path:
        return new
    out = list(value)
    out[path[0]] = _set_leaf(value[path[0]], path[1:], new)
    return out


def _with_field(env: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    return {**env, "instance": {**env["instance"], name: value}}


def _with_dec(sol: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    return {**sol, "decision": {**sol["decision"], name: value}}


def mutants(key: str, env: dict[str, Any] | None = None, sol: dict[str, Any] | None = None) -> list[Mutant]:
    """Every mutant of problem ``key`` (deterministic: the random choices come from ``make_rng(0, key)``)."""
    if env is None or sol is None:
        env, sol = base_files(key)
    spec = get_problem(key)
    rng = make_rng(0, "corpus", key)
    ev = ["evaluate", key, "--instance", "{dir}/" + INST, "--decision", "{dir}/" + DEC]
    good_inst, good_dec = _dump(env), _dump(sol)
    out: list[Mutant] = []

    def inst_m(cls: str, name: str, data: bytes, needle: str, code: int = 2) -> None:
        out.append(Mutant(key, cls, name, {INST: data, DEC: good_dec}, ev, needle, code))

    def dec_m(cls: str, name: str, data: bytes, needle: str, code: int = 2) -> None:
        out.append(Mutant(key, cls, name, {INST: good_inst, DEC: data}, ev, needle, code))

    # -- decoding ------------------------------------------------------------------------------------------
    text = json.dumps(env)
    inst_m("decoding", "non-utf8", text.encode()[:-2] + b"\xff\xfe" + text.encode()[-2:], INST)
    inst_m("decoding", "utf8-bom", b"\xef\xbb\xbf" + text.encode(), INST)
    inst_m("decoding", "utf16-bom", text.encode("utf-16"), INST)
    inst_m("decoding", "truncated", text.encode()[: len(text) // 2], INST)
    inst_m("decoding", "empty", b"", INST)
    inst_m("decoding", "top-level-array", b"[1, 2, 3]", "Instance")
    first_array = next(f.name for f in dataclasses.fields(spec.Instance) if f.metadata.get("kind") == "array")
    deep = "[" * 100_000 + "]" * 100_000
    inst_m(
        "decoding",
        "deep-nesting",
        text.replace(json.dumps(env["instance"][first_array]), deep, 1).encode(),
        INST,
    )
    dec_m("decoding", "decision-non-utf8", json.dumps(sol).encode() + b"\xc3\x28", DEC)
    dec_m("decoding", "decision-deep-nesting", ("[" * 50_000 + "]" * 50_000).encode(), DEC)

    # -- per instance field ----------------------------------------------------------------------------------
    for f in dataclasses.fields(spec.Instance):
        md = f.metadata
        kind = md.get("kind")
        name = f.name
        who = f"Instance.{name}"  # what the error line must name
        value = env["instance"][name]
        if kind == "choice":
            inst_m("types", f"{name}=unknown-choice", _dump(_with_field(env, name, "bogus")), who)
            inst_m("types", f"{name}=number", _dump(_with_field(env, name, 1)), who)
            continue
        if kind == "scalar":
            inst_m("types", f"{name}=bool", _dump(_with_field(env, name, True)), who)
            inst_m("types", f"{name}=string", _dump(_with_field(env, name, str(value))), who)
            inst_m("types", f"{name}=null", _dump(_with_field(env, name, None)), who)
            huge = text.replace(f'"{name}": {json.dumps(value)}', f'"{name}": 1' + "0" * 400, 1)
            inst_m("decoding", f"{name}=10**400", huge.encode(), INST)
            leaf: list[int] = []
        else:
            leaf = _first_leaf_path(value)
            if not leaf:
                continue
            inst_m("types", f"{name}[0]=bool", _dump(_with_field(env, name, _set_leaf(value, leaf, True))), who)
            inst_m(
                "types", f"{name}[0]=numeric-string", _dump(_with_field(env, name, _set_leaf(value, leaf, "3"))), who
            )
            inst_m("types", f"{name}=object", _dump(_with_field(env, name, {"0": 1})), who)
            inst_m("types", f"{name}=too-deep", _dump(_with_field(env, name, _set_leaf(value, leaf, [1.0]))), who)
            inst_m("structure", f"{name}=wrong-length", _dump(_with_field(env, name, value[:-1] + value[:1] * 2)), who)
            if md.get("integer"):
                inst_m("types", f"{name}[0]=1e19", _dump(_with_field(env, name, _set_leaf(value, leaf, 10**19))), who)
        if kind != "array" or not md.get("integer"):
            for tag, x in (("1e308", 1e308), ("-1e308", -1e308), ("5e-324", 5e-324)):
                lo, hi = (
                    md["ge"] if md.get("ge") is not None else md.get("gt"),
                    md["le"] if md.get("le") is not None else md.get("lt"),
                )
                outside = (lo is not None and x < lo) or (hi is not None and x > hi)
                if md.get("integer"):
                    outside = outside or x != int(x)
                if outside:
                    data = _with_field(env, name, _set_leaf(value, leaf, x))
                    inst_m("extreme", f"{name}={tag}", _dump(data), who)
        if kind == "array" and not md.get("integer"):
            bad = json.dumps(_with_field(env, name, _set_leaf(value, leaf, 12345.678)))
            for lit in ("NaN", "Infinity", "-Infinity", "1e400"):
                inst_m("extreme", f"{name}[0]={lit}", bad.replace("12345.678", lit, 1).encode(), who)

    inst_m("structure", "missing-field", _dump({**env, "instance": dict(list(env["instance"].items())[1:])}), "missing")
    inst_m("structure", "unknown-field", _dump(_with_field(env, "bogus_field", 1)), "bogus_field")
    other = next(k for k in problem_keys() if k != key)
    inst_m("structure", "other-problem", _dump({**env, "problem": other}), "problem")

    # -- per decision field ----------------------------------------------------------------------------------
    for f in dataclasses.fields(spec.Decision):
        name = f.name
        who = f"Decision.{name}"
        value = sol["decision"][name]
        leaf = _first_leaf_path(value)
        flat_len = len(value)
        pos = int(rng.integers(0, flat_len))  # a random entry (often one the decision does not use)
        path = [pos] + leaf[1:]
        dec_m("types", f"dec.{name}=bool-entry", _dump(_with_dec(sol, name, _set_leaf(value, path, True))), who)
        dec_m("types", f"dec.{name}=string-entry", _dump(_with_dec(sol, name, _set_leaf(value, path, "1"))), who)
        rest = {k: v for k, v in sol["decision"].items() if k != name}
        dec_m("structure", f"dec.{name}=missing", _dump({**sol, "decision": rest}), f"'{name}'")
        if f.metadata.get("integer"):
            dec_m("types", f"dec.{name}=1e19", _dump(_with_dec(sol, name, _set_leaf(value, path, 10**19))), who)
            dec_m("types", f"dec.{name}=1.5", _dump(_with_dec(sol, name, _set_leaf(value, path, 1.5))), who)
            dec_m(
                "infeasible",
                f"dec.{name}=10**6",
                _dump(_with_dec(sol, name, _set_leaf(value, path, 10**6))),
                "eq",
                code=1,
            )
        else:
            for tag, x in (("1e308", 1e308), ("-1e308", -1e308)):
                dec_m("unused", f"dec.{name}[{pos}]={tag}", _dump(_with_dec(sol, name, _set_leaf(value, path, x))), who)

    # -- solve options (validated before any work; nothing is written) ---------------------------------------
    sv = ["solve", key, "--instance", "{dir}/" + INST, "--out", "{dir}/" + OUT]
    for flag, val in (
        ("--time-limit", "nan"),
        ("--time-limit", "inf"),
        ("--time-limit", "0"),
        ("--time-limit", "-1"),
        ("--gap", "nan"),
        ("--gap", "-1"),
        ("--gap", "1"),
        ("--threads", "0"),
        ("--method-seed", "-1"),
        ("--time-limit", "soon"),
    ):
        out.append(Mutant(key, "options", f"{flag}={val}", {INST: good_inst}, [*sv, flag, val], flag, 2, (OUT,)))
    out.append(
        Mutant(
            key,
            "options",
            "--out=directory",
            {INST: good_inst, "outdir/keep": b""},
            ["solve", key, "--instance", "{dir}/" + INST, "--out", "{dir}/outdir"],
            "--out",
        )
    )
    out.append(
        Mutant(
            key,
            "options",
            "--out=below-a-file",
            {INST: good_inst, "afile": b"x"},
            ["solve", key, "--instance", "{dir}/" + INST, "--out", "{dir}/afile/out.json"],
            "--out",
        )
    )
    return out


def write_corpus(root: Path, keys: list[str] | None = None) -> int:
    """Write every mutant to ``root/<key>/<index>-<name>/`` (files + argv.json + expect.json); returns the count."""
    n = 0
    for key in keys or problem_keys():
        for i, m in enumerate(mutants(key)):
            d = root / key / f"{i:03d}-{m.cls}"
            for rel, data in m.files.items():
                (d / rel).parent.mkdir(parents=True, exist_ok=True)
                (d / rel).write_bytes(data)
            (d / "argv.json").write_text(json.dumps([a.replace("{dir}", str(d)) for a in m.argv]))
            (d / "expect.json").write_text(json.dumps({"name": m.name, "exit": m.exit_code, "needle": m.needle}))
            n += 1
    return n


if __name__ == "__main__":
    print(write_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")), "mutants written")
