"""The judge's pure parts (math, tokens, prompts, guards, policy) and its failure modes against real local servers."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from verl.utils.import_utils import load_extern_object

from verl_distill.client import ServedModelError
from verl_distill.guards import GUARD_ANSWER_ONLY, GUARD_EMPTY, GUARD_NONE, GUARD_SHORT, GuardConfig, check, runs
from verl_distill.judge import (
    JudgeConfigError,
    JudgeSettings,
    VerdictTokens,
    judge_score,
    margin_from_logprobs,
    parse_verdict,
    render_judge_prompt,
    template_for_task,
    verdict_tokens,
)
from verl_distill.policy import format_policy, parse_policy, plan_from_coefficients
from verl_distill.reranker import correct_probability, reranker_ids, reranker_text

REPO = Path(__file__).resolve().parents[1]
PROGRAM = "    a = 3\n    b = 4\n    total = a + b\n    return total\n"


@pytest.fixture(scope="module")
def tok(tiny_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir / "teacher")


# --- math -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("margin", "t", "threshold", "reward", "raw"), [
    (0.0, 1.0, 0.5, 0.5, 0.5),
    (2.0, 1.0, 0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-2))),
    (2.0, 2.0, 0.5, 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-1))),
    (-1.0, 1.0, 0.5, 0.0, 1 / (1 + math.exp(1))),  # below the threshold: 0
    (-1.0, 1.0, 0.0, 1 / (1 + math.exp(1)), 1 / (1 + math.exp(1))),  # threshold off
    (-800.0, 1.0, 0.0, 0.0, 0.0),  # no overflow
    (800.0, 0.5, 0.5, 1.0, 1.0),
])
def test_judge_score(margin, t, threshold, reward, raw):
    got_reward, got_raw = judge_score(margin, temperature=t, threshold=threshold)
    assert got_reward == pytest.approx(reward, abs=1e-12) and got_raw == pytest.approx(raw, abs=1e-12)


def test_margin_is_the_logit_difference_and_sums_spellings():
    tokens = VerdictTokens(yes=(5,), no=(7,))
    assert margin_from_logprobs({"token_id:5": -0.1, "token_id:7": -2.4}, tokens) == pytest.approx(2.3)
    two = VerdictTokens(yes=(5, 6), no=(7,))
    lps = {"token_id:5": math.log(0.3), "token_id:6": math.log(0.2), "token_id:7": math.log(0.5)}
    assert margin_from_logprobs(lps, two) == pytest.approx(0.0, abs=1e-12)  # P(Yes)=0.3+0.2 vs P(No)=0.5
    with pytest.raises(JudgeConfigError, match="processed_logprobs"):  # raw mode dropped the losing token
        margin_from_logprobs({"token_id:5": -0.0}, tokens)
    with pytest.raises(KeyError):  # nothing usable: a malformed reply (retried by the client, then an error)
        margin_from_logprobs({"token_id:9": -1.0}, tokens)


@pytest.mark.parametrize(("text", "value"), [
    ("Yes", 1.0), ("yes.", 1.0), (" **Yes**, the answer is right", 1.0), ("No", 0.0), ("no, 5 is wrong", 0.0),
    ("Nope", None), ("The answer is yes", None), ("", None), ("Yesterday", None),
])
def test_parse_verdict(text, value):
    assert parse_verdict(text) == value


def test_settings_validate():
    for bad in ({"temperature": 0}, {"threshold": 1.5}, {"mode": "vibes"}, {"cache_size": -1}):
        with pytest.raises(ValueError):
            JudgeSettings(**bad)


# --- tokens and prompts ------------------------------------------------------------------------------------------

def test_verdict_tokens_tiny(tok):
    tokens = verdict_tokens(tok)
    assert tokens.yes == (tok.convert_tokens_to_ids("Yes"),) and tokens.no == (tok.convert_tokens_to_ids("No"),)


def test_verdict_tokens_variants(tiny_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir / "teacher")
    tok.add_tokens(["yes", "NO"])
    tokens = verdict_tokens(tok)
    assert set(tokens.yes) == {tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("yes")}
    assert set(tokens.no) == {tok.convert_tokens_to_ids("No"), tok.convert_tokens_to_ids("NO")}


def test_verdict_tokens_missing(tiny_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir / "student")
    tok.add_tokens(["Yes"])  # no one-token "No" in any spelling? the tiny vocab has "No": remove it via a fresh vocab
    assert verdict_tokens(tok)  # sanity: both exist in the tiny tokenizer

    class NoNo:
        def encode(self, text, add_special_tokens=False):
            return [1] if text.strip().lower() == "yes" else [2, 3]

    with pytest.raises(JudgeConfigError, match="single-token spelling of 'No'"):
        verdict_tokens(NoNo())


def test_judge_prompt_uses_the_judge_chat_template(tok):
    ids = render_judge_prompt(tok, "judge_pot@1", "Tom has 3 apples and buys 4. How many?", PROGRAM)
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")
    assert "Tom has 3 apples" in text and "return total" in text and "Yes or No" in text


def test_template_for_task():
    assert template_for_task("pot") == "judge_pot@1" and template_for_task("nl") == "judge_nl@1"
    assert template_for_task("mc", "judge_nl@1") == "judge_nl@1"
    with pytest.raises(ValueError, match="judge_template"):
        template_for_task("mc")


# --- guards ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("response", "task", "guard"), [
    ("", "pot", GUARD_EMPTY),
    ("   \n", "nl", GUARD_EMPTY),
    ("42", "pot", GUARD_ANSWER_ONLY),
    ("The answer is 42.", "nl", GUARD_ANSWER_ONLY),
    ("#### 1,250", "nl", GUARD_ANSWER_ONLY),
    ("    return 42\n", "pot", GUARD_ANSWER_ONLY),
    ("    a = 3\n    return a + 4\n", "pot", GUARD_SHORT),
    ("I think it is about seven apples", "pot", GUARD_SHORT),  # prose: no program
    (PROGRAM, "pot", GUARD_NONE),
    ("Tom has 3 + 4 = 7 apples.\n#### 7", "nl", GUARD_NONE),
])
def test_guards(response, task, guard):
    assert check(response, task, GuardConfig()) == guard


def test_guards_configurable():
    assert check("    a = 3\n    return a + 4\n", "pot", GuardConfig(min_program_lines=0)) == GUARD_NONE
    assert check("42", "pot", GuardConfig(min_program_lines=0, reject_answer_only=False)) == GUARD_NONE
    assert check("", "pot", GuardConfig(min_program_lines=0, reject_answer_only=False)) == GUARD_NONE
    with pytest.raises(ValueError):
        GuardConfig(min_program_lines=-1)


# --- reranker math -----------------------------------------------------------------------------------------------

def test_reranker_input_and_probability(tok):
    assert reranker_text(" Q? ", "x = 1\n") == "Question:\nQ?\nAnswer reasoning:\nx = 1"
    ids = reranker_ids(tok, "Q" * 3000, "x", max_length=700)
    assert len(ids) == 700 and ids == tok.encode(reranker_text("Q" * 3000, "x"), add_special_tokens=False)[:700]
    assert correct_probability([0.0, 0.0]) == pytest.approx(0.5)
    assert correct_probability([1.0, 3.0]) == pytest.approx(1 / (1 + math.exp(-2)))
    assert correct_probability([1.0, 3.0], correct_label=0) == pytest.approx(1 / (1 + math.exp(2)))
    with pytest.raises(ValueError, match="two-class"):
        correct_probability([0.3])


# --- policy ------------------------------------------------------------------------------------------------------

def test_policy_round_trip_and_errors():
    spec = "gold=pot:1;none=judge:0.5,reranker:0.5"
    policy = parse_policy(spec)
    assert format_policy(policy) == spec and policy.components == ["pot", "judge", "reranker"]
    assert parse_policy("gold=pot;none=judge").table == {"gold": (("pot", 1.0),), "none": (("judge", 1.0),)}
    assert parse_policy("none=my/file.py:fn:0.3").table["none"] == (("my/file.py:fn", 0.3),)
    assert parse_policy("none=pkg.mod:fn,judge:2e-1").table["none"] == (("pkg.mod:fn", 1.0), ("judge", 0.2))
    for bad in ("", "labeled=pot", "gold=pot;gold=answer", "gold=pot:-1", "gold=", "none=judge:1;;gold"):
        with pytest.raises(ValueError):
            parse_policy(bad)
    with pytest.raises(ValueError, match="teacher_vote"):
        policy.for_row("teacher_vote", row="r1: ")


@pytest.mark.parametrize(("coef", "batch", "labeled", "policy"), [
    ((0.5, 0.25, 0.25), 24, 12, "gold=pot:1;none=judge:0.5,reranker:0.5"),
    ((0.5, 0.5, 0.0), 24, 12, "gold=pot:1;none=judge:1"),
    ((1.0, 0.0, 0.0), 24, 24, "gold=pot:1"),
    ((0.0, 0.5, 0.5), 16, 0, "none=judge:0.5,reranker:0.5"),
    ((0.5, 0.5, 0.0), 16, 8, "gold=pot:1;none=judge:1"),
    ((0.01, 0.99, 0.0), 8, 1, "gold=pot:1;none=judge:1"),  # a nonzero share keeps one prompt
])
def test_plan_from_coefficients(coef, batch, labeled, policy):
    plan = plan_from_coefficients(*coef, batch_size=batch)
    assert (plan.labeled, plan.unlabeled, format_policy(plan.policy)) == (labeled, batch - labeled, policy)


def test_plan_rejects_non_convex_and_warns_unlabeled_only(caplog):
    with pytest.raises(ValueError, match="sum to 1"):
        plan_from_coefficients(0.5, 0.5, 0.5, batch_size=24)
    with caplog.at_level("WARNING"):
        assert plan_from_coefficients(0.0, 1.0, 0.0, batch_size=24).only_unlabeled
    assert "collapse" in caplog.text


# --- the reward files, loaded by path the way verl does, against real local servers --------------------------------

class _Handler(BaseHTTPRequestHandler):
    calls: list[str] = []
    mode = "garbage"

    def do_POST(self):  # noqa: N802
        type(self).calls.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"not json" if self.mode == "garbage" else json.dumps({"choices": [{"text": "Yes"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def bad_server() -> Iterator[tuple[str, type]]:
    handler = type("H", (_Handler,), {"calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def _load(name: str):
    return load_extern_object(str(REPO / "reward_fns" / f"{name}.py"), "compute_score")


def _kwargs(url: str, tiny_dir: Path) -> dict:
    return {"judge_url": url, "judge_tokenizer": str(tiny_dir / "teacher"), "max_retries": 2, "timeout_s": 5.0}


EXTRA = {"question": "Tom has 3 apples and buys 4. How many?", "task": "pot", "label_source": "none", "index": 0}


@pytest.mark.parametrize("mode", ["garbage", "missing_fields"])
def test_judge_malformed_response_raises_after_retries(bad_server, tiny_dir, mode):
    url, handler = bad_server
    handler.mode = mode
    fn = _load("judge_yes_no")
    with pytest.raises(ServedModelError) as err:
        asyncio.run(fn(data_source="d", solution_str=PROGRAM, ground_truth="", extra_info=EXTRA,
                       **_kwargs(url, tiny_dir)))
    assert url in str(err.value) and "judge" in str(err.value)
    assert len(handler.calls) == 3  # 1 + max_retries, then the clear error (never a silent zero)


def test_judge_down_raises(tiny_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    fn = _load("judge_yes_no")
    with pytest.raises(ServedModelError, match=f"127.0.0.1:{port}"):
        asyncio.run(fn(data_source="d", solution_str=PROGRAM, ground_truth="", extra_info=EXTRA,
                       **_kwargs(f"http://127.0.0.1:{port}", tiny_dir)))


def test_judge_guard_needs_no_server(tiny_dir):
    fn = _load("judge_yes_no")
    out = asyncio.run(fn(data_source="d", solution_str="42", ground_truth="", extra_info=EXTRA,
                         judge_url="http://127.0.0.1:9", judge_tokenizer=str(tiny_dir / "teacher")))
    assert out["score"] == 0.0 and out["guard"] == GUARD_ANSWER_ONLY and out["judge_called"] == 0.0
    assert set(out) == {"score", "judge", "judge_raw", "judge_margin", "judge_called", "judge_parsed", "guard",
                        "judge_mode"}


def test_require_runnable_zeroes_crashing_programs_without_the_judge(tiny_dir):
    """Our own (non-paper) guard: a program that does not run never reaches the judge; off by default."""
    fn = _load("judge_yes_no")
    crash = "def solution():\n    a = 3\n    b = 4\n    c = a + d\n    return c\n"
    out = asyncio.run(fn(data_source="d", solution_str=crash, ground_truth="", extra_info=EXTRA, require_runnable=True,
                         judge_url="http://127.0.0.1:9", judge_tokenizer=str(tiny_dir / "teacher")))
    assert out["score"] == 0.0 and out["guard"] == "not_runnable" and out["judge_called"] == 0.0
    assert runs(PROGRAM) and not runs(crash) and not runs("def solution():\n    return 'x'\n")
    with pytest.raises(ServedModelError):  # off by default: the crashing program goes to the (dead) judge
        asyncio.run(fn(data_source="d", solution_str=crash, ground_truth="", extra_info=EXTRA,
                       **_kwargs("http://127.0.0.1:9", tiny_dir) | {"max_retries": 0}))


def test_judge_config_errors(tiny_dir):
    fn = _load("judge_yes_no")
    with pytest.raises(ValueError, match="judge_url"):
        asyncio.run(fn(data_source="d", solution_str=PROGRAM, extra_info=EXTRA))
    with pytest.raises(ValueError, match="judge_tokenizer"):
        asyncio.run(fn(data_source="d", solution_str=PROGRAM, extra_info=EXTRA, judge_url="http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="question"):
        asyncio.run(fn(data_source="d", solution_str=PROGRAM, extra_info={"task": "pot"}, judge_url="x"))
