"""``verl-distill bench rm`` runs both trainers for real (ours and TRL's RewardTrainer) and prints its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_distill.bench.rm import synthetic_triples
from verl_distill.cli import main


def test_synthetic_triples_are_right_and_wrong_programs() -> None:
    from verl_distill.voting import response_answers

    triples = synthetic_triples(12)
    assert len(triples) >= 10
    pos = response_answers([t["pos"] for t in triples], "pot")
    neg = response_answers([t["neg"] for t in triples], "pot")
    teacher = response_answers([t["teacher"][0] for t in triples], "pot")
    assert pos == teacher and all(p != n for p, n in zip(pos, neg, strict=True))


def test_bench_rm_prints_both_trainers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "rm", "--triples", "24", "--steps", "3", "--batch-size", "4", "--max-length", "128",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ours / TRL: tokens/s" in printed and "trl " in printed and "ours " in printed
    result = json.loads(out.read_text())
    for name in ("ours", "trl"):
        run = result["runs"][name]
        assert run["tokens"] > 0 and run["tokens_per_s"] > 0 and run["seqs_per_s"] > 0
    # the same sequences per step: 4 triples x 3 sequences = 6 pairs x 2 sequences, 3 steps
    assert result["runs"]["ours"]["seqs_per_s"] * result["runs"]["ours"]["seconds"] == pytest.approx(36)
    assert result["runs"]["trl"]["seqs_per_s"] * result["runs"]["trl"]["seconds"] == pytest.approx(36)
