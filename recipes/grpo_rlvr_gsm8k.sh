#!/usr/bin/env bash
# RLVR baseline of seed 002 with GRPO: 16 questions x 8 samples per step, KL loss 0.01 (low-variance estimator)
# against the SFT warm-up reference, 2 PPO epochs, program-of-thought reward.
#   GPU:  STUDENT=runs/sft_warmup/huggingface bash recipes/grpo_rlvr_gsm8k.sh
#   CPU:  bash recipes/grpo_rlvr_gsm8k.sh   (tiny student after `bash recipes/sft_warmup_gsm8k.sh`)
set -euo pipefail
ALGO=grpo
CPU_MICRO_BATCH=64  # divides the 16 x 8 samples of a step
source "$(dirname "$0")/_rlvr.sh"
QUESTIONS=${QUESTIONS:-16}
N=${N:-8}

GRPO=(
  algorithm.adv_estimator=grpo
  algorithm.use_kl_in_reward=False
  actor_rollout_ref.actor.use_kl_loss=True
  actor_rollout_ref.actor.kl_loss_type=low_var_kl
  actor_rollout_ref.actor.kl_loss_coef="$KL_COEF"
  actor_rollout_ref.rollout.n="$N"
  data.train_batch_size="$QUESTIONS"
  actor_rollout_ref.actor.ppo_mini_batch_size="$QUESTIONS"
)
run "$PY" -m verl.trainer.main_ppo "${GRPO[@]}" "${DATA[@]}" "${MODEL[@]}" "${ACTOR[@]}" "${REWARD_ARGS[@]}" \
  "${TRAINER[@]}" "${DEVICE_ARGS[@]}" "$@"
