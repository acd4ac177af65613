/**
 * What the gateway reads from a WebSocket upgrade request: the CONNECT event's headers and query string
 * (docs/local-gateway.md), the caller's identity, and whether the request is for the stage.
 */

import type { IncomingMessage } from "node:http";
import type { ConnectInput } from "./events";
import { randomBytesFromPool as randomBytes } from "./random-bytes";

/** Upgrade headers that API Gateway's integration event does not carry (captures lack them). */
const DROPPED_HEADERS = new Set(["connection", "upgrade", "content-length"]);

/** `::ffff:127.0.0.1` → `127.0.0.1`. */
export function sourceIpOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? "127.0.0.1";
  return address.startsWith("::ffff:") ? address.slice("::ffff:".length) : address;
}

/** `/dev`, `/dev/` (with any query string) for stage `dev`; nothing else. */
export function isStagePath(rawUrl: string, stage: string): boolean {
  const pathname = rawUrl.split("?")[0];
  return pathname === `/${stage}` || pathname === `/${stage}/`;
}

/** Whether `ws` would accept the request as a WebSocket handshake (so `$connect` is worth running). */
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  const key = req.headers["sec-websocket-key"];
  const version = Number(req.headers["sec-websocket-version"]);
  return (
    req.method === "GET" &&
    req.headers.upgrade?.toLowerCase() === "websocket" &&
    typeof key === "string" &&
    /^[+/0-9A-Za-z]{22}==$/.test(key) &&
    (version === 13 || version === 8)
  );
}

/**
 * Headers (names as the client sent them, last value wins; every value in `multiValueHeaders`) and query
 * string parameters of the CONNECT event. Like API Gateway's edge, it adds `X-Forwarded-For` (appending the
 * caller's address), `X-Forwarded-Port`, `X-Forwarded-Proto` and `X-Amzn-Trace-Id`.
 */
export function connectInputOf(req: IncomingMessage, localPort: number): ConnectInput {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const nameOf = new Map<string, string>(); // lower-case → first spelling seen
  const add = (name: string, value: string) => {
    const lower = name.toLowerCase();
    const key = nameOf.get(lower) ?? name;
    nameOf.set(lower, key);
    headers[key] = value;
    (multiValueHeaders[key] ??= []).push(value);
  };
  const forwardedFor: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (DROPPED_HEADERS.has(lower)) continue;
    if (lower === "x-forwarded-for") forwardedFor.push(value);
    else if (lower !== "x-forwarded-port" && lower !== "x-forwarded-proto") add(name, value);
  }
  add("X-Forwarded-For", [...forwardedFor, sourceIpOf(req)].join(", "));
  add("X-Forwarded-Port", String(localPort));
  add("X-Forwarded-Proto", "http");
  if (!nameOf.has("x-amzn-trace-id")) add("X-Amzn-Trace-Id", traceId());

  const query = (req.url ?? "").split("?").slice(1).join("?");
  if (!query) return { headers, multiValueHeaders };
  const queryStringParameters: Record<string, string> = {};
  const multiValueQueryStringParameters: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(query)) {
    queryStringParameters[key] = value;
    (multiValueQueryStringParameters[key] ??= []).push(value);
  }
  return { headers, multiValueHeaders, queryStringParameters, multiValueQueryStringParameters };
}

/** `Root=1-{epoch seconds hex}-{24 hex}`, the X-Ray trace header API Gateway adds. */
function traceId(): string {
  return `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString("hex")}`;
}
