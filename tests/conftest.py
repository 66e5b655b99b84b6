"""Shared fixtures: tiny models and small datasets built once per test session (no download)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """Factory ``serve(model_dir, runner="generate", **kw) -> ServedModel`` starting real vLLM servers on 127.0.0.1.

    One server per (path, runner, keyword arguments) for the whole session (each start-up costs 30-45 s on CPU),
    all stopped at session end. Fails, never skips, when no vLLM interpreter exists: CI builds it (``make vllm-env``).
    """
    from verl_distill.serving import VLLMNotFoundError, find_vllm_python, log_tail, start_vllm_server

    try:
        find_vllm_python()
    except VLLMNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    logs = tmp_path_factory.mktemp("vllm_logs")
    servers: dict[tuple[str, str, str], Any] = {}

    def serve(model_dir: str | Path, runner: str = "generate", **kw: Any) -> Any:
        key = (str(Path(model_dir).resolve()), runner, repr(sorted(kw.items())))
        served = servers.get(key)
        if served is not None and served.process.poll() is not None:
            pytest.fail(f"vLLM server for {key[0]} died during the session (status {served.process.returncode}):\n"
                        f"{log_tail(served.log_path)}", pytrace=False)
        if served is None:
            log = logs / f"{Path(model_dir).name}-{runner}-{len(servers)}.log"
            served = servers[key] = start_vllm_server(model_dir, runner=runner, log_path=log, **kw)
        return served

    yield serve
    for served in servers.values():
        served.stop()


@pytest.fixture(scope="session")
def tiny_judge(tiny_dir: Path) -> Path:
    """The hand-set tiny judge of ``derived_models.py`` (one-token Yes/No verdicts, widely spread margins)."""
    from derived_models import build_judge, derived_model

    return derived_model(tiny_dir, "judge_handset", build_judge(tiny_dir / "teacher"))


@pytest.fixture(scope="session")
def tiny_reranker(tiny_dir: Path) -> Path:
    """A two-class tiny reranker (``derived_models.py``), servable with ``--runner pooling``."""
    from derived_models import build_reranker, derived_model

    return derived_model(tiny_dir, "reranker_2label", build_reranker(tiny_dir / "student"))


@pytest.fixture(scope="session")
def fitted_student(tiny_dir: Path, small_data: Path) -> Path:
    """The tiny student fitted to ``small_data``'s synthetic test programs (``derived_models.py``)."""
    from derived_models import build_student, derived_model

    data = small_data / "synthetic" / "test.parquet"
    return derived_model(tiny_dir, "student_fitted", build_student(tiny_dir / "student", data))


@pytest.fixture(scope="session")
def fitted_teacher(tiny_dir: Path, small_data: Path) -> Path:
    """A second fitted tiny model whose programs name their result ``answer`` (``derived_models.py``)."""
    from derived_models import build_student, derived_model

    data = small_data / "synthetic" / "test.parquet"
    return derived_model(tiny_dir, "teacher_fitted", build_student(tiny_dir / "student", data,
                                                                   rename=("result", "answer")))
