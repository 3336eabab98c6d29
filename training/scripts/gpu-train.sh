#!/usr/bin/env bash
# Train the default model on one CUDA GPU within a wall-clock budget.
# Used for the shipped model (see models/REPORT.md). Run from the repo root:
#   BUDGET_MIN=7 bash training/scripts/gpu-train.sh
# It probes throughput for a few hundred steps, sizes --steps so the cosine
# learning-rate schedule ends inside the budget, trains, and (when $OUT is set)
# copies the checkpoint (split into <16 MB parts), sample grid, loss curve and log there.
# EXTRA passes more trainer flags to both the probe and the run, e.g. the fast distilled model:
#   EXTRA="--patch 2 --teacher models/model.json" RUN=runs/fast-gpu BUDGET_MIN=6 bash training/scripts/gpu-train.sh
set -euo pipefail
BUDGET_MIN=${BUDGET_MIN:-7}
BATCH=${BATCH:-512}
LR=${LR:-0.001}
DATA=${DATA:-training/.cache/dcss-32.npz}
RUN=${RUN:-runs/gpu}
PY=${PY:-python3}
PROBE_STEPS=${PROBE_STEPS:-300}
EXTRA=${EXTRA:-}
export PYTHONPATH=training PYTHONUNBUFFERED=1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
rm -rf /tmp/sd-probe
mkdir -p "$(dirname "$RUN")"
$PY -m sdtrain.train --data "$DATA" --out /tmp/sd-probe --steps "$PROBE_STEPS" --batch "$BATCH" --lr "$LR" \
  --sample-every 0 --ckpt-every 100000000 $EXTRA
STEPS=$($PY -c "import json,sys; r=json.load(open('/tmp/sd-probe/summary.json'))['images_per_s_last_session']; print(max(100, int(r*$BUDGET_MIN*60/$BATCH*0.93)))")
echo "probe: sizing the run to $STEPS steps for ${BUDGET_MIN} min"
$PY -m sdtrain.train --data "$DATA" --out "$RUN" --steps "$STEPS" --batch "$BATCH" --lr "$LR" \
  --sample-every $((STEPS / 3 + 1)) --ckpt-every 1000 --max-minutes "$BUDGET_MIN" $EXTRA 2>&1 | tee "$RUN.log"
if [ -n "${OUT:-}" ]; then
  split -b 15M -d "$RUN/checkpoint.pt" "$OUT/checkpoint.pt.part"
  cp "$RUN/samples.png" "$RUN/loss.png" "$RUN/summary.json" "$RUN.log" "$OUT/"
  (cd "$RUN" && sha256sum checkpoint.pt) > "$OUT/checkpoint.sha256"
  ls -la "$OUT"
fi
