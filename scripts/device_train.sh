#!/usr/bin/env bash
# Train zoo models with their fast recipe on a lent GPU machine, over several short device calls.
#
# That machine has Python 3.12 and JAX but no Keras, and takes 64 MiB per call, 10 minutes per
# command. So carry .whl/ (keras, namex and optree wheels for cp312) and data/ (copies of
# ../shared/data, one or two parts per call; carried files stay while the machine is warm), then:
#
#   bash scripts/device_train.sh start sepconv65k resnet18   # trains them one after another, detached
#   bash scripts/device_train.sh status 540                  # progress after 540 s (keeps it warm)
#   bash scripts/device_train.sh ship                        # ships finished runs; weights/ into $OUT
#
# The trainer runs in its own process session (setsid), so it outlives each call. resnet18 ships
# with float16 storage. Files over 15 MB come back split (`cat NAME.part-* > NAME` here).
# Try it on CPU with PYTHON=.venv/bin/python EXTRA_TRAIN_ARGS="--epochs 1 --subset 512".
set -euo pipefail

PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-/tmp/eipviz-device-runs}
OUT=${OUT:-/tmp/eipviz-device-out}
mkdir -p "$RUNS" "$OUT"
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}  # the carried wheels, installed once per machine
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} EIPVIZ_DATA_DIR=${EIPVIZ_DATA_DIR:-$PWD/data} PYTHONUNBUFFERED=1
export RUNS EXTRA_TRAIN_ARGS=${EXTRA_TRAIN_ARGS:-}

case "${1:-}" in
start)
    shift
    setsid nohup bash -c 'for model in "${@:2}"; do
            "$1" -m eipviz train --model "$model" --recipe fast --runs-dir "$RUNS" $EXTRA_TRAIN_ARGS
        done' _ "$PYTHON" "$@" > "$RUNS/train.log" 2>&1 < /dev/null &
    echo "training $* in the background: $RUNS/train.log"
    ;;
status)
    sleep "${2:-0}"
    "$PYTHON" -m eipviz runs --runs-dir "$RUNS"
    tail -n 3 "$RUNS/train.log"
    ;;
ship)
    "$PYTHON" -m eipviz runs --runs-dir "$RUNS" --json > "$RUNS/runs.json"
    "$PYTHON" - "$RUNS/runs.json" <<'EOF' | while read -r run_id model; do
import json, sys
for run in json.load(open(sys.argv[1])):
    if run["status"] == "finished":
        print(run["id"], run["model"])
EOF
        storage=""; [ "$model" = resnet18 ] && storage="--float16"
        "$PYTHON" -m eipviz ship --run "$run_id" --runs-dir "$RUNS" $storage || echo "$model not shipped"
    done
    cp weights/manifest.json "$OUT/"
    for file in weights/*.keras; do
        if [ "$(stat -c %s "$file")" -gt 15000000 ]; then
            split -b 15M "$file" "$OUT/$(basename "$file").part-"
        else
            cp "$file" "$OUT/"
        fi
    done
    ls -l "$OUT"
    ;;
*)
    echo "usage: $0 start MODEL... | status [SECONDS] | ship" >&2
    exit 2
    ;;
esac
