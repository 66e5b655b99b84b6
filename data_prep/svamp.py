"""SVAMP as program-of-thought or natural-language CoT from ReFT's files (``data_source="svamp"``).

* ``--format pot``: ``/work/shared/data/reft_mwp/svamp_python_sdp.json``; ``answer_cot`` is a whole
  ``def solution():`` with the question as docstring. :func:`pot_body` keeps only the indented body (our prompt
  already holds the ``def`` line and the docstring). Each prompt + body is run in the sandboxed executor; bodies that
  do not reproduce the gold answer (within 1e-2) give no SFT row.
* ``--format nl``: ``svamp_nl.json``; the CoT ends "Therefore, the answer is <X>.", which :func:`nl_solution`
  replaces by ``#### N`` (our NL template's answer format). A CoT without that line (ReFT has a few "this question
  was already answered" stubs) or with an ``X`` that is not the gold answer gives no SFT row.

Every record with a numeric gold gives an RL row. Gold values like ``"203.0"`` are stored as canonical strings
(``"203"``; non-integers keep their digits, ``"3.333"``). The original SVAMP layout (``ID``, ``Body``, ``Question``,
``Answer``: ``svamp/SVAMP.json`` and the Hugging Face dataset ``ChilleD/SVAMP``) is accepted too; it has no
solutions, so it gives RL rows only.

    python -m data_prep.svamp --format pot --input /work/shared/data/reft_mwp/svamp_python_sdp.json --output-dir DIR
"""

from __future__ import annotations

import ast
import re
import sys
from typing import Any

from data_prep.common import (
    REPRODUCE_TOL,
    Rows,
    add_exec_args,
    base_parser,
    build_rows,
    canonical_number,
    collect,
    exec_failure,
    gold_number,
    limit_records,
    load_records,
    render_prompt,
    run_cli,
    run_info,
    run_programs,
    setup_logging,
    write_outputs,
)
from verl_distill.io import ConversionReport, require_field
from verl_distill.pot.executor import ExecResult

DATA_SOURCE = "svamp"
_NL_FINAL = re.compile(r"\s*Therefore, the answer is <([^<>]*)>\.?\s*$")


def svamp_fields(record: dict[str, Any], *, index: int, source: str) -> tuple[str, str, str]:
    """``(question, gold, source_id)`` from a ReFT record or an original SVAMP record (``Body`` + ``Question``)."""
    if "Body" in record and "question" not in record:
        body = require_field(record, "Body", source=source, index=index).strip()
        question = f"{body} {require_field(record, 'Question', source=source, index=index).strip()}"
        answer = require_field(record, "Answer", source=source, index=index, typ=(int, float, str))
        gold = gold_number(str(answer), source=source, index=index, field="Answer")
        return question, gold, str(record.get("ID") or "")
    question = require_field(record, "question", source=source, index=index).strip()
    answer = require_field(record, "answer_value", source=source, index=index)
    gold = gold_number(answer, source=source, index=index, field="answer_value")
    return question, gold, str(record.get("item_id") or "")


def pot_body(program: str) -> str:
    """The body of ``def solution():`` after its docstring; ``ValueError`` (a short reason) if there is none."""
    try:
        tree = ast.parse(program)  # parsing only: programs run in the sandbox
    except SyntaxError as err:
        raise ValueError("SyntaxError") from err
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or tree.body[0].name != "solution":
        raise ValueError("not a single def solution()")
    func = tree.body[0]
    has_doc = ast.get_docstring(func, clean=False) is not None
    start = func.body[0].end_lineno if has_doc else func.lineno  # 1-based line after which the body starts
    lines = [line.rstrip() for line in program.splitlines()[start:] if line.strip()]
    if not lines or not all(line.startswith("    ") for line in lines):
        raise ValueError("empty or badly indented body")
    return "".join(f"{line}\n" for line in lines)


