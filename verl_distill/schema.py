"""The row contract between ``data_prep/`` and everything else.

One definition of the two row kinds the project writes:

* **RL rows** (verl's ``RLHFDataset`` parquet): ``data_source``, ``prompt`` (chat messages), ``ability``,
  ``reward_model`` (``{"style", "ground_truth"}``) and ``extra_info``.
* **SFT rows** (verl's ``sft_trainer`` parquet): ``messages`` plus the same ``extra_info``.

``extra_info`` always has exactly the keys of :data:`EXTRA_INFO_KEYS`, so files written by different converters
concatenate without schema drift (verl concatenates its ``train_files`` with ``datasets``). Rewards dispatch on
``extra_info["label_source"]`` and ``extra_info["task"]``, never on dataset names.

Every writer goes through :func:`validate_rl_row` / :func:`validate_sft_row`; a bad row raises
:class:`RowError` naming the row and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL_SOURCES = ("gold", "teacher_vote", "none")
TASKS = ("pot", "nl", "mc", "latex")
ROLES = ("system", "user", "assistant")

# key -> python type of the value; every RL and SFT row carries all of them.
EXTRA_INFO_KEYS: dict[str, type] = {
    "question": str,  # raw question text (the judge and the PoT reward need it; verl passes no prompt)
    "label_source": str,  # gold | teacher_vote | none
    "task": str,  # pot | nl | mc | latex: selects the extraction pipeline and reward
    "split": str,  # train | validation | test
    "index": int,  # position in the source file
    "source_id": str,  # id of the record in its source (e.g. "svamp_12"), "" if the source has none
    "template": str,  # prompt template as "name@version"
    "reference": str,  # gold solution text (program or CoT), "" when unlabeled or unknown
}


class RowError(ValueError):
    """A row violates the contract; the message names the row and the field."""


def _where(row_id: str | int | None) -> str:
    return f"row {row_id}" if row_id is not None else "row"


def make_extra_info(
    *,
    question: str,
    label_source: str,
    task: str,
    split: str,
    index: int,
    source_id: str = "",
    template: str = "",
    reference: str = "",
) -> dict[str, Any]:
    """Build an ``extra_info`` dict with exactly the contract's keys."""
    return {
        "question": question,
        "label_source": label_source,
        "task": task,
        "split": split,
        "index": index,
        "source_id": source_id,
        "template": template,
        "reference": reference,
    }


def make_rl_row(
    *,
    data_source: str,
    prompt: list[dict[str, str]],
    ground_truth: str,
    extra_info: dict[str, Any],
    ability: str = "math",
) -> dict[str, Any]:
    """Assemble and validate one verl RL row. Unlabeled rows pass ``ground_truth=""``."""
    style = "none" if extra_info.get("label_source") == "none" else "rule"
    row = {
        "data_source": data_source,
        "prompt": prompt,
        "ability": ability,
        "reward_model": {"style": style, "ground_truth": ground_truth},
        "extra_info": extra_info,
    }
    validate_rl_row(row, row_id=extra_info.get("index"))
    return row


def make_sft_row(*, messages: list[dict[str, str]], extra_info: dict[str, Any]) -> dict[str, Any]:
    """Assemble and validate one SFT row (``messages`` ends with the assistant's answer)."""
    row = {"messages": messages, "extra_info": extra_info}
    validate_sft_row(row, row_id=extra_info.get("index"))
    return row


def validate_messages(messages: Any, *, field: str, row_id: str | int | None = None) -> None:
    """Check a chat message list: non-empty, each ``{"role", "content"}`` with a known role and str content."""
    where = _where(row_id)
    if not isinstance(messages, (list, tuple)) or not messages:
        raise RowError(f"{where}: field '{field}' must be a non-empty list of messages, got {messages!r:.80}")
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or set(msg) != {"role", "content"}:
            raise RowError(f"{where}: {field}[{i}] must be a dict with keys role, content; got {msg!r:.80}")
        if msg["role"] not in ROLES:
            raise RowError(f"{where}: {field}[{i}].role={msg['role']!r} is not one of {ROLES}")
        if not isinstance(msg["content"], str) or not msg["content"].strip():
            raise RowError(f"{where}: {field}[{i}].content must be a non-empty string")


def validate_extra_info(extra: Any, *, row_id: str | int | None = None) -> None:
    """Check ``extra_info`` has exactly the contract's keys with the right types and values."""
    where = _where(row_id)
    if not isinstance(extra, Mapping):
        raise RowError(f"{where}: field 'extra_info' must be a dict, got {type(extra).__name__}")
    missing = set(EXTRA_INFO_KEYS) - set(extra)
    extra_keys = set(extra) - set(EXTRA_INFO_KEYS)
    if missing or extra_keys:
        raise RowError(
            f"{where}: extra_info keys differ from the contract (missing {sorted(missing)}, "
            f"unknown {sorted(extra_keys)}); build it with verl_distill.schema.make_extra_info"
        )
    for key, typ in EXTRA_INFO_KEYS.items():
        if not isinstance(extra[key], typ) or (typ is int and isinstance(extra[key], bool)):
            raise RowError(f"{where}: extra_info.{key}={extra[key]!r:.60} must be {typ.__name__}")
    if not extra["question"].strip():
        raise RowError(f"{where}: extra_info.question is empty")
    if extra["label_source"] not in LABEL_SOURCES:
        raise RowError(f"{where}: extra_info.label_source={extra['label_source']!r} is not one of {LABEL_SOURCES}")
    if extra["task"] not in TASKS:
        raise RowError(f"{where}: extra_info.task={extra['task']!r} is not one of {TASKS}")


def validate_rl_row(row: Mapping[str, Any], *, row_id: str | int | None = None) -> None:
    """Raise :class:`RowError` unless ``row`` is a valid verl RL row under this contract."""
    where = _where(row_id)
    for key in ("data_source", "prompt", "ability", "reward_model", "extra_info"):
        if key not in row:
            raise RowError(f"{where}: missing field '{key}'")
    if not isinstance(row["data_source"], str) or not row["data_source"]:
        raise RowError(f"{where}: data_source must be a non-empty string")
    validate_messages(row["prompt"], field="prompt", row_id=row_id)
    validate_extra_info(row["extra_info"], row_id=row_id)
    rm = row["reward_model"]
    if not isinstance(rm, Mapping) or "ground_truth" not in rm:
        raise RowError(f"{where}: reward_model must be a dict with 'ground_truth'")
    gt = rm["ground_truth"]
    if not isinstance(gt, str):
        raise RowError(f"{where}: reward_model.ground_truth must be a string, got {type(gt).__name__}")
    labeled = row["extra_info"]["label_source"] != "none"
    if labeled and not gt.strip():
        raise RowError(f"{where}: label_source={row['extra_info']['label_source']!r} but ground_truth is empty")
    if not labeled and gt:
        raise RowError(f"{where}: unlabeled row (label_source='none') must have ground_truth ''")


def validate_sft_row(row: Mapping[str, Any], *, row_id: str | int | None = None) -> None:
    """Raise :class:`RowError` unless ``row`` is a valid SFT row (last message from the assistant)."""
    where = _where(row_id)
    if "messages" not in row:
        raise RowError(f"{where}: missing field 'messages'")
    validate_messages(row["messages"], field="messages", row_id=row_id)
    if row["messages"][-1]["role"] != "assistant":
        raise RowError(f"{where}: the last message must be the assistant's answer")
    validate_extra_info(row.get("extra_info"), row_id=row_id)
