"""``verl-distill judge-eval``: the pure parts on hand-made inputs, and one small real run on tiny models.

The real run samples from a REAL vLLM server: a tiny student fitted for a few seconds to the synthetic test questions
(an untrained one never writes a correct program, so there would be no pairs), then judged by the hand-set tiny
judge and the two-class reranker of ``test_judge_served.py`` (same models and servers when run in one session).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from test_judge_served import _requests

from verl_distill.io import read_parquet_rows
from verl_distill.judge_eval import (
    Question,
    ll_prompt,
    load_questions,
    mean_span_logprob,
    pairwise_accuracy,
    question_seed,
    roc_auc,
    select_pairs,
)

REPO = Path(__file__).resolve().parents[1]


# ---- pure parts ------------------------------------------------------------------------------------------------------

def _q(index: int, dataset: str = "d") -> Question:
    return Question(dataset, index, f"question {index}", [{"role": "user", "content": "p"}], "1", "pot", "src")


def test_select_pairs_counts_every_outcome_and_is_seeded():
    questions = [_q(0), _q(1), _q(2), _q(3, "e")]
    samples = {
        "d/0": [("a", True), ("b", False), ("c", True), ("d", False), ("e", False)],
        "d/1": [("x", True), ("y", True)],  # all correct: no pair
        "d/2": [("x", False)],  # all incorrect: no pair
        "e/3": [("ok", True), ("bad", False)],
    }
    pairs, counts = select_pairs(questions, samples, seed=3)
    assert counts == {"d": {"questions": 3, "pairs": 1, "all_correct": 1, "all_incorrect": 1, "completions": 8,
                            "correct_completions": 4},
                      "e": {"questions": 1, "pairs": 1, "all_correct": 0, "all_incorrect": 0, "completions": 2,
                            "correct_completions": 1}}
    assert [p.key for p in pairs] == ["d/0", "e/3"]
    assert pairs[0].correct in ("a", "c") and pairs[0].incorrect in ("b", "d", "e")
    p1 = pairs[1]
    assert (p1.correct, p1.incorrect, p1.question, p1.task) == ("ok", "bad", "question 3", "pot")
    assert select_pairs(questions, samples, seed=3)[0] == pairs  # same seed, same choice
    choices = {(p.correct, p.incorrect) for s in range(20) for p in select_pairs(questions, samples, seed=s)[0]
               if p.key == "d/0"}
    assert len(choices) > 1  # the seed really chooses


def test_pairwise_accuracy_counts_ties_as_wrong():
    stats = pairwise_accuracy([3.0, 1.0, 2.0, 2.0, -math.inf], [1.0, 1.0, 3.0, 0.0, -math.inf])
    assert (stats.pairs, stats.wins, stats.ties, stats.losses) == (5, 2, 2, 1) and stats.accuracy == 0.4
    assert pairwise_accuracy([], []).accuracy is None
    with pytest.raises(ValueError, match="NaN"):
        pairwise_accuracy([math.nan], [0.0])


def test_roc_auc():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    assert roc_auc([0.5, -math.inf], [0.4, 0.6]) == 0.25  # -inf ranks lowest
    assert roc_auc([], []) is None


def test_mean_span_logprob_averages_the_response_tokens_only():
    ids = [5, 6, 7, 8, 9]
    lps = [None, {"6": {"logprob": -9.0}}, {"7": {"logprob": -1.0}, "3": {"logprob": -0.1}},
           {"8": {"logprob": -3.0, "rank": 4}}, {"9": {"logprob": -100.0}}]
    assert mean_span_logprob(lps, ids, 2, 4) == -2.0  # tokens 7 and 8; the actual token's entry, not the top one
    assert mean_span_logprob(lps, ids, 3, 3) == -math.inf
    with pytest.raises(ValueError, match="first prompt token"):
        mean_span_logprob(lps, ids, 0, 2)
    with pytest.raises(ValueError, match="prompt logprobs"):
        mean_span_logprob(lps[:3], ids, 1, 2)


@pytest.fixture(scope="module")
def tok(tiny_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir / "teacher")


@pytest.mark.parametrize("response", ["    a = 3\n    return a + 4\n", "x", "    7 apples", "Is it 7?"])
def test_ll_prompt_span_is_the_assistant_response(tok, response):
    question = "Is it 7?" if response != "x" else "x x"  # the question may contain the response: must not match
    ids, start, end = ll_prompt(tok, question, response)
    assert tok.decode(ids[start:end]) == response.rstrip()
    assert tok.decode(ids[:start]).endswith(f"user\n{question}<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(ids[end:]) == "<|im_end|>\n"  # the template's end tokens are not averaged


def test_ll_prompt_empty_response(tok):
    ids, start, end = ll_prompt(tok, "q", "  \n")
    assert start == end == len(ids)


def test_load_questions_is_a_seeded_prefix_and_needs_gold(small_data: Path, tmp_path: Path):
    path = small_data / "synthetic" / "test.parquet"
    four, total = load_questions(path, "syn", 4, seed=1)
    eight, _ = load_questions(path, "syn", 8, seed=1)
    assert total == 16 and {q.key for q in four} < {q.key for q in eight}  # more questions keep the earlier ones
    assert {q.key for q in load_questions(path, "syn", 4, seed=2)[0]} != {q.key for q in four}
    assert question_seed(0, "syn/3") == question_seed(0, "syn/3") != question_seed(1, "syn/3")
    rows = read_parquet_rows(path)
    rows[5]["extra_info"]["label_source"] = "none"
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows), bad)
    with pytest.raises(ValueError, match="row 5 has label_source='none'"):
        load_questions(bad, "syn", 16, seed=1)


def test_sampling_prompts_and_seeds(tok):
    from verl_distill.sampling import render_chat_ids, request_seeds

    ids = render_chat_ids(tok, [{"role": "user", "content": "def solution():\n"}])
    assert tok.decode(ids) == "<|im_start|>user\ndef solution():\n<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="messages"):
        render_chat_ids(tok, [])
    assert request_seeds(None, 2, 4) == [None, None]
    assert request_seeds(10, 3, 4) == [10, 14, 18]  # vLLM seeds sample j of a request seed + j: no overlap
    assert request_seeds([7, 9], 2, 4) == [7, 9]
    with pytest.raises(ValueError, match="2 seeds for 3 prompts"):
        request_seeds([7, 9], 3, 4)


class _Sampled(Exception):
    pass


def test_sample_cache_reuses_only_matching_records(tmp_path: Path):
    from verl_distill.judge_eval import SAMPLES, sample_cached

    config = {"student": "s", "samples": 2, "temperature": 1.0, "top_p": 1.0, "max_tokens": 8, "seed": 0,
              "sample_seeds": False, "student_model": None}
    qs = [_q(0), _q(1), _q(2)]
    lines = [json.dumps({"key": "d/0", "question": "question 0", "config": config, "completions": ["a", "b"]}),
             json.dumps({"key": "d/1", "question": "question 1", "config": {**config, "samples": 3},
                         "completions": ["x", "y", "z"]}),  # other settings: not reused
             json.dumps({"key": "d/2", "question": "question 2", "config": config, "completions": ["c", "d"]})]
    (tmp_path / SAMPLES).write_text("\n".join(lines) + "\n")

    def student() -> str:
        raise _Sampled

    done, reused = sample_cached([qs[0], qs[2]], tmp_path, config, student, tokenizer=None)
    assert reused == 2 and done == {"d/0": ["a", "b"], "d/2": ["c", "d"]}  # the student is never reached
    with pytest.raises(_Sampled):  # d/1 has other settings, so it must be sampled
        sample_cached(qs, tmp_path, config, student, tokenizer=None)
    with pytest.raises(_Sampled):  # a changed question text is not served from the cache
        sample_cached([Question("d", 0, "other text", [], "1", "pot", "src")], tmp_path, config, student, None)
    (tmp_path / SAMPLES).write_text(lines[0] + "\n" + lines[2][:30])  # a run killed while appending
    assert sample_cached([qs[0]], tmp_path, config, student, tokenizer=None) == ({"d/0": ["a", "b"]}, 1)


# ---- one small real run ---------------------------------------------------------------------------------------------

def test_judge_eval_cli_real_run(small_data: Path, vllm_server, tmp_path: Path, capsys, fitted_student: Path,
                                  tiny_judge: Path, tiny_reranker: Path):
    import asyncio

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reward_fns.pot_verifiable import compute_score_batch
    from verl_distill.cli import main

    data = small_data / "synthetic" / "test.parquet"
    student = fitted_student
    judge, reranker = tiny_judge, tiny_reranker
    s_srv, j_srv, r_srv = vllm_server(student), vllm_server(judge), vllm_server(reranker, runner="pooling")
    out = tmp_path / "je"
    args = ["judge-eval", "--data", f"synthetic={data}", "--out-dir", str(out), "--seed", "0",
            "--student-url", s_srv.base_url, "--student-tokenizer", str(student),
            "--judge-url", j_srv.base_url, "--judge-tokenizer", str(judge),
            "--reranker-url", r_srv.base_url, "--reranker-tokenizer", str(reranker),
            "--samples", "8", "--max-tokens", "48", "--judge-temperature", "2"]
    assert main(args + ["--questions", "8"]) == 0
    printed = capsys.readouterr().out
    for word in ("pairwise acc (%)", "ROC AUC", "YoN", "LL", "Reranker", "synthetic", "all"):
        assert word in printed

    result = json.loads((out / "judge_eval.json").read_text())
    assert (out / "judge_eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "manifest.json").read_text())["stage"] == "judge-eval"
    assert len((out / "samples.jsonl").read_text().splitlines()) == 8
    s = result["datasets"]["synthetic"]
    assert s["questions"] == 8 == s["pairs"] + s["all_correct"] + s["all_incorrect"] and s["completions"] == 64
    assert s["pairs"] >= 2, f"the fitted student gave too few mixed questions for a meaningful run: {s}"
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == s["pairs"] and result["methods"] == ["YoN", "LL", "Reranker"]
    for method, stats in s["methods"].items():  # the table is what the saved scores say
        # pairs.jsonl writes -inf (LL of an empty completion) as null: read it back as -inf
        cs, ins = ([-math.inf if p["scores"][method][k] is None else p["scores"][method][k] for p in pairs]
                   for k in (0, 1))
        ref = pairwise_accuracy(cs, ins)
        assert (stats["wins"], stats["ties"], stats["losses"]) == (ref.wins, ref.ties, ref.losses)
        assert stats["wins"] + stats["ties"] + stats["losses"] == s["pairs"]
        assert stats["accuracy"] == ref.accuracy and stats["auc"] == pytest.approx(roc_auc(cs, ins))
    assert result["datasets"]["all"]["methods"] == s["methods"]

    labels = compute_score_batch(["s"] * len(pairs) * 2, [t for p in pairs for t in (p["correct"], p["incorrect"])],
                                 [read_parquet_rows(data)[int(p["key"].split("/")[1])]["reward_model"]["ground_truth"]
                                  for p in pairs for _ in range(2)])
    assert [r["acc"] for r in labels] == [1.0, 0.0] * len(pairs)  # correct / incorrect by execution
    for p in pairs:
        for margin, prob in zip(p["scores"]["YoN"], p["scores"]["YoN_prob"], strict=True):
            assert prob == pytest.approx(1 / (1 + math.exp(-margin / 2)), abs=1e-9)
        assert all(-50 < v < 0 for v in p["scores"]["LL"] if v is not None)
        assert all(0 < v < 1 for v in p["scores"]["Reranker"])

    # LL equals a float32 transformers forward of the judge on the same ids, averaged over the response span
    tok = AutoTokenizer.from_pretrained(judge)
    model = AutoModelForCausalLM.from_pretrained(judge, dtype=torch.float32).eval()
    p = pairs[0]
    ids, start, end = ll_prompt(tok, p["question"], p["correct"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    want = float(sum(logp[j - 1, ids[j]] for j in range(start, end)) / (end - start))
    assert p["scores"]["LL"][0] == pytest.approx(want, abs=1e-4)

    # rerun with more questions: the 8 cached ones are reused, only the 2 new ones are sampled from the student
    before = asyncio.run(_requests(s_srv.base_url))
    assert main(args + ["--questions", "10"]) == 0
    assert asyncio.run(_requests(s_srv.base_url)) - before == 2 * 8  # vLLM counts each of the n=8 samples
    rerun = json.loads((out / "judge_eval.json").read_text())
    assert rerun["samples_reused"] == 8 and rerun["datasets"]["synthetic"]["questions"] == 10
    assert "8 of 10 questions' samples reused" in capsys.readouterr().out
