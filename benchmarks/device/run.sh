#!/usr/bin/env bash
# There, on the GPU machine: the benchmarks' GPU rows in one prepared run, each step under its own
# time limit, highest priority first, all output in one log ($OUT/device_check.txt).
#
#   (here, once)  bash benchmarks/device/pack.sh
#   (device tool) run(command="bash benchmarks/device/run.sh", carry=[".device"], timeout_s=600)
#
# About 9 minutes at most (the limits below add up to 550 s, plus installing one wheel). On a CPU,
# DEVICE=cpu PY=.venv/bin/python bash benchmarks/device/run.sh checks the plumbing with small sizes.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${PY:-python3}"
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-/tmp/device_check}"; mkdir -p "$OUT"
LOG="$OUT/device_check.txt"; : > "$LOG"
[ -d .device/whl ] || { echo "run.sh: .device/whl is missing: run benchmarks/device/pack.sh here and carry .device" | tee -a "$LOG"; exit 1; }
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/device_site \
  .device/whl/*.whl 2>&1 | tee -a "$LOG"
export PYTHONPATH="/tmp/device_site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export COURSE_DATA="$PWD/.device/cifar10-jpeg" COURSE_CACHE=/tmp/device_cache

step() {  # step NAME LIMIT_SECONDS COMMAND...: run it, log it, never stop the run
  local name="$1" limit="$2"; shift 2
  echo -e "\n=== $name (limit ${limit} s): $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v "Warning\|warnings.warn" | tee -a "$LOG"
  echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s (124: over its limit)" | tee -a "$LOG"
}

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi";
  "$PY" -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__)"; } 2>&1 | tee -a "$LOG"

if [ "$DEVICE" = cuda ]; then
  UNET=(--config ddpm_cifar10 --batch 128); DIT=(--config S/2 --batch 128); COMPILE=1
else  # the plumbing only: small sizes, few calls, no compilation
  UNET=(--config tiny --batch 8 --steps 1 --repeats 1); DIT=(--config tiny/4 --batch 8 --steps 1 --repeats 1); COMPILE=0
fi
step unet_eager 100 "$PY" benchmarks/unet_vs_diffusers.py --device "$DEVICE" "${UNET[@]}" --dtypes fp32,bf16 --compile off
step dit_eager 70 "$PY" benchmarks/dit_vs_diffusers.py --device "$DEVICE" "${DIT[@]}" --dtypes fp32,bf16 --compile off
step sampler_overhead 90 "$PY" benchmarks/sampler_overhead.py --device "$DEVICE" --quick
step data_pipeline 60 "$PY" benchmarks/data_pipeline.py --device "$DEVICE" --quick
if [ "$COMPILE" = 1 ]; then
  step unet_compiled 130 "$PY" benchmarks/unet_vs_diffusers.py --device "$DEVICE" "${UNET[@]}" --dtypes bf16 --compile on
  step dit_compiled 100 "$PY" benchmarks/dit_vs_diffusers.py --device "$DEVICE" "${DIT[@]}" --dtypes bf16 --compile on
fi
echo -e "\nrun.sh: done; the tables above go into benchmarks/README.md with this log's hardware line" | tee -a "$LOG"
