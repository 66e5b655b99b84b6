# Shared body of the RLVR recipes (sourced by ppo_rlvr_gsm8k.sh and grpo_rlvr_gsm8k.sh after they set ALGO).
# Seed 002, Appendix C.2 (ReFT-style RL on program-of-thought): global batch 24 (GRPO: 16 questions x 8 samples),
# 2 PPO epochs, KL coefficient 0.01, reward = executing the program (1 / 0.1 / 0).
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

if [[ $ON_GPU == 1 ]]; then
  STUDENT=${STUDENT:-$(latest_hf "$RUN_ROOT/sft_warmup")}
  TRAIN_FILES=${TRAIN_FILES:-$RUN_ROOT/data/gsm8k_pot/train.parquet}
  VAL_FILES=${VAL_FILES:-$RUN_ROOT/data/gsm8k_test/test.parquet}
  ACTOR_LR=${ACTOR_LR:-3e-7}   # ReFT's RL learning rate (C.2 gives none for RL)
  MAX_PROMPT=${MAX_PROMPT:-512}
  MAX_RESPONSE=${MAX_RESPONSE:-320}
  STEPS=${STEPS:-50000}
  NGPUS=${NGPUS:-$(gpu_count)}
  MICRO_BATCH=${MICRO_BATCH:-8}
  CHAT_TEMPLATE=${CHAT_TEMPLATE:-"{% for m in messages %}{{ m.content }}{% endfor %}"}
  DEVICE_ARGS=(
    trainer.n_gpus_per_node="$NGPUS" trainer.nnodes=1
    actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.tensor_model_parallel_size=1
    actor_rollout_ref.rollout.gpu_memory_utilization=0.4
  )
  CRITIC_DEVICE_ARGS=()
  TEST_FREQ=${TEST_FREQ:-500}
  SAVE_FREQ=${SAVE_FREQ:-1000}
else
  ensure_cpu_assets
  cpu_env
  STUDENT=${STUDENT:-$(latest_hf "$RUN_ROOT/sft_warmup")}
  TRAIN_FILES=${TRAIN_FILES:-$CPU_DATA/synthetic/train.parquet}
  VAL_FILES=${VAL_FILES:-"['$CPU_DATA/synthetic/validation.parquet','$CPU_DATA/gsm8k_test/test.parquet']"}
  ACTOR_LR=${ACTOR_LR:-1e-4}   # tiny from-scratch student: far larger steps than a 125M model needs
  MAX_PROMPT=${MAX_PROMPT:-192}
  MAX_RESPONSE=${MAX_RESPONSE:-64}
  STEPS=${STEPS:-25}
  NGPUS=1
  MICRO_BATCH=${MICRO_BATCH:-$CPU_MICRO_BATCH}  # must divide the samples per step (set by each recipe)
  CHAT_TEMPLATE=${CHAT_TEMPLATE:-}
  DEVICE_ARGS=("${CPU_PPO[@]}")
  CRITIC_DEVICE_ARGS=("${CPU_CRITIC[@]}")
  TEST_FREQ=${TEST_FREQ:-5}
  SAVE_FREQ=${SAVE_FREQ:--1}
fi
KL_COEF=${KL_COEF:-0.01}
PPO_EPOCHS=${PPO_EPOCHS:-2}
TEMPERATURE=${TEMPERATURE:-1.0}
EXPERIMENT=${EXPERIMENT:-${ALGO}_rlvr}
OUT_DIR=${OUT_DIR:-$RUN_ROOT/$EXPERIMENT}
REWARD=${REWARD:-$REPO/reward_fns/pot_verifiable.py}
export VERL_FILE_LOGGER_PATH=${VERL_FILE_LOGGER_PATH:-$OUT_DIR/metrics.jsonl}
[[ "${DRY_RUN:-0}" == 1 ]] || mkdir -p "$OUT_DIR"

DATA=(
  data.train_files="$TRAIN_FILES"
  data.val_files="$VAL_FILES"
  data.max_prompt_length="$MAX_PROMPT"
  data.max_response_length="$MAX_RESPONSE"
  data.filter_overlong_prompts=True
  data.truncation=error
  data.seed="${SEED:-42}"
)
MODEL=(actor_rollout_ref.model.path="$STUDENT")
[[ -n "$CHAT_TEMPLATE" ]] && MODEL+=("actor_rollout_ref.model.custom_chat_template=\"$CHAT_TEMPLATE\"")
ACTOR=(
  actor_rollout_ref.actor.optim.lr="$ACTOR_LR"
  actor_rollout_ref.actor.ppo_epochs="$PPO_EPOCHS"
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu="$MICRO_BATCH"
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu="$MICRO_BATCH"
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu="$MICRO_BATCH"
  actor_rollout_ref.rollout.temperature="$TEMPERATURE"
  actor_rollout_ref.rollout.val_kwargs.temperature=0
)
REWARD_ARGS=(
  reward.custom_reward_function.path="$REWARD"
  reward.custom_reward_function.name=compute_score
)
TRAINER=(
  trainer.total_training_steps="$STEPS"
  trainer.test_freq="$TEST_FREQ"
  trainer.save_freq="$SAVE_FREQ"
  trainer.val_before_train=True
  trainer.logger="[console,file]"
  trainer.project_name=verl_distill
  trainer.experiment_name="$EXPERIMENT"
  trainer.default_local_dir="$OUT_DIR"
  trainer.resume_mode=auto
  "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]"
)

# ppo_critic_args: sets PPO, the overrides every PPO-with-critic recipe shares (GAE, KL penalty in the reward at
# KL_COEF, one sample per prompt, one mini-batch of BATCH prompts, a critic initialised from STUDENT with CRITIC_LR,
# CRITIC_WARMUP steps of critic-only training, default 0; GAE_LAM, default 0.95 as in ReFT). Call it after the
# recipe has set BATCH and CRITIC_LR.
ppo_critic_args() {
  PPO=(
    algorithm.adv_estimator=gae
    algorithm.gamma=1.0
    algorithm.lam="${GAE_LAM:-0.95}"
    algorithm.use_kl_in_reward=True
    algorithm.kl_penalty=kl
    algorithm.kl_ctrl.type=fixed
    algorithm.kl_ctrl.kl_coef="$KL_COEF"
    actor_rollout_ref.actor.use_kl_loss=False
    actor_rollout_ref.rollout.n=1
    data.train_batch_size="$BATCH"
    actor_rollout_ref.actor.ppo_mini_batch_size="$BATCH"
    critic.model.path="$STUDENT"
    critic.optim.lr="$CRITIC_LR"
    critic.ppo_micro_batch_size_per_gpu="$MICRO_BATCH"
    trainer.critic_warmup="${CRITIC_WARMUP:-0}"
  )
}
