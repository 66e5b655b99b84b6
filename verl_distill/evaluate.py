"""``verl-distill eval``: accuracy of checkpoints on fixed RL rows: greedy decoding, maj@k and rerank@k.

Responses are scored by the same reward file verl loads for validation (``reward_fns/pot_verifiable.py`` by
default), through verl's own loader, so the greedy numbers equal verl's ``val-core/<source>/acc/mean@1`` for the same
model and rows. Reported per model and test set: fraction of runnable programs, accuracy with a 95% Wilson interval,
mean reward; and for each later model an exact McNemar test against the model before it on the same questions (did
it really change?). Several test sets are evaluated in one call; each model is loaded once.

With ``--samples K``, K completions per question are sampled (``temperature``, ``top_p``, no top-k, seeded) and:

* **maj@k** (self-consistency) is verl's ``calc_maj_val`` (``verl/trainer/ppo/metric_utils.py``) applied to the K
  samples of a question: votes are counted per distinct ``pred`` string of the reward's output (exact equality; the
  PoT reward rounds to 6 digits so ``8`` and ``8.0`` vote together, and its ``""`` for "no answer" votes like any
  other answer, as in verl); the answer with most votes wins, a tie goes to the answer whose first sample came
  first; the question counts as solved iff the ``acc`` of that first sample is 1. A ``pred`` of None abstains, and a
  question with no vote at all counts as wrong (verl instead drops such a question from its maj@N mean; we keep the
  denominator). verl's logged ``acc/maj@K/mean`` is the mean of this same vote over 1,000 bootstrap resamples (with
  replacement, seed 42) of size K drawn from the K samples: an estimate of the same quantity, not equal sample by
  sample; ours is the vote over exactly the K samples drawn.
* **rerank@k** (best-of-K, seed 002 §2.2.3): a reranker scores every ``(extra_info.question, completion)`` pair
  through ``scorer(pairs) -> scores``; the completion with the highest score is the answer (ties: the first), solved
  iff its ``acc`` is 1. The CLI builds the scorer from a served reranker (``--reranker-url``).

LIMITS: generation is transformers' ``generate`` in this process (no vLLM), so sampled numbers match verl's in
distribution only; K completions of a question come from one seeded batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from verl_distill.io import read_parquet_rows

logger = logging.getLogger(__name__)

DEFAULT_REWARD = Path(__file__).resolve().parents[1] / "reward_fns" / "pot_verifiable.py"
Scorer = Callable[[list[tuple[str, str]]], list[float]]


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


@dataclass(frozen=True)
class Sampling:
    """How the K completions of maj@k / rerank@k are drawn."""

    k: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"samples k={self.k!r}: must be an int >= 1")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r}: must be > 0 (greedy decoding is always reported)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p!r}: must be in (0, 1]")


@dataclass(frozen=True)
class SampledResult:
    """maj@k (and rerank@k when a scorer was given) of one model on one set of rows."""

    model: str
    n: int
    k: int
    mean_acc: float  # accuracy of single samples, over all n * k (verl's mean@k)
    maj: float
    maj_correct: tuple[int, ...]
    rerank: float | None = None
    rerank_correct: tuple[int, ...] | None = None


# ---------------------------------------------------------------- statistics


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


# ---------------------------------------------------------------- maj@k and rerank@k (pure)


def is_correct(info: Mapping[str, Any]) -> int:
    """1 if a reward output says the sample is correct (``acc`` >= 1), else 0."""
    return int(info.get("acc", 0.0) >= 1.0)


def majority_index(preds: Sequence[str | None]) -> int | None:
    """Index of the sample whose answer wins the vote (verl's ``calc_maj_val``): most votes, ties to the answer seen
    first, its first sample; None abstains; None if nobody voted."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, pred in enumerate(preds):
        if pred is not None:
            counts[pred] = counts.get(pred, 0) + 1
            first.setdefault(pred, i)
    if not counts:
        return None
    return first[max(counts, key=counts.get)]  # max keeps the first key among equals: insertion order breaks ties


def maj_correct(infos: Sequence[Mapping[str, Any]]) -> int:
    """maj@k of one question from the reward outputs of its k samples (each must carry ``pred``)."""
    for i, info in enumerate(infos):
        if "pred" not in info:
            raise ValueError(f"sample {i}: the reward output has no 'pred' key (keys: {sorted(info)}); maj@k needs "
                             f"the extracted answer, as verl's maj@N does: use a reward that returns 'pred'")
    winner = majority_index([info["pred"] for info in infos])
    return 0 if winner is None else is_correct(infos[winner])


def rerank_index(scores: Sequence[float]) -> int:
    """Index of the highest reranker score (the first on ties); ``ValueError`` on no or non-finite scores."""
    if not scores:
        raise ValueError("rerank: no scores for a question")
    bad = [s for s in scores if not (isinstance(s, numbers.Real) and math.isfinite(s))]
    if bad:
        raise ValueError(f"rerank: the scorer returned non-numeric or non-finite scores {bad[:3]!r}; check the server")
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def rerank_correct(rows: Sequence[Mapping[str, Any]], completions: Sequence[Sequence[str]],
                   infos: Sequence[Sequence[Mapping[str, Any]]], scorer: Scorer) -> tuple[int, ...]:
    """rerank@k of every question: one ``scorer`` call on all ``(question, completion)`` pairs."""
    pairs = [(row["extra_info"]["question"], c) for row, group in zip(rows, completions, strict=True) for c in group]
    scores = list(scorer(pairs))
    if len(scores) != len(pairs):
        raise ValueError(f"rerank: the scorer returned {len(scores)} scores for {len(pairs)} pairs")
    out, start = [], 0
    for group in infos:
        out.append(is_correct(group[rerank_index(scores[start:start + len(group)])]))
        start += len(group)
    return tuple(out)


def summarize_samples(model: str, rows: Sequence[Mapping[str, Any]], completions: Sequence[Sequence[str]],
                      infos: Sequence[Sequence[Mapping[str, Any]]], *, scorer: Scorer | None = None) -> SampledResult:
    """maj@k, rerank@k (if ``scorer``) and the single-sample accuracy from k scored completions per row."""
    ks = {len(group) for group in infos}
    if len(ks) != 1 or len(infos) != len(rows):
        raise ValueError(f"expected the same number of samples for each of {len(rows)} rows, got sizes {sorted(ks)}")
    k, n = ks.pop(), len(rows)
    maj = tuple(maj_correct(group) for group in infos)
    rerank = rerank_correct(rows, completions, infos, scorer) if scorer is not None else None
    mean_acc = sum(is_correct(i) for group in infos for i in group) / (n * k)
    return SampledResult(model=model, n=n, k=k, mean_acc=mean_acc, maj=sum(maj) / n, maj_correct=maj,
                         rerank=None if rerank is None else sum(rerank) / n, rerank_correct=rerank)


# ---------------------------------------------------------------- generation and scoring


def load_reward(path: str | Path = DEFAULT_REWARD, name: str = "compute_score") -> Callable[..., dict]:
    """Load a reward function the way verl does (by file path)."""
    from verl.utils.import_utils import load_extern_object

    return load_extern_object(str(path), name)


def load_policy(model_dir: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a causal LM checkpoint, float32, left padding, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    return model, tok


def generate(policy: tuple[Any, Any], rows: list[dict[str, Any]], *, max_new_tokens: int, batch_size: int = 64,
             sampling: Sampling | None = None, desc: str = "generate") -> list[list[str]]:
    """Responses to each row's chat prompt (stop at EOS, decoded as verl decodes them): one greedy response per row,
    or ``sampling.k`` sampled ones (``batch_size // k`` prompts per batch)."""
    import torch

    model, tok = policy
    k = sampling.k if sampling else 1
    kwargs: dict[str, Any] = {"do_sample": False}
    if sampling:
        kwargs = {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0,
                  "num_return_sequences": k}
        torch.manual_seed(sampling.seed)
    texts = [tok.apply_chat_template(list(r["prompt"]), add_generation_prompt=True, tokenize=False) for r in rows]
    step = max(1, batch_size // k)
    out: list[str] = []
    for start in tqdm(range(0, len(texts), step), desc=desc, unit="batch"):
        enc = tok(texts[start:start + step], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            seq = model.generate(**enc, max_new_tokens=max_new_tokens, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id, **kwargs)
        out.extend(tok.batch_decode(seq[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return [out[i:i + k] for i in range(0, len(out), k)]


def generate_greedy(model_dir: str | Path, rows: list[dict[str, Any]], *, max_new_tokens: int,
                    batch_size: int = 64) -> list[str]:
    """Greedy responses to each row's chat prompt (left padding, stop at EOS), decoded as verl decodes them."""
    groups = generate(load_policy(model_dir), rows, max_new_tokens=max_new_tokens, batch_size=batch_size,
                      desc=f"generate {Path(model_dir).name}")
    return [group[0] for group in groups]


def score(rows: list[dict[str, Any]], responses: list[str], reward: Callable[..., dict], *, workers: int = 1,
          **reward_kwargs: Any) -> list[dict[str, Any]]:
    """Call the reward exactly as verl's reward manager does (keyword arguments, one sample per call), from
    ``workers`` threads (verl calls rewards from worker threads too), results in row order."""
    def one(pair: tuple[dict[str, Any], str]) -> dict[str, Any]:
        r, resp = pair
        return reward(data_source=r["data_source"], solution_str=resp, ground_truth=r["reward_model"]["ground_truth"],
                      extra_info=dict(r["extra_info"]), **reward_kwargs)

    pairs = list(zip(rows, responses, strict=True))
    if workers <= 1:
        return [one(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, pairs))


def summarize_greedy(model: str, rows: list[dict[str, Any]], scores: list[dict[str, Any]]) -> EvalResult:
    """Greedy metrics from one scored response per row."""
    correct = tuple(is_correct(s) for s in scores)
    low, high = wilson_interval(sum(correct), len(rows))
    runnable = sum(float(s.get("ran", s["score"] > 0)) for s in scores) / len(rows)
    return EvalResult(model=model, n=len(rows), runnable=runnable, accuracy=sum(correct) / len(rows),
                      acc_low=low, acc_high=high, mean_reward=sum(s["score"] for s in scores) / len(rows),
                      correct=correct)


def evaluate_model(model_dir: str | Path, rows: list[dict[str, Any]], reward: Callable[..., dict], *,
                   max_new_tokens: int, batch_size: int = 64) -> EvalResult:
    """Generate greedily, score, and summarise one model."""
    responses = generate_greedy(model_dir, rows, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return summarize_greedy(str(model_dir), rows, score(rows, responses, reward))


def evaluate_sampled(policy: tuple[Any, Any], rows: list[dict[str, Any]], reward: Callable[..., dict],
                     sampling: Sampling, *, model: str, max_new_tokens: int, batch_size: int = 64,
                     scorer: Scorer | None = None, workers: int = 4) -> SampledResult:
    """Sample ``sampling.k`` completions per row, score each with ``reward``, and summarise maj@k / rerank@k."""
    completions = generate(policy, rows, max_new_tokens=max_new_tokens, batch_size=batch_size, sampling=sampling,
                           desc=f"sample {Path(model).name} k={sampling.k}")
    flat_rows = [row for row in rows for _ in range(sampling.k)]
    flat = score(flat_rows, [c for group in completions for c in group], reward, workers=workers)
    infos = [flat[i:i + sampling.k] for i in range(0, len(flat), sampling.k)]
    return summarize_samples(model, rows, completions, infos, scorer=scorer)


# ---------------------------------------------------------------- several models x several test sets


@dataclass(frozen=True)
class DatasetEval:
    """One model on one test set: greedy, and maj@k / rerank@k when sampled."""

    dataset: str
    greedy: EvalResult
    sampled: SampledResult | None = None


def table_values(evals: Sequence[DatasetEval]) -> dict[str, float]:
    """``{"<dataset>/<mode>": accuracy}`` for one model."""
    values: dict[str, float] = {}
    for ev in evals:
        values[f"{ev.dataset}/greedy"] = ev.greedy.accuracy
        if ev.sampled is not None:
            values[f"{ev.dataset}/maj@{ev.sampled.k}"] = ev.sampled.maj
            if ev.sampled.rerank is not None:
                values[f"{ev.dataset}/rerank@{ev.sampled.k}"] = ev.sampled.rerank
    return values


def format_summary(results: Mapping[str, Sequence[DatasetEval]]) -> str:
    """One table: rows are models, columns are test set x (greedy, maj@k, rerank@k); accuracies."""
    values = {label: table_values(evals) for label, evals in results.items()}
    columns = list(dict.fromkeys(col for row in values.values() for col in row))
    width = max(len(label) for label in values) + 2
    header = f"{'model':<{width}}" + "".join(f"{col:>{max(len(col), 6) + 2}}" for col in columns)
    lines = [header, "-" * len(header)]
    for label, row in values.items():
        cells = "".join(f"{row[col]:>{max(len(col), 6) + 2}.3f}" if col in row else f"{'-':>{max(len(col), 6) + 2}}"
                        for col in columns)
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def format_table(results: list[EvalResult], labels: Sequence[str] | None = None) -> str:
    """A plain-text table; each row after the first carries the paired McNemar test against the row above it
    (questions newly solved / newly failed, and the exact two-sided p-value)."""
    labels = labels or [default_label(r.model) for r in results]
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


def plot_summary(results: Mapping[str, Sequence[DatasetEval]], path: Path) -> None:
    """One panel per test set: accuracy of each model per mode with 95% Wilson intervals, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(results)
    datasets = [ev.dataset for ev in next(iter(results.values()))]
    fig, axes = plt.subplots(1, len(datasets), figsize=(3 + 2.5 * len(datasets), 3.5), squeeze=False, sharey=True)
    for col, (ax, name) in enumerate(zip(axes[0], datasets, strict=True)):
        evals = [results[label][col] for label in labels]
        n = evals[0].greedy.n
        values = [table_values([ev]) for ev in evals]
        cols = list(values[0])
        width = 0.8 / len(cols)
        for j, key in enumerate(cols):
            ys = [v[key] for v in values]
            bounds = [wilson_interval(round(y * n), n) for y in ys]
            err = [[y - lo for y, (lo, _) in zip(ys, bounds, strict=True)],
                   [hi - y for y, (_, hi) in zip(ys, bounds, strict=True)]]
            ax.bar([x + (j - (len(cols) - 1) / 2) * width for x in range(len(evals))], ys, width=width, yerr=err,
                   capsize=3, label=key.split("/", 1)[1])
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        ax.set_title(f"{name} (n={n})")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("accuracy (95% Wilson CI)")
    axes[0][-1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dataset_label(path: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows' ``data_source`` if they share one, else the file's directory name."""
    sources = {row["data_source"] for row in rows}
    return sources.pop() if len(sources) == 1 else path.parent.name


def evaluate_all(models: Sequence[str], labels: Sequence[str], data: Mapping[str, list[dict[str, Any]]],
                 reward: Callable[..., dict], *, max_new_tokens: int, batch_size: int = 64,
                 sampling: Sampling | None = None, scorer: Scorer | None = None,
                 workers: int = 4) -> dict[str, list[DatasetEval]]:
    """Every model (loaded once) on every test set: ``{label: [DatasetEval per test set, in order]}``."""
    results: dict[str, list[DatasetEval]] = {}
    for model, label in zip(models, labels, strict=True):
        policy = load_policy(model)
        results[label] = []
        for name, rows in data.items():
            responses = generate(policy, rows, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 desc=f"generate {Path(model).name}")
            greedy = summarize_greedy(str(model), rows, score(rows, [g[0] for g in responses], reward))
            sampled = None
            if sampling is not None:
                sampled = evaluate_sampled(policy, rows, reward, sampling, model=str(model), scorer=scorer,
                                           max_new_tokens=max_new_tokens, batch_size=batch_size, workers=workers)
            results[label].append(DatasetEval(name, greedy, sampled))
    return results


def write_results(results: Mapping[str, Sequence[DatasetEval]], out: Path, *, info: Mapping[str, Any]) -> Path:
    """``out`` (JSON: the table, per-question results, run settings) and a PNG next to it; returns the PNG path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**info, "table": {label: table_values(evals) for label, evals in results.items()},
               "results": [{"label": label, **asdict(ev)} for label, evals in results.items() for ev in evals]}
    out.write_text(json.dumps(payload, indent=1))
    png = out.with_suffix(".png")
    plot_summary(results, png)
    return png


# ---------------------------------------------------------------- CLI


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser("eval", help="greedy / maj@k / rerank@k accuracy of checkpoints (verl's reward)")
    parser.add_argument("models", nargs="+", help="HF model directories, each compared with the one before")
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="RL parquet files (fixed test rows)")
    parser.add_argument("--labels", nargs="*", default=None, help="names for the table (default: dir names; "
                        "global_step_N for verl's exports)")
    parser.add_argument("--reward", default=str(DEFAULT_REWARD), help="reward file (default: PoT reward)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per generate call")
    parser.add_argument("--limit", type=int, default=None, help="first N rows of each file only")
    parser.add_argument("--samples", type=int, default=0, help="K sampled completions per question: maj@K (0: off)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for maj@K/rerank@K")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling for maj@K/rerank@K")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--reranker-url", default=None, help="served reranker (OpenAI-compatible base URL): rerank@K")
    parser.add_argument("--reranker-tokenizer", default=None, help="the reranker's tokenizer (path or HF id)")
    parser.add_argument("--reward-workers", type=int, default=4, help="threads scoring sampled completions")
    parser.add_argument("--out", type=Path, default=None, help="write JSON results (and a PNG next to it)")
    parser.set_defaults(func=_run)


def default_label(model: str) -> str:
    """A model's name in tables: its directory name, or for verl's exports (``global_step_N/huggingface``,
    ``global_step_N/actor/huggingface``) the checkpoint's (``global_step_N``)."""
    path = Path(model)
    while path.name in ("huggingface", "actor") and path.parent != path:
        path = path.parent
    return path.name or model


def _scorer(args: argparse.Namespace) -> Scorer | None:
    if bool(args.reranker_url) != bool(args.reranker_tokenizer):
        raise SystemExit("--reranker-url and --reranker-tokenizer go together")
    if not args.reranker_url:
        return None
    if not args.samples:
        raise SystemExit("--reranker-url needs --samples K (rerank@K picks one of K sampled completions)")
    from verl_distill.reranker import Reranker  # lazy: the client stack is only needed for rerank@K

    return Reranker(args.reranker_url, args.reranker_tokenizer).score_many


def _run(args: argparse.Namespace) -> int:
    scorer = _scorer(args)
    labels = args.labels or [default_label(m) for m in args.models]
    if len(labels) != len(args.models) or len(set(labels)) != len(labels):
        raise SystemExit(f"--labels: need {len(args.models)} distinct labels (one per model), got {labels}")
    try:
        sampling = Sampling(args.samples, args.temperature, args.top_p, args.seed) if args.samples else None
    except ValueError as err:
        raise SystemExit(f"--samples/--temperature/--top-p: {err}") from err
    data: dict[str, list[dict[str, Any]]] = {}
    for path in args.data:
        rows = read_parquet_rows(path)[: args.limit]
        if not rows:
            raise SystemExit(f"--data {path}: no rows to evaluate")
        name = dataset_label(path, rows)
        if name in data:
            raise SystemExit(f"--data: two files are both {name!r}; give files with different data sources")
        data[name] = rows
    results = evaluate_all(args.models, labels, data, load_reward(args.reward), max_new_tokens=args.max_new_tokens,
                           batch_size=args.batch_size, sampling=sampling, scorer=scorer,
                           workers=args.reward_workers)
    for col, name in enumerate(data):
        print(f"\n{name}: greedy decoding, {len(data[name])} questions")
        print(format_table([evals[col].greedy for evals in results.values()], labels))
    knobs = f" (K={args.samples}, T={args.temperature}, top-p={args.top_p}, seed={args.seed})" if sampling else ""
    print(f"\naccuracy{knobs}")
    print(format_summary(results))
    if args.out:
        info = {"models": dict(zip(labels, map(str, args.models), strict=True)), "reward": args.reward,
                "data": {name: str(path) for name, path in zip(data, args.data, strict=True)},
                "sampling": asdict(sampling) if sampling else None, "reranker": args.reranker_url,
                "max_new_tokens": args.max_new_tokens, "limit": args.limit}
        png = write_results(results, args.out, info=info)
        print(f"wrote {args.out} and {png}")
    return 0
