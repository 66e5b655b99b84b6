"""Tiny models derived from the tiny student/teacher for the served-model tests (built once per session, seeded).

* ``judge_handset``: the tiny teacher with hand-set output rows (no training). An untrained model's Yes-minus-No
  margins are all about -0.25 +- 0.04, which would make a 1e-4 comparison of sigmoids nearly vacuous. Its lm_head is
  untied and the Yes/No rows are moved so that margins are centred and spread over several units, with a common
  boost that makes Yes or No the greedy first token and an EOS boost after it, so ``generate`` mode gets one-word
  verdicts. The verdicts carry no signal: the numbers, not the judgments, are under test.
* ``reranker_2label``: a two-class classifier from the tiny student, head set so class-1 probabilities spread widely.
* ``student_fitted``: the tiny student fitted (80 full-batch steps) to the 16 synthetic test programs of
  ``small_data``: on those questions it writes real programs, some right and some wrong. ``teacher_fitted``: the
  same with ``result`` renamed ``answer`` in every program, so its correct programs are never word for word the
  student's (seed 000's teacher-over-student preference needs distinct texts).

The session fixtures ``tiny_judge``, ``tiny_reranker`` and ``fitted_student`` (``conftest.py``) return their
directories, so every test file shares the same vLLM servers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from verl_distill.io import read_parquet_rows
from verl_distill.judge import render_judge_prompt, template_for_task
from verl_distill.reranker import reranker_ids

TEMPLATE = template_for_task("pot")


def derived_model(tiny_dir: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``tiny_dir/derived/<name>``, built by ``build(tmp_dir)`` the first time (deterministic: fixed seeds)."""
    out = tiny_dir / "derived" / name
    if not (out / "config.json").exists():
        tmp = out.with_name(name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build(tmp)
        tmp.rename(out)
    return out


def problems(n: int, seed: str) -> list[tuple[str, str, str]]:
    """(question, gold body, wrong body) of synthetic problems."""
    from data_prep.synthetic_arith import generate

    return [(p.question, p.body, p.body.replace("result = ", "result = 1 + ")) for p in generate(n, seed=seed)]


def build_judge(teacher: Path) -> Callable[[Path], None]:
    """The hand-set tiny judge described in the module docstring."""
    def build(out: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(teacher)
        model = AutoModelForCausalLM.from_pretrained(teacher, dtype=torch.float32).eval()
        yes, no, eos = tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("No"), tok.eos_token_id
        cal = [render_judge_prompt(tok, TEMPLATE, q, "def solution():\n" + b.rstrip()) for q, b, _ in
               problems(16, "judge-calibration")]
        with torch.no_grad():
            def last(seqs: list[list[int]]) -> torch.Tensor:
                return torch.stack([model.model(torch.tensor([s])).last_hidden_state[0, -1] for s in seqs])

            h1, h2 = last(cal), last([c + [yes if i % 2 else no] for i, c in enumerate(cal)])
            mu1, mu2 = h1.mean(0), h2.mean(0)
            u = mu1 / mu1.norm()
            emb = model.get_input_embeddings().weight.detach().clone()
            d = emb[yes] - emb[no]
            d = d - (d @ u) * u  # no part along the mean hidden state: margins centred near 0
            d = d * (2.0 / (h1 @ d).std())  # margin standard deviation ~2
            v = mu2 - (mu2 @ u) * u
            lm = emb.clone()
            base = (lm[yes] + lm[no]) / 2 + 20.0 * u / mu1.norm()  # Yes or No is the greedy first token
            lm[yes], lm[no] = base + d / 2, base - d / 2
            lm[eos] = lm[eos] + 40.0 * v / (mu2 @ v)  # then EOS
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(lm)
        model.save_pretrained(out)
        tok.save_pretrained(out)

    return build


def build_reranker(student: Path) -> Callable[[Path], None]:
    """A two-class classifier from the tiny student; its head is set so the class-1 probability spreads widely."""
    def build(out: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(student)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(student, num_labels=2, dtype=torch.float32).eval()
        cal = [reranker_ids(tok, q, "def solution():\n" + b.rstrip()) for q, b, _ in problems(16, "rerank-cal")]
        with torch.no_grad():
            h = torch.stack([model.model(torch.tensor([s])).last_hidden_state[0, -1] for s in cal])
            u = h.mean(0) / h.mean(0).norm()
            w = model.score.weight
            d = w[1] - w[0]
            d = d - (d @ u) * u  # centred: probabilities around 0.5
            d = d * (2.0 / (h @ d).std())
            w[0], w[1] = -d / 2, d / 2
        model.save_pretrained(out)
        tok.save_pretrained(out)

    return build


def build_student(student: Path, data: Path, steps: int = 80, rename: tuple[str, str] | None = None) -> Any:
    """The tiny student fitted to the synthetic test programs (full batch AdamW, loss on the program and EOS);
    ``rename=(old, new)`` fits it to the programs with that word replaced (a model with another style)."""
    def build(out: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # far faster than 2 threads on a busy 2-core machine
        try:
            torch.manual_seed(0)
            tok = AutoTokenizer.from_pretrained(student)
            model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32)
            examples = []
            for row in read_parquet_rows(data):
                prompt = tok.apply_chat_template(list(row["prompt"]), add_generation_prompt=True, tokenize=False)
                reference = row["extra_info"]["reference"]
                if rename:
                    reference = reference.replace(*rename)
                target = tok.encode(reference, add_special_tokens=False) + [tok.eos_token_id]
                examples.append((tok.encode(prompt, add_special_tokens=False), target))
            width = max(len(p) + len(t) for p, t in examples)
            ids = torch.full((len(examples), width), tok.pad_token_id)
            labels = torch.full((len(examples), width), -100)
            mask = torch.zeros((len(examples), width), dtype=torch.long)
            for i, (p, t) in enumerate(examples):
                ids[i, :len(p) + len(t)] = torch.tensor(p + t)
                mask[i, :len(p) + len(t)] = 1
                labels[i, len(p):len(p) + len(t)] = torch.tensor(t)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
            for _ in range(steps):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.save_pretrained(out)
            tok.save_pretrained(out)
        finally:
            torch.set_num_threads(threads)

    return build
