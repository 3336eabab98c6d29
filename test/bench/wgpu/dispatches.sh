#!/usr/bin/env bash
# Dispatches and submits of one sampling step on this machine's software WebGPU (SwiftShader, as
# loop-local.sh): the denoiser and the update graph as shipped against the two merged into one graph.
#   bash test/bench/wgpu/make-bundle.sh && bash test/bench/wgpu/dispatches.sh [MODEL_JSON] [BUNDLE_DIR]
# Env: B (sprites, default 2, guided: 2B denoiser rows), REPS (timed steps), LAYOUT=NCHW (preferredLayout).
set -euo pipefail
MODEL=$(realpath "${1:-models/model.json}")
B=$(cd "${2:-.wgpu-bundle}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp -r "$B/ort" "$B/webgpu" "$W/"
find "$W" -name '*.xz' -exec xz -d {} +
mkdir -p "$W/xdg" && chmod 700 "$W/xdg"
/usr/bin/python3 "$HERE/merge-step.py" "$MODEL" "$W/merged.onnx"
DIR=$(dirname "$MODEL")
FILES=$(/usr/bin/python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['files']; print(m['model']['path'], m['update']['path'])" "$MODEL")
read -r DEN UPD <<<"$FILES"
export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json} XDG_RUNTIME_DIR="$W/xdg"
cd "$W"
node "$HERE/dispatches.mjs" "$DIR/$DEN" "$DIR/$UPD" merged.onnx
