#!/usr/bin/env bash
# One GPU session, start to finish, inside a wall-clock budget: train the wide default (WebGPU) model,
# distil the fast (WASM) student from it, and score both beside the models in models/ with the
# project's evaluator. Run from the repo root on a CUDA machine with the dataset .npz at $DATA:
#   TOTAL_S=540 bash training/scripts/gpu-session.sh
# Every stage is sized from what is left of TOTAL_S (the probe measures images/s so each cosine
# learning-rate schedule ends inside its share). When $OUT is set, each stage's results are packed
# there as soon as the stage ends (tar parts under 16 MB), so a session cut short still returns
# what it finished:
#   teacher.tar.part*  runs/gpu-teacher/{checkpoint.pt (EMA only: export, --init-from, --teacher), *.png, log}
#   student.tar.part*  runs/gpu-student/{checkpoint.pt (full, resumable), *.png, log}
#   eval.tar           runs/gpu-eval/{eval.json, sample grids}
# Unpack here with: cat $DIR/teacher.tar.part* | tar x   (and the same for student, eval).
# Try it on a CPU with tiny settings first:
#   TOTAL_S=120 TEACH_WIDTHS=8,16,32 STUDENT_WIDTHS=8,16,32 STUDENT_REFINE=8 STUDENT_INIT= \
#     EVAL_PER_CATEGORY=4 EVAL_EPOCHS=1 bash training/scripts/gpu-session.sh
set -uo pipefail
T0=$(date +%s)
TOTAL_S=${TOTAL_S:-540}
DATA=${DATA:-training/.cache/dcss-32.npz}
PY=${PY:-python3}
TEACH_WIDTHS=${TEACH_WIDTHS:-64,128,256}
TEACH_BATCH=${TEACH_BATCH:-1024}
TEACH_LR=${TEACH_LR:-0.001}
STUDENT_WIDTHS=${STUDENT_WIDTHS:-32,64,128}
STUDENT_REFINE=${STUDENT_REFINE:-32}
STUDENT_BATCH=${STUDENT_BATCH:-512}
STUDENT_LR=${STUDENT_LR:-0.0005}
STUDENT_INIT=${STUDENT_INIT-models/fast/model.json}
# Seconds kept back after the teacher for the student, the evaluation and packing.
STUDENT_S=${STUDENT_S:-140}
EVAL_S=${EVAL_S:-70}
EVAL_PER_CATEGORY=${EVAL_PER_CATEGORY:-64}
EVAL_EPOCHS=${EVAL_EPOCHS:-15}
PROBE_STEPS=${PROBE_STEPS:-100}
# Fixed step counts skip the probe (a probe's rate includes start-up and undercounts a GPU's pace).
TEACH_STEPS=${TEACH_STEPS:-}
STUDENT_STEPS=${STUDENT_STEPS:-}
# Continue a teacher: start from this checkpoint's EMA weights (fresh optimizer and schedule).
TEACH_INIT=${TEACH_INIT:-}
# Self-attention heads at the teacher's lowest resolution (empty or 0: none). Zero-initialised blocks, so
# they can be added to a TEACH_INIT checkpoint that has none.
TEACH_ATTENTION=${TEACH_ATTENTION:-}
TEACH_WARMUP=${TEACH_WARMUP:-500}
T_RUN=runs/gpu-teacher
S_RUN=runs/gpu-student
E_DIR=runs/gpu-eval
export PYTHONPATH=training PYTHONUNBUFFERED=1

left() { echo $((TOTAL_S - ($(date +%s) - T0))); }
say() { echo "[gpu-session +$(($(date +%s) - T0))s] $*"; }

# Probe images/s for a configuration, then print the step count that fits SECONDS.
size_steps() { # SECONDS BATCH ARGS...
  local secs=$1 batch=$2
  shift 2
  rm -rf /tmp/sd-probe
  $PY -m sdtrain.train --data "$DATA" --out /tmp/sd-probe --steps "$PROBE_STEPS" --batch "$batch" \
    --sample-every 0 --ckpt-every 100000000 "$@" >/tmp/sd-probe.log 2>&1 || { cat /tmp/sd-probe.log >&2; return 1; }
  $PY -c "import json; r=json.load(open('/tmp/sd-probe/summary.json'))['images_per_s_last_session']; \
print(max(50, int(r * $secs / $batch * 0.92)))"
}

pack() { # NAME DIR...
  [ -n "${OUT:-}" ] || return 0
  local name=$1
  shift
  tar cf "/tmp/$name.tar" "$@" && split -b 15M -d "/tmp/$name.tar" "$OUT/$name.tar.part" && rm -f "/tmp/$name.tar"
  say "packed $name: $(ls "$OUT" | grep -c "^$name.tar.part") part(s)"
}

