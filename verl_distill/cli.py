"""The ``verl-distill`` command line: one subcommand per stage or tool.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to the function that
runs it (``func(args) -> int``). Heavy imports happen inside those functions, so ``verl-distill --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import asdict, fields
from typing import Any, TypeVar

T = TypeVar("T")

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


def add_config_flags(parser: argparse.ArgumentParser, config: Any) -> None:
    """One ``--field-name`` flag per field of the dataclass instance ``config``, defaulting to its value: bool fields
    are switches, tuple fields comma-separated lists, the rest typed like their default."""
    for name, value in asdict(config).items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", help=f"default {value}")
        elif isinstance(value, tuple):
            parser.add_argument(flag, type=_comma_list, default=value,
                                help=f"comma-separated, default {','.join(value)}")
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """The dataclass ``cls`` from the flags :func:`add_config_flags` added."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


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
