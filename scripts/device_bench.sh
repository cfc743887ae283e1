#!/usr/bin/env bash
# Issue #24's GPU measurements, prepared and rehearsed on CPU, in the device calls of one lease:
#
#   LIMIT_S=185 bash scripts/device_bench.sh probe   # 1st call (carries .whl/ and data/a), timeout_s 200
#   true                                             # 2nd call (carries data/b): the data only
#   LIMIT_S=... bash scripts/device_bench.sh train   # 3rd call (carries data/c): the timed runs on CIFAR-10
#
# LIMIT_S: the seconds the part may take, about 15 below the call's timeout_s; for train, what the lease has
# left (status's budget_left_s after the 2nd call) less a minute, at most 420 (stages 3-5 take about 300 s).
# .whl/ holds the keras, namex, optree and filelock wheels for cp312 (as scripts/device_train.sh); data/ the six
# cifar10_*.npz of ../shared/data in subfolders, two a call (64 MiB a call; files carried earlier stay while the
# machine is warm, and so does what a part leaves in /tmp for the next). nvidia-smi samples GPU utilisation every
# 500 ms throughout each part. Every benchmark has its own timeout and a fresh JAX compilation cache (so each
# figure includes its compiles, as a first run on a new machine would).
#
# probe (synthetic uint8 data, batch 512, benchmarks/device_throughput.py):
#   1. resnet20v1 with bilinear shifts (Keras' RandomTranslation): does it compile? (resnet20v1's own whole-pixel
#      shifts ran 75,702 images/s on an H100; resnet18, whose fast recipe shifts bilinearly, never compiled);
#   2. resnet18 with whole-pixel shifts (RandomShift), compiles logged and the stack printed every 40 s; if it
#      compiles, its throughput in mixed_bfloat16 too, and /tmp/eipviz-resnet18-ok records its images/s for train;
#      if not, whether its inference alone compiles.
# train (the worker on CIFAR-10, benchmarks/time_to_accuracy.py, batch 512, peak rate 0.4, no BatchNorm
# re-estimation):
#   3. resnet20v1, 30 epochs: the wall time to 88.09% and where each epoch's time goes;
#   4. resnet20v1, 20 epochs: the same;
#   5. Grad-CAM of stage 3's checkpoint on the machine it trained on (python -m eipviz cam);
#   6. resnet18 (whole-pixel shifts) for as many epochs as the time left allows, if the probe compiled it: a
#      candidate to ship (`eipviz ship --run ID --runs-dir /tmp/eipviz-bench-runs` here, after unpacking
#      runs.tar.gz).
# $OUT gets at most 8 files a part (the device tool brings back 8): stages.log, gpu_utilisation.csv,
# throughput.jsonl, compiles.log (probe); time_to_accuracy.jsonl, train.log, runs.tar.gz (the run store with the
# runs' logs and best checkpoints, and the Grad-CAM output) and a best checkpoint over 15 MB in 15 MB parts (train:
# resnet18's 45 MB; `cat RUN-best.keras.part-* > best.keras` here).
#
#   PYTHON=.venv/bin/python BENCH_STEPS=3 BENCH_EPOCHS=2 SMALL=1 EXTRA_TRAIN_ARGS="--subset 1024" \
#       EIPVIZ_DATA_DIR=../shared/data OUT=/tmp/bench-out bash scripts/device_bench.sh probe   # (and train)
#       # the CPU rehearsal: the same commands, smaller (SMALL: mnist14k for resnet18, 2 and 1 epochs)
set -euo pipefail

PART=${1:?usage: $0 probe|train}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/eipviz-device-out}
RUNS=${RUNS:-/tmp/eipviz-bench-runs}
LIMIT_S=${LIMIT_S:-420}
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
LARGE_MODEL=resnet18
[ -n "${SMALL:-}" ] && LARGE_MODEL=mnist14k

