#!/usr/bin/env bash
# bash tools/slurm_dreambench.sh PARTITION JOB_NAME TASKS [dreambench.py args...]
# The DreamBench sweep as a Slurm job array of TASKS independent one-GPU tasks (task i does every
# TASKS-th (method, subject) job from the i-th: training, images, scores), then one small job that
# starts when they all succeeded and writes the table (it finds every job done). A failed or cancelled
# task: run the same command again; what is done is skipped.
# Environment: CPUS_PER_TASK (default 4), SBATCH_ARGS (more sbatch flags, e.g. "--time=2-00:00:00"),
# PYTHON (python). One srun step over many GPUs instead: srun ... python -u tools/dreambench.py
# ARGS --launcher slurm (see the README).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
TASKS=$3
CPUS_PER_TASK=${CPUS_PER_TASK:-4}
read -r -a EXTRA_SBATCH <<< "${SBATCH_ARGS:-}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# the command each job runs, quoted for the shell of --wrap
COMMAND="cd $(printf '%q' "$PWD") && PYTHONPATH=$(printf '%q' "$REPO")\${PYTHONPATH:+:\$PYTHONPATH} \
$(printf '%q' "${PYTHON:-python}") -u $(printf '%q' "$REPO/tools/dreambench.py") $(printf '%q ' "${@:4}")--launcher none"

ARRAY=$(sbatch --parsable --partition="$PARTITION" --job-name="$JOB_NAME" --array=0-$((TASKS - 1)) \
    --ntasks=1 --gres=gpu:1 --cpus-per-task="$CPUS_PER_TASK" "${EXTRA_SBATCH[@]}" --wrap="$COMMAND")
TABLE=$(sbatch --parsable --partition="$PARTITION" --job-name="${JOB_NAME}_table" --dependency=afterok:"${ARRAY%%;*}" \
    --ntasks=1 --cpus-per-task="$CPUS_PER_TASK" "${EXTRA_SBATCH[@]}" --wrap="$COMMAND")
echo "submitted the array $ARRAY ($TASKS tasks) and the table job $TABLE (after the array succeeds)"
