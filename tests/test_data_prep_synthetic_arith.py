"""Synthetic arithmetic word problems: templates, determinism, disjoint splits, gold programs in the sandbox."""

from __future__ import annotations

import json
import keyword
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from data_prep import synthetic_arith as sa
from verl_distill.io import read_parquet_rows

RL_COLUMNS = {"data_source", "prompt", "ability", "reward_model", "extra_info"}


def _fields(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def test_template_inventory() -> None:
    counts = Counter(t.ops for t in sa.TEMPLATES)
    assert len(sa.TEMPLATES) >= 25 and set(counts) == {1, 2, 3} and min(counts.values()) >= 8
    assert len({t.key for t in sa.TEMPLATES}) == len(sa.TEMPLATES)
    ops_used = {op for t in sa.TEMPLATES for op in re.findall(r"[-+*/]", t.expr)}
    assert ops_used == {"+", "-", "*", "/"}


@pytest.mark.parametrize("template", sa.TEMPLATES, ids=lambda t: t.key)
def test_template_is_well_formed(template: sa.Template) -> None:
    names = [name for name, _, _ in template.numbers]
    for name, low, high in template.numbers:
        assert name.isidentifier() and not keyword.iskeyword(name) and name not in sa.FILLERS and 2 <= low < high
    assert len(template.steps) == template.ops
    slots = [f for f in _fields(template.question) if f not in sa.FILLERS]
    assert slots == names, "numbers must be listed in the order the question mentions them"
    assert set(re.findall(r"[a-z_]\w*", template.expr)) == set(names)
    step_fields = {f for step in template.steps for f in _fields(step)}
    assert step_fields <= sa.FILLERS | set(names) | {f"s{i + 1}" for i in range(template.ops)}
    assert f"s{template.ops}" in step_fields


def test_generate_is_reproducible_and_seeded() -> None:
    assert sa.generate(200, seed=7) == sa.generate(200, seed=7)
    assert sa.generate(200, seed=7) != sa.generate(200, seed=8)
    assert sa.generate(0, seed=1) == []


def test_problems_are_valid() -> None:
    problems = sa.generate(2000, seed=3)
    assert {p.template for p in problems} == {t.key for t in sa.TEMPLATES}
    assert len({p.question for p in problems}) == len(problems)
    for p in problems:
        assert isinstance(p.answer, int) and 0 < p.answer <= sa.MAX_ANSWER
        assert p.body.endswith("    result = " + next(t.expr for t in sa.TEMPLATES if t.key == p.template)
                               + "\n    return result\n")
        assert p.solution_nl.endswith(f"\n#### {p.answer}") and len(p.solution_nl.splitlines()) == p.ops + 1
        assert len(re.findall(r"\w+|[^\w\s]", p.body)) <= 45, "bodies must stay short for tiny models"
        for line in p.body.splitlines()[:-2]:
            assert re.search(rf"\b{line.split(' = ')[1]}\b", p.question), "every assigned number is in the question"
        assert '"""' not in p.question and "{" not in p.question and "  " not in p.question


@pytest.mark.parametrize(
    ("expr", "values", "steps"),
    [("a + b", {"a": 2, "b": 3}, [5]), ("(a - b) / c", {"a": 9, "b": 3, "c": 4}, [6, 1.5]),
     ("a * b - c * d", {"a": 2, "b": 3, "c": 1, "d": 4}, [6, 4, 2])],
)
def test_evaluate_order(expr: str, values: dict, steps: list) -> None:
    assert sa.evaluate(expr, values) == steps


def test_evaluate_refuses_other_syntax() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        sa.evaluate("a ** b", {"a": 2, "b": 3})


def test_ops_filter_and_parsing() -> None:
    assert {p.ops for p in sa.generate(300, seed=0, ops=(1,))} == {1}
    assert {p.ops for p in sa.generate(300, seed=0, ops=sa.parse_ops("2-3"))} == {2, 3}
    assert sa.parse_ops("1,3") == (1, 3)
    with pytest.raises(ValueError, match="no template"):
        sa.generate(5, seed=0, ops=(4,))
    assert sa.parse_splits("train=10,test=2") == {"train": 10, "test": 2}


def test_splits_are_disjoint_and_eval_splits_do_not_depend_on_train_size() -> None:
    small = sa.generate_splits({"train": 200, "validation": 100, "test": 100}, seed=0)
    big = sa.generate_splits({"train": 3000, "validation": 100, "test": 100}, seed=0)
    questions = {name: {p.question for p in ps} for name, ps in big.items()}
    assert all(len(q) == n for q, n in zip(questions.values(), (3000, 100, 100), strict=True))
    assert not (questions["train"] & questions["validation"] or questions["train"] & questions["test"]
                or questions["validation"] & questions["test"])
    assert small["test"] == big["test"] and small["validation"] == big["validation"]
    assert list(big) == ["train", "validation", "test"]


def test_every_gold_program_reproduces_in_the_sandbox() -> None:
    problems = sa.generate(600, seed=11)
    assert {p.template for p in problems} == {t.key for t in sa.TEMPLATES}
    assert sa.verify(problems, workers=None, timeout_s=5.0, memory_mb=512) == []


def test_to_row_pot_and_nl() -> None:
    problem = sa.generate(1, seed=5)[0]
    pot = sa.to_row(problem, index=0, split="train")
    assert pot.rl["data_source"] == "synthetic_arith" and pot.rl["reward_model"]["ground_truth"] == str(problem.answer)
    assert pot.rl["prompt"][0]["content"] + pot.sft["messages"][1]["content"] == sa.program(problem)
    assert pot.rl["extra_info"]["source_id"] == f"{problem.template}/train-0"
    nl = sa.to_row(problem, index=0, split="train", fmt="nl")
    assert nl.rl["extra_info"]["task"] == "nl" and nl.sft["messages"][1]["content"] == problem.solution_nl
    unlabeled = sa.to_row(problem, index=0, split="train", unlabeled=True)
    assert unlabeled.sft is None and unlabeled.rl["reward_model"]["ground_truth"] == ""


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--output-dir", str(tmp_path), "--splits", "train=120,validation=30,test=30", "--seed", "4", "--verify"]
    assert sa.main(args) == 0
    assert capsys.readouterr().out.strip() == (
        "[synthetic_arith] read 180, wrote train.parquet=120, train_sft.parquet=120, validation.parquet=30, "
        "validation_sft.parquet=30, test.parquet=30, test_sft.parquet=30, skipped 0 (none); seed=4; ops=1,2,3")
    rl = read_parquet_rows(tmp_path / "train.parquet")
    sft = read_parquet_rows(tmp_path / "validation_sft.parquet")
    assert set(rl[0]) == RL_COLUMNS and set(sft[0]) == {"messages", "extra_info"}
    assert {r["extra_info"]["split"] for r in sft} == {"validation"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == "4" and manifest["verified"] is True and manifest["templates"] == ["pot_docstring@1"]
    assert manifest["splits"] == {"train": 120, "validation": 30, "test": 30}
    assert sa.main(args[:-1]) == 0 and read_parquet_rows(tmp_path / "train.parquet") == rl  # same seed, same rows


def test_cli_unlabeled_nl(tmp_path: Path) -> None:
    args = ["--output-dir", str(tmp_path), "--splits", "train=20", "--unlabeled", "--format", "nl", "--ops", "1"]
    assert sa.main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train.parquet"]
    rows = read_parquet_rows(tmp_path / "train.parquet")
    assert {r["extra_info"]["label_source"] for r in rows} == {"none"} and {r["extra_info"]["task"] for r in rows} == {
        "nl"}
