"""Tests for reward_fns/answer_match.py, loaded by path the way verl loads a custom reward function."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager
from verl.utils.import_utils import load_extern_object

ROOT = Path(__file__).resolve().parents[1]
PATH = str(ROOT / "reward_fns" / "answer_match.py")
KEYS = {"score", "acc", "pred", "pipeline", "extracted"}
TASK_OF_KIND = {"numeric": "nl", "latex": "latex", "mc": "mc"}


@pytest.fixture(scope="module")
def compute_score():
    return load_extern_object(PATH, "compute_score")


def _extra(task: str) -> dict:
    """An extra_info as verl passes it: the row contract's keys plus the ones verl adds."""
    return {
        "question": "q",
        "label_source": "gold",
        "task": task,
        "split": "test",
        "index": 0,
        "source_id": "",
        "template": "",
        "reference": "",
        "num_turns": None,
        "rollout_reward_scores": {},
    }


def _table() -> list[dict]:
    rows = []
    for name in ("numeric", "latex", "mc"):
        with open(ROOT / "tests" / "data" / f"extract_{name}.jsonl", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f][::5]
    return rows


TABLE = _table()


@pytest.mark.parametrize("row", TABLE, ids=[r["id"] for r in TABLE])
def test_scores_table_rows(compute_score, row):
    out = compute_score(
        data_source="test",
        solution_str=row["text"],
        ground_truth=row["gold"],
        extra_info=_extra(TASK_OF_KIND[row["kind"]]),
    )
    assert set(out) == KEYS
    assert out["score"] == out["acc"] == (1.0 if row["match"] else 0.0)
    assert out["pred"] == (row["pred"] or "")
    assert out["extracted"] == (0.0 if row["pred"] is None else 1.0)
    assert out["pipeline"] == row["pipeline"]


SAMPLES = [  # (task, response, gold, score, pred)
    ("nl", "48/2 = <<48/2=24>>24\n#### 72", "72", 1.0, "72"),
    ("nl", "#### 12.5", "12", 0.0, "12.5"),
    ("nl", "I give up.", "12", 0.0, ""),
    ("pot", "Therefore, the answer is <203>.", "203.0", 1.0, "203"),
    ("latex", "<think>\nhmm\n</think>\nSo $\\boxed{\\frac{1}{3}}$.", "\\tfrac13", 1.0, "\\frac{1}{3}"),
    ("latex", "So $\\boxed{0.33}$.", "\\frac{1}{3}", 0.0, "0.33"),
    ("latex", "<think>\nstill thinking about", "\\frac{1}{3}", 0.0, ""),
    ("mc", "Let's think step by step. The answer is (C).", "C", 1.0, "C"),
    ("mc", "The answer is (D).", "C", 0.0, "D"),
    ("mc", "", "C", 0.0, ""),
]


@pytest.mark.parametrize(("task", "response", "gold", "score", "pred"), SAMPLES)
def test_same_keys_for_success_and_failure(compute_score, task, response, gold, score, pred):
    out = compute_score(data_source="src", solution_str=response, ground_truth=gold, extra_info=_extra(task))
    assert set(out) == KEYS
    assert (out["score"], out["acc"], out["pred"]) == (score, score, pred)
    assert isinstance(out["pred"], str) and isinstance(out["score"], float) and isinstance(out["extracted"], float)


def test_pipeline_kwarg_overrides_task(compute_score):
    out = compute_score("src", "The answer is 5. \\boxed{6}", "5", _extra("latex"), pipeline="answer_is@1")
    assert (out["score"], out["pipeline"]) == (1.0, "answer_is@1")


def test_kind_kwarg_overrides_the_pipelines_kind(compute_score):
    out = compute_score("src", "\\boxed{50\\%}", "50", None, pipeline="boxed", kind="numeric")
    assert (out["score"], out["pred"]) == (1.0, "50\\%")


def test_positional_call_without_extra_info(compute_score):
    """verl's main_eval calls reward_fn(data_source, response, ground_truth): the pipeline must come from kwargs."""
    assert compute_score("src", "#### 7", "7", pipeline="numeric@1")["score"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ground_truth": ""}, "ground_truth"),
        ({"ground_truth": None}, "ground_truth"),
        ({"extra_info": _extra("poetry")}, "'poetry'"),
        ({"extra_info": None}, "extra_info\\['task'\\]"),
        ({"extra_info": {"question": "q"}}, "extra_info\\['task'\\]"),
        ({"pipeline": "numeric@7"}, "'numeric@7'"),
        ({"kind": "fuzzy"}, "'fuzzy'"),
        ({"ground_truth": "twelve"}, "'twelve'"),
    ],
)
def test_caller_faults_raise(compute_score, kwargs, match):
    call = {"data_source": "src", "solution_str": "#### 5", "ground_truth": "5", "extra_info": _extra("nl")} | kwargs
    with pytest.raises(ValueError, match=match):
        compute_score(**call)


def test_reward_kwargs_through_verl_loader():
    cfg = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {"path": PATH, "name": "compute_score", "reward_kwargs": {"pipeline": "mc@1"}}
            }
        }
    )
    fn = get_custom_reward_fn(cfg)
    out = fn(data_source="src", solution_str="Answer: B", ground_truth="B", extra_info=_extra("nl"))
    assert (out["score"], out["pipeline"]) == (1.0, "mc@1")


class _Tokenizer:
    """Stands in for a HF tokenizer: ids index into a fixed list of responses."""

    def __init__(self, texts: list[str]):
        self.texts = texts

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.texts[int(ids[0])]


def test_naive_reward_manager_end_to_end():
    """verl's naive manager runs a sync reward in its thread pool (Math-Verify must not use signal.alarm there)."""
    texts = ["So $\\boxed{\\frac{\\sqrt{3}}{2}}$.", "No idea."]
    cfg = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {"path": PATH, "name": "compute_score"},
                "reward_manager": {"source": "register", "name": "naive"},
            }
        }
    )
    manager = load_reward_manager(cfg, _Tokenizer(texts))
    outs = []
    for i in range(len(texts)):
        data = DataProto.from_dict(
            tensors={
                "prompts": torch.zeros(1, 2, dtype=torch.long),
                "responses": torch.full((1, 3), i),
                "attention_mask": torch.ones(1, 5, dtype=torch.long),
            },
            non_tensors={
                "data_source": ["src"],
                "reward_model": [{"ground_truth": "\\frac{1}{2}\\sqrt{3}"}],
                "extra_info": [_extra("latex")],
            },
        )
        outs.append(manager.loop.run_until_complete(manager.run_single(data)))
    assert [o["reward_score"] for o in outs] == [1.0, 0.0]
    assert set(outs[0]["reward_extra_info"]) == set(outs[1]["reward_extra_info"]) == KEYS


def test_many_threads_at_once(compute_score):
    def one(i: int) -> float:
        text = f"Thus $\\boxed{{\\frac{{{i}}}{{2}}}}$."
        return compute_score("src", text, f"{i / 2}", _extra("latex"))["score"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(one, range(1, 33))) == [1.0] * 32


def test_async_loop_default_executor(compute_score):
    async def main() -> dict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: compute_score("src", "\\boxed{x^2-1}", "(x-1)(x+1)", _extra("latex"))
        )

    assert asyncio.run(main())["score"] == 1.0
