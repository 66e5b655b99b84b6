"""``verl-distill prepare-data OUT``: run the ``data_prep`` converters the recipes expect, in one go.

Layout under ``OUT`` (one converter output directory each, each with its own manifest):

* ``synthetic/``   templated arithmetic problems (train / validation / test), gold programs verified in the sandbox
* ``gsm8k_pot/``   GSM8K train as program-of-thought (converted from the bundled straight-line programs)
* ``gsm8k_test/``  GSM8K test questions (PoT prompts)
* ``svamp_pot/``   SVAMP train programs (ReFT), ``svamp_test/`` SVAMP test questions

A directory whose manifest exists is skipped (stages resume; delete it to rebuild). The ``cpu`` profile keeps the
GSM8K/SVAMP test sets small, since tiny CPU models spend their validation budget generating to the length limit.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from verl_distill.io import MANIFEST
from verl_distill.tiny import default_data_dir

logger = logging.getLogger(__name__)

PROFILES = ("cpu", "paper")


def _jobs(data: Path, profile: str, seed: int) -> dict[str, tuple[str, list[str]]]:
    """Converter module and arguments for every output directory."""
    test_limit = ["--limit", "48"] if profile == "cpu" else []
    synthetic = "train=4000,validation=300,test=300" if profile == "cpu" else "train=20000,validation=1000,test=1000"
    return {
        "synthetic": ("data_prep.synthetic_arith", ["--splits", synthetic, "--seed", str(seed), "--verify"]),
        "gsm8k_pot": ("data_prep.gsm8k_pot", ["--input", str(data / "mwp_cot_design" / "gsm8k_wolfram_ndp.json")]),
        "gsm8k_test": ("data_prep.test_sets", ["--dataset", "gsm8k", "--split", "test", *test_limit,
                                               "--input", str(data / "gsm8k" / "test.jsonl")]),
        "svamp_pot": ("data_prep.svamp", ["--format", "pot",
                                          "--input", str(data / "reft_mwp" / "svamp_python_sdp.json")]),
        "svamp_test": ("data_prep.test_sets", ["--dataset", "svamp", "--split", "test", *test_limit,
                                               "--input", str(data / "reft_mwp" / "svamp_test_set.json")]),
    }


def prepare_data(out: Path, *, profile: str = "cpu", seed: int = 0, data_dir: Path | None = None,
                 only: tuple[str, ...] = ()) -> list[str]:
    """Run every converter whose output directory has no manifest yet; returns the directories built."""
    import importlib

    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r}: expected one of {PROFILES}")
    data = Path(data_dir) if data_dir else default_data_dir()
    built = []
    for name, (module, args) in _jobs(data, profile, seed).items():
        target = out / name
        if only and name not in only:
            continue
        if (target / MANIFEST).exists():
            logger.info("%s: complete (manifest present), skipped", target)
            continue
        main: Callable[[list[str]], int] = importlib.import_module(module).main
        if main([*args, "--output-dir", str(target)]) != 0:
            raise RuntimeError(f"{module} failed for {target}")
        built.append(name)
    return built


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare-data`` subcommand."""
    parser = subparsers.add_parser("prepare-data", help="convert the bundled datasets the recipes use")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--profile", choices=PROFILES, default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic problems")
    parser.add_argument("--data-dir", type=Path, default=None, help="shared data dir (default: ../shared/data)")
    parser.add_argument("--only", nargs="*", default=(), help="build only these directories")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    built = prepare_data(args.out_dir, profile=args.profile, seed=args.seed, data_dir=args.data_dir,
                         only=tuple(args.only))
    print(f"prepared {', '.join(built) or 'nothing (all complete)'} under {args.out_dir}")
    return 0
