"""``verl-distill bench rm``: training throughput and peak memory of ``train-rm`` vs. TRL's ``RewardTrainer``.

Both trainers get the same model (a ``num_labels=1`` head on the same initial weights), the same sequences and the
same number of sequences per step, in one process, one after the other (order alternates by ``--order``):

* ours: batches of D_R triples (S+, S-, T+), every sequence of a batch in ONE padded forward pass, loss
  ``L_pref + 0.5 L_cls`` (:mod:`verl_distill.train_rm`);
* TRL (Bradley-Terry only): each triple as its two preference pairs (S+ over S-, T+ over S+), pre-tokenized; its
  batch is 1.5x as many pairs as ours has triples, so a step has the same number of sequences.

Each trainer runs in its own fresh process. Printed per trainer: steps/s, sequences/s, training tokens/s (non-pad
tokens in the forward passes, which is what both trainers compute on) and peak memory (CUDA:
``max_memory_allocated``; CPU: the process's peak RSS growth during training), then the ratios ours / TRL (target:
at least parity in tokens/s). Data: a make-rm-data directory (``--data``), or triples built from synthetic problems
(gold program = S+, and T+ with ``result`` renamed; a one-site perturbation = S-) when no data is given. Single runs
on a shared machine are noisy: compare ratios from one run, and repeat.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def synthetic_triples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Triples from synthetic problems: S+ = gold program, S- = a perturbed one, T+ = gold with renamed result."""
    from data_prep import synthetic_arith
    from verl_distill.io import read_parquet_rows
    from verl_distill.judge_data import PERTURBATIONS, perturb_program

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_arith.main(["--output-dir", tmp, "--splits", f"train={n},validation=1,test=1", "--seed", str(seed)])
        rows = read_parquet_rows(Path(tmp) / "train.parquet")
    triples = []
    for row in rows:
        gold = row["extra_info"]["reference"]
        wrong = next((w for k in PERTURBATIONS if (w := perturb_program(gold, k, rng))), None)
        if wrong:
            triples.append({"question": row["extra_info"]["question"], "pos": gold, "neg": wrong,
                            "teacher": [gold.replace("result", "answer")]})
    return triples


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_reset() -> float:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return 0.0
    return _peak_rss_mb()


def _memory_peak(base: float) -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return max(0.0, _peak_rss_mb() - base)


