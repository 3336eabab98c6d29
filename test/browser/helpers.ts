/**
 * Shared helpers for the browser suite: start the demo's Vite dev server on a free port,
 * launch the system Chromium through playwright-core, and collect console/page errors.
 */
import { existsSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { build, createServer, preview, type ViteDevServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEMO_VITE_CONFIG = fileURLToPath(new URL('../../demo-game/vite.config.ts', import.meta.url));

/** Chromium executable: env CHROMIUM_PATH, else the Debian package's /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--enable-unsafe-webgpu',
];

export function hasChromium(): boolean {
  return existsSync(chromiumPath());
}

export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: 90_000,
  });
}

/**
 * For a describe block: before its tests, runs `check` (if given), starts `server` and launches Chromium;
 * after them, closes both. Read `.server` and `.browser` inside the tests and hooks.
 */
export function serverAndChromium(
  server: () => Promise<DemoServer>,
  check?: () => void,
): { readonly server: DemoServer; readonly browser: Browser } {
  const env = {} as { server: DemoServer; browser: Browser };
  beforeAll(async () => {
    check?.();
    env.server = await server();
    env.browser = await launchChromium();
  });
  afterAll(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  return env;
}

/** Ask the OS for a free localhost TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

export interface DemoServer {
  server: ViteDevServer;
  /** Base URL with trailing slash, e.g. http://127.0.0.1:41234/ */
  url: string;
  close(): Promise<void>;
}

/** Start a Vite dev server from a config file on a free localhost port. */
async function startViteServer(configFile: string): Promise<DemoServer> {
  const port = await freePort();
  const server = await createServer({
    configFile,
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port, strictPort: true, open: false },
  });
  await server.listen();
  const url = `http://127.0.0.1:${port}/`;
  return { server, url, close: () => server.close() };
}

/** Start the demo-game Vite dev server (the same config `npm start` uses) on a free port. */
export function startDemoServer(): Promise<DemoServer> {
  return startViteServer(DEMO_VITE_CONFIG);
}

export interface ErrorLog {
  /** console.error messages and uncaught page errors, in order. */
  errors: string[];
}

/** Record console errors and uncaught exceptions of a page. */
export function collectErrors(page: Page): ErrorLog {
  const log: ErrorLog = { errors: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      log.errors.push(`console.error: ${msg.text()}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => {
    log.errors.push(`pageerror: ${err.stack ?? err.message}`);
  });
  page.on('requestfailed', (req) => {
    log.errors.push(`requestfailed: ${req.url()} ${req.failure()?.errorText ?? ''}`);
  });
  return log;
}

export const PAGES_VITE_CONFIG = fileURLToPath(new URL('./pages/vite.config.ts', import.meta.url));

/** Start the Vite dev server of the browser-test pages (test/browser/pages/) on a free port. */
export function startPagesServer(): Promise<DemoServer> {
  return startViteServer(PAGES_VITE_CONFIG);
}

/** `vite build` a config into `outDir`, then serve that build with `vite preview` on a free port. */
async function buildAndPreview(configFile: string, outDir: string): Promise<{ url: string; close(): Promise<void> }> {
  await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const port = await freePort();
  const server = await preview({
    configFile,
    logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port, strictPort: true, open: false },
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.httpServer.close(() => resolve());
      }),
  };
}

/**
 * `vite build` the browser-test pages into `outDir`, then serve that build with `vite preview`
 * (same COOP/COEP headers) on a free port.
 */
export function buildAndPreviewPages(outDir: string): Promise<{ url: string; close(): Promise<void> }> {
  return buildAndPreview(PAGES_VITE_CONFIG, outDir);
}

/**
 * `vite build` the demo game (the `npm run build` config, shipped model included) into `outDir`
 * and serve it with `vite preview` (COOP/COEP headers) on a free port.
 */
export function buildAndPreviewDemo(outDir: string): Promise<{ url: string; close(): Promise<void> }> {
  return buildAndPreview(DEMO_VITE_CONFIG, outDir);
}
