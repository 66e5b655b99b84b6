"""``verl-distill bench steps``: where a verl training step spends its time on this machine.

Runs a short GRPO or PPO recipe for real (or reads the ``metrics.jsonl`` of an earlier run with ``--metrics``) and
prints the median of each of verl's ``timing_s/*`` phases over the steady-state steps (the first step, which pays
for warm-up, is reported separately). Medians and ratios, because step times on a shared 2-core machine vary a lot.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from verl_distill.plots import read_metrics

REPO = Path(__file__).resolve().parents[2]
PHASES = ("gen", "reward", "old_log_prob", "ref", "values", "adv", "update_critic", "update_actor",
          "update_weights", "testing", "save_checkpoint", "step")
PERIODIC = ("testing", "save_checkpoint")  # not part of every step, timed outside ``timing_s/step``
PREFIX = "timing_s/"


def breakdown(metrics: dict[int, dict[str, float]]) -> list[tuple[str, float, float]]:
    """(phase, first-step seconds, median seconds over later steps) for every logged ``timing_s/*`` phase."""
    steps = sorted(s for s, m in metrics.items() if "timing_s/step" in m)
    if len(steps) < 2:
        raise ValueError(f"need at least 2 timed steps, got {steps}")
    names = sorted({k[len(PREFIX):] for s in steps for k in metrics[s] if k.startswith(PREFIX)},
                   key=lambda n: (PHASES.index(n) if n in PHASES else len(PHASES), n))
    rows = []
    for name in names:
        later = [metrics[s][PREFIX + name] for s in steps[1:] if PREFIX + name in metrics[s]]
        rows.append((name, metrics[steps[0]].get(PREFIX + name, float("nan")),
                     statistics.median(later) if later else float("nan")))
    return rows


def format_breakdown(rows: list[tuple[str, float, float]]) -> str:
    """Table with each phase's share of the median step."""
    step = next((median for name, _, median in rows if name == "step"), float("nan"))
    lines = [f"{'phase':<22}{'step 1 (s)':>12}{'median (s)':>12}{'share':>8}", "-" * 54]
    for name, first, median in rows:
        if name in PERIODIC:
            share = "  (periodic)"
        elif name == "step" or math.isnan(step) or step <= 0:
            share = ""
        else:
            share = f"{median / step:7.0%}"
        lines.append(f"{name:<22}{first:>12.2f}{median:>12.2f}{share:>8}")
    return "\n".join(lines)


def run_recipe(algo: str, steps: int, out: Path, extra: list[str]) -> Path:
    """Run ``recipes/<algo>_rlvr_gsm8k.sh`` on CPU for ``steps`` steps; returns its metrics file."""
    env = {**os.environ, "FORCE_CPU": "1", "STEPS": str(steps), "OUT_DIR": str(out), "TEST_FREQ": "-1",
           "SAVE_FREQ": "-1"}
    cmd = ["bash", str(REPO / "recipes" / f"{algo}_rlvr_gsm8k.sh"), "trainer.val_before_train=False", *extra]
    log = out / "bench.log"
    out.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[1]} exited {proc.returncode}; see {log}")
    return out / "metrics.jsonl"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench steps``."""
    parser = subparsers.add_parser("steps", help="per-phase step time of a short real verl run on this machine")
    parser.add_argument("--algo", choices=("grpo", "ppo"), default="grpo")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--metrics", type=Path, default=None, help="summarise this metrics.jsonl instead of running")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the recipe")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.metrics is None:
        out = Path(tempfile.mkdtemp(prefix=f"bench_{args.algo}_"))
        print(f"running recipes/{args.algo}_rlvr_gsm8k.sh for {args.steps} steps on CPU (log: {out}/bench.log)")
        args.metrics = run_recipe(args.algo, args.steps, out, args.overrides)
    print(format_breakdown(breakdown(read_metrics(args.metrics))))
    return 0
