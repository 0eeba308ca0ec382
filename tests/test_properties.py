"""Property tests (issue #18) with hypothesis over random seeds, presets and variants of every problem's generator.

* the JSON round trip of instances and decisions is the identity;
* every heuristic returns a feasible decision with a finite objective that never beats a certified optimum, and the
  problem's trivial bound is valid;
* replacing any instance field by an arbitrary JSON value is either accepted or rejected with InvalidInputError
  naming the field -- never another exception.

Examples are derandomized (the same in every CI run); set ``MECOPT_HYPOTHESIS_EXAMPLES`` to run more.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mecopt.core import InvalidInputError, SolveOptions
from mecopt.registry import get_problem, problem_keys
from solvers import methods_for, solve, trivial_bound

KEYS = problem_keys()
SCALE = int(os.environ.get("MECOPT_HYPOTHESIS_EXAMPLES", "1"))


def _settings(n: int) -> Any:
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


seeds = st.integers(min_value=0, max_value=2**63 - 1)


@pytest.mark.parametrize("key", KEYS)
@_settings(15)
@given(seed=seeds, data=st.data())
def test_json_round_trip_is_identity(key: str, seed: int, data: st.DataObject) -> None:
    spec = get_problem(key)
    size = data.draw(st.sampled_from(["tiny", "small"]), label="size")
    variant = data.draw(st.sampled_from(sorted(spec.variants)), label="variant")
    inst = spec.make_instance(size, seed, variant)
    text = json.dumps(inst.to_dict())
    back = spec.Instance.from_dict(json.loads(text))
    assert back == inst and json.dumps(back.to_dict()) == text


@pytest.mark.parametrize("key", KEYS)
@_settings(3)
@given(seed=seeds, data=st.data())
def test_heuristics_feasible_finite_and_never_beat_the_optimum(key: str, seed: int, data: st.DataObject) -> None:
    spec = get_problem(key)
    variant = data.draw(st.sampled_from(sorted(spec.variants)), label="variant")
    inst = spec.make_instance("tiny", seed, variant)
    opts = SolveOptions(time_limit=30, seed=seed % 1000)
    exact = solve(key, inst, "exact", opts)
    assert exact.feasible and exact.objective is not None and math.isfinite(exact.objective), exact.message
    tb = trivial_bound(spec, inst)
    assert tb is not None
    assert (tb <= exact.objective * (1 + 1e-9) + 1e-12) if spec.sense == "min" else (tb >= exact.objective * (1 - 1e-9))
    certified = exact.status == "optimal"
    for name, m in methods_for(key).items():
        if m.kind != "heuristic":
            continue
        r = solve(key, inst, name, opts)
        assert r.feasible and r.status != "error", f"{name}: {r.status}: {r.message}"
        assert r.objective is not None and math.isfinite(r.objective)
        dec = spec.Decision.from_dict(json.loads(json.dumps(r.decision)))
        assert dec.to_dict() == r.decision  # decisions round-trip too
        again = spec.evaluate(inst, dec)
        assert again.feasible and again.objective == r.objective  # evaluate is a pure function of the decision
        if certified:
            tol = 1e-9 * max(1.0, abs(exact.bound))
            better = r.objective < exact.bound - tol if spec.sense == "min" else r.objective > exact.bound + tol
            assert not better, f"{name} ({r.objective!r}) beats the certified bound {exact.bound!r}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=12,
)


@pytest.mark.parametrize("key", KEYS)
@_settings(60)
@given(value=json_values, data=st.data())
def test_any_json_in_any_field_is_accepted_or_rejected_by_name(key: str, value: Any, data: st.DataObject) -> None:
    spec = get_problem(key)
    base = spec.make_instance("tiny", 0).to_dict()
    name = data.draw(st.sampled_from(sorted(base)), label="field")
    try:
        inst = spec.Instance.from_dict({**base, name: value})
    except InvalidInputError as e:
        assert name in str(e) or "Instance" in str(e)
        return
    assert json.loads(json.dumps(inst.to_dict())) == inst.to_dict()
