"""Contract tests parametrized over every registered problem (RL4CO style)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mecopt.core import InvalidInputError, SolveOptions, relative_gap
from mecopt.registry import get_problem, problem_keys
from solvers import methods_for, solve

KEYS = problem_keys()


@pytest.mark.parametrize("key", KEYS)
def test_spec_is_complete(key: str) -> None:
    spec = get_problem(key)
    assert spec.sense in ("min", "max")
    assert {"tiny", "small", "paper"} <= set(spec.presets)
    assert "literal" in spec.variants and dict(spec.variants["literal"]) == {}
    methods = methods_for(key)
    assert "exact" in methods and methods["exact"].certified
    assert any(m.kind == "heuristic" for m in methods.values())


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("size", ["tiny", "small", "paper"])
def test_generate_round_trip_and_seeding(key: str, size: str) -> None:
    spec = get_problem(key)
    a = spec.make_instance(size, 7)
    b = spec.make_instance(size, 7)
    c = spec.make_instance(size, 8)
    assert a == b, "same seed must give the same instance"
    assert a != c, "different seeds must give different instances"
    back = spec.Instance.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back == a


@pytest.mark.parametrize("key", KEYS)
def test_instance_rejects_unknown_and_missing_fields(key: str) -> None:
    spec = get_problem(key)
    d = spec.make_instance("tiny", 0).to_dict()
    with pytest.raises(InvalidInputError, match="unknown"):
        spec.Instance.from_dict({**d, "bogus": 1})
    first = next(iter(d))
    with pytest.raises(InvalidInputError):
        spec.Instance.from_dict({k: v for k, v in d.items() if k != first})
    with pytest.raises(InvalidInputError):
        spec.Instance.from_dict([1, 2, 3])


@pytest.mark.parametrize("key", KEYS)
def test_heuristics_feasible_and_exact_certifies_tiny(key: str) -> None:
    spec = get_problem(key)
    inst = spec.make_instance("tiny", 3)
    opts = SolveOptions(time_limit=60, seed=3)
    exact = solve(key, inst, "exact", opts, seed=3)
    assert exact.status == "optimal", exact.message
    assert exact.gap is not None and exact.gap <= 1e-6
    # the objective is recomputed from the decision alone
    dec = spec.Decision.from_dict(exact.decision)
    assert spec.evaluate(inst, dec).objective == pytest.approx(exact.objective, rel=1e-12)
    for name, m in methods_for(key).items():
        if m.kind != "heuristic":
            continue
        r = solve(key, inst, name, opts, seed=3)
        assert r.feasible, f"{name}: {r.message}"
        # no heuristic beats a certified optimum
        better = (
            r.objective < exact.bound - 1e-9 * abs(exact.bound)
            if spec.sense == "min"
            else (r.objective > exact.bound + 1e-9 * abs(exact.bound))
        )
        assert not better, f"{name} beats the certified bound: {r.objective} vs {exact.bound}"
        assert relative_gap(r.objective, exact.bound, spec.sense) is not None
        assert np.isfinite(r.objective)
