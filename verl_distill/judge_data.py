"""Training data for a tiny Yes/No judge and a reranker: student samples, gold and perturbed programs, all labelled
by execution (``verl-distill make-judge-data``), and the judge's held-out pairwise accuracy (``judge-pairwise``).

Why (issue 3 §3, §6; seed 002 §2.2.2-2.2.3, §4.1): on CPU the judge is a tiny LM that must first be taught to answer
Yes/No on correct and incorrect solutions, or its reward carries no signal; the reranker (ReFT) is a classifier
trained on correct/incorrect student samples. Both need labelled (question, solution) pairs.

Flow: labeled PoT RL rows (``extra_info.label_source == "gold"``) -> candidates per question, in priority order
``student`` (K completions per question at temperature T from each student checkpoint, transformers ``generate`` in
this process), ``gold`` (``extra_info.reference``), ``perturbation`` (one-site token edits of the gold program:
``wrong_operator`` replaces one binary + - * /, ``wrong_operand`` replaces one integer literal by another number of
the program or a nearby value, ``off_by_one`` adds or subtracts 1 from one) -> every candidate labelled by running it
with the PoT reward (``reward_fns/pot_verifiable.compute_score_batch``; correct iff ``acc == 1``), never by assumption
(an edit can leave the answer unchanged) -> duplicates (same question and solution) dropped -> per question
``k = min(#correct, #incorrect, per_label)`` of each label kept, in source priority order (or, ``balance=oversample``,
up to ``per_label`` of each and the training split's minority label repeated to equal counts) -> questions split into
train and validation (no question in both).

The solution shown to the judge and the reranker is what the rewards show them at RL time
(``verl_distill.guards.solution_text``): the extracted program, or the raw response when there is no program.
Outputs in ``OUT`` (``manifest.json`` last, with every count):
``judge_{train,validation}.parquet`` (SFT rows: user = the judge prompt (``judge_template``), assistant =
``Yes``/``No``, for verl's ``sft_trainer``), ``reranker_{train,validation}.parquet`` (question, solution, response,
label 1 = correct, source),
``pairwise_validation.parquet`` (per validation question one correct and one incorrect STUDENT completion, seed 002
§4.1 / Table 3) and ``candidates.parquet`` (every candidate with its label, status and why it was not kept).

LIMITS: perturbations only touch integer literals and binary operators (no control flow, no names); a question the
student always gets right (or wrong) contributes only gold/perturbed programs, so the balance reflects the student.
"""

from __future__ import annotations

import argparse
import io
import json
import keyword
import logging
import os
import random
import tokenize
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from verl_distill.guards import solution_text
from verl_distill.io import MANIFEST, iter_batches, read_parquet_rows, write_manifest, write_parquet
from verl_distill.judge import render_judge_prompt
from verl_distill.pot import extract_program
from verl_distill.prompts import JUDGE_POT, RERANKER, get_template
from verl_distill.schema import RowError, make_extra_info, make_sft_row

logger = logging.getLogger(__name__)

SOURCES = ("student", "gold", "perturbation")  # priority order when a question has more candidates than kept
PERTURBATIONS = ("wrong_operator", "wrong_operand", "off_by_one")
VERDICTS = {True: "Yes", False: "No"}  # the judge's answer words (single tokens in the judge's tokenizer)
_OPS = ("+", "-", "*", "/")
EXEC_BATCH = 512
OUTPUT_FILES = ("judge_train.parquet", "judge_validation.parquet", "reranker_train.parquet",
                "reranker_validation.parquet", "pairwise_validation.parquet", "candidates.parquet")


@dataclass
class Candidate:
    """One (question, solution) pair with where it came from and what execution said."""

    qid: int
    source: str  # student | gold | perturbation
    detail: str  # student checkpoint, perturbation kind, or ""
    response: str  # raw text as written (student completion, gold body, perturbed program)
    solution: str  # what the judge/reranker sees: the extracted program, or the raw response
    correct: bool | None = None  # None until executed (duplicates and empty solutions are never executed)
    status: str = ""  # executor status (ok, error, timeout, ...)
    split: str = ""
    kept: bool = False
    skip: str = ""  # why not kept ("" when kept)


