/**
 * Builds Lambda proxy events exactly as API Gateway shapes them for WebSocket routes (see docs/local-gateway.md),
 * for the local gateway and for tests.
 */

import type { WebSocketEvent, WebSocketRequestContext } from "../runtime/event";
import { randomBytesFromPool as randomBytes } from "./random-bytes";

/** API Gateway ids look like `BFaT_fALIAMCKug=`: 11 random bytes as base64url-ish text, 16 chars, `=`-terminated. */
export function newConnectionId(): string {
  return `${randomBytes(11).toString("base64").replace(/\+/g, "-").replace(/\//g, "_").slice(0, 15)}=`;
}

/** Same shape as connection ids; also used as `extendedRequestId` / `messageId`. */
export const newRequestId = newConnectionId;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number) => String(n).padStart(2, "0");

/** Common Log Format, always UTC: `11/Nov/2024:13:45:46 +0000`. */
export function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(
    d.getUTCMinutes(),
  )}:${pad(d.getUTCSeconds())} +0000`;
}

/** What stays the same for every event of one connection. */
export interface ConnectionContext {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly stage: string;
  readonly apiId: string;
  readonly domainName: string;
  readonly sourceIp: string;
  readonly userAgent?: string;
  /** `{principalId, integrationLatency, ...context}` from a `$connect` authorizer, values stringified. */
  readonly authorizer?: Record<string, unknown>;
}

function baseContext(
  conn: ConnectionContext,
  routeKey: string,
  eventType: WebSocketRequestContext["eventType"],
  now: number,
): WebSocketRequestContext {
  const requestId = newRequestId();
  return {
    routeKey,
    eventType,
    extendedRequestId: requestId,
    requestTime: clfTime(now),
    messageDirection: "IN" as const,
    stage: conn.stage,
    connectedAt: conn.connectedAt,
    requestTimeEpoch: now,
    identity: { sourceIp: conn.sourceIp, ...(conn.userAgent !== undefined ? { userAgent: conn.userAgent } : {}) },
    requestId,
    domainName: conn.domainName,
    connectionId: conn.connectionId,
    apiId: conn.apiId,
    ...(conn.authorizer ? { authorizer: conn.authorizer } : {}),
  };
}

function multiValue<T extends string | undefined>(record: Record<string, T>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[k] = [v];
  return out;
}

export interface ConnectInput {
  /** Upgrade request headers, names as the client sent them. */
  readonly headers: Record<string, string>;
  readonly multiValueHeaders?: Record<string, string[]>;
  /** Absent (not `{}`) when the URL had no query string, as API Gateway does. */
  readonly queryStringParameters?: Record<string, string>;
  readonly multiValueQueryStringParameters?: Record<string, string[]>;
}

export function connectEvent(conn: ConnectionContext, input: ConnectInput, now = Date.now()): WebSocketEvent {
  return {
    headers: input.headers,
    multiValueHeaders: input.multiValueHeaders ?? multiValue(input.headers),
    ...(input.queryStringParameters ? { queryStringParameters: input.queryStringParameters } : {}),
    ...(input.multiValueQueryStringParameters
      ? { multiValueQueryStringParameters: input.multiValueQueryStringParameters }
      : {}),
    requestContext: baseContext(conn, "$connect", "CONNECT", now),
    isBase64Encoded: false,
  };
}

export function messageEvent(
  conn: ConnectionContext,
  routeKey: string,
  body: string,
  now = Date.now(),
): WebSocketEvent {
  return {
    requestContext: { ...baseContext(conn, routeKey, "MESSAGE", now), messageId: newRequestId() },
    body,
    isBase64Encoded: false,
  };
}

export function disconnectEvent(
  conn: ConnectionContext,
  statusCode: number,
  reason: string,
  now = Date.now(),
): WebSocketEvent {
  const headers = { Host: conn.domainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": "" };
  return {
    headers,
    multiValueHeaders: multiValue(headers),
    requestContext: {
      ...baseContext(conn, "$disconnect", "DISCONNECT", now),
      disconnectStatusCode: statusCode,
      disconnectReason: reason,
    },
    isBase64Encoded: false,
  };
}
