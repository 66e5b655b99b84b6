"""GSM8K natural-language converter on the real files."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from data_prep import gsm8k
from verl_distill.io import SourceError, read_parquet_rows, read_records

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN = DATA / "gsm8k" / "train.jsonl"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"shared data not found at {DATA}")
RL_COLUMNS = {"data_source", "prompt", "ability", "reward_model", "extra_info"}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return read_records(TRAIN)


def test_to_row_first_record(records: list[dict]) -> None:
    rows = gsm8k.to_row(records[0], index=0, split="train", source=str(TRAIN))
    assert rows.rl["data_source"] == "gsm8k"
    assert rows.rl["reward_model"] == {"style": "rule", "ground_truth": "72"}
    prompt = rows.rl["prompt"][0]["content"]
    assert prompt.startswith("Natalia sold clips") and prompt.endswith('after "####".')
    extra = rows.rl["extra_info"]
    assert (extra["task"], extra["label_source"], extra["template"]) == ("nl", "gold", "nl_gsm8k@1")
    assert (extra["split"], extra["index"], extra["source_id"]) == ("train", 0, "")
    answer = rows.sft["messages"][1]["content"]
    assert answer == (
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72")
    assert extra["reference"] == answer and rows.sft["messages"][0] == rows.rl["prompt"][0]


@pytest.mark.parametrize(
    ("answer", "gold", "solution"),
    [("A <<2*3=6>>6 b.\n#### 6", "6", "A 6 b.\n#### 6"),
     ("It costs $<<1000+234=1234>>1,234.\n#### 1,234", "1234", "It costs $1,234.\n#### 1234"),
     ("Loss: 3-5 = <<3-5=-2>>-2\n####  -2 ", "-2", "Loss: 3-5 = -2\n#### -2")],
)
def test_to_row_cleans_annotations_and_commas(answer: str, gold: str, solution: str) -> None:
    rows = gsm8k.to_row({"question": "Q?", "answer": answer}, index=0, split="train")
    assert rows.rl["reward_model"]["ground_truth"] == gold
    assert rows.sft["messages"][1]["content"] == solution


def test_every_train_answer_is_clean(records: list[dict]) -> None:
    for i, record in enumerate(records):
        rows = gsm8k.to_row(record, index=i, split="train")
        text = rows.sft["messages"][1]["content"]
        gold = rows.rl["reward_model"]["ground_truth"]
        assert "<<" not in text and ">>" not in text and text.endswith(f"\n#### {gold}")


@pytest.mark.parametrize(
    ("record", "match"),
    [({"answer": "x\n#### 1"}, "row 7: missing field 'question'"),
     ({"question": "q?", "answer": 12}, "row 7: field 'answer' has type int"),
     ({"question": "q?", "answer": "no final line"}, "row 7: field 'answer' has no final '#### N' line"),
     ({"question": "q?", "answer": "x\n#### twelve"}, "row 7: field 'answer' is not a number"),
     ({"question": "  ", "answer": "x\n#### 1"}, "row 7: field 'question' is empty")],
)
def test_malformed_records_raise_with_file_row_field(record: dict, match: str) -> None:
    with pytest.raises(SourceError, match=f"bad.jsonl: {match}"):
        gsm8k.to_row(record, index=7, split="train", source="bad.jsonl")


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert gsm8k.main(["--input", str(TRAIN), "--output-dir", str(tmp_path), "--limit", "50"]) == 0
    assert capsys.readouterr().out.strip() == (
        "[gsm8k] read 50, wrote train.parquet=50, train_sft.parquet=50, skipped 0 (none)")
    rl, sft = read_parquet_rows(tmp_path / "train.parquet"), read_parquet_rows(tmp_path / "train_sft.parquet")
    assert len(rl) == len(sft) == 50 and set(rl[0]) == RL_COLUMNS and set(sft[0]) == {"messages", "extra_info"}
    assert [r["extra_info"]["index"] for r in rl] == list(range(50))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["read"] == 50 and manifest["skipped"] == {} and manifest["input"] == str(TRAIN)
    assert manifest["written"] == {"train.parquet": 50, "train_sft.parquet": 50}
    assert manifest["templates"] == ["nl_gsm8k@1"] and manifest["label_source"] == "gold"


def test_cli_unlabeled(tmp_path: Path) -> None:
    assert gsm8k.main(["--input", str(TRAIN), "--output-dir", str(tmp_path), "--limit", "20", "--unlabeled"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train.parquet"]
    for row in read_parquet_rows(tmp_path / "train.parquet"):
        assert row["reward_model"]["ground_truth"] == "" and row["extra_info"]["label_source"] == "none"
        assert row["extra_info"]["reference"] == ""
    assert json.loads((tmp_path / "manifest.json").read_text())["label_source"] == "none"


def test_cli_from_hf_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf_rows = read_records(TRAIN)[:4]  # openai/gsm8k (config main) has the same question/answer fields

    def fake_load(name, config=None, *, split):  # noqa: ANN001, ANN202
        assert (name, config, split) == ("openai/gsm8k", "main", "train")
        return datasets.Dataset.from_list(hf_rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert gsm8k.main(["--input", "openai/gsm8k", "--output-dir", str(tmp_path)]) == 0
    rows = read_parquet_rows(tmp_path / "train.parquet")
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["72", "10", "5", "42"]


def test_seed000_prompt_and_validation_holdout(tmp_path: Path, records: list[dict]) -> None:
    args = ["--input", str(TRAIN), "--output-dir", str(tmp_path), "--limit", "200", "--template",
            "fewshot_gsm8k_seed000", "--validation-fraction", "0.1"]
    assert gsm8k.main(args) == 0
    train, val = read_parquet_rows(tmp_path / "train.parquet"), read_parquet_rows(tmp_path / "validation.parquet")
    assert (len(train), len(val)) == (180, 20)  # Appendix B.1: 90/10
    assert sorted(r["extra_info"]["index"] for r in train + val) == list(range(200))
    assert {r["extra_info"]["split"] for r in val} == {"validation"} and {r["extra_info"]["split"] for r in train} == {
        "train"}
    row = train[0]
    text, question = row["prompt"][0]["content"], records[row["extra_info"]["index"]]["question"].strip()
    assert text.startswith("Q:\nThere are 15 trees in the grove.") and "The answer is 39.\n\n" in text
    assert text.endswith(f"Q: {question}\nLet's break this down step by step!")
    assert row["extra_info"]["template"] == "fewshot_gsm8k_seed000@1"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["written"] == {"validation.parquet": 20, "validation_sft.parquet": 20, "train.parquet": 180,
                                   "train_sft.parquet": 180}
    with pytest.raises(KeyError, match="unknown prompt template"):
        gsm8k.main(args[:-4] + ["--template", "nope@1"])
