#!/usr/bin/env bash
# SFT warm-up of the student on program-of-thought solutions (seed 002, Appendix C.2: 10 epochs, global batch 24,
# lr 2e-5), with verl's own `verl.trainer.sft_trainer`.
#   GPU:  STUDENT=facebook/galactica-125m TRAIN_FILES=data/gsm8k_pot/train_sft.parquet bash recipes/sft_warmup_gsm8k.sh
#   CPU:  bash recipes/sft_warmup_gsm8k.sh     (tiny student, synthetic problems; builds them if missing)
# Any Hydra override may follow; "$@" comes last.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

if [[ $ON_GPU == 1 ]]; then
  STUDENT=${STUDENT:-facebook/galactica-125m}
  TRAIN_FILES=${TRAIN_FILES:-$RUN_ROOT/data/gsm8k_pot/train_sft.parquet}
  VAL_FILES=${VAL_FILES:-$TRAIN_FILES}
  EPOCHS=${EPOCHS:-10}
  BATCH=${BATCH:-24}
  MICRO_BATCH=${MICRO_BATCH:-4}
  LR=${LR:-2e-5}
  MAX_LENGTH=${MAX_LENGTH:-1024}
  SCHEDULER=${SCHEDULER:-cosine}
  NGPUS=${NGPUS:-$(gpu_count)}
  # Galactica and CodeGen ship no chat template: render the prompt and the answer back to back (ReFT style).
  CHAT_TEMPLATE=${CHAT_TEMPLATE:-"{% for m in messages %}{{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"}
  DEVICE_ARGS=(trainer.n_gpus_per_node="$NGPUS")
else
  ensure_cpu_assets
  cpu_env
  STUDENT=${STUDENT:-$TINY_DIR/student}
  TRAIN_FILES=${TRAIN_FILES:-$CPU_DATA/synthetic/train_sft.parquet}
  VAL_FILES=${VAL_FILES:-$CPU_DATA/synthetic/validation_sft.parquet}
  EPOCHS=${EPOCHS:-10}
  BATCH=${BATCH:-64}
  MICRO_BATCH=${MICRO_BATCH:-64}
  # A tiny model trained from scratch (docs/synthetic-task-calibration.md), not the paper's fine-tuning lr; constant
  # so that the state after MAX_STEPS does not depend on the schedule length.
  LR=${LR:-3e-3}
  SCHEDULER=${SCHEDULER:-constant}
  MAX_STEPS=${MAX_STEPS:-240}
  MAX_LENGTH=${MAX_LENGTH:-256}
  NGPUS=1
  CHAT_TEMPLATE=${CHAT_TEMPLATE:-}
  DEVICE_ARGS=("${CPU_SFT[@]}")
fi
MAX_STEPS=${MAX_STEPS:-}
SAVE_FREQ=${SAVE_FREQ:--1}
OUT_DIR=${OUT_DIR:-$RUN_ROOT/sft_warmup}
export VERL_FILE_LOGGER_PATH=${VERL_FILE_LOGGER_PATH:-$OUT_DIR/metrics.jsonl}
[[ "${DRY_RUN:-0}" == 1 ]] || mkdir -p "$OUT_DIR"

DATA=(
  data.train_files="$TRAIN_FILES"
  data.val_files="$VAL_FILES"
  data.train_batch_size="$BATCH"
  data.micro_batch_size_per_gpu="$MICRO_BATCH"
  data.max_length="$MAX_LENGTH"
  data.truncation=right
)
MODEL=(model.path="$STUDENT")
[[ -n "$CHAT_TEMPLATE" ]] && MODEL+=("+model.custom_chat_template=\"$CHAT_TEMPLATE\"")
OPTIM=(optim.lr="$LR" optim.lr_warmup_steps_ratio=0.05 optim.lr_scheduler_type="$SCHEDULER")
TRAINER=(
  trainer.total_epochs="$EPOCHS"
  trainer.save_freq="$SAVE_FREQ"
  trainer.test_freq=-1
  trainer.logger="[console,file]"
  trainer.project_name=verl_distill
  trainer.experiment_name=sft_warmup
  trainer.default_local_dir="$OUT_DIR"
  "checkpoint.save_contents=[model,optimizer,extra,hf_model]"
)
[[ -n "$MAX_STEPS" ]] && TRAINER+=(trainer.total_training_steps="$MAX_STEPS")

run "$PY_BIN/torchrun" --standalone --nnodes=1 --nproc_per_node="$NGPUS" -m verl.trainer.sft_trainer \
  "${DATA[@]}" "${MODEL[@]}" "${OPTIM[@]}" "${TRAINER[@]}" "${DEVICE_ARGS[@]}" "$@"
