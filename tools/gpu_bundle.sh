#!/usr/bin/env bash
# What a session lent a device carries there for tools/gpu_check.sh, built here (run from the repository
# root with dfsweep installed, i.e. its virtual environment active; needs the package registries and an
# interpreter of the device's Python version):
#
#   bash tools/gpu_bundle.sh                 # -> .gpu-bundle/overlay.tar.xz and .gpu-bundle/data (a link)
#
# The device's image has Python 3.12 with torch, torchvision, numpy, pandas, scikit-learn and ~200 other
# packages (tools/device-packages.txt, copied from the device tool's notes) but not Ray, Optuna or
# MLflow, and nothing there reaches a registry. So this downloads the wheels of ray[tune], optuna and
# mlflow at the versions installed here (the ones the tests ran with) and their dependencies for that
# Python, keeps those the image lacks, installs them into one folder (`pip install --target`), drops what
# a sweep never loads (Ray's Java jars, RLlib, Serve, LLM and dashboard web build, MLflow's web UI) and
# strips the symbols from the native code, then packs it with xz (~37 MB for Python 3.12). One device call
# carries at most 64 MiB (the checkout included); the DFDC train faces are 20 MB of bytes, so the script
# checks that the overlay, the faces and the tracked files fit, with 2 MB to spare. The faces travel through
# a link: carry `.gpu-bundle/data/train` (a path through a link travels).
#
# Tested on this CPU machine for Python 3.11 (PYVER=3.11): in a virtual environment with dfsweep's
# dependencies less the 52 packages the overlay holds, the overlay on PYTHONPATH ran the fast tests and a
# sweep_vs_peer run (Ray's workers inherit PYTHONPATH). MLflow's SQLite store needs `cryptography`, so it stays.
# The 3.12 overlay ran a 4-trial Tune + OptunaSearch + ASHA run and opened an MLflow SQLite store under
# Python 3.12.1 here, beside the 47 wheels it depends on and the image has (no torch there).
#
# On the device, one call: carry [".gpu-bundle/overlay.tar.xz", ".gpu-bundle/data/train"] and run
# `OUT=$OUT bash tools/gpu_check.sh` (it unpacks the overlay where Ray does not import).
#
# PYVER (default 3.12) picks the target Python; PYTHON the interpreter of that version used to install
# (default: python$PYVER, else pyenv's). PKGS (default tools/device-packages.txt) lists what the target
# already has.
set -euo pipefail
cd "$(dirname "$0")/.."
pyver=${PYVER:-3.12}
py=${PYTHON:-}
if [ -z "$py" ]; then               # the first candidate that runs (a pyenv shim may exist and refuse)
  for c in "python$pyver" "$HOME"/.pyenv/versions/"$pyver"*/bin/python"$pyver"; do
    if "$c" -c pass 2>/dev/null; then py=$(command -v "$c"); break; fi
  done
fi
pkgs=${PKGS:-tools/device-packages.txt}
[ -n "$py" ] || { echo "gpu_bundle: no Python $pyver interpreter (set PYTHON)"; exit 2; }
out=.gpu-bundle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the versions this checkout was tested with
pins=$(python - <<'EOF'
import importlib.metadata as m
print(" ".join(f"{p}=={m.version(d)}" for p, d in (("ray[tune]", "ray"), ("optuna", "optuna"), ("mlflow", "mlflow"))))
EOF
)
echo "gpu_bundle: $pins for Python $pyver ($py)"
pip download --quiet --disable-pip-version-check --only-binary=:all: --python-version "$pyver" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$work/wheels" $pins > "$work/download.log" 2>&1 \
  || { grep -v "is ignored: it is neither" "$work/download.log" | tail -n 20; echo "gpu_bundle: download failed"; exit 1; }

# the wheels of packages the target lacks (names compared as pip normalises them)
python - "$work/wheels" "$pkgs" > "$work/need.txt" <<'EOF'
import os, re, sys
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
have = {norm(line.strip()) for line in open(sys.argv[2]) if line.strip() and not line.startswith("#")}
for f in sorted(os.listdir(sys.argv[1])):
    if f.endswith(".whl") and norm(f.split("-")[0]) not in have:
        print(os.path.join(sys.argv[1], f))
EOF
echo "gpu_bundle: $(wc -l < "$work/need.txt") wheels the target lacks"
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile --no-index --target "$work/overlay" \
    $(cat "$work/need.txt") > "$work/install.log" 2>&1 \
  || { tail -n 20 "$work/install.log"; echo "gpu_bundle: install failed"; exit 1; }

# what a sweep never loads, and the native code's symbols
cd "$work/overlay"
rm -rf ray/jars ray/rllib ray/serve ray/llm ray/dashboard/client/build mlflow/server/js/build bin
find . -name '*.map' -delete
find . -type f \( -name '*.so' -o -path './ray/core/src/ray/*' \) -exec sh -c \
    'file -b "$1" | grep -q ELF && strip --strip-unneeded "$1"' _ {} \;
cd - > /dev/null
mkdir -p "$out"
tar cf - -C "$work/overlay" . | xz -T0 -6 > "$out/overlay.tar.xz"
ln -sfn ../../shared/data/dfdc-faces "$out/data"
overlay=$(stat -c %s "$out/overlay.tar.xz")
faces=$(du -sbL "$out/data/train" | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -cb | tail -n 1 | cut -f1)
total=$((overlay + faces + tracked))
echo "gpu_bundle: $out/overlay.tar.xz $((overlay / 1000000)) MB + faces $((faces / 1000000)) MB + checkout $((tracked / 1000000)) MB = $((total / 1000000)) MB"
if [ "$total" -gt $((62 * 1024 * 1024)) ]; then echo "gpu_bundle: over 62 MiB: it would not travel in one call"; exit 1; fi
