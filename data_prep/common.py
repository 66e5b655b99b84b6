"""Shared pieces of the ``data_prep`` converters: loading, row building, program checks, CLI and writing.

Every converter follows one flow: :func:`load_records` (a local ``.json``/``.jsonl`` file, or a Hugging Face dataset
id) -> a pure ``to_row(record, ...) -> Rows`` per record -> :func:`write_outputs` (RL parquet, SFT parquet when gold
solutions exist, manifest last). Policy shared by all converters:

* A record whose gold answer is missing or not a number is malformed: :class:`~verl_distill.io.SourceError`.
* A record whose *solution* cannot be used (a program that does not run or does not reproduce the gold answer, a
  CoT without a final answer) still gives an RL row (RL needs only the question and the gold answer), but no SFT row
  and an empty ``reference``; it is counted under a ``"sft: <reason>"`` skip reason.
* Gold answers are stored as canonical numeric strings (:func:`canonical_number`): ``"203.0"`` -> ``"203"``,
  ``"1,000"`` -> ``"1000"``, ``"0.50"`` -> ``"0.5"``.
* Programs are only ever run through :class:`verl_distill.pot.executor.PotExecutor` (separate processes), never here.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from verl_distill.io import ConversionReport, SourceError, iter_batches, read_records, write_manifest, write_parquet
from verl_distill.pot.executor import ExecResult, PotExecutor, score_value
from verl_distill.prompts import NL, get_template, pot_prompt
from verl_distill.schema import RowError, make_extra_info, make_rl_row, make_sft_row

logger = logging.getLogger(__name__)

EXEC_BATCH = 512  # programs per executor call, for the progress bar
REPRODUCE_TOL = 1e-2  # ReFT's tolerance when comparing a program's value with the gold answer
LOCAL_SUFFIXES = (".json", ".jsonl")


class Rows(NamedTuple):
    """What ``to_row`` makes of one record: the RL row, the SFT row (or None) and why there is no SFT row."""

    rl: dict[str, Any]
    sft: dict[str, Any] | None
    skip_reason: str = ""  # "" when an SFT row was made, or none was expected (unlabeled, no gold solution)


# ---------------------------------------------------------------- numbers


def canonical_number(text: str) -> str:
    """Canonical string of a number: commas removed, integral values without ``.0``; ``ValueError`` if not one."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation as err:
        raise ValueError(f"not a number: {text!r}") from err
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def gold_number(text: str, *, source: str, index: int, field: str) -> str:
    """:func:`canonical_number` of a gold field, raising :class:`SourceError` (file, row, field) if malformed."""
    try:
        return canonical_number(text)
    except ValueError as err:
        raise SourceError(f"{source}: row {index}: field '{field}' is not a number ({text!r:.40})") from err


# ---------------------------------------------------------------- loading


def looks_local(name: str) -> bool:
    """True if ``name`` is meant as a local file (exists, or has a file suffix or a path prefix)."""
    return os.path.exists(name) or name.endswith(LOCAL_SUFFIXES) or name.startswith(("/", ".", "~"))


