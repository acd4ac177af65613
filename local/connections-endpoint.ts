/**
 * The `@connections` management API (docs/local-gateway.md) as the real
 * `@aws-sdk/client-apigatewaymanagementapi` client sees it, on the gateway's HTTP port:
 *
 * - `POST   /{stage}/@connections/{id}`: the raw body becomes a text frame; 200. Over 131072 bytes: 413.
 * - `GET    /{stage}/@connections/{id}`: 200 `{"connectedAt","identity":{"sourceIp","userAgent"},"lastActiveAt"}`.
 * - `DELETE /{stage}/@connections/{id}`: closes with 1000; 204; then `$disconnect` runs.
 * - `/@connections/{id}` (no stage) and `%40connections` are accepted too; the id is URL-decoded.
 * - Unknown, pending (`$connect` still running), closing or closed id: 410 `GoneException`, empty body.
 * - Wrong stage, unknown path or method: 403 `ForbiddenException` `{"message":"Forbidden"}`.
 * - Every call must be SigV4-signed (connections-signature.ts): unsigned 403 `MissingAuthenticationTokenException`,
 *   a bad signature 403 `InvalidSignatureException`. A `Host` that is not the gateway's own name (DNS rebinding):
 *   403 `ForbiddenException`.
 *
 * Every response carries `x-amzn-RequestId`; every error carries `x-amzn-ErrorType`, which is what the SDK turns
 * into the modeled exception class (without it a 410 surfaces as a generic "Unknown" error).
 */
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SignatureVerdict } from "./connections-signature";
import { printable } from "./console-format";

/** An open connection, as the management API may act on it. */
export interface ManagedConnection {
  readonly connectedAt: number;
  readonly lastActiveAt: number;
  readonly sourceIp: string;
  readonly userAgent?: string;
  /** Sends `data` as one text frame; rejects if the socket is gone. */
  send(data: Buffer): Promise<void>;
  /** Closes with 1000; returns a function that fires `$disconnect`, to be called once the 204 is out. */
  close(): () => void;
}

export interface ConnectionsEndpointOptions {
  readonly stage: string;
  readonly maxPostBytes: number;
  /** The connection if it is open (handshake done, no close frame sent or received), else `undefined`. */
  readonly lookup: (connectionId: string) => ManagedConnection | undefined;
  /** One line per request (`note`: why it was refused, when it was). */
  readonly log: (method: string, connectionId: string, status: number, durationMs: number, note?: string) => void;
  /** The SigV4 check of a request, given its body's hex SHA-256; absent: none (library users who opt out). */
  readonly verifySignature?: (req: IncomingMessage, payloadHash: string) => SignatureVerdict;
  /** Whether a `Host` header names this gateway; absent: any. */
  readonly isOwnHost?: (host: string | undefined) => boolean;
}

const CONNECTIONS_PATH = /^(?:\/([^/]+))?\/(?:@|%40)connections\/([^/]+)\/?$/;

export type ParsedConnectionsPath =
  | { readonly ok: true; readonly connectionId: string }
  | { readonly ok: false; readonly status: 400 | 403 };

/** Matches `/{stage}/@connections/{id}` or `/@connections/{id}` (also `%40`), checking the stage. */
export function parseConnectionsPath(rawUrl: string, stage: string): ParsedConnectionsPath {
  const pathname = rawUrl.split("?")[0]!;
  const match = CONNECTIONS_PATH.exec(pathname);
  if (!match) return { ok: false, status: 403 };
  if (match[1] !== undefined && match[1] !== stage) return { ok: false, status: 403 };
  try {
    const connectionId = decodeURIComponent(match[2]!);
    return connectionId ? { ok: true, connectionId } : { ok: false, status: 403 };
  } catch {
    return { ok: false, status: 400 };
  }
}

interface Reply {
  readonly status: number;
  readonly errorType?: string;
  readonly body?: string;
}

