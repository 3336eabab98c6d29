/**
 * URL resolution on the page: relative model and asset URLs resolve against the page's base URL
 * (`document.baseURI`, which honours a `<base href>`), or a `baseUrl` option resolved against it.
 * So a game built with relative paths (Vite's `base: './'`) works from any folder of any host
 * (itch.io, GitHub Pages). The worker receives absolute URLs only: its own `location` is the
 * worker script's, not the page's.
 */
import type { ModelSource } from '../worker/protocol.ts';

/** The page's base URL: `document.baseURI`, else `location.href` (a worker), else localhost. */
export function pageBase(): string {
  const g = globalThis as { document?: { baseURI?: string }; location?: { href?: string } };
  return g.document?.baseURI ?? g.location?.href ?? 'http://localhost/';
}

/** `url` made absolute against `baseUrl` (itself resolved against the page), or the page. */
export function resolveUrl(url: string, baseUrl?: string): string {
  const base = baseUrl === undefined ? pageBase() : new URL(baseUrl, pageBase()).href;
  return new URL(url, base).href;
}

/** Every URL of a model source made absolute (see {@link resolveUrl}). */
export function resolveSource(source: ModelSource, baseUrl?: string): ModelSource {
  if (typeof source === 'string') return resolveUrl(source, baseUrl);
  return { webgpu: resolveUrl(source.webgpu, baseUrl), wasm: resolveUrl(source.wasm, baseUrl) };
}
