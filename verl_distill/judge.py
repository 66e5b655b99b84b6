"""The one-step Yes/No judge (seed 002 §2.2.2): reward = sigmoid((logit_Yes - logit_No) / T), 0 below a threshold.

The judge LLM reads a versioned prompt (``judge_pot@1`` / ``judge_nl@1`` in :mod:`verl_distill.prompts`) rendered
with the JUDGE's chat template and tokenizer (thinking off for models that have it, e.g. Qwen3), so its next token is
the verdict. One request, one forward step: ``/v1/completions`` with ``max_tokens=1``, ``temperature=0``,
``allowed_token_ids`` = the Yes and No token ids, and ``logprobs`` for all of them. With the server's
``--logprobs-mode processed_logprobs`` the returned log-probs are renormalised over the allowed tokens only, so
``lp_yes - lp_no`` equals the logit difference exactly (the normaliser cancels). With the default ``raw_logprobs`` the
losing token may be missing and the values are not renormalised; :meth:`YesNoJudge.check_server` detects that once
per server and fails with the flag to add.

Tokenizer variants: a verdict word may be one token in several spellings (``Yes``, `` Yes``, ``yes``). Every
spelling that is one token is allowed, and the margin is ``logsumexp(lp of Yes spellings) - logsumexp(lp of No
spellings)``: with one spelling each this is exactly the logit difference of the paper.

Hosted judges without logprobs: ``mode="generate"`` asks ``/v1/chat/completions`` for a short verdict (up to 16
tokens) and parses its first word; the reward is 1.0 for Yes and 0.0 for No, and the reward's output says
``judge_mode="generate"``. For a thinking model served by vLLM in this mode set ``thinking_off`` (sends
``chat_template_kwargs={"enable_thinking": false}``; hosted APIs reject that field, so it is off by default).
An unparseable verdict scores 0 with ``judge_parsed=0`` and a warning.

The math and the request building are pure functions (tested without a server); the network goes through
:mod:`verl_distill.client` only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from verl_distill.client import ClientOptions, ModelClient, get_client
from verl_distill.prompts import JUDGE_TEMPLATES, get_template

logger = logging.getLogger(__name__)

MODES = ("logprobs", "generate")
YES_SPELLINGS = ("Yes", " Yes", "yes", " yes", "YES")
NO_SPELLINGS = ("No", " No", "no", " no", "NO")
GENERATE_MAX_TOKENS = 16
_PROBE_PROMPT = "The weather in the mountains"  # a prompt after which Yes/No are unlikely under the raw distribution
_VERDICT = re.compile(r"^\W*(yes|no)\b", re.I)


class JudgeConfigError(RuntimeError):
    """The judge server or its settings cannot give the one-step reward (message names the fix)."""


@dataclass(frozen=True)
class VerdictTokens:
    """Token ids of every one-token spelling of Yes and of No in the judge's tokenizer."""

    yes: tuple[int, ...]
    no: tuple[int, ...]

    @property
    def allowed(self) -> list[int]:
        """All ids, Yes spellings first."""
        return [*self.yes, *self.no]


def verdict_tokens(tokenizer: Any) -> VerdictTokens:
    """One-token spellings of Yes and of No; raises when a word has none (no one-step answer possible)."""
    found: dict[str, list[int]] = {"Yes": [], "No": []}
    for word, spellings in (("Yes", YES_SPELLINGS), ("No", NO_SPELLINGS)):
        for spelling in spellings:
            ids = tokenizer.encode(spelling, add_special_tokens=False)
            if len(ids) == 1 and ids[0] not in found[word]:
                found[word].append(ids[0])
        if not found[word]:
            raise JudgeConfigError(
                f"the judge tokenizer has no single-token spelling of {word!r} (tried {spellings}); a one-step judge "
                "needs one: use another judge model or mode='generate'"
            )
    if set(found["Yes"]) & set(found["No"]):
        raise JudgeConfigError(f"Yes and No share token ids {set(found['Yes']) & set(found['No'])}")
    return VerdictTokens(tuple(found["Yes"]), tuple(found["No"]))


def render_judge_prompt(tokenizer: Any, template_key: str, question: str, solution: str) -> list[int]:
    """Judge prompt as token ids: template -> user message -> the judge's chat template with the generation prompt."""
    return chat_prompt_ids(tokenizer, get_template(template_key).render(question=question, solution=solution))


