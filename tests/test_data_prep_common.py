"""Shared converter pieces: numbers, loading (local and Hugging Face), row building, checks, writing, and that
files from every converter concatenate and load in verl's ``RLHFDataset``."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from data_prep import common, gsm8k, gsm8k_pot, svamp, synthetic_arith, test_sets
from verl_distill.io import SourceError, read_parquet_rows
from verl_distill.pot.executor import ExecResult

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"shared data not found at {DATA}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("203.0", "203"), ("15", "15"), ("1,000", "1000"), ("0.50", "0.5"), ("3.333", "3.333"), ("-3", "-3"),
     (" 72 ", "72"), ("0.3333333333333333", "0.3333333333333333"), ("1e3", "1000"), ("-0.0", "0"), ("2.50", "2.5")],
)
def test_canonical_number(text: str, expected: str) -> None:
    assert common.canonical_number(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "6%", "nan", "inf", "1/2"])
def test_canonical_number_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        common.canonical_number(text)


def test_gold_number_names_file_row_field() -> None:
    with pytest.raises(SourceError, match=r"f\.json: row 4: field 'answer_value' is not a number"):
        common.gold_number("twelve", source="f.json", index=4, field="answer_value")


@pytest.mark.parametrize(
    ("status", "value", "error", "reason"),
    [("ok", 15.0, "", ""), ("ok", 15.009, "", ""), ("ok", 15.5, "", "wrong value"),
     ("error", None, "NameError: name 'x' is not defined", "NameError"),
     ("error", None, "SyntaxError: invalid syntax (<program>, line 3)", "SyntaxError"),
     ("error", None, "worker failed: EOF", "error"), ("timeout", None, "", "timeout"),
     ("non_numeric", None, "could not convert", "non_numeric"), ("no_program", None, "no program", "no_program")],
)
def test_exec_failure(status: str, value: float | None, error: str, reason: str) -> None:
    assert common.exec_failure(ExecResult(status, value, error, 0.0), "15") == reason


def test_load_records_local_and_missing(tmp_path: Path) -> None:
    assert len(common.load_records(str(DATA / "gsm8k" / "test.jsonl"), split="test")) == 1319
    with pytest.raises(FileNotFoundError, match="no such file"):
        common.load_records(str(tmp_path / "nothere.jsonl"), split="train")


def test_load_records_hf_id(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_load(name, config=None, *, split):  # noqa: ANN001, ANN202
        calls.append((name, config, split))
        return datasets.Dataset.from_list([{"Q": "What is 2+2?", "A": "4"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    records = common.load_records("org/name", split="test", hf_config="main")
    assert calls == [("org/name", "main", "test")]
    assert records == [{"Q": "What is 2+2?", "A": "4"}]


def test_load_records_hub_unreachable_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SourceError) as info:
        common.load_records("openai/gsm8k", split="train", hf_config="main")
    message = str(info.value)
    assert "'openai/gsm8k' is not a local file" in message and "ConnectionError" in message
    assert "pass a local file" in message and "config='main'" in message


def test_cli_reports_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q?", "answer": "no final line"}) + "\n")
    code = common.run_cli(gsm8k.main, ["--input", str(bad), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "row 0" in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_build_rows_unlabeled_drops_gold_and_solution() -> None:
    rows = common.build_rows(data_source="x", task="nl", question="q?", gold="3", solution="a\n#### 3", index=0,
                             split="train", unlabeled=True, skip_reason="ignored")
    assert rows.sft is None and rows.skip_reason == ""
    assert rows.rl["reward_model"] == {"style": "none", "ground_truth": ""}
    assert rows.rl["extra_info"]["label_source"] == "none" and rows.rl["extra_info"]["reference"] == ""


def test_build_rows_rejects_bad_knobs() -> None:
    with pytest.raises(ValueError, match="task='mc'"):
        common.render_prompt("q?", task="mc")
    with pytest.raises(ValueError, match="pot task only"):
        common.render_prompt("q?", task="nl", guarded=True)


def test_write_outputs_removes_stale_sft_file(tmp_path: Path) -> None:
    src = str(DATA / "gsm8k" / "test.jsonl")
    gsm8k.main(["--input", src, "--output-dir", str(tmp_path), "--limit", "3"])
    assert (tmp_path / "train_sft.parquet").exists()
    gsm8k.main(["--input", src, "--output-dir", str(tmp_path), "--limit", "3", "--unlabeled"])
    assert not (tmp_path / "train_sft.parquet").exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["written"] == {"train.parquet": 3}


@pytest.fixture(scope="module")
def all_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A few rows from every converter, labeled and unlabeled, PoT and NL."""
    out = tmp_path_factory.mktemp("all")
    d = DATA
    runs = {
        "gsm8k": (gsm8k.main, ["--input", d / "gsm8k/train.jsonl", "--limit", "5"]),
        "gsm8k_unl": (gsm8k.main, ["--input", d / "gsm8k/train.jsonl", "--limit", "5", "--unlabeled"]),
        "gsm8k_pot": (gsm8k_pot.main, ["--input", d / "mwp_cot_design/gsm8k_wolfram_ndp.json", "--limit", "5"]),
        "svamp_pot": (svamp.main, ["--input", d / "reft_mwp/svamp_python_sdp.json", "--limit", "5"]),
        "svamp_nl": (svamp.main, ["--format", "nl", "--input", d / "reft_mwp/svamp_nl.json", "--limit", "5"]),
        "test_gsm8k": (test_sets.main, ["--dataset", "gsm8k", "--input", d / "gsm8k/test.jsonl", "--limit", "5"]),
        "test_svamp": (test_sets.main, ["--dataset", "svamp", "--input", d / "reft_mwp/svamp_test_set.json",
                                        "--limit", "5", "--format", "nl"]),
        "synthetic": (synthetic_arith.main, ["--splits", "train=5,test=5"]),
    }
    for name, (main, args) in runs.items():
        assert main([str(a) for a in args] + ["--output-dir", str(out / name)]) == 0
    return {name: out / name for name in runs}


