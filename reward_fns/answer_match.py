"""verl reward: 1.0 when the model's final answer matches the gold answer, else 0.0.

Load it by path::

    reward.custom_reward_function.path=reward_fns/answer_match.py
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.pipeline=latex@1   # optional

The extraction pipeline comes from ``extra_info["task"]`` (``nl``/``pot`` -> ``numeric@1``, ``latex`` -> ``latex@1``,
``mc`` -> ``mc@1``) unless ``pipeline=`` is given; the comparison kind is the pipeline's unless ``kind=`` is given.

Every sample returns the same keys: ``score`` and ``acc`` (1.0/0.0), ``pred`` (the extracted answer, ``""`` when
none, so verl can compute maj@N), ``pipeline`` (the ``name@version`` used) and ``extracted`` (1.0/0.0). A missing
answer is the policy's fault and scores 0.0; a bad row or config (empty gold, unknown task or pipeline) raises
``ValueError``. verl's ``main_eval`` passes no ``extra_info``, so there ``pipeline=`` must be set, and it wants a
number rather than this dict.
"""

from __future__ import annotations

from typing import Any

from verl_distill.extract import KINDS, answers_equivalent, extract, get_pipeline, pipeline_for_task


def _pipeline_key(extra_info: dict[str, Any] | None, pipeline: str | None) -> str:
    if pipeline is not None:
        return get_pipeline(pipeline).key
    task = (extra_info or {}).get("task")
    if task is None:
        raise ValueError(
            "answer_match needs extra_info['task'] (pot/nl/mc/latex, written by data_prep) or "
            "+reward.custom_reward_function.reward_kwargs.pipeline=<name@version>; got neither"
        )
    return pipeline_for_task(task)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    *,
    pipeline: str | None = None,
    kind: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response against its gold answer (verl's ``compute_score`` contract)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}; fix reward_kwargs.kind")
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise ValueError(
            f"{data_source}: ground_truth={ground_truth!r} is empty or not a string; answer_match needs a labeled "
            "row (reward_model.ground_truth), unlabeled rows (label_source='none') need a label-free reward"
        )
    key = _pipeline_key(extra_info, pipeline)
    found = extract(solution_str, key)
    correct = answers_equivalent(found.answer, ground_truth, kind=kind or get_pipeline(key).kind)
    score = 1.0 if correct else 0.0
    return {
        "score": score,
        "acc": score,
        "pred": found.answer or "",
        "pipeline": found.pipeline,
        "extracted": 1.0 if found.answer is not None else 0.0,
    }
