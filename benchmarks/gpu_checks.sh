#!/usr/bin/env bash
# The GPU checks in one call, inside the device tool's 10 minutes a command, on one H200 with 16 cores.
#
#   bash benchmarks/gpu_checks.sh                 # issue 24's checks (tests,bench: limits add up to 540 s)
#   bash benchmarks/gpu_checks.sh tests           # only step 1;  ... bench: only steps 2 and 3
#   bash benchmarks/gpu_checks.sh contours,contour-bench   # issue 23's (C1 about 30 s, C2 at most 420 s)
#
# Parts run in this file's order whatever the order named: contours, contour-bench, tests, earlier, bench.
#
# Steps (each with its own time limit, so one that hangs cannot take the others with it;
# everything goes to $OUT/gpu_checks.log, and the summary lines to $OUT/gpu_summary.txt):
#   0. set-up, offline: fractaldb installed editable (pip --no-index --no-build-isolation);
#      python-isal, a dependency the GPU image lacks, from .whl/ (see below) if it is missing.
#   1. the GPU twins on the hardware, never run there before: tests/fractal3d_cuda_cases.py and
#      tests/onepfrac_cuda_cases.py, then tests/pipeline_cases.py (the GPU pipeline: same bytes
#      as the CPU).  (cuda_cases, perlin_cuda_cases and device_cases ran on an H100 before:
#      'bash benchmarks/gpu_checks.sh earlier' runs them.)
#   2. the render-only figure and the end-to-end comparison on 32 FractalDB-1k categories
#      (32,000 images at 362x362): benchmarks/bench_cuda.py (parity first; GPU render only;
#      generate --device cuda through the pipeline and through threads, same manifests).
#   3. the target: FractalDB-1k 362x362 into shards at >= 30,000 images/s, 64 categories
#      (64,000 images), the pipeline on 16 worker processes.
#   C1. the contour GPU twins on the hardware: tests/contour_cuda_cases.py (the rasteriser,
#      VisualAtom's renderer, the keyed noise) and tests/rcdb_cuda_cases.py (RCDB, SegRCDB masks).
#   C2. benchmarks/bench_gpu_family.py on VisualAtom-1k (official and modern), RCDB-1k (modern and
#      official) and SegRCDB-1k slices at 512x512 (2,000-4,000 images, shards of 250): parity, GPU render
#      only, one CPU thread, and generate --device cuda against --device cpu on 16 workers (same shards).
#      Sized after the H200 run of 2026-12-04 (docs/gpu.md section 9), where larger slices ran past
#      their limits: official VisualAtom renders ~300 images/s on the GPU (host replay).
#
# Before the call, once, on a machine with pip and a registry (the GPU machine has neither):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl isal==1.9.1 numpy==2.4.6
# and name .whl in the call's carry (numpy: the image's 2.5 breaks its numba-cuda 0.30.4).
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
LOG="$OUT/gpu_checks.log"
SUMMARY="$OUT/gpu_summary.txt"
: > "$SUMMARY"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
exec > >(tee -a "$LOG") 2>&1

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record its exit code
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "=== $name: exit $rc after $((SECONDS - t0)) s"
    echo "$name: exit $rc, $((SECONDS - t0)) s" >> "$SUMMARY"
    return 0
}

echo "=== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc
$PY -c "import sys, numpy, numba; print(sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__)"
$PY -c "import numba_cuda; print('numba-cuda', numba_cuda.__version__)" 2>/dev/null || true

echo "=== 0. set-up"
# Wheels carried in .whl/ go first on the path: python-isal (the image lacks it) and, since the image's
# numpy 2.5 breaks its numba-cuda 0.30.4 (np.row_stack is gone), numpy 2.4.
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! $PY -c "import isal" 2>/dev/null; then
    echo "error: python-isal is missing and no .whl/isal-*.whl was carried (see the top of this script)"
    exit 2
fi
$PY -c "import numpy; print('numpy', numpy.__version__)"
$PY -m pip install -q --no-index --no-deps --no-build-isolation -e . || { echo "error: cannot install fractaldb"; exit 2; }
$PY -c "import fractaldb.encode as e; print('deflate', e.DEFLATE)"
$PY -c "from numba import cuda; assert cuda.is_available(), 'no GPU'; print('GPU', cuda.get_current_device().name)" \
    || exit 2
unset NUMBA_ENABLE_CUDASIM

PARTS=${1:-tests,bench}
PYTEST="$PY -m pytest -q -p no:cacheprovider -o addopts="
if [[ ",$PARTS," == *",contours,"* ]]; then
    echo "=== C1. contour GPU twins on the hardware"
    step contour_cuda_cases 120 $PYTEST tests/contour_cuda_cases.py
    step rcdb_cuda_cases 120 $PYTEST tests/rcdb_cuda_cases.py
fi
if [[ ",$PARTS," == *",contour-bench,"* ]]; then
    echo "=== C2. contour families: GPU against CPU (16 workers)"
    FAM="$PY benchmarks/bench_gpu_family.py --workers 16 --set shard_size=250"  # 16 shards: every worker busy
    step bench_rcdb_modern 60 $FAM --repeat 3 --preset rcdb-1k --classes 4 --cpu-blocks 200 --check 16
    step bench_segrcdb_modern 90 $FAM --repeat 2 --preset segrcdb-1k --classes 254 --set segrcdb.images=2000 \
        --cpu-blocks 200 --check 16
    step bench_visualatom_modern 90 $FAM --repeat 3 --preset visualatom-1k --classes 4 \
        --set visualatom.compat=modern --cpu-blocks 200 --check 16
    step bench_rcdb_official 70 $FAM --repeat 2 --preset rcdb-1k --classes 10 --set rcdb.compat=official \
        --set rcdb.instances=200 --cpu-blocks 1 --check 2
    step bench_visualatom_official 110 $FAM --repeat 2 --preset visualatom-1k --classes 2 --cpu-blocks 20
fi
if [[ ",$PARTS," == *",tests,"* ]]; then
    echo "=== 1. GPU twins on the hardware"
    step fractal3d_cuda_cases 110 $PYTEST tests/fractal3d_cuda_cases.py
    step onepfrac_cuda_cases 110 $PYTEST tests/onepfrac_cuda_cases.py
    step pipeline_cases 80 $PYTEST tests/pipeline_cases.py
fi
if [[ ",$PARTS," == *",earlier,"* ]]; then
    step earlier_cuda_cases 400 $PYTEST tests/cuda_cases.py tests/perlin_cuda_cases.py tests/device_cases.py
fi
if [[ ",$PARTS," == *",bench,"* ]]; then
    echo "=== 2. render-only and end to end, 32 categories"
    step bench_cuda_32 130 $PY benchmarks/bench_cuda.py --categories 32 --repeat 3 --workers 16 \
        --skip-cpu --skip-stream --executors local,threads
    echo "=== 3. the target: >= 30,000 images/s into shards (64 categories)"
    step bench_cuda_64 110 $PY benchmarks/bench_cuda.py --categories 64 --repeat 3 --workers 16 \
        --skip-cpu --skip-stream --executors local
fi

grep -E "^(parity|[1-5]\.|ratio|MISMATCH|#)|parity|[234]\. |passed|failed|error" "$LOG" >> "$SUMMARY" || true
echo "=== summary"
cat "$SUMMARY"
