"""MMLU-Pro (``TIGER-Lab/MMLU-Pro``) as multiple-choice RL rows in seed 000's prompt, with its Appendix B.1 split.

Fields used: ``question_id``, ``question``, ``options`` (up to 10, shown as letters A-J), ``answer`` (the letter;
checked against ``answer_index``), ``category``, and for the few-shot examples ``cot_content``. The prompt is seed 000
Figure 9 (``fewshot_mmlu_pro_seed000@1``): two shots "provided by the dataset", i.e. the first two validation-split
questions of the same category with their chain of thought, then the question and options. ``--shots`` names the
shots' source (a local file or a Hugging Face id, split ``validation``); ``--shots none`` gives zero-shot prompts
(the offline copy in shared/data has no validation split) and is recorded in the manifest.

Split (Appendix B.1): a seeded shuffle puts 15% of the questions in ``test``, then 10% of the rest in
``validation``; the rest is ``train``. Rows carry ``task="mc"`` (answers are extracted by the ``mc@1`` pipeline).

    python -m data_prep.mmlu_pro --input /work/shared/data/mmlu_pro/test.jsonl --shots none --output-dir DIR
    python -m data_prep.mmlu_pro --input TIGER-Lab/MMLU-Pro --shots TIGER-Lab/MMLU-Pro --output-dir DIR
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from pathlib import Path
from typing import Any

from data_prep.common import limit_records, load_records, run_cli, setup_logging
from verl_distill.io import ConversionReport, SourceError, require_field, write_manifest, write_parquet
from verl_distill.prompts import FEWSHOT_MMLU_PRO_SEED000
from verl_distill.schema import make_extra_info, make_rl_row

DATA_SOURCE = "mmlu_pro"
LETTERS = string.ascii_uppercase[:10]
SPLITS = (("test", 0.15), ("validation", 0.10))  # Appendix B.1: 15% test, then 10% of the rest for validation


def format_options(options: list[str]) -> str:
    """``"\\nA. first\\nB. second..."`` (the options block of Figure 9)."""
    return "".join(f"\n{letter}. {str(text).strip()}" for letter, text in zip(LETTERS, options, strict=False))


def check_record(record: dict[str, Any], *, index: int, source: str) -> tuple[str, list[str], str]:
    """(question, options, answer letter) of one record; a bad record raises naming it and the field."""
    question = require_field(record, "question", source=source, index=index).strip()
    options = record.get("options")
    if not isinstance(options, list) or not 2 <= len(options) <= 10:
        raise SourceError(f"{source}: record {index}: 'options' must be a list of 2-10 strings, got {options!r}")
    answer = str(require_field(record, "answer", source=source, index=index)).strip().upper()
    if answer not in LETTERS[:len(options)]:
        raise SourceError(f"{source}: record {index}: answer {answer!r} is not one of the {len(options)} option "
                          "letters")
    if "answer_index" in record and record["answer_index"] is not None and LETTERS[record["answer_index"]] != answer:
        raise SourceError(f"{source}: record {index}: answer {answer!r} disagrees with answer_index "
                          f"{record['answer_index']}; fix the record")
    return question, options, answer


def build_shots(records: list[dict[str, Any]], *, source: str) -> dict[str, str]:
    """category -> the rendered first two examples of that category (Figure 9's shot blocks)."""
    by_category: dict[str, list[str]] = {}
    for i, rec in enumerate(records):
        question, options, _ = check_record(rec, index=i, source=source)
        cot = str(rec.get("cot_content") or "").strip()
        if not cot:
            raise SourceError(f"{source}: shot {i} has no cot_content; shots come from MMLU-Pro's validation split")
        cot = cot[2:].strip() if cot.startswith("A:") else cot
        block = f"Question: {question}\nOptions: {format_options(options)}\nAnswer: {cot}\n\n"
        shots = by_category.setdefault(str(rec.get("category", "")), [])
        if len(shots) < 2:
            shots.append(block)
    return {c: "".join(s) for c, s in by_category.items()}


def assign_splits(n: int, seed: int) -> list[str]:
    """Split name of every record (Appendix B.1), by a seeded shuffle of the positions."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    names = ["train"] * n
    n_test = round(n * SPLITS[0][1])
    n_val = round((n - n_test) * SPLITS[1][1])
    for pos in order[:n_test]:
        names[pos] = "test"
    for pos in order[n_test:n_test + n_val]:
        names[pos] = "validation"
    return names


def to_row(record: dict[str, Any], *, index: int, split: str, shots: dict[str, str] | None,
           source: str) -> dict[str, Any]:
    """One RL row in seed 000's prompt; ``shots=None`` means zero-shot."""
    question, options, answer = check_record(record, index=index, source=source)
    category = str(record.get("category", ""))
    if shots is not None and category not in shots:
        raise SourceError(f"{source}: record {index}: no shots for category {category!r}; check --shots")
    prompt = FEWSHOT_MMLU_PRO_SEED000.render(shots=(shots or {}).get(category, ""), question=question,
                                             options=format_options(options))
    extra = make_extra_info(question=question + "\nOptions:" + format_options(options), label_source="gold",
                            task="mc", split=split, index=index, source_id=str(record.get("question_id", "")),
                            template=FEWSHOT_MMLU_PRO_SEED000.key)
    return make_rl_row(data_source=DATA_SOURCE, prompt=[{"role": "user", "content": prompt}], ground_truth=answer,
                       extra_info=extra, ability=category or "mc")


def main(argv: list[str] | None = None) -> int:
    """CLI: MMLU-Pro records -> ``{train,validation,test}.parquet`` and a manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="local .json/.jsonl file, or TIGER-Lab/MMLU-Pro")
    parser.add_argument("--hf-split", default="test", help="split to load from the hub (default test)")
    parser.add_argument("--shots", required=True, help="few-shot source (file or hub id, validation split) or none")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0, help="seed of the B.1 split")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    records = limit_records(load_records(args.input, split=args.hf_split), args.limit)
    shots = None if args.shots == "none" else build_shots(load_records(args.shots, split="validation"),
                                                          source=args.shots)
    splits = assign_splits(len(records), args.seed)
    report = ConversionReport(source=DATA_SOURCE)
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for i, (rec, split) in enumerate(zip(records, splits, strict=True)):
        report.read += 1
        rows[split].append(to_row(rec, index=i, split=split, shots=shots, source=args.input))
    for split, part in rows.items():
        if part:
            report.written[f"{split}.parquet"] = write_parquet(part, args.output_dir / f"{split}.parquet", kind="rl")
    write_manifest(args.output_dir, {**report.as_dict(), "input": args.input, "shots": args.shots, "seed": args.seed,
                                     "limit": args.limit, "data_source": DATA_SOURCE, "task": "mc",
                                     "templates": [FEWSHOT_MMLU_PRO_SEED000.key], "split_fractions": dict(SPLITS)})
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
