"""verl reward: the one-step Yes/No LLM judge of seed 002 §2.2.2, for unlabeled rows.

``reward = sigmoid((logit_Yes - logit_No) / T)``, set to 0 below ``threshold`` (see :mod:`verl_distill.judge`).
The paper's values of T and the threshold were lost in our copy; the defaults here are ``temperature=1.0`` (the
plain probability of Yes against No) and ``threshold=0.5`` (no reward unless the judge leans Yes). The judge sees the
question from ``extra_info["question"]`` (verl passes only the response) and the student's solution (for PoT rows
the extracted program), rendered with the judge's own chat template and tokenizer.

Two ways to reach the judge (both take the same kwargs otherwise)::

    # 1. a server you start (vLLM, SGLang, hosted API): give its OpenAI-compatible base URL and its tokenizer
    +reward.custom_reward_function.reward_kwargs.judge_url=http://127.0.0.1:8001
    +reward.custom_reward_function.reward_kwargs.judge_tokenizer=/models/Qwen3-8B
    # 2. verl's reward-model router: reward.reward_model.enable=True, model_path=<judge>; verl passes
    #    reward_router_address and reward_model_tokenizer itself (mind enable_resource_pool=True and
    #    reward.reward_model.rollout.free_cache_engine=False, see the README)

Knobs (``reward_kwargs``): ``temperature``, ``threshold``, ``judge_mode`` (``logprobs`` | ``generate`` for hosted
judges without logprobs; ``thinking_off=True`` for a vLLM-served thinking model in that mode), ``judge_template``
(default by ``extra_info.task``: ``judge_pot@1`` / ``judge_nl@1``),
``judge_model`` (name sent as "model"), ``min_program_lines`` (4) and ``reject_answer_only`` (True): the B.3 guards,
``cache_size`` (0), ``max_concurrency`` (32), ``timeout_s`` (60), ``max_retries`` (3), ``api_key_env``,
``require_runnable`` (False; NOT in the paper, our label-free guard: a PoT program that does not run to a number in
the sandbox gets judge reward 0, guard ``not_runnable``, without asking the judge; a weak judge was seen rewarding
crashing programs, issue 3 note).

Every sample returns the same keys: ``score`` (= ``judge``), ``judge`` (thresholded), ``judge_raw`` (sigmoid),
``judge_margin`` (Yes-minus-No log-odds; NaN in generate mode or when guarded), ``judge_called`` (1.0/0.0),
``judge_parsed`` (1.0/0.0), ``guard`` (``""`` or the guard that zeroed the reward), ``judge_mode`` (``logprobs`` or
``generate``: the generation fallback is flagged in every output). A judge that cannot be reached
after bounded retries raises (never a silent zero).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

from verl_distill.client import ClientOptions, run_sync
from verl_distill.guards import (
    GUARD_NONE,
    GUARD_NOT_RUNNABLE,
    GuardConfig,
    check,
    load_tokenizer,
    runs,
    solution_text,
)
from verl_distill.judge import JudgeSettings, YesNoJudge, template_for_task

_JUDGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {key: YesNoJudge}


def get_judge(url: str, tokenizer: Any, settings: JudgeSettings) -> YesNoJudge:
    """One judge per (event loop, server, tokenizer, settings): its in-flight table and locks belong to one loop."""
    loop = asyncio.get_running_loop()
    judges = _JUDGES.setdefault(loop, {})
    key = (url, id(tokenizer), settings)
    if key not in judges:
        judges[key] = YesNoJudge(url, tokenizer, settings)
    return judges[key]


def _resolve(judge_url: str | None, reward_router_address: str | None, judge_tokenizer: str | None,
             reward_model_tokenizer: Any) -> tuple[str, Any]:
    url = judge_url or reward_router_address
    if not url:
        raise ValueError(
            "judge_yes_no needs a judge: set +reward.custom_reward_function.reward_kwargs.judge_url=<base URL> "
            "or enable verl's reward model (reward.reward_model.enable=True, model_path=<judge>)"
        )
    if judge_tokenizer:
        return url, load_tokenizer(judge_tokenizer)
    if reward_model_tokenizer is not None and not judge_url:
        return url, reward_model_tokenizer
    raise ValueError(
        f"judge_yes_no needs the judge's tokenizer for {url}: set reward_kwargs.judge_tokenizer=<path or hub id> "
        "(the judge's own chat template renders the prompt, not the student's)"
    )


def _result(score: float, raw: float, margin: float, called: bool, parsed: bool, guard: str,
            mode: str) -> dict[str, Any]:
    return {
        "score": score, "judge": score, "judge_raw": raw, "judge_margin": margin,
        "judge_called": 1.0 if called else 0.0, "judge_parsed": 1.0 if parsed else 0.0, "guard": guard,
        "judge_mode": mode,
    }


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any = None,
    extra_info: dict[str, Any] | None = None,
    reward_router_address: str | None = None,
    reward_model_tokenizer: Any = None,
    *,
    judge_url: str | None = None,
    judge_tokenizer: str | None = None,
    judge_model: str | None = None,
    judge_template: str | None = None,
    judge_mode: str = "logprobs",
    thinking_off: bool = False,
    temperature: float = 1.0,
    threshold: float = 0.5,
    min_program_lines: int = 4,
    reject_answer_only: bool = True,
    cache_size: int = 0,
    max_concurrency: int = 32,
    timeout_s: float = 60.0,
    max_retries: int = 3,
    api_key_env: str | None = None,
    require_runnable: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Judge one response (verl's async ``compute_score`` contract); the label is never read."""
    extra = extra_info or {}
    question = extra.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(
            f"{data_source}: extra_info['question'] is missing or empty; the judge needs the question text "
            "(rows written by data_prep carry it)"
        )
    task = extra.get("task")
    guard = check(solution_str, task or "", GuardConfig(min_program_lines, reject_answer_only))
    if guard == GUARD_NONE and require_runnable and task == "pot" and not await asyncio.to_thread(runs, solution_str):
        guard = GUARD_NOT_RUNNABLE
    if guard != GUARD_NONE:
        return _result(0.0, 0.0, math.nan, False, True, guard, judge_mode)
    url, tokenizer = _resolve(judge_url, reward_router_address, judge_tokenizer, reward_model_tokenizer)
    options = ClientOptions(max_concurrency=max_concurrency, timeout_s=timeout_s, max_retries=max_retries,
                            api_key_env=api_key_env)
    settings = JudgeSettings(temperature=temperature, threshold=threshold, mode=judge_mode, model=judge_model,
                             cache_size=cache_size, thinking_off=thinking_off, client=options)
    judge = get_judge(url, tokenizer, settings)
    verdict = await judge.judge(question, solution_text(solution_str, task), template_for_task(task, judge_template))
    return _result(verdict.reward, verdict.raw, verdict.margin, True, verdict.parsed, GUARD_NONE, verdict.mode)


def compute_score_sync(data_source: str, solution_str: str, ground_truth: Any = None,
                       extra_info: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """The same reward for synchronous callers (``verl-distill eval``, scripts)."""
    return run_sync(compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs))
