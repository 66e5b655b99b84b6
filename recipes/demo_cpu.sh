#!/usr/bin/env bash
# The CPU demo (`make demo`): tiny local models and bundled data, verl's real trainers, end to end.
#   1. build the tiny tokenizer and models, convert the bundled data (synthetic problems, GSM8K, SVAMP);
#   2. SFT warm-up of the student on synthetic program-of-thought solutions (recipes/sft_warmup_gsm8k.sh);
#   3. a short GRPO run with the program-of-thought reward (recipes/grpo_rlvr_gsm8k.sh);
#   4. greedy evaluation on a fixed held-out test set: base, after SFT, after GRPO (with 95% intervals and a
#      paired McNemar test), saved as JSON + PNG along with the GRPO validation curve.
# Knobs: RUN_ROOT, SFT_STEPS, GRPO_STEPS, SEED. Re-running resumes: finished stages are skipped.
set -euo pipefail
export FORCE_CPU=1
export RUN_ROOT=${RUN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)/runs/demo}
source "$(dirname "$0")/_common.sh"
SFT_STEPS=${SFT_STEPS:-240}
GRPO_STEPS=${GRPO_STEPS:-25}
export SEED=${SEED:-42}
START=$SECONDS

echo "== [1/4] tiny models and data under $RUN_ROOT"
ensure_cpu_assets

echo "== [2/4] SFT warm-up ($SFT_STEPS steps, verl.trainer.sft_trainer)"
if [[ ! -f "$RUN_ROOT/sft_warmup/latest_checkpointed_iteration.txt" ]]; then
  MAX_STEPS=$SFT_STEPS bash "$REPO/recipes/sft_warmup_gsm8k.sh" > "$RUN_ROOT/sft_warmup.log" 2>&1 \
    || { tail -30 "$RUN_ROOT/sft_warmup.log"; exit 1; }
fi
SFT_MODEL=$(latest_hf "$RUN_ROOT/sft_warmup")
echo "   -> $SFT_MODEL ($((SECONDS - START)) s)"

echo "== [3/4] GRPO with the program-of-thought reward ($GRPO_STEPS steps, verl.trainer.main_ppo)"
if [[ ! -d "$(latest_hf "$RUN_ROOT/grpo_rlvr")" ]]; then
  STUDENT=$SFT_MODEL STEPS=$GRPO_STEPS SAVE_FREQ=$GRPO_STEPS TEST_FREQ=5 \
    bash "$REPO/recipes/grpo_rlvr_gsm8k.sh" > "$RUN_ROOT/grpo_rlvr.log" 2>&1 \
    || { tail -30 "$RUN_ROOT/grpo_rlvr.log"; exit 1; }
fi
RL_MODEL=$(latest_hf "$RUN_ROOT/grpo_rlvr")
echo "   -> $RL_MODEL ($((SECONDS - START)) s)"

echo "== [4/4] greedy evaluation on $CPU_DATA/synthetic/test.parquet (held out)"
"$PY" -m verl_distill.cli eval "$TINY_DIR/student" "$SFT_MODEL" "$RL_MODEL" --labels base after-SFT after-GRPO \
  --data "$CPU_DATA/synthetic/test.parquet" --out "$RUN_ROOT/demo_eval.json"
"$PY" -m verl_distill.cli plot-metrics "$RUN_ROOT/grpo_rlvr/metrics.jsonl" --out "$RUN_ROOT/grpo_curve.png" \
  --keys "val-core/synthetic_arith/acc/mean@1" "critic/score/mean"
echo "demo finished in $((SECONDS - START)) s; results in $RUN_ROOT"
