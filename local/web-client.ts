/**
 * The browser chat client (web/index.html), served by the local gateway at `GET /` (and `/index.html`), and the SDK it
 * is built on at `/sdk.js`. One static file, no build step; the only change on the way out is the stage, put in its
 * `chat-stage` meta tag so the page connects to `ws://{the host it was loaded from}/{stage}` by default. Its
 * Content-Security-Policy allows its own inline script by hash (web-client-csp.ts). Every other
 * non-`@connections` request still gets API Gateway's 403.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { servedSdk } from "./sdk-bundle";
import { webClientCsp } from "./web-client-csp";

export const WEB_CLIENT_FILE = join(__dirname, "..", "web", "index.html");
const WEB_PATHS = new Set(["/", "/index.html"]);
/** The SDK the page is built on, bundled on the fly from `sdk/` (local/sdk-bundle.ts). */
export const SDK_PATH = "/sdk.js";

/** Serves the page when `req` asks for it; `false` leaves the request to the management API. */
export function serveWebClient(req: IncomingMessage, res: ServerResponse, stage: string): boolean {
  const path = (req.url ?? "/").split("?")[0]!;
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  if (path === SDK_PATH) {
    void serveSdk(req, res);
    return true;
  }
  if (!WEB_PATHS.has(path)) return false;
  // Read per request: editing the page needs a reload, not a gateway restart.
  const html = readFileSync(WEB_CLIENT_FILE, "utf8").replace(
    '<meta name="chat-stage" content="">',
    `<meta name="chat-stage" content="${stage.replace(/[^A-Za-z0-9_-]/g, "")}">`,
  );
  const body = Buffer.from(html);
  res.writeHead(200, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": body.byteLength,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": webClientCsp(html),
  });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}

async function serveSdk(req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const body = Buffer.from((await servedSdk()).code);
    res.writeHead(200, {
      "Content-Type": "text/javascript; charset=utf-8",
      "Content-Length": body.byteLength,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (error) {
    // A syntax error in sdk/ while editing it: say where, rather than serve a stale or empty module.
    const body = Buffer.from(`SDK build failed: ${error instanceof Error ? error.message : String(error)}`);
    res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": body.byteLength });
    res.end(body);
  }
}
