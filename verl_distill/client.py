"""The one client for every served model (judge, reranker, reward model, teachers): the only network code.

Served models are OpenAI-compatible servers (vLLM, SGLang, hosted APIs) or verl's reward-model router (an
``"ip:port"`` string without scheme that proxies any path to a vLLM replica). Every request is async, shares pooled
keep-alive connections, waits for a slot of a per-client concurrency limit, has a total per-request timeout, and is
retried with exponential back-off and jitter on 5xx, 429 (honouring ``Retry-After``), timeouts, connection errors and
malformed responses. A 4xx is not retried. When the attempts are used up a :class:`ServedModelError` names the server,
the path, what happened and what to check, so a dead judge stops the run instead of becoming silent zero rewards.

Event loops: verl awaits async reward functions on the reward worker's loop, while sync callers use :func:`run_sync`
(``asyncio.run``, a new loop each time). An ``httpx.AsyncClient`` and an ``asyncio.Semaphore`` belong to one loop, so a
:class:`ModelClient` keeps that state per running loop, created lazily. It is not a ``WeakKeyDictionary``: the state
references its loop (open transports, a contended semaphore), so weak keys would never be freed. Instead the state of
closed loops is dropped on the next use, and :func:`run_sync` closes its loop's connections before the loop ends.

Limits: no streaming; a base URL whose API prefix is not ``/v1`` (e.g. ``.../v1beta/openai``) is used as given, so
the fixed ``/v1/...`` paths of the helpers do not fit it (use :meth:`ModelClient.post` with the full path).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What a parse function raises when the response lacks or mistypes a field: the response is "malformed".
PARSE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)


class ServedModelError(RuntimeError):
    """A served model failed after bounded retries, or rejected the request; the message says what to check."""

    def __init__(self, server: str, name: str, path: str, status: int | None, detail: str, *,
                 kind: str = "error", attempts: int = 1, message: str | None = None) -> None:
        self.server, self.name, self.path, self.status, self.detail = server, name, path, status, detail
        self.kind, self.attempts = kind, attempts
        super().__init__(message or f"{name} server {server}{path}: {detail}")

    def __reduce__(self) -> tuple:
        # Picklable (Ray ships a reward worker's exception to the driver) despite the keyword-only arguments.
        return (_rebuild_error, (self.server, self.name, self.path, self.status, self.detail, self.kind,
                                 self.attempts, str(self)))


def _rebuild_error(server: str, name: str, path: str, status: int | None, detail: str, kind: str, attempts: int,
                   message: str) -> ServedModelError:
    return ServedModelError(server, name, path, status, detail, kind=kind, attempts=attempts, message=message)


@dataclass(frozen=True)
class ClientOptions:
    """Connection knobs of one served model. ``api_key`` wins over the environment variable named by ``api_key_env``."""

    max_concurrency: int = 32
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    max_rps: float | None = None  # requests started per second (retries included); None = no limit


    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError(f"need 0 <= backoff_s <= backoff_max_s, got {self.backoff_s!r} and {self.backoff_max_s!r}")
        if self.max_rps is not None and not self.max_rps > 0:
            raise ValueError(f"max_rps must be > 0 or None, got {self.max_rps!r}")

    def resolve_api_key(self) -> str | None:
        """The API key to send, if any; a named but unset environment variable is an error."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ValueError(f"api_key_env={self.api_key_env!r} but that environment variable is not set: "
                                 "export it, or pass api_key")
            return key
        return None


def normalize_base_url(address: str) -> str:
    """``"127.0.0.1:8000"`` -> ``"http://127.0.0.1:8000"``; strips a trailing ``/`` and a trailing ``/v1``."""
    url = address.strip() if isinstance(address, str) else ""
    if not url:
        raise ValueError(f"empty server address {address!r}: give host:port or an http(s):// URL")
    if "://" not in url:
        url = "http://" + url  # verl's reward router address: "ip:port" / "[ipv6]:port", no scheme
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")].rstrip("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise ValueError(f"invalid server address {address!r}: {e}") from e
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"invalid server address {address!r}: expected host:port or http(s)://host[:port][/prefix]")
    return url


