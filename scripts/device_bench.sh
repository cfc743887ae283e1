#!/usr/bin/env bash
# Issue #24's GPU measurements in one device call (prepared and rehearsed on CPU; nothing improvised there).
#
# Carry .whl/ (keras, namex, optree wheels for cp312, as scripts/device_train.sh) and data/ (cifar10_*.npz
# from ../shared/data). Two stages, with nvidia-smi sampling GPU utilisation every 500 ms throughout:
#   1. throughput on synthetic uint8 data: resnet20v1 float32 and mixed_bfloat16, then resnet18;
#   2. the real data: the resnet20v1 fast recipe trained by the worker (wall time, best accuracy), then
#      Grad-CAM on a test image with the JAX-trained checkpoint (explained on the machine it trained on).
# Everything lands in $OUT: throughput.jsonl, runs.json, worker.log, gpu_utilisation.csv, gradcam PNG.
#
#   bash scripts/device_bench.sh                       # on the GPU machine (device tool, timeout 600)
#   PYTHON=.venv/bin/python BENCH_STEPS=3 BENCH_EPOCHS=2 EXTRA_TRAIN_ARGS="--epochs 1 --subset 512" \
#       EIPVIZ_DATA_DIR=../shared/data OUT=/tmp/bench-out bash scripts/device_bench.sh   # CPU rehearsal
set -euo pipefail

PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/eipviz-device-out}
RUNS=${RUNS:-/tmp/eipviz-bench-runs}
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} EIPVIZ_DATA_DIR=${EIPVIZ_DATA_DIR:-$PWD/data} PYTHONUNBUFFERED=1

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.csv"
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 > "$OUT/gpu_utilisation.csv" &
    SAMPLER=$!
    trap 'kill $SAMPLER 2>/dev/null || true' EXIT
fi
stamp() { echo "$(date +%s.%N) $*" | tee -a "$OUT/stages.log"; }

stamp "stage 1: synthetic throughput"
"$PYTHON" benchmarks/device_throughput.py resnet20v1 | tee -a "$OUT/throughput.jsonl"
"$PYTHON" benchmarks/device_throughput.py resnet20v1 --mixed-precision | tee -a "$OUT/throughput.jsonl"
"$PYTHON" benchmarks/device_throughput.py resnet18 --mixed-precision | tee -a "$OUT/throughput.jsonl"

stamp "stage 2: resnet20v1 fast recipe on CIFAR-10"
"$PYTHON" -m eipviz train --model resnet20v1 --recipe fast --mixed-precision --runs-dir "$RUNS" \
    ${EXTRA_TRAIN_ARGS:-} > "$OUT/train.log" 2>&1
stamp "trained"
"$PYTHON" -m eipviz runs --runs-dir "$RUNS" --json > "$OUT/runs.json"
cp "$RUNS"/*/worker.log "$RUNS"/*/metrics.csv "$OUT/" 2>/dev/null || true

stamp "stage 3: Grad-CAM with the JAX-trained checkpoint"
"$PYTHON" - "$OUT/test-image.png" <<'PY'
import os, sys
import numpy as np
from PIL import Image
with np.load(os.path.join(os.environ["EIPVIZ_DATA_DIR"], "cifar10_test.npz")) as data:
    Image.fromarray(data["x"][0]).save(sys.argv[1])
PY
"$PYTHON" -m eipviz cam --model "$(ls "$RUNS"/*/best.keras | head -1)" --preprocessing channel_standardize \
    --image "$OUT/test-image.png" --method gradcam --out "$OUT" | tee "$OUT/cam.json"
stamp "done"
