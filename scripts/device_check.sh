#!/usr/bin/env bash
# Device check: every stage's smoke profile end to end on the device (not only the unit tests), then the
# `paper` profile's training-time estimate there; logs and per-stage wall times go to the folder given.
#
#   bash scripts/device_check.sh OUT_DIR                # on a CUDA machine (the GPU of `device`)
#   bash scripts/device_check.sh OUT_DIR --device cpu   # the same as a dry run on this CPU
#
# The stages come from the paper registry (facefill/papers.py); FACEFILL_DEVICE makes every `device: auto`
# of params.yaml resolve to the device; outputs and checkpoints go under OUT_DIR, never into reports/ or models/.
set -uo pipefail
OUT=${1:?usage: bash scripts/device_check.sh OUT_DIR [--device cpu|cuda]}
DEV=cuda
if [ "${2:-}" = "--device" ]; then DEV=${3:?--device needs cpu or cuda}; fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FACEFILL_DEVICE=$DEV
{
  echo "device check $(date -u +%FT%TZ), device=$DEV"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
} | tee "$OUT/device.txt"
if [ "$DEV" = cuda ]; then
  timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$OUT/pytest_cuda.txt"
fi
status=0
echo "stage seconds rc" > "$OUT/stages.txt"
for stage in $(python3 -c "from facefill.papers import NOTEBOOKS; print(' '.join(NOTEBOOKS))"); do
  nb=$(python3 -c "from facefill.papers import NOTEBOOKS; print(NOTEBOOKS['$stage'])")
  t0=$(date +%s)
  timeout 1200 python3 -m facefill.pipeline run "$stage" --profile smoke --output-dir "$OUT/smoke/$nb" \
    --checkpoint-dir "$OUT/models/$nb" > "$OUT/smoke_$stage.log" 2>&1
  rc=$?
  echo "$stage $(( $(date +%s) - t0 )) $rc" | tee -a "$OUT/stages.txt"
  [ $rc -eq 0 ] || { status=1; tail -5 "$OUT/smoke_$stage.log"; }
done
timeout 900 python3 -m facefill.pipeline estimate --profile paper --device "$DEV" > "$OUT/estimate_paper_$DEV.txt" 2>&1 \
  || { status=1; tail -5 "$OUT/estimate_paper_$DEV.txt"; }
tail -3 "$OUT/estimate_paper_$DEV.txt"
exit $status
