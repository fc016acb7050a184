#!/usr/bin/env bash
# Install what is needed and start the B2BUA on its embedded default: bundled config, loopback, SQLite in var/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# the very first start creates the database; later starts leave it alone, and a database deleted after the node
# ran is refused (init exits 2 saying so) rather than silently replaced by an empty one
.venv/bin/python -m b2bua init "$@"
exec .venv/bin/python -m b2bua run "$@"
