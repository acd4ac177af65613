/**
 * `$connect`: records the new connection. A non-2xx answer makes API Gateway refuse the handshake.
 *
 * Subprotocol: a client that offers {@link CHAT_PROTOCOL} in `Sec-WebSocket-Protocol` is a typed client; the
 * answer carries the header with exactly that protocol (API Gateway puts `$connect`'s response headers on the 101:
 * developer guide, "Set up a $connect route that requires a WebSocket subprotocol"), and the record keeps it
 * (attribute {@link PROTOCOL_ATTRIBUTE}) so every broadcast gives it envelopes only. The header names only a
 * protocol the client offered: RFC 6455 section 4.1 has a client fail a handshake whose answer names another.
 * A client that offers none, or only others, is a plain client and is answered without the header, as before
 * (browsers and `ws` then fail the connection themselves, per the WHATWG WebSocket standard: websockets/ws #2314).
 */

import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { plainRoute } from "../chat/pipeline";
import { displayName, NAME_VERIFIED_ATTRIBUTE } from "../chat/rooms";
import { type ConnectionRecord, PROTOCOL_ATTRIBUTE } from "../contract/connection-store";
import { CHAT_PROTOCOL } from "../contract/frames";
import type { WebSocketEvent } from "../runtime/event";

/** Authorizer context values worth keeping with the connection, flattened to strings as API Gateway does. */
function authorizerAttributes(authorizer: Record<string, unknown> | undefined): Record<string, string> | undefined {
  if (!authorizer) return undefined;
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(authorizer)) {
    if (key === "integrationLatency") continue;
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      attributes[key] = String(value);
    }
  }
  return Object.keys(attributes).length > 0 ? attributes : undefined;
}

/** The subprotocols a CONNECT event's client offered, in its order (every `Sec-WebSocket-Protocol` header, any case). */
export function offeredProtocols(event: WebSocketEvent): string[] {
  const values: string[] = [];
  const multi = Object.entries(event.multiValueHeaders ?? {}).filter(
    ([n]) => n.toLowerCase() === "sec-websocket-protocol",
  );
  if (multi.length > 0) for (const [, list] of multi) values.push(...(list ?? []));
  else
    for (const [name, value] of Object.entries(event.headers ?? {}))
      if (name.toLowerCase() === "sec-websocket-protocol" && value !== undefined) values.push(value);
  return values.flatMap((value) => value.split(",").map((p) => p.trim())).filter((p) => p !== "");
}

/** The subprotocol `$connect` answers with: ours when the client offered it, else none (a plain client). */
export function chosenProtocol(event: WebSocketEvent): string | undefined {
  return offeredProtocols(event).includes(CHAT_PROTOCOL) ? CHAT_PROTOCOL : undefined;
}

export function connectionRecord(event: WebSocketEvent, ttlSeconds: number, now = Date.now()): ConnectionRecord {
  const connectedAt = event.requestContext.connectedAt ?? now;
  const fromAuthorizer = authorizerAttributes(event.requestContext.authorizer);
  // Ours to set, whatever an authorizer's context says.
  const { [PROTOCOL_ATTRIBUTE]: _protocol, [NAME_VERIFIED_ATTRIBUTE]: _verified, ...rest } = fromAuthorizer ?? {};
  let attributes: Record<string, string> | undefined = Object.keys(rest).length > 0 ? rest : undefined;
  // A display name: the authorizer's `name` when it gives one (verified), else the client's `?name=` (unverified).
  // Both lose control, bidi and zero-width characters (chat/rooms.ts).
  const verified = attributes?.name !== undefined;
  const name = displayName(verified ? attributes?.name : event.queryStringParameters?.name);
  if (attributes?.name !== undefined) delete attributes.name;
  if (name !== undefined)
    attributes = { ...attributes, name, ...(verified ? { [NAME_VERIFIED_ATTRIBUTE]: "true" } : {}) };
  const protocol = chosenProtocol(event);
  if (protocol !== undefined) attributes = { ...attributes, [PROTOCOL_ATTRIBUTE]: protocol };
  if (attributes !== undefined && Object.keys(attributes).length === 0) attributes = undefined;
  return {
    connectionId: event.requestContext.connectionId,
    connectedAt,
    expiresAt: connectedAt + ttlSeconds * 1000,
    ...(attributes ? { attributes } : {}),
  };
}

export const connect = plainRoute(async ({ event, deps, log }) => {
  const started = Date.now();
  try {
    const record = connectionRecord(event, deps.env.connectionTtlSeconds);
    await deps.store.add(record);
    const protocol = record.attributes?.[PROTOCOL_ATTRIBUTE];
    log.info("connected", { outcome: "ok", durationMs: Date.now() - started, protocol: protocol ?? "plain" });
    return protocol !== undefined
      ? { statusCode: 200, headers: { "Sec-WebSocket-Protocol": protocol } }
      : { statusCode: 200 };
  } catch (error) {
    // The client only learns the handshake failed; the cause stays in our logs.
    log.error("connect failed: store write", { outcome: "error", error, durationMs: Date.now() - started });
    return { statusCode: 500, body: "Failed to connect." };
  }
});

export const handler = lambdaHandler(connect, containerDeps);
