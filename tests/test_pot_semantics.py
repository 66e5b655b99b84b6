"""ReFT semantics of the executor: what counts as a numeric answer, how failures are classified, how values compare."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest

from verl_distill.pot import ExecResult, PotExecutor, extract_program, get_default_executor, score_value

SVAMP = Path("/work/shared/data/reft_mwp/svamp_python_sdp.json")


@pytest.fixture(scope="module")
def executor():
    with PotExecutor(num_workers=3, sympy_workers=1, timeout_s=5.0) as ex:
        yield ex


def returning(expression: str) -> str:
    return f"def solution():\n    return {expression}\n"


# (returned expression, status, value) - ReFT's floatify: float(value)
VALUES = [
    ("7", "ok", 7.0),
    ("7 / 2", "ok", 3.5),
    ("-0.25", "ok", -0.25),
    ("True", "ok", 1.0),  # float(True) == 1.0, as in ReFT
    ("'12.5'", "ok", 12.5),  # numeric strings pass float(), as in ReFT
    ("' 3 '", "ok", 3.0),
    ("__import__('fractions').Fraction(1, 4)", "ok", 0.25),
    ("__import__('decimal').Decimal('2.5')", "ok", 2.5),
    ("sympy.Rational(1, 3)", "ok", 1 / 3),  # sympy is pre-bound, as in ReFT
    ("sympy.Integer(10) ** 2", "ok", 100.0),
    ("sympy.sqrt(2)", "ok", math.sqrt(2)),
    ("math.floor(2.7)", "ok", 2.0),  # math is pre-bound, as in ReFT
    ("'1,000'", "non_numeric", None),
    ("'twelve'", "non_numeric", None),
    ("None", "non_numeric", None),
    ("[1, 2]", "non_numeric", None),
    ("1 + 2j", "non_numeric", None),
    ("sympy.Symbol('x')", "non_numeric", None),
    ("float('nan')", "non_numeric", None),  # ReFT would give 0.1; we do not reward NaN
    ("float('inf')", "non_numeric", None),
    ("10 ** 400", "non_numeric", None),  # OverflowError in float()
]


@pytest.mark.parametrize(("expression", "status", "value"), VALUES, ids=[v[0] for v in VALUES])
def test_return_values(executor: PotExecutor, expression: str, status: str, value: float | None) -> None:
    result = executor.run([returning(expression)])[0]
    assert result.status == status, result.error
    if value is None:
        assert result.value is None and result.error
    else:
        assert result.value == pytest.approx(value) and result.error == ""


@pytest.mark.parametrize(
    ("source", "error_start"),
    [
        ("def solution():\n    return 1 / 0\n", "ZeroDivisionError: division by zero"),
        ("def solution()\n    return 1\n", "SyntaxError"),
        ("x = 1\n", "NameError"),  # no solution()
        ("solution = 5\n", "NameError"),  # not callable
        ("def solution(n):\n    return n\n", "TypeError"),
        ("def solution():\n    return undefined_name\n", "NameError: name 'undefined_name'"),
        ("raise ValueError('at import')\ndef solution():\n    return 1\n", "ValueError: at import"),
    ],
)
def test_failures_are_errors_with_a_short_reason(executor: PotExecutor, source: str, error_start: str) -> None:
    result = executor.run([source])[0]
    assert result.status == "error" and result.value is None
    assert result.error.startswith(error_start) and len(result.error) <= 200


@pytest.mark.parametrize("source", [None, "", "  \n  "])
def test_no_program(executor: PotExecutor, source: str | None) -> None:
    result = executor.run([source])[0]
    assert result == ExecResult("no_program", None, "no program", 0.0)
    assert not result.ran


def test_top_level_helpers_are_visible_inside_solution(executor: PotExecutor) -> None:
    source = "def helper(x):\n    return 2 * x\n\ndef solution():\n    return helper(21)\n"
    assert executor.run([source])[0].value == 42.0


def test_batch_order_is_preserved(executor: PotExecutor) -> None:
    sources = [returning(str(i)) if i % 5 else None for i in range(40)]
    results = executor.run(sources)
    assert [r.value for r in results] == [float(i) if i % 5 else None for i in range(40)]


def test_ran_means_finished(executor: PotExecutor) -> None:
    ok, non_numeric, error = executor.run([returning("1"), returning("'x'"), returning("1 / 0")])
    assert (ok.ran, non_numeric.ran, error.ran) == (True, True, False)
    assert (ok.ok, non_numeric.ok, error.ok) == (True, False, False)


def test_per_call_limits_override_the_defaults(executor: PotExecutor) -> None:
    result = executor.run(["def solution():\n    while True:\n        pass\n"], timeout_s=0.3)[0]
    assert result.status == "timeout" and result.duration_s < 1.5


def test_gold_svamp_sample_is_all_correct(executor: PotExecutor) -> None:
    rows = random.Random(0).sample(json.loads(SVAMP.read_text()), 100)
    results = executor.run([extract_program(r["answer_cot"]).source for r in rows])
    golds = [float(r["answer_value"]) for r in rows]
    assert [r["item_id"] for r, res, g in zip(rows, results, golds, strict=True) if not score_value(res.value, g)] == []


@pytest.mark.parametrize(
    ("value", "gold", "correct"),
    [
        (8.0, 8.0, True),
        (8.01, 8.0, True),
        (7.99, 8.0, True),
        (8.011, 8.0, False),
        (-3.0, 3.0, False),
        (0.333, 1 / 3, True),
        (None, 8.0, False),
        (math.nan, 8.0, False),
        (math.inf, math.inf, False),
    ],
)
def test_score_value_is_refts_absolute_tolerance(value: float | None, gold: float, correct: bool) -> None:
    assert score_value(value, gold) is correct


def test_score_value_tolerance_is_a_knob() -> None:
    assert score_value(8.5, 8.0, tol=0.5) and not score_value(8.5, 8.0, tol=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_workers": 0},
        {"sympy_workers": 0},
        {"timeout_s": 0},
        {"timeout_s": math.inf},
        {"memory_mb": 10},
        {"memory_mb": 512.0},
        {"max_output_bytes": -1},
    ],
)
def test_bad_constructor_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PotExecutor(**kwargs)


def test_bad_per_call_limits_raise(executor: PotExecutor) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        executor.run([returning("1")], timeout_s=-1)


def test_programs_must_be_strings(executor: PotExecutor) -> None:
    with pytest.raises(TypeError, match=r"programs\[1\]"):
        executor.run([returning("1"), b"def solution(): return 1"])


def test_closed_executor_refuses_work() -> None:
    ex = PotExecutor(num_workers=1, sympy_workers=1)
    ex.close()
    ex.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        ex.run([returning("1")])


def test_default_executor_is_a_shared_singleton_recreated_when_closed() -> None:
    first = get_default_executor(num_workers=1, sympy_workers=1)
    assert get_default_executor(num_workers=1, sympy_workers=1) is first
    assert first.run([returning("2")])[0].value == 2.0
    first.close()
    second = get_default_executor(num_workers=1, sympy_workers=1)
    assert second is not first and not second.closed
    assert second.run([returning("3")])[0].value == 3.0
    assert second.pid == os.getpid()
    second.close()
