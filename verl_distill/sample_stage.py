"""``verl-distill sample``: sample a served model on RL rows by a named temperature schedule (seed 000 §3.1, §3.3).

One code path for teachers and students: the prompt is the row's own ``prompt`` messages (converters render the
paper's prompt into it, e.g. ``data_prep.gsm8k --template fewshot_seed000``), and a :class:`Schedule` says which
temperatures, how many samples each and how long. Seed 000's schedules are registered below; a released version
never changes meaning.

Backends: ``server`` (any OpenAI-compatible endpoint: vLLM/SGLang get token ids rendered here with the sampled
model's chat template; ``--chat`` sends the messages to ``/v1/chat/completions`` for hosted APIs) and ``offline``
(vLLM's ``LLM`` engine in this process, where vLLM is importable, i.e. GPU machines).

Resumable and safe: every (row, temperature) group is appended to ``samples.jsonl`` as soon as it arrives (flushed),
so an interrupted run loses only the requests in flight; a rerun skips finished groups; a torn last line (killed
mid-write) is dropped with a warning. ``settings.json`` (written first) pins what the directory holds: a rerun with
another model, schedule or input fails naming the keys. ``manifest.json`` is written last, when every group is in.

Temperature 0 with ``n > 1`` (the paper's 5 greedy samples) is sent as ``n`` requests of one sample each (vLLM
refuses ``n > 1`` with greedy sampling); they agree up to the engine's batch nondeterminism.

The offline backend renders prompts with the same chat template as the server backend. On CPU machines vLLM lives
in a second environment: run the stage with its interpreter (``PYTHONPATH=<repo> .venv-vllm/bin/python -m
verl_distill.sample_stage --offline-model ...``; the stage imports neither verl nor the trainer stack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from verl_distill.client import ClientOptions, get_client, run_sync
from verl_distill.io import MANIFEST, read_parquet_rows, write_manifest
from verl_distill.sampling import asample_one, load_tokenizer, render_chat_ids

logger = logging.getLogger(__name__)

SAMPLES = "samples.jsonl"
SETTINGS = "settings.json"
HIGH, LOW = "high", "low"


@dataclass(frozen=True)
class Schedule:
    """Temperatures (high-confidence ones vote, low-confidence ones add diversity), samples each, length."""

    name: str
    version: int
    high: tuple[float, ...]
    low: tuple[float, ...]
    n: int
    max_tokens: int

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def groups(self) -> list[tuple[float, str]]:
        """(temperature, confidence) of every request per row, high-confidence first."""
        return [(t, HIGH) for t in self.high] + [(t, LOW) for t in self.low]


_SCHEDULES: dict[str, Schedule] = {}


def register_schedule(schedule: Schedule) -> Schedule:
    """Make a schedule known by ``name@version`` (and by ``name`` for its newest version)."""
    old = _SCHEDULES.get(schedule.key)
    if old is not None and old != schedule:
        raise ValueError(f"schedule {schedule.key} already exists with other settings; register a new version")
    _SCHEDULES[schedule.key] = schedule
    newest = _SCHEDULES.get(schedule.name)
    if newest is None or newest.version < schedule.version:
        _SCHEDULES[schedule.name] = schedule
    return schedule


def get_schedule(key: str) -> Schedule:
    """The schedule ``name@version`` or ``name``; unknown keys list the known ones."""
    if key not in _SCHEDULES:
        raise ValueError(f"unknown sampling schedule {key!r}; known: {sorted(k for k in _SCHEDULES if '@' in k)}")
    return _SCHEDULES[key]


_LOW = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Seed 000 §4 "Data collection": 5 samples at each of 0, 0.1, 0.2, 0.3 (vote) and 0.4 ... 1.0; Appendix B.2 lengths.
SEED000_GSM8K = register_schedule(Schedule("seed000_gsm8k", 1, (0.0, 0.1, 0.2, 0.3), _LOW, 5, 512))
SEED000_MMLU_PRO = register_schedule(Schedule("seed000_mmlu_pro", 1, (0.0, 0.1, 0.2, 0.3), _LOW, 5, 1024))
# §3.3 / §4: the warm-up student sampled 30 times per question at temperature 0.7 (no vote).
SEED000_STUDENT_GSM8K = register_schedule(Schedule("seed000_student_gsm8k", 1, (), (0.7,), 30, 512))
SEED000_STUDENT_MMLU_PRO = register_schedule(Schedule("seed000_student_mmlu_pro", 1, (), (0.7,), 30, 1024))
# The CPU demo (tiny models, synthetic programs of at most ~60 tokens): the paper's temperatures, one sample each
# (4 high-confidence votes: 3 of 4 = 0.75 passes the 0.7 threshold) and 8 student samples, so that 1,000 questions
# fit in a few minutes; a tiny student SFT-trained on 300 questions memorised them (9% on held-out questions).
SEED000_CPU_V1 = register_schedule(Schedule("seed000_cpu", 1, (0.0, 0.1, 0.2, 0.3), _LOW, 1, 96))
# v2: every other low-confidence temperature (0.4, 0.6, 0.8, 1.0), 8 requests per question instead of 11, so the
# whole CPU pipeline fits its 20-minute budget; the vote (high confidence) is unchanged.
SEED000_CPU = register_schedule(Schedule("seed000_cpu", 2, (0.0, 0.1, 0.2, 0.3), _LOW[::2], 1, 96))
SEED000_STUDENT_CPU = register_schedule(Schedule("seed000_student_cpu", 1, (), (0.7,), 8, 96))


# ---------------------------------------------------------------- the samples file


def read_samples(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Records of ``samples.jsonl``: exactly the newline-terminated lines. Bytes after the last newline are a torn
    write (the run was killed mid-line): dropped with a warning, and cut from the file when ``repair``. A complete
    line that is not JSON means the file was edited or corrupted, and raises naming the line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    torn = data.rpartition(b"\n")[2]
    if torn:
        logger.warning("%s: dropping %d bytes after the last complete line (an interrupted write)", path, len(torn))
        if repair:
            with open(path, "r+b") as f:
                f.truncate(len(data) - len(torn))
    records = []
    for number, line in enumerate(data[:len(data) - len(torn)].split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON record ({err}); the file is corrupted: move it away "
                             "and rerun to sample again") from err
    return records


def group_key(row: int, temperature: float) -> tuple[int, float]:
    """Identity of one request group."""
    return (int(row), round(float(temperature), 6))


def pending_groups(n_rows: int, schedule: Schedule, done: set[tuple[int, float]]) -> list[tuple[int, float, str]]:
    """(row, temperature, confidence) groups not in ``done``, row-major."""
    return [(r, t, c) for r in range(n_rows) for t, c in schedule.groups() if group_key(r, t) not in done]


# ---------------------------------------------------------------- backends


async def _server_groups(jobs: list[tuple[int, float, str]], prompts: Sequence[Any], write: Any, *, base_url: str,
                         options: ClientOptions, n: int, max_tokens: int, model: str | None,
                         seed: int | None) -> None:
    """Request every group (bounded by the client's concurrency) and ``write`` each as it arrives; on the first
    failure the requests still in flight are cancelled and the error is raised (what was written stays)."""
    client = get_client(base_url, name="sampled model", options=options)

    async def one(job: tuple[int, float, str]) -> tuple[tuple[int, float, str], list[str]]:
        row, temperature, _ = job
        job_seed = None if seed is None else seed + row * 1000 + int(round(temperature * 100))
        texts = await asample_one(client, prompts[row], n=n, temperature=temperature, max_tokens=max_tokens,
                                  seed=job_seed, model=model)
        return job, texts

    tasks = [asyncio.ensure_future(one(j)) for j in jobs]
    try:
        for fut in asyncio.as_completed(tasks):
            write(*await fut)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _offline_groups(jobs: list[tuple[int, float, str]], prompts: Sequence[list[int]], *, model_path: str, n: int,
                    max_tokens: int, seed: int | None, chunk: int = 256) -> Iterator[tuple[tuple, list[str]]]:
    import torch
    from vllm import LLM, SamplingParams  # vLLM in this environment (on CPU: the vLLM venv's interpreter)

    # without CUDA: float32 and no CUDA graphs, as verl_distill.serving starts CPU servers (same greedy outputs)
    cpu = {} if torch.cuda.is_available() else {"dtype": "float32", "enforce_eager": True}
    llm = LLM(model=model_path, seed=seed or 0, **cpu)
    for start in range(0, len(jobs), chunk):
        part = jobs[start:start + chunk]
        owners, requests, params = [], [], []
        for i, (r, t, _) in enumerate(part):
            copies, per_request = (n, 1) if t == 0 and n > 1 else (1, n)  # greedy n > 1: n requests (as served)
            for _ in range(copies):
                owners.append(i)
                requests.append({"prompt_token_ids": prompts[r]})
                params.append(SamplingParams(n=per_request, temperature=t, max_tokens=max_tokens))
        texts: list[list[str]] = [[] for _ in part]
        for i, out in zip(owners, llm.generate(requests, params, use_tqdm=False), strict=True):
            texts[i].extend(o.text for o in out.outputs)
        yield from zip(part, texts, strict=True)


# ---------------------------------------------------------------- the stage


def _settings(rows_path: Path, schedule: Schedule, model: str, n: int, max_tokens: int, chat: bool,
              seed: int | None, limit: int | None) -> dict[str, Any]:
    stat = rows_path.stat()
    return {"rows": str(rows_path.resolve()), "rows_bytes": stat.st_size, "limit": limit, "model": model,
            "schedule": asdict(schedule) | {"key": schedule.key}, "n": n, "max_tokens": max_tokens, "chat": chat,
            "seed": seed}


def _pin_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / SETTINGS
    settings = json.loads(json.dumps(settings))  # as stored (tuples become lists)
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if changed:
            raise SystemExit(f"{out} holds samples made with other settings ({', '.join(changed)}): use another "
                             "--out, or delete the directory to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1) + "\n")


def sample_rows(rows_path: str | os.PathLike, out: str | os.PathLike, *, schedule: str, base_url: str | None = None,
                tokenizer: str | None = None, model: str | None = None, offline_model: str | None = None,
                chat: bool = False, n: int | None = None, max_tokens: int | None = None, limit: int | None = None,
                seed: int | None = None, options: ClientOptions | None = None) -> dict[str, Any]:
    """Sample every row of ``rows_path`` by ``schedule`` into ``out`` (resuming); returns the manifest."""
    rows_path, out = Path(rows_path), Path(out)
    options = options or ClientOptions(timeout_s=600.0)
    sched = get_schedule(schedule)
    n, max_tokens = n or sched.n, max_tokens or sched.max_tokens
    if (base_url is None) == (offline_model is None):
        raise ValueError("give exactly one of base_url (a served model) and offline_model (vLLM's LLM engine)")
    rows = read_parquet_rows(rows_path)[:limit]
    if not rows:
        raise ValueError(f"{rows_path}: no rows to sample")
    # the sampled model's identity: not the URL (a restarted server gets another port, and resuming must work)
    name = offline_model or model or tokenizer or base_url
    _pin_settings(out, _settings(rows_path, sched, str(name), n, max_tokens, chat, seed, limit))
    if (out / MANIFEST).exists():
        return json.loads((out / MANIFEST).read_text())
    done = {group_key(r["row"], r["temperature"]) for r in read_samples(out / SAMPLES, repair=True)}
    jobs = pending_groups(len(rows), sched, done)
    prompts = _prompts(rows, chat=chat, tokenizer=tokenizer or offline_model)
    logger.info("%s: %d of %d groups to sample (%s, n=%d)", out, len(jobs), len(rows) * len(sched.groups()),
                sched.key, n)
    with open(out / SAMPLES, "a", encoding="utf-8") as f, \
            tqdm(total=len(jobs), desc=f"sample {sched.name}", unit="group") as bar:
        def write(job: tuple[int, float, str], texts: list[str]) -> None:
            row, temperature, confidence = job
            record = {"row": row, "index": rows[row]["extra_info"]["index"], "temperature": temperature,
                      "confidence": confidence, "responses": texts}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(1)

        if offline_model is not None:
            for job, texts in _offline_groups(jobs, prompts, model_path=offline_model, n=n, max_tokens=max_tokens,
                                              seed=seed):
                write(job, texts)
        else:
            run_sync(_server_groups(jobs, prompts, write, base_url=base_url, options=options, n=n,
                                    max_tokens=max_tokens, model=model, seed=seed))
    records = read_samples(out / SAMPLES)
    info = {"stage": "sample", "schedule": sched.key, "model": str(name), "rows": len(rows), "groups": len(records),
            "samples": sum(len(r["responses"]) for r in records), "n": n, "max_tokens": max_tokens}
    write_manifest(out, info)
    return info


def _prompts(rows: list[dict[str, Any]], *, chat: bool, tokenizer: str | None) -> list[Any]:
    messages = [list(r["prompt"]) for r in rows]
    if chat:
        return messages
    if tokenizer is None:
        raise ValueError("token-id prompts need the sampled model's tokenizer (--tokenizer), or use --chat")
    tok = load_tokenizer(tokenizer)
    return [render_chat_ids(tok, m) for m in messages]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample`` subcommand."""
    p = subparsers.add_parser("sample", help="sample a served teacher or student on RL rows by a temperature schedule "
                              "(resumable; seed 000 §3.1, §3.3)")
    p.add_argument("--rows", required=True, type=Path, help="RL parquet whose prompts are sampled")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--schedule", required=True, help=f"one of {sorted(k for k in _SCHEDULES if '@' in k)}")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="OpenAI-compatible server (vLLM, SGLang, a hosted API)")
    where.add_argument("--offline-model", help="model path for vLLM's in-process LLM engine (vLLM importable here; "
                       "on CPU: PYTHONPATH=<repo> .venv-vllm/bin/python -m verl_distill.sample_stage ...)")
    p.add_argument("--tokenizer", help="the sampled model's tokenizer (token-id prompts; default: --offline-model)")
    p.add_argument("--model", help="model name to send (hosted APIs; vLLM accepts none)")
    p.add_argument("--chat", action="store_true", help="send messages to /v1/chat/completions (APIs without ids)")
    p.add_argument("--n", type=int, help="samples per temperature (default: the schedule's)")
    p.add_argument("--max-tokens", type=int, help="generation length (default: the schedule's)")
    p.add_argument("--limit", type=int, help="first N rows only")
    p.add_argument("--seed", type=int, help="request seeds (default: unseeded)")
    p.add_argument("--max-concurrency", type=int, default=32)
    p.add_argument("--max-rps", type=float, help="requests per second (hosted APIs' rate limits)")
    p.add_argument("--timeout-s", type=float, default=600.0, help="per request")
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--api-key-env", help="environment variable holding the API key")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    options = ClientOptions(max_concurrency=args.max_concurrency, timeout_s=args.timeout_s,
                            max_retries=args.max_retries, api_key_env=args.api_key_env, max_rps=args.max_rps)
    info = sample_rows(args.rows, args.out, schedule=args.schedule, base_url=args.base_url, tokenizer=args.tokenizer,
                       model=args.model, offline_model=args.offline_model, chat=args.chat, n=args.n,
                       max_tokens=args.max_tokens, limit=args.limit, seed=args.seed, options=options)
    print(f"sample: {info['rows']} rows, {info['groups']} groups, {info['samples']} samples "
          f"({info['schedule']}, {info['model']}) -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m verl_distill.sample_stage ARGS``: ``verl-distill sample ARGS`` without the other commands' imports,
    for an environment that has vLLM but not the trainer stack (the CPU vLLM venv: ``--offline-model``)."""
    from verl_distill.cli import configure_logging

    parser = argparse.ArgumentParser(prog="python -m verl_distill.sample_stage")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sample", *(sys.argv[1:] if argv is None else argv)])
    configure_logging()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
