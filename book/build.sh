#!/usr/bin/env bash
# Builds the book into book/_build/html from the notebooks' STORED outputs (nothing is executed),
# with Sphinx warnings as errors. Works offline once book/_vendor holds the vendored JavaScript
# (book/vendor_js.sh fetches it with npm the first time).
# Every page is rebuilt each time (a few seconds: nothing is executed), so a change to the config,
# the extension in book/_ext or the vendored files can never leave a stale page behind.
#   usage: bash book/build.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=/dev/null
source tests/setup_env.sh
bash book/vendor_js.sh

if [ "$#" -gt 0 ]; then
  echo "build: takes no arguments (usage: bash book/build.sh)" >&2
  exit 2
fi

start=$(date +%s)
jupyter-book build . \
  --config book/_config.yml \
  --toc book/_toc.yml \
  --path-output book \
  -W -n --keep-going --all
echo "build: done in $(( $(date +%s) - start ))s"
echo "build: HTML in $ROOT/book/_build/html (open $ROOT/book/_build/html/index.html)"
