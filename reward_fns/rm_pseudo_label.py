"""verl reward: seed 000's reward-model score clipped by the pseudo-label (Eq. 7).

``r`` is the raw output of the trained reward model (``verl-distill train-rm``: ``num_labels=1``) served by vLLM
``/classify`` with ``use_activation: false``, on the ids of :func:`verl_distill.train_rm.rm_input_ids` (the
question from ``extra_info`` and the response). Then, with ``y`` the response's extracted answer and ``y*`` the
row's label (``reward_model.ground_truth``; pseudo-label for ``label_source=teacher_vote``, gold for gold rows)::

    no extractable answer            -> no_answer_score (-5), the reward model is not called
    no label (D_fail, label_source=none) -> r
    y == y*                          -> r
    y != y*                          -> min(r, 0)     (variant="min", the paper)  or  r - 1  (variant="minus")

The server is the reward model verl serves (``reward.reward_model.enable=True``: ``reward_router_address`` and
``reward_model_tokenizer`` arrive by themselves) or any URL: ``reward_kwargs.rm_url`` and ``rm_tokenizer``.
Answers are read as the vote read them (:func:`verl_distill.voting.response_answers`: programs run for ``pot``).

Keys (every sample): ``score``, ``rm`` (r; 0 when not called), ``rm_called``, ``no_answer``, ``has_label``,
``match`` (1 iff y == y*), ``acc`` (= match: on gold validation rows, verl's ``val`` metric of this key is accuracy),
``clipped`` (1 iff the mismatch rule lowered r), ``pred`` (the extracted answer, "" if none).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from verl_distill.client import ClientOptions, get_client, run_sync
from verl_distill.guards import load_tokenizer
from verl_distill.train_rm import rm_input_ids
from verl_distill.voting import matches_label, response_answers

VARIANTS = ("min", "minus")


def clip_reward(r: float, *, answer: str | None, label: str, variant: str = "min",
                no_answer_score: float = -5.0) -> tuple[float, bool]:
    """Eq. 7 on a reward-model score; returns (reward, clipped). ``label=""`` means no pseudo-label (D_fail)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: expected one of {VARIANTS}")
    if answer is None:
        return float(no_answer_score), False
    if not label or matches_label(answer, label):
        return float(r), False
    low = min(r, 0.0) if variant == "min" else r - 1.0
    return float(low), low < r


async def _answer(solution_str: str, task: str) -> str | None:
    if task == "pot":  # runs the program in the sandbox executor (blocking): off the event loop
        return (await asyncio.to_thread(response_answers, [solution_str], task))[0]
    return response_answers([solution_str], task)[0]


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any = None,
    extra_info: dict[str, Any] | None = None,
    reward_router_address: str | None = None,
    reward_model_tokenizer: Any = None,
    *,
    rm_url: str | None = None,
    rm_tokenizer: str | None = None,
    rm_model: str | None = None,
    variant: str = "min",
    no_answer_score: float = -5.0,
    max_length: int = 1024,
    max_concurrency: int = 32,
    timeout_s: float = 60.0,
    max_retries: int = 3,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response (verl's async ``compute_score`` contract)."""
    if variant not in VARIANTS or not math.isfinite(no_answer_score):
        raise ValueError(f"variant must be one of {VARIANTS} and no_answer_score finite; got {variant!r}, "
                         f"{no_answer_score!r}")
    extra = extra_info or {}
    question, task = extra.get("question"), extra.get("task")
    if not isinstance(question, str) or not question.strip() or not task:
        raise ValueError(f"{data_source}: extra_info needs 'question' and 'task' (rows from data_prep / vote), "
                         f"got keys {sorted(extra)}")
    label = "" if extra.get("label_source") == "none" else str(ground_truth or "")
    answer = await _answer(solution_str, task)
    keys = {"no_answer": float(answer is None), "has_label": float(bool(label)),
            "match": float(bool(label) and matches_label(answer, label)), "pred": answer or ""}
    if answer is None:
        return {"score": float(no_answer_score), "rm": 0.0, "rm_called": 0.0, **keys, "acc": 0.0, "clipped": 0.0}
    url = rm_url or reward_router_address
    if not url:
        raise ValueError("rm_pseudo_label needs reward_kwargs.rm_url=<base URL> or verl's reward model enabled")
    if rm_tokenizer:
        tokenizer = load_tokenizer(rm_tokenizer)
    elif reward_model_tokenizer is not None and not rm_url:
        tokenizer = reward_model_tokenizer
    else:
        raise ValueError(f"reward model at {url} needs reward_kwargs.rm_tokenizer=<path> (its tokenizer)")
    options = ClientOptions(max_concurrency=max_concurrency, timeout_s=timeout_s, max_retries=max_retries)
    client = get_client(url, name="reward model", options=options)
    out = (await client.classify([rm_input_ids(tokenizer, question, solution_str, max_length=max_length)],
                                 model=rm_model, use_activation=False))[0]
    if len(out) != 1:
        raise ValueError(f"the reward model at {url} returned {len(out)} outputs; train-rm exports num_labels=1 "
                         "(a two-class reranker belongs in reward_fns/reranker.py)")
    r = out[0]
    score, clipped = clip_reward(r, answer=answer, label=label, variant=variant, no_answer_score=no_answer_score)
    return {"score": score, "rm": r, "rm_called": 1.0, **keys, "acc": keys["match"], "clipped": float(clipped)}


def compute_score_sync(data_source: str, solution_str: str, ground_truth: Any = None,
                       extra_info: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """The same reward for synchronous callers."""
    return run_sync(compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs))
