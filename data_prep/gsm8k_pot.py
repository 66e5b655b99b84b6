"""GSM8K program-of-thought from mwp_cot_design's straight-line programs (task ``pot``, ``data_source="gsm8k"``).

``/work/shared/data/mwp_cot_design/gsm8k_wolfram_ndp.json`` holds 7,433 GSM8K training questions whose
``answer_cot`` is a "wolfram ndp" program (``v1 = 4 ; v2 = 80\\nv3 = 10\\n...\\nv9 = v8 / (v1 - 2)``, the last
assigned variable is the answer) and ``answer_value`` the gold number. :func:`to_body` turns a program into a body
for the ReFT docstring prompt: one statement per line, indented 4 spaces, ending ``return vN``.

Each converted program (prompt + body, exactly what a model would be trained to complete) is run in the sandboxed
:class:`~verl_distill.pot.executor.PotExecutor`, never in this process. Only programs that reproduce the gold answer
(within 1e-2, as ReFT) become SFT rows and ``reference`` texts. **Every** record with a numeric gold answer becomes an
RL row, since RL needs only the question and the gold answer; the rest are counted as ``sft: <reason>`` skips
(``SyntaxError`` for Wolfram constructs such as ``Solve[...]``, ``NameError`` for symbolic ``x``, ``wrong value``...).

    python -m data_prep.gsm8k_pot --input /work/shared/data/mwp_cot_design/gsm8k_wolfram_ndp.json --output-dir DIR
"""

from __future__ import annotations

import ast
import sys
from typing import Any

from data_prep.common import (
    REPRODUCE_TOL,
    Rows,
    add_exec_args,
    base_parser,
    build_rows,
    collect,
    exec_failure,
    gold_number,
    indent_body,
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

DATA_SOURCE = "gsm8k"


class ProgramError(ValueError):
    """A source program cannot be turned into a body; ``str(err)`` is a short skip reason."""


def to_body(answer_cot: str) -> str:
    """Straight-line program -> function body (4-space indent, ``return <last assigned variable>``).

    Statements are split on newlines and ``;``; a final bare variable name (``v7``) is taken as the answer too.
    """
    statements = [part.strip() for line in answer_cot.splitlines() for part in line.split(";")]
    statements = [s for s in statements if s]
    try:
        tree = ast.parse("\n".join(statements))  # parsing only: programs run in the sandbox
    except SyntaxError as err:
        raise ProgramError("SyntaxError") from err
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Name):  # a few end by naming the answer: "v7"
        return indent_body([*statements[:-1], f"return {last.value.id}"])
    if not (isinstance(last, ast.Assign) and len(last.targets) == 1 and isinstance(last.targets[0], ast.Name)):
        raise ProgramError("no final assignment")
    return indent_body([*statements, f"return {last.targets[0].id}"])


def _fields(record: dict[str, Any], *, index: int, source: str) -> tuple[str, str, str]:
    """``(question, answer_cot, gold)`` of a record, raising ``SourceError`` when one is missing or malformed."""
    question = require_field(record, "question", source=source, index=index).strip()
    cot = require_field(record, "answer_cot", source=source, index=index)
    gold = gold_number(require_field(record, "answer_value", source=source, index=index),
                       source=source, index=index, field="answer_value")
    return question, cot, gold


def program_for(record: dict[str, Any], *, index: int, guarded: bool = False, source: str = "<records>") -> str | None:
    """The full program (prompt + body) to check for ``record``, or None if it cannot be converted."""
    question, cot, _ = _fields(record, index=index, source=source)
    try:
        body = to_body(cot)
    except ProgramError:
        return None
    return render_prompt(question, task="pot", guarded=guarded)[0] + body


def to_row(
    record: dict[str, Any],
    *,
    index: int,
    split: str,
    unlabeled: bool = False,
    guarded: bool = False,
    exec_result: ExecResult | None = None,
    source: str = "<records>",
) -> Rows:
    """Convert one record to a PoT RL row and, if ``exec_result`` shows its program reproduces the gold, an SFT row.

    ``exec_result`` is the executor's ``ExecResult`` for :func:`program_for` of this record (None: not executed,
    so no SFT row).
    """
    question, cot, gold = _fields(record, index=index, source=source)
    body, reason = None, ""
    if not unlabeled:
        try:
            body = to_body(cot)
            reason = "not executed" if exec_result is None else exec_failure(exec_result, gold)
        except ProgramError as err:
            reason = str(err)
        if reason:
            body = None
    return build_rows(
        data_source=DATA_SOURCE, task="pot", question=question, gold=gold, solution=body, index=index, split=split,
        source_id=str(record.get("item_id") or ""), unlabeled=unlabeled, guarded=guarded, skip_reason=reason,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI: convert, check every program in the sandbox, write RL/SFT parquet and a manifest."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--guarded", action="store_true", help="use the guarded PoT prompt template")
    add_exec_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    records = limit_records(load_records(args.input, split=args.split, hf_config=args.hf_config), args.limit)
    results: list[ExecResult | None] = [None] * len(records)
    if not args.unlabeled:  # unlabeled rows carry no program: nothing to check
        programs = [program_for(r, index=i, guarded=args.guarded, source=args.input) for i, r in enumerate(records)]
        results = run_programs(programs, workers=args.workers, timeout_s=args.timeout_s, memory_mb=args.memory_mb)
    report = ConversionReport(source="gsm8k_pot")
    rl_rows, sft_rows = collect(
        records,
        lambda i, rec: to_row(rec, index=i, split=args.split, unlabeled=args.unlabeled, guarded=args.guarded,
                              exec_result=results[i], source=args.input),
        report,
    )
    if not args.unlabeled:
        report.extra["reproduced"] = f"{len(sft_rows)}/{len(records)}"
    info = {**run_info(args, data_source=DATA_SOURCE, task="pot"), "reproduce_tol": REPRODUCE_TOL,
            "policy": "RL rows: every record with a numeric gold; SFT rows: programs that reproduce the gold"}
    write_outputs(args.output_dir, split=args.split, rl_rows=rl_rows, sft_rows=sft_rows, report=report, info=info)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
