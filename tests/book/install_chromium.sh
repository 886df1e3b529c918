#!/usr/bin/env bash
# Installs headless Chromium and its matching chromedriver from Debian, for tests/book/check_book.py.
# Does nothing when both /usr/bin/chromium and /usr/bin/chromedriver already exist.
# Non-interactive; needs root (or sudo without a password) and access to the Debian mirrors.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "install_chromium: chromium and chromedriver already present ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install_chromium: ERROR: not root and no password-less sudo; install the Debian packages" >&2
    echo "  'chromium' and 'chromium-driver' yourself (apt-get install chromium chromium-driver)." >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: ERROR: apt-get not found (not Debian/Ubuntu?); install Chromium and a" >&2
  echo "  matching chromedriver at /usr/bin/chromium and /usr/bin/chromedriver yourself." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
echo "install_chromium: installing chromium and chromium-driver with apt-get ..."
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; }; then
  echo "install_chromium: ERROR: apt-get could not install chromium/chromium-driver" >&2
  echo "  (no network to the Debian mirror? On Ubuntu 'chromium' is a snap: use Debian or install Chrome for Testing by hand)." >&2
  exit 1
fi
for f in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$f" ] || { echo "install_chromium: ERROR: $f still missing after install" >&2; exit 1; }
done
echo "install_chromium: done in $(( $(date +%s) - start ))s: $(/usr/bin/chromium --version 2>/dev/null), $(/usr/bin/chromedriver --version 2>/dev/null | head -1)"
