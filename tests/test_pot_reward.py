"""``reward_fns/pot_verifiable.py``, loaded by path the way verl loads it, called with verl's keyword arguments."""

from __future__ import annotations

import concurrent.futures
import json
import random
from pathlib import Path

import pytest
from verl.utils.import_utils import load_extern_object

REWARD_FILE = str(Path(__file__).resolve().parents[1] / "reward_fns" / "pot_verifiable.py")
SVAMP = Path("/work/shared/data/reft_mwp/svamp_python_sdp.json")
KEYS = {"score", "acc", "pred", "ran", "timeout", "status", "lines"}
BODY = "    apples = 12\n    eaten = 5\n    left = apples - eaten\n    return left\n"


@pytest.fixture(scope="module")
def compute_score():
    return load_extern_object(REWARD_FILE, "compute_score")


def call(fn, response: str, gold: object = "7", **knobs: object) -> dict:
    extra_info = {"question": "q", "num_turns": 1, "rollout_reward_scores": {}}
    return fn(data_source="svamp", solution_str=response, ground_truth=gold, extra_info=extra_info, **knobs)


# (response, score, acc, pred, ran, timeout, status)
CASES = [
    (BODY, 1.0, 1.0, "7.0", 1.0, 0.0, "ok"),
    (BODY.replace("5", "4"), 0.1, 0.0, "8.0", 1.0, 0.0, "ok"),
    ("    return 7.004\n", 1.0, 1.0, "7.004", 1.0, 0.0, "ok"),  # within ReFT's 1e-2
    ("    x = 1 / 0\n    return x\n", 0.0, 0.0, "", 0.0, 0.0, "error"),
    ("    while True:\n        pass\n", 0.0, 0.0, "", 0.0, 1.0, "timeout"),
    ("    return 'seven'\n", 0.0, 0.0, "", 1.0, 0.0, "non_numeric"),
    ("The answer is 7.", 0.0, 0.0, "", 0.0, 0.0, "no_program"),
    ("", 0.0, 0.0, "", 0.0, 0.0, "no_program"),
]


@pytest.mark.parametrize(("response", "score", "acc", "pred", "ran", "timeout", "status"), CASES)
def test_scores_and_flags(compute_score, response, score, acc, pred, ran, timeout, status) -> None:
    info = call(compute_score, response, timeout_s=1.0)
    assert (info["score"], info["acc"], info["pred"], info["ran"], info["timeout"], info["status"]) == (
        score,
        acc,
        pred,
        ran,
        timeout,
        status,
    )


def test_every_sample_returns_the_same_keys_and_types(compute_score) -> None:
    infos = [call(compute_score, case[0], timeout_s=1.0) for case in CASES]
    for info in infos:
        assert set(info) == KEYS
        assert isinstance(info["pred"], str) and isinstance(info["status"], str) and isinstance(info["lines"], int)
        assert all(isinstance(info[k], float) for k in ("score", "acc", "ran", "timeout"))


def test_lines_counts_the_body(compute_score) -> None:
    assert call(compute_score, BODY)["lines"] == 4
    assert call(compute_score, "    return 7\n")["lines"] == 1
    assert call(compute_score, "no code here")["lines"] == 0


def test_pred_is_canonical_for_majority_voting(compute_score) -> None:
    assert call(compute_score, "    return 8\n")["pred"] == call(compute_score, "    return 8.0\n")["pred"] == "8.0"
    assert call(compute_score, "    return 0.1 + 0.2\n")["pred"] == call(compute_score, "    return 0.3\n")["pred"]


def test_score_knobs(compute_score) -> None:
    assert call(compute_score, BODY, correct_score=2.0)["score"] == 2.0
    assert call(compute_score, "    return 8\n", runnable_score=0.0)["score"] == 0.0
    assert call(compute_score, "    return 7.5\n", tol=1.0)["acc"] == 1.0


def test_extra_verl_kwargs_are_ignored(compute_score) -> None:
    info = call(compute_score, BODY, reward_router_address="127.0.0.1:1", reward_model_tokenizer=None)
    assert info["score"] == 1.0


@pytest.mark.parametrize("gold", ["7", 7, 7.0, "7.0", " 7 ", "0,007"])
def test_gold_parsing(compute_score, gold: object) -> None:
    assert call(compute_score, BODY, gold=gold)["acc"] == 1.0


@pytest.mark.parametrize("gold", ["seven", "", None, "nan", "inf", "1/2"])
def test_bad_gold_raises_naming_the_value(compute_score, gold: object) -> None:
    with pytest.raises(ValueError, match="ground_truth"):
        call(compute_score, BODY, gold=gold)


@pytest.mark.parametrize(
    "knobs",
    [
        {"timeout_s": 0},
        {"timeout_s": "2"},
        {"memory_mb": 1},
        {"tol": -1},
        {"correct_score": float("nan")},
        {"runnable_score": "0.1"},
    ],
)
def test_bad_knobs_raise(compute_score, knobs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(knobs))):
        call(compute_score, BODY, **knobs)


def test_gold_svamp_sample_scores_one_from_many_threads(compute_score) -> None:
    rows = random.Random(1).sample(json.loads(SVAMP.read_text()), 100)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:  # verl calls sync rewards from worker threads
        infos = list(pool.map(lambda r: call(compute_score, r["answer_cot"], gold=r["answer_value"]), rows))
    assert [r["item_id"] for r, info in zip(rows, infos, strict=True) if info["score"] != 1.0] == []


def test_batched_variant_matches_the_per_sample_one(compute_score) -> None:
    batch = load_extern_object(REWARD_FILE, "compute_score_batch")
    responses = [case[0] for case in CASES]
    infos = batch(["svamp"] * len(responses), responses, ["7"] * len(responses), [None] * len(responses), timeout_s=1.0)
    assert [(i["score"], i["status"]) for i in infos] == [(c[1], c[6]) for c in CASES]
