"""verl_distill.client against real HTTP servers on 127.0.0.1 (aiohttp in a background thread), programmed per test."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from verl_distill.client import (
    ClientOptions,
    ModelClient,
    ServedModelError,
    get_client,
    normalize_base_url,
    run_sync,
)

FAST = ClientOptions(max_retries=2, backoff_s=0.01, backoff_max_s=0.05, timeout_s=5.0)
OK = {"choices": [{"text": "Yes", "index": 0}]}


@dataclass
class Reply:
    """What the test server answers: a status, a JSON body (or raw text), headers and a delay before answering."""

    status: int = 200
    body: object = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    port: int
    t: float


class Server:
    """An aiohttp server on a free port of 127.0.0.1; ``script(n, call)`` gives the reply to the n-th request."""

    def __init__(self) -> None:
        self.script: Callable[[int, Call], Reply] = lambda n, call: Reply(body=OK)
        self.calls: list[Call] = []
        self.inflight = self.max_inflight = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def answer(self, *replies: Reply) -> None:
        """Answer the n-th request with ``replies[n]``, and every later one with the last reply."""
        self.script = lambda n, call: replies[min(n, len(replies) - 1)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            call = Call(request.method, request.path, dict(request.headers), await request.read(),
                        peer[1] if peer else -1, time.monotonic())
            self.calls.append(call)
            reply = self.script(len(self.calls) - 1, call)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            text = reply.text if reply.text is not None else json.dumps(reply.body)
            ctype = "text/plain" if reply.text is not None else "application/json"
            return web.Response(status=reply.status, text=text, headers=reply.headers, content_type=ctype)
        finally:
            self.inflight -= 1

    def start(self) -> Server:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def json_of(self, i: int) -> object:
        return json.loads(self.calls[i].body)


@pytest.fixture()
def server() -> Iterator[Server]:
    srv = Server().start()
    yield srv
    srv.stop()


@pytest.fixture()
def closed_port_url() -> str:
    """A port that was free a moment ago and has no listener: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


def call(client: ModelClient, method: str, *args, **kwargs):
    """Run one client call from sync code (a fresh event loop whose connections are closed at the end)."""
    return run_sync(getattr(client, method)(*args, **kwargs))


def test_success_sends_json_and_returns_reply(server: Server) -> None:
    client = ModelClient(server.url, name="judge", options=FAST)
    out = call(client, "completions", {"prompt": "Is it right?", "max_tokens": 1})
    assert out == OK
    assert [(c.method, c.path) for c in server.calls] == [("POST", "/v1/completions")]
    assert server.json_of(0) == {"prompt": "Is it right?", "max_tokens": 1}
    assert "authorization" not in {k.lower() for k in server.calls[0].headers}


