"""GSM8K program-of-thought from mwp_cot_design: program conversion, sandboxed checks, reproduction counts."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from data_prep import gsm8k_pot
from data_prep.common import render_prompt
from verl_distill.io import SourceError, read_parquet_rows, read_records
from verl_distill.pot.executor import ExecResult, PotExecutor

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCE = DATA / "mwp_cot_design" / "gsm8k_wolfram_ndp.json"
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason=f"shared data not found at {SOURCE}")
OK_15 = ExecResult("ok", 15.0, "", 0.01)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return read_records(SOURCE)


@pytest.mark.parametrize(
    ("cot", "body"),
    [("v1 = 4 ; v2 = 80\nv3 = v2 / v1", "    v1 = 4\n    v2 = 80\n    v3 = v2 / v1\n    return v3\n"),
     ("v1 = 2\n\nv2 = v1 * 3 ;", "    v1 = 2\n    v2 = v1 * 3\n    return v2\n"),
     ("v1 = 50 ; v2 = 25\nv3 = v1 / v2\nv3", "    v1 = 50\n    v2 = 25\n    v3 = v1 / v2\n    return v3\n"),
     ("v1 = 2\nlcm = 12\nlcm", "    v1 = 2\n    lcm = 12\n    return lcm\n")],
)
def test_to_body(cot: str, body: str) -> None:
    assert gsm8k_pot.to_body(cot) == body


@pytest.mark.parametrize(
    ("cot", "reason"),
    [("v1 = 40\nv3 = x\nv5 = x + v3 == v1\nv6 = Solve[v5, Reals]\nv7 = v3 /. v6", "SyntaxError"),
     ("v1 = 2\nv1 + 3", "no final assignment"), ("", "no final assignment"), ("v1, v2 = 1, 2", "no final assignment")],
)
def test_to_body_rejects(cot: str, reason: str) -> None:
    with pytest.raises(gsm8k_pot.ProgramError, match=reason):
        gsm8k_pot.to_body(cot)


def test_to_row_first_record(records: list[dict]) -> None:
    rows = gsm8k_pot.to_row(records[0], index=0, split="train", exec_result=OK_15)
    assert rows.rl["data_source"] == "gsm8k" and rows.rl["reward_model"]["ground_truth"] == "15"
    assert rows.rl["prompt"][0]["content"] == render_prompt(records[0]["question"], task="pot")[0]
    assert rows.rl["prompt"][0]["content"].startswith('def solution():\n    """Hammond carves')
    extra = rows.rl["extra_info"]
    assert (extra["task"], extra["source_id"], extra["template"]) == ("pot", "gsm8k_5224", "pot_docstring@1")
    body = rows.sft["messages"][1]["content"]
    assert body.startswith("    v1 = 4\n    v2 = 80\n") and body.endswith("    v9 = v8 / (v1 - 2)\n    return v9\n")
    assert extra["reference"] == body and rows.skip_reason == ""
    assert gsm8k_pot.program_for(records[0], index=0) == rows.rl["prompt"][0]["content"] + body


@pytest.mark.parametrize(
    ("result", "reason"),
    [(None, "not executed"), (ExecResult("ok", 14.0, "", 0.0), "wrong value"),
     (ExecResult("error", None, "NameError: name 'X' is not defined", 0.0), "NameError"),
     (ExecResult("timeout", None, "", 5.0), "timeout")],
)
def test_to_row_without_reproduction_keeps_rl_row_only(records: list[dict], result, reason: str) -> None:  # noqa: ANN001
    rows = gsm8k_pot.to_row(records[0], index=0, split="train", exec_result=result)
    assert rows.sft is None and rows.skip_reason == reason
    assert rows.rl["reward_model"]["ground_truth"] == "15" and rows.rl["extra_info"]["reference"] == ""


def test_to_row_unlabeled_and_guarded(records: list[dict]) -> None:
    rows = gsm8k_pot.to_row(records[0], index=0, split="train", unlabeled=True, guarded=True)
    assert rows.sft is None and rows.skip_reason == "" and rows.rl["reward_model"]["ground_truth"] == ""
    assert rows.rl["extra_info"]["template"] == "pot_docstring_guarded@1"


@pytest.mark.parametrize(
    ("record", "match"),
    [({"question": "q?", "answer_value": "3"}, "row 2: missing field 'answer_cot'"),
     ({"question": "q?", "answer_cot": "v1 = 3", "answer_value": "three"}, "row 2: field 'answer_value' is not"),
     ({"question": "q?", "answer_cot": "v1 = 3", "answer_value": 3}, "row 2: field 'answer_value' has type int")],
)
def test_malformed_records_raise(record: dict, match: str) -> None:
    with pytest.raises(SourceError, match=f"src.json: {match}"):
        gsm8k_pot.to_row(record, index=2, split="train", source="src.json")


def test_programs_run_in_the_sandbox(records: list[dict]) -> None:
    programs = [gsm8k_pot.program_for(r, index=i) for i, r in enumerate(records[:20])]
    with PotExecutor(timeout_s=5.0) as executor:
        results = executor.run(programs)
    rows = [gsm8k_pot.to_row(r, index=i, split="train", exec_result=res)
            for i, (r, res) in enumerate(zip(records[:20], results, strict=True))]
    assert sum(r.sft is not None for r in rows) >= 18


def test_cli_sample_of_300(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert gsm8k_pot.main(["--input", str(SOURCE), "--output-dir", str(tmp_path), "--limit", "300"]) == 0
    summary = capsys.readouterr().out.strip()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rl, sft = read_parquet_rows(tmp_path / "train.parquet"), read_parquet_rows(tmp_path / "train_sft.parquet")
    assert len(rl) == 300 and manifest["written"] == {"train.parquet": 300, "train_sft.parquet": len(sft)}
    assert len(sft) + sum(manifest["skipped"].values()) == 300 and len(sft) >= 270
    assert manifest["reproduced"] == f"{len(sft)}/300" and summary.startswith("[gsm8k_pot] read 300")
    assert all(key.startswith("sft: ") for key in manifest["skipped"])
    assert {r["extra_info"]["template"] for r in rl} == {"pot_docstring@1"}


def test_cli_unlabeled_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gsm8k_pot, "run_programs", lambda *a, **k: pytest.fail("unlabeled rows need no execution"))
    assert gsm8k_pot.main(["--input", str(SOURCE), "--output-dir", str(tmp_path), "--unlabeled"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train.parquet"]
    assert len(read_parquet_rows(tmp_path / "train.parquet")) == 7433


def test_every_prompt_is_valid_python(records: list[dict]) -> None:
    for record in records:
        ast.parse(render_prompt(record["question"], task="pot")[0] + "    pass\n")


@pytest.mark.slow
def test_full_conversion_reproduction_count(tmp_path: Path, records: list[dict]) -> None:
    """All 7,433 programs through the sandbox (about 40 s on 2 cores): 7,081 reproduce, as the data README reports."""
    assert gsm8k_pot.main(["--input", str(SOURCE), "--output-dir", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["written"] == {"train.parquet": 7433, "train_sft.parquet": 7081}
    assert manifest["skipped"] == {
        "sft: SyntaxError": 227, "sft: NameError": 108, "sft: UnboundLocalError": 7,
        "sft: TypeError": 7, "sft: wrong value": 2, "sft: ZeroDivisionError": 1,
    }
