#!/usr/bin/env bash
# RLVR baseline of seed 002 with PPO (ReFT-style): critic with GAE (gamma 1, lambda 0.95), KL penalty 0.01 in the
# reward against the SFT warm-up reference, 2 PPO epochs, global batch 24, program-of-thought reward.
#   GPU:  STUDENT=runs/sft_warmup/huggingface bash recipes/ppo_rlvr_gsm8k.sh
#   CPU:  bash recipes/ppo_rlvr_gsm8k.sh   (tiny student after `bash recipes/sft_warmup_gsm8k.sh`)
# The value-loss coefficient of C.2 (5 for Galactica, 0.1 for CodeGen) weighs the value loss against the policy loss
# on ReFT's shared backbone. verl's critic is a separate model with its own Adam optimizer, which is invariant to a
# constant loss scale, so that coefficient has no counterpart; the critic uses the actor's learning rate (CRITIC_LR).
set -euo pipefail
ALGO=ppo
CPU_MICRO_BATCH=24  # divides the 24 samples of a step
source "$(dirname "$0")/_rlvr.sh"
BATCH=${BATCH:-24}
CRITIC_LR=${CRITIC_LR:-$ACTOR_LR}

ppo_critic_args
run "$PY" -m verl.trainer.main_ppo "${PPO[@]}" "${DATA[@]}" "${MODEL[@]}" "${ACTOR[@]}" "${REWARD_ARGS[@]}" \
  "${TRAINER[@]}" "${DEVICE_ARGS[@]}" "${CRITIC_DEVICE_ARGS[@]}" "$@"
