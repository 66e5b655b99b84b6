"""Seed 000 end to end: ``recipes/distill_rewards.sh`` through real vLLM servers and verl's real SFT and PPO trainers.

The recipe runs every stage on 16 synthetic questions: teacher sampling from a served teacher, the majority vote,
verl's SFT warm-up (two checkpoints, the better one chosen by validation accuracy), student sampling from the
warm-up student (the recipe serves it), D_R, the BT + BCE reward model, PPO with the served reward model clipped
by the pseudo-label, and the final greedy evaluation. The teacher and the base student are the fitted tiny models of
``derived_models.py`` (they write real programs for these questions, so the vote, D_sft and D_R are not empty). A
second run must find every stage done and redo none of them.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from verl_distill.io import read_parquet_rows
from verl_distill.plots import read_metrics

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Written once by their stage; a rerun that redid a stage would rewrite them.
STAGE_FILES = ("teacher_samples/manifest.json", "vote/manifest.json", "sft/latest_checkpointed_iteration.txt",
               "student_samples/manifest.json", "rm_data/manifest.json", "rm/rm.json", "ppo/eval_ready")


def run_pipeline(env: dict[str, str]) -> str:
    proc = subprocess.run(["bash", str(REPO / "recipes" / "distill_rewards.sh")], env=env, capture_output=True,
                          text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"distill_rewards.sh exited {proc.returncode}:\n{output[-8000:]}"
    return output


def test_distill_rewards_pipeline(vllm_server, tiny_dir: Path, small_data: Path, fitted_student: Path,
                                  fitted_teacher: Path, cpu_env: dict, tmp_path: Path) -> None:
    rows = small_data / "synthetic" / "test.parquet"
    out = tmp_path / "distill"
    env = {**cpu_env, "RUN_ROOT": str(tmp_path.parent), "TINY_DIR": str(tiny_dir), "OUT": str(out),
           "ROWS": str(rows), "VAL_ROWS": str(rows), "TEST_ROWS": str(rows),
           "TEACHER": str(fitted_teacher), "TEACHER_URL": vllm_server(fitted_teacher).base_url,
           "BASE_STUDENT": str(fitted_student), "SFT_STEPS": "4", "SFT_SAVE_FREQ": "2", "LR": "3e-4",
           "RM_EPOCHS": "2", "PPO_STEPS": "2", "PPO_BATCH": "2", "MICRO_BATCH": "2", "PPO_TEST_FREQ": "1",
           "PPO_EPOCHS": "1", "CRITIC_WARMUP": "0",
           # rollouts at the student-sampling temperature: at 1.0 this 4-step SFT student often writes no program at
           # all, and with 2 prompts per step both PPO steps could see only the -5 "no answer" reward
           "TEMPERATURE": "0.7"}
    output = run_pipeline(env)
    for stage in range(1, 8):
        assert f"== [{stage}]" in output, stage
    assert "== [0]" not in output  # TEACHER given: no teacher training

    report = json.loads((out / "vote" / "report.json").read_text())
    labelled = read_parquet_rows(out / "vote" / "rl_labeled.parquet")
    assert labelled and all(r["extra_info"]["label_source"] == "teacher_vote" for r in labelled)
    files = json.loads((out / "vote" / "manifest.json").read_text())["files"]
    assert files["rl_labeled.parquet"] == len(labelled) and len(labelled) + files["fail.parquet"] == 16
    assert report["queries"] == 16

    # best_sft: both saved SFT checkpoints evaluated on VAL_ROWS, the warm-up student is one of them
    select = json.loads((out / "sft_select.json").read_text())
    assert len(select["models"]) == 2
    warm_up = output.split("warm-up student: ", 1)[1].split("\n", 1)[0].strip()
    assert warm_up in select["models"].values()

    counts = json.loads((out / "rm_data" / "counts.json").read_text())
    assert counts["train_triples"] > 0 and counts["rl_queries"] >= 2
    rm = json.loads((out / "rm" / "rm.json").read_text())
    assert rm["steps"] > 0

    # PPO trained with the served reward model: its components were logged on every step
    metrics = read_metrics(out / "ppo" / "metrics.jsonl")
    for step in (1, 2):
        m = metrics[step]
        assert m["distill/batch/teacher_vote/prompts"] == 2  # PPO_BATCH pseudo-labelled queries per step
        for key in ("rm", "rm_called", "no_answer", "score", "match", "clipped"):
            value = m.get(f"distill/teacher_vote/{key}")
            assert value is not None and not math.isnan(value), (step, key)
        assert "critic/vf_loss" in m and "actor/pg_loss" in m  # critic and actor both trained (no warm-up)
    assert metrics[1]["distill/teacher_vote/rm_called"] + metrics[2]["distill/teacher_vote/rm_called"] > 0

    result = json.loads((out / "eval.json").read_text())
    assert list(result["models"]) == ["base", "after-SFT", "after-PPO"]
    assert (out / "ppo_curves.png").stat().st_size > 0

    # a rerun skips every finished stage and still prints the summary
    stamps = {name: (out / name).stat().st_mtime_ns for name in STAGE_FILES}
    again = run_pipeline(env)
    assert {name: (out / name).stat().st_mtime_ns for name in STAGE_FILES} == stamps
    assert "distill_rewards finished" in again
