"""Seed 000's stages through real files, the sandbox executor and REAL vLLM servers on 127.0.0.1.

The "student" is the tiny student fitted to the 16 synthetic test programs (``fitted_student``): on those questions
it writes real programs, mostly right at temperature 0 and mixed at temperature 1, which is what voting, D_S and D_R
need. The "teacher" (``fitted_teacher``) is fitted the same way to the programs with ``result`` renamed ``answer``,
so its correct programs differ from the student's word for word. Gold labels are used only to check the report.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from verl_distill.cli import main
from verl_distill.client import ServedModelError
from verl_distill.io import read_parquet_rows
from verl_distill.sample_stage import Schedule, read_samples, register_schedule, sample_rows
from verl_distill.voting import majority_vote, response_answers

REPO = Path(__file__).resolve().parents[1]
TEACHER = register_schedule(Schedule("test_teacher", 1, (0.0, 0.3), (0.7, 1.0), 3, 48))
STUDENT = register_schedule(Schedule("test_student", 1, (), (1.0,), 6, 48))


@pytest.fixture(scope="module")
def rows(small_data: Path) -> Path:
    return small_data / "synthetic" / "test.parquet"


@pytest.fixture(scope="module")
def served(fitted_student: Path, vllm_server) -> Any:
    return vllm_server(fitted_student)


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory, rows: Path, served: Any, fitted_student: Path,
           fitted_teacher: Path, vllm_server) -> dict:
    """sample (teacher) -> vote -> sample (student, on the labelled rows) -> make-rm-data, all through the CLI."""
    out = tmp_path_factory.mktemp("distill")
    teacher = ["--base-url", vllm_server(fitted_teacher).base_url, "--tokenizer", str(fitted_teacher)]
    student = ["--base-url", served.base_url, "--tokenizer", str(fitted_student)]
    assert main(["sample", "--rows", str(rows), "--out", str(out / "teacher"), "--schedule", TEACHER.key,
                 *teacher]) == 0
    assert main(["vote", "--rows", str(rows), "--samples", str(out / "teacher"), "--out", str(out / "vote")]) == 0
    assert main(["sample", "--rows", str(out / "vote" / "rl_labeled.parquet"), "--out", str(out / "student"),
                 "--schedule", STUDENT.key, *student]) == 0
    assert main(["make-rm-data", "--vote", str(out / "vote"), "--student-samples", str(out / "student"),
                 "--out", str(out / "rm"), "--val-fraction", "0.3"]) == 0
    return {"out": out}


def test_sampling_follows_the_schedule(stages: dict) -> None:
    records = read_samples(stages["out"] / "teacher" / "samples.jsonl")
    assert len(records) == 16 * 4 and all(len(r["responses"]) == 3 for r in records)
    assert {(r["temperature"], r["confidence"]) for r in records} == {(0.0, "high"), (0.3, "high"), (0.7, "low"),
                                                                      (1.0, "low")}
    assert len({(r["row"], r["temperature"]) for r in records}) == 64
    manifest = json.loads((stages["out"] / "teacher" / "manifest.json").read_text())
    assert (manifest["samples"], manifest["schedule"]) == (192, "test_teacher@1")


def test_vote_outputs_are_consistent(stages: dict, rows: Path) -> None:
    vote_dir = stages["out"] / "vote"
    votes = read_parquet_rows(vote_dir / "votes.parquet")
    samples = read_parquet_rows(vote_dir / "teacher_samples.parquet")
    assert len(votes) == 16 and len(samples) == 16 * 12
    for v in votes:  # recompute every vote from the stored answers
        high = [s["answer"] or None for s in samples if s["row"] == v["row"] and s["confidence"] == "high"]
        assert majority_vote(high, threshold=0.7).label == (v["label"] or None)
    labeled = {v["index"]: v["label"] for v in votes if v["label"]}
    assert labeled, "no query got a pseudo-label"
    rl = read_parquet_rows(vote_dir / "rl_labeled.parquet")
    assert {r["extra_info"]["index"]: r["reward_model"]["ground_truth"] for r in rl} == labeled
    assert all(r["extra_info"]["label_source"] == "teacher_vote" and r["extra_info"]["reference"] == "" for r in rl)
    fail = read_parquet_rows(vote_dir / "fail.parquet") if (vote_dir / "fail.parquet").exists() else []
    assert len(rl) + len(fail) == 16 and all(r["reward_model"]["ground_truth"] == "" for r in fail)
    sft = read_parquet_rows(vote_dir / "sft.parquet")
    answers = response_answers([r["messages"][-1]["content"] for r in sft], "pot")
    assert answers == [labeled[r["extra_info"]["index"]] for r in sft]  # D_sft: exactly the agreeing responses
    assert len(sft) == sum(s["positive"] for s in samples)
    report = json.loads((vote_dir / "report.json").read_text())
    gold = {r["extra_info"]["index"]: r["reward_model"]["ground_truth"] for r in read_parquet_rows(rows)}
    right = sum(float(lab) == float(gold[i]) for i, lab in labeled.items())
    assert report["label_accuracy"] == pytest.approx(right / len(labeled))
    assert report["fail"] == len(fail) and (vote_dir / "pseudo_labels.png").stat().st_size > 1000


def test_rm_data_triples(stages: dict) -> None:
    rm = stages["out"] / "rm"
    labels = {r["extra_info"]["index"]: r["reward_model"]["ground_truth"]
              for r in read_parquet_rows(stages["out"] / "vote" / "rl_labeled.parquet")}
    triples = read_parquet_rows(rm / "rm_train.parquet") + read_parquet_rows(rm / "rm_validation.parquet")
    counts = json.loads((rm / "counts.json").read_text())
    assert triples, f"the fitted student gave no D_R triple: {counts}"
    assert counts["triples"] == len(triples)
    sft = {r["messages"][-1]["content"] for r in read_parquet_rows(stages["out"] / "vote" / "sft.parquet")}
    pos = response_answers([t["pos"] for t in triples], "pot")
    neg = response_answers([t["neg"] for t in triples], "pot")
    for t, p, n in zip(triples, pos, neg, strict=True):
        assert p == labels[t["index"]] and n != labels[t["index"]]
        assert len(t["teacher"]) == 1 and t["teacher"][0] in sft
    train_q = {t["index"] for t in read_parquet_rows(rm / "rm_train.parquet")}
    val_q = {t["index"] for t in read_parquet_rows(rm / "rm_validation.parquet")}
    assert not train_q & val_q
    rl = read_parquet_rows(rm / "rl_train.parquet")
    assert len(rl) == counts["d_r_queries"] + counts["d_fail"] == counts["rl_queries"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sample_resumes_without_loss_or_duplicates(rows: Path, served: Any, fitted_student: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "s"
    kw = {"schedule": TEACHER.key, "base_url": served.base_url, "tokenizer": str(fitted_student), "limit": 4}
    sample_rows(rows, out, **kw)
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 16
    (out / "manifest.json").unlink()  # as if killed: 5 groups written, a sixth torn mid-line
    (out / "samples.jsonl").write_text("".join(lines[:5]) + lines[5][:40])
    info = sample_rows(rows, out, **kw)
    again = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    assert again[:5] == lines[:5] and len(again) == 16 == info["groups"]
    assert len({(json.loads(x)["row"], json.loads(x)["temperature"]) for x in again}) == 16
    with pytest.raises(SystemExit, match="schedule"):
        sample_rows(rows, out, **(kw | {"schedule": STUDENT.key}))
    (out / "manifest.json").unlink()  # the same model behind another URL (a restarted server) resumes
    assert sample_rows(rows, out, **(kw | {"base_url": served.base_url + "/"}))["groups"] == 16


def test_sample_offline_engine_matches_the_server(rows: Path, served: Any, fitted_student: Path,
                                                 tmp_path: Path) -> None:
    """--offline-model: vLLM's in-process engine, run by the vLLM venv's interpreter (where vLLM lives on CPU).
    Greedy samples equal the served model's, and greedy n > 1 is split into single requests as on a server."""
    from verl_distill.serving import find_vllm_python, server_env

    python = find_vllm_python()
    env = {**server_env(None, cpu=True, python=python), "PYTHONPATH": str(REPO)}
    args = ["--rows", str(rows), "--schedule", "seed000_cpu@2", "--n", "2", "--max-tokens", "48", "--limit", "3"]
    proc = subprocess.run([python, "-m", "verl_distill.sample_stage", *args, "--out", str(tmp_path / "offline"),
                           "--offline-model", str(fitted_student)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert main(["sample", *args, "--out", str(tmp_path / "served"), "--base-url", served.base_url,
                 "--tokenizer", str(fitted_student)]) == 0
    offline, online = (read_samples(tmp_path / d / "samples.jsonl") for d in ("offline", "served"))
    assert len(offline) == 3 * 8 and all(len(r["responses"]) == 2 for r in offline)
    greedy = {r["row"]: r["responses"] for r in online if r["temperature"] == 0.0}
    assert {r["row"]: r["responses"] for r in offline if r["temperature"] == 0.0} == greedy
    assert any(text.strip() for texts in greedy.values() for text in texts)


def test_sample_dead_endpoint_is_a_clear_error(rows: Path, fitted_student: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ServedModelError, match="127.0.0.1"):
        sample_rows(rows, tmp_path / "dead", schedule=TEACHER.key, base_url=url, tokenizer=str(fitted_student),
                    limit=2)
    assert not read_samples(tmp_path / "dead" / "samples.jsonl")  # no empty samples were written


def test_train_rm_exports_a_served_reward_model(stages: dict, tiny_dir: Path, vllm_server, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from verl.utils.import_utils import load_extern_object

    from verl_distill.client import run_sync
    from verl_distill.train_rm import rm_input_ids

    out = tmp_path / "rm"
    args = ["train-rm", "--data", str(stages["out"] / "rm"), "--init", str(tiny_dir / "student"), "--out", str(out),
            "--epochs", "3", "--batch-size", "4", "--eval-steps", "4", "--lr", "1e-3"]
    assert main(args) == 0
    info = json.loads((out / "rm.json").read_text())
    assert info["steps"] > 0 and info["validation"]["triples"] > 0
    assert 0 <= info["validation"]["pos_neg"] <= 1 and 0 <= info["validation"]["pos_pos"] <= 1
    model = AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32).eval()
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    assert model.score.bias is None  # no head bias: vLLM's pooler would drop it
    tok = AutoTokenizer.from_pretrained(out)
    triples = read_parquet_rows(stages["out"] / "rm" / "rm_validation.parquet")
    srv = vllm_server(out, runner="pooling")
    fn = load_extern_object(str(REPO / "reward_fns" / "rm_pseudo_label.py"), "compute_score")
    assert fn.__name__ == "compute_score"
    labels = {r["extra_info"]["index"]: r["reward_model"]["ground_truth"]
              for r in read_parquet_rows(stages["out"] / "vote" / "rl_labeled.parquet")}
    compared = 0
    for t in triples[:4]:
        for response, matches in ((t["pos"], True), (t["neg"], False)):
            ids = rm_input_ids(tok, t["question"], response)
            with torch.no_grad():
                r = model(torch.tensor([ids])).logits[0, 0].item()
            extra = {"question": t["question"], "task": "pot", "label_source": "teacher_vote"}
            got = run_sync(fn("synthetic_arith", response, labels[t["index"]], extra, rm_url=srv.base_url,
                              rm_tokenizer=str(out)))  # the file verl loads, awaited as verl's reward loop does
            if got["no_answer"]:
                assert got["score"] == -5.0 and got["rm_called"] == 0.0
                continue
            assert got["rm"] == pytest.approx(r, abs=1e-4)  # served score == the trainer's model
            assert got["match"] == float(matches)
            assert got["score"] == pytest.approx(r if matches else min(r, 0.0), abs=1e-4)
            compared += 1
    assert compared >= 4  # every S+ has an answer, so at least one comparison per triple
    del info["resumed"]
    (out / "rm.json").unlink()  # a rerun after the checkpoints exist resumes from the last one
    assert main(args) == 0
    again = json.loads((out / "rm.json").read_text())
    assert again["resumed"] is True and again["steps"] == info["steps"]


def test_sample_chat_mode_for_apis_without_token_ids(rows: Path, served: Any, tmp_path: Path) -> None:
    """--chat sends the messages to /v1/chat/completions (hosted APIs); greedy n > 1 goes as n requests."""
    info = sample_rows(rows, tmp_path / "chat", schedule=TEACHER.key, base_url=served.base_url, chat=True, limit=2)
    records = read_samples(tmp_path / "chat" / "samples.jsonl")
    assert info["samples"] == 2 * 4 * 3 and all(len(r["responses"]) == 3 for r in records)
    greedy = [r["responses"] for r in records if r["temperature"] == 0.0]
    assert all(len(set(g)) == 1 for g in greedy)  # three greedy samples of one prompt agree
    assert any("return" in t for r in records for t in r["responses"])  # the fitted student writes programs
