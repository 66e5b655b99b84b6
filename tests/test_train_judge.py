"""``verl-distill train-judge``: Yes/No SFT of a tiny judge with exactly balanced batches and the loss on the verdict.

A few steps on judge data built from gold and perturbed programs (no student sampling: fast), with the compact
template; the saved judge is scored by ``judge-pairwise`` with the same template.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from verl_distill import judge_data as jd
from verl_distill import train_judge as tj
from verl_distill.io import read_parquet_rows
from verl_distill.judge import render_judge_prompt

CLI = str(Path(sys.executable).parent / "verl-distill")


@pytest.fixture(scope="module")
def judge_rows(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("judge_rows")
    jd.build_judge_data(small_data / "synthetic" / "train.parquet", [], out,
                        jd.JudgeDataConfig(perturbations=3, per_label=3, val_fraction=0.25, limit=24,
                                           balance="oversample", judge_template="judge_pot_compact@1"))
    val = read_parquet_rows(out / "reranker_validation.parquet")
    good = {r["qid"]: r for r in val if r["label"] == 1}
    bad = {r["qid"]: r for r in val if r["label"] == 0}
    jd.write_table([{"question": good[q]["question"], "correct_solution": good[q]["solution"],
                     "incorrect_solution": bad[q]["solution"]} for q in sorted(good.keys() & bad.keys())],
                   out / "pairwise_validation.parquet")
    return out


def test_batches_are_exactly_half_yes_and_seeded() -> None:
    batches = tj.BalancedBatches([0, 1], list(range(2, 40)), batch_size=8, steps=50, seed=3)
    runs = [list(batches), list(batches)]
    assert runs[0] == runs[1] and len(runs[0]) == 50
    assert all(sum(i < 2 for i in b) == 4 and len(b) == 8 for b in runs[0])
    assert set().union(*map(set, runs[0])) == set(range(40))  # every row is drawn over 50 batches
    assert runs[0] != list(tj.BalancedBatches([0, 1], list(range(2, 40)), batch_size=8, steps=50, seed=4))
    with pytest.raises(ValueError, match="even"):
        tj.BalancedBatches([0], [1], batch_size=7, steps=1, seed=0)
    with pytest.raises(ValueError, match="0 Yes"):
        tj.BalancedBatches([], [1], batch_size=2, steps=1, seed=0)


def test_rows_are_the_served_prompt_plus_the_verdict_only(judge_rows: Path, tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir / "teacher")
    rows = read_parquet_rows(judge_rows / "judge_train.parquet")
    examples = tj.encode_rows(judge_rows / "judge_train.parquet", tok)
    yes, no = jd.yes_no_ids(tok)
    for row, ex in zip(rows[:5], examples[:5], strict=True):  # the served judge's exact ids (reward_fns path)
        prompt = render_judge_prompt(tok, "judge_pot_compact@1", row["extra_info"]["question"], _solution(row))
        assert ex["input_ids"][:-1] == prompt
        assert ex["labels"][:-1] == [-100] * len(prompt)
        assert ex["labels"][-1] == ex["input_ids"][-1] == (yes if row["messages"][1]["content"] == "Yes" else no)


def _solution(row: dict) -> str:
    content = row["messages"][0]["content"]
    return content.split("Program:\n", 1)[1].rsplit("\nCorrect? Yes or No.", 1)[0]


def test_malformed_rows_name_the_row(tmp_path: Path, tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    from verl_distill.io import write_parquet
    from verl_distill.schema import make_extra_info, make_sft_row

    extra = make_extra_info(question="q", label_source="gold", task="pot", split="train", index=0, source_id="x",
                            template="judge_pot_compact@1", reference="")
    rows = [make_sft_row(messages=[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Yes"}],
                         extra_info=extra),
            make_sft_row(messages=[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Maybe"}],
                         extra_info=extra)]
    write_parquet(rows, tmp_path / "judge_train.parquet", kind="sft")
    with pytest.raises(ValueError, match="row 1: expected"):
        tj.encode_rows(tmp_path / "judge_train.parquet", AutoTokenizer.from_pretrained(tiny_dir / "teacher"))


def test_cli_trains_saves_and_scores_with_the_data_template(judge_rows: Path, tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "judge"
    args = [CLI, "train-judge", "--data", str(judge_rows), "--init", str(tiny_dir / "teacher"), "--out", str(out),
            "--steps", "6", "--batch-size", "4", "--warmup-steps", "1"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held-out pairwise accuracy" in proc.stdout
    info = json.loads((out / "judge.json").read_text())
    assert info["template"] == "judge_pot_compact@1" and info["config"]["steps"] == 6
    verdicts = Counter(r["messages"][1]["content"] for r in read_parquet_rows(judge_rows / "judge_train.parquet"))
    assert info["counts"] == {"train_rows": sum(verdicts.values()), "yes": verdicts["Yes"], "no": verdicts["No"]}
    assert info["pairwise_after"]["template"] == "judge_pot_compact@1"
    assert info["pairwise_after"] == jd.judge_pairwise(out, judge_rows)  # the saved model is what was scored
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    import torch
    from safetensors.torch import load_file

    trained, init = load_file(out / "model.safetensors"), load_file(tiny_dir / "teacher" / "model.safetensors")
    assert any(not torch.equal(trained[k], init[k]) for k in init)
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "skipped" in again.stdout and "held-out pairwise accuracy" in again.stdout
