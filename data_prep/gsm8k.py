"""GSM8K with natural-language chain-of-thought answers (task ``nl``, ``data_source="gsm8k"``).

Source records have ``question`` and ``answer`` (a worked solution with ``<<expr=value>>`` calculator annotations and
a final line ``#### N``); the local ``/work/shared/data/gsm8k/*.jsonl`` files and the Hugging Face dataset
``openai/gsm8k`` (config ``main``) share that layout. The ground truth is ``N`` with commas removed; the SFT answer is
the solution without the annotations, ending ``#### N``.

``--template fewshot_gsm8k_seed000`` writes seed 000's few-shot teacher prompt (Appendix A, Figure 8) instead of the
``####`` instruction, and ``--validation-fraction 0.1`` holds out a seeded 10% of the records as ``validation``
(Appendix B.1: GSM8K train split 90/10 into train and validation).

    python -m data_prep.gsm8k --input /work/shared/data/gsm8k/train.jsonl --output-dir data/gsm8k_nl
    python -m data_prep.gsm8k --input openai/gsm8k --template fewshot_gsm8k_seed000 --validation-fraction 0.1 \
        --output-dir data/gsm8k_seed000
"""

from __future__ import annotations

import re
import sys
from typing import Any

from data_prep.common import (
    Rows,
    base_parser,
    build_rows,
    collect,
    gold_number,
    holdout_splits,
    limit_records,
    load_records,
    run_cli,
    run_info,
    setup_logging,
    write_outputs,
    write_split,
)
from verl_distill.io import ConversionReport, SourceError, require_field

DATA_SOURCE = "gsm8k"
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"\n?####\s*(.+?)\s*$")


def split_answer(answer: str, *, source: str, index: int) -> tuple[str, str]:
    """Split a GSM8K ``answer`` into ``(reasoning, gold)``; ``SourceError`` if there is no ``#### N`` line."""
    match = _FINAL.search(answer)
    if match is None:
        raise SourceError(f"{source}: row {index}: field 'answer' has no final '#### N' line")
    gold = gold_number(match.group(1), source=source, index=index, field="answer")
    return answer[: match.start()].rstrip(), gold


def clean_solution(reasoning: str, gold: str) -> str:
    """The reasoning without ``<<...>>`` annotations, ending with ``#### gold``."""
    return f"{_ANNOTATION.sub('', reasoning).strip()}\n#### {gold}"


def to_row(
    record: dict[str, Any], *, index: int, split: str, unlabeled: bool = False, source: str = "<records>",
    template: str | None = None,
) -> Rows:
    """Convert one GSM8K record (``question``, ``answer``) to an NL RL row and, if labeled, an SFT row."""
    question = require_field(record, "question", source=source, index=index).strip()
    answer = require_field(record, "answer", source=source, index=index)
    reasoning, gold = split_answer(answer, source=source, index=index)
    return build_rows(
        data_source=DATA_SOURCE, task="nl", question=question, gold=gold, solution=clean_solution(reasoning, gold),
        index=index, split=split, unlabeled=unlabeled, template=template,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI: convert a GSM8K file or HF dataset to ``{split}.parquet`` (+ ``{split}_sft.parquet``) and a manifest."""
    parser = base_parser(__doc__.splitlines()[0], hf_config="main")
    parser.add_argument("--template", default=None, help="prompt template name@version (default nl_gsm8k@1)")
    parser.add_argument("--validation-fraction", type=float, default=0.0,
                        help="hold out this seeded share of the records as split 'validation' (seed 000: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation hold-out")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    records = limit_records(load_records(args.input, split=args.split, hf_config=args.hf_config), args.limit)
    names = holdout_splits(len(records), args.validation_fraction, args.seed, rest=args.split)
    report = ConversionReport(source=DATA_SOURCE)
    rl_rows, sft_rows = collect(
        records,
        lambda i, rec: to_row(rec, index=i, split=names[i], unlabeled=args.unlabeled, source=args.input,
                              template=args.template),
        report,
    )
    info = run_info(args, data_source=DATA_SOURCE, task="nl") | {"validation_fraction": args.validation_fraction,
                                                                  "seed": args.seed}
    for split in dict.fromkeys(names):
        if split != args.split:
            report.written.update(write_split(args.output_dir, split=split,
                                              rl_rows=[r for r in rl_rows if r["extra_info"]["split"] == split],
                                              sft_rows=[r for r in sft_rows if r["extra_info"]["split"] == split]))
    write_outputs(args.output_dir, split=args.split, rl_rows=[r for r in rl_rows if r["extra_info"]["split"] ==
                                                              args.split],
                  sft_rows=[r for r in sft_rows if r["extra_info"]["split"] == args.split], report=report, info=info)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
