"""``verl-distill make-rm-data``: D_S, D_R and the RL queries of seed 000 §3.3-3.4 from student and teacher samples.

Inputs: the vote stage's directory (pseudo-labels, teacher responses with their labels, labeled and D_fail RL rows)
and the warm-up student's samples on ``rl_labeled.parquet`` (``verl-distill sample --schedule
seed000_student_gsm8k``: 30 at temperature 0.7). A student response is positive iff its canonical answer equals the
pseudo-label (:func:`verl_distill.voting.matches_label`, the vote's own rule; no answer = negative).

* D_S (Eq. 3): the pseudo-labelled queries with at least one student answer that differs from the pseudo-label.
* D_R: per D_S query, ``k = min(#S+, #S-, #T+)`` (capped by ``per_query``) of each, drawn uniformly without
  replacement (seeded per query) after dropping duplicate texts within each kind, and paired into triples
  (T+, S+, S-). ``teacher_ratio`` (Figure 6) sets teacher positives per triple: 1 is the paper's equal numbers,
  0 none, 0.5 every other triple, 2 two each (capped by the distinct teacher positives the query has).
  ``source="teacher"`` (Table 4, "from Teacher") builds (T+, T-) pairs from the teacher's own labelled responses
  instead, for a classification-only reward model. A teacher positive may equal a student positive word for word (a
  warm-up student often reproduces its teacher, and the paper samples uniformly): such a pair has exactly zero
  gradient in the preference loss and is left out of the Pos/Pos accuracy (``train-rm`` counts them).
* RL queries (§3.4): the D_R queries (labelled, ``label_source=teacher_vote``) plus D_fail (no label).

Outputs in ``OUT`` (manifest last): ``rm_{train,validation}.parquet`` (one triple per record: ``question``, ``pos``,
``neg``, ``teacher`` list; queries split ``val_fraction`` by a seeded shuffle, no query in both),
``rl_train.parquet`` and ``counts.json`` (queries and responses per category).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
from pathlib import Path
from typing import Any

from verl_distill.io import MANIFEST, read_parquet_rows, write_manifest, write_parquet
from verl_distill.sample_stage import read_samples
from verl_distill.voting import answers_by_task, matches_label

logger = logging.getLogger(__name__)

SOURCES = ("student", "teacher")


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def draw_triples(pos: list[str], neg: list[str], teacher: list[str], *, rng: random.Random, per_query: int | None,
                 teacher_ratio: float) -> list[dict[str, Any]]:
    """One query's D_R triples (see the module docstring); ``[]`` when a kind is empty."""
    pos, neg, teacher = _unique(pos), _unique(neg), _unique(teacher)
    k = min(len(pos), len(neg), len(teacher) if teacher_ratio > 0 else len(pos))
    if per_query is not None:
        k = min(k, per_query)
    if k == 0:
        return []
    pos, neg = rng.sample(pos, k), rng.sample(neg, k)
    want = [int((i + 1) * teacher_ratio) - int(i * teacher_ratio) for i in range(k)]  # spreads a fractional ratio
    pool = rng.sample(teacher, min(len(teacher), sum(want)))
    triples, used = [], 0
    for i in range(k):
        take = pool[used:used + want[i]]
        used += len(take)
        triples.append({"pos": pos[i], "neg": neg[i], "teacher": take})
    return triples


def _split(keys: list[int], val_fraction: float, seed: int) -> set[int]:
    """Validation queries: a seeded ``val_fraction`` of them, at least one whenever there are two or more."""
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return set(order[:n_val])


