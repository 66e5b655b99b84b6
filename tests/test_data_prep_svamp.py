"""SVAMP converter (ReFT PoT and NL files, original SVAMP layout, Hugging Face id) on the real files."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from data_prep import svamp
from verl_distill.io import SourceError, read_parquet_rows, read_records
from verl_distill.pot.executor import ExecResult

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
POT = DATA / "reft_mwp" / "svamp_python_sdp.json"
NL = DATA / "reft_mwp" / "svamp_nl.json"
ORIGINAL = DATA / "svamp" / "SVAMP.json"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"shared data not found at {DATA}")
OK_203 = ExecResult("ok", 203.0, "", 0.01)


def test_pot_body_drops_def_and_docstring() -> None:
    cot = read_records(POT)[1]["answer_cot"]
    assert svamp.pot_body(cot) == (
        "    num_books_total = 344\n    num_books_school = 136\n"
        "    num_books_sports = num_books_total - num_books_school\n    result = num_books_sports\n    return result\n")


@pytest.mark.parametrize(
    ("program", "body"),
    [('def solution():\n    """Multi\n    line."""\n    x = 2\n\n    return x\n', "    x = 2\n    return x\n"),
     ("def solution():\n    x = 2\n    return x", "    x = 2\n    return x\n")],
)
def test_pot_body_variants(program: str, body: str) -> None:
    assert svamp.pot_body(program) == body


@pytest.mark.parametrize(
    ("program", "reason"),
    [("def solution(:\n    return 1", "SyntaxError"), ("def answer():\n    return 1", "not a single def solution"),
     ("def solution():\n    return 1\nprint(1)", "not a single def solution"),
     ('def solution():\n    """Only a docstring."""', "empty or badly indented body")],
)
def test_pot_body_rejects(program: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        svamp.pot_body(program)


@pytest.mark.parametrize(
    ("cot", "gold", "expected"),
    [("29 * 7 = 203 pairs.\n\nTherefore, the answer is <203>.", "203", "29 * 7 = 203 pairs.\n#### 203"),
     ("The tax is 6%.\n\nTherefore, the answer is <6%>.", "6", "The tax is 6%.\n#### 6"),
     ("It is $1,200.\nTherefore, the answer is <$1,200>. ", "1200", "It is $1,200.\n#### 1200"),
     ("A third.\nTherefore, the answer is <0.33>.", "0.3333333333333333", "A third.\n#### 0.3333333333333333")],
)
def test_nl_solution(cot: str, gold: str, expected: str) -> None:
    assert svamp.nl_solution(cot, gold) == expected


@pytest.mark.parametrize(
    ("cot", "reason"),
    [("This question was already answered earlier. The answer is <4>.", "no final answer line"),
     ("So 9 trucks.\n\nTherefore, the answer is <9>.", "final answer differs from gold"),
     ("Therefore, the answer is <many>.", "final answer not a number"),
     ("Therefore, the answer is <8.93>.", "no reasoning")],
)
def test_nl_solution_rejects(cot: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        svamp.nl_solution(cot, "8.9333333333")


def test_to_row_pot_real_record() -> None:
    record = read_records(POT)[0]
    rows = svamp.to_row(record, index=0, split="train", exec_result=OK_203)
    assert rows.rl["data_source"] == "svamp" and rows.rl["reward_model"]["ground_truth"] == "203"  # "203.0"
    assert rows.rl["extra_info"]["source_id"] == "svamp_0" and rows.rl["extra_info"]["task"] == "pot"
    assert rows.sft["messages"][1]["content"].startswith("    num_species = 29\n")
    assert svamp.program_for(record, index=0) == rows.rl["prompt"][0]["content"] + rows.sft["messages"][1]["content"]
    wrong = svamp.to_row(record, index=0, split="train", exec_result=ExecResult("ok", 200.0, "", 0.0))
    assert wrong.sft is None and wrong.skip_reason == "wrong value" and wrong.rl["extra_info"]["reference"] == ""


def test_to_row_nl_real_record() -> None:
    rows = svamp.to_row(read_records(NL)[1], index=1, split="train", fmt="nl")
    assert rows.rl["prompt"][0]["content"].endswith('after "####".') and rows.rl["extra_info"]["task"] == "nl"
    assert rows.sft["messages"][1]["content"].endswith("Therefore, Iesha has 208 books about sports.\n#### 208")


def test_to_row_original_svamp_layout() -> None:
    record = read_records(ORIGINAL)[0]
    rows = svamp.to_row(record, index=0, split="train")
    assert rows.rl["extra_info"]["question"] == f"{record['Body'].strip()} {record['Question'].strip()}"
    assert rows.rl["extra_info"]["source_id"] == record["ID"] and rows.sft is None and rows.skip_reason == ""
    assert rows.rl["reward_model"]["ground_truth"] == svamp.canonical_number(str(record["Answer"]))


@pytest.mark.parametrize(
    ("record", "match"),
    [({"question": "q?", "answer_value": "3.0"}, "row 5: missing field 'answer_cot'"),
     ({"question": "q?", "answer_cot": "x", "answer_value": "3 apples"}, "row 5: field 'answer_value' is not a"),
     ({"Body": "b.", "Question": "q?", "Answer": None}, "row 5: missing field 'Answer'")],
)
def test_malformed_records_raise(record: dict, match: str) -> None:
    with pytest.raises(SourceError, match=f"s.json: {match}"):
        svamp.to_row(record, index=5, split="train", source="s.json")


def test_to_row_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="fmt='latex'"):
        svamp.to_row(read_records(NL)[0], index=0, split="train", fmt="latex")


def test_cli_pot_sample(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert svamp.main(["--input", str(POT), "--output-dir", str(tmp_path), "--limit", "300"]) == 0
    assert capsys.readouterr().out.strip() == (
        "[svamp_pot] read 300, wrote train.parquet=300, train_sft.parquet=300, skipped 0 (none)")
    rl = read_parquet_rows(tmp_path / "train.parquet")
    assert [r["reward_model"]["ground_truth"] for r in rl[:3]] == ["203", "208", "8"]  # from "203.0", ...
    assert not any(r["reward_model"]["ground_truth"].endswith(".0") for r in rl)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["templates"] == ["pot_docstring@1"] and manifest["data_source"] == "svamp"


@pytest.mark.slow
def test_cli_pot_every_program_reproduces(tmp_path: Path) -> None:
    """All 3,043 ReFT programs, as bodies under our prompt, reproduce their gold answers (about 20 s on 2 cores)."""
    assert svamp.main(["--input", str(POT), "--output-dir", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["written"] == {"train.parquet": 3043, "train_sft.parquet": 3043} and manifest["skipped"] == {}


def test_cli_nl_counts_skips(tmp_path: Path) -> None:
    assert svamp.main(["--format", "nl", "--input", str(NL), "--output-dir", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["read"] == 3076 and manifest["task"] == "nl"
    assert manifest["written"] == {"train.parquet": 3076, "train_sft.parquet": 3065}
    assert manifest["skipped"] == {"sft: no final answer line": 9, "sft: final answer differs from gold": 2}
    sft = read_parquet_rows(tmp_path / "train_sft.parquet")
    assert all("Therefore, the answer is <" not in r["messages"][1]["content"] for r in sft)


def test_cli_unlabeled(tmp_path: Path) -> None:
    assert svamp.main(["--input", str(POT), "--output-dir", str(tmp_path), "--unlabeled", "--limit", "10"]) == 0
    rows = read_parquet_rows(tmp_path / "train.parquet")
    assert len(rows) == 10 and not (tmp_path / "train_sft.parquet").exists()
    assert {r["extra_info"]["label_source"] for r in rows} == {"none"}


def test_cli_from_hf_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = [{"ID": "chal-1", "Body": "Each pack has 3 cards .", "Question": "How many cards in 4 packs ?",
           "Equation": "( 3.0 * 4.0 )", "Answer": 12.0, "Type": "Multiplication",
           "question_concat": "Each pack has 3 cards . How many cards in 4 packs ?"}]
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, *, split: datasets.Dataset.from_list(hf))
    assert svamp.main(["--input", "ChilleD/SVAMP", "--output-dir", str(tmp_path)]) == 0
    (row,) = read_parquet_rows(tmp_path / "train.parquet")
    assert row["reward_model"]["ground_truth"] == "12" and row["extra_info"]["source_id"] == "chal-1"
    assert row["extra_info"]["question"] == "Each pack has 3 cards . How many cards in 4 packs ?"
    assert not (tmp_path / "train_sft.parquet").exists()
