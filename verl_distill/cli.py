"""The ``verl-distill`` command line: one subcommand per stage or tool.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to the function that
runs it (``func(args) -> int``). Heavy imports happen inside those functions, so ``verl-distill --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# module path -> registers one or more subcommands
COMMAND_MODULES = (
    "verl_distill.tiny",
    "verl_distill.prepare",
    "verl_distill.evaluate",
    "verl_distill.plots",
    "verl_distill.bench",
    "verl_distill.serving",
    "verl_distill.policy",
    "verl_distill.judge_data",
    "verl_distill.train_reranker",
    "verl_distill.train_judge",
    "verl_distill.judge_eval",
    "verl_distill.sample_stage",
    "verl_distill.pseudo_label",
    "verl_distill.rm_data",
    "verl_distill.train_rm",
    "verl_distill.checkpoints",
)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the top-level parser from every command module."""
    parser = argparse.ArgumentParser(prog="verl-distill", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    return int(args.func(args) or 0)


def configure_logging(verbose: bool = False) -> None:
    """The CLI's log format (also used by commands run on their own, e.g. ``python -m verl_distill.sample_stage``)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise


if __name__ == "__main__":
    sys.exit(main())
