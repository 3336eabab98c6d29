#!/usr/bin/env bash
# Runs the bundle's loop.mjs on this machine's software WebGPU (SwiftShader through the Vulkan ICD that
# Debian's chromium ships; needs libvulkan1): a check that the bundle works before a GPU session, not a
# timing. Default: the tiny test model, 2 sprites, 3 DDIM steps, capture on and off.
#   bash test/bench/wgpu/make-bundle.sh && bash test/bench/wgpu/loop-local.sh [BUNDLE_DIR]
# Result: $OUT/wgpu-loop.json (OUT default /tmp).
set -euo pipefail
B=$(cd "${1:-.wgpu-bundle}" && pwd)
PROJ=$PWD
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp -r "$B/ort" "$B/webgpu" "$B/loop.mjs" "$W/"
find "$W" -name '*.xz' -exec xz -d {} +
mkdir -p "$W/models" "$W/xdg" && chmod 700 "$W/xdg"
cp -r "$PROJ/test/fixtures/tiny" "$W/models/tiny"
export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json} XDG_RUNTIME_DIR="$W/xdg"
cd "$W"
LOOP_MODELS=${LOOP_MODELS:-tiny=models/tiny} LOOP_VARIANTS=${LOOP_VARIANTS:-tiny-fp32} LOOP_SPRITES=${LOOP_SPRITES:-2} \
  LOOP_STEPS=${LOOP_STEPS:-3} LOOP_REPS=${LOOP_REPS:-2} OUT=${OUT:-/tmp} node loop.mjs
