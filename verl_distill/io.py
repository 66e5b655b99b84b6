"""Reading source records and writing validated parquet files with a manifest written last.

A stage's output directory is complete only when its ``manifest.json`` exists: the manifest is written after every
data file, so a half-written stage is visible (and re-run) rather than silently trusted.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from verl_distill.schema import validate_rl_row, validate_sft_row

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class SourceError(ValueError):
    """A source record is missing or has a malformed field; names file, row index and field."""


@dataclass
class ConversionReport:
    """Counts of rows read, written and skipped (with reasons) for one converter run."""

    source: str
    read: int = 0
    written: dict[str, int] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        """Count one record skipped for ``reason`` (a short, stable phrase)."""
        self.skipped[reason] += 1

    def summary(self) -> str:
        """One line for the CLI."""
        written = ", ".join(f"{k}={v}" for k, v in self.written.items()) or "nothing"
        skipped = ", ".join(f"{k}: {v}" for k, v in self.skipped.items()) or "none"
        extra = "".join(f"; {k}={v}" for k, v in self.extra.items())
        n_skipped = sum(self.skipped.values())
        return f"[{self.source}] read {self.read}, wrote {written}, skipped {n_skipped} ({skipped}){extra}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the manifest."""
        return {"source": self.source, "read": self.read, "written": self.written,
                "skipped": dict(self.skipped), **self.extra}


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``.json`` (list of objects) or ``.jsonl`` file; every record must be a JSON object."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        records = []
        with path.open(encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise SourceError(f"{path}: line {i + 1} is not valid JSON ({err})") from err
    else:
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise SourceError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise SourceError(f"{path}: row {i} is not a JSON object")
    return records


def require_field(record: dict[str, Any], key: str, *, source: str, index: int, typ: type | tuple = str) -> Any:
    """Return ``record[key]`` or raise :class:`SourceError` naming file, row and field."""
    if key not in record or record[key] is None:
        raise SourceError(f"{source}: row {index}: missing field '{key}'")
    value = record[key]
    if not isinstance(value, typ):
        raise SourceError(f"{source}: row {index}: field '{key}' has type {type(value).__name__}, expected {typ}")
    if isinstance(value, str) and not value.strip():
        raise SourceError(f"{source}: row {index}: field '{key}' is empty")
    return value


def write_parquet(rows: Iterable[dict[str, Any]], path: str | os.PathLike, *, kind: str) -> int:
    """Validate every row (``kind`` ``"rl"`` or ``"sft"``; ``"records"``: a stage's own table, not validated, may be
    empty) and write them to ``path`` atomically; returns the count."""
    if kind not in ("rl", "sft", "records"):
        raise ValueError(f"kind={kind!r}: expected 'rl', 'sft' or 'records'")
    rows = list(rows)
    if not rows and kind != "records":
        raise ValueError(f"{path}: refusing to write an empty {kind} file")
    validate = {"rl": validate_rl_row, "sft": validate_sft_row}.get(kind)
    for i, row in enumerate(rows if validate else ()):
        validate(row, row_id=i)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, path)
    logger.info("wrote %d %s rows to %s", len(rows), kind, path)
    return len(rows)


def read_parquet_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a parquet file back into a list of row dicts."""
    return pq.read_table(path).to_pylist()


def write_manifest(out_dir: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write ``manifest.json`` into ``out_dir`` (call it last, after every data file)."""
    from verl_distill import __version__

    out = Path(out_dir) / MANIFEST
    payload = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "verl_distill": __version__, **info}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, out)
    return out


def iter_batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Yield consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