class _Failure(Exception):
    """One failed attempt (internal): what kind, the HTTP status if any, and the server's own words."""

    def __init__(self, kind: str, detail: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.status, self.retry_after = kind, detail, status, retry_after

    @property
    def retryable(self) -> bool:
        return self.kind not in ("rejected", "unexpected")


def _describe(f: _Failure, name: str, opts: ClientOptions) -> tuple[str, str]:
    """(what happened, what to check) for a failure kind."""
    if f.kind == "refused":
        return (f"cannot connect ({f.detail})",
                f"is the {name} server running and listening on this host:port? Start it or fix the address; "
                "a server that is still loading refuses connections (call wait_ready() first).")
    if f.kind == "timeout":
        return (f"no response within timeout_s={opts.timeout_s:g} s",
                f"raise timeout_s or lower max_concurrency (now {opts.max_concurrency}); "
                "an overloaded, hung or unreachable server also looks like this.")
    if f.kind == "connection":
        return (f"connection error ({f.detail})", "the server's log: it closed the connection (crash or restart?).")
    if f.kind == "rate_limited":
        return (f"HTTP 429 rate limited ({f.detail})",
                "the server kept rate-limiting: lower max_concurrency, or raise max_retries / backoff_max_s.")
    if f.kind == "rejected":
        missing = (" A 404 'Not Found' means the server has no such endpoint: is it the expected kind (generative vs. "
                   "`--runner pooling`) and the path right?") if f.status == 404 else ""
        return (f"HTTP {f.status}", f"the request was rejected: {f.detail}. Fix the request (model name, payload "
                f"fields, prompt length); it is not retried.{missing}")
    if f.kind == "server":
        return (f"HTTP {f.status} ({f.detail})",
                "the server's log for the error. verl's reward-model router turns a replica's 4xx (bad payload, "
                "wrong model name) into a 500 and drops the message: send the same request to a replica directly.")
    if f.kind == "malformed":
        return (f"malformed response ({f.detail})",
                "the server is not the expected kind or the endpoint is wrong (a generative vs. a pooling "
                "`--runner pooling` vLLM server, an OpenAI-compatible API, the /v1 prefix of the address).")
    return (f"unexpected HTTP {f.status} ({f.detail})", "the address: give the server's final URL.")


def _error_text(resp: httpx.Response, limit: int = 500) -> str:
    """The server's own error message: OpenAI/vLLM ``{"error": {"message"}}``, ``{"message"}``, FastAPI ``detail``."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    msg: Any = None
    if isinstance(body, dict):
        err = body.get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        msg = msg or body.get("message") or body.get("detail")
    text = str(msg) if msg else (resp.text.strip() or resp.reason_phrase or "no body")
    return text[:limit]


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), if present and valid."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass
class _LoopState:
    http: httpx.AsyncClient
    slots: asyncio.Semaphore
    pace: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_start: float = 0.0  # loop time before which no request may start (max_rps)

    async def wait_turn(self, max_rps: float | None) -> None:
        """Space request starts ``1 / max_rps`` seconds apart (hosted APIs' rate limits)."""
        if max_rps is None:
            return
        loop = asyncio.get_running_loop()
        async with self.pace:
            now = loop.time()
            start = max(now, self.next_start)
            self.next_start = start + 1.0 / max_rps
        if start > now:
            await asyncio.sleep(start - now)


_LIVE_CLIENTS: weakref.WeakSet[ModelClient] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


_DEFAULT_OPTIONS = ClientOptions()


class ModelClient:
    """Async JSON client of one served model, safe to share between event loops and threads."""

    def __init__(self, base_url: str, *, name: str = "model", options: ClientOptions = _DEFAULT_OPTIONS) -> None:
        self.base_url = normalize_base_url(base_url)
        self.name = name
        self.options = options
        self._headers = {"Accept": "application/json"}
        key = options.resolve_api_key()
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._lock = threading.Lock()
        with _LIVE_LOCK:
            _LIVE_CLIENTS.add(self)

    def __repr__(self) -> str:
        return f"ModelClient({self.base_url!r}, name={self.name!r}, options={self.options!r})"

    def __reduce__(self) -> tuple:
        return (_rebuild_client, (self.base_url, self.name, self.options))

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                for closed in [lp for lp in self._states if lp.is_closed()]:
                    del self._states[closed]  # its connections died with the loop
                n = self.options.max_concurrency
                http = httpx.AsyncClient(
                    base_url=self.base_url, headers=self._headers, timeout=httpx.Timeout(self.options.timeout_s),
                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=60.0))
                state = self._states[loop] = _LoopState(http, asyncio.Semaphore(n))
        return state

    async def _close_loop_state(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            state = self._states.pop(loop, None)
        if state is not None:
            await state.http.aclose()

    async def _attempt(self, method: str, path: str, payload: Any, parse: Callable[[Any], Any] | None) -> Any:
        state = self._state()
        async with state.slots:
            await state.wait_turn(self.options.max_rps)
            try:
                resp = await asyncio.wait_for(state.http.request(method, path, json=payload), self.options.timeout_s)
            except (httpx.TimeoutException, asyncio.TimeoutError) as e:
                raise _Failure("timeout", type(e).__name__) from e
            except httpx.ConnectError as e:
                raise _Failure("refused", str(e) or type(e).__name__) from e
            except httpx.TransportError as e:
                raise _Failure("connection", f"{type(e).__name__}: {e}") from e
        status = resp.status_code
        if status == 429:
            raise _Failure("rate_limited", _error_text(resp, 200), status, _retry_after(resp))
        if status >= 500:
            raise _Failure("server", _error_text(resp), status, _retry_after(resp))
        if status >= 400:
            raise _Failure("rejected", _error_text(resp), status)
        if not 200 <= status < 300:
            raise _Failure("unexpected", resp.headers.get("location") or _error_text(resp), status)
        try:
            data = resp.json()
            return parse(data) if parse is not None else data
        except PARSE_ERRORS as e:
            raise _Failure("malformed", f"{type(e).__name__}: {e}; body: {resp.text[:200]!r}", status) from e

    def _wait(self, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome is not None else None
        if isinstance(exc, _Failure) and exc.retry_after is not None:
            return min(exc.retry_after, self.options.backoff_max_s)
        o = self.options  # exponential with jitter (written out: tenacity renamed wait_exponential_jitter's knobs)
        return min(o.backoff_max_s, o.backoff_s * 2 ** (rs.attempt_number - 1) + random.uniform(0, o.backoff_s))

    def _log_retry(self, path: str, rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome is not None else None
        sleep = rs.next_action.sleep if rs.next_action is not None else 0.0
        logger.warning("%s server %s%s: attempt %d of %d failed (%s); retrying in %.2f s", self.name, self.base_url,
                       path, rs.attempt_number, self.options.max_retries + 1, exc, sleep)

    async def _request(self, method: str, path: str, payload: Any = None,
                       parse: Callable[[Any], Any] | None = None) -> Any:
        path = path if path.startswith("/") else "/" + path
        attempts = 0

        async def once() -> Any:
            nonlocal attempts
            attempts += 1
            return await self._attempt(method, path, payload, parse)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.options.max_retries + 1), wait=self._wait, reraise=True,
            retry=retry_if_exception(lambda e: isinstance(e, _Failure) and e.retryable),
            before_sleep=lambda rs: self._log_retry(path, rs))
        try:
            return await retrying(once)
        except _Failure as f:
            what, hint = _describe(f, self.name, self.options)
            message = f"{self.name} server {self.base_url}{path}: {what} after {attempts} attempt(s). Check: {hint}"
            raise ServedModelError(self.base_url, self.name, path, f.status, f.detail, kind=f.kind,
                                   attempts=attempts, message=message) from f.__cause__

    async def post(self, path: str, payload: dict, *, parse: Callable[[Any], T] | None = None) -> T | Any:
        """POST JSON; ``parse`` validates/extracts the reply (its KeyError/TypeError/... means "malformed")."""
        return await self._request("POST", path, payload, parse)

    async def get(self, path: str) -> Any:
        """GET and decode JSON."""
        return await self._request("GET", path)

    async def completions(self, payload: dict) -> dict:
        """POST ``/v1/completions``; the reply must carry a non-empty ``choices`` list."""
        return await self.post("/v1/completions", payload, parse=_with_choices)

    async def chat(self, payload: dict) -> dict:
        """POST ``/v1/chat/completions``; the reply must carry a non-empty ``choices`` list."""
        return await self.post("/v1/chat/completions", payload, parse=_with_choices)

    async def classify(self, inputs: list[str] | list[list[int]], *, model: str | None = None,
                       use_activation: bool = False, add_special_tokens: bool = False) -> list[list[float]]:
        """POST vLLM's ``/classify``: one ``probs`` list per input, in input order (raw logits by default)."""
        if not inputs:
            return []
        payload: dict[str, Any] = {"input": inputs, "use_activation": use_activation,
                                   "add_special_tokens": add_special_tokens}
        if model:
            payload["model"] = model

        def parse(body: dict) -> list[list[float]]:
            data = sorted(body["data"], key=lambda d: d["index"])
            if [d["index"] for d in data] != list(range(len(inputs))):
                raise ValueError(f"expected indices 0..{len(inputs) - 1}, got {[d['index'] for d in data]}")
            return [[float(p) for p in d["probs"]] for d in data]

        return await self.post("/classify", payload, parse=parse)

    async def tokenize(self, text: str, *, model: str | None = None, add_special_tokens: bool = False) -> list[int]:
        """POST vLLM's ``/tokenize``: the token ids of ``text`` under the served model's tokenizer."""
        payload: dict[str, Any] = {"prompt": text, "add_special_tokens": add_special_tokens}
        if model:
            payload["model"] = model
        return await self.post("/tokenize", payload, parse=lambda body: [int(t) for t in body["tokens"]])

    async def models(self) -> list[str]:
        """The served model ids (``GET /v1/models``)."""
        return await self._request("GET", "/v1/models", parse=lambda body: [str(m["id"]) for m in body["data"]])

    async def wait_ready(self, timeout_s: float = 300) -> None:
        """Poll ``GET /health`` until it answers 200 (vLLM, SGLang, verl's router); raise after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        state, polls, last, pause = self._state(), 0, "no answer", 0.1
        while True:
            polls += 1
            try:
                resp = await asyncio.wait_for(state.http.get("/health"), min(self.options.timeout_s, 10.0))
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}"
            except (httpx.TransportError, asyncio.TimeoutError) as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            left = deadline - time.monotonic()
            if left <= 0:
                msg = (f"{self.name} server {self.base_url}/health: not ready within {timeout_s:g} s ({last}) after "
                       f"{polls} attempt(s). Check: that the server started (its log: loading can take minutes) "
                       "and that the address is right.")
                raise ServedModelError(self.base_url, self.name, "/health", None, last, kind="not_ready",
                                       attempts=polls, message=msg)
            await asyncio.sleep(min(pause, left))
            pause = min(2 * pause, 1.0)

    async def aclose(self) -> None:
        """Close the calling event loop's connections (the client stays usable: they reopen on the next request)."""
        await self._close_loop_state(asyncio.get_running_loop())


def _with_choices(body: dict) -> dict:
    if not isinstance(body["choices"], list) or not body["choices"]:
        raise ValueError(f"'choices' is not a non-empty list: {body['choices']!r}")
    return body


def _rebuild_client(base_url: str, name: str, options: ClientOptions) -> ModelClient:
    return ModelClient(base_url, name=name, options=options)


_CACHE: dict[tuple[str, str, ClientOptions], ModelClient] = {}
_CACHE_LOCK = threading.Lock()


def get_client(base_url: str, *, name: str = "model", options: ClientOptions | None = None) -> ModelClient:
    """The process-wide client for (normalized ``base_url``, ``name``, ``options``), created on first use."""
    options = options or _DEFAULT_OPTIONS
    key = (normalize_base_url(base_url), name, options)
    with _CACHE_LOCK:
        client = _CACHE.get(key)
        if client is None:
            client = _CACHE[key] = ModelClient(key[0], name=name, options=options)
    return client


def run_sync(coro: Awaitable[T]) -> T:
    """Run ``coro`` to completion from sync code (a thread with no running loop), then close its connections."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if asyncio.iscoroutine(coro):
            coro.close()  # never awaited: avoid the "coroutine was never awaited" warning on top of the error
        raise RuntimeError("run_sync() was called from a thread whose event loop is running (e.g. inside an async "
                           "reward function): `await` the coroutine there instead, or call run_sync from a worker "
                           "thread (loop.run_in_executor)")

    async def main() -> T:
        try:
            return await coro
        finally:
            loop = asyncio.get_running_loop()
            with _LIVE_LOCK:
                clients = list(_LIVE_CLIENTS)
            for client in clients:
                await client._close_loop_state(loop)

    return asyncio.run(main())
