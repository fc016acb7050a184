#!/usr/bin/env bash
# Install what is needed and start the B2BUA on its embedded default: bundled config, loopback, SQLite in var/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec .venv/bin/python -m b2bua run "$@"
