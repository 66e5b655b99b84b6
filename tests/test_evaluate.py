"""``verl-distill eval`` (statistics, maj@k and rerank@k, a real CLI run) and the readers of verl's file-logger
metrics."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from verl_distill import cli
from verl_distill.bench.steps import breakdown, format_breakdown
from verl_distill.evaluate import (
    EvalResult,
    Sampling,
    default_label,
    evaluate_model,
    format_table,
    generate,
    load_policy,
    load_reward,
    maj_correct,
    majority_index,
    mcnemar_exact,
    rerank_correct,
    rerank_index,
    score,
    summarize_samples,
    wilson_interval,
)
from verl_distill.io import read_parquet_rows
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


# --- maj@k and rerank@k on hand-made inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(("preds", "winner"), [
    (["5", "5", "3"], 0), (["3", "5", "5"], 1),
    (["3", "5"], 0), (["5", "3", "3", "5"], 0), (["3", "5", "5", "3", "7"], 0),  # ties: the answer seen first
    (["", "", "5"], 0),  # "" (no answer) votes like any answer, as in verl
    ([None, "4", None], 1), ([None, None], None), ([], None),  # None abstains
])
def test_majority_index(preds: list, winner: int | None) -> None:
    assert majority_index(preds) == winner


def info(pred: str | None, acc: float) -> dict:
    return {"score": acc, "acc": acc, "pred": pred}


def test_maj_correct_uses_first_sample_of_winner_and_all_none_is_wrong() -> None:
    assert maj_correct([info("7", 0.0), info("8", 1.0), info("8", 1.0)]) == 1
    assert maj_correct([info("7", 0.0), info("8", 1.0)]) == 0  # tie: "7" came first
    assert maj_correct([info("", 0.0), info("", 0.0), info("8", 1.0)]) == 0
    assert maj_correct([info(None, 1.0), info(None, 1.0)]) == 0
    with pytest.raises(ValueError, match="no 'pred' key"):
        maj_correct([{"score": 1.0, "acc": 1.0}])


def test_maj_correct_equals_verl_calc_maj_val() -> None:
    """Our vote is verl's ``calc_maj_val(vote_key="pred", val_key="acc")`` on the same samples, ties included."""
    from verl.trainer.ppo.metric_utils import calc_maj_val

    rng = random.Random(0)
    for _ in range(500):
        group = [info(rng.choice(["", "1", "2", "3.5"]), float(rng.random() < 0.5)) for _ in range(rng.randint(1, 8))]
        assert maj_correct(group) == calc_maj_val(group, vote_key="pred", val_key="acc")


def test_rerank_index() -> None:
    assert rerank_index([0.1, 0.9, 0.3]) == 1
    assert rerank_index([0.5, 0.2, 0.5]) == 0  # tie: the first
    for bad, match in (([], "no scores"), ([0.1, float("nan")], "non-finite"), ([None], "non-numeric")):
        with pytest.raises(ValueError, match=match):
            rerank_index(bad)


ROWS = [{"extra_info": {"question": f"q{i}"}} for i in range(3)]
COMPLETIONS = [["a0", "a1", "a2"], ["b0", "b1", "b2"], ["c0", "c1", "c2"]]
INFOS = [[info("1", 0.0), info("2", 1.0), info("1", 0.0)],
         [info("4", 1.0), info("4", 1.0), info("", 0.0)],
         [info(None, 0.0), info(None, 0.0), info(None, 1.0)]]


def test_summarize_samples_maj_and_rerank() -> None:
    seen: list = []

    def scorer(pairs: list[tuple[str, str]]) -> list[float]:
        seen.extend(pairs)
        return [{"a1": 0.9, "b2": 0.8, "c2": 0.7}.get(sol, 0.1) for _, sol in pairs]

    result = summarize_samples("m", ROWS, COMPLETIONS, INFOS, scorer=scorer)
    assert seen == [(f"q{i}", c) for i, group in enumerate(COMPLETIONS) for c in group]  # one call, all pairs
    assert (result.n, result.k) == (3, 3)
    assert result.maj_correct == (0, 1, 0) and result.maj == pytest.approx(1 / 3)
    assert result.rerank_correct == (1, 0, 1) and result.rerank == pytest.approx(2 / 3)
    assert result.mean_acc == pytest.approx(4 / 9)
    assert summarize_samples("m", ROWS, COMPLETIONS, INFOS).rerank is None


