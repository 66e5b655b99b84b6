"""``verl-distill vote``: pseudo-labels from teacher samples and the datasets built on them (seed 000 §3.1-3.2).

Flow: the teacher's ``samples.jsonl`` (``verl-distill sample``) -> canonical answers of every response
(:func:`verl_distill.voting.response_answers`) -> per query, the majority vote over the HIGH-confidence responses
(threshold 0.7, :func:`verl_distill.voting.majority_vote`) -> the pseudo-label y* propagated to every response of
the query, low-confidence ones included (positive iff its answer is y*) -> outputs in ``OUT`` (manifest last):

* ``sft.parquet``: D_sft (Eq. 1), every teacher response whose answer is y*, as SFT rows under the STUDENT's prompt
  (``--student-rows``, matched by ``extra_info.index``; default: the sampled rows themselves);
* ``rl_labeled.parquet``: the queries with a pseudo-label as RL rows, ``label_source=teacher_vote``, y* as ground
  truth (the student's prompt); ``fail.parquet``: D_fail, ``label_source=none``, no ground truth;
* ``votes.parquet``: one record per query (label, share, reason, gold and whether the label is right where the rows
  carry gold labels), ``teacher_samples.parquet``: every response with its answer and label (later stages' input);
* ``report.json`` and ``pseudo_labels.png`` (seed 000 Figures 3-4): the share of queries without a reliable
  pseudo-label and, where gold labels exist, how often the pseudo-label is right.

Gold labels, when the rows have them (``label_source=gold``), are used ONLY for the report: nothing written for
training carries them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from verl_distill.extract.equivalence import answers_equivalent
from verl_distill.extract.pipelines import get_pipeline, pipeline_for_task
from verl_distill.io import MANIFEST, read_parquet_rows, write_manifest, write_parquet
from verl_distill.sample_stage import HIGH, read_samples
from verl_distill.schema import make_rl_row, make_sft_row
from verl_distill.voting import DEFAULT_THRESHOLD, answers_by_task, majority_vote, matches_label

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("sft.parquet", "rl_labeled.parquet", "fail.parquet", "votes.parquet", "teacher_samples.parquet")


def answer_kind(task: str) -> str:
    """Equivalence kind (numeric, latex, mc) of a task's answers."""
    return get_pipeline(pipeline_for_task(task)).kind


def _gold(row: dict[str, Any]) -> str | None:
    if row["extra_info"]["label_source"] != "gold":
        return None
    return str(row["reward_model"]["ground_truth"]) or None


