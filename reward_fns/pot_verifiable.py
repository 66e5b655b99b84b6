"""Verifiable PoT reward (seed 002 section 2.2.1, after ReFT): run the program, compare its value with the gold answer.

verl loads this file by path (``reward.custom_reward_function.path=reward_fns/pot_verifiable.py``,
``name=compute_score``) and calls ``compute_score`` with keyword arguments from a worker thread; knobs arrive through
``reward.custom_reward_function.reward_kwargs``. Programs never run in this process: they go to the process-wide
sandbox executor (``verl_distill.pot``), one per reward-worker process, shared by all threads.

Scores (ReFT): ``correct_score`` (1.0) when ``abs(value - gold) <= tol`` (1e-2), ``runnable_score`` (0.1) when the
program runs and returns a number that is wrong, 0.0 otherwise (no program, crash, timeout, non-numeric value).
Every sample returns the same keys: ``score``, ``acc`` (1.0 iff correct), ``pred`` (the value as a string, "" if
none, so verl can compute maj@N), ``ran`` (1.0 iff the program finished: ``ok`` or ``non_numeric``), ``timeout``,
``status`` (see ``verl_distill.pot.executor``) and ``lines`` (code lines of the body, for the B.3 length guard).

Who is at fault: a policy failure scores 0.0 with a flag; a gold answer that is not a number is a data error and
raises ``ValueError`` naming it.

LIMITS: ``timeout_s`` is wall-clock per program, so a heavily loaded machine can time out slow but correct programs;
answers are compared as numbers only (no units, no multiple choice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from verl_distill.pot import ExecResult, extract_program, get_default_executor, score_value

DEFAULT_TIMEOUT_S = 2.0  # ReFT's TIMEOUT
DEFAULT_MEMORY_MB = 1024
DEFAULT_TOL = 1e-2


def parse_gold(ground_truth: object) -> float:
    """ReFT's gold parsing (``float(x.replace(',', ''))``); anything else is a data error."""
    try:
        gold = float(str(ground_truth).replace(",", "").strip())
    except ValueError:
        gold = math.nan
    if not math.isfinite(gold):
        raise ValueError(f"ground_truth must be a finite number for the PoT reward, got {ground_truth!r}")
    return gold


def _check_knobs(timeout_s: float, memory_mb: int, tol: float, correct_score: float, runnable_score: float) -> None:
    if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s <= 600):
        raise ValueError(f"timeout_s must be in (0, 600] seconds, got {timeout_s!r}")
    if not (isinstance(memory_mb, int) and memory_mb >= 64):
        raise ValueError(f"memory_mb must be an int >= 64, got {memory_mb!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    for name, value in (("correct_score", correct_score), ("runnable_score", runnable_score)):
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def _format_pred(value: float | None) -> str:
    # rounded so that 0.30000000000000004 and 0.3 (or 8 and 8.0) vote together in maj@N; + 0.0 turns -0.0 into 0.0
    return "" if value is None else repr(round(value, 6) + 0.0)


def _to_info(result: ExecResult, gold: float, lines: int, knobs: dict) -> dict:
    correct = result.ok and score_value(result.value, gold, tol=knobs["tol"])
    if correct:
        score = float(knobs["correct_score"])
    elif result.ok:
        score = float(knobs["runnable_score"])
    else:
        score = 0.0
    return {
        "score": score,
        "acc": 1.0 if correct else 0.0,
        "pred": _format_pred(result.value),
        "ran": 1.0 if result.ran else 0.0,
        "timeout": 1.0 if result.status == "timeout" else 0.0,
        "status": result.status,
        "lines": int(lines),
    }


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[object],
    extra_infos: Sequence[dict | None] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    tol: float = DEFAULT_TOL,
    correct_score: float = 1.0,
    runnable_score: float = 0.1,
    **kwargs: object,
) -> list[dict]:
    """Batched variant (verl's ``batch`` reward manager signature); programs of a batch run in parallel."""
    _check_knobs(timeout_s, memory_mb, tol, correct_score, runnable_score)
    if not (len(data_sources) == len(solution_strs) == len(ground_truths)):
        raise ValueError("data_sources, solution_strs and ground_truths must have the same length")
    golds = [parse_gold(g) for g in ground_truths]
    programs = [extract_program(s) for s in solution_strs]
    results = get_default_executor().run(
        [p.source if p else None for p in programs], timeout_s=timeout_s, memory_mb=memory_mb
    )
    knobs = {"tol": tol, "correct_score": correct_score, "runnable_score": runnable_score}
    return [_to_info(r, g, p.code_lines if p else 0, knobs) for r, g, p in zip(results, golds, programs, strict=True)]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: object,
    extra_info: dict | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    tol: float = DEFAULT_TOL,
    correct_score: float = 1.0,
    runnable_score: float = 0.1,
    **kwargs: object,
) -> dict:
    """Score one response (verl's per-sample contract; sync, safe to call from many threads at once)."""
    knobs = {"timeout_s": timeout_s, "memory_mb": memory_mb, "tol": tol}
    knobs.update(correct_score=correct_score, runnable_score=runnable_score)
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **knobs)[0]
