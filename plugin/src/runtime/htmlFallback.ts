/**
 * A web page where a file should be: Vite's dev server and single-page-app hosts (Netlify, Vercel,
 * GitHub Pages 404 pages) answer a request for a missing file with the game's index.html or an error
 * page, often with HTTP 200. Parsers then fail with their own symptom (`Unexpected token '<'`, `expected
 * magic word 00 61 73 6d, found 3c 21 64 6f`); these helpers let the error say what happened instead.
 */

/** Whether an answer is an HTML page: its content type, or a body that starts like one. */
export function isHtmlAnswer(contentType: string | null, head: string | Uint8Array): boolean {
  if (contentType && /text\/html/i.test(contentType)) return true;
  const text = typeof head === 'string' ? head.slice(0, 64) : new TextDecoder().decode(head.subarray(0, 64));
  return /^\s*<(!doctype|html|head|body|!--)/i.test(text);
}

/** The sentence for a file answered with an HTML page. */
export function htmlFallbackMessage(url: string, contentType: string | null): string {
  return (
    `${url} answered with an HTML page${contentType ? ` (${contentType})` : ''}, which servers send in place of ` +
    'a missing file: the file is not deployed at that URL'
  );
}
