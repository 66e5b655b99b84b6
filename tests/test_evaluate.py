"""Statistics of ``verl-distill eval`` and the readers of verl's file-logger metrics (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_distill.bench.steps import breakdown, format_breakdown
from verl_distill.evaluate import EvalResult, format_table, mcnemar_exact, wilson_interval
from verl_distill.plots import plot_metrics, read_metrics


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962), (164, 300, 0.4900, 0.6027),
])
def test_wilson_interval_matches_reference_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-3) and hi == pytest.approx(high, abs=1e-3)


def test_mcnemar_exact() -> None:
    assert mcnemar_exact([1, 1, 0, 0], [1, 1, 0, 0]) == (0, 0, 1.0)
    lost, gained, p = mcnemar_exact([0] * 20, [1] * 20)
    assert (lost, gained) == (0, 20) and p == pytest.approx(2 * 0.5**20)
    # 10 discordant pairs split 5/5: no evidence of change
    assert mcnemar_exact([1] * 5 + [0] * 5, [0] * 5 + [1] * 5)[2] == 1.0
    # 2 vs 8 discordant: p = 2 * P(X <= 2 | n=10) = 0.109
    assert mcnemar_exact([1] * 2 + [0] * 8, [0] * 2 + [1] * 8)[2] == pytest.approx(2 * 56 / 1024)
    with pytest.raises(ValueError, match="equal lengths"):
        mcnemar_exact([1], [1, 0])


def test_format_table_compares_with_previous_row() -> None:
    a = EvalResult("a", 4, 1.0, 0.25, 0.05, 0.7, 0.3, (1, 0, 0, 0))
    b = EvalResult("b", 4, 1.0, 0.75, 0.3, 0.95, 0.8, (1, 1, 1, 0))
    table = format_table([a, b], ["sft", "rl"])
    assert "+2/-0" in table and table.splitlines()[2].startswith("sft")


def write_metrics(path: Path, records: list[tuple[int, dict]]) -> None:
    path.write_text("".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in records))


def test_read_metrics_merges_lines_of_a_step(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    write_metrics(path, [(0, {"val-core/x/acc/mean@1": 0.25}), (1, {"timing_s/step": 9.0, "pred": "a"}),
                         (1, {"val-core/x/acc/mean@1": 0.5})])
    metrics = read_metrics(path)
    assert metrics == {0: {"val-core/x/acc/mean@1": 0.25}, 1: {"timing_s/step": 9.0, "val-core/x/acc/mean@1": 0.5}}
    out = tmp_path / "c.png"
    plot_metrics(path, ["val-core/x/acc/mean@1"], out)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KeyError, match="no values for"):
        plot_metrics(path, ["nope"], out)


def test_bad_metrics_line_names_its_number(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "data": {}}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        read_metrics(path)


def test_step_breakdown_uses_median_after_first_step() -> None:
    metrics = {s: {"timing_s/step": t, "timing_s/gen": t / 2} for s, t in [(1, 30.0), (2, 8.0), (3, 10.0), (4, 9.0)]}
    rows = {name: (first, median) for name, first, median in breakdown(metrics)}
    assert rows["step"] == (30.0, 9.0) and rows["gen"] == (15.0, 4.5)
    assert "50%" in format_breakdown(breakdown(metrics))
    with pytest.raises(ValueError):
        breakdown({1: {"timing_s/step": 1.0}})
