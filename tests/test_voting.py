"""Seed 000's majority vote and the canonical answers it counts."""

from __future__ import annotations

import pytest

from verl_distill.voting import majority_vote, pot_answer, response_answers

VOTES = [
    # answers, threshold, label, reason
    (["6"] * 15 + ["7"] * 5, 0.7, "6", ""),  # 0.75 > 0.7
    (["6"] * 14 + ["7"] * 6, 0.7, None, "below_threshold"),  # exactly 0.70 does not exceed 0.7
    (["6"] * 14 + [None] * 6, 0.7, None, "below_threshold"),  # unextractable responses count in the denominator
    (["6"] * 15 + [None] * 5, 0.7, "6", ""),
    (["6"] * 20, 0.7, "6", ""),
    ([None] * 20, 0.7, None, "no_answers"),
    ([], 0.7, None, "no_samples"),
    (["6", "6", "7", "7"], 0.4, None, "tie"),  # a tie for the top answer is never a winner
    (["6", "6", "7", "8"], 0.4, "6", ""),  # 0.5 > 0.4
    (["A"] * 4 + ["B"], 0.7, "A", ""),  # 0.8
]


@pytest.mark.parametrize(("answers", "threshold", "label", "reason"), VOTES)
def test_majority_vote(answers: list, threshold: float, label: str | None, reason: str) -> None:
    vote = majority_vote(answers, threshold=threshold)
    assert (vote.label, vote.reason) == (label, reason)
    assert vote.total == len(answers)
    if answers and any(a is not None for a in answers):
        top = max(vote.counts.values())
        assert vote.share == pytest.approx(top / len(answers))


@pytest.mark.parametrize("threshold", [0, 1, -0.1, 1.5])
def test_threshold_out_of_range(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        majority_vote(["1"], threshold=threshold)


@pytest.mark.parametrize(("value", "answer"), [(8.0, "8"), (8, "8"), (0.30000000000000004, "0.3"), (-0.0, "0"),
                                              (2.5, "2.5"), (None, None)])
def test_pot_answer_is_canonical(value: float | None, answer: str | None) -> None:
    assert pot_answer(value) == answer


def test_nl_answers_vote_together() -> None:
    texts = ["Step 1: 3 + 3 = 6.\nThe answer is 6.", "so 6.0 in total\n#### 6.0", "The answer is $6", "no idea"]
    answers = response_answers(texts, "nl")
    assert answers == ["6", "6", "6", None]
    assert majority_vote(answers, threshold=0.7).label == "6"  # 3 of 4 = 0.75


def test_mc_answers() -> None:
    assert response_answers(["The answer is (C).", "Answer: C", "nothing"], "mc") == ["C", "C", None]


def test_pot_answers_run_the_programs() -> None:
    texts = ["def solution():\n    a = 4\n    return a * 2\n", "def solution():\n    return 16 / 2\n",
             "def solution():\n    return 1 / 0\n", "no program here"]
    assert response_answers(texts, "pot") == ["8", "8", None, None]
