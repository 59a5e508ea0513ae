#!/usr/bin/env bash
# bash tools/dist_dreambench.sh PROCESSES [dreambench.py args...]
# The DreamBench sweep over PROCESSES processes of this node (one per GPU; on a CPU, processes), through
# torchrun. Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node, as for dist_train.sh.
# PYTHON: the interpreter (default: python).
PROCESSES=$1
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$PROCESSES" \
    --master_port="$PORT" \
    "$(dirname "$0")/dreambench.py" \
    --launcher pytorch "${@:2}"
