#!/usr/bin/env bash
# Install arc-atlas and its development tools into .venv, then run lint, type checks and tests.
#
#   ./scripts/test.sh                 # against the embedded PostgreSQL (nothing to set up)
#   ATLAS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres ./scripts/test.sh
#
# Extra arguments go to pytest (e.g. ./scripts/test.sh -k writer -x).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
ruff check .
ruff format --check .
mypy
python -m pytest "$@"
