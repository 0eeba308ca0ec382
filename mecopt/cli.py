"""The ``mecopt`` command line (stable contract; scripts depend on these formats).

    mecopt problems
    mecopt methods KEY
    mecopt generate KEY --size S --seed N --out inst.json [--variant V]
    mecopt solve KEY --instance inst.json --method M [--time-limit s] --out sol.json
    mecopt evaluate KEY --instance inst.json --decision sol.json

Errors print one line on stderr: exit 2 for bad input or options (naming the field, file or flag; checked before
any work), exit 1 for a failed computation (an infeasible decision naming its equation, a solve with status error,
infeasible or not_attempted); README "Error contract" lists them. Set MECOPT_DEBUG=1 to see tracebacks of
unexpected errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

import numpy as np

from mecopt.core import (
    NO_DECISION_STATUSES,
    InvalidInputError,
    MecoptError,
    Metrics,
    SolveOptions,
    check_writable,
    read_json,
    require_finite,
    to_json,
    write_json,
)
from mecopt.registry import get_problem, instance_envelope, load_instance, problem_keys

#: Exit codes (README "Error contract"): 0 success; 1 the computation failed (infeasible decision, solver status
#: error/infeasible/not_attempted, unexpected internal error); 2 bad input or options (one line naming the field,
#: file or flag); 130 interrupted.
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: Solve statuses that make ``mecopt solve`` exit 1 (and never replace an existing --out).
FAILED_STATUSES = ("error", "infeasible", "not_attempted")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (file descriptor 1) to stderr meanwhile.

    Native solver libraries print banners and logs straight to fd 1 (HiGHS prints its copyright line when a solver
    object is created); stdout carries the CLI's JSON, which scripts parse.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _problems(args: argparse.Namespace) -> int:
    for key in problem_keys():
        spec = get_problem(key)
        print(f"{key}\t{spec.sense}\t{spec.title}")
    return EXIT_OK


def _methods(args: argparse.Namespace) -> int:
    from mecopt.methods import all_methods

    for name, m in all_methods(args.key).items():
        cert = "certified" if m.certified else "-"
        print(f"{name}\t{m.kind}\t{cert}\t{m.description}")
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    spec = get_problem(args.key)
    check_writable(args.out, "--out")
    inst = spec.make_instance(args.size, args.seed, args.variant)
    _write(args.out, instance_envelope(spec, inst, size=args.size, seed=args.seed, variant=args.variant))
    print(
        f"wrote {args.key} instance (size={args.size}, seed={args.seed}, variant={args.variant}) to {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK


def _write(path: str, obj: Any) -> None:
    """Atomic write; a failure (disk full, permissions changed meanwhile) is a one-line error, exit 2."""
    try:
        write_json(path, obj)
    except OSError as e:
        raise InvalidInputError(f"cannot write --out {path}: {e.strerror or e}") from None


def check_options(args: argparse.Namespace) -> SolveOptions:
    """Validate the solve options before any work (one error naming the flag, exit 2)."""
    tl = args.time_limit
    if not (math.isfinite(tl) and tl > 0):
        raise InvalidInputError(f"--time-limit must be a finite number of seconds > 0, got {tl}")
    if not (math.isfinite(args.gap) and 0 <= args.gap < 1):
        raise InvalidInputError(f"--gap must be a finite relative gap in [0, 1), got {args.gap}")
    if args.threads < 1:
        raise InvalidInputError(f"--threads must be >= 1, got {args.threads}")
    if args.method_seed < 0:
        raise InvalidInputError(f"--method-seed must be a non-negative integer, got {args.method_seed}")
    return SolveOptions(time_limit=tl, mip_gap=args.gap, threads=args.threads, seed=args.method_seed)


def _solve(args: argparse.Namespace) -> int:
    from mecopt.methods import get_method
    from solvers import solve

    opts = check_options(args)
    check_writable(args.out, "--out")
    inst, meta = load_instance(args.instance, args.key)
    method = get_method(args.key, args.method)  # resolved once; a clear error for an unknown name before any work
    seed = meta.get("seed")
    with _stdout_to_stderr():
        res = solve(args.key, inst, method, opts, seed=seed if type(seed) is int and seed >= 0 else None)
    if "nonfinite_term" in res.info:  # the final guard: bad input, not a solver failure (nothing is written)
        raise InvalidInputError(f"{args.key}: {res.message}")
    out = res.to_dict()
    failed = res.status in FAILED_STATUSES
    kept = failed and os.path.exists(args.out)
    if not kept:  # a failing solve never replaces an existing (good) solution file
        _write(args.out, out)
    summary = {k: out[k] for k in ("problem", "method", "status", "objective", "bound", "gap", "wall_time_s")}
    print(json.dumps(summary))
    if failed:
        note = f" (existing {args.out} left unchanged)" if kept else ""
        print(f"mecopt: {args.key}/{args.method}: {res.status}: {res.message}{note}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _claims_agree(file: Mapping[str, Any], metrics: Metrics) -> bool:
    """Whether a solution file's objective, feasibility and status agree with the recomputation."""
    status = file.get("status")
    if "feasible" in file and file["feasible"] is not None and bool(file["feasible"]) != metrics.feasible:
        return False
    if status in ("optimal", "feasible", "time_limit") and not metrics.feasible:
        return False
    if status in NO_DECISION_STATUSES:  # a decision the file itself says is no solution
        return False
    claimed = file.get("objective")
    if not metrics.feasible:
        return claimed is None
    if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or not math.isfinite(claimed):
        return False
    return abs(claimed - metrics.objective) <= 1e-9 * max(1.0, abs(metrics.objective))


