#!/usr/bin/env bash
# Runs every test of the course, offline, on a CPU: the README's test command (and CI's).
#   1. unit tests of course_lib (diffusers parity, invariants, checkers, jupytext pair sync)
#   2. every chapter notebook under nbval in the smoke profile (cells tagged nbval-check-output
#      are compared with their stored outputs; every cell must run without error), in two lanes
#      of one thread each (tests/run_notebooks.sh says why)
#   3. the book build with Sphinx warnings as errors
#   4. the built book in headless Chromium (math typeset, figures, animations, widgets,
#      exercises, internal links), with screenshots in book/_build/screenshots
# Set-up (virtual environment, packages, vendored JavaScript, Chromium) happens on first use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tests/setup_env.sh
export COURSE_PROFILE=smoke
# CIFAR-10 offline: the shared JPEG copy next to the repository, unless COURSE_DATA says otherwise.
if [ -z "${COURSE_DATA:-}" ] && [ -d ../shared/data/cifar10-jpeg/train ]; then
  COURSE_DATA="$(cd ../shared/data/cifar10-jpeg && pwd)"
  export COURSE_DATA
fi
echo "COURSE_DATA=${COURSE_DATA:-<unset: torchvision will try to download CIFAR-10>}"
# A course cache of this run's own, empty at the start: models, checkpoints and FID statistics left by
# an earlier run or by the developer's own work (~/.cache/course_lib) must never stand in for those this
# code trains. Decoding the smoke subsets of CIFAR-10 again costs about 10 s. COURSE_TEST_CACHE names a
# folder to use (and keep) instead, e.g. to look at what a failed run trained; it must be empty.
if [ -n "${COURSE_TEST_CACHE:-}" ]; then
  mkdir -p "$COURSE_TEST_CACHE"
  if [ -n "$(ls -A "$COURSE_TEST_CACHE")" ]; then
    echo "COURSE_TEST_CACHE=$COURSE_TEST_CACHE is not empty: the tests need an empty course cache" >&2
    exit 2
  fi
  COURSE_CACHE="$COURSE_TEST_CACHE"
else
  COURSE_CACHE="$(mktemp -d "${TMPDIR:-/tmp}/course-tests.XXXXXX")"
  trap 'rm -rf "$COURSE_CACHE"' EXIT
fi
export COURSE_CACHE
echo "COURSE_CACHE=$COURSE_CACHE (empty: this run trains and computes everything it uses)"
SECONDS=0
step() { echo; echo "=== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }

step "1/4 unit tests"
python -m pytest tests/unit -p no:cacheprovider --durations=10

step "2/4 chapter notebooks under nbval (COURSE_PROFILE=$COURSE_PROFILE), in two one-thread lanes"
bash tests/run_notebooks.sh --nbval-lax --nbval-cell-timeout=1200 \
  --sanitize-with tests/nbval_sanitize.cfg --durations=5

step "3/4 book build (warnings are errors)"
bash book/build.sh

step "4/4 the built book in headless Chromium"
bash tests/book/install_chromium.sh
python -m pytest tests/book -p no:cacheprovider

step "all tests passed in $((SECONDS / 60))m$((SECONDS % 60))s"
