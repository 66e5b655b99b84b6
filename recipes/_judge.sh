# Shared body of the LLM-as-a-judge recipes of seed 002 (sourced by ppo_judge_gsm8k.sh / grpo_judge_gsm8k.sh after
# they set ALGO, CPU_MICRO_BATCH and BATCH). Adds to _rlvr.sh:
#   * the loss coefficients COEF="a_v,a_j,a_r" -> exact per-batch counts of labeled / unlabeled prompts
#     (verl_distill.data.mixed.MixedRLDataset) and the reward policy table (reward_fns/distill_mix.py);
#   * the served judge (one-step Yes/No, JUDGE=<model>) and reranker (RERANKER=<two-class classifier>), reached by URL
#     (JUDGE_URL / RERANKER_URL given, or a vLLM server started here and stopped on exit), or the judge served by
#     verl's own reward-model router (JUDGE_VIA=verl, GPU machines);
#   * the Appendix B.3 guards (GUARDS=1: the 4-line mask and answer-only rejection; the docstring instruction is
#     chosen when the data is converted: data_prep ... --guarded).
# Knobs: COEF, LABELED_FILES, UNLABELED_FILES, JUDGE, JUDGE_URL, JUDGE_VIA (url|verl), JUDGE_T, JUDGE_THRESHOLD,
# JUDGE_TEMPLATE (default: by the row's task, judge_pot@1; the CPU demo's tiny judge: judge_pot_compact@1),
# RERANKER, RERANKER_URL, GUARDS, MIN_LINES, REQUIRE_RUNNABLE (0; 1: our own, non-paper guard, see judge_yes_no.py).
source "$(dirname "${BASH_SOURCE[0]}")/_rlvr.sh"

COEF=${COEF:-0.5,0.5,0}
# The B.3 guards: the paper used them in one run only (CodeGen, GSM8K sup + GSM-Plus unsup), so the paper
# configuration (GPU) has them off unless GUARDS=1; the tiny CPU run keeps them on.
GUARDS=${GUARDS:-$(( ON_GPU == 1 ? 0 : 1 ))}
MIN_LINES=${MIN_LINES:-4}
JUDGE_T=${JUDGE_T:-1.0}
JUDGE_THRESHOLD=${JUDGE_THRESHOLD:-0.5}
JUDGE_VIA=${JUDGE_VIA:-url}
if [[ $ON_GPU == 1 ]]; then
  LABELED_FILES=${LABELED_FILES:-$RUN_ROOT/data/gsm8k_pot/train.parquet}
  UNLABELED_FILES=${UNLABELED_FILES:-$RUN_ROOT/data/gsm8k_pot_unlabeled/train.parquet}
  JUDGE=${JUDGE:-Qwen/Qwen3-8B}
  SERVE_ARGS=(--max-model-len 4096 "--vllm-args=--gpu-memory-utilization ${SERVE_GPU_MEM:-0.3}")
else
  LABELED_FILES=${LABELED_FILES:-$CPU_DATA/synthetic/train.parquet}
  UNLABELED_FILES=${UNLABELED_FILES:-$CPU_DATA/synthetic_unlabeled/unlabeled.parquet}  # from prepare-data
  JUDGE=${JUDGE:-$RUN_ROOT/judge}  # recipes/train_judge.sh
  SERVE_ARGS=(--max-model-len 1024)
fi
RERANKER=${RERANKER:-}

# Coefficients -> LABELED_COUNT, UNLABELED_COUNT, REWARD_POLICY, USES_JUDGE, USES_RERANKER.
PLAN=$("$PY" -m verl_distill.cli mix-plan --coef "$COEF" --batch-size "$BATCH")
eval "$PLAN"
DATA_NO_TRAIN=()
for arg in "${DATA[@]}"; do [[ $arg == data.train_files=* ]] || DATA_NO_TRAIN+=("$arg"); done
DATA=("${DATA_NO_TRAIN[@]}")
FILES=() COUNTS=()
(( LABELED_COUNT > 0 )) && FILES+=("'$LABELED_FILES'") && COUNTS+=("$LABELED_COUNT")
(( UNLABELED_COUNT > 0 )) && FILES+=("'$UNLABELED_FILES'") && COUNTS+=("$UNLABELED_COUNT")
MIX=(
  data.train_files="[$(IFS=,; echo "${FILES[*]}")]"
  data.custom_cls.path=pkg://verl_distill.data.mixed
  data.custom_cls.name=MixedRLDataset
  data.shuffle=False
  "+data.mix.counts=[$(IFS=,; echo "${COUNTS[*]}")]"
)