def chat_prompt_ids(tokenizer: Any, user_text: str) -> list[int]:
    """``user_text`` as one user message in the judge's chat template, generation prompt on, thinking off, as ids
    (what the served judge reads; judge training tokenizes its rows the same way)."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_text}], add_generation_prompt=True, tokenize=False, enable_thinking=False
    )
    return tokenizer.encode(rendered, add_special_tokens=False)


def template_for_task(task: str | None, template: str | None = None) -> str:
    """The judge template key: ``template`` if given, else the one for the row's task (pot/nl)."""
    if template is not None:
        return get_template(template).key
    if task not in JUDGE_TEMPLATES:
        raise ValueError(f"no judge template for task={task!r}; pass reward_kwargs judge_template=<name@version>")
    return JUDGE_TEMPLATES[task].key


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values)) if top > -math.inf else -math.inf


def margin_from_logprobs(top_logprobs: dict[str, float], tokens: VerdictTokens) -> float:
    """``logsumexp(Yes lps) - logsumexp(No lps)`` from vLLM's ``{"token_id:<id>": lp}`` map.

    Every allowed id must be present: with ``processed_logprobs`` the server always returns all of them, and the
    difference is exact even when they are not renormalised; a missing one means the server picked its top tokens
    before the allowed-token mask (``raw_logprobs``), and guessing -inf for it would turn into a silent 0 or 1.
    """
    ids = [*tokens.yes, *tokens.no]
    missing = [i for i in ids if f"token_id:{i}" not in top_logprobs]
    if len(missing) == len(ids):
        raise KeyError(f"none of the Yes/No ids {ids} in the returned logprobs {top_logprobs}")
    if missing:
        raise JudgeConfigError(
            f"the judge server returned log-probs for {sorted(set(ids) - set(missing))} but not for {missing} of the "
            "allowed Yes/No tokens: it is not running with --logprobs-mode processed_logprobs (restart it with that "
            "flag; verl's own reward-model server already uses it)"
        )

    def lps(group: tuple[int, ...]) -> list[float]:
        return [float(top_logprobs[f"token_id:{i}"]) for i in group]

    return _logsumexp(lps(tokens.yes)) - _logsumexp(lps(tokens.no))


def judge_score(margin: float, *, temperature: float, threshold: float) -> tuple[float, float]:
    """``(reward, raw)``: raw = sigmoid(margin / T); reward = raw, or 0 when raw < threshold."""
    z = margin / temperature
    raw = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return (raw if raw >= threshold else 0.0), raw


def parse_verdict(text: str) -> float | None:
    """1.0 for a reply starting with Yes, 0.0 for No (any case, leading punctuation/space), None otherwise."""
    match = _VERDICT.match(text or "")
    return None if match is None else (1.0 if match.group(1).lower() == "yes" else 0.0)


@dataclass(frozen=True)
class JudgeSettings:
    """Knobs of the judge reward (all reachable through verl's ``reward_kwargs``)."""

    temperature: float = 1.0
    threshold: float = 0.5
    mode: str = "logprobs"
    model: str | None = None  # name sent as "model"; None lets a vLLM server use its only model
    cache_size: int = 0  # results kept across batches (0 = off); identical pairs in flight are always scored once
    thinking_off: bool = False  # generate mode: send chat_template_kwargs enable_thinking=False (vLLM + Qwen3)
    client: ClientOptions = field(default_factory=ClientOptions)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"judge temperature={self.temperature} must be > 0")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"judge threshold={self.threshold} must be in [0, 1]")
        if self.mode not in MODES:
            raise ValueError(f"judge mode={self.mode!r} is not one of {MODES}")
        if self.cache_size < 0:
            raise ValueError(f"judge cache_size={self.cache_size} must be >= 0")


@dataclass(frozen=True)
class Verdict:
    """One judged sample: ``reward`` (thresholded), ``raw`` sigmoid, ``margin`` (NaN in generate mode)."""

    reward: float
    raw: float
    margin: float
    mode: str
    parsed: bool = True


