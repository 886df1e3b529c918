#!/usr/bin/env bash
# Set-up shared by the README's two commands (book/build.sh and tests/run.sh); source it.
# Creates the virtual environment .venv if absent and installs course_lib with its book and
# test extras (versions pinned by tests/constraints.txt); reuses it while pyproject.toml and
# the constraints are unchanged. Works offline where pip finds the wheels on local disk.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $(${PYTHON:-python3} --version)"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
stamp="$VENV/.course-installed"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/tests/constraints.txt" "$ROOT/tests/setup_env.sh" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing course_lib[book,test] into $VENV (a few minutes the first time)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$ROOT/tests/constraints.txt" -e "$ROOT[book,test]"
  # torchcfm, the reference of the flow-matching parity tests, without its declared extras (scikit-learn,
  # pandas, torchdyn): the tests import only torchcfm.conditional_flow_matching, which needs POT (test extra).
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -c "$ROOT/tests/constraints.txt" torchcfm
  # k-diffusion, the reference of the EDM parity tests, and dctorch, which its layers module imports, likewise:
  # k-diffusion declares wandb, clean-fid, CLIP, kornia, scikit-image, accelerate and jsonmerge, needed only by
  # modules the tests do not load (tests/unit/test_edm.py loads sampling, external and layers without the
  # package's __init__); dctorch declares numpy<2 but runs on numpy 2. The rest they import (torchsde, einops)
  # is in the test extra.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -c "$ROOT/tests/constraints.txt" \
    k-diffusion dctorch
  echo "$want" > "$stamp"
else
  echo "setup: reusing $VENV"
fi
export PATH="$VENV/bin:$PATH"
export PYTHONNOUSERSITE=1