trap stop_servers EXIT

KW=+reward.custom_reward_function.reward_kwargs
REWARD_ARGS=(
  reward.custom_reward_function.path="$REPO/reward_fns/distill_mix.py"
  reward.custom_reward_function.name=compute_score
  "$KW.policy='$REWARD_POLICY'"
)
guard_args() {  # guard_args COMPONENT
  if [[ $GUARDS == 1 ]]; then
    REWARD_ARGS+=("$KW.$1.min_program_lines=$MIN_LINES" "$KW.$1.reject_answer_only=True")
  else
    REWARD_ARGS+=("$KW.$1.min_program_lines=0" "$KW.$1.reject_answer_only=False")
  fi
}
JUDGE_RM=()
if (( USES_JUDGE )); then
  REWARD_ARGS+=("$KW.judge.temperature=$JUDGE_T" "$KW.judge.threshold=$JUDGE_THRESHOLD")
  if [[ -z "${JUDGE_TEMPLATE:-}" && -f "$JUDGE/judge.json" ]]; then  # a judge made by train-judge: its prompt
    JUDGE_TEMPLATE=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["template"])' "$JUDGE/judge.json")
  fi
  [[ -n "${JUDGE_TEMPLATE:-}" ]] && REWARD_ARGS+=("$KW.judge.judge_template='$JUDGE_TEMPLATE'")
  guard_args judge
  # not in the paper: judge reward 0 for programs that do not run (label-free; a weak judge rewards crashes)
  [[ "${REQUIRE_RUNNABLE:-0}" == 1 ]] && REWARD_ARGS+=("$KW.judge.require_runnable=True")
  if [[ $JUDGE_VIA == verl ]]; then
    # verl serves the judge and passes reward_router_address + reward_model_tokenizer to the reward.
    # enable_resource_pool=True: the colocated path drops extra_info (KeyError 'data_source'); a free cache engine
    # would put the judge to sleep and nothing wakes it (docs/verl-0.9.1-extension-points.md, traps 4-5).
    JUDGE_RM=(
      reward.reward_model.enable=True
      reward.reward_model.enable_resource_pool=True
      reward.reward_model.n_gpus_per_node="${JUDGE_GPUS:-1}"
      reward.reward_model.nnodes=1
      reward.reward_model.model_path="$JUDGE"
      reward.reward_model.rollout.name=vllm
      reward.reward_model.rollout.tensor_model_parallel_size="${JUDGE_TP:-1}"
      reward.reward_model.rollout.free_cache_engine=False
      reward.reward_model.rollout.gpu_memory_utilization="${JUDGE_GPU_MEM:-0.8}"
      reward.reward_model.rollout.prompt_length="${JUDGE_MAX_PROMPT:-2048}"
      reward.reward_model.rollout.response_length=16
    )
  else
    if [[ -z "${JUDGE_URL:-}" && "${DRY_RUN:-0}" != 1 ]]; then
      serve_model judge "$JUDGE"
      JUDGE_URL=$(cat "$OUT_DIR/servers/judge.url")
    fi
    REWARD_ARGS+=("$KW.judge.judge_url=${JUDGE_URL:-http://127.0.0.1:8001}" "$KW.judge.judge_tokenizer=$JUDGE")
  fi
fi
if (( USES_RERANKER )); then
  [[ -n "$RERANKER" ]] || { echo "COEF=$COEF uses the reranker: set RERANKER=<two-class classifier dir>" >&2; exit 2; }
  if [[ -z "${RERANKER_URL:-}" && "${DRY_RUN:-0}" != 1 ]]; then
    serve_model reranker "$RERANKER" --runner pooling
    RERANKER_URL=$(cat "$OUT_DIR/servers/reranker.url")
  fi
  REWARD_ARGS+=("$KW.reranker.reranker_url=${RERANKER_URL:-http://127.0.0.1:8002}"
                "$KW.reranker.reranker_tokenizer=$RERANKER")
  guard_args reranker
fi
