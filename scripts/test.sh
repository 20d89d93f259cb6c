#!/usr/bin/env bash
# Run the whole test suite: creates .venv and installs the project with its test extras
# when needed, then runs pytest. Needs PostgreSQL and Redis at 127.0.0.1 (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependency pins changed since the last install.
stamp=.venv/.attune-installed
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  cp pyproject.toml "$stamp"
fi
exec .venv/bin/python -m pytest -q "$@"
