#!/usr/bin/env bash
# The GPU check (issue 14), one script that writes its results under $OUT: the GPU-marked
# tests, the distillation step and one evaluated network against the eager reference on
# the same GPU (each lever of raygm/gpu.py alone, then together), and 1/2/4/8 trials packed
# on the GPU. Sized for <= 8 minutes on an H100; each part has its own time limit, so one
# that runs long cannot take the others' results with it.
#
#   bash benchmarks/gpu_check.sh --prepare            # here, once: MNIST (gzipped) and
#                                                     # kornia's wheels into .gpu_carry/
#   bash benchmarks/gpu_check.sh --tiny --device cpu  # a dry run on this machine's CPU
#   bash benchmarks/gpu_check.sh                      # on the GPU machine
#
# The GPU machine has torch but neither Ray nor Optuna (which the core does not need) nor
# kornia (DSA), and no internet: .gpu_carry/ (ignored by git) travels with the working tree
# (the device tool's `carry`), ~20 MB.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
PY="${PYTHON:-python3}"
DEVICE=cuda
TINY=0
PREPARE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1 ;;
    --device) DEVICE="$2"; shift ;;
    --prepare) PREPARE=1 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (allowed: --prepare, --tiny, --device DEV)" >&2
       exit 2 ;;
  esac
  shift
done

if [ "$PREPARE" = 1 ]; then
  src="${RAYGM_DATA_DIR:?set RAYGM_DATA_DIR to the folder holding MNIST/raw}/MNIST/raw"
  mkdir -p "$CARRY/MNIST/raw" "$CARRY/wheels"
  grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >> .git/info/exclude
  for f in "$src"/*-ubyte; do gzip -c "$f" > "$CARRY/MNIST/raw/$(basename "$f").gz"; done
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$CARRY/wheels" kornia==0.9.0 kornia_rs==0.2.0
  du -sh "$CARRY"
  exit 0
fi

OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ! "$PY" -c "import kornia" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/raygm-site \
    "$CARRY"/wheels/*.whl || exit 1
  export PYTHONPATH="/tmp/raygm-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${RAYGM_DATA_DIR:-}" ]; then
  mkdir -p /tmp/raygm-data/MNIST/raw
  for f in "$CARRY"/MNIST/raw/*.gz; do
    gunzip -c "$f" > "/tmp/raygm-data/MNIST/raw/$(basename "$f" .gz)"
  done
  export RAYGM_DATA_DIR=/tmp/raygm-data
fi

if [ "$TINY" = 1 ]; then  # seconds per part: a dry run of every command
  SIZE=(--width 16 --batch-real 16); EPOCHS=20; MODELS=2; REPEATS=2; REPEATS10=1; WARM10=0
  PROCS="1 2"; WINDOW=5
else
  SIZE=(); EPOCHS=1000; MODELS=3; REPEATS=20; REPEATS10=3; WARM10=1; PROCS="1 2 4 8"; WINDOW=15
fi
# each lever alone on top of `compiled`, then all together
STEP_LEVERS="compiled+batched_classes compiled+cuda_graphs compiled+tf32"
ALL_STEP=compiled+batched_classes+cuda_graphs+tf32
EVAL_LEVERS="compiled+stacked_eval compiled+cuda_graphs compiled+tf32"
ALL_EVAL=compiled+stacked_eval+cuda_graphs+tf32

part() {  # part NAME SECONDS COMMAND...: its output to $OUT/NAME and the log
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit $limit s): $*" | tee -a "$OUT/log.txt"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name" | grep -v "^W[0-9]" >> "$OUT/log.txt"
  echo "== $name: rc ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$OUT/log.txt"
}

{
  date -u
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
  nproc
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt" >> "$OUT/log.txt"

part tests.txt 150 "$PY" -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider -rs
part step_ipc1.md 150 "$PY" benchmarks/step.py --device "$DEVICE" "${SIZE[@]}" --ipc 1 \
  --repeats "$REPEATS" --modes eager eager+batched_classes compiled $STEP_LEVERS $ALL_STEP
part step_ipc10.md 120 "$PY" benchmarks/step.py --device "$DEVICE" "${SIZE[@]}" --ipc 10 \
  --repeats-ipc10 "$REPEATS10" --warmup-ipc10 "$WARM10" --modes eager compiled $ALL_STEP
part eval.md 150 "$PY" benchmarks/eval.py --device "$DEVICE" "${SIZE[@]:0:2}" \
  --models "$MODELS" --epochs "$EPOCHS" --modes eager compiled $EVAL_LEVERS $ALL_EVAL
part packing.md 180 "$PY" benchmarks/packing.py --device "$DEVICE" "${SIZE[@]}" \
  --procs $PROCS --seconds "$WINDOW" --mode compiled
echo "done; results in $OUT" | tee -a "$OUT/log.txt"
