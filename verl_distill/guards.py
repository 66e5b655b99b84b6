"""What model-judged rewards share: the judged text, the judge tokenizer cache, and the reward-hacking guards.

Guards (seed 002 Appendix B.3).

With judge-only rewards the paper saw students collapse into answering with no code at all, or with a bare number,
because the judge sometimes liked that better than honest but wrong code. The mitigations, each configurable:

* the docstring instruction (``verl_distill.prompts.POT_GUARDED``, chosen when the data is converted);
* ``min_program_lines``: a PoT program with fewer code lines than this gets judge reward 0 (the paper: 4);
* ``reject_answer_only``: an empty response, or one that is only a final answer (a bare number, ``return 42``,
  ``#### 42``), gets judge reward 0.

A guard verdict is a named flag (``guard`` in the reward's output), never a silent zero: the sample is the policy's
fault, so it gets the floor score and a flag (style point 3). Judges are not called for guarded samples.

LIMITS: these are the paper's heuristics; they catch the collapse it reported (no or very short responses), not
wrong reasoning dressed in four lines of code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from verl_distill.pot import extract_program

GUARD_NONE = ""
GUARD_EMPTY = "empty"
GUARD_ANSWER_ONLY = "answer_only"
GUARD_SHORT = "short_program"
GUARD_NOT_RUNNABLE = "not_runnable"  # opt-in and NOT in the paper (judge_yes_no's require_runnable)

_NUMBER = r"[-+]?\$?\s*\d[\d,]*(?:\.\d+)?%?"
_ANSWER_ONLY = re.compile(
    rf"^\s*(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)?\s*|####\s*|return\s+)?{_NUMBER}\s*\.?\s*$", re.I
)
_RETURN_CONST = re.compile(rf"^\s*return\s+\(?\s*{_NUMBER}\s*\)?\s*$")


@dataclass(frozen=True)
class GuardConfig:
    """Which guards are on. ``min_program_lines=0`` turns the length guard off."""

    min_program_lines: int = 4
    reject_answer_only: bool = True

    def __post_init__(self) -> None:
        if self.min_program_lines < 0:
            raise ValueError(f"min_program_lines={self.min_program_lines} must be >= 0 (0 turns the guard off)")


def _body_is_constant(source: str) -> bool:
    """True when the program's only code line is ``return <number>``."""
    body = [ln for ln in source.splitlines()[1:] if ln.strip() and not ln.strip().startswith(("#", '"""', "'''"))]
    return len(body) == 1 and bool(_RETURN_CONST.match(body[0]))


def check(response: str, task: str, config: GuardConfig) -> str:
    """Return the guard that rejects ``response`` (``GUARD_*``), or ``GUARD_NONE`` when it may be judged."""
    if not response or not response.strip():
        return GUARD_EMPTY if config.reject_answer_only else GUARD_NONE
    if config.reject_answer_only and _ANSWER_ONLY.match(response):
        return GUARD_ANSWER_ONLY
    if task != "pot":
        return GUARD_NONE
    program = extract_program(response)
    if program is not None and config.reject_answer_only and _body_is_constant(program.source):
        return GUARD_ANSWER_ONLY
    if config.min_program_lines and (program is None or program.code_lines < config.min_program_lines):
        return GUARD_SHORT
    return GUARD_NONE


def runs(response: str) -> bool:
    """Whether the response's program runs to a number in the PoT sandbox (no answer is compared): the label-free
    ``not_runnable`` guard."""
    from reward_fns.pot_verifiable import compute_score_batch

    return compute_score_batch(["guard"], [response], [0], [None])[0]["status"] == "ok"


def solution_text(response: str, task: str | None) -> str:
    """What a judge reads: the extracted program for PoT rows (the raw response if none), else the response."""
    if task == "pot":
        program = extract_program(response)
        if program is not None:
            return program.source.rstrip("\n")
    return response.strip()


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str) -> Any:
    """A judge's or reranker's tokenizer, loaded once per process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
