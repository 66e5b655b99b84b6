"""``verl-distill train-judge``: SFT of a small Yes/No judge on correct and incorrect solutions (the CPU demo's judge).

Why (issue 3 §6): on a CPU machine the judge of seed 002 is a tiny LM that must first learn to answer Yes/No, or its
reward carries no signal. Trained with verl's ``sft_trainer`` (shuffled rows, loss on ``Yes<|im_end|>``) the tiny
teacher learned nothing in 1,500 steps (held-out pairwise accuracy 0.53); in a sweep the decisive difference was
EXACTLY balanced batches (half Yes, half No): with them it reached 0.74-0.90 in 400-1,000 steps (issue 3 note).
So this is transformers' ``Trainer`` with a balanced batch sampler and the loss on the verdict token only.

Input: ``judge_{train,validation}.parquet`` of ``verl-distill make-judge-data`` (user = the judge prompt rendered with
the data's ``judge_template``, assistant = ``Yes``/``No``). A row is tokenized as the served judge sees it
(``judge.chat_prompt_ids``: the judge's own chat template, generation prompt on, thinking off), then the verdict
token (the only label), nothing after it.
Output in ``OUT``: the model and tokenizer (a causal LM, servable by vLLM as any judge), ``judge.json`` (template,
config, counts, pairwise accuracy before/after on ``pairwise_validation.parquet``), written last; a rerun with
``judge.json`` present is skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from verl_distill.cli import add_config_flags, config_from_args
from verl_distill.io import MANIFEST, read_parquet_rows
from verl_distill.judge import chat_prompt_ids
from verl_distill.judge_data import VERDICTS, judge_pairwise, yes_no_ids

logger = logging.getLogger(__name__)

INFO_FILE = "judge.json"


@dataclass(frozen=True)
class JudgeTrainConfig:
    """Training knobs (defaults: the CPU demo's, from the sweep in the issue 3 note)."""

    steps: int = 600
    lr: float = 5e-4
    batch_size: int = 32  # half Yes, half No in every batch
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0


class BalancedBatches:
    """Batches of ``batch_size`` indices, half drawn from ``positives`` and half from ``negatives`` (with replacement,
    seeded); ``steps`` batches in all."""

    def __init__(self, positives: list[int], negatives: list[int], *, batch_size: int, steps: int, seed: int):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size={batch_size}: must be even (half Yes, half No)")
        if not positives or not negatives:
            raise ValueError(f"need Yes and No rows, got {len(positives)} Yes and {len(negatives)} No")
        self.positives, self.negatives = positives, negatives
        self.batch_size, self.steps, self.seed = batch_size, steps, seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed)
        half = self.batch_size // 2
        for _ in range(self.steps):
            batch = rng.choices(self.positives, k=half) + rng.choices(self.negatives, k=half)
            rng.shuffle(batch)
            yield batch


def encode_rows(path: Path, tokenizer: Any) -> list[dict[str, Any]]:
    """``{input_ids, labels}`` per SFT row: chat-template prompt + verdict token; the loss sees only the verdict."""
    verdict_ids = dict(zip(VERDICTS.values(), yes_no_ids(tokenizer), strict=True))
    examples = []
    for i, row in enumerate(read_parquet_rows(path)):
        messages = list(row["messages"])
        if len(messages) != 2 or messages[0]["role"] != "user" or messages[1]["role"] != "assistant" \
                or messages[1]["content"] not in verdict_ids:
            raise ValueError(f"{path}: row {i}: expected [user: judge prompt, assistant: Yes|No], got "
                             f"{[(m['role'], m['content'][:40]) for m in messages]}; build it with make-judge-data")
        prompt = chat_prompt_ids(tokenizer, messages[0]["content"])
        target = verdict_ids[messages[1]["content"]]
        examples.append({"input_ids": [*prompt, target], "labels": [-100] * len(prompt) + [target]})
    return examples


def train_judge(data_dir: str | os.PathLike, init: str | os.PathLike, out: str | os.PathLike,
                cfg: JudgeTrainConfig = JudgeTrainConfig()) -> dict[str, Any]:
    """Train, evaluate and save a Yes/No judge; returns what ``judge.json`` holds."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    data_dir, out = Path(data_dir), Path(out)
    manifest = json.loads((data_dir / MANIFEST).read_text()) if (data_dir / MANIFEST).exists() else None
    if manifest is None:
        raise FileNotFoundError(f"{data_dir}: no {MANIFEST}; build the data with verl-distill make-judge-data")
    tok = AutoTokenizer.from_pretrained(init)
    train = encode_rows(data_dir / "judge_train.parquet", tok)
    yes_id = yes_no_ids(tok)[0]
    positives = [i for i, ex in enumerate(train) if ex["labels"][-1] == yes_id]
    negatives = [i for i, ex in enumerate(train) if ex["labels"][-1] != yes_id]
    batches = BalancedBatches(positives, negatives, batch_size=cfg.batch_size, steps=cfg.steps, seed=cfg.seed)
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)

    class BalancedTrainer(Trainer):
        def get_train_dataloader(self) -> DataLoader:
            return DataLoader(train, batch_sampler=batches, collate_fn=collator, num_workers=0)

    model = AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=cfg.batch_size, max_steps=cfg.steps,
        learning_rate=cfg.lr, warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay,
        lr_scheduler_type="constant_with_warmup", logging_steps=50, save_strategy="no", report_to="none",
        seed=cfg.seed, dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(), disable_tqdm=False)
    before = judge_pairwise(init, data_dir) if (data_dir / "pairwise_validation.parquet").exists() else None
    result = BalancedTrainer(model=model, args=args, train_dataset=train, data_collator=collator).train()
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    after = judge_pairwise(out, data_dir) if before is not None else None
    info = {"template": manifest["templates"]["judge"], "init": str(init), "data": str(data_dir),
            "config": asdict(cfg), "counts": {"train_rows": len(train), "yes": len(positives), "no": len(negatives)},
            "train_loss": result.training_loss, "pairwise_before": before, "pairwise_after": after}
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")  # last: marks a complete output
    return info


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-judge`` subcommand."""
    p = subparsers.add_parser("train-judge", help="SFT of a small Yes/No judge on make-judge-data rows "
                              "(balanced batches, loss on the verdict token)")
    p.add_argument("--data", required=True, type=Path, help="output directory of verl-distill make-judge-data")
    p.add_argument("--init", required=True, type=Path, help="causal LM (HF directory) to start from")
    p.add_argument("--out", required=True, type=Path)
    add_config_flags(p, JudgeTrainConfig())
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if (args.out / INFO_FILE).exists():
        info = json.loads((args.out / INFO_FILE).read_text())
        print(f"{args.out}: complete ({INFO_FILE} present), skipped; delete it to retrain")
    else:
        info = train_judge(args.data, args.init, args.out, config_from_args(JudgeTrainConfig, args))
    line = f"judge -> {args.out}: {info['config']['steps']} steps on {info['counts']['train_rows']} rows " \
           f"({info['counts']['yes']} Yes / {info['counts']['no']} No), train loss {info['train_loss']:.4f}"
    if info["pairwise_after"]:
        b, a = info["pairwise_before"], info["pairwise_after"]
        line += (f"; held-out pairwise accuracy {b['pairwise_accuracy']:.3f} -> {a['pairwise_accuracy']:.3f} "
                 f"({a['n']} pairs; mean P(Yes) correct {a['mean_correct']:.3f}, incorrect {a['mean_incorrect']:.3f})")
    print(line)
    return 0
