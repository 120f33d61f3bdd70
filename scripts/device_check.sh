#!/usr/bin/env bash
# GPU check (run on a machine with CUDA): the CUDA-path tests, the training throughput of every
# model, and the smoke run of notebook 00 on the GPU. Writes its logs to $OUT (default build/device).
set -uo pipefail
OUT=${OUT:-build/device}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$OUT/pytest_cuda.txt"
timeout 240 python3 -m facefill.bench --device cuda --batch-size 64 --steps 8 --warmup 3 --csv "$OUT/bench_cuda.csv" 2>&1 | grep -v Warning | tee "$OUT/bench_cuda.txt"
cd notebooks && (time timeout 120 python3 00_context_encoder.py) 2>&1 | tail -8 | tee "../$OUT/notebook00_smoke_cuda.txt"