def test_500_twice_then_200_is_retried(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    server.answer(Reply(500, {"error": "boom"}), Reply(503, text="busy"), Reply(body=OK))
    client = ModelClient(server.url, name="judge", options=FAST)
    with caplog.at_level(logging.WARNING, logger="verl_distill.client"):
        assert call(client, "chat", {"messages": []}) == OK
    assert len(server.calls) == 3
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 2
    assert all(server.url in m and "/v1/chat/completions" in m for m in retries)
    assert "attempt 1 of 3" in retries[0] and "attempt 2 of 3" in retries[1]


def test_always_500_raises_after_bounded_retries(server: Server) -> None:
    server.answer(Reply(500, text="Internal Server Error"))
    client = ModelClient(server.url, name="judge", options=FAST)
    with pytest.raises(ServedModelError) as info:
        call(client, "completions", {"prompt": "x"})
    err = info.value
    assert len(server.calls) == FAST.max_retries + 1 == err.attempts
    assert (err.server, err.name, err.path, err.status, err.kind) == (server.url, "judge", "/v1/completions", 500,
                                                                      "server")
    msg = str(err)
    assert msg.startswith(f"judge server {server.url}/v1/completions: HTTP 500")
    assert "after 3 attempt(s). Check:" in msg and "server's log" in msg and "router" in msg


@pytest.mark.parametrize(("body", "text", "expected"), [
    ({"error": {"message": "maximum context length is 512 tokens", "type": "BadRequestError", "code": 400}}, None,
     "maximum context length is 512 tokens"),                       # vLLM / OpenAI
    ({"object": "error", "message": "The model `x` does not exist.", "code": 404}, None,
     "The model `x` does not exist."),                               # older vLLM
    ({"detail": "Not Found"}, None, "Not Found"),                   # FastAPI
    (None, "plain words", "plain words"),
])
def test_4xx_is_not_retried_and_carries_server_message(server: Server, body: object, text: str | None,
                                                       expected: str) -> None:
    server.answer(Reply(400, body, text=text))
    client = ModelClient(server.url, name="judge", options=FAST)
    with pytest.raises(ServedModelError) as info:
        call(client, "post", "/v1/completions", {"prompt": "x"})
    assert len(server.calls) == 1
    err = info.value
    assert (err.status, err.kind, err.attempts, err.detail) == (400, "rejected", 1, expected)
    assert expected in str(err) and "rejected" in str(err) and "after 1 attempt(s)" in str(err)


def test_404_points_at_the_endpoint(server: Server) -> None:
    server.answer(Reply(404, {"detail": "Not Found"}))  # what vLLM answers for /classify on a generative server
    with pytest.raises(ServedModelError, match="Not Found.*no such endpoint.*--runner pooling"):
        call(ModelClient(server.url, name="reranker", options=FAST), "classify", ["a"])
    assert len(server.calls) == 1


def test_429_honours_retry_after(server: Server) -> None:
    server.answer(Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0.3"}), Reply(body=OK))
    client = ModelClient(server.url, options=ClientOptions(max_retries=2, backoff_s=0.001, backoff_max_s=1.0))
    assert call(client, "completions", {}) == OK
    assert len(server.calls) == 2
    assert server.calls[1].t - server.calls[0].t >= 0.28


def test_retry_after_is_capped_by_backoff_max(server: Server) -> None:
    server.answer(Reply(429, headers={"Retry-After": "100"}), Reply(body=OK))
    client = ModelClient(server.url, options=ClientOptions(max_retries=2, backoff_s=0.001, backoff_max_s=0.1))
    t0 = time.monotonic()
    assert call(client, "completions", {}) == OK
    assert time.monotonic() - t0 < 2.0 and len(server.calls) == 2


def test_429_forever_names_rate_limiting(server: Server) -> None:
    server.answer(Reply(429, {"error": {"message": "quota"}}))
    with pytest.raises(ServedModelError, match=r"HTTP 429 rate limited \(quota\) after 3 attempt\(s\).*concurrency"):
        call(ModelClient(server.url, options=FAST), "completions", {})
    assert len(server.calls) == 3


def test_slow_server_times_out_and_is_retried(server: Server) -> None:
    server.answer(Reply(body=OK, delay=1.5))
    opts = ClientOptions(max_retries=1, backoff_s=0.01, backoff_max_s=0.02, timeout_s=0.2)
    t0 = time.monotonic()
    with pytest.raises(ServedModelError) as info:
        call(ModelClient(server.url, name="reranker", options=opts), "classify", ["a"])
    assert time.monotonic() - t0 < 1.2  # two 0.2 s attempts, not the server's 1.5 s
    assert len(server.calls) == 2 and info.value.kind == "timeout" and info.value.status is None
    assert "no response within timeout_s=0.2 s after 2 attempt(s)" in str(info.value)
    assert "raise timeout_s or lower max_concurrency" in str(info.value)


def test_connection_refused(closed_port_url: str, caplog: pytest.LogCaptureFixture) -> None:
    client = ModelClient(closed_port_url, name="judge", options=FAST)
    with caplog.at_level(logging.WARNING, logger="verl_distill.client"), pytest.raises(ServedModelError) as info:
        call(client, "completions", {})
    err = info.value
    assert err.kind == "refused" and err.attempts == 3 and err.server == "http://" + closed_port_url
    assert f"judge server http://{closed_port_url}/v1/completions: cannot connect" in str(err)
    assert "is the judge server running" in str(err)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_non_json_body_is_malformed(server: Server) -> None:
    server.answer(Reply(200, text="<html>hello</html>"))
    with pytest.raises(ServedModelError) as info:
        call(ModelClient(server.url, options=FAST), "get", "/v1/models")
    assert info.value.kind == "malformed" and len(server.calls) == 3
    assert "malformed response" in str(info.value) and "not the expected kind" in str(info.value)


@pytest.mark.parametrize("body", [{"id": "x"}, {"choices": []}, {"choices": None}, [1, 2]])
def test_missing_fields_are_malformed(server: Server, body: object) -> None:
    server.answer(Reply(body=body))
    with pytest.raises(ServedModelError, match="malformed response") as info:
        call(ModelClient(server.url, options=FAST), "completions", {})
    assert info.value.attempts == 3 and len(server.calls) == 3


def test_parse_failure_is_retried_then_succeeds(server: Server) -> None:
    server.answer(Reply(body={"data": []}), Reply(body={"data": [{"value": 7}]}))
    out = call(ModelClient(server.url, options=FAST), "post", "/x", {}, parse=lambda b: b["data"][0]["value"])
    assert out == 7 and len(server.calls) == 2


def test_concurrency_limit_is_respected(server: Server) -> None:
    server.answer(Reply(body=OK, delay=0.05))
    client = ModelClient(server.url, options=ClientOptions(max_concurrency=3, timeout_s=5))

    async def many() -> list[dict]:
        try:
            return await asyncio.gather(*(client.completions({"i": i}) for i in range(20)))
        finally:
            await client.aclose()

    assert asyncio.run(many()) == [OK] * 20
    assert len(server.calls) == 20 and server.max_inflight == 3
    assert len({c.port for c in server.calls}) <= 3


def test_waiting_for_a_slot_does_not_count_against_the_timeout(server: Server) -> None:
    server.answer(Reply(body=OK, delay=0.1))
    client = ModelClient(server.url, options=ClientOptions(max_concurrency=1, timeout_s=0.3, max_retries=0))
    assert call(client, "post", "/x", {}) == OK  # warm up the connection

    async def many() -> list[dict]:
        return await asyncio.gather(*(client.completions({"i": i}) for i in range(8)))

    assert run_sync(many()) == [OK] * 8  # 0.8 s in all, but each request only 0.1 s once it has its slot
    assert server.max_inflight == 1


def test_connections_are_reused(server: Server) -> None:
    client = ModelClient(server.url, options=FAST)

    async def sequential() -> None:
        for i in range(30):
            await client.completions({"i": i})
        await client.aclose()

    asyncio.run(sequential())
    assert len(server.calls) == 30 and len({c.port for c in server.calls}) == 1


def test_one_client_many_event_loops(server: Server) -> None:
    client = get_client(server.url, name="judge", options=FAST)

    async def one() -> object:
        return await client.completions({})

    assert asyncio.run(one()) == OK
    assert asyncio.run(one()) == OK  # a new loop: new connections; the first (closed) loop's state is dropped
    assert len(client._states) == 1
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(run_sync(one()))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [OK, OK] and len(server.calls) == 4
    assert client._states == {}  # run_sync closed its loops' connections, and the last closed loop was dropped


def test_run_sync_in_running_loop_is_a_clear_error(server: Server) -> None:
    client = ModelClient(server.url, options=FAST)

    async def inside() -> None:
        run_sync(client.completions({}))

    with pytest.raises(RuntimeError, match="await"):
        asyncio.run(inside())
    assert server.calls == []


def test_api_key_header(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    call(ModelClient(server.url, options=ClientOptions(api_key="sk-direct")), "completions", {})
    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-env")
    call(ModelClient(server.url, options=ClientOptions(api_key_env="TEST_JUDGE_KEY")), "completions", {})
    assert [c.headers.get("Authorization") for c in server.calls] == ["Bearer sk-direct", "Bearer sk-env"]
    monkeypatch.delenv("TEST_JUDGE_KEY")
    with pytest.raises(ValueError, match="TEST_JUDGE_KEY"):
        ModelClient(server.url, options=ClientOptions(api_key_env="TEST_JUDGE_KEY"))
    assert "sk-direct" not in repr(ClientOptions(api_key="sk-direct"))


def test_vllm_helpers(server: Server) -> None:
    def script(n: int, c: Call) -> Reply:
        if c.path == "/classify":
            return Reply(body={"data": [{"index": 1, "probs": [0.1, 0.9]}, {"index": 0, "probs": [2.0, -1.0]}]})
        if c.path == "/tokenize":
            return Reply(body={"count": 2, "max_model_len": 512, "tokens": [5, 9]})
        return Reply(body={"object": "list", "data": [{"id": "/models/judge", "object": "model"}]})

    server.script = script
    client = ModelClient(server.url, options=FAST)
    assert call(client, "classify", ["a", "b"], model="rm") == [[2.0, -1.0], [0.1, 0.9]]
    assert server.json_of(0) == {"input": ["a", "b"], "use_activation": False, "add_special_tokens": False,
                                 "model": "rm"}
    assert call(client, "tokenize", "Yes") == [5, 9]
    assert server.json_of(1) == {"prompt": "Yes", "add_special_tokens": False}
    assert call(client, "models") == ["/models/judge"]
    assert [(c.method, c.path) for c in server.calls] == [("POST", "/classify"), ("POST", "/tokenize"),
                                                           ("GET", "/v1/models")]
    assert call(client, "classify", []) == [] and len(server.calls) == 3
    with pytest.raises(ServedModelError, match="malformed.*expected indices 0..2"):
        call(client, "classify", ["a", "b", "c"])


def test_wait_ready(server: Server, closed_port_url: str) -> None:
    server.answer(Reply(503, text="loading"), Reply(503, text="loading"), Reply(200, text=""))
    call(ModelClient(server.url), "wait_ready", timeout_s=10)
    assert [c.path for c in server.calls] == ["/health"] * 3
    t0 = time.monotonic()
    with pytest.raises(ServedModelError, match="not ready within 0.3 s") as info:
        call(ModelClient(closed_port_url, name="judge"), "wait_ready", timeout_s=0.3)
    assert info.value.kind == "not_ready" and time.monotonic() - t0 < 3


def test_get_client_caches_per_url_name_options() -> None:
    a = get_client("127.0.0.1:8000", name="judge", options=FAST)
    assert get_client("http://127.0.0.1:8000/v1/", name="judge", options=FAST) is a
    assert get_client("127.0.0.1:8000", name="reranker", options=FAST) is not a
    assert get_client("127.0.0.1:8000", name="judge") is not a
    assert get_client("127.0.0.1:8000", name="judge", options=ClientOptions()) is get_client("127.0.0.1:8000",
                                                                                             name="judge")


def test_errors_and_clients_pickle(closed_port_url: str) -> None:
    client = ModelClient(closed_port_url, name="judge", options=FAST)
    with pytest.raises(ServedModelError) as info:
        call(client, "completions", {})
    err = pickle.loads(pickle.dumps(info.value))
    assert (str(err), err.server, err.status, err.kind, err.attempts) == (str(info.value), info.value.server, None,
                                                                          "refused", 3)
    copy = pickle.loads(pickle.dumps(client))
    assert (copy.base_url, copy.name, copy.options) == (client.base_url, "judge", FAST)


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("[::1]:8000", "http://[::1]:8000"),
    ("  10.0.0.5:30000/ ", "http://10.0.0.5:30000"),
    ("http://localhost:8000/", "http://localhost:8000"),
    ("https://api.openai.com/v1", "https://api.openai.com"),
    ("https://api.together.xyz/v1/", "https://api.together.xyz"),
    ("http://gateway:80/judge/v1", "http://gateway:80/judge"),
    ("http://host:8000/v10", "http://host:8000/v10"),
])
def test_normalize_base_url(address: str, expected: str) -> None:
    assert normalize_base_url(address) == expected


@pytest.mark.parametrize("address", ["", "   ", "ftp://host:21", "http://", "http://[::1:80"])
def test_normalize_base_url_rejects(address: str) -> None:
    with pytest.raises(ValueError, match="server address"):
        normalize_base_url(address)


@pytest.mark.parametrize("kwargs", [{"max_concurrency": 0}, {"timeout_s": 0}, {"max_retries": -1},
                                    {"backoff_s": 2.0, "backoff_max_s": 1.0}, {"max_rps": 0}])
def test_options_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ClientOptions(**kwargs)


def test_max_rps_spaces_request_starts(server: Server) -> None:
    """A hosted API's rate limit: 9 concurrent requests at max_rps=20 start at least 1/20 s apart."""
    client = ModelClient(server.url, options=ClientOptions(max_concurrency=9, timeout_s=5, max_rps=20.0))

    async def many() -> list[dict]:
        try:
            return await asyncio.gather(*(client.completions({"i": i}) for i in range(9)))
        finally:
            await client.aclose()

    assert asyncio.run(many()) == [OK] * 9
    starts = sorted(c.t for c in server.calls)
    assert starts[-1] - starts[0] >= 8 / 20 - 0.02  # 8 gaps of 50 ms (arrival jitter allowed)
    assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= 0.03
