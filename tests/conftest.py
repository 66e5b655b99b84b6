"""Shared fixtures: tiny models and small datasets built once per test session (no download)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked tests on machines without a CUDA GPU."""
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tokenizer + student/teacher/student_rm built by ``verl-distill build-tiny`` (seed 0)."""
    from verl_distill.tiny import build_tiny

    out = tmp_path_factory.mktemp("tiny")
    build_tiny(out, seed=0)
    return out


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic train/validation rows plus a few GSM8K test rows, through the real converters."""
    from data_prep import synthetic_arith, test_sets

    out = tmp_path_factory.mktemp("data")
    assert synthetic_arith.main(["--output-dir", str(out / "synthetic"), "--splits", "train=96,validation=16,test=16",
                                 "--seed", "7"]) == 0
    assert test_sets.main(["--dataset", "gsm8k", "--limit", "4", "--input", str(SHARED_DATA / "gsm8k" / "test.jsonl"),
                           "--output-dir", str(out / "gsm8k_test")]) == 0
    return out


@pytest.fixture()
def cpu_env() -> dict[str, str]:
    """Environment of a recipe run on CPU (no GPU detection, quiet Ray)."""
    env = dict(os.environ)
    env.update(FORCE_CPU="1", RAY_DEDUP_LOGS="1", PYTHONUNBUFFERED="1")
    env.pop("VERL_PLATFORM", None)
    return env