class YesNoJudge:
    """A served judge model. Safe to share between concurrent coroutines of one event loop."""

    def __init__(self, base_url: str, tokenizer: Any, settings: JudgeSettings = JudgeSettings()) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self.tokens = verdict_tokens(tokenizer) if settings.mode == "logprobs" else None
        self.client: ModelClient = get_client(base_url, name="judge", options=settings.client)
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._cache: LRUCache | None = LRUCache(settings.cache_size) if settings.cache_size else None
        self._checked = False
        self._check_lock: asyncio.Lock | None = None

    def _payload(self, prompt_ids: list[int]) -> dict[str, Any]:
        assert self.tokens is not None
        payload = {
            "prompt": prompt_ids, "max_tokens": 1, "temperature": 0.0, "logprobs": len(self.tokens.allowed),
            "allowed_token_ids": self.tokens.allowed, "return_tokens_as_token_ids": True,
        }
        if self.settings.model:
            payload["model"] = self.settings.model
        return payload

    async def _margin(self, prompt_ids: list[int]) -> float:
        assert self.tokens is not None
        tokens = self.tokens

        def parse(body: dict) -> float:
            return margin_from_logprobs(body["choices"][0]["logprobs"]["top_logprobs"][0], tokens)

        return await self.client.post("/v1/completions", self._payload(prompt_ids), parse=parse)

    async def check_server(self) -> None:
        """Once per judge: verify the server renormalises log-probs over the allowed tokens (processed_logprobs)."""
        if self._checked or self.settings.mode != "logprobs":
            return
        if self._check_lock is None:
            self._check_lock = asyncio.Lock()
        async with self._check_lock:
            if self._checked:
                return
            assert self.tokens is not None
            ids = self.tokenizer.encode(_PROBE_PROMPT, add_special_tokens=False)
            payload = self._payload(ids)
            body = await self.client.post("/v1/completions", payload, parse=lambda b: b["choices"][0]["logprobs"])
            top = body["top_logprobs"][0]
            lps = [float(top[f"token_id:{i}"]) for i in self.tokens.allowed if f"token_id:{i}" in top]
            total = _logsumexp(lps) if lps else -math.inf
            if len(lps) != len(self.tokens.allowed) or abs(total) > 1e-3:
                raise JudgeConfigError(
                    f"judge server {self.client.base_url} does not return log-probs renormalised over the allowed "
                    f"Yes/No tokens (got {len(lps)}/{len(self.tokens.allowed)} of them, total probability "
                    f"{math.exp(total):.4f}); start vLLM with --logprobs-mode processed_logprobs (verl's own reward "
                    "model server already does), or use mode='generate'"
                )
            self._checked = True

    async def _generate(self, question: str, solution: str, template_key: str) -> Verdict:
        text = get_template(template_key).render(question=question, solution=solution)
        payload: dict[str, Any] = {
            "messages": [{"role": "user", "content": text}], "max_tokens": GENERATE_MAX_TOKENS, "temperature": 0.0,
        }
        if self.settings.model:
            payload["model"] = self.settings.model
        if self.settings.thinking_off:  # hosted APIs reject unknown fields, so only on request
            payload["chat_template_kwargs"] = {"enable_thinking": False}
        reply = await self.client.post(
            "/v1/chat/completions", payload, parse=lambda b: b["choices"][0]["message"]["content"] or ""
        )
        value = parse_verdict(reply)
        if value is None:
            logger.warning("judge reply %r is neither Yes nor No; scored 0 and flagged judge_parsed=0", reply[:80])
            return Verdict(0.0, 0.0, math.nan, "generate", parsed=False)
        return Verdict(value if value >= self.settings.threshold else 0.0, value, math.nan, "generate")

    async def _judge_uncached(self, question: str, solution: str, template_key: str) -> Verdict:
        if self.settings.mode == "generate":
            return await self._generate(question, solution, template_key)
        await self.check_server()
        margin = await self._margin(render_judge_prompt(self.tokenizer, template_key, question, solution))
        reward, raw = judge_score(margin, temperature=self.settings.temperature, threshold=self.settings.threshold)
        return Verdict(reward, raw, margin, "logprobs")

    async def judge(self, question: str, solution: str, template_key: str) -> Verdict:
        """Score one (question, solution); identical pairs in flight share one request, the cache spans batches."""
        key = (template_key, question, solution)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            verdict = await self._judge_uncached(question, solution, template_key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(verdict)
        if self._cache is not None:
            self._cache[key] = verdict
        return verdict