def run_ours(model_dir: str, triples: list[dict], *, steps: int, batch: int, max_length: int, out: Path) -> dict:
    """Train ``steps`` steps of train-rm's loss with transformers' Trainer; throughput numbers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from verl_distill.train_rm import TripleCollator, rewards, rm_input_ids, rm_loss

    tok = AutoTokenizer.from_pretrained(model_dir)
    items = [{"seqs": [rm_input_ids(tok, t["question"], r, max_length=max_length)
                       for r in (t["pos"], t["neg"], *t["teacher"])], "n_teacher": len(t["teacher"])} for t in triples]
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, pad_token_id=tok.pad_token_id)
    counted = {"tokens": 0, "seqs": 0}

    class Ours(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            counted["tokens"] += int(inputs["attention_mask"].sum())
            counted["seqs"] += len(inputs["input_ids"])
            return rm_loss(rewards(model, inputs), inputs, lam=0.5, loss="pref+cls")[0]

    args = TrainingArguments(output_dir=str(out / "ours"), per_device_train_batch_size=batch, max_steps=steps,
                             learning_rate=1e-4, report_to="none", save_strategy="no", logging_steps=steps,
                             remove_unused_columns=False, disable_tqdm=True, use_cpu=not torch.cuda.is_available())
    trainer = Ours(model=model, args=args, train_dataset=items, data_collator=TripleCollator(tok.pad_token_id))
    return _timed(trainer, counted, steps)


def run_trl(model_dir: str, triples: list[dict], *, steps: int, batch: int, max_length: int, out: Path) -> dict:
    """Train ``steps`` steps of TRL's RewardTrainer (Bradley-Terry) on the triples' preference pairs."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from verl_distill.train_rm import rm_input_ids

    tok = AutoTokenizer.from_pretrained(model_dir)
    pairs = []
    for t in triples:
        ids = {k: rm_input_ids(tok, t["question"], r, max_length=max_length)
               for k, r in (("pos", t["pos"]), ("neg", t["neg"]), ("teacher", t["teacher"][0]))}
        pairs += [{"chosen_ids": ids["pos"], "rejected_ids": ids["neg"]},
                  {"chosen_ids": ids["teacher"], "rejected_ids": ids["pos"]}]
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, pad_token_id=tok.pad_token_id)
    counted = {"tokens": 0, "seqs": 0}

    class CountingTRL(RewardTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            counted["tokens"] += int(inputs["attention_mask"].sum())
            counted["seqs"] += len(inputs["input_ids"])
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    args = RewardConfig(output_dir=str(out / "trl"), per_device_train_batch_size=batch, max_steps=steps,
                        learning_rate=1e-4, report_to="none", save_strategy="no", logging_steps=steps,
                        max_length=max_length, disable_tqdm=True, use_cpu=not torch.cuda.is_available())
    trainer = CountingTRL(model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tok)
    return _timed(trainer, counted, steps)


def _timed(trainer: Any, counted: dict, steps: int) -> dict:
    base = _memory_reset()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "steps_per_s": steps / seconds, "seqs_per_s": counted["seqs"] / seconds,
            "tokens_per_s": counted["tokens"] / seconds, "tokens": counted["tokens"], "peak_mb": _memory_peak(base)}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench rm``."""
    p = subparsers.add_parser("rm", help="train-rm vs TRL RewardTrainer: tokens/s and peak memory")
    p.add_argument("--model", help="initial model (HF dir; default: the tiny student built in a temp dir)")
    p.add_argument("--data", type=Path, help="make-rm-data directory (default: synthetic triples)")
    p.add_argument("--triples", type=int, default=512, help="synthetic triples when --data is not given")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16, help="triples per step (TRL: 1.5x as many pairs)")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--order", choices=("ours-first", "trl-first"), default="ours-first")
    p.add_argument("--out", type=Path, help="write the numbers as JSON here")
    p.set_defaults(func=_run)


def worker(name: str, model: str, triples_file: str, steps: int, batch: int, max_length: int) -> None:
    """One trainer in this (fresh) process; prints its numbers as one JSON line."""
    triples = json.loads(Path(triples_file).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        kw = {"steps": steps, "max_length": max_length, "out": Path(tmp)}
        if name == "ours":
            result = run_ours(model, triples, batch=batch, **kw)
        else:  # 3 sequences per triple for us, 2 per pair for TRL: 1.5x the pairs gives the same sequences per step
            result = run_trl(model, triples, batch=batch * 3 // 2, **kw)
    print("BENCH_RM " + json.dumps(result))


def _run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from verl_distill.io import read_parquet_rows
    from verl_distill.tiny import build_tiny

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            build_tiny(Path(tmp) / "tiny", seed=0)
            model = str(Path(tmp) / "tiny" / "student")
        if args.data:
            triples = [t for t in read_parquet_rows(args.data / "rm_train.parquet") if t["teacher"]]
        else:
            triples = synthetic_triples(args.triples)
        triples = [{"question": t["question"], "pos": t["pos"], "neg": t["neg"], "teacher": list(t["teacher"])[:1]}
                   for t in triples]  # one T+ each: 3 sequences, 2 TRL pairs
        path = Path(tmp) / "triples.json"
        path.write_text(json.dumps(triples))
        order = ("ours", "trl") if args.order == "ours-first" else ("trl", "ours")
        runs = {}
        for name in order:
            code = (f"from verl_distill.bench.rm import worker; worker({name!r}, {model!r}, {str(path)!r}, "
                    f"{args.steps}, {args.batch_size}, {args.max_length})")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            lines = [x for x in done.stdout.splitlines() if x.startswith("BENCH_RM ")]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"bench rm: the {name} trainer failed (exit {done.returncode}):\n"
                                   f"{done.stderr[-3000:]}")
            runs[name] = json.loads(lines[-1][len("BENCH_RM "):])
    print(f"bench rm: {len(triples)} triples, {args.steps} steps, {args.batch_size} triples per step "
          f"({'cuda' if torch.cuda.is_available() else 'cpu'}, order {args.order}, one process per trainer)")
    print(f"{'trainer':<8} {'steps/s':>8} {'seq/s':>8} {'tokens/s':>10} {'peak MB':>8}")
    for name, r in runs.items():
        print(f"{name:<8} {r['steps_per_s']:>8.2f} {r['seqs_per_s']:>8.1f} {r['tokens_per_s']:>10.0f} "
              f"{r['peak_mb']:>8.0f}")
    ratio = runs["ours"]["tokens_per_s"] / runs["trl"]["tokens_per_s"]
    mem = runs["ours"]["peak_mb"] / runs["trl"]["peak_mb"] if runs["trl"]["peak_mb"] else float("nan")
    print(f"ours / TRL: tokens/s {ratio:.2f}x (target >= 1.0), peak memory {mem:.2f}x")
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "ratio_tokens_per_s": ratio, "ratio_peak_memory": mem,
                                        "args": vars(args)}, default=str, indent=1) + "\n")
    return 0