stamp() { echo "$(date +%s.%N) +$(( $(date +%s) - START ))s $*" | tee -a "$OUT/stages.log"; }
left() { echo $(( LIMIT_S - ($(date +%s) - START) )); }
fresh_cache() { EIPVIZ_JAX_CACHE_DIR=$(mktemp -d /tmp/jax-cache.XXXX); export EIPVIZ_JAX_CACHE_DIR; }

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 > "$OUT/gpu_utilisation.csv" &
    SAMPLER=$!
    trap 'kill $SAMPLER 2>/dev/null || true' EXIT
fi

throughput() {  # one benchmark: its timeout, then the model and its flags
    fresh_cache
    # shellcheck disable=SC2086  # the model and its flags, split on purpose
    JAX_LOG_COMPILES=1 timeout -k 20 "$1" "$PYTHON" benchmarks/device_throughput.py ${*:2} 2>>"$OUT/compiles.log" \
        | tee -a "$OUT/throughput.jsonl" || { stamp "failed or timed out after $1 s: ${*:2}"; return 1; }
}

probe() {
    stamp "stage 0: the machine"
    ls "$EIPVIZ_DATA_DIR" >> "$OUT/stages.log"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
        >> "$OUT/stages.log"
    "$PYTHON" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" \
        2>&1 | tee -a "$OUT/stages.log"

    stamp "stage 1: resnet20v1 with bilinear shifts"
    throughput "${BILINEAR_TIMEOUT_S:-50}" resnet20v1 --set interpolation=bilinear || true

    stamp "stage 2: $LARGE_MODEL with whole-pixel shifts"
    rm -f /tmp/eipviz-resnet18-ok
    if throughput "${LARGE_TIMEOUT_S:-90}" "$LARGE_MODEL" --set interpolation=nearest --stack-after 40; then
        tail -n 1 "$OUT/throughput.jsonl" > /tmp/eipviz-resnet18-ok
        if [ "$(left)" -gt 60 ]; then
            stamp "stage 2b: $LARGE_MODEL in mixed_bfloat16"
            throughput 50 "$LARGE_MODEL" --set interpolation=nearest --mixed-precision || true
        fi
    else
        stamp "stage 2c: does $LARGE_MODEL's inference alone compile?"
        fresh_cache
        JAX_LOG_COMPILES=1 timeout 40 "$PYTHON" - "$LARGE_MODEL" 2>>"$OUT/compiles.log" <<'PY' | tee -a "$OUT/stages.log" \
            || stamp "inference failed or timed out"
import sys, time
import numpy as np
from eipviz.zoo import build_model, get_spec
model = build_model(sys.argv[1])
images = np.zeros((512, *get_spec(sys.argv[1]).input_shape), np.float32)
for attempt in range(2):
    start = time.perf_counter()
    model.predict(images, batch_size=512, verbose=0)
    print(f"{sys.argv[1]} inference, batch 512, call {attempt + 1}: {time.perf_counter() - start:.2f} s")
PY
    fi
    grep -h "Finished XLA compilation of jit(train_step)\|Finished XLA compilation of jit(predict_step)" \
        "$OUT/compiles.log" >> "$OUT/stages.log" || true
    stamp "probe done"
}

pack_runs() {  # with /tmp/cam; tar says 1 when the run store's database changed as it read (a run's last write)
    # Checkpoints over 15 MB (resnet18's, 45 MB) come back split instead: the device tool brings back 16 MiB a file.
    find "$RUNS" -name best.keras -size +15M -exec sh -c \
        'split -b 15M "$1" "$2/$(basename "$(dirname "$1")")-best.keras.part-"' _ {} "$OUT" \;
    mkdir -p /tmp/cam
    tar -czf "$OUT/runs.tar.gz" --warning=no-file-changed --exclude last.keras --exclude '*.partial.keras' \
        --exclude-from <(find "$RUNS" -name best.keras -size +15M -printf '%P\n') \
        -C "$(dirname "$RUNS")" "$(basename "$RUNS")" -C /tmp cam || [ $? -eq 1 ]
}

