/** `$connect`: records the new connection. A non-2xx answer makes API Gateway refuse the handshake. */

import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { plainRoute } from "../chat/pipeline";
import { userIdOf } from "../chat/rate-limit";
import { displayName } from "../chat/rooms";
import { claimConnectionSlot, releaseConnectionSlot } from "../chat/user-connections";
import type { ConnectionRecord } from "../contract/connection-store";
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

export const connect = plainRoute(async ({ event, deps, log }) => {
  const started = Date.now();
  const record = connectionRecord(event, deps.env.connectionTtlSeconds);
  // The per-user cap: a slot first, so that concurrent connects of one user cannot all get in.
  const refused = await claimConnectionSlot(event, deps, log, record.expiresAt);
  if (refused) return refused;
  try {
    await deps.store.add(record);
    log.info("connected", { outcome: "ok", durationMs: Date.now() - started });
    return { statusCode: 200 };
  } catch (error) {
    // The client only learns the handshake failed; the cause stays in our logs.
    log.error("connect failed: store write", { outcome: "error", error, durationMs: Date.now() - started });
    await releaseConnectionSlot(deps, log, userIdOf(event), record.connectionId);
    return { statusCode: 500, body: "Failed to connect." };
  }
});

export const handler = lambdaHandler(connect, containerDeps);
