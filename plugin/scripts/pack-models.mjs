#!/usr/bin/env node
// Copies the default models into plugin/models/ for the npm package (not committed): for each
// model, model.json, update.onnx and the one denoiser file its backend downloads with weights
// 'auto' (WebGPU: fp16, else fp32; WASM: int8), nothing else. Run by `npm pack` (prepack).
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(PKG, '..', 'models');
const OUT = join(PKG, 'models');
/** model.json path under models/, and the weights variants 'auto' tries on its backend, best first. */
const SHIPPED = [
  ['model.json', ['model_fp16', 'model']],
  ['fast/model.json', ['model_int8', 'model_fp16', 'model']],
];

rmSync(OUT, { recursive: true, force: true });
let bytes = 0;
for (const [rel, variants] of SHIPPED) {
  const json = join(SRC, rel);
  const meta = JSON.parse(readFileSync(json, 'utf8'));
  const weights = variants.map((v) => meta.files[v]).find(Boolean);
  const files = [rel, ...[weights, meta.files.update].map((f) => join(dirname(rel), f.path))];
  for (const f of files) {
    mkdirSync(dirname(join(OUT, f)), { recursive: true });
    copyFileSync(join(SRC, f), join(OUT, f));
    bytes += readFileSync(join(OUT, f)).length;
  }
}
console.log(`packed the default models into ${OUT} (${(bytes / 1e6).toFixed(1)} MB)`);
