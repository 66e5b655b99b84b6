"""GSM8K and SVAMP test sets as labeled RL rows."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from data_prep import test_sets
from verl_distill.io import SourceError, read_parquet_rows, read_records

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K_JSONL = DATA / "gsm8k" / "test.jsonl"
GSM8K_REFT = DATA / "reft_mwp" / "gsm8k_test_set.json"
SVAMP_REFT = DATA / "reft_mwp" / "svamp_test_set.json"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"shared data not found at {DATA}")


def test_both_gsm8k_layouts_agree() -> None:
    jsonl, reft = read_records(GSM8K_JSONL), read_records(GSM8K_REFT)
    assert len(jsonl) == len(reft) == 1319
    for i in (0, 1, 500, 1318):
        a = test_sets.to_row(jsonl[i], index=i, dataset="gsm8k").rl
        b = test_sets.to_row(reft[i], index=i, dataset="gsm8k").rl
        assert a["reward_model"] == b["reward_model"] and a["prompt"] == b["prompt"]
        assert b["extra_info"]["source_id"] == f"gsm8k_{i}" and a["extra_info"]["split"] == "test"


def test_gsm8k_nl_keeps_reference_pot_does_not() -> None:
    record = read_records(GSM8K_JSONL)[0]
    nl = test_sets.to_row(record, index=0, dataset="gsm8k", fmt="nl")
    pot = test_sets.to_row(record, index=0, dataset="gsm8k", fmt="pot")
    assert nl.sft is None and pot.sft is None
    assert nl.rl["extra_info"]["reference"].endswith("every day at the farmer’s market.\n#### 18")
    assert "<<" not in nl.rl["extra_info"]["reference"] and pot.rl["extra_info"]["reference"] == ""
    assert pot.rl["prompt"][0]["content"].startswith('def solution():\n    """Janet’s ducks lay 16 eggs')


def test_svamp_row() -> None:
    rows = test_sets.to_row(read_records(SVAMP_REFT)[1], index=1, dataset="svamp", guarded=True)
    assert rows.rl["data_source"] == "svamp" and rows.rl["reward_model"]["ground_truth"] == "2436"
    assert rows.rl["extra_info"]["template"] == "pot_docstring_guarded@1"


def test_bad_records_and_knobs() -> None:
    with pytest.raises(SourceError, match=r"t\.json: row 3: missing field 'question'"):
        test_sets.to_row({"answer_value": "3"}, index=3, dataset="svamp", source="t.json")
    with pytest.raises(ValueError, match="dataset='mathqa'"):
        test_sets.to_row({"question": "q?", "answer_value": "3"}, index=0, dataset="mathqa")


@pytest.mark.parametrize(("dataset", "path", "count"), [("gsm8k", GSM8K_JSONL, 1319), ("gsm8k", GSM8K_REFT, 1319),
                                                         ("svamp", SVAMP_REFT, 1000)])
def test_cli(tmp_path: Path, dataset: str, path: Path, count: int, capsys: pytest.CaptureFixture) -> None:
    assert test_sets.main(["--dataset", dataset, "--input", str(path), "--output-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"[{dataset}_test] read {count}, wrote test.parquet={count}, skipped 0 (none)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "test.parquet"]
    rows = read_parquet_rows(tmp_path / "test.parquet")
    assert {r["extra_info"]["split"] for r in rows} == {"test"} and {r["data_source"] for r in rows} == {dataset}
    assert all(r["reward_model"]["ground_truth"] for r in rows)
    assert json.loads((tmp_path / "manifest.json").read_text())["split"] == "test"


def test_cli_refuses_unlabeled(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        test_sets.main(["--dataset", "svamp", "--input", str(SVAMP_REFT), "--output-dir", str(tmp_path), "--unlabeled"])


def test_cli_from_hf_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = {("openai/gsm8k", "main"): [{"question": "What is 6 * 7?", "answer": "6 * 7 = <<6*7=42>>42\n#### 42"}],
          ("ChilleD/SVAMP", None): [{"ID": "chal-9", "Body": "Tom has 5 pens .", "Question": "He loses 2 . How many ?",
                                     "Equation": "( 5.0 - 2.0 )", "Answer": 3.0, "Type": "Subtraction",
                                     "question_concat": "Tom has 5 pens . He loses 2 . How many ?"}]}
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda name, config=None, *, split: datasets.Dataset.from_list(hf[name, config]))
    for dataset, name, gold in (("gsm8k", "openai/gsm8k", "42"), ("svamp", "ChilleD/SVAMP", "3")):
        out = tmp_path / dataset
        assert test_sets.main(["--dataset", dataset, "--input", name, "--output-dir", str(out), "--format", "nl"]) == 0
        (row,) = read_parquet_rows(out / "test.parquet")
        assert row["reward_model"]["ground_truth"] == gold and row["extra_info"]["task"] == "nl"
