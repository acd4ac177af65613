/**
 * The web client's Content-Security-Policy, strict: no `'unsafe-inline'`. The page's inline script and style block
 * are allowed by their SHA-256, computed from the page as it is served (so editing the page keeps its policy right
 * without a list kept by hand); `'self'` lets the page import the SDK (`/sdk.js`). WebSockets may go to any `ws:`
 * or `wss:` URL: the page connects to this gateway by default and to a deployed stack's URL when given one.
 * Nothing else loads, nothing may frame the page, and its forms submit nowhere.
 */
import { createHash } from "node:crypto";

const INLINE_SCRIPT = /<script\b(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi;
const INLINE_STYLE = /<style\b[^>]*>([\s\S]*?)<\/style>/gi;

export function webClientCsp(html: string): string {
  return [
    "default-src 'none'",
    `script-src 'self' ${hashesOf(html, INLINE_SCRIPT)}`.trimEnd(),
    `style-src ${hashesOf(html, INLINE_STYLE) || "'none'"}`,
    "connect-src ws: wss:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** `'sha256-…'` of every match's text, as the browser hashes an inline element's content. */
function hashesOf(html: string, pattern: RegExp): string {
  return [...html.matchAll(pattern)]
    .map((match) => `'sha256-${createHash("sha256").update(match[1]!, "utf8").digest("base64")}'`)
    .join(" ");
}