def test_k1_maj_and_rerank_equal_the_sampled_accuracy() -> None:
    infos = [[info("3", 1.0)], [info("", 0.0)], [info("2", 0.0)], [info("5", 1.0)]]
    rows, completions = ROWS + ROWS[:1], [["x"]] * 4
    result = summarize_samples("m", rows, completions, infos, scorer=lambda pairs: [0.0] * len(pairs))
    assert result.maj_correct == result.rerank_correct == (1, 0, 0, 1)
    assert result.maj == result.rerank == result.mean_acc == 0.5


def test_bad_sample_shapes_and_scorers_raise() -> None:
    with pytest.raises(ValueError, match="same number of samples"):
        summarize_samples("m", ROWS, COMPLETIONS, [INFOS[0], INFOS[1][:2], INFOS[2]])
    with pytest.raises(ValueError, match="returned 2 scores for 9 pairs"):
        rerank_correct(ROWS, COMPLETIONS, INFOS, lambda pairs: [0.0, 1.0])
    for bad in ({"k": 0}, {"k": 2, "temperature": 0.0}, {"k": 2, "top_p": 1.5}):
        with pytest.raises(ValueError):
            Sampling(**bad)


def test_votes_of_real_pot_rewards() -> None:
    """PoT reward outputs of real programs: 8 and 8.0 vote together; two responses without a value ("") outvote
    one right answer, as in verl's maj@N."""
    reward = load_reward()
    row = {"data_source": "t", "reward_model": {"ground_truth": "8"},
           "extra_info": {"question": "What is 5 + 3?", "task": "pot"}}
    right, right_float, wrong = "    return 5 + 3\n", "    x = 16 / 2\n    return x\n", "    return 5 - 3\n"
    groups = [[wrong, right, right_float], [right, "no program here", "    raise ValueError\n"]]
    infos = [score([row] * len(g), g, reward) for g in groups]
    assert [[i["pred"] for i in group] for group in infos] == [["2.0", "8.0", "8.0"], ["8.0", "", ""]]
    result = summarize_samples("m", [row, row], groups, infos)
    assert result.maj_correct == (1, 0) and result.mean_acc == pytest.approx(3 / 6)


# --- generation and a real CLI run on the tiny student ---------------------------------------------------------


def test_sampling_near_zero_temperature_is_greedy(tiny_dir: Path, small_data: Path) -> None:
    rows = read_parquet_rows(small_data / "synthetic" / "test.parquet")[:4]
    policy = load_policy(tiny_dir / "student")
    greedy = generate(policy, rows, max_new_tokens=12)
    assert generate(policy, rows, max_new_tokens=12, sampling=Sampling(1, temperature=1e-4)) == greedy
    sampled = generate(policy, rows, max_new_tokens=12, sampling=Sampling(3, seed=1))
    assert [len(g) for g in sampled] == [3] * 4 and len({c for g in sampled for c in g}) > 4  # really sampled
    assert generate(policy, rows, max_new_tokens=12, sampling=Sampling(3, seed=1)) == sampled  # seeded