def as_solution(response: str) -> str:
    """What the judge and reranker read, exactly as the rewards compute it at RL time (``guards.solution_text``):
    the extracted program without its final newline, or the stripped raw response when there is no program."""
    return solution_text(response, "pot")


# ---------------------------------------------------------------- inputs and candidates


def load_labeled_rows(path: str | os.PathLike, *, limit: int | None = None) -> list[dict[str, Any]]:
    """RL rows with gold labels and the PoT task; anything else is a wrong input file (``RowError`` naming the row)."""
    rows = read_parquet_rows(path)[:limit]
    for i, row in enumerate(rows):
        extra = row.get("extra_info") or {}
        if extra.get("label_source") != "gold" or extra.get("task") != "pot":
            raise RowError(f"{path}: row {i}: label_source={extra.get('label_source')!r}, task={extra.get('task')!r};"
                           " judge data needs gold-labelled PoT rows (e.g. synthetic/train.parquet of prepare-data)")
        if not str(row["reward_model"]["ground_truth"]).strip():
            raise RowError(f"{path}: row {i}: reward_model.ground_truth is empty")
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def sample_completions(model_dir: str | os.PathLike, prompts: list[list[dict[str, str]]], *, k: int,
                       temperature: float, max_new_tokens: int, batch_size: int = 32, seed: int = 0) -> list[list[str]]:
    """``k`` sampled completions per chat prompt (pure temperature sampling, left padding, decoded as verl does)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if k < 1 or temperature <= 0:
        raise ValueError(f"k={k}, temperature={temperature}: need k >= 1 and temperature > 0")
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    texts = [tok.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts]
    torch.manual_seed(seed)
    out: list[list[str]] = []
    for batch in tqdm(list(iter_batches(texts, batch_size)), desc=f"sample {Path(model_dir).name}", unit="batch"):
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            seq = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                 num_return_sequences=k, max_new_tokens=max_new_tokens,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        texts_out = tok.batch_decode(seq[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        out.extend(texts_out[i * k:(i + 1) * k] for i in range(len(batch)))
    return out


def _sites(program: str) -> tuple[list[tokenize.TokenInfo], list[tokenize.TokenInfo]]:
    """Binary ``+ - * /`` operator tokens and integer literal tokens of ``program`` (none if it does not tokenize)."""
    ops, nums, prev = [], [], None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(program).readline):
            operand = prev is not None and (prev.type == tokenize.NUMBER or prev.string == ")" or (
                prev.type == tokenize.NAME and not keyword.iskeyword(prev.string)))
            if tok.type == tokenize.OP and tok.string in _OPS and operand:
                ops.append(tok)
            elif tok.type == tokenize.NUMBER and tok.string.isdigit():
                nums.append(tok)
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                prev = tok
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [], []
    return ops, nums


def perturb_program(program: str, kind: str, rng: random.Random) -> str | None:
    """One controlled edit of ``program`` (see module docstring); ``None`` if it has no site for ``kind``."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"perturbation {kind!r}: expected one of {PERTURBATIONS}")
    ops, nums = _sites(program)
    if kind == "wrong_operator":
        if not ops:
            return None
        site = rng.choice(ops)
        new = rng.choice([o for o in _OPS if o != site.string])
    else:
        if not nums:
            return None
        site = rng.choice(nums)
        value = int(site.string)
        if kind == "off_by_one":
            new = str(value + rng.choice((-1, 1)) if value > 0 else 1)
        else:
            others = sorted({int(n.string) for n in nums} - {value - 1, value, value + 1})
            near = [x for x in range(max(0, value - 10), value + 11) if abs(x - value) > 1]
            new = str(rng.choice(others) if others and rng.random() < 0.5 else rng.choice(near))
    lines = program.splitlines(keepends=True)
    row, col = site.start[0] - 1, site.start[1]
    lines[row] = lines[row][:col] + new + lines[row][col + len(site.string):]
    return "".join(lines)


def gold_candidates(qid: int, reference: str, *, gold: bool, perturbations: int, seed: int) -> list[Candidate]:
    """The gold program (if ``gold``) and ``perturbations`` edits of it (kinds in turn), unlabelled."""
    program = extract_program(reference)
    if program is None:
        return []
    cands = [Candidate(qid, "gold", "", reference, as_solution(reference))] if gold else []
    for i in range(perturbations):
        kind = PERTURBATIONS[i % len(PERTURBATIONS)]
        edited = perturb_program(program.source, kind, random.Random(f"{seed}:{qid}:{i}"))
        cands.append(Candidate(qid, "perturbation", kind, edited or "", as_solution(edited) if edited else ""))
    return cands