def nl_solution(cot: str, gold: str) -> str:
    """The CoT with its final "Therefore, the answer is <X>." replaced by ``#### gold``; ``ValueError`` if unusable."""
    match = _NL_FINAL.search(cot)
    if match is None:
        raise ValueError("no final answer line")
    try:
        stated = float(canonical_number(match.group(1).strip().strip("$%")))
    except ValueError as err:
        raise ValueError("final answer not a number") from err
    if abs(stated - float(gold)) > REPRODUCE_TOL:
        raise ValueError("final answer differs from gold")
    reasoning = cot[: match.start()].strip()
    if not reasoning:
        raise ValueError("no reasoning")
    return f"{reasoning}\n#### {gold}"


def _solution(
    record: dict[str, Any], *, fmt: str, gold: str, exec_result: ExecResult | None, index: int, source: str
) -> tuple[str | None, str]:
    """``(solution, skip_reason)`` for a ReFT record; ``(None, "")`` for an original SVAMP record."""
    if "answer_cot" not in record and "Body" in record:
        return None, ""
    cot = require_field(record, "answer_cot", source=source, index=index)
    try:
        if fmt == "nl":
            return nl_solution(cot, gold), ""
        body = pot_body(cot)
    except ValueError as err:
        return None, str(err)
    reason = "not executed" if exec_result is None else exec_failure(exec_result, gold)
    return (None, reason) if reason else (body, "")


def to_row(
    record: dict[str, Any],
    *,
    index: int,
    split: str,
    fmt: str = "pot",
    unlabeled: bool = False,
    guarded: bool = False,
    exec_result: ExecResult | None = None,
    source: str = "<records>",
) -> Rows:
    """Convert one SVAMP record to an RL row (task ``fmt``) and, if its solution checks out, an SFT row.

    For ``fmt="pot"``, ``exec_result`` is the executor's result for :func:`program_for` (None: not executed, no SFT).
    """
    if fmt not in ("pot", "nl"):
        raise ValueError(f"fmt={fmt!r}: expected 'pot' or 'nl'")
    question, gold, source_id = svamp_fields(record, index=index, source=source)
    solution, reason = None, ""
    if not unlabeled:
        solution, reason = _solution(record, fmt=fmt, gold=gold, exec_result=exec_result, index=index, source=source)
    return build_rows(
        data_source=DATA_SOURCE, task=fmt, question=question, gold=gold, solution=solution, index=index, split=split,
        source_id=source_id, unlabeled=unlabeled, guarded=guarded, skip_reason=reason,
    )


def program_for(record: dict[str, Any], *, index: int, guarded: bool = False, source: str = "<records>") -> str | None:
    """Our prompt + the record's body (what a model would complete), or None if it has no usable program."""
    question, _, _ = svamp_fields(record, index=index, source=source)
    if not isinstance(record.get("answer_cot"), str):
        return None
    try:
        return render_prompt(question, task="pot", guarded=guarded)[0] + pot_body(record["answer_cot"])
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """CLI: convert SVAMP (pot or nl) to RL/SFT parquet and a manifest."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("pot", "nl"), default="pot", help="program-of-thought or NL CoT")
    parser.add_argument("--guarded", action="store_true", help="use the guarded PoT prompt template")
    add_exec_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    records = limit_records(load_records(args.input, split=args.split, hf_config=args.hf_config), args.limit)
    results: list[ExecResult | None] = [None] * len(records)
    if args.format == "pot" and not args.unlabeled:
        programs = [program_for(r, index=i, guarded=args.guarded, source=args.input) for i, r in enumerate(records)]
        if any(programs):
            results = run_programs(programs, workers=args.workers, timeout_s=args.timeout_s, memory_mb=args.memory_mb)
    report = ConversionReport(source=f"svamp_{args.format}")
    rl_rows, sft_rows = collect(
        records,
        lambda i, rec: to_row(rec, index=i, split=args.split, fmt=args.format, unlabeled=args.unlabeled,
                              guarded=args.guarded, exec_result=results[i], source=args.input),
        report,
    )
    info = run_info(args, data_source=DATA_SOURCE, task=args.format)
    write_outputs(args.output_dir, split=args.split, rl_rows=rl_rows, sft_rows=sft_rows, report=report, info=info)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
