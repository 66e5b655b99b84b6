"""Final answers of sampled responses and seed 000's majority vote (§3.1 "Pseudo Final Answer Voting").

Answers are compared as canonical strings, so equal values vote together: for ``pot`` the program is run in the
sandbox executor and its value written as a short decimal (``8.0`` -> ``"8"``), for ``nl``/``latex``/``mc`` the
task's named extraction pipeline (:mod:`verl_distill.extract`) reads the text (its ``numeric`` reader already writes
numbers back canonically, ``mc`` writes a letter). ``None`` means no extractable answer.

The vote (:func:`majority_vote`): over the high-confidence responses of one query, the most frequent answer wins if
its share EXCEEDS the threshold (paper: "appears with a probability exceeding sh = 0.7"; so 14 of 20 = 0.70 is not
enough, 15 of 20 is). The denominator counts every high-confidence response, unextractable ones included: a teacher
that often gives no answer is not a reliable annotator. A tie for the top answer (possible only with a threshold
below 0.5) gives no winner. No winner puts the query in D_fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from verl_distill.extract.equivalence import canonical_number
from verl_distill.extract.pipelines import extract, pipeline_for_task

DEFAULT_THRESHOLD = 0.7
NO_WINNER_REASONS = ("no_samples", "no_answers", "tie", "below_threshold")


def pot_answer(value: float | None) -> str | None:
    """Canonical answer of a program's value (rounded to 6 decimals, as the PoT reward's ``pred``)."""
    if value is None:
        return None
    return canonical_number(repr(round(value, 6) + 0.0))


def response_answers(responses: Sequence[str], task: str, *, timeout_s: float = 2.0) -> list[str | None]:
    """Canonical final answer of every response (``None`` where none can be extracted); ``pot`` runs the programs."""
    if task == "pot":
        from verl_distill.pot import extract_program, get_default_executor

        programs = [extract_program(r) for r in responses]
        results = get_default_executor().run([p.source if p else None for p in programs], timeout_s=timeout_s)
        return [pot_answer(r.value) if r.ok else None for r in results]
    pipeline = pipeline_for_task(task)
    return [extract(r, pipeline).answer for r in responses]


def answers_by_task(responses: Sequence[str], tasks: Sequence[str]) -> list[str | None]:
    """:func:`response_answers` for responses of mixed tasks (one batch per task), in input order."""
    answers: list[str | None] = [None] * len(responses)
    for task in sorted(set(tasks)):
        ids = [i for i, t in enumerate(tasks) if t == task]
        for i, answer in zip(ids, response_answers([responses[i] for i in ids], task), strict=True):
            answers[i] = answer
    return answers


@dataclass(frozen=True)
class Vote:
    """Outcome of one query's vote: the pseudo-label (``None``: the query is in D_fail) and how it was reached."""

    label: str | None
    share: float  # the top answer's share of all votes (0 when there are none)
    total: int  # high-confidence responses counted
    counts: dict[str, int] = field(default_factory=dict)  # answer -> votes (unextractable responses not listed)
    reason: str = ""  # "" when there is a winner, else one of NO_WINNER_REASONS


def majority_vote(answers: Sequence[str | None], *, threshold: float = DEFAULT_THRESHOLD) -> Vote:
    """Seed 000's vote over one query's high-confidence answers (see the module docstring)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    total = len(answers)
    counts = Counter(a for a in answers if a is not None)
    if total == 0:
        return Vote(None, 0.0, 0, {}, "no_samples")
    if not counts:
        return Vote(None, 0.0, total, {}, "no_answers")
    ranked = counts.most_common()
    top, votes = ranked[0]
    share = votes / total
    if len(ranked) > 1 and ranked[1][1] == votes:
        return Vote(None, share, total, dict(counts), "tie")
    if share <= threshold:
        return Vote(None, share, total, dict(counts), "below_threshold")
    return Vote(top, share, total, dict(counts), "")


def matches_label(answer: str | None, label: str) -> bool:
    """Whether a canonical answer agrees with a pseudo-label (the vote's own rule: equal canonical strings)."""
    return answer is not None and answer == label
