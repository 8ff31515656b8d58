#!/usr/bin/env bash
# One-shot device check of the "gpu" path, at most ~6 minutes, installing nothing.
#
#   OUT=/some/folder bash benchmarks/device_check.sh              # on the GPU machine
#   DN_DEVICE=emu OUT=$(mktemp -d) bash benchmarks/device_check.sh  # the same steps on the emulator
#
# Runs from the working tree (PYTHONPATH=.) on the image's python3 (cupy, torch with CUDA, numpy,
# h5py, click, pytest, pytest-timeout, hypothesis; no network). Steps, each with a time limit
# inside one overall deadline, each logged to $OUT/<step>.log, summed up in $OUT/summary.txt:
#   env          versions, the GPU, dn.devices()
#   compile      every kernel of the table through CuPy's own RawModule path (emu: g++)
#   tests        the gpu-marked tests (emu: the emulator's kernel-agreement tests)
#   coop         the cooperative kernels' tests (tests/kernels: shared memory, barriers, warp
#                primitives) and the race check's thread schedules, on the emulator (needs g++)
#   determinism  two 20-step LeNet-5 fits, and two resnet20 fit steps (batch 128; emu: 8), from one
#                seed give bitwise-identical parameters
#   report       benchmarks/gpu_kernel_report.py: measured per-kernel times beside the estimates and
#                PyTorch eager, lenet5 (64) and resnet20 (128) -> $OUT/kernels_*.json (emu: the
#                estimates alone, over the stand-in)
#   bench        benchmarks/gpu_bench.py with PyTorch CUDA beside it -> $OUT/gpu_bench.json
#   distributed  two GPUs or more: the nccl backend, 2 ranks (tests/distributed/test_nccl_gpu.py)
#   host         benchmarks/gpu_host_overhead.py (no device work)    -> $OUT/host_overhead.json
# Exit status: 0 when every step passed.
set -u
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the logs}"
DEV="${DN_DEVICE:-gpu}"
PY="${PYTHON:-python3}"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
mkdir -p "$OUT"
: > "$OUT/summary.txt"
DEADLINE=$(( $(date +%s) + ${DEVICE_CHECK_SECONDS:-340} ))
FAILED=0

run_step() {  # name limit_seconds command...
    local name=$1 limit=$2 left rc t0
    shift 2
    left=$(( DEADLINE - $(date +%s) ))
    (( limit > left )) && limit=$left
    if (( limit <= 0 )); then
        echo "$name SKIPPED (out of time)" | tee -a "$OUT/summary.txt"
        FAILED=1
        return
    fi
    t0=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    local verdict=ok
    (( rc == 124 || rc == 137 )) && verdict="TIMEOUT after ${limit}s"
    (( rc != 0 && rc != 124 && rc != 137 )) && verdict="FAILED (exit $rc)"
    (( rc != 0 )) && FAILED=1
    echo "$name: $verdict in $(( $(date +%s) - t0 ))s" | tee -a "$OUT/summary.txt"
    tail -n 4 "$OUT/$name.log" | sed 's/^/    /'
}

TIMEOUT_OPT=()
"$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_OPT=(--timeout 90)

run_step env 30 "$PY" - "$DEV" <<'PY'
import platform, sys
import numpy
import dualnet as dn
print("python", platform.python_version(), "numpy", numpy.__version__, "device", sys.argv[1])
for mod in ("cupy", "torch"):
    try:
        m = __import__(mod)
        print(mod, m.__version__, getattr(getattr(m, "version", None), "cuda", ""))
    except Exception as e:  # report, never stop here
        print(mod, "unavailable:", e)
for d in dn.devices():
    print(f"  {d.name:8} {'yes' if d.available else 'no ':3} {d.description} {d.reason}")
PY

if [[ $DEV == emu ]]; then
    run_step compile 120 "$PY" -c "
import time
from dualnet.kernels.emulator import EmulatorLauncher
from dualnet.kernels.signatures import KERNELS
t = time.time(); EmulatorLauncher().compile_all()
print(f'{len(KERNELS.sources())} sources, {len(KERNELS.instantiations())} instantiations compiled by g++ in {time.time() - t:.1f}s')"
    run_step tests 150 "$PY" -m pytest -q -p no:cacheprovider "${TIMEOUT_OPT[@]}" tests/ops/test_cuda.py \
        tests/kernels/test_launch.py -k "emu or launch or fast"
else
    run_step compile 120 "$PY" -c "
