#!/usr/bin/env bash
# Seed 002's main configuration (Table 4, "0.5 0.5 0.0"): PPO (ReFT-style: critic, GAE gamma 1 / lambda 0.95, KL 0.01
# in the reward, 2 PPO epochs, batch 24) on labeled GSM8K with the program-of-thought reward and unlabeled questions
# with the one-step Yes/No judge reward; every batch is 12 labeled + 12 unlabeled prompts.
#   GPU:  STUDENT=<SFT warm-up> JUDGE=Qwen/Qwen3-8B bash recipes/ppo_judge_gsm8k.sh
#         (other rows of Tables 4-8: COEF, UNLABELED_FILES, RERANKER, ALGO via grpo_judge_gsm8k.sh; recipes/README.md)
#   CPU:  bash recipes/ppo_judge_gsm8k.sh        (knobs: STEPS, CRITIC_WARMUP, the judge's in recipes/train_judge.sh)
#         tiny student (SFT warm-up on synthetic problems), a tiny judge first trained to answer Yes/No on correct
#         and incorrect synthetic solutions (recipes/train_judge.sh, cached), served by real vLLM on CPU; prints the
#         judge's pairwise accuracy and the student's accuracy before and after.
set -euo pipefail
ALGO=ppo
CPU_MICRO_BATCH=24  # divides the 24 samples of a step
BATCH=${BATCH:-24}
EXPERIMENT=${EXPERIMENT:-ppo_judge}
source "$(dirname "$0")/_common.sh"
# CPU: 40 steps, validation every 10; the critic (a fresh value head) learns alone for the first 5 steps: without
# that, the untrained critic's advantages pulled validation accuracy down for ~20 steps (issue 3 note).
[[ $ON_GPU == 0 ]] && STEPS=${STEPS:-40} && TEST_FREQ=${TEST_FREQ:-10}
# CPU: GAE lambda 1 (advantage = return - value) instead of ReFT's 0.95. The reward comes only at the last token, so
# with 0.95 a token 60 tokens before the end gets 0.95^60 = 5% of it and the rest from the critic's value differences;
# a tiny critic never predicts the outcome (explained variance <= 0 over whole runs), so the early tokens of a program
# learned from noise. Measured on the same student and judge: 0.95 vs 1.0 in the issue 3 note / README.
[[ $ON_GPU == 0 ]] && GAE_LAM=${GAE_LAM:-1.0}
CRITIC_WARMUP=${CRITIC_WARMUP:-$(( ON_GPU == 1 ? 0 : 5 ))}
source "$(dirname "$0")/_judge_cpu.sh"   # CPU only: builds the SFT student and the judge when missing
source "$(dirname "$0")/_judge.sh"
CRITIC_LR=${CRITIC_LR:-$ACTOR_LR}

ppo_critic_args
run "$PY" -m verl.trainer.main_ppo "${PPO[@]}" "${DATA[@]}" "${MIX[@]}" "${MODEL[@]}" "${ACTOR[@]}" \
  "${REWARD_ARGS[@]}" "${JUDGE_RM[@]}" "${TRAINER[@]}" "${DEVICE_ARGS[@]}" "${CRITIC_DEVICE_ARGS[@]}" "$@"
judge_cpu_summary