to_accuracy() {  # one timed run of benchmarks/time_to_accuracy.py: its timeout, then its own arguments
    fresh_cache
    # shellcheck disable=SC2086
    # -k: the run trains in this process, and a SIGTERM only asks it to stop at its next batch's end.
    timeout -k 20 "$1" "$PYTHON" benchmarks/time_to_accuracy.py --runs-dir "$RUNS" ${EXTRA_TRAIN_ARGS:-} "${@:2}" \
        2>>"$OUT/train.log" | tee -a "$OUT/time_to_accuracy.jsonl" || stamp "failed or timed out: ${*:2}"
    "$PYTHON" -m eipviz runs --runs-dir "$RUNS" >> "$OUT/stages.log" 2>&1 || true
    pack_runs
}

train() {
    # Batch 512 (97 full steps an epoch, so no BatchNorm re-estimation), peak rate scaled with the batch (0.1 per 128).
    local large_batch=(--batch-size 512 --set learning_rate=0.4 --set precise_bn_below_steps=0)
    local short=${SMALL:+1}
    stamp "stage 3: resnet20v1 to 88.09%, 30 epochs"
    to_accuracy 150 resnet20v1 --epochs "${short:-30}" "${large_batch[@]}"
    local first_run  # stage 3's run folder, from its JSON line (none if it failed)
    first_run=$RUNS/$(tail -n 1 "$OUT/time_to_accuracy.jsonl" 2>/dev/null \
        | "$PYTHON" -c "import json, sys; print(json.load(sys.stdin)['run_id'])" 2>/dev/null || true)/

    stamp "stage 4: resnet20v1 to 88.09%, 20 epochs"
    to_accuracy 110 resnet20v1 --epochs "${short:-20}" "${large_batch[@]}"

    stamp "stage 5: Grad-CAM with the JAX-trained checkpoint of stage 3"
    mkdir -p /tmp/cam
    "$PYTHON" - /tmp/cam/test-image.png <<'PY'
import os, sys
import numpy as np
from PIL import Image
with np.load(os.path.join(os.environ["EIPVIZ_DATA_DIR"], "cifar10_test.npz")) as data:
    Image.fromarray(data["x"][0]).save(sys.argv[1])
PY
    [ -f "${first_run}best.keras" ] || stamp "stage 3 left no best.keras: cam fails"
    timeout -k 10 60 "$PYTHON" -m eipviz cam --model "${first_run}best.keras" --preprocessing channel_standardize \
        --image /tmp/cam/test-image.png --method gradcam --out /tmp/cam > /tmp/cam/cam.txt 2>&1 || stamp "cam failed"
    pack_runs

    if [ -s /tmp/eipviz-resnet18-ok ] || [ -n "${SMALL:-}" ]; then
        # Epochs that fit: each costs its 50,000 images at the probe's rate plus about 1.5 s of validation and
        # checkpoints; 60 s kept for start-up and compiles.
        local rate epochs
        rate=$("$PYTHON" -c "import json, sys; print(int(json.load(open(sys.argv[1]))['images_per_s']))" \
            /tmp/eipviz-resnet18-ok 2>/dev/null || echo 20000)
        epochs=$(( ($(left) - 60) * rate / (50000 + 3 * rate / 2) ))
        [ "$epochs" -gt 60 ] && epochs=60
        [ -n "${SMALL:-}" ] && epochs=1
        if [ "$epochs" -ge 20 ] || [ -n "${SMALL:-}" ]; then
            stamp "stage 6: $LARGE_MODEL, $epochs epochs, whole-pixel shifts ($rate images/s in the probe)"
            to_accuracy $(( $(left) - 25 )) "$LARGE_MODEL" --epochs "$epochs" --target 0.8848 "${large_batch[@]}" \
                --set interpolation=nearest
        else
            stamp "stage 6 skipped: $(left) s left, $epochs epochs would fit"
        fi
    else
        stamp "stage 6 skipped: $LARGE_MODEL did not compile in the probe"
    fi
    stamp "train done"
}

"$PART"