const FORBIDDEN: Reply = { status: 403, errorType: "ForbiddenException", body: '{"message":"Forbidden"}' };
const GONE: Reply = { status: 410, errorType: "GoneException" };

function write(res: ServerResponse, reply: Reply): void {
  const body = reply.body ?? "";
  const headers: Record<string, string | number> = {
    "x-amzn-RequestId": randomUUID(),
    "Content-Length": Buffer.byteLength(body),
  };
  if (reply.errorType) headers["x-amzn-ErrorType"] = reply.errorType;
  if (body) headers["Content-Type"] = "application/json";
  res.writeHead(reply.status, headers);
  res.end(body);
}

interface ReadBody {
  readonly body: Buffer;
  readonly tooLarge: boolean;
  /** Hex SHA-256 of the whole body, for the signature check. */
  readonly sha256: string;
}

/**
 * Reads the body, keeping at most `limit` bytes (the rest is hashed and drained, so the signature can still be
 * checked and the reply sent cleanly).
 */
function readBody(req: IncomingMessage, limit: number): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const hash = createHash("sha256");
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve({ body: Buffer.concat(chunks), tooLarge, sha256: hash.digest("hex") }));
    req.on("error", reject);
  });
}

/** Handles one HTTP request that is not a WebSocket upgrade. */
export async function handleConnectionsRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: ConnectionsEndpointOptions,
): Promise<void> {
  const started = Date.now();
  const method = req.method ?? "GET";
  const parsed = parseConnectionsPath(req.url ?? "/", options.stage);
  const connectionId = parsed.ok ? parsed.connectionId : "-";
  const finish = (reply: Reply, after?: () => void, note?: string) => {
    // "close" also fires when the caller hung up early, so a DELETE always leads to `$disconnect`.
    if (after) res.once("close", after);
    write(res, reply);
    // The id is decoded from a path anyone can send: no control character of it reaches the console.
    options.log(method, printable(connectionId), reply.status, Date.now() - started, note);
  };

  if (options.isOwnHost && !options.isOwnHost(req.headers.host)) {
    req.resume();
    return finish(FORBIDDEN, undefined, `Host ${req.headers.host ?? "(none)"} is not this gateway`);
  }
  // Read before anything else is decided: the signature covers the body.
  const { body, tooLarge, sha256 } = await readBody(req, options.maxPostBytes);
  const verdict = options.verifySignature?.(req, sha256);
  if (verdict && !verdict.ok) {
    const refusal = { status: 403, errorType: verdict.errorType, body: JSON.stringify({ message: verdict.message }) };
    return finish(refusal, undefined, verdict.note);
  }
  if (!parsed.ok) {
    return finish(
      parsed.status === 403
        ? FORBIDDEN
        : { status: 400, errorType: "BadRequestException", body: '{"message":"Invalid connection id"}' },
    );
  }

  switch (method) {
    case "POST": {
      if (tooLarge) {
        return finish({
          status: 413,
          errorType: "PayloadTooLargeException",
          body: JSON.stringify({ message: `Request entity too large: the limit is ${options.maxPostBytes} bytes` }),
        });
      }
      const conn = options.lookup(parsed.connectionId);
      if (!conn) return finish(GONE);
      try {
        await conn.send(body);
      } catch {
        return finish(GONE);
      }
      return finish({ status: 200 });
    }
    case "GET": {
      const conn = options.lookup(parsed.connectionId);
      if (!conn) return finish(GONE);
      return finish({
        status: 200,
        body: JSON.stringify({
          connectedAt: new Date(conn.connectedAt).toISOString(),
          identity: { sourceIp: conn.sourceIp, userAgent: conn.userAgent ?? null },
          lastActiveAt: new Date(conn.lastActiveAt).toISOString(),
        }),
      });
    }
    case "DELETE": {
      const conn = options.lookup(parsed.connectionId);
      if (!conn) return finish(GONE);
      const fireDisconnect = conn.close();
      return finish({ status: 204 }, fireDisconnect);
    }
    default:
      return finish(FORBIDDEN);
  }
}
