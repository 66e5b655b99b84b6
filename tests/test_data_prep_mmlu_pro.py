"""The MMLU-Pro converter on the real test file (shared/data) and a small shots file in the validation layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep import mmlu_pro
from verl_distill.extract.pipelines import extract
from verl_distill.io import SourceError, read_parquet_rows

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "mmlu_pro" / "test.jsonl"
SHOTS = REPO / "tests" / "data" / "mmlu_pro_shots_sample.jsonl"


def _all(out: Path) -> list[dict]:
    return [r for s in ("train", "validation", "test") for r in read_parquet_rows(out / f"{s}.parquet")]


def test_real_file_split_and_rows(tmp_path: Path) -> None:
    assert mmlu_pro.main(["--input", str(SOURCE), "--shots", "none", "--output-dir", str(tmp_path), "--limit",
                          "400"]) == 0
    counts = {s: len(read_parquet_rows(tmp_path / f"{s}.parquet")) for s in ("train", "validation", "test")}
    assert counts == {"test": 60, "validation": 34, "train": 306}  # 15% of 400; 10% of the remaining 340
    rows = _all(tmp_path)
    assert sorted(r["extra_info"]["index"] for r in rows) == list(range(400))  # nothing dropped or doubled
    records = [json.loads(line) for line in SOURCE.read_text().splitlines()[:400]]
    for r in rows:
        rec = records[r["extra_info"]["index"]]
        assert r["reward_model"]["ground_truth"] == rec["answer"] == "ABCDEFGHIJ"[rec["answer_index"]]
        assert r["extra_info"]["task"] == "mc" and r["extra_info"]["source_id"] == str(rec["question_id"])
        prompt = r["prompt"][0]["content"]
        assert prompt.startswith("Question: " + rec["question"].strip())  # zero-shot: no shot blocks
        letters = "ABCDEFGHIJ"[:len(rec["options"])]
        assert all(f"\n{a}. {opt.strip()}" in prompt for a, opt in zip(letters, rec["options"], strict=True))
        assert prompt.endswith("Answer:\nLet's break this down step by step!")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["shots"] == "none" and manifest["templates"] == ["fewshot_mmlu_pro_seed000@1"]
    again = tmp_path / "again"
    mmlu_pro.main(["--input", str(SOURCE), "--shots", "none", "--output-dir", str(again), "--limit", "400"])
    assert _all(again) == rows  # the split is seeded


def test_two_shots_of_the_same_category(tmp_path: Path) -> None:
    shots = mmlu_pro.build_shots([json.loads(x) for x in SHOTS.read_text().splitlines()], source="shots")
    assert set(shots) == {"business", "law"}
    assert shots["business"].count("Question: ") == 2 and "Third business shot" not in shots["business"]
    assert "Answer: Let's think step by step. 2 + 3 = 5. The answer is (B).\n\n" in shots["business"]
    rec = {"question_id": 9, "question": "Q?", "options": ["a", "b"], "answer": "A", "answer_index": 0,
           "category": "law"}
    row = mmlu_pro.to_row(rec, index=0, split="train", shots=shots, source="x")
    text = row["prompt"][0]["content"]
    assert text.startswith(shots["law"]) and text.endswith("Question: Q?\nOptions: \nA. a\nB. b\nAnswer:\n"
                                                           "Let's break this down step by step!")
    with pytest.raises(SourceError, match="no shots for category 'math'"):
        mmlu_pro.to_row(rec | {"category": "math"}, index=3, split="train", shots=shots, source="x")


@pytest.mark.parametrize(("bad", "message"), [
    ({"answer": "K"}, "not one of the 4 option letters"),
    ({"answer_index": 2}, "disagrees with answer_index"),
    ({"options": ["only one"]}, "'options' must be a list of 2-10"),
])
def test_bad_records_name_the_record(bad: dict, message: str) -> None:
    rec = {"question": "Q", "options": ["a", "b", "c", "d"], "answer": "B", "answer_index": 1} | bad
    with pytest.raises(SourceError, match=f"record 7: .*{message}"):
        mmlu_pro.check_record(rec, index=7, source="f.jsonl")


def test_mc_answers_of_seed000_style_outputs() -> None:
    assert extract("Step 1: ... Step 3: so the answer is (D).", "mc@1").answer == "D"
