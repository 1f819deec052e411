#!/usr/bin/env bash
# The GPU half of the performance work, for a session that is lent a device. Build the carry here first
# (`bash tools/gpu_bundle.sh`: Ray, Optuna and MLflow for the device's Python, which lacks them, and
# a link to the DFDC train faces), then call the device from the repository root with
#   carry: [".gpu-bundle/overlay.tar.xz", ".gpu-bundle/data/train"]    timeout_s: 600
#   command: OUT=$OUT bash tools/gpu_check.sh                      (or STEPS="..." to pick steps)
# Where dfsweep's dependencies do not import, the overlay is unpacked (.gpu-bundle/overlay/, ~5 s) and put
# on PYTHONPATH with the checkout (Ray's workers inherit it). Each step's output goes to $OUT (default
# gpu-check/) and its last line is echoed. Steps, most needed first:
#   pytest-gpu       the gpu-marked tests (CUDA training, CUDA graphs, fractional-GPU trials, augmentation)
#   peer-eager       sweep_vs_peer on the GPU as the defaults run it (target >= 3)
#   mvp-eager        model_vs_pipeline on the GPU (target >= 0.9)
#   peer-cudagraphs  the same sweep with train.compile_mode reduce-overhead (CUDA graphs) on dfsweep's side
#   mvp-cudagraphs   model_vs_pipeline with both sides compiled that way
# A step is skipped when its cap would take the call past BUDGET_S (default 570 s: one call may run
# 600 s); caps are set well above the H100 runs' times (sweep_vs_peer there: 88 + 95 s), so one call runs
# what fits and names what it skipped, and a second call right after (the machine stays warm 30 s; the
# overlay is unpacked again if it is gone) can run those with STEPS="...". A session's 15 minutes of device
# time, machine start included, hold about one full call and a short second one.
# Not run yet: no device was lent since it was written.
set -u
out=${OUT:-gpu-check}
budget=${BUDGET_S:-570}
steps=" ${STEPS:-pytest-gpu peer-eager mvp-eager peer-cudagraphs mvp-cudagraphs} "
if [ -z "${DATA:-}" ]; then
  data=../shared/data/dfdc-faces/train
  [ -d .gpu-bundle/data/train ] && data=.gpu-bundle/data/train
else
  data=$DATA
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
if ! python3 -c "import ray, optuna, mlflow" 2>/dev/null; then
  if [ ! -d .gpu-bundle/overlay/ray ]; then
    [ -f .gpu-bundle/overlay.tar.xz ] || { echo "gpu_check: ray/optuna/mlflow missing and no .gpu-bundle/overlay.tar.xz carried"; exit 2; }
    mkdir -p .gpu-bundle/overlay && tar xJf .gpu-bundle/overlay.tar.xz -C .gpu-bundle/overlay
  fi
  export PYTHONPATH=$PWD/.gpu-bundle/overlay:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import torch, ray, optuna, mlflow, dfsweep; print('torch', torch.__version__, 'ray', ray.__version__, 'cuda', torch.cuda.is_available())" \
  | tee -a "$out/gpu.txt"
echo "data: $data ($(ls "$data" | wc -l) files)"

step() {                       # step NAME CAP_S COMMAND...: run it under its cap, keep its output, echo its last line
  local name=$1 cap=$2; shift 2
  case "$steps" in *" $name "*) ;; *) return ;; esac
  if [ $((SECONDS + cap)) -gt "$budget" ]; then
    echo "$name: skipped (its ${cap} s cap would pass the call's ${budget} s at ${SECONDS} s)"; return
  fi
  local t0=$SECONDS
  timeout "$cap" "$@" > "$out/$name.txt" 2>&1
  echo "$name (rc $?, $((SECONDS - t0)) s): $(tail -n 1 "$out/$name.txt")"
}
peer=(python3 benchmarks/sweep_vs_peer.py --data "$data" --trials 8 --epochs 4 --concurrent 4 --cpus 4 --gpu 0.25)
mvp=(python3 benchmarks/model_vs_pipeline.py --data "$data" --threads 4 --rounds 8)
step pytest-gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_train.py tests/test_sweep.py tests/models tests/augment
step peer-eager 260 "${peer[@]}"
step mvp-eager 100 "${mvp[@]}"
step peer-cudagraphs 330 "${peer[@]}" --compile reduce-overhead
step mvp-cudagraphs 200 "${mvp[@]}" --compile reduce-overhead
