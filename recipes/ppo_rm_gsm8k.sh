#!/usr/bin/env bash
# Seed 000 §3.4 and Appendix B.2: PPO of the warm-up student with the trained reward model, clipped by the
# pseudo-label (Eq. 7, reward_fns/rm_pseudo_label.py), on the D_R and D_fail queries (make-rm-data's rl_train.parquet).
# Critic + GAE, KL penalty 0.2 in the reward, actor lr 1e-5, Table 6 batch sizes (BATCH: 20 for a 1B student on
# GSM8K, 4 for 3B; MMLU-Pro 10 / 2). The reward model is served by vLLM (--runner pooling) started here, or by verl's
# own reward-model router (RM_VIA=verl, GPU machines), or reached at RM_URL.
#   GPU:  STUDENT=<warm-up> RM=<train-rm dir> TRAIN_FILES=<make-rm-data>/rl_train.parquet \
#         VAL_FILES=<gsm8k validation parquet> bash recipes/ppo_rm_gsm8k.sh
#   Ablations: VARIANT=minus (Table 7: r - 1 on mismatch); "w/o Data" = RL from the base student: STUDENT=<base>
#         ACTOR_LR=5e-5 KL_COEF=0.1 (with a reward model trained from that student).
#   CPU:  called by recipes/distill_rewards.sh with the tiny models (STEPS, TEST_FREQ, ACTOR_LR 1e-4).
# Early stopping on validation: verl has none, so checkpoints are saved every TEST_FREQ steps and
# recipes/distill_rewards.sh evaluates the best one by the logged validation accuracy (verl-distill best-checkpoint).
# The paper's value coefficient 0.1 scales the value loss inside ONE optimizer (TRL); verl trains the critic with its
# own Adam, which is invariant to a loss scale, so it has no counterpart here (recipes/README.md).
set -euo pipefail
ALGO=ppo
CPU_MICRO_BATCH=16
source "$(dirname "$0")/_common.sh"
if [[ $ON_GPU == 1 ]]; then
  ACTOR_LR=${ACTOR_LR:-1e-5}
  BATCH=${BATCH:-20}
  MICRO_BATCH=${MICRO_BATCH:-4}       # divides Table 6's batch sizes (20, 10, 4, 2 -> set 2 for the last)
  MAX_RESPONSE=${MAX_RESPONSE:-512}   # Appendix B.2: 512 on GSM8K, 1024 on MMLU-Pro
  MAX_PROMPT=${MAX_PROMPT:-1024}      # the few-shot teacher prompt of Figure 8/9 is the student's prompt too
  TEST_FREQ=${TEST_FREQ:-500}
  SERVE_ARGS=(--max-model-len 2048 "--vllm-args=--gpu-memory-utilization ${SERVE_GPU_MEM:-0.2}")
else
  BATCH=${BATCH:-16}
  STEPS=${STEPS:-30}
  TEST_FREQ=${TEST_FREQ:-5}
  SERVE_ARGS=(--max-model-len 512)
fi
SAVE_FREQ=${SAVE_FREQ:-$TEST_FREQ}  # a checkpoint at every validation: the best is chosen afterwards
CRITIC_WARMUP=${CRITIC_WARMUP:-$(( ON_GPU == 1 ? 0 : 5 ))}
KL_COEF=${KL_COEF:-0.2}
EXPERIMENT=${EXPERIMENT:-ppo_rm}
REWARD=$REPO/reward_fns/rm_pseudo_label.py
source "$(dirname "$0")/_rlvr.sh"
RM=${RM:-$RUN_ROOT/distill_rewards/rm}   # verl-distill train-rm's output (recipes/distill_rewards.sh writes here)
if [[ "${DRY_RUN:-0}" != 1 && ! -f "$RM/config.json" ]]; then
  echo "RM=$RM is not a model directory: train one with verl-distill train-rm (or recipes/distill_rewards.sh)" >&2
  exit 2
fi
VARIANT=${VARIANT:-min}
RM_VIA=${RM_VIA:-url}
CRITIC_LR=${CRITIC_LR:-$ACTOR_LR}

KW=+reward.custom_reward_function.reward_kwargs
REWARD_ARGS+=("$KW.variant=$VARIANT")
RM_ARGS=()
if [[ $RM_VIA == verl ]]; then
  # verl serves the RM and passes reward_router_address + reward_model_tokenizer (extension-points doc, traps 4-5)
  RM_ARGS=(
    reward.reward_model.enable=True
    reward.reward_model.enable_resource_pool=True
    reward.reward_model.n_gpus_per_node="${RM_GPUS:-1}"
    reward.reward_model.nnodes=1
    reward.reward_model.model_path="$RM"
    reward.reward_model.rollout.name=vllm
    reward.reward_model.rollout.free_cache_engine=False
    reward.reward_model.rollout.gpu_memory_utilization="${RM_GPU_MEM:-0.3}"
  )
else
  trap stop_servers EXIT
  if [[ -z "${RM_URL:-}" && "${DRY_RUN:-0}" != 1 ]]; then
    serve_model rm "$RM" --runner pooling
    RM_URL=$(cat "$OUT_DIR/servers/rm.url")
  fi
  REWARD_ARGS+=("$KW.rm_url=${RM_URL:-http://127.0.0.1:8003}" "$KW.rm_tokenizer=$RM")
fi

GAE_LAM=${GAE_LAM:-1.0}  # verl's default (seed 000 gives no lambda); ReFT's 0.95 is the seed 002 recipes'
ppo_critic_args
run "$PY" -m verl.trainer.main_ppo "${PPO[@]}" "${DATA[@]}" "${MODEL[@]}" "${ACTOR[@]}" "${REWARD_ARGS[@]}" \
  "${RM_ARGS[@]}" "${TRAINER[@]}" "${DEVICE_ARGS[@]}" "${CRITIC_DEVICE_ARGS[@]}" "$@"
