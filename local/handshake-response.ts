/**
 * What the handshake answers (docs/local-gateway.md): the status semantics of `$connect`'s
 * outcome, the headers of its result that reach the 101, and the HTTP refusals written on the upgrade socket.
 */
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { HandlerResult } from "../runtime/event";
import { describeError } from "./gateway-log";
import type { Invocation } from "./invocation";

/** A refusal's extra headers, and its body. */
export type RefusalExtras = Record<string, string> & { body?: string };

/** A path other than the stage's. */
export const FORBIDDEN_PATH: RefusalExtras = {
  "x-amzn-ErrorType": "ForbiddenException",
  "Content-Type": "application/json",
  body: '{"message":"Forbidden"}',
};

/**
 * Handshake refusals of the authorizer. API Gateway's WebSocket bodies are not documented; these follow its REST
 * APIs (`{"message":"Unauthorized"}`, `{"message":"Forbidden"}`, and `{"message":null}` for a broken authorizer).
 */
export const AUTHORIZER_REFUSALS: Record<401 | 403 | 500, RefusalExtras> = {
  401: {
    "x-amzn-ErrorType": "UnauthorizedException",
    "Content-Type": "application/json",
    body: '{"message":"Unauthorized"}',
  },
  403: FORBIDDEN_PATH,
  500: {
    "x-amzn-ErrorType": "AuthorizerConfigurationException",
    "Content-Type": "application/json",
    body: '{"message":null}',
  },
};

/** What `$connect`'s outcome means for the handshake: 2xx accepts, any other status refuses with it. */
export type ConnectDecision = { readonly accept: boolean; readonly status: number; readonly note?: string };

export function connectDecision(outcome: Invocation): ConnectDecision {
  switch (outcome.kind) {
    case "no-route":
      return { accept: true, status: 200, note: "no $connect route" };
    case "error":
      return { accept: false, status: 502, note: `handler threw: ${describeError(outcome.error)}` };
    case "timeout":
      return { accept: false, status: 504, note: "integration timeout" };
    case "result": {
      const status = (outcome.result as HandlerResult | undefined)?.statusCode;
      if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
        return { accept: false, status: 502, note: "malformed $connect result (no valid statusCode)" };
      }
      return { accept: status >= 200 && status < 300, status };
    }
  }
}

/** The body of a refused `$connect`: only a throw (502) has one. */
export function connectRefusal(decision: ConnectDecision): RefusalExtras {
  return decision.status === 502 ? { body: '{"message": "Internal server error"}' } : {};
}

/** `$connect` response headers for the 101, and the subprotocol it picked. */
export interface HandshakeHeaders {
  readonly headers: string[];
  readonly protocol?: string;
}

/** Response headers of `$connect` that the handshake itself owns. */
const OWNED_HEADERS = new Set([
  "upgrade",
  "connection",
  "sec-websocket-accept",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "content-length",
  "transfer-encoding",
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The valid headers of `$connect`'s result that the 101 may carry; `Sec-WebSocket-Protocol` picks the subprotocol. */
export function handshakeHeadersOf(result: HandlerResult | undefined): HandshakeHeaders {
  const headers: string[] = [];
  let protocol: string | undefined;
  for (const [name, value] of Object.entries(result?.headers ?? {})) {
    if (typeof value !== "string" || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) continue;
    const lower = name.toLowerCase();
    if (lower === "sec-websocket-protocol") protocol = value.split(",")[0]!.trim();
    else if (!OWNED_HEADERS.has(lower)) headers.push(`${name}: ${value}`);
  }
  return { headers, ...(protocol ? { protocol } : {}) };
}

/** Writes a complete HTTP error response on the upgrade socket and closes it. */
export function refuseHandshake(socket: Duplex, status: number, extra: RefusalExtras = {}): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  const { body = "", ...headers } = extra;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}`,
    "Connection: close",
    `x-amzn-RequestId: ${randomUUID()}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.once("finish", () => socket.destroy());
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}
