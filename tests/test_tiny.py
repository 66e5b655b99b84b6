"""``verl-distill build-tiny``: deterministic, no download, shapes that verl and vLLM's CPU kernels accept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from verl_distill.tiny import build_tiny, tree_digest

VLLM_CPU_HEAD_SIZES = {32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512}


def test_same_seed_same_bytes(tiny_dir: Path, tmp_path: Path) -> None:
    build_tiny(tmp_path / "again", seed=0)
    for name in ("student", "teacher", "student_rm"):
        assert tree_digest(tiny_dir / name) == tree_digest(tmp_path / "again" / name), name


def test_other_seed_other_weights(tiny_dir: Path, tmp_path: Path) -> None:
    build_tiny(tmp_path / "s1", seed=1)
    assert tree_digest(tiny_dir / "student") != tree_digest(tmp_path / "s1" / "student")


def test_sizes_and_head_dim(tiny_dir: Path) -> None:
    summary = json.loads((tiny_dir / "tiny.json").read_text())
    student, teacher = summary["models"]["student"], summary["models"]["teacher"]
    assert student["params"] < 3_000_000 < teacher["params"] * 1.5 and teacher["params"] > student["params"]
    for name in ("student", "teacher", "student_rm"):
        cfg = json.loads((tiny_dir / name / "config.json").read_text())
        assert cfg["hidden_size"] // cfg["num_attention_heads"] in VLLM_CPU_HEAD_SIZES
        assert cfg["model_type"] == "qwen2"


def test_tokenizer_round_trips_any_text(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir / "student")
    for text in ["Janet’s ducks lay 16 eggs: café €5 ✓", "def solution():\n    return 1 / 3\n", "日本語 \t tabs"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id


def test_chat_template_and_generation(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir / "student")
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    model = AutoModelForCausalLM.from_pretrained(tiny_dir / "student")
    assert model.generation_config.eos_token_id == tok.eos_token_id
    out = model.generate(**tok(text, return_tensors="pt"), max_new_tokens=4, do_sample=False)
    assert out.shape[1] > len(tok(text)["input_ids"])


def test_reward_model_variant(tiny_dir: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_dir / "student_rm")
    tok = AutoTokenizer.from_pretrained(tiny_dir / "student_rm")
    assert model.config.num_labels == 1
    with torch.no_grad():
        logits = model(**tok(["a b", "c"], return_tensors="pt", padding=True)).logits
    assert logits.shape == (2, 1)


def test_cli(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).parent / "verl-distill")
    proc = subprocess.run([cli, "build-tiny", str(tmp_path / "t"), "--seed", "3"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "student" in proc.stdout and (tmp_path / "t" / "teacher" / "model.safetensors").exists()
