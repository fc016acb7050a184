#!/usr/bin/env bash
# Install everything (apt packages, the pjsua2 build, the virtualenv) and run lint, types and the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
