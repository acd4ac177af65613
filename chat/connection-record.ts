/**
 * The store record of a connection, built from an event's `requestContext`: by `$connect`, and again by any later
 * message of a connection the store has lost (chat/sender-store.ts). Every event of a connection carries the same
 * `connectedAt` and, with an authorizer, the same `authorizer` context, so both build the same record; only the
 * `?name=` query parameter is CONNECT-only (later events have no `queryStringParameters`), so a record rebuilt
 * from a message keeps the authorizer's `name` but not a name the client gave in its URL.
 */
import type { ConnectionRecord } from "../contract/connection-store";
import type { WebSocketEvent } from "../runtime/event";
import { displayName } from "./rooms";

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

export function connectionRecord(event: WebSocketEvent, ttlSeconds: number, now = Date.now()): ConnectionRecord {
  const connectedAt = event.requestContext.connectedAt ?? now;
  let attributes = authorizerAttributes(event.requestContext.authorizer);
  // A display name: the authorizer's `name` when it gives one, else the client's `?name=` (unverified).
  const name = attributes?.name === undefined ? displayName(event.queryStringParameters?.name) : undefined;
  if (name !== undefined) attributes = { ...attributes, name };
  return {
    connectionId: event.requestContext.connectionId,
    connectedAt,
    expiresAt: connectedAt + ttlSeconds * 1000,
    ...(attributes ? { attributes } : {}),
  };
}
