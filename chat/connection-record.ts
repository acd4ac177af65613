/**
 * The store record of a connection, built from an event's `requestContext`: by `$connect`, and again by any later
 * message of a connection the store has lost (chat/sender-store.ts). Every event of a connection carries the same
 * `connectedAt` and, with an authorizer, the same `authorizer` context, so both build the same record; only the
 * `?name=` query parameter and the `Sec-WebSocket-Protocol` header are CONNECT-only (later events carry neither),
 * so a record rebuilt from a message keeps the authorizer's `name` but not a name the client gave in its URL, and
 * cannot tell whether the client speaks the subprotocol: it is then recorded as typed, so it gets envelopes (a
 * plain client can read an envelope; a typed client must never get a peer's raw data).
 */
import { type ConnectionRecord, PROTOCOL_ATTRIBUTE } from "../contract/connection-store";
import { CHAT_PROTOCOL } from "../contract/frames";
import type { WebSocketEvent } from "../runtime/event";
import { displayName, NAME_VERIFIED_ATTRIBUTE } from "./rooms";

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
  const protocol = event.requestContext.eventType === "CONNECT" ? chosenProtocol(event) : CHAT_PROTOCOL;
  if (protocol !== undefined) attributes = { ...attributes, [PROTOCOL_ATTRIBUTE]: protocol };
  if (attributes !== undefined && Object.keys(attributes).length === 0) attributes = undefined;
  return {
    connectionId: event.requestContext.connectionId,
    connectedAt,
    expiresAt: connectedAt + ttlSeconds * 1000,
    ...(attributes ? { attributes } : {}),
  };
}
