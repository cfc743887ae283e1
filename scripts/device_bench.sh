#!/usr/bin/env bash
# Issue #24's GPU measurements in one device call, after two that carry the data (prepared and rehearsed on CPU).
#
# Carry .whl/ (keras, namex, optree wheels for cp312, as scripts/device_train.sh) and data/ (the six
# cifar10_*.npz of ../shared/data, in any subfolders: two files a call fit the 64 MiB, so send data/a and
# data/b in two plain calls first, then data/c with this script; files carried earlier stay while the
# machine is warm). Stages, with nvidia-smi sampling GPU utilisation every 500 ms throughout:
#   0. what the machine has (GPU, JAX devices);
#   1. throughput on synthetic uint8 data: resnet20v1 float32 and mixed_bfloat16;
#   2. the real data: the resnet20v1 fast recipe, as it is, trained by the worker (wall time, accuracy);
#   3. Grad-CAM on a test image with the JAX-trained checkpoint (explained on the machine it trained on);
#   4. resnet18's throughput (mixed_bfloat16);
#   5. if the time left allows (LIMIT_S, the call's timeout), the same recipe for more epochs: a candidate
#      to ship (`eipviz ship --run ID --runs-dir /tmp/eipviz-bench-runs` here, after unpacking runs.tar.gz).
# Each throughput benchmark gets at most BENCH_TIMEOUT_S: on the first H200 call (2026-11-26) resnet18's
# compilation had not finished after 540 s (GPU idle), and took the rest of the call with it.
# $OUT gets at most 7 files (the device tool brings back 8): stages.log, gpu_utilisation.csv,
# throughput.jsonl, train.log, runs.tar.gz (run store, logs, best checkpoints), cam.tar.gz.
#
#   bash scripts/device_bench.sh                       # on the GPU machine (device tool, timeout 600)
#   PYTHON=.venv/bin/python BENCH_STEPS=3 BENCH_EPOCHS=2 LARGE_MODEL=mnist14k LONG_EPOCHS=2 \
#       EXTRA_TRAIN_ARGS="--epochs 1 --subset 512" EIPVIZ_DATA_DIR=../shared/data OUT=/tmp/bench-out \
#       bash scripts/device_bench.sh   # CPU rehearsal (the same commands, smaller)
set -euo pipefail

PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/eipviz-device-out}
RUNS=${RUNS:-/tmp/eipviz-bench-runs}
LIMIT_S=${LIMIT_S:-540}
LONG_EPOCHS=${LONG_EPOCHS:-30}
START=$(date +%s)
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
if [ -z "${EIPVIZ_DATA_DIR:-}" ]; then  # the carried parts, gathered into one folder
    EIPVIZ_DATA_DIR=/tmp/eipviz-data
    mkdir -p "$EIPVIZ_DATA_DIR"
    find "$PWD/data" -name 'cifar10_*.npz' -exec ln -sf {} "$EIPVIZ_DATA_DIR/" \;
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} EIPVIZ_DATA_DIR PYTHONUNBUFFERED=1

stamp() { echo "$(date +%s.%N) +$(( $(date +%s) - START ))s $*" | tee -a "$OUT/stages.log"; }
pack_runs() {  # tar says 1 when the run store's database changed as it read (a finished run's last write)
    tar -czf "$OUT/runs.tar.gz" --warning=no-file-changed --exclude last.keras -C "$(dirname "$RUNS")" \
        "$(basename "$RUNS")" || [ $? -eq 1 ]
}

stamp "stage 0: the machine"
ls "$EIPVIZ_DATA_DIR" >> "$OUT/stages.log"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/stages.log"
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 > "$OUT/gpu_utilisation.csv" &
    SAMPLER=$!
    trap 'kill $SAMPLER 2>/dev/null || true' EXIT
fi
"$PYTHON" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" \
    2>&1 | tee -a "$OUT/stages.log"

throughput() {  # one benchmark per argument: a model and its flags
    for args in "$@"; do
        # shellcheck disable=SC2086  # the model and its flag, split on purpose
        timeout "${BENCH_TIMEOUT_S:-150}" "$PYTHON" benchmarks/device_throughput.py $args \
            | tee -a "$OUT/throughput.jsonl" || stamp "failed or timed out: $args"
    done
}

stamp "stage 1: synthetic throughput"
throughput "resnet20v1" "resnet20v1 --mixed-precision"

stamp "stage 2: resnet20v1 fast recipe on CIFAR-10"
TRAIN_START=$(date +%s)
# shellcheck disable=SC2086
"$PYTHON" -m eipviz train --model resnet20v1 --recipe fast --runs-dir "$RUNS" ${EXTRA_TRAIN_ARGS:-} \
    > "$OUT/train.log" 2>&1 || stamp "training failed"
TRAIN_S=$(( $(date +%s) - TRAIN_START ))
stamp "trained in ${TRAIN_S}s"
"$PYTHON" -m eipviz runs --runs-dir "$RUNS" >> "$OUT/stages.log" 2>&1 || true
pack_runs

stamp "stage 3: Grad-CAM with the JAX-trained checkpoint"
mkdir -p /tmp/cam
"$PYTHON" - /tmp/cam/test-image.png <<'PY'
import os, sys
import numpy as np
from PIL import Image
with np.load(os.path.join(os.environ["EIPVIZ_DATA_DIR"], "cifar10_test.npz")) as data:
    Image.fromarray(data["x"][0]).save(sys.argv[1])
PY
"$PYTHON" -m eipviz cam --model "$(ls "$RUNS"/*/best.keras | head -1)" --preprocessing channel_standardize \
    --image /tmp/cam/test-image.png --method gradcam --out /tmp/cam > /tmp/cam/cam.txt 2>&1 || stamp "cam failed"
tar -czf "$OUT/cam.tar.gz" -C /tmp cam

stamp "stage 4: resnet18 throughput"
throughput "${LARGE_MODEL:-resnet18} --mixed-precision"

# An epoch costs about a tenth of stage 2 (its 10 epochs, plus start-up and tracing: an overestimate).
LEFT=$(( LIMIT_S - ($(date +%s) - START) - 30 ))
if [ $(( TRAIN_S * LONG_EPOCHS / 10 )) -lt "$LEFT" ]; then
    stamp "stage 5: resnet20v1 fast recipe for $LONG_EPOCHS epochs (${LEFT}s left)"
    # shellcheck disable=SC2086
    "$PYTHON" -m eipviz train --model resnet20v1 --recipe fast --runs-dir "$RUNS" ${EXTRA_TRAIN_ARGS:-} --epochs "$LONG_EPOCHS" \
        >> "$OUT/train.log" 2>&1 || stamp "long training failed"
    "$PYTHON" -m eipviz runs --runs-dir "$RUNS" >> "$OUT/stages.log" 2>&1 || true
    pack_runs
else
    stamp "stage 5 skipped: ${LEFT}s left, $(( TRAIN_S * LONG_EPOCHS / 10 ))s needed"
fi
stamp "done"
