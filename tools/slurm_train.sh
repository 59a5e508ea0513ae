#!/usr/bin/env bash
# bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# One training over GPUS tasks of a Slurm partition (one task per GPU), through srun and mmengine's
# --launcher slurm. Environment: GPUS (default 4), GPUS_PER_NODE (4), CPUS_PER_TASK (4), SRUN_ARGS
# (more srun flags, e.g. "--quotatype=auto"), PYTHON (python).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-4}
read -r -a EXTRA_SRUN <<< "${SRUN_ARGS:-}"

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
srun --partition="$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 "${EXTRA_SRUN[@]}" \
    "${PYTHON:-python}" -u "$(dirname "$0")/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}"
