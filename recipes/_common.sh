# Shared wiring for the recipes (sourced, not run). Sets:
#   REPO, RUN_ROOT, PY, ON_GPU (1/0), CPU_PPO / CPU_CRITIC / CPU_SFT override arrays, and helpers.
# A recipe decides between the paper's GPU configuration and the tiny CPU one with ON_GPU:
#   FORCE_CPU=1 forces the CPU configuration, FORCE_GPU=1 the GPU one (used by the config tests).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_ROOT=${RUN_ROOT:-$REPO/runs}
SHARED_DATA=${SHARED_DATA:-$REPO/../shared/data}
if [[ -x "$REPO/.venv/bin/python" && -z "${VIRTUAL_ENV:-}" ]]; then PY=${PY:-$REPO/.venv/bin/python}; else PY=${PY:-python}; fi
PY_BIN="$(dirname "$PY")"

if [[ "${FORCE_GPU:-0}" == 1 ]]; then ON_GPU=1
elif [[ "${FORCE_CPU:-0}" == 1 ]]; then ON_GPU=0
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then ON_GPU=1
else ON_GPU=0; fi

# verl on CPU (see verl_distill/cpu): our platform + hf rollout, one fake GPU per trainer process,
# and a small number of helper processes (each defaults to 8).
CPU_PPO=(
  trainer.device=cpu
  trainer.n_gpus_per_node=1
  trainer.nnodes=1
  +ray_kwargs.ray_init.num_gpus=1
  ray_kwargs.ray_init.num_cpus=16
  actor_rollout_ref.rollout.name=hf
  actor_rollout_ref.rollout.tensor_model_parallel_size=1
  +actor_rollout_ref.model.override_config.attn_implementation=sdpa
  actor_rollout_ref.actor.strategy=fsdp2
  actor_rollout_ref.actor.fsdp_config.strategy=fsdp2
  actor_rollout_ref.ref.strategy=fsdp2
  actor_rollout_ref.actor.use_torch_compile=False
  actor_rollout_ref.model.enable_gradient_checkpointing=False
  # verl packs a micro-batch into one sequence; without flash-attention's varlen kernels that is dense O(N^2)
  # attention over the packed length (10x slower here). Padded batches are far cheaper on CPU.
  actor_rollout_ref.model.use_remove_padding=False
  actor_rollout_ref.rollout.agent.num_workers=1
  reward.num_workers=1
  transfer_queue.backend.SimpleStorage.num_data_storage_units=1
  data.dataloader_num_workers=0
)
CPU_CRITIC=(
  critic.strategy=fsdp2
  +critic.model.override_config.attn_implementation=sdpa
  critic.model.enable_gradient_checkpointing=False
  critic.model.use_remove_padding=False
)
CPU_SFT=(
  trainer.device=cpu
  trainer.n_gpus_per_node=1
  +model.override_config.attn_implementation=sdpa
  model.enable_gradient_checkpointing=False
  model.use_remove_padding=False
  engine.strategy=fsdp2
  data.num_workers=0
)

# Tiny assets for the CPU configuration: models (verl-distill build-tiny) and synthetic problems.
TINY_DIR=${TINY_DIR:-$RUN_ROOT/tiny}
CPU_DATA=${CPU_DATA:-$RUN_ROOT/data}

ensure_cpu_assets() {
  [[ "${DRY_RUN:-0}" == 1 ]] && return 0
  [[ -f "$TINY_DIR/tiny.json" ]] || "$PY" -m verl_distill.cli build-tiny "$TINY_DIR"
  "$PY" -m verl_distill.cli prepare-data "$CPU_DATA"  # skips directories that already have a manifest
}

# run CMD...: print the command (DRY_RUN=1, one argument per line, for the config tests) or execute it.
run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then printf '%s\n' "$@"; else "$@"; fi
}

# The launch environment of verl on CPU.
cpu_env() {
  export VERL_PLATFORM=cpu
  export VERL_LOGGING_LEVEL=${VERL_LOGGING_LEVEL:-WARN}
  export RAY_DEDUP_LOGS=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
}

gpu_count() {
  local n
  n=$(nvidia-smi -L 2>/dev/null | wc -l)
  echo $(( n > 0 ? n : 1 ))
}

# latest_hf DIR: the Hugging Face export of the newest checkpoint verl saved under DIR (SFT or RL run).
latest_hf() {
  local dir=$1 step
  if [[ -f "$dir/latest_checkpointed_iteration.txt" ]]; then
    step=$(cat "$dir/latest_checkpointed_iteration.txt")
    if [[ -d "$dir/global_step_$step/actor/huggingface" ]]; then  # RL runs keep the actor in its own folder
      echo "$dir/global_step_$step/actor/huggingface"
    else
      echo "$dir/global_step_$step/huggingface"
    fi
  else
    echo "$dir/huggingface"
  fi
}

# Served models (vLLM, detached): serve_model NAME MODEL [serve args...] starts one under $OUT_DIR/servers with the
# caller's SERVE_ARGS; its URL is then in $OUT_DIR/servers/NAME.url. stop_servers stops every one started here
# (recipes that serve: trap stop_servers EXIT).
SERVER_PIDS=()
stop_servers() {
  local f
  for f in "${SERVER_PIDS[@]}"; do "$PY" -m verl_distill.cli serve --stop "$f" || true; done
  SERVER_PIDS=()
}
serve_model() {
  local name=$1 model=$2; shift 2
  local dir="$OUT_DIR/servers"
  mkdir -p "$dir"
  "$PY" -m verl_distill.cli serve "$model" --detach --pid-file "$dir/$name.pid" --url-file "$dir/$name.url" \
    --log "$dir/$name.log" "${SERVE_ARGS[@]}" "$@" >&2
  SERVER_PIDS+=("$dir/$name.pid")
}