def _student_rows(rows: list[dict[str, Any]], student_rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The student's row for every sampled row, matched by ``extra_info.index``."""
    if student_rows is None:
        return rows
    by_index = {r["extra_info"]["index"]: r for r in student_rows}
    missing = [r["extra_info"]["index"] for r in rows if r["extra_info"]["index"] not in by_index]
    if missing:
        raise ValueError(f"--student-rows has no row with extra_info.index {missing[:5]} (of {len(missing)}): both "
                         "files must come from the same source rows")
    return [by_index[r["extra_info"]["index"]] for r in rows]


def _labeled_row(student: dict[str, Any], label: str | None) -> dict[str, Any]:
    extra = dict(student["extra_info"], label_source="teacher_vote" if label else "none", reference="")
    return make_rl_row(data_source=student["data_source"], prompt=list(student["prompt"]), ground_truth=label or "",
                       extra_info=extra, ability=student.get("ability", "math"))


def vote_samples(rows_path: str | os.PathLike, samples_dir: str | os.PathLike, out: str | os.PathLike, *,
                 threshold: float = DEFAULT_THRESHOLD, student_rows: str | os.PathLike | None = None,
                 force: bool = False) -> dict[str, Any]:
    """Run the stage (see the module docstring); returns the manifest. A finished ``out`` is reused unless ``force``."""
    out, samples_dir = Path(out), Path(samples_dir)
    if (out / MANIFEST).exists() and not force:
        return json.loads((out / MANIFEST).read_text())
    if not (samples_dir / MANIFEST).exists():
        raise FileNotFoundError(f"{samples_dir}: no {MANIFEST}; finish the sampling stage first (verl-distill sample)")
    rows = read_parquet_rows(rows_path)
    students = _student_rows(rows, read_parquet_rows(student_rows) if student_rows else None)
    records = read_samples(samples_dir / "samples.jsonl")
    by_row: dict[int, list[dict[str, Any]]] = {}
    for rec in records:
        if rec["row"] >= len(rows):
            raise ValueError(f"{samples_dir}: sample record for row {rec['row']} but {rows_path} has {len(rows)} rows "
                             "(not the file that was sampled?)")
        by_row.setdefault(rec["row"], []).append(rec)
    flat = [(r, rec, text) for r in sorted(by_row) for rec in by_row[r] for text in rec["responses"]]
    answers = answers_by_task([text for _, _, text in flat], [rows[r]["extra_info"]["task"] for r, _, _ in flat])
    votes, samples, sft, labeled, fail = [], [], [], [], []
    items_of: dict[int, list[tuple[int, dict[str, Any], str]]] = {}
    for i, (r, rec, text) in enumerate(flat):
        items_of.setdefault(r, []).append((i, rec, text))
    for r in range(len(rows)):
        items = items_of.get(r, [])
        vote = majority_vote([answers[i] for i, rec, _ in items if rec["confidence"] == HIGH], threshold=threshold)
        gold, kind = _gold(rows[r]), answer_kind(rows[r]["extra_info"]["task"])
        right = None if gold is None or vote.label is None else answers_equivalent(vote.label, gold, kind=kind)
        votes.append({"row": r, "index": rows[r]["extra_info"]["index"], "label": vote.label or "",
                      "share": vote.share, "total": vote.total, "reason": vote.reason, "gold": gold or "",
                      "label_correct": -1 if right is None else int(right), "counts": json.dumps(vote.counts)})
        for i, rec, text in items:
            positive = vote.label is not None and matches_label(answers[i], vote.label)
            truly = None if gold is None or answers[i] is None else answers_equivalent(answers[i], gold, kind=kind)
            samples.append({"row": r, "index": rows[r]["extra_info"]["index"], "temperature": rec["temperature"],
                            "confidence": rec["confidence"], "response": text, "answer": answers[i] or "",
                            "positive": positive, "gold_correct": -1 if gold is None else int(bool(truly))})
            if positive:
                messages = list(students[r]["prompt"]) + [{"role": "assistant", "content": text}]
                extra = dict(students[r]["extra_info"], label_source="teacher_vote", reference="")
                sft.append(make_sft_row(messages=messages, extra_info=extra))
        (labeled if vote.label else fail).append(_labeled_row(students[r], vote.label))
    if not sft:
        raise ValueError(f"no teacher response in {samples_dir} agrees with a pseudo-label ({len(fail)} of "
                         f"{len(rows)} queries in D_fail at threshold {threshold}): check the teacher's outputs and "
                         "the task's answer format, or lower --threshold")
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(sft, out / "sft.parquet", kind="sft")
    for name, part in (("rl_labeled.parquet", labeled), ("fail.parquet", fail)):
        if part:  # verl cannot read an empty parquet: an empty part is left out (its count, 0, is in the manifest)
            write_parquet(part, out / name, kind="rl")
    write_parquet(votes, out / "votes.parquet", kind="records")
    write_parquet(samples, out / "teacher_samples.parquet", kind="records")
    report = vote_report(votes, samples, threshold=threshold)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot_votes(votes, out / "pseudo_labels.png")
    info = {"stage": "vote", "rows": str(Path(rows_path).resolve()), "samples": str(samples_dir.resolve()),
            "student_rows": str(student_rows or ""), "threshold": threshold,
            "files": {"sft.parquet": len(sft), "rl_labeled.parquet": len(labeled), "fail.parquet": len(fail)},
            "report": report}
    write_manifest(out, info)
    return info


def vote_report(votes: list[dict[str, Any]], samples: list[dict[str, Any]], *, threshold: float) -> dict[str, Any]:
    """Counts of seed 000 Figures 3-4: queries without a pseudo-label, pseudo-label accuracy against gold."""
    n = len(votes)
    labeled = [v for v in votes if v["label"]]
    graded = [v for v in labeled if v["label_correct"] >= 0]
    positives = [s for s in samples if s["positive"]]
    graded_pos = [s for s in positives if s["gold_correct"] >= 0]
    return {
        "threshold": threshold, "queries": n, "with_label": len(labeled), "fail": n - len(labeled),
        "fail_fraction": (n - len(labeled)) / n if n else 0.0,
        "fail_reasons": dict(Counter(v["reason"] for v in votes if not v["label"])),
        "labels_checked_against_gold": len(graded),
        "label_accuracy": sum(v["label_correct"] for v in graded) / len(graded) if graded else None,
        "samples": len(samples), "positive_samples": len(positives),
        "unextractable_samples": sum(1 for s in samples if not s["answer"]),
        "positive_sample_precision": (sum(s["gold_correct"] for s in graded_pos) / len(graded_pos)
                                      if graded_pos else None),
    }


def plot_votes(votes: list[dict[str, Any]], path: Path) -> None:
    """PNG: where each query ended (right / wrong / unchecked label, no label), and vote shares by outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {"label right": [v for v in votes if v["label"] and v["label_correct"] == 1],
              "label wrong": [v for v in votes if v["label"] and v["label_correct"] == 0],
              "label (no gold)": [v for v in votes if v["label"] and v["label_correct"] < 0],
              "no label (D_fail)": [v for v in votes if not v["label"]]}
    colors = dict(zip(groups, ("tab:green", "tab:red", "tab:gray", "tab:orange"), strict=True))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(list(groups), [len(g) / max(len(votes), 1) for g in groups.values()], color=list(colors.values()))
    left.set_ylabel("fraction of queries")
    left.set_title("pseudo-labels (seed 000 Fig. 3)")
    left.tick_params(axis="x", labelsize=8)
    for name, group in groups.items():
        if group:
            right.hist([v["share"] for v in group], bins=20, range=(0, 1), alpha=0.6, label=name, color=colors[name])
    right.set_xlabel("share of the top answer among high-confidence samples")
    right.set_ylabel("queries")
    right.set_title("vote shares (seed 000 Fig. 4)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``vote`` subcommand."""
    p = subparsers.add_parser("vote", help="majority-vote pseudo-labels from teacher samples; D_sft, labeled RL "
                              "rows, D_fail and a report (seed 000 §3.1-3.2)")
    p.add_argument("--rows", required=True, type=Path, help="the RL parquet the teacher was sampled on")
    p.add_argument("--samples", required=True, type=Path, help="output directory of verl-distill sample")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="top answer's share must exceed this")
    p.add_argument("--student-rows", type=Path, help="RL parquet with the student's prompts (default: --rows)")
    p.add_argument("--force", action="store_true", help="redo a finished stage")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    info = vote_samples(args.rows, args.samples, args.out, threshold=args.threshold, student_rows=args.student_rows,
                        force=args.force)
    rep = info["report"]
    acc = "n/a" if rep["label_accuracy"] is None else f"{rep['label_accuracy']:.3f}"
    print(f"vote: {rep['queries']} queries, {rep['with_label']} pseudo-labelled, {rep['fail']} in D_fail "
          f"({rep['fail_fraction']:.1%}); label accuracy vs gold {acc} on {rep['labels_checked_against_gold']}; "
          f"D_sft {info['files']['sft.parquet']} responses -> {args.out}")
    return 0