def label_by_execution(cands: list[Candidate], rows: list[dict[str, Any]], **reward_kwargs: Any) -> None:
    """Set ``correct`` and ``status`` of every candidate by running it with the PoT reward (in batches)."""
    from reward_fns.pot_verifiable import compute_score_batch

    bar = tqdm(total=len(cands), desc="executing", unit="prog", disable=None)
    for batch in iter_batches(cands, EXEC_BATCH):
        infos = compute_score_batch([rows[c.qid]["data_source"] for c in batch], [c.solution for c in batch],
                                    [rows[c.qid]["reward_model"]["ground_truth"] for c in batch], **reward_kwargs)
        for cand, info in zip(batch, infos, strict=True):
            cand.correct, cand.status = info["acc"] >= 1.0, info["status"]
        bar.update(len(batch))
    bar.close()


# ---------------------------------------------------------------- selection


def dedupe(cands: list[Candidate]) -> list[Candidate]:
    """Mark empty solutions and repeats of an earlier (question, solution) as skipped; returns the usable ones."""
    seen: set[tuple[int, str]] = set()
    usable = []
    for cand in cands:
        key = (cand.qid, cand.solution.strip())
        if not key[1]:
            cand.skip = "no perturbation site" if cand.source == "perturbation" else f"{cand.source}: empty response"
        elif key in seen:
            cand.skip = "duplicate solution"
        else:
            seen.add(key)
            usable.append(cand)
    return usable


def balance(cands: list[Candidate], *, per_label: int, rng: random.Random,
            priority: tuple[str, ...] = SOURCES, equal: bool = True) -> list[Candidate]:
    """Keep ``min(#correct, #incorrect, per_label)`` of each label for one question (by ``priority`` of the sources,
    then at random); ``equal=False``: up to ``per_label`` of each label, however many the other label has."""
    if sorted(priority) != sorted(SOURCES):
        raise ValueError(f"priority={priority}: must order all of {SOURCES}")
    shuffled = list(cands)
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda c: priority.index(c.source))
    pos = [c for c in shuffled if c.correct]
    neg = [c for c in shuffled if not c.correct]
    k = min(len(pos), len(neg), per_label)
    kept = {"pos": k, "neg": k} if equal else {"pos": min(len(pos), per_label), "neg": min(len(neg), per_label)}
    for group, other, n in ((pos, "incorrect", kept["pos"]), (neg, "correct", kept["neg"])):
        for i, cand in enumerate(group):
            cand.kept = i < n
            if not cand.kept:
                cand.skip = f"balance: no {other} candidate for the question" if n == 0 else "balance: surplus"
    return pos[:kept["pos"]] + neg[:kept["neg"]]


def oversample(part: list[Candidate], rng: random.Random) -> list[Candidate]:
    """Repeat the minority label's rows (each once per round, in a seeded order) until both labels are equally many."""
    pos = [c for c in part if c.correct]
    neg = [c for c in part if not c.correct]
    small, big = sorted((pos, neg), key=len)
    if not small:
        return list(part)
    extra: list[Candidate] = []
    while len(small) + len(extra) < len(big):
        order = list(small)
        rng.shuffle(order)
        extra += order[: len(big) - len(small) - len(extra)]
    return list(part) + extra


