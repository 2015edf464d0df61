#!/usr/bin/env bash
# Set up everything the tests need (system packages, .venv with all extras, the Label Studio
# server in its own cached venv), then run the test suite. Extra arguments go to pytest.
#
#   bash scripts/test.sh              # everything (CI runs this)
#   bash scripts/test.sh --quick      # the inner loop: no setup, ruff, the tests not marked slow
#
# Tests run on as many workers as the machine has cores, up to 4 (pytest-xdist): a file's
# tests stay on one worker, and files sharing a costly session fixture share one
# (tests/conftest.py). ASSAY_TEST_WORKERS=0 runs them in one process.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then
    shift
    set -- -m "not slow" "$@"
else
    bash scripts/setup.sh
    if [ -f scripts/labelstudio_server.py ]; then
        # The server lives in its own venv (cached); installing it here keeps test timeouts honest.
        .venv/bin/python scripts/labelstudio_server.py install || echo "[test] Label Studio server could not be installed; its tests will skip" >&2
    fi
fi
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest -n "${ASSAY_TEST_WORKERS:-auto}" --maxprocesses 4 --dist loadfile --durations=15 "$@"