def make_rm_data(vote_dir: str | os.PathLike, student_samples: str | os.PathLike, out: str | os.PathLike, *,
                 per_query: int | None = None, teacher_ratio: float = 1.0, source: str = "student",
                 val_fraction: float = 0.1, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Build D_S, D_R and the RL queries (see the module docstring); returns the manifest."""
    if source not in SOURCES:
        raise ValueError(f"source={source!r}: expected one of {SOURCES}")
    if teacher_ratio < 0 or not 0 <= val_fraction < 1:
        raise ValueError(f"need teacher_ratio >= 0 and 0 <= val_fraction < 1, got {teacher_ratio}, {val_fraction}")
    vote_dir, out = Path(vote_dir), Path(out)
    if (out / MANIFEST).exists() and not force:
        return json.loads((out / MANIFEST).read_text())
    for d, stage in ((vote_dir, "vote"), (Path(student_samples), "sample")):
        if not (d / MANIFEST).exists():
            raise FileNotFoundError(f"{d}: no {MANIFEST}; finish the {stage} stage first")
    labeled = read_parquet_rows(vote_dir / "rl_labeled.parquet")
    fail = read_parquet_rows(vote_dir / "fail.parquet") if (vote_dir / "fail.parquet").exists() else []
    teacher = read_parquet_rows(vote_dir / "teacher_samples.parquet")
    students = _student_answers(labeled, read_samples(Path(student_samples) / "samples.jsonl"))
    t_pos: dict[int, list[str]] = {}
    t_neg: dict[int, list[str]] = {}
    for s in teacher:
        (t_pos if s["positive"] else t_neg).setdefault(s["index"], []).append(s["response"])
    rng_seed, d_s, triples, rl = seed, [], {}, []
    counts = {"queries": len(labeled), "d_fail": len(fail), "student_pos": 0, "student_neg": 0, "teacher_pos": 0}
    for row in labeled:
        idx, label = row["extra_info"]["index"], row["reward_model"]["ground_truth"]
        answered = students.get(idx, [])
        pos = [t for t, a in answered if matches_label(a, label)]
        neg = [t for t, a in answered if not matches_label(a, label)]
        counts["student_pos"] += len(pos)
        counts["student_neg"] += len(neg)
        counts["teacher_pos"] += len(t_pos.get(idx, []))
        if not neg:
            continue
        d_s.append(idx)
        rng = random.Random(f"{rng_seed}:{idx}")
        if source == "teacher":
            got = draw_triples(t_pos.get(idx, []), t_neg.get(idx, []), [], rng=rng, per_query=per_query,
                               teacher_ratio=0.0)
        else:
            got = draw_triples(pos, neg, t_pos.get(idx, []), rng=rng, per_query=per_query,
                               teacher_ratio=teacher_ratio)
        if got:
            triples[idx] = [dict(t, index=idx, question=row["extra_info"]["question"]) for t in got]
            rl.append(row)
    if not triples:
        raise ValueError(f"D_R is empty ({len(d_s)} D_S queries of {len(labeled)}): no query has student positives, "
                         "student negatives and teacher positives; sample the student more, or check the labels")
    val = _split(list(triples), val_fraction, seed)
    parts = {"train": [t for i in sorted(triples) if i not in val for t in triples[i]],
             "validation": [t for i in sorted(triples) if i in val for t in triples[i]]}
    out.mkdir(parents=True, exist_ok=True)
    for split, records in parts.items():
        write_parquet(records, out / f"rm_{split}.parquet", kind="records")
    write_parquet(rl + fail, out / "rl_train.parquet", kind="rl")
    counts |= {"d_s": len(d_s), "d_r_queries": len(triples), "triples": sum(map(len, parts.values())),
               "train_triples": len(parts["train"]), "validation_triples": len(parts["validation"]),
               "teacher_in_triples": sum(len(t["teacher"]) for p in parts.values() for t in p),
               "rl_queries": len(rl) + len(fail)}
    (out / "counts.json").write_text(json.dumps(counts, indent=1) + "\n")
    info = {"stage": "make-rm-data", "vote": str(vote_dir.resolve()), "student_samples": str(student_samples),
            "source": source, "per_query": per_query, "teacher_ratio": teacher_ratio, "val_fraction": val_fraction,
            "seed": seed, "counts": counts}
    write_manifest(out, info)
    return info


def _student_answers(labeled: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[int, list[tuple]]:
    """index -> [(response, canonical answer)] of the student's samples (rows of ``rl_labeled.parquet``)."""
    if not records:
        raise ValueError("the student samples file is empty")
    flat = [(labeled[rec["row"]]["extra_info"], text) for rec in records for text in rec["responses"]]
    answers = answers_by_task([text for _, text in flat], [extra["task"] for extra, _ in flat])
    by_index: dict[int, list[tuple[str, str | None]]] = {}
    for (extra, text), answer in zip(flat, answers, strict=True):
        by_index.setdefault(extra["index"], []).append((text, answer))
    return by_index


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-rm-data`` subcommand."""
    p = subparsers.add_parser("make-rm-data", help="D_S, D_R triples and RL queries from student and teacher samples "
                              "(seed 000 §3.3-3.4)")
    p.add_argument("--vote", required=True, type=Path, help="output directory of verl-distill vote")
    p.add_argument("--student-samples", required=True, type=Path,
                   help="verl-distill sample output on the vote's rl_labeled.parquet")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--per-query", type=int, help="at most this many triples per query (default: all)")
    p.add_argument("--teacher-ratio", type=float, default=1.0, help="teacher positives per triple (Figure 6)")
    p.add_argument("--source", choices=SOURCES, default="student", help="teacher: (T+, T-) pairs (Table 4)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    info = make_rm_data(args.vote, args.student_samples, args.out, per_query=args.per_query,
                        teacher_ratio=args.teacher_ratio, source=args.source, val_fraction=args.val_fraction,
                        seed=args.seed, force=args.force)
    c = info["counts"]
    print(f"make-rm-data: {c['queries']} labelled queries, D_S {c['d_s']}, D_R {c['d_r_queries']} queries / "
          f"{c['triples']} triples ({c['train_triples']} train, {c['validation_triples']} validation); responses "
          f"S+ {c['student_pos']}, S- {c['student_neg']}, T+ {c['teacher_pos']}; RL queries {c['rl_queries']} "
          f"(D_fail {c['d_fail']}) -> {args.out}")
    return 0