def split_questions(qids: list[int], *, val_fraction: float, seed: int) -> dict[int, str]:
    """Question id -> ``train`` or ``validation`` (a seeded shuffle; at least one of each when possible)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction}: must be in [0, 1)")
    order = sorted(qids)
    random.Random(f"{seed}:split").shuffle(order)
    n_val = min(len(order) - 1, max(1, round(val_fraction * len(order)))) if val_fraction > 0 else 0
    return {q: ("validation" if i < n_val else "train") for i, q in enumerate(order)}


def pairwise_pairs(cands: list[Candidate], rows: list[dict[str, Any]], val_qids: list[int], *,
                   seed: int) -> tuple[list[dict[str, Any]], Counter]:
    """Per validation question one correct and one incorrect STUDENT completion; counts the questions without."""
    by_q: dict[int, list[Candidate]] = {}
    for c in cands:  # usable candidates (deduplicated, non-empty), kept for training or not
        if c.source == "student":
            by_q.setdefault(c.qid, []).append(c)
    pairs, missing = [], Counter()
    for qid in sorted(val_qids):
        rng = random.Random(f"{seed}:pair:{qid}")
        group = by_q.get(qid, [])
        good, bad = [c for c in group if c.correct], [c for c in group if not c.correct]
        if not good or not bad:
            missing[f"pair: no {'correct' if not good else 'incorrect'} student completion"] += 1
            continue
        a, b = rng.choice(good), rng.choice(bad)
        row = rows[qid]
        pairs.append({"qid": qid, "question": row["extra_info"]["question"], "data_source": row["data_source"],
                      "ground_truth": row["reward_model"]["ground_truth"], "prompt": list(row["prompt"]),
                      "correct_student": a.detail, "incorrect_student": b.detail,
                      "correct_response": a.response, "incorrect_response": b.response,
                      "correct_solution": a.solution, "incorrect_solution": b.solution})
    return pairs, missing


# ---------------------------------------------------------------- outputs


BALANCE_MODES = ("question", "oversample")


@dataclass(frozen=True)
class JudgeDataConfig:
    """Knobs of :func:`build_judge_data` (defaults: the CPU demo's)."""

    k: int = 8  # completions per question and student
    temperature: float = 1.0
    max_new_tokens: int = 64
    gold: bool = True  # use the reference programs as correct candidates
    perturbations: int = 3  # edited gold programs per question (kinds in turn)
    per_label: int = 4  # at most this many Yes and this many No rows per question
    # "question": equal Yes/No counts per question (min of the two); "oversample": up to per_label of each label per
    # question, then the training split's minority label repeated to equal counts. A tiny judge learns from many
    # different wrong programs: with "question" it saw ~1 wrong program per question and learned nothing in 1,500
    # steps, with "oversample" (3.4x more distinct No rows) it reached pairwise 0.73-0.85 (issue 3 note)
    balance: str = "question"
    priority: tuple[str, ...] = SOURCES  # which sources fill a question's rows first
    val_fraction: float = 0.2
    limit: int | None = None  # first N input rows only
    seed: int = 0
    batch_size: int = 32  # prompts per generate call
    judge_template: str = JUDGE_POT.key  # the judge's prompt; serve the trained judge with the same one

    def __post_init__(self) -> None:
        get_template(self.judge_template)  # unknown names fail here, before any sampling
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance={self.balance!r}: choose one of {BALANCE_MODES}")


def judge_messages(question: str, solution: str, template: str = JUDGE_POT.key) -> list[dict[str, str]]:
    """The judge's chat input: one user message rendered with ``template`` (a PoT judge prompt, ``name@version``)."""
    return [{"role": "user", "content": get_template(template).render(question=question, solution=solution)}]


def judge_sft_row(cand: Candidate, row: dict[str, Any], *, index: int, template: str = JUDGE_POT.key) -> dict[str, Any]:
    """SFT row ``[user: judge prompt, assistant: Yes/No]``; ``source_id`` names the question and the candidate."""
    question = row["extra_info"]["question"]
    extra = make_extra_info(question=question, label_source="gold", task="pot", split=cand.split, index=index,
                            source_id=f"{row['extra_info']['source_id'] or cand.qid}|{cand.source}:{cand.detail}",
                            template=template, reference=row["extra_info"]["reference"])
    answer = {"role": "assistant", "content": VERDICTS[bool(cand.correct)]}
    return make_sft_row(messages=[*judge_messages(question, cand.solution, template), answer], extra_info=extra)


def write_table(records: list[dict[str, Any]], path: Path) -> int:
    """Write plain records to parquet (atomically); returns the count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(records), tmp)
    os.replace(tmp, path)
    return len(records)


def _collect(rows: list[dict[str, Any]], students: list[Path], cfg: JudgeDataConfig, missing: Counter) -> list:
    """All candidates in source priority order: students' samples, then gold and perturbed programs."""
    cands: list[Candidate] = []
    for s, student in enumerate(students):
        completions = sample_completions(student, [list(r["prompt"]) for r in rows], k=cfg.k,
                                         temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                                         batch_size=cfg.batch_size, seed=cfg.seed + s)
        cands += [Candidate(q, "student", str(student), t, as_solution(t)) for q, ts in enumerate(completions)
                  for t in ts]
    if cfg.gold or cfg.perturbations:
        for q, row in enumerate(rows):
            ref = row["extra_info"]["reference"]
            gold = gold_candidates(q, ref, gold=cfg.gold, perturbations=cfg.perturbations, seed=cfg.seed)
            if not gold:
                missing["gold: no reference" if not ref.strip() else "gold: reference is not a program"] += 1
            cands += gold
    return cands


def build_judge_data(data: str | os.PathLike, students: list[str | os.PathLike], out: str | os.PathLike,
                     cfg: JudgeDataConfig = JudgeDataConfig()) -> dict[str, Any]:
    """Collect, label, balance and split candidates; write the files of the module docstring; returns the manifest."""
    out = Path(out)
    rows = load_labeled_rows(data, limit=cfg.limit)
    per_question: Counter = Counter()  # question-level gaps (no gold program, no pair); candidates are counted apart
    cands = _collect(rows, [Path(s) for s in students], cfg, per_question)
    usable = dedupe(cands)
    label_by_execution(usable, rows)
    splits = split_questions(list(range(len(rows))), val_fraction=cfg.val_fraction, seed=cfg.seed)
    by_q: dict[int, list[Candidate]] = {}
    for cand in usable:
        by_q.setdefault(cand.qid, []).append(cand)
    kept = [c for q in sorted(by_q)
            for c in balance(by_q[q], per_label=cfg.per_label, rng=random.Random(f"{cfg.seed}:{q}"),
                             priority=cfg.priority, equal=cfg.balance == "question")]
    for cand in cands:
        cand.split = splits[cand.qid]
    skipped = Counter(c.skip for c in cands if c.skip)
    pairs, missing = pairwise_pairs(usable, rows, [q for q, s in splits.items() if s == "validation"], seed=cfg.seed)
    per_question.update(missing)

    out.mkdir(parents=True, exist_ok=True)
    for stale in (MANIFEST, *OUTPUT_FILES):  # a rebuild never leaves an earlier run's file behind
        (out / stale).unlink(missing_ok=True)
    files: dict[str, int] = {}
    repeated = 0
    for split in ("train", "validation"):
        part = [c for c in kept if c.split == split]
        if not part:
            logger.warning("no %s rows kept (see the skip counts)", split)
            continue
        if split == "train" and cfg.balance == "oversample":
            n = len(part)
            part = oversample(part, random.Random(f"{cfg.seed}:oversample"))
            repeated = len(part) - n
        files[f"judge_{split}.parquet"] = write_parquet(
            [judge_sft_row(c, rows[c.qid], index=i, template=cfg.judge_template) for i, c in enumerate(part)],
            out / f"judge_{split}.parquet", kind="sft")
        files[f"reranker_{split}.parquet"] = write_table(
            [{"qid": c.qid, "question": rows[c.qid]["extra_info"]["question"], "solution": c.solution,
              "response": c.response, "label": int(bool(c.correct)), "source": c.source, "detail": c.detail}
             for c in part], out / f"reranker_{split}.parquet")
    if pairs:
        files["pairwise_validation.parquet"] = write_table(pairs, out / "pairwise_validation.parquet")
    files["candidates.parquet"] = write_table([asdict(c) for c in cands], out / "candidates.parquet")
    info = _manifest_info(data, students, cfg, rows, usable, kept, splits, skipped, files, len(pairs))
    info["questions_without"] = dict(sorted(per_question.items()))
    info["oversampled_train_rows"] = repeated  # repeats in judge_train / reranker_train beyond the kept candidates
    write_manifest(out, info)
    return info


def _manifest_info(data, students, cfg, rows, usable, kept, splits, skipped, files, n_pairs) -> dict[str, Any]:
    def table(cands: list[Candidate]) -> dict[str, dict[str, int]]:
        counts = Counter((c.source, VERDICTS[bool(c.correct)]) for c in cands)
        return {src: {v: counts[(src, v)] for v in VERDICTS.values()} for src in SOURCES}

    return {"input": str(data), "students": [str(s) for s in students], "config": asdict(cfg),
            "questions": {s: sum(1 for v in splits.values() if v == s) for s in ("train", "validation")},
            "read": len(rows), "candidates": table(usable),
            "kept": {s: table([c for c in kept if c.split == s]) for s in ("train", "validation")},
            "skipped": dict(sorted(skipped.items())), "pairwise": n_pairs, "files": files,
            "templates": {"judge": get_template(cfg.judge_template).key, "reranker": RERANKER.key},
            "verdicts": list(VERDICTS.values())}


def format_counts(info: dict[str, Any]) -> str:
    """The manifest's counts per source and label as a small table, plus skips."""
    lines = [f"{'source':<14}{'candidates Yes/No':>19}{'train Yes/No':>15}{'validation Yes/No':>20}"]
    for src in SOURCES:
        cells = [info["candidates"][src], info["kept"]["train"][src], info["kept"]["validation"][src]]
        pairs = [f"{c['Yes']}/{c['No']}" for c in cells]
        lines.append(f"{src:<14}{pairs[0]:>19}{pairs[1]:>15}{pairs[2]:>20}")
    q = info["questions"]
    lines.append(f"questions: {info['read']} read, {q['train']} train, {q['validation']} validation; "
                 f"pairwise pairs: {info['pairwise']}")
    lines.append("candidates skipped: " + (", ".join(f"{k}: {v}" for k, v in info["skipped"].items()) or "none"))
    lines.append("questions without: " + (", ".join(f"{k}: {v}" for k, v in info["questions_without"].items())
                                          or "nothing missing"))
    return "\n".join(lines)


# ---------------------------------------------------------------- the judge's pairwise accuracy (offline)


def yes_no_ids(tokenizer: Any) -> tuple[int, int]:
    """Token ids of the verdicts; each must be a single token, or the judge cannot answer in one step."""
    ids = []
    for word in VERDICTS.values():
        enc = tokenizer.encode(word, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"the judge's tokenizer splits {word!r} into {len(enc)} tokens {enc}; a one-step judge "
                             "needs single-token verdicts (rebuild tiny models with verl-distill build-tiny)")
        ids.append(enc[0])
    return ids[0], ids[1]


def judge_scores(judge_dir: str | os.PathLike, questions: list[str], solutions: list[str], *,
                 template: str = JUDGE_POT.key, batch_size: int = 16) -> list[float]:
    """``sigmoid(logit_Yes - logit_No)`` at the answer position (one forward pass per batch), on the ids the served
    judge reads (``judge.render_judge_prompt``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(judge_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(judge_dir, dtype=torch.float32).eval()
    yes, no = yes_no_ids(tok)
    prompts = [render_judge_prompt(tok, template, q, s) for q, s in zip(questions, solutions, strict=True)]
    scores: list[float] = []
    for batch in iter_batches(prompts, batch_size):
        enc = tok.pad({"input_ids": batch}, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[:, -1, :].double()
        scores.extend(torch.sigmoid(logits[:, yes] - logits[:, no]).tolist())
    return scores


def pairwise_accuracy(correct: list[float], incorrect: list[float]) -> float:
    """Fraction of pairs whose correct solution scores strictly higher (ties count as wrong)."""
    if len(correct) != len(incorrect) or not correct:
        raise ValueError(f"need equal, non-zero numbers of scores, got {len(correct)} and {len(incorrect)}")
    return sum(c > i for c, i in zip(correct, incorrect, strict=True)) / len(correct)


def judge_pairwise(judge_dir: str | os.PathLike, data_dir: str | os.PathLike, *, limit: int | None = None) -> dict:
    """Score both completions of every held-out pair with the judge; accuracy, ties and mean scores."""
    path = Path(data_dir) / "pairwise_validation.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no pairwise set; build it with verl-distill make-judge-data")
    pairs = read_parquet_rows(path)[:limit]
    manifest = Path(data_dir) / MANIFEST
    template = json.loads(manifest.read_text())["templates"]["judge"] if manifest.exists() else JUDGE_POT.key
    questions = [p["question"] for p in pairs]
    good = judge_scores(judge_dir, questions, [p["correct_solution"] for p in pairs], template=template)
    bad = judge_scores(judge_dir, questions, [p["incorrect_solution"] for p in pairs], template=template)
    n = len(pairs)
    return {"judge": str(judge_dir), "template": template, "n": n, "pairwise_accuracy": pairwise_accuracy(good, bad),
            "ties": sum(g == b for g, b in zip(good, bad, strict=True)),
            "mean_correct": sum(good) / n, "mean_incorrect": sum(bad) / n,
            "yes_rate_correct": sum(g > 0.5 for g in good) / n, "yes_rate_incorrect": sum(b > 0.5 for b in bad) / n}


# ---------------------------------------------------------------- CLI


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-judge-data`` and ``judge-pairwise`` subcommands."""
    p = subparsers.add_parser("make-judge-data", help="labelled judge/reranker data from student samples + gold")
    p.add_argument("--data", required=True, type=Path, help="gold-labelled PoT RL parquet (e.g. synthetic/train)")
    p.add_argument("--student", action="append", default=[], help="student checkpoint to sample (repeatable)")
    p.add_argument("--out", required=True, type=Path)
    d = JudgeDataConfig()
    for name, value in asdict(d).items():
        if name == "gold":
            p.add_argument("--no-gold", dest="gold", action="store_false", help="no reference programs as positives")
        elif name == "judge_template":
            p.add_argument("--judge-template", default=value,
                           help=f"the judge's prompt template (default {value}; judge_pot_compact@1 for tiny judges)")
        elif name == "balance":
            p.add_argument("--balance", choices=BALANCE_MODES, default=value,
                           help=f"Yes/No balancing (default {value}; see JudgeDataConfig)")
        elif name == "priority":
            p.add_argument("--priority", type=lambda v: tuple(v.split(",")), default=value,
                           help=f"source order when a question has more rows than kept (default {','.join(value)})")
        else:
            p.add_argument(f"--{name.replace('_', '-')}", type=float if isinstance(value, float) else int,
                           default=value, help=f"default {value}")
    p.add_argument("--force", action="store_true", help="rebuild even if OUT has a manifest")
    p.set_defaults(func=_run_make)
    q = subparsers.add_parser("judge-pairwise", help="a Yes/No judge's pairwise accuracy on the held-out pairs")
    q.add_argument("judge", type=Path, help="judge checkpoint (HF directory)")
    q.add_argument("--data", required=True, type=Path, help="output directory of make-judge-data")
    q.add_argument("--limit", type=int, default=None)
    q.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    q.set_defaults(func=_run_pairwise)


def _run_make(args: argparse.Namespace) -> int:
    if not args.student and not args.gold and not args.perturbations:
        raise SystemExit("nothing to collect: give --student, or keep gold programs / perturbations")
    names = set(asdict(JudgeDataConfig()))
    cfg = JudgeDataConfig(**{k: v for k, v in vars(args).items() if k in names})
    if (args.out / MANIFEST).exists() and not args.force:
        done = json.loads((args.out / MANIFEST).read_text())
        wanted = json.loads(json.dumps({"config": asdict(cfg), "students": [str(s) for s in args.student]}))
        changed = sorted(k for k in wanted["config"] if done["config"].get(k) != wanted["config"][k])
        if done["students"] != wanted["students"]:
            changed.append("students")
        if changed:
            raise SystemExit(f"{args.out} was built with other settings ({', '.join(changed)}: "
                             f"{ {k: done['config'].get(k, done.get(k)) for k in changed} }); "
                             "pass --force to rebuild it, or choose another --out")
        print(f"{args.out}: complete (manifest present, same settings), skipped; --force rebuilds")
        return 0
    info = build_judge_data(args.data, args.student, args.out, cfg)
    print(format_counts(info))
    print(f"wrote {', '.join(f'{k} ({v})' for k, v in info['files'].items())} to {args.out}")
    return 0


def _run_pairwise(args: argparse.Namespace) -> int:
    result = judge_pairwise(args.judge, args.data, limit=args.limit)
    print(f"judge {args.judge}: pairwise accuracy {result['pairwise_accuracy']:.3f} on {result['n']} held-out pairs "
          f"(ties {result['ties']}; mean score correct {result['mean_correct']:.3f}, "
          f"incorrect {result['mean_incorrect']:.3f})")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0
