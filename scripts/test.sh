#!/usr/bin/env bash
# Set up everything the tests need (system packages, .venv with all extras, the Label Studio
# server in its own cached venv), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ -f scripts/labelstudio_server.py ]; then
    # The server lives in its own venv (cached); installing it here keeps test timeouts honest.
    .venv/bin/python scripts/labelstudio_server.py install || echo "[test] Label Studio server could not be installed; its tests will skip" >&2
fi
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
