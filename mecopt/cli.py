"""The ``mecopt`` command line (stable contract; scripts depend on these formats).

    mecopt problems
    mecopt methods KEY
    mecopt generate KEY --size S --seed N --out inst.json [--variant V]
    mecopt solve KEY --instance inst.json --method M [--time-limit s] --out sol.json
    mecopt evaluate KEY --instance inst.json --decision sol.json

Errors (missing file, malformed JSON, wrong shapes, infeasible decision...) print one line on stderr and exit
non-zero; set MECOPT_DEBUG=1 to see tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from mecopt.core import InvalidInputError, MecoptError, SolveOptions, read_json, to_json, write_json
from mecopt.registry import get_problem, load_instance, problem_keys, save_instance

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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
    inst = spec.make_instance(args.size, args.seed, args.variant)
    save_instance(args.out, spec, inst, size=args.size, seed=args.seed, variant=args.variant)
    print(
        f"wrote {args.key} instance (size={args.size}, seed={args.seed}, variant={args.variant}) to {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK


def _solve(args: argparse.Namespace) -> int:
    from mecopt.methods import get_method
    from solvers import solve

    inst, meta = load_instance(args.instance, args.key)
    method = get_method(args.key, args.method)  # resolved once; a clear error for an unknown name before any work
    if args.time_limit is not None and args.time_limit <= 0:
        raise InvalidInputError(f"--time-limit must be positive, got {args.time_limit}")
    opts = SolveOptions(time_limit=args.time_limit, mip_gap=args.gap, threads=args.threads, seed=args.method_seed)
    seed = meta.get("seed")
    with _stdout_to_stderr():
        res = solve(args.key, inst, method, opts, seed=seed if isinstance(seed, int) else None)
    out = res.to_dict()
    write_json(args.out, out)
    summary = {k: out[k] for k in ("problem", "method", "status", "objective", "bound", "gap", "wall_time_s")}
    print(json.dumps(summary))
    if res.status in ("error", "infeasible"):
        print(f"mecopt: {args.key}/{args.method}: {res.status}: {res.message}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    spec = get_problem(args.key)
    inst, _ = load_instance(args.instance, args.key)
    data = read_json(args.decision, "decision file")
    if isinstance(data, dict) and "decision" in data:
        if data.get("problem", args.key) != args.key:
            raise InvalidInputError(f"decision file is for problem {data.get('problem')!r}, not {args.key!r}")
        data = data["decision"]
    if data is None:
        raise InvalidInputError(f"{args.key}: the solution file holds no decision")
    dec = spec.decision_from_dict(data)
    metrics = spec.evaluate(inst, dec)
    out: dict[str, Any] = {"problem": args.key, "sense": spec.sense, **metrics.to_dict()}
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except MecoptError as e:
        print(f"mecopt: error: {e}", file=sys.stderr)
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
