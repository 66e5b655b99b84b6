"""``verl-distill eval``: greedy-decoding accuracy of one or more checkpoints on a fixed set of RL rows.

Responses are scored by the same reward file verl loads for validation (``reward_fns/pot_verifiable.py`` by
default), through verl's own loader, so the numbers equal verl's ``val-core/<source>/acc/mean@1`` for the same
model and rows. Reported per model: fraction of runnable programs, accuracy with a 95% Wilson interval, mean reward;
and for each later model an exact McNemar test against the model before it on the same questions (did it
really change?).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from verl_distill.io import read_parquet_rows

logger = logging.getLogger(__name__)

DEFAULT_REWARD = Path(__file__).resolve().parents[1] / "reward_fns" / "pot_verifiable.py"


@dataclass(frozen=True)
class EvalResult:
    """Greedy-decoding metrics of one model on one set of rows."""

    model: str
    n: int
    runnable: float
    accuracy: float
    acc_low: float
    acc_high: float
    mean_reward: float
    correct: tuple[int, ...]  # per row, for paired tests


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(before: Sequence[int], after: Sequence[int]) -> tuple[int, int, float]:
    """Exact two-sided McNemar test: (only-before-correct, only-after-correct, p-value)."""
    if len(before) != len(after):
        raise ValueError(f"paired test needs equal lengths, got {len(before)} and {len(after)}")
    b = sum(1 for x, y in zip(before, after, strict=True) if x and not y)
    c = sum(1 for x, y in zip(before, after, strict=True) if y and not x)
    n = b + c
    if n == 0:
        return b, c, 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2**n
    return b, c, min(1.0, 2 * tail)


def load_reward(path: str | Path = DEFAULT_REWARD, name: str = "compute_score") -> Callable[..., dict]:
    """Load a reward function the way verl does (by file path)."""
    from verl.utils.import_utils import load_extern_object

    return load_extern_object(str(path), name)


def generate_greedy(model_dir: str | Path, rows: list[dict[str, Any]], *, max_new_tokens: int,
                    batch_size: int = 64) -> list[str]:
    """Greedy responses to each row's chat prompt (left padding, stop at EOS), decoded as verl decodes them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    texts = [tok.apply_chat_template(list(r["prompt"]), add_generation_prompt=True, tokenize=False) for r in rows]
    out: list[str] = []
    for start in tqdm(range(0, len(texts), batch_size), desc=f"generate {Path(model_dir).name}", unit="batch"):
        enc = tok(texts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            seq = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        out.extend(tok.batch_decode(seq[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def score(rows: list[dict[str, Any]], responses: list[str], reward: Callable[..., dict],
          **reward_kwargs: Any) -> list[dict[str, Any]]:
    """Call the reward exactly as verl's reward manager does (keyword arguments, one sample at a time)."""
    return [reward(data_source=r["data_source"], solution_str=resp, ground_truth=r["reward_model"]["ground_truth"],
                   extra_info=dict(r["extra_info"]), **reward_kwargs)
            for r, resp in zip(rows, responses, strict=True)]


def evaluate_model(model_dir: str | Path, rows: list[dict[str, Any]], reward: Callable[..., dict], *,
                   max_new_tokens: int, batch_size: int = 64) -> EvalResult:
    """Generate greedily, score, and summarise one model."""
    responses = generate_greedy(model_dir, rows, max_new_tokens=max_new_tokens, batch_size=batch_size)
    scores = score(rows, responses, reward)
    correct = tuple(int(s.get("acc", 0.0) >= 1.0) for s in scores)
    low, high = wilson_interval(sum(correct), len(rows))
    runnable = sum(float(s.get("ran", s["score"] > 0)) for s in scores) / len(rows)
    return EvalResult(model=str(model_dir), n=len(rows), runnable=runnable, accuracy=sum(correct) / len(rows),
                      acc_low=low, acc_high=high, mean_reward=sum(s["score"] for s in scores) / len(rows),
                      correct=correct)


def format_table(results: list[EvalResult], labels: Sequence[str] | None = None) -> str:
    """A plain-text table; each row after the first carries the paired McNemar test against the row above it
    (questions newly solved / newly failed, and the exact two-sided p-value)."""
    labels = labels or [Path(r.model).name for r in results]
    lines = [f"{'model':<14}{'n':>5}{'runnable':>10}{'accuracy':>10}{'95% CI':>17}{'reward':>9}  vs previous row",
             "-" * 84]
    for i, (label, r) in enumerate(zip(labels, results, strict=True)):
        versus = ""
        if i:
            lost, gained, p = mcnemar_exact(results[i - 1].correct, r.correct)
            versus = f"+{gained}/-{lost}, McNemar p={p:.2g}"
        lines.append(f"{label:<14}{r.n:>5}{r.runnable:>10.3f}{r.accuracy:>10.3f}"
                     f"{f'[{r.acc_low:.3f}, {r.acc_high:.3f}]':>17}{r.mean_reward:>9.3f}  {versus}")
    return "\n".join(lines)


def plot_results(results: list[EvalResult], labels: Sequence[str], path: Path) -> None:
    """Bar chart of accuracy (with Wilson intervals) and runnable fraction, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(results))
    acc = [r.accuracy for r in results]
    err = [[r.accuracy - r.acc_low for r in results], [r.acc_high - r.accuracy for r in results]]
    ax.bar([x - 0.2 for x in xs], [r.runnable for r in results], width=0.4, label="runnable", color="#9ecae1")
    ax.bar([x + 0.2 for x in xs], acc, width=0.4, yerr=err, capsize=4, label="accuracy (95% CI)", color="#3182bd")
    ax.set_xticks(list(xs), labels)
    ax.set_ylim(0, 1)
    ax.set_title(f"greedy decoding, {results[0].n} fixed questions")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser("eval", help="greedy accuracy of checkpoints on RL rows (same reward as verl)")
    parser.add_argument("models", nargs="+", help="HF model directories, each compared with the one before")
    parser.add_argument("--data", required=True, type=Path, help="RL parquet (fixed evaluation rows)")
    parser.add_argument("--labels", nargs="*", default=None, help="names for the table (default: dir names)")
    parser.add_argument("--reward", default=str(DEFAULT_REWARD), help="reward file (default: PoT reward)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--out", type=Path, default=None, help="write JSON results (and a PNG next to it)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    rows = read_parquet_rows(args.data)[: args.limit]
    reward = load_reward(args.reward)
    labels = args.labels or [Path(m).name for m in args.models]
    if len(labels) != len(args.models):
        raise SystemExit(f"--labels: {len(labels)} labels for {len(args.models)} models")
    results = [evaluate_model(m, rows, reward, max_new_tokens=args.max_new_tokens) for m in args.models]
    print(format_table(results, labels))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = [{**asdict(r), "label": lab} for r, lab in zip(results, labels, strict=True)]
        args.out.write_text(json.dumps(payload, indent=1))
        plot_results(results, labels, args.out.with_suffix(".png"))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0
