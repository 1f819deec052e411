#!/usr/bin/env bash
# The GPU half of the performance work, as one call for a session that is lent a device (run from the
# repository root, with dfsweep and its dependencies installed there and ../shared/data/dfdc-faces/train
# beside it, or DATA=... pointing at a copy). Each step's output goes to $OUT (default gpu-check/), each
# step's last line is echoed, most needed first (the last one only repeats the peer run without compile).
# Not run yet: no device was lent since it was written.
set -u
out=${OUT:-gpu-check}
data=${DATA:-../shared/data/dfdc-faces/train}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
step() {                       # step NAME COMMAND...: run it, keep its output, echo its last line and time
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$out/$name.txt" 2>&1
  echo "$name (rc $?, $((SECONDS - t0)) s): $(tail -n 1 "$out/$name.txt")"
}
step pytest-gpu python -m pytest -q -m gpu tests/test_train.py tests/test_sweep.py tests/models tests/augment
step mvp-eager python benchmarks/model_vs_pipeline.py --data "$data" --threads 4 --rounds 10
step mvp-cudagraphs python benchmarks/model_vs_pipeline.py --data "$data" --threads 4 --rounds 10 --compile reduce-overhead
step peer-cudagraphs python benchmarks/sweep_vs_peer.py --data "$data" --trials 8 --epochs 4 --concurrent 4 --cpus 4 --gpu 0.25 --compile reduce-overhead
step peer-eager python benchmarks/sweep_vs_peer.py --data "$data" --trials 8 --epochs 4 --concurrent 4 --cpus 4 --gpu 0.25