import time
from dualnet.kernels.launch import CupyLauncher
from dualnet.kernels.signatures import KERNELS
t = time.time(); CupyLauncher(0).compile_all()
print(f'{len(KERNELS.sources())} sources, {len(KERNELS.instantiations())} instantiations compiled by cupy.RawModule in {time.time() - t:.1f}s')"
    run_step tests 150 "$PY" -m pytest -q -p no:cacheprovider "${TIMEOUT_OPT[@]}" -m gpu tests/
fi

# the cooperative kernels' tests and the race check's schedules run on the emulator (CPU) wherever
# g++ exists: a GPU runs one schedule per launch, so the schedules are the emulator's to try
if command -v g++ > /dev/null; then
    # pytest's exit 5 (nothing selected) is a pass with a note: the suite may not have such tests yet
    run_step coop 90 bash -c '"$0" -m pytest -q -p no:cacheprovider "${@}" tests/kernels \
        -k "coop or race or barrier or shared or warp or schedule or dgrad"; rc=$?
        (( rc == 5 )) && { echo "no cooperative-kernel tests selected"; exit 0; }; exit $rc' "$PY" "${TIMEOUT_OPT[@]}"
else
    echo "coop SKIPPED (no g++ for the emulator)" | tee -a "$OUT/summary.txt"
fi

RESNET_BATCH=128
[[ $DEV == emu ]] && RESNET_BATCH=8
run_step determinism 120 "$PY" - "$DEV" "$RESNET_BATCH" <<'PY'
import sys
import numpy as np
import dualnet as dn
dev = dn.use_device(sys.argv[1])
rng = np.random.default_rng(0)
ok = True
for name, shape, steps, batch in (("lenet5", (1, 28, 28), 20, 64), ("resnet20", (3, 32, 32), 2, int(sys.argv[2]))):
    train = dn.data.Dataset(rng.random((steps * batch, *shape), dtype=np.float32), rng.integers(0, 10, steps * batch))
    runs = []
    for _ in range(2):
        model = dn.models.get(name, seed=0).to(dev)
        dn.fit(model, train, epochs=1, batch_size=batch, seed=3,
               optimizer=dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
        runs.append([dn.to_numpy(p.data).tobytes() for p in model.parameters()]
                    + [dn.to_numpy(b).tobytes() for _, b in model.named_buffers()])
    same = [a == b for a, b in zip(*runs)]
    ok &= all(same)
    print(f"{name}: two {steps}-step fits (batch {batch}) on {dev.name}: {sum(same)} of {len(same)} parameters "
          "and buffers bitwise identical")
sys.exit(0 if ok else 1)
PY

if [[ $DEV == emu ]]; then
    run_step report 60 bash -c "$PY benchmarks/gpu_kernel_report.py --model lenet5 --batch-size 64 --summary \
        --json $OUT/kernels_lenet5.json && $PY benchmarks/gpu_kernel_report.py --model resnet20 --batch-size 128 \
        --summary --json $OUT/kernels_resnet20.json"
else
    run_step report 100 bash -c "$PY benchmarks/gpu_kernel_report.py --model lenet5 --batch-size 64 --measure \
        --json $OUT/kernels_lenet5.json && $PY benchmarks/gpu_kernel_report.py --model resnet20 --batch-size 128 \
        --measure --json $OUT/kernels_resnet20.json"
fi

if [[ $DEV == emu ]]; then
    run_step bench 120 "$PY" benchmarks/gpu_bench.py --device emu --quick --out "$OUT/gpu_bench.json"
else
    run_step bench 60 "$PY" benchmarks/gpu_bench.py --device "$DEV" --steps 50 --rounds 3 --out "$OUT/gpu_bench.json"
fi
# two GPUs or more: the nccl backend for real, two ranks (needs mpi4py + mpiexec and NCCL in the image)
if [[ $DEV != emu ]] && (( $("$PY" -c "import cupy; print(cupy.cuda.runtime.getDeviceCount())" 2>/dev/null || echo 0) > 1 )); then
    run_step distributed 120 "$PY" -m pytest -q -p no:cacheprovider "${TIMEOUT_OPT[@]}" -m gpu tests/distributed/test_nccl_gpu.py
else
    echo "distributed SKIPPED (fewer than two GPUs)" | tee -a "$OUT/summary.txt"
fi
run_step host 40 "$PY" benchmarks/gpu_host_overhead.py --steps 50 --rounds 3 --json "$OUT/host_overhead.json"

echo "device check on $DEV: $([[ $FAILED == 0 ]] && echo PASSED || echo FAILED); logs in $OUT" | tee -a "$OUT/summary.txt"
exit $FAILED
