"""``verl-distill plot-metrics``: curves from verl's file logger (``trainer.logger=[...,file]``) as PNG.

verl's ``FileLogger`` writes one JSON object per logging call, ``{"step": N, "data": {metric: value}}``; training
and validation metrics of the same step arrive as separate lines, so lines are merged by step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_metrics(path: str | Path) -> dict[int, dict[str, float]]:
    """Metrics by step; a line that is not valid JSON raises with its line number."""
    steps: dict[int, dict[str, float]] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {lineno} is not JSON ({err})") from err
        values = {k: float(v) for k, v in rec["data"].items() if isinstance(v, (int, float))}
        steps.setdefault(int(rec["step"]), {}).update(values)
    return steps


def series(steps: dict[int, dict[str, float]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric, in step order, where it was logged."""
    points = sorted((s, m[key]) for s, m in steps.items() if key in m)
    return [s for s, _ in points], [v for _, v in points]


def plot_metrics(path: str | Path, keys: list[str], out: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Plot ``keys`` against step into ``out`` (one panel per key); returns the plotted series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = read_metrics(path)
    found = {k: series(steps, k) for k in keys}
    missing = [k for k, (xs, _) in found.items() if not xs]
    if missing:
        known = sorted({k for m in steps.values() for k in m})
        raise KeyError(f"{path}: no values for {missing}; logged metrics include {known[:30]}")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.2), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes[0], found.items(), strict=True):
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return found


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plot-metrics`` subcommand."""
    parser = subparsers.add_parser("plot-metrics", help="plot metrics from verl's file logger as PNG")
    parser.add_argument("metrics", type=Path, help="metrics.jsonl written by trainer.logger=[...,file]")
    parser.add_argument("--keys", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    found = plot_metrics(args.metrics, args.keys, args.out)
    for key, (xs, ys) in found.items():
        print(f"{key}: " + ", ".join(f"{x}:{y:.3f}" for x, y in zip(xs, ys, strict=True)))
    print(f"wrote {args.out}")
    return 0