def _evaluate(args: argparse.Namespace) -> int:
    spec = get_problem(args.key)
    inst, _ = load_instance(args.instance, args.key)
    data = read_json(args.decision, "decision file")
    file: dict[str, Any] | None = None
    if isinstance(data, dict) and "decision" in data:
        if data.get("problem", args.key) != args.key:
            raise InvalidInputError(f"decision file is for problem {data.get('problem')!r}, not {args.key!r}")
        file = data
        data = data["decision"]
    if data is None:
        raise InvalidInputError(f"{args.key}: the solution file holds no decision")
    dec = spec.decision_from_dict(data)
    try:
        metrics = require_finite(args.key, spec.evaluate(inst, dec))
    except ArithmeticError as e:  # a Python float overflow inside the model: the input is out of its range
        raise InvalidInputError(f"{args.key}: evaluation overflowed ({e}); the values are out of range") from None
    out: dict[str, Any] = {"problem": args.key, "sense": spec.sense, **metrics.to_dict()}
    if file is not None:
        agrees = _claims_agree(file, metrics)
        out["agrees_with_file"] = agrees
        if not agrees:
            out["file_objective"] = file.get("objective")
            out["file_status"] = file.get("status")
            out["file_feasible"] = file.get("feasible")
    sys.stdout.write(to_json(out))
    if not metrics.feasible:
        print(f"mecopt: {args.key}: infeasible decision: {'; '.join(metrics.violations[:3])}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    from mecopt.sweep import main_sweep

    if args.workers is not None and args.scheduler:
        raise InvalidInputError("--workers and --scheduler exclude each other")
    return main_sweep(
        problems=args.problems,
        sizes=args.sizes,
        variants=args.variants,
        seeds=args.seeds,
        methods=args.methods,
        time_limit=args.time_limit,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"mecopt: error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mecopt",
        description="Certified optima, paper heuristics and learned policies for MEC task offloading problems. "
        "Typical use: generate an instance, solve it with 'exact' and a heuristic, evaluate any decision.",
        epilog="Example: mecopt generate dtomalb --size small --seed 1 --out inst.json && "
        "mecopt solve dtomalb --instance inst.json --method exact --out sol.json && "
        "mecopt evaluate dtomalb --instance inst.json --decision sol.json",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sp = sub.add_parser("problems", help="list problem keys (key, sense, title; tab-separated)")
    sp.set_defaults(fn=_problems)

    sp = sub.add_parser("methods", help="list a problem's methods (name first; 'exact' is the certified one)")
    sp.add_argument("key", help="problem key (see 'mecopt problems')")
    sp.set_defaults(fn=_methods)

    sp = sub.add_parser("generate", help="generate a seeded instance with the paper's parameters")
    sp.add_argument("key", help="problem key")
    sp.add_argument("--size", default="small", help="size preset: tiny, small, paper, or a problem's named preset")
    sp.add_argument("--seed", type=int, default=0, help="instance seed (non-negative integer)")
    sp.add_argument(
        "--variant",
        default="literal",
        help="model variant (default 'literal' = the paper read literally); see docs/problems/KEY.md",
    )
    sp.add_argument("--out", required=True, help="output instance JSON (written atomically)")
    sp.set_defaults(fn=_generate)

    sp = sub.add_parser("solve", help="solve an instance with one method and write the solution JSON")
    sp.add_argument("key", help="problem key")
    sp.add_argument("--instance", required=True, help="instance JSON from 'mecopt generate'")
    sp.add_argument("--method", default="exact", help="method name (see 'mecopt methods KEY'); default: exact")
    sp.add_argument("--time-limit", type=float, default=60.0, help="wall-clock limit in seconds (default 60)")
    sp.add_argument("--gap", type=float, default=1e-9, help="relative optimality gap to stop at (default 1e-9)")
    sp.add_argument("--threads", type=int, default=1, help="solver threads (default 1)")
    sp.add_argument("--method-seed", type=int, default=0, help="seed of randomized methods (default 0)")
    sp.add_argument("--out", required=True, help="output solution JSON (written atomically)")
    sp.set_defaults(fn=_solve)

    sp = sub.add_parser("evaluate", help="recompute objective and feasibility of a decision from scratch")
    sp.add_argument("key", help="problem key")
    sp.add_argument("--instance", required=True, help="instance JSON")
    sp.add_argument("--decision", required=True, help="solution JSON from 'mecopt solve' or a bare decision JSON")
    sp.set_defaults(fn=_evaluate)

    sp = sub.add_parser(
        "sweep",
        help="solve many seeded instances with many methods on Dask workers (resumable) and write gap tables",
        description="Every (problem, size, variant, seed, method) is one task; instances are generated on the "
        "workers from their seeds; the exact solve of each instance is shared as the reference of every method. "
        "Results go to OUT/cells/ as they finish; rerunning the same command resumes. At the end OUT/table.md "
        "(mean/max gap with a bootstrap CI, %% certified, median time), OUT/rows.json and OUT/gaps.png.",
        epilog="Example: mecopt sweep --problems dtomalb --sizes tiny,small --seeds 0-199 "
        "--methods exact,lb-greedy,selfish --time-limit 60 --out results/sweeps/demo --workers 2",
    )
    sp.add_argument("--problems", required=True, help="comma-separated problem keys, e.g. dtomalb,djtcra")
    sp.add_argument("--sizes", default="small", help="comma-separated size presets (default small)")
    sp.add_argument("--variants", default="literal", help="comma-separated model variants (default literal)")
    sp.add_argument("--seeds", default="0-19", help="instance seeds: ranges and lists, e.g. 0-999 or 0-9,42")
    sp.add_argument(
        "--methods", default="exact", help="comma-separated methods (exact is always added as the reference)"
    )
    sp.add_argument("--time-limit", type=float, default=60.0, help="per-cell wall-clock limit in seconds (60)")
    sp.add_argument("--out", required=True, help="output folder (reuse it to resume)")
    sp.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    sp.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(fn=_sweep)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, one line already printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        with np.errstate(all="ignore"):  # overflow is reported by the final guard, never as a numpy warning
            return int(args.fn(args))
    except MecoptError as e:
        print(f"mecopt: error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mecopt: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # unexpected: one line unless debugging
        if os.environ.get("MECOPT_DEBUG"):
            raise
        print(
            f"mecopt: internal error: {type(e).__name__}: {e} (set MECOPT_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
