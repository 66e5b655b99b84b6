"""Judge / reranker training data (``verl_distill.judge_data``): perturbations, labels from execution, balance,
question-disjoint splits, skip accounting, the pairwise set, the Yes/No scoring, and the CLI on a tiny student."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from verl_distill import judge_data as jd
from verl_distill.io import read_parquet_rows
from verl_distill.prompts import JUDGE_POT

PROGRAM = "def solution():\n    boxes = 7\n    per_box = 12\n    loose = 5\n    result = boxes * per_box + loose\n" \
          "    return result\n"
CLI = str(Path(sys.executable).parent / "verl-distill")


def _row(question: str, gold: str, reference: str = "", index: int = 0) -> dict:
    return {"data_source": "synthetic_arith", "prompt": [{"role": "user", "content": question}],
            "reward_model": {"ground_truth": gold},
            "extra_info": {"question": question, "source_id": f"q{index}", "reference": reference}}


# ---------------------------------------------------------------- perturbations


@pytest.mark.parametrize("seed", range(12))
def test_wrong_operator_changes_exactly_one_binary_operator(seed: int) -> None:
    edited = jd.perturb_program(PROGRAM, "wrong_operator", random.Random(seed))
    before, after = PROGRAM.splitlines(), edited.splitlines()
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(diff) == 1 and diff[0][0].strip().startswith("result =")
    ops = lambda s: [c for c in s if c in "+-*/"]  # noqa: E731
    assert sum(x != y for x, y in zip(ops(diff[0][0]), ops(diff[0][1]), strict=True)) == 1


@pytest.mark.parametrize("seed", range(12))
def test_number_edits_change_one_literal(seed: int) -> None:
    for kind in ("off_by_one", "wrong_operand"):
        edited = jd.perturb_program(PROGRAM, kind, random.Random(seed))
        diff = [(a, b) for a, b in zip(PROGRAM.splitlines(), edited.splitlines(), strict=True) if a != b]
        assert len(diff) == 1, kind
        old, new = (int(s.split("=")[1]) for s in diff[0])
        if kind == "off_by_one":
            assert abs(old - new) == 1
        else:
            assert abs(old - new) > 1 and new >= 0


@pytest.mark.parametrize("program, kind", [
    ("def solution():\n    x = -3\n    return x\n", "wrong_operator"),  # unary minus is not a binary operator
    ("def solution():\n    return -x\n", "wrong_operator"),  # nor after a keyword
    ("def solution():\n    return a\n", "off_by_one"),  # no integer literal
    ("def solution():\n    x = 2.5\n    return x\n", "wrong_operand"),  # floats are not edited
    ("def solution(:\n  '''\n", "wrong_operator"),  # does not tokenize
])
def test_no_site_gives_none(program: str, kind: str) -> None:
    assert jd.perturb_program(program, kind, random.Random(0)) is None


def test_unknown_perturbation_is_an_error() -> None:
    with pytest.raises(ValueError, match="wrong_sign"):
        jd.perturb_program(PROGRAM, "wrong_sign", random.Random(0))


# ---------------------------------------------------------------- labels, dedupe, balance, split


def test_labels_come_from_execution_not_from_the_source() -> None:
    rows = [_row("q", "4")]
    body = "def solution():\n    a = 2\n    b = 2\n    result = a {} b\n    return result\n"
    cands = [jd.Candidate(0, "perturbation", "wrong_operator", "", body.format("*")),  # edited, still 4: correct
             jd.Candidate(0, "gold", "", "", body.format("-")),  # a wrong "gold": incorrect
             jd.Candidate(0, "student", "s", "", "def solution():\n    return undefined_name\n"),
             jd.Candidate(0, "student", "s", "", "four")]
    jd.label_by_execution(cands, rows)
    assert [c.correct for c in cands] == [True, False, False, False]
    assert [c.status for c in cands] == ["ok", "ok", "error", "no_program"]


def test_dedupe_counts_empty_and_repeated_solutions() -> None:
    cands = [jd.Candidate(0, "student", "s", "a", "x = 1"), jd.Candidate(0, "student", "s", "b", "x = 1"),
             jd.Candidate(1, "student", "s", "a", "x = 1"), jd.Candidate(0, "student", "s", "", " "),
             jd.Candidate(0, "perturbation", "off_by_one", "", "")]
    usable = jd.dedupe(cands)
    assert [c.qid for c in usable] == [0, 1]  # the same text under another question is another pair
    assert [c.skip for c in cands] == ["", "duplicate solution", "", "student: empty response",
                                       "no perturbation site"]


@pytest.mark.parametrize("n_pos, n_neg, per_label, kept", [(3, 5, 4, 3), (6, 6, 4, 4), (0, 4, 4, 0), (2, 0, 4, 0),
                                                           (1, 1, 4, 1)])
def test_balance_keeps_equal_yes_and_no(n_pos: int, n_neg: int, per_label: int, kept: int) -> None:
    cands = [jd.Candidate(0, "perturbation", "k", "", f"p{i}", correct=True) for i in range(n_pos)]
    cands += [jd.Candidate(0, "perturbation", "k", "", f"n{i}", correct=False) for i in range(n_neg)]
    out = jd.balance(cands, per_label=per_label, rng=random.Random(0))
    assert sum(c.correct for c in out) == sum(not c.correct for c in out) == kept
    assert all(c.kept for c in out) and all(c.skip for c in cands if not c.kept)
    reasons = Counter(c.skip for c in cands if not c.kept)
    if kept == 0:
        assert set(reasons) <= {"balance: no incorrect candidate for the question",
                                "balance: no correct candidate for the question"}
    assert sum(reasons.values()) == n_pos + n_neg - 2 * kept


def test_balance_prefers_student_samples() -> None:
    cands = [jd.Candidate(0, "perturbation", "k", "", "p", correct=False),
             jd.Candidate(0, "gold", "", "", "g", correct=True),
             jd.Candidate(0, "student", "s", "", "s1", correct=False),
             jd.Candidate(0, "student", "s", "", "s2", correct=True)]
    out = jd.balance(cands, per_label=1, rng=random.Random(0))
    assert {c.solution for c in out} == {"s1", "s2"}


def test_unequal_balance_keeps_up_to_per_label_of_each() -> None:
    cands = [jd.Candidate(0, "student", "s", f"r{i}", f"s{i}") for i in range(7)]
    for i, c in enumerate(cands):
        c.correct = i < 1  # 1 Yes, 6 No
    kept = jd.balance(cands, per_label=4, rng=random.Random(0), equal=False)
    assert sum(c.correct for c in kept) == 1 and sum(not c.correct for c in kept) == 4
    assert Counter(c.skip for c in cands if not c.kept) == {"balance: surplus": 2}
    only_no = [jd.Candidate(1, "student", "s", "r", "s")]
    only_no[0].correct = False
    assert jd.balance(only_no, per_label=4, rng=random.Random(0), equal=False) == only_no


def test_oversample_repeats_the_minority_label_evenly() -> None:
    part = [jd.Candidate(q, "student", "s", f"r{q}", f"s{q}") for q in range(11)]
    for c in part:
        c.correct = c.qid < 3  # 3 Yes, 8 No
    out = jd.oversample(part, random.Random(0))
    assert out[:11] == part and sum(c.correct for c in out) == sum(not c.correct for c in out) == 8
    repeats = Counter(c.qid for c in out if c.correct)
    assert sorted(repeats.values()) == [2, 3, 3]  # each positive once per round: 3 + 3 + 2
    assert jd.oversample([c for c in part if not c.correct], random.Random(0)) == part[3:]
    with pytest.raises(ValueError, match="balance='both'"):
        jd.JudgeDataConfig(balance="both")


def test_split_is_disjoint_deterministic_and_sized() -> None:
    split = jd.split_questions(list(range(50)), val_fraction=0.2, seed=3)
    assert Counter(split.values()) == {"train": 40, "validation": 10}
    assert split == jd.split_questions(list(range(50)), val_fraction=0.2, seed=3)
    assert split != jd.split_questions(list(range(50)), val_fraction=0.2, seed=4)
    assert Counter(jd.split_questions([0, 1], val_fraction=0.01, seed=0).values()) == {"train": 1, "validation": 1}
    with pytest.raises(ValueError, match="val_fraction"):
        jd.split_questions([0], val_fraction=1.0, seed=0)


def test_pairwise_uses_only_student_completions_of_validation_questions() -> None:
    rows = [_row(f"q{i}", "1", index=i) for i in range(4)]
    cands = [jd.Candidate(0, "student", "s", "r+", "good0", correct=True),
             jd.Candidate(0, "student", "s", "r-", "bad0", correct=False),
             jd.Candidate(1, "student", "s", "r+", "good1", correct=True),
             jd.Candidate(1, "gold", "", "", "gold1", correct=True),
             jd.Candidate(1, "perturbation", "k", "", "pert1", correct=False),  # not a student completion
             jd.Candidate(2, "student", "s", "r-", "bad2", correct=False),
             jd.Candidate(3, "student", "s", "r+", "good3", correct=True),
             jd.Candidate(3, "student", "s", "r-", "bad3", correct=False)]
    pairs, missing = jd.pairwise_pairs(cands, rows, [0, 1, 2], seed=0)
    assert [(p["qid"], p["correct_solution"], p["incorrect_solution"]) for p in pairs] == [(0, "good0", "bad0")]
    assert pairs[0]["correct_response"] == "r+" and pairs[0]["question"] == "q0"
    assert missing == {"pair: no incorrect student completion": 1, "pair: no correct student completion": 1}


def test_input_rows_must_be_gold_labelled_pot(small_data: Path, tmp_path: Path) -> None:
    rows = read_parquet_rows(small_data / "gsm8k_test" / "test.parquet")
    path = tmp_path / "rows.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows[1]["extra_info"]["label_source"] = "none"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(ValueError, match="row 1: label_source='none'"):
        jd.load_labeled_rows(path)


# ---------------------------------------------------------------- building the files (no student: fast)


@pytest.fixture(scope="module")
def gold_only(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("judge_gold")
    cfg = jd.JudgeDataConfig(perturbations=3, per_label=2, val_fraction=0.25, limit=24)
    info = jd.build_judge_data(small_data / "synthetic" / "train.parquet", [], out, cfg)
    return out, info


def test_build_without_students_balances_and_splits(gold_only: tuple[Path, dict]) -> None:
    out, info = gold_only
    assert (out / "manifest.json").exists()
    train, val = (read_parquet_rows(out / f"judge_{s}.parquet") for s in ("train", "validation"))
    questions = {s: {r["extra_info"]["question"] for r in rows} for s, rows in (("train", train), ("val", val))}
    assert questions["train"] and questions["val"] and not questions["train"] & questions["val"]
    assert info["questions"] == {"train": 18, "validation": 6}
    for rows in (train, val):  # balanced per question
        per_q = Counter((r["extra_info"]["question"], r["messages"][1]["content"]) for r in rows)
        for (q, verdict), n in per_q.items():
            assert per_q[(q, "No" if verdict == "Yes" else "Yes")] == n
    assert all(r["extra_info"]["template"] == JUDGE_POT.key for r in train)
    assert train[0]["messages"][0]["content"].startswith("You are grading")


def test_every_candidate_is_kept_or_counted(gold_only: tuple[Path, dict]) -> None:
    out, info = gold_only
    cands = read_parquet_rows(out / "candidates.parquet")
    kept = [c for c in cands if c["kept"]]
    assert all(bool(c["skip"]) != c["kept"] for c in cands)
    reasons = Counter(c["skip"] for c in cands if c["skip"])
    assert info["skipped"] == dict(reasons)
    n_kept = sum(v for split in info["kept"].values() for src in split.values() for v in src.values())
    assert n_kept == len(kept) == info["files"]["judge_train.parquet"] + info["files"]["judge_validation.parquet"]
    # no student: every validation question is counted as lacking a pair
    assert info["questions_without"] == {"pair: no correct student completion": info["questions"]["validation"]}


def test_written_labels_match_execution(gold_only: tuple[Path, dict], small_data: Path) -> None:
    out, _ = gold_only
    rows = jd.load_labeled_rows(small_data / "synthetic" / "train.parquet", limit=24)
    by_question = {r["extra_info"]["question"]: r for r in rows}
    reranker = read_parquet_rows(out / "reranker_train.parquet")
    cands = [jd.Candidate(r["qid"], r["source"], r["detail"], r["response"], r["solution"]) for r in reranker]
    jd.label_by_execution(cands, rows)
    assert [int(c.correct) for c in cands] == [r["label"] for r in reranker]
    assert {r["source"] for r in reranker if r["label"] == 0} == {"perturbation"}
    judge = read_parquet_rows(out / "judge_train.parquet")
    assert Counter(r["messages"][1]["content"] for r in judge) == Counter(
        jd.VERDICTS[bool(r["label"])] for r in reranker)
    assert all(r["question"] in by_question for r in reranker)


# ---------------------------------------------------------------- the judge's scores


def test_judge_scores_match_an_unbatched_forward(tiny_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    qs, sols = ["How many apples? 3 + 4", "What is 2 * 5?"], [PROGRAM.rstrip(), "def solution():\n    return 10"]
    batched = jd.judge_scores(tiny_dir / "teacher", qs, sols, batch_size=2)
    tok = AutoTokenizer.from_pretrained(tiny_dir / "teacher")
    model = AutoModelForCausalLM.from_pretrained(tiny_dir / "teacher", dtype=torch.float32).eval()
    yes, no = tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("No")
    for q, s, score in zip(qs, sols, batched, strict=True):
        ids = tok.apply_chat_template(jd.judge_messages(q, s), add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)["input_ids"]
        logits = model(ids).logits[0, -1].double()
        assert score == pytest.approx(torch.sigmoid(logits[yes] - logits[no]).item(), abs=1e-5)
    assert 0 < batched[0] < 1 and batched[0] != batched[1]


def test_pairwise_accuracy_ties_count_as_wrong() -> None:
    assert jd.pairwise_accuracy([0.9, 0.5, 0.2], [0.1, 0.5, 0.3]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        jd.pairwise_accuracy([], [])


def test_verdicts_must_be_single_tokens(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir / "teacher")
    yes, no = jd.yes_no_ids(tok)
    assert tok.decode([yes]) == "Yes" and tok.decode([no]) == "No"

    class Splitting:
        def encode(self, word: str, add_special_tokens: bool = False) -> list[int]:
            return [1, 2]

    with pytest.raises(ValueError, match="splits 'Yes' into 2 tokens"):
        jd.yes_no_ids(Splitting())


# ---------------------------------------------------------------- the CLI end to end on a tiny student


def test_cli_end_to_end_on_a_tiny_student(tiny_dir: Path, small_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "jd"
    args = [CLI, "make-judge-data", "--data", str(small_data / "synthetic" / "train.parquet"),
            "--student", str(tiny_dir / "student"), "--out", str(out), "--limit", "6", "--k", "3",
            "--max-new-tokens", "16", "--val-fraction", "0.34"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "candidates Yes/No" in proc.stdout and "candidates skipped:" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["students"] == [str(tiny_dir / "student")] and manifest["read"] == 6
    cands = read_parquet_rows(out / "candidates.parquet")
    student = [c for c in cands if c["source"] == "student"]
    assert len(student) == 6 * 3
    # the untrained student writes no correct program: its samples are No rows, labelled by execution
    assert all(c["correct"] in (False, None) for c in student)
    assert manifest["kept"]["train"]["student"]["No"] > 0
    # a second run skips (manifest present)
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "skipped" in again.stdout and "complete" in again.stdout
    # judge-pairwise on a pairwise set (hand-made here: the untrained student has no correct completion)
    jd.write_table([{"question": "What is 7 * 12 + 5?", "correct_solution": PROGRAM.rstrip(),
                     "incorrect_solution": PROGRAM.rstrip().replace("+", "-")}], out / "pairwise_validation.parquet")
    result_path = tmp_path / "pairwise.json"
    proc = subprocess.run([CLI, "judge-pairwise", str(tiny_dir / "teacher"), "--data", str(out), "--out",
                           str(result_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["n"] == 1 and result["pairwise_accuracy"] in (0.0, 1.0)
    assert "pairwise accuracy" in proc.stdout
    assert result["template"] == JUDGE_POT.key
    # a rerun with other settings refuses (stale data would be used silently) and names what changed
    changed = subprocess.run([*args, "--judge-template", "judge_pot_compact@1"], capture_output=True, text=True,
                             timeout=600)
    assert changed.returncode != 0 and "judge_template" in changed.stderr and "--force" in changed.stderr


def test_oversampled_build_writes_equal_labels_and_counts_repeats(small_data: Path, tmp_path: Path) -> None:
    cfg = jd.JudgeDataConfig(perturbations=3, per_label=3, val_fraction=0.25, limit=12, balance="oversample")
    info = jd.build_judge_data(small_data / "synthetic" / "train.parquet", [], tmp_path, cfg)
    train = read_parquet_rows(tmp_path / "judge_train.parquet")
    verdicts = Counter(r["messages"][1]["content"] for r in train)
    assert verdicts["Yes"] == verdicts["No"] > 0
    kept_train = sum(v for src in info["kept"]["train"].values() for v in src.values())
    assert len(train) == kept_train + info["oversampled_train_rows"] and info["oversampled_train_rows"] > 0
    assert len(read_parquet_rows(tmp_path / "reranker_train.parquet")) == len(train)
    val = read_parquet_rows(tmp_path / "judge_validation.parquet")  # never oversampled
    assert len(val) == sum(v for src in info["kept"]["validation"].values() for v in src.values())


def test_compact_template_reaches_rows_manifest_and_pairwise_scores(small_data: Path, tiny_dir: Path,
                                                                     tmp_path: Path) -> None:
    cfg = jd.JudgeDataConfig(perturbations=2, per_label=1, val_fraction=0.25, limit=8,
                             judge_template="judge_pot_compact@1")
    info = jd.build_judge_data(small_data / "synthetic" / "train.parquet", [], tmp_path, cfg)
    assert info["templates"]["judge"] == "judge_pot_compact@1"
    rows = read_parquet_rows(tmp_path / "judge_train.parquet")
    assert all(r["extra_info"]["template"] == "judge_pot_compact@1" for r in rows)
    assert rows[0]["messages"][0]["content"].startswith("Question: ") and "Correct? Yes or No." in \
        rows[0]["messages"][0]["content"]
    # judge-pairwise scores with the template in the data's manifest, not judge_pot@1
    q, good, bad = "What is 7 * 12 + 5?", PROGRAM.rstrip(), PROGRAM.rstrip().replace("+", "-")
    jd.write_table([{"question": q, "correct_solution": good, "incorrect_solution": bad}],
                   tmp_path / "pairwise_validation.parquet")
    result = jd.judge_pairwise(tiny_dir / "teacher", tmp_path)
    compact = jd.judge_scores(tiny_dir / "teacher", [q, q], [good, bad], template="judge_pot_compact@1")
    default = jd.judge_scores(tiny_dir / "teacher", [q, q], [good, bad])
    assert result["template"] == "judge_pot_compact@1"
    assert result["mean_correct"] == pytest.approx(compact[0]) and result["mean_incorrect"] == pytest.approx(compact[1])
    assert default[0] != pytest.approx(compact[0])
    with pytest.raises(KeyError, match="unknown prompt template"):
        jd.JudgeDataConfig(judge_template="judge_pot@9")
