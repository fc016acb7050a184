#!/usr/bin/env bash
# Install everything the B2BUA needs on a fresh Debian machine: apt packages, a virtualenv in .venv,
# pjsua2 built from pjproject source (cached by source version), and the project itself.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   plus SIPp, tcpdump and the Python test/lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

# build tools and the external libraries pjproject links against (Debian removed its bundled copies)
pkgs=(build-essential pkg-config swig xz-utils patch ca-certificates python3-venv python3-dev
      libsrtp2-dev libspeex-dev libspeexdsp-dev libgsm1-dev libopus-dev libssl-dev uuid-dev)
[ "$with_test" = 1 ] && pkgs+=(sip-tester tcpdump)

missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    log "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel

# pjsua2 with B2BUA-sized limits (a cache hit only reinstalls the wheel, in seconds)
scripts/build-pjsua2.sh .venv/bin/python

extra=""
[ "$with_test" = 1 ] && extra="[test]"
.venv/bin/python -m pip install -q -e ".$extra"
log "ready: $(.venv/bin/python -m b2bua version | tr '\n' ' ')"
