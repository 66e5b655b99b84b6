"""``verl-distill bench ...``: benchmarks that print their numbers (speed targets are checked here, not in tests)."""

from __future__ import annotations

import argparse
import importlib

BENCH_MODULES = ("verl_distill.bench.pot", "verl_distill.bench.steps", "verl_distill.bench.judge",
                 "verl_distill.bench.rm")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and one sub-command per benchmark module (each exposes ``register(subparsers)``)."""
    parser = subparsers.add_parser("bench", help="run a benchmark and print its numbers")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in BENCH_MODULES:
        importlib.import_module(name).register(sub)
