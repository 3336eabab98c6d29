/**
 * The plugin as game developers get it: `npm pack` of plugin/, installed from the tarball into a copy
 * of each example game (examples/) outside the workspace, built with the example's own bundler,
 * served by a plain static server and run in Chromium. Each must show a generated sprite with no
 * error, run one inference worker and fetch model.json once; the Vite build also from a subfolder,
 * and the Vite dev server once. Chromium runs with `--enable-unsafe-webgpu` (SwiftShader, a fallback
 * adapter), so every example also checks that backend 'auto' chooses WASM there.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, hasChromium, launchChromium, REPO_ROOT } from './helpers.ts';

const CI = /^(1|true|yes)$/i.test(process.env.CI ?? '');
const run = hasChromium() || CI ? describe : describe.skip;

const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.onnx': 'application/octet-stream',
};

/** A static file server for `dir`, mounted at `prefix` (e.g. '/games/mine/'). */
async function serve(dir: string, prefix = '/'): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (!path.startsWith(prefix)) {
      res.writeHead(404).end();
      return;
    }
    let file = normalize(join(dir, path.slice(prefix.length)));
    if (!file.startsWith(dir + sep) && file !== dir) {
      res.writeHead(403).end();
      return;
    }
    if (path.endsWith('/')) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}${prefix}`, server };
}

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      NEXT_TELEMETRY_DISABLED: '1',
    },
    timeout: 240_000,
  });
}

interface PageResult {
  opaque: number;
  errors: string[];
  /** `backend` events: "wasm: <reason>". */
  backend: string[];
  consoleErrors: string[];
  workers: number;
  modelJsonFetches: number;
}

/** Opens a game and waits for a sprite with generated pixels (or an error). */
async function play(browser: Browser, url: string): Promise<PageResult> {
  const page = await browser.newPage();
  const consoleErrors: string[] = [];
  let modelJsonFetches = 0;
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  page.on('request', (r) => {
    if (r.url().endsWith('/model.json')) modelJsonFetches++;
  });
  page.on('response', (r) => {
    if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.url()}`);
  });
  try {
    await page.goto(url);
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { __spritediffusion?: PageResult }).__spritediffusion;
        return s !== undefined && (s.opaque > 0 || s.errors.length > 0);
      },
      undefined,
      { timeout: 90_000, polling: 200 },
    );
    const state = await page.evaluate(
      () =>
        (window as unknown as { __spritediffusion: Pick<PageResult, 'opaque' | 'errors' | 'backend'> })
          .__spritediffusion,
    );
    return { ...state, consoleErrors, workers: page.workers().length, modelJsonFetches };
  } finally {
    await page.close();
  }
}

