#!/usr/bin/env node
// Copies what a game must serve beside its page into a folder of static files (Vite's public/,
// webpack's static folder, an esbuild outdir, or the page's own folder):
//   <dir>/models/...          the default models, only the files each backend downloads
//   <dir>/spritediffusion/... the standalone inference worker and onnxruntime-web's runtime files
//                             (needed with esbuild, Parcel or without a bundler; set assetsBaseUrl to it,
//                             except with Parcel, whose "module" entry looks there by default)
// Usage: npx spritediffusion-assets <dir> [--models-only | --worker-only]
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--'));
const unknown = args.filter((a) => a.startsWith('--') && !['--models-only', '--worker-only'].includes(a));
if (!dir || unknown.length > 0 || args.includes('--help')) {
  console.error('usage: npx spritediffusion-assets <public folder> [--models-only | --worker-only]');
  process.exit(2);
}
const out = resolve(dir);
const copied = [];
if (!args.includes('--worker-only')) {
  const models = join(pkg, 'models');
  if (!existsSync(join(models, 'model.json'))) {
    console.error(`error: ${models} has no model.json; reinstall spritediffusion (the package ships its models)`);
    process.exit(1);
  }
  cpSync(models, join(out, 'models'), { recursive: true });
  copied.push(`${join(out, 'models')}/ (modelUrl default: 'models/model.json', WASM: 'models/fast/model.json')`);
}
if (!args.includes('--models-only')) {
  const worker = join(pkg, 'dist', 'standalone');
  const target = join(out, 'spritediffusion');
  mkdirSync(target, { recursive: true });
  for (const f of readdirSync(worker).filter((f) => /\.(js|mjs|wasm)$/.test(f))) {
    cpSync(join(worker, f), join(target, f));
  }
  copied.push(
    `${target}/ (set assetsBaseUrl: 'spritediffusion/' when your bundler does not emit the worker; Parcel needs nothing)`,
  );
}
for (const line of copied) console.log(`copied ${line}`);