def test_rl_files_concatenate_and_load_in_rlhf_dataset(all_outputs: dict[str, Path], tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    files = sorted(str(p) for out in all_outputs.values() for p in out.glob("*.parquet") if "_sft" not in p.name)
    parts = [datasets.load_dataset("parquet", data_files=f)["train"] for f in files]
    assert len({p.features.to_dict().__repr__() for p in parts}) == 1, "RL schemas differ between converters"
    merged = datasets.concatenate_datasets(parts)
    assert set(merged.column_names) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    config = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 1024, "filter_overlong_prompts": False,
                               "cache_dir": str(tmp_path / "cache")})
    dataset = RLHFDataset(files, tokenizer=None, config=config)
    assert len(dataset) == len(merged) == 45
    item = dataset[0]
    assert item["raw_prompt"][0]["role"] == "user" and "extra_info" in item


def test_sft_files_concatenate(all_outputs: dict[str, Path]) -> None:
    files = sorted(str(p) for out in all_outputs.values() for p in out.glob("*_sft.parquet"))
    parts = [datasets.load_dataset("parquet", data_files=f)["train"] for f in files]
    merged = datasets.concatenate_datasets(parts)
    assert set(merged.column_names) == {"messages", "extra_info"}
    roles = {tuple(m["role"] for m in row["messages"]) for row in read_parquet_rows(files[0])}
    assert roles == {("user", "assistant")}


def test_nl_sft_targets_extract_to_their_ground_truth(all_outputs: dict[str, Path]) -> None:
    """The answer format we train on is the one the project's extraction pipeline reads."""
    from verl_distill.extract import answers_equivalent, extract, pipeline_for_task

    rows = [row for name in ("gsm8k", "svamp_nl") for row in read_parquet_rows(all_outputs[name] / "train_sft.parquet")]
    assert len(rows) == 10
    for row in rows:
        found = extract(row["messages"][-1]["content"], pipeline_for_task(row["extra_info"]["task"]))
        gold = row["extra_info"]["reference"].rsplit("#### ", 1)[1]
        assert answers_equivalent(found.answer, gold, kind="numeric"), row["messages"][-1]["content"]