run('examples installed from the npm pack tarball', () => {
  let browser: Browser;
  let work: string;
  let tarball: string;
  const servers: Server[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sd-examples-'));
    const out = sh('npm', ['pack', '-w', 'plugin', '--pack-destination', work, '--json'], REPO_ROOT);
    const packed = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, packed[0]?.filename ?? '');
    const files = packed[0]?.files.map((f) => f.path) ?? [];
    expect(files).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']));
    expect(files.some((f) => f.startsWith('src/'))).toBe(false);
    browser = await launchChromium();
  }, 240_000);

  afterAll(async () => {
    for (const s of servers) s.close();
    // The dev server runs under npx: stop the whole process group and wait, before its files go.
    for (const c of children) {
      const exited = new Promise((r) => c.once('exit', r));
      try {
        if (c.pid) process.kill(-c.pid, 'SIGTERM');
      } catch {
        c.kill('SIGTERM');
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    await browser?.close();
    if (work && !process.env.KEEP_EXAMPLES) {
      rmSync(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 300 });
    }
  });

  /** Copies an example next to the tarball, points it at the tarball, installs and builds it. */
  function install(name: string, build = true): string {
    const dir = join(work, name);
    cpSync(join(REPO_ROOT, 'examples', name), dir, {
      recursive: true,
      filter: (src) => !src.includes(`${sep}node_modules`) && !src.includes(`${sep}dist`),
    });
    const pkgPath = join(dir, 'package.json');
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { dependencies: Record<string, string> };
    pkg.dependencies.spritediffusion = `file:${tarball}`;
    writeFileSync(pkgPath, JSON.stringify(pkg, null, 2));
    sh('npm', ['install', '--prefer-offline', '--no-package-lock'], dir);
    if (build) sh('npm', ['run', 'build'], dir);
    return dir;
  }

  /** Serves a folder for the rest of the suite; its URL. */
  async function served(dir: string, prefix = '/'): Promise<string> {
    const { url, server } = await serve(dir, prefix);
    servers.push(server);
    return url;
  }

  /** Plays the game with its copied worker moved away: no pixels, one error, whose message it returns. */
  async function withoutCopiedWorker(dist: string, url: string): Promise<string> {
    renameSync(join(dist, 'spritediffusion'), join(dist, 'elsewhere'));
    try {
      const r = await play(browser, url);
      expect(r.opaque).toBe(0);
      expect(r.errors).toHaveLength(1);
      return r.errors[0] ?? '';
    } finally {
      renameSync(join(dist, 'elsewhere'), join(dist, 'spritediffusion'));
    }
  }

  function expectGenerated(r: PageResult): void {
    expect(r.errors).toEqual([]);
    expect(r.consoleErrors).toEqual([]);
    expect(r.opaque).toBeGreaterThan(0);
    expect(r.workers).toBe(1);
    expect(r.modelJsonFetches).toBe(1);
    // Chromium's only WebGPU adapter here is SwiftShader, a software fallback: 'auto' runs on WASM and says so.
    expect(r.backend).toEqual([expect.stringMatching(/^wasm: .*software fallback/)]);
  }

  it("Vite 5 (the Phaser template's, no worker settings) + Phaser 3.90: stock tsconfig type-checks; five scenes, one worker; served from a subfolder", async () => {
    const dir = install('vite-phaser3');
    sh('npx', ['tsc', '--noEmit'], dir); // the build ran it too; here it is the acceptance check
    const url = await served(join(dir, 'dist'), '/games/my-game/');
    expectGenerated(await play(browser, url));
  }, 360_000);

  it('Vite 8 + Phaser 4 (no worker settings): production build, and the dev server of the installed copy', async () => {
    const dir = install('vite-phaser4');
    const url = await served(join(dir, 'dist'));
    expectGenerated(await play(browser, url));
    const port = await freePort();
    const dev = spawn('npx', ['vite', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
      cwd: dir,
      stdio: 'ignore',
      detached: true, // its own process group, so npx and vite stop together
    });
    children.push(dev);
    const devUrl = `http://127.0.0.1:${port}/`;
    for (let i = 0; i < 100; i++) {
      const ok = await fetch(devUrl).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const r = await play(browser, devUrl);
    expect(r.errors).toEqual([]);
    expect(r.opaque).toBeGreaterThan(0);
    expect(r.workers).toBe(1);
  }, 360_000);

  it('Next.js 16 (Turbopack, static export, the game loaded on the client only) + Phaser 3.90', async () => {
    const dir = install('nextjs-phaser3');
    const url = await served(join(dir, 'dist'));
    expectGenerated(await play(browser, url));
  }, 360_000);

  it('webpack 5 + Phaser 3.90', async () => {
    const dir = install('webpack-phaser3');
    const url = await served(join(dir, 'dist'));
    expectGenerated(await play(browser, url));
  }, 360_000);

  it('Parcel 2 + Phaser 3.90 with the Phaser template\'s settings: the "module" entry runs the copied worker; with package exports on, spritediffusion/served', async () => {
    const dir = install('parcel-phaser3');
    const dist = join(dir, 'dist');
    // Parcel resolves "module" (package exports off) and finds no worker to bundle: no onnxruntime-web in
    // its output, only the standalone worker the copy command put beside the page.
    expect(readdirSync(dist).filter((f) => /\.(wasm|mjs)$/.test(f) || /^ort\./.test(f))).toEqual([]);
    expect(existsSync(join(dist, 'spritediffusion', 'worker.js'))).toBe(true);
    const url = await served(dist);
    expectGenerated(await play(browser, url));
    // Without the copied worker: one error naming the file and the copy command.
    expect(await withoutCopiedWorker(dist, url)).toMatch(
      /spritediffusion\/worker\.js beside the page.*spritediffusion-assets/,
    );

    // With Parcel's package exports on, `spritediffusion/served` is the same entry.
    const pkgPath = join(dir, 'package.json');
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as Record<string, unknown>;
    pkg['@parcel/resolver-default'] = { packageExports: true };
    writeFileSync(pkgPath, JSON.stringify(pkg, null, 2));
    const main = join(dir, 'src', 'main.js');
    const source = readFileSync(main, 'utf8');
    expect(source).toContain("from 'spritediffusion';");
    writeFileSync(main, source.replace("from 'spritediffusion';", "from 'spritediffusion/served';"));
    rmSync(dist, { recursive: true, force: true });
    sh('npm', ['run', 'build'], dir);
    expect(readdirSync(dist).filter((f) => /\.(wasm|mjs)$/.test(f) || /^ort\./.test(f))).toEqual([]);
    expectGenerated(await play(browser, await served(dist)));
  }, 360_000);

  it('Rollup + Phaser 3.90 as the Phaser template builds it (one IIFE script), assetsBaseUrl', async () => {
    const dir = install('rollup-phaser3');
    const url = await served(join(dir, 'dist'));
    expectGenerated(await play(browser, url));
  }, 360_000);

  it('esbuild + Phaser 4 (assetsBaseUrl and the copy command); a missing worker or model is one clear error', async () => {
    const dir = install('esbuild-phaser4');
    const dist = join(dir, 'dist');
    const url = await served(dist);
    expectGenerated(await play(browser, url));
    // Each page is a new browser context (empty cache), so these load from scratch.
    expect(await withoutCopiedWorker(dist, url)).toMatch(/spritediffusion\/worker\.js.*assetsBaseUrl/);
    renameSync(join(dist, 'models'), join(dist, 'elsewhere'));
    const noModel = await play(browser, url);
    expect(noModel.errors).toHaveLength(1);
    expect(noModel.errors[0]).toMatch(/models\/fast\/model\.json: HTTP 404.*modelUrl \/ baseUrl/);
  }, 360_000);

  it('no bundler: native ES modules and an import map, on Phaser 3.60 (the oldest the package supports)', async () => {
    const dir = install('no-bundler');
    const url = await served(dir);
    expectGenerated(await play(browser, url));
  }, 360_000);
});
