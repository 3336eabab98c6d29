#!/usr/bin/env node
// Builds the installable package into plugin/dist/ (not committed):
//   dist/index.js             the browser entry (ESM; idb-keyval stays an import, Phaser is never imported)
//   dist/index.served.js      the same entry for bundlers that ignore package.json "exports" ("main" and
//                             "module"; Parcel by default): its worker is the standalone copy served as files
//   dist/**/*.d.ts            declarations (tsc), including the Phaser.Scene augmentation
//   dist/worker/worker.js     the inference worker for bundlers: onnxruntime-web stays an import, so the
//                             game's bundler resolves it and emits its runtime files the way ORT supports
//   dist/standalone/          the same worker with onnxruntime-web bundled in (both builds, one file) and
//                             its runtime .mjs/.wasm files beside it, for esbuild and pages without a bundler
// The entry creates the worker with `new Worker(new URL('./worker/worker.js', import.meta.url))`, the
// pattern Vite and webpack 5 follow. Otherwise dist/standalone/ is served (copied by
// `npx spritediffusion-assets`) and the `assetsBaseUrl` option points at it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(PKG, 'dist');
const require = createRequire(join(PKG, 'package.json'));
const started = Date.now();

rmSync(DIST, { recursive: true, force: true });

/**
 * `onnxruntime-web/<file>?url` (Vite's asset import in the source). Standalone: a copy of the file
 * beside the worker. Bundler flavour: no URL, so onnxruntime-web (left as an import for the game's
 * bundler) finds its files itself, the way it is built to be bundled.
 */
function ortAssetUrls(outdir) {
  return {
    name: 'ort-asset-urls',
    setup(build) {
      build.onResolve({ filter: /^onnxruntime-web\/.*\?url$/ }, (args) => ({
        path: args.path.slice(0, -'?url'.length),
        namespace: 'ort-asset',
      }));
      build.onLoad({ filter: /.*/, namespace: 'ort-asset' }, (args) => {
        if (!outdir) return { contents: 'export default null;', loader: 'js' };
        const file = require.resolve(args.path);
        const name = basename(file);
        copyFileSync(file, join(outdir, name));
        return { contents: `export default new URL('./${name}', import.meta.url).href;`, loader: 'js' };
      });
    },
  };
}

/** The worker URL in the source (`../worker/worker.ts`) -> the built worker beside dist/index.js. */
const workerUrl = {
  name: 'worker-url',
  setup(build) {
    build.onLoad({ filter: /runtime[\\/]bundledWorker\.ts$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      const opts = "{ type: 'module', name: 'spritediffusion' }";
      const from = `new Worker(new URL('../worker/worker.ts', import.meta.url), ${opts})`;
      if (!src.includes(from)) throw new Error(`${args.path} no longer creates its worker with ${from}`);
      // Vite's dev server pre-bundles an installed copy into node_modules/.vite/deps/, where
      // './worker/worker.js' does not exist: there the installed file is one folder over. That path is
      // built at runtime, so bundlers only follow the literal `new Worker(new URL(...))` pattern.
      const devCopy =
        "new URL(['..', '..', 'spritediffusion', 'dist', 'worker', 'worker.js'].join('/'), import.meta.url)";
      const to =
        `(import.meta.url.includes('/node_modules/.vite/') ? new Worker(${devCopy}, ${opts}) : ` +
        `new Worker(new URL('./worker/worker.js', import.meta.url), ${opts}))`;
      return { contents: src.replace(from, to), loader: 'ts' };
    });
  },
};

const common = { bundle: true, format: 'esm', platform: 'browser', target: 'es2020', logLevel: 'warning' };

await esbuild.build({
  ...common,
  entryPoints: { index: join(PKG, 'src', 'index.ts') },
  outdir: DIST,
  external: ['idb-keyval', 'phaser', 'onnxruntime-web'],
  plugins: [workerUrl],
  sourcemap: true,
});

/** The "main"/"module" entry: the served worker (runtime/servedWorker.ts) instead of the bundled one. */
const servedWorker = {
  name: 'served-worker',
  setup(build) {
    build.onResolve({ filter: /[\\/]bundledWorker\.ts$/ }, (args) => ({
      path: join(args.resolveDir, args.path.replace(/bundledWorker\.ts$/, 'servedWorker.ts')),
    }));
  },
};

// For bundlers that ignore package.json "exports" (Parcel by default): no worker for them to follow.
await esbuild.build({
  ...common,
  entryPoints: { 'index.served': join(PKG, 'src', 'index.ts') },
  outdir: DIST,
  external: ['idb-keyval', 'phaser', 'onnxruntime-web'],
  plugins: [servedWorker],
  sourcemap: true,
});
if (readFileSync(join(DIST, 'index.served.js'), 'utf8').includes('import.meta')) {
  throw new Error('dist/index.served.js refers to import.meta: a bundler would follow it to the bundled worker');
}

// The worker for bundlers (Vite, webpack): onnxruntime-web stays an import the game's bundler resolves.
await esbuild.build({
  ...common,
  entryPoints: { worker: join(PKG, 'src', 'worker', 'worker.ts') },
  outdir: join(DIST, 'worker'),
  external: ['onnxruntime-web', 'onnxruntime-web/*'],
  plugins: [ortAssetUrls(null)],
});

// The standalone worker (esbuild, no bundler: served as copied files): onnxruntime-web bundled in,
// its runtime files beside it. Not minified: onnxruntime-web's `/* webpackIgnore */` comments stay.
const STANDALONE = join(DIST, 'standalone');
mkdirSync(STANDALONE, { recursive: true });
await esbuild.build({
  ...common,
  entryPoints: { worker: join(PKG, 'src', 'worker', 'worker.ts') },
  outdir: STANDALONE,
  plugins: [ortAssetUrls(STANDALONE)],
  // onnxruntime-web's bundles reference Node modules behind runtime checks; the browser never loads them.
  external: ['module', 'worker_threads', 'node:*', 'fs', 'path', 'url', 'os', 'crypto'],
});

const tsc = spawnSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(PKG, 'tsconfig.build.json')],
  {
    stdio: 'inherit',
  },
);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// tsc keeps the source's `.ts` specifiers in declarations; a game's stock tsconfig cannot read those.
for (const file of listFiles(DIST).filter((f) => f.endsWith('.d.ts'))) {
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace(/(['"])(\.{1,2}\/[^'"]+)\.ts\1/g, '$1$2.js$1'));
}
for (const f of ['worker/worker.js', 'standalone/worker.js']) {
  if (!existsSync(join(DIST, f))) throw new Error(`no dist/${f}`);
}
console.log(`built ${DIST} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

function listFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}
