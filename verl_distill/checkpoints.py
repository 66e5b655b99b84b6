"""``verl-distill best-checkpoint``: the saved checkpoint of a verl run with the best logged validation metric.

verl has no early stopping; seed 000 selects its SFT and PPO checkpoints by validation accuracy. A run that saves a
checkpoint at every validation (``save_freq == test_freq``) and logs with verl's file logger is reduced here to its
best checkpoint: among the steps that have both a logged ``key`` and a ``global_step_N`` directory, the highest value
wins (the earliest on ties, i.e. where a patient early stop would have stopped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verl_distill.plots import read_metrics


def hf_dir(step_dir: Path) -> Path:
    """The Hugging Face export inside a ``global_step_N`` directory (RL runs keep the actor in its own folder)."""
    actor = step_dir / "actor" / "huggingface"
    return actor if actor.is_dir() else step_dir / "huggingface"


def best_checkpoint(run_dir: str | Path, key: str, metrics: str | Path | None = None) -> tuple[int, float, Path]:
    """(step, value, HF directory) of the best saved checkpoint by ``key``; clear errors when nothing qualifies."""
    run_dir = Path(run_dir)
    steps = read_metrics(metrics or run_dir / "metrics.jsonl")
    logged = {s: v[key] for s, v in steps.items() if key in v}
    if not logged:
        known = sorted({k for v in steps.values() for k in v if k.startswith("val")})
        raise ValueError(f"{run_dir}: no step logs {key!r}; validation keys logged: {known[:10]}")
    saved = {int(p.name.rsplit("_", 1)[1]): p for p in run_dir.glob("global_step_*") if hf_dir(p).is_dir()}
    both = sorted(set(logged) & set(saved))
    if not both:
        raise ValueError(f"{run_dir}: no saved checkpoint at a validated step (validated {sorted(logged)[:10]}, "
                         f"saved {sorted(saved)[:10]}): set trainer.save_freq equal to trainer.test_freq")
    best = max(both, key=lambda s: (logged[s], -s))
    return best, logged[best], hf_dir(saved[best])


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``best-checkpoint`` subcommand."""
    p = subparsers.add_parser("best-checkpoint", help="the saved checkpoint of a verl run with the best validation "
                              "metric (prints its HF directory)")
    p.add_argument("run_dir", type=Path, help="trainer.default_local_dir of the run")
    p.add_argument("--key", required=True, help="logged metric, e.g. val-core/gsm8k/acc/mean@1")
    p.add_argument("--metrics", type=Path, help="the file logger's output (default: RUN_DIR/metrics.jsonl)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    step, value, path = best_checkpoint(args.run_dir, args.key, args.metrics)
    print(path)
    print(f"best-checkpoint: step {step}, {args.key} = {value:.4f}", file=sys.stderr)
    return 0
