#!/usr/bin/env bash
# Rebuilds test/fixtures/tiny: a deliberately tiny model (widths 8,16) trained for a
# few dozen steps, used by browser and CLI tests where Chromium's software WebGPU is slow.
set -euo pipefail
DATA=${DATA:-training/.cache/dcss-32.npz}
rm -rf /tmp/sd-tiny
node training/py.mjs train --data "$DATA" --out /tmp/sd-tiny --steps 60 --batch 32 --widths 8,16 --emb-dim 32 \
  --lr 0.003 --warmup 10 --sample-every 0 --ckpt-every 1000
node training/py.mjs export --run /tmp/sd-tiny --out test/fixtures/tiny --name tiny --steps 3
