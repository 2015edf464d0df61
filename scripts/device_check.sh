#!/usr/bin/env bash
# The GPU device check (docs/gpu.md): assay's fine-tune loop against a tuned Hugging Face
# Trainer on the same GPU, and the 8-arm x 10-seed low-resource ablation as stacks.
#
#   bash scripts/device_check.sh prepare        # here (CPU): cells, packed model, wheels in .device/
#   bash scripts/device_check.sh run OUT        # on the GPU machine: results to OUT
#                                               #   (--stages ablation peer ...: some only)
#   bash scripts/device_check.sh report DIR     # here: the ablation table and targets from DIR
#   bash scripts/device_check.sh dry-run        # all three on CPU, tiny model, in a temp folder
#
# What travels to the GPU machine: the repository, .device/pack.tar.xz, .device/cells,
# .device/settings.json and, when bench/judges.py --export .device/judges ran before
# prepare, .device/judges (prepare prints their bytes). `run` needs python3 with torch,
# transformers, numpy, pyarrow and pip, nothing from the network.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DIR=${DEVICE_DIR:-.device}

run() {  # unpack, install the carried wheels beside the image's packages, run the bench
    local out=$1 site=/tmp/assay-device-site
    shift
    mkdir -p "$out" "$DIR/pack" "$site"
    tar -xJf "$DIR/pack.tar.xz" -C "$DIR/pack"
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" "$DIR"/pack/wheels/*.whl
    # Tensor shapes change from step to step: growable segments keep the allocator from
    # splitting and re-reserving blocks.
    export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
    PYTHONPATH=$site PYTHONUNBUFFERED=1 python3 bench/gpu.py run --dir "$DIR" --out "$out" "$@"
    # The GPU tests, from outside the checkout so that `assay` is the installed wheel.
    local repo=$PWD
    (cd /tmp && PYTHONPATH=$site timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider \
        --rootdir "$repo" -c "$repo/pyproject.toml" "$repo/tests/train/test_stacked_gpu.py") \
        > "$out/pytest_gpu.txt" 2>&1 || echo "[device_check] GPU tests failed: $out/pytest_gpu.txt" >&2
}

case "${1:-}" in
    prepare) "$PY" bench/gpu.py prepare --dir "$DIR" ;;
    run) shift; run "${1:?run needs the output folder}" "${@:2}" ;;
    report)
        json=${3:-bench/results/gpu-$(date +%Y-%m-%d).json}
        "$PY" bench/gpu.py report --dir "$DIR" --results "${2:?report needs the folder run wrote}" \
            --json "$json" ;;
    dry-run)
        DIR=$(mktemp -d)
        trap 'rm -rf "$DIR"' EXIT
        "$PY" bench/gpu.py prepare --dir "$DIR" --dry-run
        rm -rf "$DIR/pack"  # only what travels is used from here on
        # The image's python3 is ours here; the wheels go to a folder of their own.
        PATH="$(cd "$(dirname "$PY")" && pwd):$PATH" run "$DIR/out"
        "$PY" bench/gpu.py report --dir "$DIR" --results "$DIR/out" --json "$DIR/report.json"
        "$PY" -c "import json, sys; r = json.load(open(sys.argv[1])); print('dry run:', len(r['ablation']['table']), 'arms,', len(r['targets']), 'targets')" "$DIR/report.json"
        ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
