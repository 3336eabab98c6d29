#!/usr/bin/env bash
# The shared real-GPU harness's bundle (../shared/tools/wgpu-bench/make-bundle.sh) plus loop.mjs: the
# plugin's own WebGPU backend and sampler (test/bench/wgpu/loop.ts, bundled by build-loop.mjs), which
# the bundle's run.sh runs after bench.mjs, so one device call times both. From the project root:
#   bash test/bench/wgpu/make-bundle.sh [BUNDLE_DIR]        (default .wgpu-bundle, git-ignored)
# On the GPU machine, as the harness says:  bash .wgpu-bundle/run.sh  -> $OUT/wgpu.json, $OUT/wgpu-loop.json.
# Without a GPU (this machine's SwiftShader through Chromium's Vulkan ICD; slow, so the tiny model):
#   bash test/bench/wgpu/loop-local.sh
set -euo pipefail
HARNESS=${WGPU_HARNESS:-../shared/tools/wgpu-bench}
B=${1:-.wgpu-bundle}
bash "$HARNESS/make-bundle.sh" "$B"
node test/bench/wgpu/build-loop.mjs "$B/loop.mjs"
# run.sh runs bench.mjs; have it run loop.mjs after it, in the same unpacked work dir (before the dir is
# removed), with its own exit code: the script exits non-zero when either failed.
anchor='[ "${WGPU_KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"'
grep -qF "$anchor" "$B/run.sh" || { echo "the harness's run.sh changed: cannot add loop.mjs" >&2; exit 1; }
loop='timeout --signal=TERM --kill-after=10 "${LOOP_HARD_TIMEOUT_S:-230}" ./bin/node loop.mjs; lrc=$?; say "loop exit code $lrc; JSON: $OUT/wgpu-loop.json"; [ "$rc" = 0 ] && rc=$lrc'
awk -v line="$loop" -v anchor="$anchor" '$0 == anchor { print line } { print }' "$B/run.sh" > "$B/run.sh.new"
mv -f "$B/run.sh.new" "$B/run.sh" && chmod +x "$B/run.sh"
grep -q 'loop.mjs; lrc' "$B/run.sh" || { echo "could not add loop.mjs to run.sh" >&2; exit 1; }
du -sh "$B"
