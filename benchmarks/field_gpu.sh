#!/usr/bin/env bash
# The field profile on a lent GPU machine (the device tool runs this from the repository root):
#   bash benchmarks/field_gpu.sh
# Prepared here first (both folders are ignored by git and travel with `carry`):
#   mkdir -p .carry/data && cp -r ../shared/data/ptb .carry/data/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl transformers==5.24.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
# then run(command="bash benchmarks/field_gpu.sh", carry=[".carry", ".whl"], timeout_s=600).
# That machine has torch, but an older transformers and no `datasets`: the wheels in .whl are
# installed beside it. What comes back (in $OUT): the timing, the tables, the whole results folder.
set -euo pipefail
start=$(date +%s)
export PYTHONPATH="$PWD/src"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
out="${OUT:-field_gpu_out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1 || true
PYTHONUNBUFFERED=1 python3 benchmarks/field_gpu.py --data-dir "${DATA_DIR:-.carry/data}" \
  --output-root /tmp/field_gpu --budget-s "${BUDGET_S:-420}" 2>&1 | tee "$out/log.txt"
cp /tmp/field_gpu/field_gpu_timing.json "$out/"
cp /tmp/field_gpu/results/field_gpu*/tables.md "$out/" 2>/dev/null || true
tar -czf "$out/results.tar.gz" -C /tmp/field_gpu results
echo "wall_s $(( $(date +%s) - start ))" | tee "$out/wall.txt"
