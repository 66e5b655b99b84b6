"""``verl-distill train-rm``: seed 000's reward model (§3.3, Eq. 4-6) on transformers' ``Trainer``.

The model is the warm-up student with a scalar head (``*ForSequenceClassification``, ``num_labels=1``, no head bias,
``problem_type="regression"``), so the exported directory is what vLLM's ``/classify`` (``use_activation: false``)
and verl's reward-model router serve, and its raw output is the reward ``r``.

Input of the model (the paper's ``R(q, a)``): ``[{"role": "user", "content": question}, {"role": "assistant",
"content": response}]`` rendered with the RM tokenizer's chat template (``add_generation_prompt=False``, a leading BOS
string stripped, as verl 0.9.1 renders a discriminative RM's input, extension-points doc §2.3). The question is the
raw question (``extra_info.question``), not the student's full prompt, so the RL reward (which gets no prompt from
verl) builds the same ids with :func:`rm_input_ids`.

Loss per batch of D_R triples, every sequence of the batch in ONE padded forward pass (:func:`rm_loss`):
``L = L_pref + lambda * L_cls`` with ``L_pref = mean -log sigma(r(T+) - r(S+)) + mean -log sigma(r(S+) - r(S-))``
(Eq. 5; the first term over the triples that carry teacher responses) and ``L_cls`` the mean BCE of ``sigma(r)``
against correctness over every response (Eq. 4: T+ and S+ are 1, S- is 0). ``loss="cls"`` keeps only ``L_cls``
(Table 4's "from Teacher" model, on ``make-rm-data --source teacher`` pairs), ``loss="pref"`` only ``L_pref``.

Evaluation every ``eval_steps`` on the validation triples gives seed 000 Table 3's accuracies, ``pos_neg``
(r(S+) > r(S-)) and ``pos_pos`` (r(T+) > r(S+), over the pairs whose texts differ; identical pairs are counted in
``identical_teacher_pairs``); early stopping and the exported model use the best ``metric``.
Checkpoints are the Trainer's (``OUT/trainer``): a rerun resumes from the last one; ``rm.json`` is written last.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from verl_distill.cli import add_config_flags, config_from_args
from verl_distill.io import MANIFEST, read_parquet_rows

logger = logging.getLogger(__name__)

INFO_FILE = "rm.json"
LOSSES = ("pref+cls", "cls", "pref")
METRICS = ("pos_neg", "pos_pos", "loss")


@dataclass
class RMTrainConfig:
    """Knobs of ``train-rm``; defaults are seed 000 Appendix B.2 (lr 5e-5, 4 epochs, lambda 0.5)."""

    lr: float = 5e-5
    epochs: float = 4.0
    batch_size: int = 16  # triples per step (B.2: 48 for a 1B student, 16 for 3B; each triple is 2-3 sequences)
    lam: float = 0.5
    loss: str = "pref+cls"
    max_length: int = 1024
    eval_steps: int = 50
    patience: int = 3
    metric: str = "pos_neg"
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    seed: int = 0
    bf16: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {LOSSES}")
        if self.metric not in METRICS:
            raise ValueError(f"metric={self.metric!r}: expected one of {METRICS}")
        if self.lam < 0 or self.lr <= 0 or self.batch_size < 1 or self.epochs <= 0:
            raise ValueError(f"need lam >= 0, lr > 0, batch_size >= 1, epochs > 0; got {self}")


def rm_input_ids(tokenizer: Any, question: str, response: str, *, max_length: int = 1024) -> list[int]:
    """Token ids the reward model scores for (question, response); over-long inputs keep their LAST tokens."""
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    if tokenizer.bos_token and text.startswith(tokenizer.bos_token):
        text = text[len(tokenizer.bos_token):]
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[-max_length:]


def encode_triples(path: Path, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """``rm_*.parquet`` triples as token ids: ``seqs`` = [S+, S-, T+...]."""
    items = []
    for i, rec in enumerate(read_parquet_rows(path)):
        for key in ("question", "pos", "neg", "teacher"):
            if key not in rec:
                raise ValueError(f"{path} record {i}: no {key!r} field; build the file with verl-distill make-rm-data")
        texts = [rec["pos"], rec["neg"], *rec["teacher"]]
        items.append({"seqs": [rm_input_ids(tokenizer, rec["question"], t, max_length=max_length) for t in texts],
                      "n_teacher": len(rec["teacher"])})
    if not items:
        raise ValueError(f"{path}: no triples; make-rm-data needs more D_R queries (sample the student more, or "
                         "raise --val-fraction for a validation split)")
    return items


class TripleCollator:
    """Pads every sequence of a batch of triples into one tensor and records who is who."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs, pos, neg, teacher, owner, labels = [], [], [], [], [], []
        for it in items:
            base = len(seqs)
            seqs += it["seqs"]
            pos.append(base)
            neg.append(base + 1)
            teacher += range(base + 2, base + 2 + it["n_teacher"])
            owner += [base] * it["n_teacher"]
            labels += [1.0, 0.0] + [1.0] * it["n_teacher"]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        as_long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
        return {"input_ids": ids, "attention_mask": mask, "pos": as_long(pos), "neg": as_long(neg),
                "teacher": as_long(teacher), "owner": as_long(owner), "cls_labels": torch.tensor(labels)}


