"""Seed 000's pieces that need no server: the RM loss against hand-computed values, every branch of Eq. 7, D_R
triples, and the resumable samples file."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from reward_fns.rm_pseudo_label import clip_reward
from verl_distill.rm_data import draw_triples
from verl_distill.sample_stage import get_schedule, group_key, pending_groups, read_samples
from verl_distill.train_rm import RMTrainConfig, TripleCollator, rm_loss


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _batch() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    # triple 1: S+, S-, T+ ; triple 2: S+, S- and no teacher response
    items = [{"seqs": [[5, 6], [5], [7, 8, 9]], "n_teacher": 1}, {"seqs": [[4], [4, 4]], "n_teacher": 0}]
    batch = TripleCollator(pad_id=0)(items)
    r = torch.tensor([1.0, -0.5, 2.0, 0.3, 0.4])  # S+1, S-1, T+1, S+2, S-2 (collation order)
    return r, batch


def test_collator_layout() -> None:
    _, b = _batch()
    assert b["input_ids"].tolist() == [[5, 6, 0], [5, 0, 0], [7, 8, 9], [4, 0, 0], [4, 4, 0]]
    assert b["attention_mask"].sum(1).tolist() == [2, 1, 3, 1, 2]
    assert (b["pos"].tolist(), b["neg"].tolist(), b["teacher"].tolist(), b["owner"].tolist()) == ([0, 3], [1, 4],
                                                                                                 [2], [0])
    assert b["cls_labels"].tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_loss_matches_hand_computation() -> None:
    r, b = _batch()
    pref_s = -(math.log(_sig(1.0 - -0.5)) + math.log(_sig(0.3 - 0.4))) / 2  # S+ over S-, two triples
    pref_t = -math.log(_sig(2.0 - 1.0))  # T+ over S+, one teacher pair
    labels, scores = [1, 0, 1, 1, 0], [1.0, -0.5, 2.0, 0.3, 0.4]
    cls = -sum(y * math.log(_sig(s)) + (1 - y) * math.log(1 - _sig(s)) for y, s in zip(labels, scores, strict=True)) / 5
    for kind, want in (("pref+cls", pref_s + pref_t + 0.5 * cls), ("cls", cls), ("pref", pref_s + pref_t)):
        loss, parts = rm_loss(r, b, lam=0.5, loss=kind)
        assert loss.item() == pytest.approx(want, abs=1e-6)
    assert parts == pytest.approx({"pref_s": pref_s, "pref_t": pref_t, "cls": cls}, abs=1e-6)
    assert rm_loss(r, b, lam=2.0, loss="pref+cls")[0].item() == pytest.approx(pref_s + pref_t + 2 * cls, abs=1e-6)


def test_loss_without_teacher_pairs() -> None:
    b = TripleCollator(0)([{"seqs": [[1], [2]], "n_teacher": 0}])
    loss, parts = rm_loss(torch.tensor([0.0, 0.0]), b, lam=0.0, loss="pref+cls")
    assert parts["pref_t"] == 0.0 and loss.item() == pytest.approx(math.log(2))


def test_loss_gradient_prefers_positive() -> None:
    r, b = _batch()
    r.requires_grad_(True)
    rm_loss(r, b, lam=0.5, loss="pref+cls")[0].backward()
    assert r.grad[3] < 0 < r.grad[4]  # descending the loss raises S+ and lowers S- (triple without teacher)
    assert r.grad[2] < 0 < r.grad[1]  # raises T+, lowers S-
    assert r.grad[0] > 0  # S+ of triple 1 sits 1.0 under its T+: the teacher term (0.27) outweighs the rest (0.12)


@pytest.mark.parametrize("bad", [{"loss": "bt"}, {"metric": "acc"}, {"lam": -1.0}, {"batch_size": 0}])
def test_config_rejects(bad: dict) -> None:
    with pytest.raises(ValueError):
        RMTrainConfig(**bad)


EQ7 = [
    # r, answer, label, variant, expected reward, clipped
    (0.8, None, "6", "min", -5.0, False),  # no extractable answer
    (0.8, None, "", "min", -5.0, False),  # ... also without a label
    (0.8, "6", "6", "min", 0.8, False),  # match: r
    (-0.3, "6", "6", "min", -0.3, False),
    (0.8, "7", "6", "min", 0.0, True),  # mismatch: min(r, 0)
    (-0.3, "7", "6", "min", -0.3, False),  # already below 0: unchanged
    (0.8, "7", "", "min", 0.8, False),  # D_fail: r
    (0.8, "7", "6", "minus", -0.2, True),  # Minus: r - 1
    (-0.3, "7", "6", "minus", -1.3, True),
    (0.8, "6", "6", "minus", 0.8, False),
]


@pytest.mark.parametrize(("r", "answer", "label", "variant", "want", "clipped"), EQ7)
def test_eq7(r: float, answer: str | None, label: str, variant: str, want: float, clipped: bool) -> None:
    got = clip_reward(r, answer=answer, label=label, variant=variant)
    assert got[0] == pytest.approx(want) and got[1] == clipped


def test_eq7_knobs() -> None:
    assert clip_reward(1.0, answer=None, label="1", no_answer_score=-2.0) == (-2.0, False)
    with pytest.raises(ValueError, match="variant"):
        clip_reward(1.0, answer="1", label="2", variant="max")


def test_triples_equal_numbers_uniform_and_deduplicated() -> None:
    pos, neg, teacher = ["p1", "p1", "p2", "p3"], ["n1", "n2"], ["t1", "t2", "t3"]
    got = draw_triples(pos, neg, teacher, rng=random.Random(0), per_query=None, teacher_ratio=1.0)
    assert len(got) == 2  # min(3 distinct S+, 2 S-, 3 T+)
    assert len({t["pos"] for t in got}) == 2 and {t["neg"] for t in got} == {"n1", "n2"}
    assert all(len(t["teacher"]) == 1 for t in got) and len({t["teacher"][0] for t in got}) == 2
    seen = {draw_triples(pos, neg, teacher, rng=random.Random(s), per_query=None, teacher_ratio=1.0)[0]["pos"]
            for s in range(40)}
    assert seen == {"p1", "p2", "p3"}  # every distinct positive can be drawn


@pytest.mark.parametrize(("ratio", "per_triple"), [(0.0, [0, 0, 0, 0]), (0.5, [0, 1, 0, 1]), (1.0, [1, 1, 1, 1]),
                                                   (2.0, [2, 2, 2, 2])])
def test_teacher_ratio(ratio: float, per_triple: list[int]) -> None:
    pos, neg, teacher = [f"p{i}" for i in range(4)], [f"n{i}" for i in range(4)], [f"t{i}" for i in range(8)]
    got = draw_triples(pos, neg, teacher, rng=random.Random(0), per_query=None, teacher_ratio=ratio)
    assert [len(t["teacher"]) for t in got] == per_triple


def test_triples_need_every_kind_and_respect_the_cap() -> None:
    assert draw_triples(["p"], [], ["t"], rng=random.Random(0), per_query=None, teacher_ratio=1.0) == []
    assert draw_triples(["p"], ["n"], [], rng=random.Random(0), per_query=None, teacher_ratio=1.0) == []
    assert len(draw_triples(["p"], ["n"], [], rng=random.Random(0), per_query=None, teacher_ratio=0.0)) == 1
    many = [f"x{i}" for i in range(9)]
    assert len(draw_triples(many, [f"n{i}" for i in range(9)], [f"t{i}" for i in range(9)], rng=random.Random(0),
                            per_query=2, teacher_ratio=1.0)) == 2


def test_seed000_schedule() -> None:
    s = get_schedule("seed000_gsm8k@1")
    assert s.high == (0.0, 0.1, 0.2, 0.3) and s.low == (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert (s.n, s.max_tokens, get_schedule("seed000_mmlu_pro").max_tokens) == (5, 512, 1024)
    st = get_schedule("seed000_student_gsm8k@1")
    assert (st.high, st.low, st.n) == ((), (0.7,), 30)
    with pytest.raises(ValueError, match="unknown sampling schedule"):
        get_schedule("nope")
    # versions stay reachable; the bare name is the newest
    assert get_schedule("seed000_cpu@1").low == s.low and get_schedule("seed000_cpu@2").low == (0.4, 0.6, 0.8, 1.0)
    assert get_schedule("seed000_cpu") == get_schedule("seed000_cpu@2")


def test_pending_groups_skip_done() -> None:
    s = get_schedule("seed000_gsm8k@1")
    done = {group_key(0, t) for t in s.high} | {group_key(1, 0.4)}
    todo = pending_groups(2, s, done)
    assert len(todo) == 2 * 11 - 5 and (0, 0.0, "high") not in todo and (1, 0.0, "high") in todo


def test_samples_file_torn_line_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    good = [{"row": 0, "temperature": 0.0, "responses": ["a"]}, {"row": 1, "temperature": 0.0, "responses": ["b"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in good) + '{"row": 2, "tempera')
    assert read_samples(path) == good
    assert path.read_text().endswith('"tempera')  # reading alone changes nothing
    assert read_samples(path, repair=True) == good
    assert path.read_text() == "".join(json.dumps(r) + "\n" for r in good)  # the torn bytes are cut
    path.write_text(json.dumps(good[0]) + "\nnot json\n" + json.dumps(good[1]) + "\n")
    with pytest.raises(ValueError, match="samples.jsonl:2"):
        read_samples(path)


def test_pos_pos_accuracy_leaves_out_identical_pairs() -> None:
    from verl_distill.train_rm import pairwise_metrics

    class Fixed(torch.nn.Module):  # reward = first token id: identical sequences tie
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
            return type("Out", (), {"logits": input_ids[:, :1].float()})()

    model = Fixed()
    model.register_parameter("p", torch.nn.Parameter(torch.zeros(1)))
    items = [{"seqs": [[5], [1], [9]], "n_teacher": 1},  # T+ 9 > S+ 5: right
             {"seqs": [[5], [1], [5]], "n_teacher": 1},  # T+ == S+ word for word: left out
             {"seqs": [[5], [7], [3]], "n_teacher": 1}]  # T+ 3 < S+ 5: wrong; S- 7 > S+ 5: wrong
    m = pairwise_metrics(model, [TripleCollator(0)(items)], lam=0.5, loss="pref+cls")
    assert (m["pos_pos"], m["teacher_pairs"], m["identical_teacher_pairs"]) == (0.5, 2, 1)
    assert m["pos_neg"] == pytest.approx(2 / 3)
