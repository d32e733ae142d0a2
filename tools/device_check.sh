#!/usr/bin/env bash
# Everything a lent GPU is for, in one device call (a lease is 15 minutes, start-up included):
#   1. the CUDA tests (tests/test_cuda.py: GPU masks = CPU masks, training steps under bf16 autocast, data workers);
#   2. the embedded default model's tracking speed on the GPU (python -m benchmarks.video --default-model);
#   3. a time-boxed fine-tune of the default model (samstream finetune-default), weights brought back.
# From the repository root, with the device tool:
#   run(command="bash tools/device_check.sh 5", timeout_s=560)      # 5 = training minutes
# It needs no package beyond the device image's (torch, numpy, pillow, safetensors, scipy, tqdm, opencv): PyAV
# is missing there, so the demo clip is decoded with OpenCV (here, with the package's own reader).
# Each part runs even if one before it failed.
# Back under $OUT: log.txt, bench.json, and the fine-tune's model.safetensors, finetune.json, metrics.jsonl
# and loss_curves.png. Then, here: samstream eval vos --model <files_at>/model.safetensors (README, Default
# model) against the shipped weights, before shipping anything.
# DEVICE=cpu BATCH=1 REPEAT=1 PROBE=2 bash tools/device_check.sh 0.5: a dry run of the same script here (CUDA tests skip).
set -u
MINUTES=${1:-5}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-16}
REPEAT=${REPEAT:-3}  # benchmark runs per object count (median reported)
PROBE=${PROBE:+--probe-steps $PROBE}  # the fine-tune's probe steps (default: finetune-default's)
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
LOG=$OUT/log.txt
WORKERS=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
FT=$(mktemp -d)  # the fine-tune's run folder (a fresh one: the same --out would resume an earlier run)
LIMIT=$(python3 -c "print(int($MINUTES * 60 + 120))")  # the budget + start-up and saving
{
  date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

  echo "== CUDA tests"
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -rs 2>&1

  echo "== default model on $DEVICE, demo clip"
  python3 - <<'EOF'
import json, pathlib, shutil
import numpy as np
from PIL import Image
d = pathlib.Path("/tmp/demo"); d.mkdir(exist_ok=True)
def frames(path="samstream/assets/demo.mp4"):  # RGB arrays
    try:  # the device image has OpenCV but not PyAV
        import cv2
    except ImportError:
        from samstream.video.sources import open_source
        src = open_source(path)
        yield from (src.read(i) for i in range(src.num_frames))
        return
    cap = cv2.VideoCapture(path)
    while (got := cap.read())[0]:
        yield got[1][..., ::-1]
n = 0
for n, rgb in enumerate(frames(), 1):
    Image.fromarray(np.ascontiguousarray(rgb)).save(d / f"{n - 1:05d}.jpg", quality=95)
shutil.copy("samstream/assets/demo.json", "/tmp/demo.json")
print(n, "frames")
EOF
  timeout 180 python3 -m benchmarks.video --default-model --device "$DEVICE" --clip /tmp/demo --repeat "$REPEAT" \
    --json "$OUT/bench.json" 2>&1

  echo "== fine-tune, $MINUTES minutes, $WORKERS data workers"
  timeout "$LIMIT" python3 -m samstream.cli finetune-default --out "$FT" --minutes "$MINUTES" --device "$DEVICE" \
    --batch-size "$BATCH" --data-workers "$WORKERS" $PROBE 2>&1 | tr '\r' '\n' | grep -v '^train: '
  tail -n 3 "$FT/finetune/metrics.jsonl"
  date
} >"$LOG" 2>&1
for f in "$FT/finetune/model.safetensors" "$FT/finetune.json" "$FT/finetune/metrics.jsonl" \
         "$FT/finetune/loss_curves.png"; do
  [ -f "$f" ] && cp "$f" "$OUT/"
done
tail -n 40 "$LOG"