def rm_loss(r: torch.Tensor, batch: dict[str, torch.Tensor], *, lam: float, loss: str) -> tuple[torch.Tensor, dict]:
    """Eq. 4-6 on the rewards ``r`` of a collated batch; returns the loss and its parts (floats)."""
    l_sn = -F.logsigmoid(r[batch["pos"]] - r[batch["neg"]]).mean()
    l_ts = (-F.logsigmoid(r[batch["teacher"]] - r[batch["owner"]]).mean() if batch["teacher"].numel()
            else r.new_zeros(()))
    l_cls = F.binary_cross_entropy_with_logits(r, batch["cls_labels"].to(r.dtype))
    l_pref = l_sn + l_ts
    total = {"pref+cls": l_pref + lam * l_cls, "cls": l_cls, "pref": l_pref}[loss]
    return total, {"pref_s": l_sn.item(), "pref_t": l_ts.item(), "cls": l_cls.item()}


def rewards(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The scalar reward of every sequence in a collated batch (float32)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1).float()


@torch.no_grad()
def pairwise_metrics(model: Any, loader: Any, *, lam: float, loss: str) -> dict[str, float]:
    """Table 3 accuracies (ties count as wrong), mean loss and mean rewards over a loader of triples."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = {"pos_neg": 0.0, "pos_pos": 0.0, "loss": 0.0, "r_pos": 0.0, "r_neg": 0.0, "r_teacher": 0.0}
    n = n_t = n_batches = n_same = 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        r = rewards(model, batch)
        sums["loss"] += rm_loss(r, batch, lam=lam, loss=loss)[0].item()
        sums["pos_neg"] += (r[batch["pos"]] > r[batch["neg"]]).sum().item()
        distinct = _distinct(batch)
        sums["pos_pos"] += (r[batch["teacher"]] > r[batch["owner"]])[distinct].sum().item()
        n_same += int((~distinct).sum())
        sums["r_pos"] += r[batch["pos"]].sum().item()
        sums["r_neg"] += r[batch["neg"]].sum().item()
        sums["r_teacher"] += r[batch["teacher"]].sum().item()
        n, n_t, n_batches = n + len(batch["pos"]), n_t + int(distinct.sum()), n_batches + 1
    model.train(was_training)
    nan = math.nan
    return {"pos_neg": sums["pos_neg"] / n, "pos_pos": sums["pos_pos"] / n_t if n_t else nan,
            "loss": sums["loss"] / n_batches, "r_pos": sums["r_pos"] / n, "r_neg": sums["r_neg"] / n,
            "r_teacher": sums["r_teacher"] / max(n_t + n_same, 1) if n_t + n_same else nan, "triples": n,
            "teacher_pairs": n_t, "identical_teacher_pairs": n_same}


def _distinct(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mask of the (T+, S+) pairs whose token ids differ (an identical pair is a tie by construction)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    t, o = batch["teacher"], batch["owner"]
    same = (ids[t] == ids[o]).all(-1) & (mask[t] == mask[o]).all(-1)
    return ~same


def train_rm(data_dir: str | Path, init: str | Path, out: str | Path, cfg: RMTrainConfig | None = None) -> dict:
    """Train, early-stop and export the reward model (see the module docstring); returns ``rm.json``'s content."""
    from torch.utils.data import DataLoader
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    cfg = cfg or RMTrainConfig()
    data_dir, out = Path(data_dir), Path(out)
    if not (data_dir / MANIFEST).exists():
        raise FileNotFoundError(f"{data_dir}: no {MANIFEST}; build the triples with verl-distill make-rm-data")
    tok = AutoTokenizer.from_pretrained(init)
    if tok.pad_token_id is None:
        raise ValueError(f"{init}: the tokenizer has no pad token; set one (distinct from EOS) before training")
    train = encode_triples(data_dir / "rm_train.parquet", tok, cfg.max_length)
    val = encode_triples(data_dir / "rm_validation.parquet", tok, cfg.max_length)
    collate = TripleCollator(tok.pad_token_id)
    model = AutoModelForSequenceClassification.from_pretrained(
        init, num_labels=1, problem_type="regression", pad_token_id=tok.pad_token_id,
        dtype=torch.bfloat16 if cfg.bf16 else torch.float32)
    val_loader = DataLoader(val, batch_size=cfg.batch_size, collate_fn=collate)

    class RMTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            loss, _ = rm_loss(rewards(model, inputs), inputs, lam=cfg.lam, loss=cfg.loss)
            return loss

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval") -> dict:  # noqa: ANN001
            metrics = {f"{metric_key_prefix}_{k}": v
                       for k, v in pairwise_metrics(self.model, val_loader, lam=cfg.lam, loss=cfg.loss).items()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=cfg.batch_size, num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, seed=cfg.seed,
        eval_strategy="steps", eval_steps=cfg.eval_steps, save_strategy="steps", save_steps=cfg.eval_steps,
        save_total_limit=2, load_best_model_at_end=True, metric_for_best_model=f"eval_{cfg.metric}",
        greater_is_better=cfg.metric != "loss", logging_steps=max(1, cfg.eval_steps // 5), report_to="none",
        remove_unused_columns=False, bf16=cfg.bf16, gradient_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=0, use_cpu=not torch.cuda.is_available())
    trainer = RMTrainer(model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=collate,
                        callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.patience)])
    before = pairwise_metrics(model, val_loader, lam=cfg.lam, loss=cfg.loss)
    resume = any((out / "trainer").glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    after = pairwise_metrics(trainer.model, val_loader, lam=cfg.lam, loss=cfg.loss)
    trainer.save_model(str(out))
    tok.save_pretrained(str(out))
    info = {"init": str(init), "data": str(data_dir), "config": asdict(cfg), "train_triples": len(train),
            "validation_triples": len(val), "steps": trainer.state.global_step, "train_loss": result.training_loss,
            "best_checkpoint": trainer.state.best_model_checkpoint, "resumed": resume,
            "validation_before": before, "validation": after}
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")  # last: marks a complete output
    return info


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-rm`` subcommand."""
    p = subparsers.add_parser("train-rm", help="seed 000's BT + BCE reward model on D_R triples (transformers Trainer)")
    p.add_argument("--data", required=True, type=Path, help="output directory of verl-distill make-rm-data")
    p.add_argument("--init", required=True, type=Path, help="the warm-up student (HF directory)")
    p.add_argument("--out", required=True, type=Path)
    add_config_flags(p, RMTrainConfig())
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if (args.out / INFO_FILE).exists():
        info = json.loads((args.out / INFO_FILE).read_text())
        print(f"train-rm: {args.out} is complete (delete {INFO_FILE} to retrain)")
    else:
        cfg = config_from_args(RMTrainConfig, args)
        info = train_rm(args.data, args.init, args.out, cfg)
    b, a = info["validation_before"], info["validation"]
    print(f"train-rm: {info['steps']} steps on {info['train_triples']} triples; validation Pos/Neg "
          f"{b['pos_neg']:.3f} -> {a['pos_neg']:.3f}, Pos/Pos {b['pos_pos']:.3f} -> {a['pos_pos']:.3f} "
          f"({info['validation_triples']} triples; Pos/Pos over {a['teacher_pairs']} distinct pairs, "
          f"{a['identical_teacher_pairs']} identical left out) -> {args.out}")
    return 0
