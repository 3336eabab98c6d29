/**
 * Why onnxruntime-web could not start, in words a developer can act on. Its own errors for a badly
 * deployed runtime file name a symptom (`Failed to fetch dynamically imported module`, `expected magic
 * word 00 61 73 6d, found 3c 21 64 6f`, `BufferSource argument is empty`) but not the cause. After such a
 * failure the worker fetches each runtime file once more and says what is wrong with it: not there
 * (an HTTP error), an HTML page in its place (a server's fallback page for a missing file), a module
 * script served with a MIME type browsers refuse to run, or a .wasm that is not WebAssembly.
 *
 * The files checked: the URLs the worker set (the standalone worker's copies), URLs the error names,
 * and the .mjs/.wasm requests this worker made (its resource timing entries; a bundler's emitted files).
 */

import { UNMETERED } from './downloadMeter.ts';
import { htmlFallbackMessage, isHtmlAnswer } from './htmlFallback.ts';

/** Enough of `fetch` for the checks (tests pass a fake). */
export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** The first bytes of every WebAssembly module: `\0asm`. */
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** .mjs/.js/.wasm URLs named in an error message. */
export function urlsInError(text: string): string[] {
  const re = /https?:\/\/[^\s'"()<>,]+?\.(?:m?js|wasm)(?:\?[^\s'"()<>,]*?)?(?=[.;:]?(?:[\s'"()<>,]|$))/g;
  return [...text.matchAll(re)].map((m) => m[0]);
}

/** The .mjs/.wasm files this realm requested (resource timing), e.g. the runtime files a bundler emitted. */
export function requestedRuntimeFiles(): string[] {
  const perf = (globalThis as { performance?: { getEntriesByType?: (t: string) => { name: string }[] } }).performance;
  const entries = perf?.getEntriesByType?.('resource') ?? [];
  return entries.map((e) => e.name).filter((name) => /\.(?:mjs|wasm)(?:\?.*)?$/.test(name));
}

/** A problem with a runtime file; `definite` when the answer itself shows it (not a failed request). */
export interface FileProblem {
  text: string;
  definite: boolean;
}

/** What is wrong with one runtime file, or null when it looks right. */
export async function checkRuntimeFile(url: string, fetchFn: FetchLike, timeoutMs = 5000): Promise<FileProblem | null> {
  const init: RequestInit = { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) };
  UNMETERED.add(init); // a diagnosis, not part of the load's download
  let res: Response;
  try {
    res = await fetchFn(url, init);
  } catch (e) {
    return { text: `${url} could not be fetched (${e instanceof Error ? e.message : String(e)})`, definite: false };
  }
  try {
    const text = await answerProblem(url, res);
    return text === null ? null : { text, definite: true };
  } finally {
    if (!res.bodyUsed) await res.body?.cancel().catch(() => {});
  }
}

/** What the server's answer for a runtime file shows is wrong with it, or null. */
async function answerProblem(url: string, res: Response): Promise<string | null> {
  const type = res.headers.get('content-type') ?? '';
  if (!res.ok) return `${url} answered HTTP ${res.status}: the file is not deployed at that URL`;
  if (isHtmlAnswer(type, '')) return htmlFallbackMessage(url, type);
  if ((url.split(/[?#]/)[0] ?? url).endsWith('.wasm')) {
    const head = await firstBytes(res, 16);
    if (head.length === 0) return `${url} is empty`;
    if (isHtmlAnswer(null, head)) return htmlFallbackMessage(url, type);
    if (WASM_MAGIC.some((b, i) => head[i] !== b)) {
      const hex = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
      return `${url} is not WebAssembly (it starts with ${hex}): the server sends another file at that URL`;
    }
    return null;
  }
  if (!/javascript|ecmascript/i.test(type)) {
    return (
      `${url} is served as ${type ? `"${type}"` : 'no content type'}, and browsers run module scripts only with ` +
      'a JavaScript MIME type: map .mjs to text/javascript on the server (nginx: `text/javascript mjs;` in ' +
      'mime.types; Apache: `AddType text/javascript .mjs`)'
    );
  }
  return null;
}

/** Up to `n` bytes from the start of a response body; the rest is not downloaded. */
async function firstBytes(res: Response, n: number): Promise<Uint8Array> {
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(await res.arrayBuffer()).subarray(0, n);
  const out = new Uint8Array(n);
  let got = 0;
  try {
    while (got < n) {
      const { value, done } = await reader.read();
      if (done || !value) break;
      const take = Math.min(n - got, value.length);
      out.set(value.subarray(0, take), got);
      got += take;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return out.subarray(0, got);
}

/**
 * What is wrong with onnxruntime-web's runtime files after `cause` stopped it, as one sentence to append
 * to the error, or null when every file checked looks right (the failure lies elsewhere).
 *
 * @param known URLs the worker set for the runtime files (empty when the bundler placed them)
 */
export async function diagnoseRuntimeFiles(
  cause: unknown,
  known: readonly string[],
  fetchFn: FetchLike = (url, init) => fetch(url, init),
): Promise<string | null> {
  const text = cause instanceof Error ? cause.message : String(cause);
  const named = urlsInError(text);
  const urls = [...new Set([...known, ...named, ...requestedRuntimeFiles()])];
  const found: string[] = [];
  for (const url of urls) {
    const problem = await checkRuntimeFile(url, fetchFn).catch(
      (e: unknown): FileProblem => ({
        text: `${url} broke off while being read (${e instanceof Error ? e.message : String(e)})`,
        definite: false,
      }),
    );
    // A request that failed here (offline, a timeout) blames the file only when the error named it.
    if (problem && (problem.definite || named.includes(url))) found.push(problem.text);
  }
  if (found.length === 0) return null;
  return (
    `onnxruntime-web's runtime files are not served right: ${found.join('; ')}. They come from your ` +
    "bundler's output, or from the folder `npx spritediffusion-assets` copies (which assetsBaseUrl names)"
  );
}
