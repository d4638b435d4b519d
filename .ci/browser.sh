#!/usr/bin/env bash
# Installs Debian's chromium (headless browser for tests/test_render.py) if it is not on PATH.
# Idempotent and quiet: does nothing when chromium is already there; apt's output is shown only
# if the install fails. Needs root (or sudo).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "browser.sh: installing chromium failed" >&2
    exit 1
fi
command -v chromium >/dev/null
