// Dev-server pieces shared by the demo's Vite config and the browser-test pages' config.
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

/** Cross-origin isolation: lets onnxruntime-web use SharedArrayBuffer (multi-threaded WASM). */
export const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const MIME: Record<string, string> = { '.json': 'application/json', '.onnx': 'application/octet-stream' };

/** Connect middleware serving `dir` under `prefix` (files only, no directory listing, no path traversal). */
export function serveDir(prefix: string, dir: string) {
  return (req: { url?: string }, res: ServerResponse, next: () => void): void => {
    const url = req.url ?? '';
    if (!url.startsWith(prefix)) {
      next();
      return;
    }
    const rel = decodeURIComponent(url.slice(prefix.length).split('?')[0] ?? '');
    const file = resolve(dir, rel);
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    for (const [k, v] of Object.entries(crossOriginIsolation)) res.setHeader(k, v);
    res.setHeader('Content-Type', MIME[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Content-Length', statSync(file).size);
    createReadStream(file).pipe(res);
  };
}