def load_records(name: str, *, split: str, hf_config: str | None = None) -> list[dict[str, Any]]:
    """Read a local ``.json``/``.jsonl`` file, or load Hugging Face dataset ``name`` (``hf_config``, ``split``).

    Each converter's ``to_row`` accepts the Hugging Face layout of its source as well as the local one.
    """
    if looks_local(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (a Hugging Face dataset id has no file suffix)")
        return read_records(path)
    import datasets

    try:
        dataset = datasets.load_dataset(name, hf_config, split=split)
    except Exception as err:  # the hub raises many types; re-raised with the value and the fix
        raise SourceError(
            f"{name!r} is not a local file and loading it from the Hugging Face hub failed "
            f"(config={hf_config!r}, split={split!r}): {type(err).__name__}: {err}. Without network access pass a "
            f"local file instead (offline copies: shared/data), or check the dataset id, --hf-config and --split."
        ) from err
    return [dict(record) for record in dataset]


# ---------------------------------------------------------------- rows


def render_prompt(question: str, *, task: str, guarded: bool = False, template: str | None = None) -> tuple[str, str]:
    """Prompt text and template key for ``task`` ``"pot"`` (docstring style) or ``"nl"`` (``####`` answer);
    ``template`` (an ``nl`` task's ``name@version``, e.g. seed 000's ``fewshot_gsm8k_seed000``) overrides the
    default."""
    if template is not None:
        if task != "nl" or guarded:
            raise ValueError(f"template={template!r} applies to the nl task without guards")
        found = get_template(template)
        return found.render(question=question), found.key
    if task == "pot":
        return pot_prompt(question, guarded=guarded)
    if task == "nl":
        if guarded:
            raise ValueError("guarded=True applies to the pot task only")
        return NL.render(question=question), NL.key
    raise ValueError(f"task={task!r}: expected 'pot' or 'nl'")


def build_rows(
    *,
    data_source: str,
    task: str,
    question: str,
    gold: str,
    solution: str | None,
    index: int,
    split: str,
    source_id: str = "",
    unlabeled: bool = False,
    guarded: bool = False,
    skip_reason: str = "",
    reference: str | None = None,
    template: str | None = None,
) -> Rows:
    """Make the RL row and, if labeled with a usable ``solution``, the SFT row ``[user prompt, assistant solution]``.

    ``solution`` is the assistant's gold text (a PoT body or an NL CoT ending ``#### N``); None when the record has
    none or it failed a check (``skip_reason`` says which). ``reference`` (default: ``solution``) is stored in
    ``extra_info`` without making an SFT row. Unlabeled rows carry no gold, solution or reference.
    """
    prompt, template = render_prompt(question, task=task, guarded=guarded, template=template)
    if unlabeled:
        gold, solution, reference, skip_reason = "", None, "", ""
    extra = make_extra_info(
        question=question, label_source="none" if unlabeled else "gold", task=task, split=split, index=index,
        source_id=source_id, template=template, reference=(solution if reference is None else reference) or "",
    )
    user = {"role": "user", "content": prompt}
    rl = make_rl_row(data_source=data_source, prompt=[user], ground_truth=gold, extra_info=extra)
    sft = None
    if solution:
        messages = [dict(user), {"role": "assistant", "content": solution}]
        sft = make_sft_row(messages=messages, extra_info=dict(extra))
    return Rows(rl, sft, skip_reason)


def indent_body(lines: Sequence[str]) -> str:
    """Join statement lines into a function body indented by 4 spaces (with a final newline)."""
    return "".join(f"    {line}\n" for line in lines)


# ---------------------------------------------------------------- program checks


def exec_failure(result: ExecResult, gold: str) -> str:
    """Why a program's result does not reproduce ``gold`` (``""`` if it does, within ReFT's 1e-2)."""
    if result.status == "error":
        names = re.findall(r"\b([A-Z]\w*(?:Error|Exception|Exit))\b", result.error or "")
        return names[0] if names else "error"
    if result.status != "ok":
        return result.status
    return "" if score_value(result.value, float(gold), tol=REPRODUCE_TOL) else "wrong value"


def run_programs(
    programs: Sequence[str | None], *, workers: int | None, timeout_s: float, memory_mb: int
) -> list[ExecResult]:
    """Run full ``def solution():`` programs in the sandboxed executor (never in this process)."""
    logger.info("executing %d programs", sum(p is not None for p in programs))
    results: list[ExecResult] = []
    bar = tqdm(total=len(programs), desc="checking programs", unit="prog", disable=None)  # None: on a terminal only
    with PotExecutor(num_workers=workers, timeout_s=timeout_s, memory_mb=memory_mb) as executor, bar:
        for batch in iter_batches(list(programs), EXEC_BATCH):
            results.extend(executor.run(batch))
            bar.update(len(batch))
    return results


# ---------------------------------------------------------------- CLI and writing


def base_parser(description: str, *, hf_config: str | None = None, split: str = "train") -> argparse.ArgumentParser:
    """The options every converter shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", required=True, help="local .json/.jsonl file, or a Hugging Face dataset id")
    parser.add_argument("--output-dir", required=True, type=Path, help="where {split}.parquet and manifest go")
    parser.add_argument("--split", default=split, help=f"split name for rows, files and HF loading (default {split})")
    parser.add_argument("--hf-config", default=hf_config, help=f"HF dataset config (default {hf_config})")
    parser.add_argument("--limit", type=int, default=None, help="convert only the first N records")
    parser.add_argument("--unlabeled", action="store_true", help="no ground truth or reference, no SFT file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def add_exec_args(parser: argparse.ArgumentParser) -> None:
    """Options of the sandboxed executor used to check gold programs."""
    parser.add_argument("--workers", type=int, default=None, help="executor processes (default: the executor's)")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="wall-clock limit per program")
    parser.add_argument("--memory-mb", type=int, default=1024, help="memory limit per program")


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a converter's ``main``; bad input (missing file, malformed record, bad row) ends with one line, code 2."""
    try:
        return main(argv)
    except (SourceError, FileNotFoundError, RowError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def setup_logging(verbose: bool) -> None:
    """Plain logging for the CLIs."""
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def run_info(args: argparse.Namespace, *, data_source: str, task: str) -> dict[str, Any]:
    """What a converter's manifest records about its run, besides the counts."""
    hub = not looks_local(args.input)
    return {"input": args.input, "hf_config": args.hf_config if hub else None, "hf_split": args.split if hub else None,
            "limit": args.limit, "data_source": data_source, "task": task, "guarded": getattr(args, "guarded", False),
            "label_source": "none" if args.unlabeled else "gold"}


def holdout_splits(n: int, fraction: float, seed: int, *, rest: str = "train") -> list[str]:
    """Split name per record: a seeded ``fraction`` of the positions is ``validation``, the others ``rest``."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction {fraction!r} must be in [0, 1)")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = set(order[:round(n * fraction)])
    return ["validation" if i in held else rest for i in range(n)]


def limit_records(records: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` records (all if None); a negative limit is an error."""
    if limit is not None and limit < 0:
        raise ValueError(f"--limit={limit}: must be >= 0")
    return records if limit is None else records[:limit]


def collect(
    records: Sequence[dict[str, Any]], make: Callable[[int, dict[str, Any]], Rows], report: ConversionReport
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply ``make(index, record)`` to every record, counting reads and SFT skips in ``report``."""
    rl_rows, sft_rows = [], []
    for index, record in enumerate(records):
        report.read += 1
        rows = make(index, record)
        rl_rows.append(rows.rl)
        if rows.sft is not None:
            sft_rows.append(rows.sft)
        elif rows.skip_reason:
            report.skip(f"sft: {rows.skip_reason}")
    return rl_rows, sft_rows


def write_split(
    out_dir: Path, *, split: str, rl_rows: list[dict[str, Any]], sft_rows: list[dict[str, Any]]
) -> dict[str, int]:
    """Write ``{split}.parquet`` and, if any SFT rows, ``{split}_sft.parquet``; returns rows per file name."""
    out_dir = Path(out_dir)
    written = {f"{split}.parquet": write_parquet(rl_rows, out_dir / f"{split}.parquet", kind="rl")}
    sft_path = out_dir / f"{split}_sft.parquet"
    if sft_rows:
        written[sft_path.name] = write_parquet(sft_rows, sft_path, kind="sft")
    elif sft_path.exists():
        sft_path.unlink()  # left by an earlier labeled run: it would not match this manifest
    return written


def write_outputs(
    out_dir: Path,
    *,
    split: str,
    rl_rows: list[dict[str, Any]],
    sft_rows: list[dict[str, Any]],
    report: ConversionReport,
    info: dict[str, Any],
) -> None:
    """Write one split's parquet files, then the manifest (report counts, ``info``, prompt templates used)."""
    report.written.update(write_split(out_dir, split=split, rl_rows=rl_rows, sft_rows=sft_rows))
    templates = sorted({row["extra_info"]["template"] for row in rl_rows})
    write_manifest(out_dir, {**report.as_dict(), **info, "split": split, "templates": templates})
