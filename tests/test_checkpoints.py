"""``verl-distill best-checkpoint`` on a run directory laid out as verl writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_distill.checkpoints import best_checkpoint
from verl_distill.cli import main

KEY = "val-core/synthetic_arith/acc/mean@1"


def _run(tmp_path: Path, values: dict[int, float], saved: list[int], actor: bool = True) -> Path:
    lines = [json.dumps({"step": s, "data": {KEY: v}}) for s, v in values.items()]
    lines += [json.dumps({"step": s, "data": {"critic/score/mean": 0.1}}) for s in range(1, 12)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    for s in saved:
        (tmp_path / f"global_step_{s}" / ("actor/huggingface" if actor else "huggingface")).mkdir(parents=True)
    return tmp_path


def test_best_saved_validated_step_wins(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = _run(tmp_path, {0: 0.9, 5: 0.5, 10: 0.7, 15: 0.7}, saved=[5, 10, 15])
    step, value, path = best_checkpoint(run, KEY)
    assert (step, value) == (10, 0.7)  # step 0 was not saved; 10 and 15 tie: the earlier wins
    assert path == run / "global_step_10" / "actor" / "huggingface"
    assert main(["best-checkpoint", str(run), "--key", KEY]) == 0
    assert capsys.readouterr().out.strip() == str(path)


def test_sft_layout_and_clear_errors(tmp_path: Path) -> None:
    run = _run(tmp_path, {4: 0.2, 8: 0.3}, saved=[4, 8], actor=False)
    assert best_checkpoint(run, KEY)[2] == run / "global_step_8" / "huggingface"
    with pytest.raises(ValueError, match="no step logs 'val-core/other'"):
        best_checkpoint(run, "val-core/other")
    (tmp_path / "b").mkdir()
    other = _run(tmp_path / "b", {5: 0.1}, saved=[3])
    with pytest.raises(ValueError, match="save_freq equal to trainer.test_freq"):
        best_checkpoint(other, KEY)