$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
rm -rf "$T_RUN" "$S_RUN" "$E_DIR"
mkdir -p runs

# ---- 1. the teacher: the wide default model -------------------------------------------------
TEACH_ARGS=(--widths "$TEACH_WIDTHS" --lr "$TEACH_LR" --warmup "$TEACH_WARMUP")
# A continued teacher trains every layer with the from-scratch EMA (not the fine-tune defaults).
[ -n "$TEACH_INIT" ] && TEACH_ARGS+=(--init-from "$TEACH_INIT" --freeze none --ema-decay 0.999)
[ -n "$TEACH_ATTENTION" ] && [ "$TEACH_ATTENTION" != 0 ] && TEACH_ARGS+=(--attention "$TEACH_ATTENTION")
secs=$(($(left) - STUDENT_S - EVAL_S - 25))
steps=${TEACH_STEPS:-$(size_steps "$secs" "$TEACH_BATCH" "${TEACH_ARGS[@]}")} || exit 1
say "teacher: $steps steps of $TEACH_BATCH in ~${secs}s"
mins=$($PY -c "print(max(0.2, ($(left) - $STUDENT_S - $EVAL_S - 15) / 60))")
$PY -m sdtrain.train --data "$DATA" --out "$T_RUN" --steps "$steps" --batch "$TEACH_BATCH" "${TEACH_ARGS[@]}" \
  --sample-every 0 --ckpt-every 1000 --max-minutes "$mins" 2>&1 | tee "$T_RUN.log" | grep -v '^train ' || true
# The full checkpoint (weights, EMA, optimizer) is ~16 bytes a parameter; the EMA weights alone are
# what export, evaluation, distillation and --init-from read, at a quarter of that.
$PY - "$T_RUN/checkpoint.pt" <<'EOF'
import sys, torch
p = sys.argv[1]
ck = torch.load(p, map_location="cpu", weights_only=False)
lean = {k: v for k, v in ck.items() if k not in ("model", "opt", "gen_states", "cpu_rng")}
lean["lean"] = "EMA weights only: export, evaluate, --teacher and --init-from read it; --resume cannot"
torch.save(lean, p + ".lean")
EOF
mv "$T_RUN/checkpoint.pt.lean" "$T_RUN/checkpoint.pt"
cp "$T_RUN.log" "$T_RUN/train.log"
pack teacher "$T_RUN"

# ---- 2. the student: the fast WASM model, distilled from the teacher ------------------------
S_ARGS=(--patch 2 --widths "$STUDENT_WIDTHS" --input-skip --refine "$STUDENT_REFINE" --up-conv-first
  --teacher "$T_RUN/checkpoint.pt" --teacher-guidance 3 --lr "$STUDENT_LR" --warmup 100)
[ -n "$STUDENT_INIT" ] && S_ARGS+=(--init-from "$STUDENT_INIT" --freeze none --ema-decay 0.999)
secs=$(($(left) - EVAL_S - 20))
steps=${STUDENT_STEPS:-$(size_steps "$secs" "$STUDENT_BATCH" "${S_ARGS[@]}")} || exit 1
say "student: $steps steps of $STUDENT_BATCH in ~${secs}s"
mins=$($PY -c "print(max(0.2, ($(left) - $EVAL_S - 10) / 60))")
$PY -m sdtrain.train --data "$DATA" --out "$S_RUN" --steps "$steps" --batch "$STUDENT_BATCH" "${S_ARGS[@]}" \
  --sample-every 0 --ckpt-every 1000 --max-minutes "$mins" 2>&1 | tee "$S_RUN.log" | grep -v '^train ' || true
cp "$S_RUN.log" "$S_RUN/train.log"
pack student "$S_RUN"

# ---- 3. both scored beside the shipped models, one classifier ---------------------------------
say "evaluating with $(left)s left"
$PY -m sdtrain.evaluate --run "$T_RUN/checkpoint.pt" --settings ddim25-g3-e1 \
  --also "$S_RUN/checkpoint.pt=ddim25-e1" --also "models/model.json=ddim25-g3-e1" \
  --also "models/fast/model.json=ddim25-e1" --per-category "$EVAL_PER_CATEGORY" --epochs "$EVAL_EPOCHS" \
  --out "$E_DIR" 2>&1 | tee "$E_DIR.log" | grep -v '^\(classifier\|generate\) ' || true
[ -d "$E_DIR" ] && cp "$E_DIR.log" "$E_DIR/eval.log" && pack eval "$E_DIR"
say "done"
