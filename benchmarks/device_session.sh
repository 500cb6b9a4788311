#!/usr/bin/env bash
# The GPU checks of issue 5 in one call of the device tool (a GPU machine whose python3 has torch):
#   1. the toy fit on CUDA against the same fit on that machine's CPU (both against truth), then the
#      timings of the toy and 512x512 to convergence and per iteration with peak device memory, and the
#      per-pixel fit's time (benchmarks/bench_device.py --compare --pixelfit);
#   2. the core test suite with device "auto", i.e. on CUDA there;
#   3. issue 19's figures: the toy to convergence and per iteration against the emulators' bound, and
#      1024x1024x375 to convergence with its peak memory (benchmarks/bench_speed.py, new solver alone:
#      that machine has no git history for the baseline).
# Packages that machine lacks travel as wheels in .whl/ (astropy, pyerfa, astropy-iers-data, xraydb,
# sqlalchemy, platformdirs; 21 MB), fetched here once (its python3 is 3.12):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl astropy==8.0.2 pyerfa==2.0.1.5 astropy-iers-data xraydb==4.5.8 sqlalchemy==2.1.9 platformdirs
# Results land in $OUT (the device tool's return folder) or benchmarks/results.
# Run (device tool): bash benchmarks/device_session.sh     with carry [".whl"]; it took 4-5 minutes on an H200.
# Knobs: SIZES (512,94), REPEATS (3), BENCH_TIMEOUT (330 s), TESTS (tests/core), TEST_TIMEOUT (150 s),
#        SPEED_SIZES (1024), SPEED_TIMEOUT (240 s).
set -u
export PYTHONUNBUFFERED=1
dest=${OUT:-benchmarks/results}
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site || exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'threads', torch.get_num_threads())"
timeout "${BENCH_TIMEOUT:-330}" python3 benchmarks/bench_device.py --device cuda --sizes "${SIZES:-512,94}" \
    --repeats "${REPEATS:-3}" --compare --pixelfit --out "$dest/device_cuda"
echo "bench_device exit $?"
timeout "${TEST_TIMEOUT:-150}" python3 -m pytest -q -p no:cacheprovider ${TESTS:-tests/core} 2>&1 | tee "$dest/pytest_core_cuda.log" | tail -25
echo "pytest exit ${PIPESTATUS[0]}"
timeout "${SPEED_TIMEOUT:-240}" python3 benchmarks/bench_speed.py --baseline "" --threads 1 --repeats "${REPEATS:-3}" \
    --sizes "${SPEED_SIZES:-1024}" --out "$dest/speed_cuda"
echo "bench_speed exit $?"
