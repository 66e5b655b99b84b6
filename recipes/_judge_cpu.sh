# CPU defaults of the judge recipes (sourced after _common.sh; a no-op on GPU machines and with DRY_RUN=1):
#   1. tiny models + synthetic data; 2. the SFT warm-up student (recipes/sft_warmup_gsm8k.sh) unless STUDENT is set;
#   3. the tiny judge (recipes/train_judge.sh: Yes/No SFT of the tiny teacher on correct and incorrect student
#      solutions) unless JUDGE is set; its pairwise accuracy on held-out questions (seed 002 Table 3) is printed.
# Finished stages are skipped (their checkpoints exist), so a second run goes straight to RL.
# judge_cpu_summary (called at the end of the recipe): greedy accuracy before/after on the held-out synthetic test.
JUDGE_CPU_START=$SECONDS
judge_cpu_summary() { :; }
if [[ $ON_GPU == 0 && "${DRY_RUN:-0}" != 1 ]]; then
  ensure_cpu_assets
  if [[ -z "${STUDENT:-}" ]]; then
    if [[ ! -f "$RUN_ROOT/sft_warmup/latest_checkpointed_iteration.txt" ]]; then
      echo "== SFT warm-up of the tiny student (${SFT_STEPS:-240} steps) -> $RUN_ROOT/sft_warmup" >&2
      mkdir -p "$RUN_ROOT"
      MAX_STEPS=${SFT_STEPS:-240} bash "$REPO/recipes/sft_warmup_gsm8k.sh" > "$RUN_ROOT/sft_warmup.log" 2>&1 \
        || { tail -30 "$RUN_ROOT/sft_warmup.log"; exit 1; }
    fi
    STUDENT=$(latest_hf "$RUN_ROOT/sft_warmup")
  fi
  export STUDENT
  if [[ -z "${JUDGE:-}" && -z "${JUDGE_URL:-}" ]]; then
    echo "== tiny judge (recipes/train_judge.sh) -> $RUN_ROOT/judge" >&2
    STUDENT=$STUDENT bash "$REPO/recipes/train_judge.sh" > "$RUN_ROOT/train_judge.log" 2>&1 \
      || { tail -30 "$RUN_ROOT/train_judge.log"; exit 1; }
    grep -iE "pairwise accuracy" "$RUN_ROOT/train_judge.log" | tail -1 >&2 || true
    JUDGE=$RUN_ROOT/judge
  fi
  SAVE_FREQ=${SAVE_FREQ:-$STEPS}
  echo "== student $STUDENT, judge ${JUDGE:-$JUDGE_URL} ($((SECONDS - JUDGE_CPU_START)) s)" >&2

  judge_cpu_summary() {
    local after
    after=$(latest_hf "$OUT_DIR")
    if [[ ! -f "$after/config.json" ]]; then
      echo "(no saved checkpoint under $OUT_DIR: SAVE_FREQ=$SAVE_FREQ; skipping the before/after evaluation)" >&2
      return 0
    fi
    echo "== greedy accuracy on the held-out synthetic test, before and after $ALGO with the judge" >&2
    "$PY" -m verl_distill.cli eval "$STUDENT" "$after" --labels before "after-$ALGO-judge" \
      --data "$CPU_DATA/synthetic/test.parquet" --out "$OUT_DIR/eval.json"
    "$PY" -m verl_distill.cli plot-metrics "$OUT_DIR/metrics.jsonl" --out "$OUT_DIR/curves.png" \
      --keys "val-core/synthetic_arith/acc/mean@1" "distill/gold/pot" "distill/none/judge" || true
    echo "finished in $((SECONDS - JUDGE_CPU_START)) s; results in $OUT_DIR" >&2
  }
fi
