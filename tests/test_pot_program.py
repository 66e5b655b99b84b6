"""``verl_distill.pot.program``: response text -> runnable ``def solution():`` source (pure; no execution here)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from verl_distill.pot.program import count_code_lines, extract_program, strip_fences
from verl_distill.prompts import pot_prompt

SVAMP = Path("/work/shared/data/reft_mwp/svamp_python_sdp.json")

BODY = "def solution():\n    apples = 12\n    eaten = 5\n    result = apples - eaten\n    return result\n"

# (response, expected source) - shapes seen from models and in ReFT's data
CASES = [
    # the prompt's continuation: an indented body
    ("    apples = 12\n    eaten = 5\n    result = apples - eaten\n    return result", BODY),
    # the same body whose first line lost its indentation (a .strip() somewhere)
    ("apples = 12\n    eaten = 5\n    result = apples - eaten\n    return result", BODY),
    # an unindented body followed by prose
    ("apples = 12\neaten = 5\nresult = apples - eaten\nreturn result\n\nThe answer is 7.", BODY),
    # an indented body followed by column-0 prose (with an apostrophe the tokenizer dislikes)
    ("    apples = 12\n    eaten = 5\n    result = apples - eaten\n    return result\nThat's 7 apples.", BODY),
    # dead code after the body-level return is dropped
    ("    apples = 12\n    eaten = 5\n    result = apples - eaten\n    return result\n    print(result)", BODY),
    # a fenced body
    ("```python\n    apples = 12\n    eaten = 5\n    result = apples - eaten\n    return result\n```", BODY),
    # a full function in a fence, with prose around it and a call after it
    (f"Here you go:\n```python\n{BODY}\nprint(solution())\n```\nSo 7.", BODY),
    # a full function with trailing junk and no fence
    (BODY + "# The answer is 7\nprint(solution())", BODY),
    # tabs
    ("\tapples = 12\n\teaten = 5\n\tresult = apples - eaten\n\treturn result", BODY),
]


@pytest.mark.parametrize(("response", "expected"), CASES)
def test_extract_table(response: str, expected: str) -> None:
    program = extract_program(response)
    assert program is not None
    assert program.source == expected


@pytest.mark.parametrize("response", [None, "", "   \n\t\n", "The answer is 12.", "I think it is 5 apples (maybe)."])
def test_no_program(response: str | None) -> None:
    assert extract_program(response) is None


def test_gold_svamp_programs_are_kept_verbatim() -> None:
    rows = json.loads(SVAMP.read_text())
    for row in rows:
        program = extract_program(row["answer_cot"])
        assert program is not None and program.mode == "function"
        assert program.source.strip() == row["answer_cot"].strip(), row["item_id"]


def test_prompt_plus_body_roundtrip() -> None:
    prompt, _ = pot_prompt("Tom has 12 apples and eats 5. How many are left?")
    program = extract_program(prompt + "    apples = 12\n    return apples - 5\n")
    assert program is not None and program.mode == "function"
    assert ast.parse(program.source)


def test_docstring_with_column_zero_lines_is_not_cut() -> None:
    source = 'def solution():\n    """a question\nover two lines"""\n    x = 3\n    return x\n'
    program = extract_program(source + "The answer is 3.")
    assert program is not None and program.source == source


def test_imports_above_the_function_are_kept() -> None:
    program = extract_program("import math\nfrom fractions import Fraction\ndef solution():\n    return 1\n")
    assert program is not None and program.source.startswith("import math\nfrom fractions import Fraction\n")


def test_nested_blocks_and_inner_returns_are_kept() -> None:
    response = "    x = 1\n    if x:\n        return 2\n    for i in range(3):\n        x += i\n    return x\n\nDone."
    program = extract_program(response)
    assert program is not None
    assert program.source.endswith("        x += i\n    return x\n")


def test_only_the_first_function_is_taken() -> None:
    program = extract_program("def solution():\n    return 1\n\ndef solution():\n    return 2\n")
    assert program is not None and program.source == "def solution():\n    return 1\n"


def test_one_line_function() -> None:
    program = extract_program("def solution(): return 5\nsome junk")
    assert program is not None and program.source == "def solution(): return 5\n"


def test_broken_code_is_still_a_program() -> None:
    # it runs and fails in the sandbox (status "error"), rather than counting as "no program"
    program = extract_program("    x = = 2\n    return x")
    assert program is not None


def test_strip_fences_prefers_the_block_with_the_function() -> None:
    text = "```\nexample output\n```\n```python\ndef solution():\n    return 1\n```"
    assert strip_fences(text) == "def solution():\n    return 1\n"


def test_strip_fences_unclosed_fence_runs_to_the_end() -> None:
    assert strip_fences("```python\n    x = 1\n    return x") == "    x = 1\n    return x"


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        (BODY, 4),
        ('def solution():\n    """doc\n    string"""\n    return 1\n', 1),
        ("def solution():\n    # comment\n\n    x = (1 +\n         2)\n    return x\n", 3),
        ("import math\ndef solution():\n    return math.sqrt(4)\n", 1),
    ],
)
def test_count_code_lines(source: str, lines: int) -> None:
    assert count_code_lines(source) == lines


def test_code_lines_is_reported_on_the_program() -> None:
    program = extract_program("    return 7")
    assert program is not None and program.code_lines == 1
