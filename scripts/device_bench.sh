#!/usr/bin/env bash
# Issue #24's GPU measurements in one device call, after two that carry the data (prepared and rehearsed on CPU).
#
# Carry .whl/ (keras, namex, optree wheels for cp312, as scripts/device_train.sh) and data/ (the six
# cifar10_*.npz of ../shared/data, in any subfolders: two files a call fit the 64 MiB, so send data/a and
# data/b in two plain calls first, then data/c with this script; files carried earlier stay while the
# machine is warm). Stages, with nvidia-smi sampling GPU utilisation every 500 ms throughout:
#   0. what the machine has (GPU, JAX devices);
#   1. throughput on synthetic uint8 data: resnet20v1 float32 and mixed_bfloat16;
#   2. the real data, trained by the worker (benchmarks/time_to_accuracy.py): resnet20v1 at batch 512,
#      GPU_EPOCHS epochs, the wall time to 88.09%;
#   3. the fast recipe as it is (batch 32) for two epochs: the time of a step;
#   4. Grad-CAM on a test image with stage 2's checkpoint (explained on the machine it trained on);
#   5. resnet18's throughput (float32: in mixed_bfloat16 its compile stalled on the H200);
#   6. if the time left allows (LIMIT_S, the call's timeout), stage 2 for LONG_EPOCHS epochs: a candidate
#      to ship (`eipviz ship --run ID --runs-dir /tmp/eipviz-bench-runs` here, after unpacking runs.tar.gz).
# Each throughput benchmark gets at most BENCH_TIMEOUT_S: on the first H200 call (2026-11-26) resnet18's
# compilation had not finished after 540 s (GPU idle), and took the rest of the call with it.
# $OUT gets at most 7 files (the device tool brings back 8): stages.log, gpu_utilisation.csv,
# throughput.jsonl, time_to_accuracy.jsonl, train.log, runs.tar.gz (run store, logs, best checkpoints),
# cam.tar.gz.
#
#   bash scripts/device_bench.sh                       # on the GPU machine (device tool, timeout 600)
#   PYTHON=.venv/bin/python BENCH_STEPS=3 BENCH_EPOCHS=2 LARGE_MODEL=mnist14k GPU_EPOCHS=1 LONG_EPOCHS=1 \
#       EXTRA_TRAIN_ARGS="--subset 512" EIPVIZ_DATA_DIR=../shared/data OUT=/tmp/bench-out \
#       bash scripts/device_bench.sh   # CPU rehearsal (the same commands, smaller)
set -euo pipefail

PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/eipviz-device-out}
RUNS=${RUNS:-/tmp/eipviz-bench-runs}
LIMIT_S=${LIMIT_S:-540}
LONG_EPOCHS=${LONG_EPOCHS:-60}
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

to_accuracy() {  # one timed run of benchmarks/time_to_accuracy.py; the arguments are its own
    # shellcheck disable=SC2086
    timeout "$1" "$PYTHON" benchmarks/time_to_accuracy.py resnet20v1 --runs-dir "$RUNS" ${EXTRA_TRAIN_ARGS:-} "${@:2}" \
        2>>"$OUT/train.log" | tee -a "$OUT/time_to_accuracy.jsonl" || stamp "failed or timed out: ${*:2}"
    "$PYTHON" -m eipviz runs --runs-dir "$RUNS" >> "$OUT/stages.log" 2>&1 || true
    pack_runs
}
# Batch 512 (98 steps an epoch, so no BatchNorm re-estimation), peak rate scaled with the batch (0.1 per 128).
LARGE_BATCH=(--batch-size 512 --set learning_rate=0.4 --set precise_bn_below_steps=0)

stamp "stage 2: resnet20v1 to 88.09% at batch 512, the worker on CIFAR-10"
TRAIN_START=$(date +%s)
to_accuracy "${TRAIN_TIMEOUT_S:-200}" --epochs "${GPU_EPOCHS:-30}" "${LARGE_BATCH[@]}"
TRAIN_S=$(( $(date +%s) - TRAIN_START ))
stamp "trained in ${TRAIN_S}s"

stamp "stage 3: the fast recipe as it is (batch 32), two epochs: time a step"
to_accuracy "${FAST_TIMEOUT_S:-90}" --epochs 2

stamp "stage 4: Grad-CAM with the JAX-trained checkpoint"
mkdir -p /tmp/cam
"$PYTHON" - /tmp/cam/test-image.png <<'PY'
import os, sys
import numpy as np
from PIL import Image
with np.load(os.path.join(os.environ["EIPVIZ_DATA_DIR"], "cifar10_test.npz")) as data:
    Image.fromarray(data["x"][0]).save(sys.argv[1])
PY
timeout 90 "$PYTHON" -m eipviz cam --model "$(ls -t "$RUNS"/*/best.keras | tail -1)" --preprocessing channel_standardize \
    --image /tmp/cam/test-image.png --method gradcam --out /tmp/cam > /tmp/cam/cam.txt 2>&1 || stamp "cam failed"
tar -czf "$OUT/cam.tar.gz" -C /tmp cam

stamp "stage 5: resnet18 throughput"
# It never finished compiling on either GPU (2026-11-26): JAX logs when each compilation starts and ends, and
# the stack is printed every 45 s, into train.log. If it times out again, once more with XLA's fusion autotuner
# off (openxla: compiles of minutes from it) and no autotuning at all.
LARGE_RUN=("${LARGE_MODEL:-resnet18}" --stack-after 45)
JAX_LOG_COMPILES=1 BENCH_TIMEOUT_S=${LARGE_TIMEOUT_S:-120} throughput "${LARGE_RUN[*]}" 2>>"$OUT/train.log"
if ! grep -q "\"model\": \"${LARGE_MODEL:-resnet18}\"" "$OUT/throughput.jsonl"; then
    stamp "stage 5b: resnet18 again, fusion autotuner and autotuning off"
    XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_experimental_enable_fusion_autotuner=false --xla_gpu_autotune_level=0" \
        JAX_LOG_COMPILES=1 BENCH_TIMEOUT_S=${LARGE_TIMEOUT_S:-120} throughput "${LARGE_RUN[*]}" 2>>"$OUT/train.log"
fi

# Stage 2 took TRAIN_S for GPU_EPOCHS epochs, start-up and tracing included: an overestimate per epoch.
LEFT=$(( LIMIT_S - ($(date +%s) - START) - 20 ))
NEEDED=$(( TRAIN_S * LONG_EPOCHS / ${GPU_EPOCHS:-30} ))
if [ "$NEEDED" -lt "$LEFT" ]; then
    stamp "stage 6: the same for $LONG_EPOCHS epochs (${LEFT}s left): a candidate to ship"
    to_accuracy "$LEFT" --epochs "$LONG_EPOCHS" "${LARGE_BATCH[@]}"
else
    stamp "stage 6 skipped: ${LEFT}s left, ${NEEDED}s needed"
fi
stamp "done"