def test_cli_greedy_and_maj3_on_two_test_sets(tiny_dir: Path, small_data: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    data = [small_data / "synthetic" / "test.parquet", small_data / "gsm8k_test" / "test.parquet"]
    out = tmp_path / "eval.json"
    argv = ["eval", str(tiny_dir / "student"), "--labels", "tiny", "--data", *map(str, data), "--limit", "5",
            "--max-new-tokens", "16", "--samples", "3", "--seed", "3", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("model ") and "/greedy" in line)
    assert header.split() == ["model", "synthetic_arith/greedy", "synthetic_arith/maj@3", "gsm8k/greedy", "gsm8k/maj@3"]
    assert "synthetic_arith: greedy decoding, 5 questions" in printed
    assert "gsm8k: greedy decoding, 4 questions" in printed
    payload = json.loads(out.read_text())
    assert payload["sampling"] == {"k": 3, "temperature": 1.0, "top_p": 1.0, "seed": 3}
    assert list(payload["table"]["tiny"]) == header.split()[1:]
    by_set = {r["dataset"]: r for r in payload["results"]}
    for name, n in (("synthetic_arith", 5), ("gsm8k", 4)):
        sampled = by_set[name]["sampled"]
        assert (sampled["n"], sampled["k"], len(sampled["maj_correct"])) == (n, 3, n) and sampled["rerank"] is None
        assert sampled["maj"] == sum(sampled["maj_correct"]) / n == payload["table"]["tiny"][f"{name}/maj@3"]
    # greedy numbers are those of the greedy-only code path
    rows = read_parquet_rows(data[0])[:5]
    alone = evaluate_model(tiny_dir / "student", rows, load_reward(), max_new_tokens=16)
    assert by_set["synthetic_arith"]["greedy"]["correct"] == list(alone.correct)
    assert by_set["synthetic_arith"]["greedy"]["mean_reward"] == alone.mean_reward
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_cli_argument_errors(tiny_dir: Path, small_data: Path) -> None:
    data = str(small_data / "gsm8k_test" / "test.parquet")
    base = ["eval", str(tiny_dir / "student"), "--data", data, "--limit", "1", "--max-new-tokens", "4"]
    with pytest.raises(SystemExit, match="needs --samples"):
        cli.main([*base, "--reranker-url", "http://127.0.0.1:9", "--reranker-tokenizer", str(tiny_dir / "student")])
    with pytest.raises(SystemExit, match="go together"):
        cli.main([*base, "--samples", "2", "--reranker-url", "http://127.0.0.1:9"])
    with pytest.raises(SystemExit, match="both 'gsm8k'"):
        cli.main([*base[:3], data, data, *base[4:]])
    with pytest.raises(SystemExit, match="temperature"):
        cli.main([*base, "--samples", "2", "--temperature", "0"])
    with pytest.raises(SystemExit, match="distinct labels"):
        cli.main([*base[:2], str(tiny_dir / "student"), "--labels", "a", "a", *base[2:]])
    with pytest.raises(SystemExit, match="no rows"):
        cli.main([*base, "--limit", "0"])


def test_cli_rerank3_with_a_served_reranker(tiny_dir: Path, small_data: Path, tmp_path: Path, vllm_server,
                                            tiny_reranker: Path, capsys: pytest.CaptureFixture) -> None:
    """rerank@3 through the CLI against a real vLLM ``/classify`` server (the shared two-class tiny reranker)."""
    reranker = tiny_reranker
    served = vllm_server(reranker, runner="pooling")
    out = tmp_path / "eval.json"
    assert cli.main(["eval", str(tiny_dir / "student"), "--data", str(small_data / "gsm8k_test" / "test.parquet"),
                     "--max-new-tokens", "16", "--samples", "3", "--reranker-url", served.base_url,
                     "--reranker-tokenizer", str(reranker), "--out", str(out)]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("model ") and "@3" in line)
    assert header.split() == ["model", "gsm8k/greedy", "gsm8k/maj@3", "gsm8k/rerank@3"]
    (result,) = json.loads(out.read_text())["results"]
    sampled = result["sampled"]
    assert len(sampled["rerank_correct"]) == 4 and sampled["rerank"] == sum(sampled["rerank_correct"]) / 4


@pytest.mark.parametrize(("model", "label"), [
    ("runs/sft/global_step_240/huggingface", "global_step_240"),
    ("runs/ppo/global_step_5/actor/huggingface", "global_step_5"),
    ("runs/tiny/student", "student"),
])
def test_default_label_names_verl_exports_by_step(model: str, label: str) -> None:
    """Two checkpoints of one run must get distinct default labels (verl exports all end in .../huggingface)."""
    assert default_label(model) == label
