/**
 * The cap on live connections per user (`rateLimit.connectionsPerUser`): `$connect` claims one of the user's slots
 * in the store before it records the connection, and `$disconnect` frees it. A slot expires with the connection's
 * record, so a `$disconnect` API Gateway never ran frees it at the latest then. Only authorized connections have a
 * user (the authorizer's `userId`); without auth there is nothing to count per user.
 *
 * Over the cap, `$connect` answers 429, which API Gateway makes the handshake's status (a non-2xx from `$connect`
 * rejects the upgrade with that status): "too many requests" is what happened, a client can back off on it, and it
 * is not 401/403, which would send the client to fetch a new token that would not help.
 */
import { DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import type { HandlerDeps } from "./deps";
import { userIdOf } from "./rate-limit";

/** The handshake status of a connect over the cap. */
export const TOO_MANY_CONNECTIONS_STATUS = 429;

/**
 * Claims the connection's slot. Resolves with the response to give `$connect` when it must stop (over the cap, or
 * the store failed), `undefined` when it may go on (a slot is held, or there is no user or no cap).
 */
export async function claimConnectionSlot(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  expiresAt: number,
): Promise<HandlerResult | undefined> {
  const max = (deps.env.limits ?? DEFAULT_MESSAGE_LIMITS).connectionsPerUser;
  const userId = userIdOf(event);
  if (max <= 0 || userId === undefined) return undefined;
  try {
    const claim = await deps.store.claimUserSlot(userId, event.requestContext.connectionId, max, expiresAt);
    if (claim.claimed) return undefined;
    log.info("connect refused: too many connections", { outcome: "too-many-connections", live: claim.live, max });
    return {
      statusCode: TOO_MANY_CONNECTIONS_STATUS,
      body: `Too many connections: a user may hold ${max} at once. Close one, then connect again.`,
    };
  } catch (error) {
    // The record cannot be written either when the store is down: the same answer as a failed write.
    log.error("connect failed: connection slot", { outcome: "error", error });
    return { statusCode: 500, body: "Failed to connect." };
  }
}

/** Frees the connection's slot of `userId`; best effort (the slot expires anyway). */
export async function releaseConnectionSlot(
  deps: HandlerDeps,
  log: Logger,
  userId: string | undefined,
  connectionId: string,
): Promise<void> {
  if (userId === undefined || (deps.env.limits ?? DEFAULT_MESSAGE_LIMITS).connectionsPerUser <= 0) return;
  try {
    await deps.store.releaseUserSlot(userId, connectionId);
  } catch (error) {
    log.warn("could not free a connection slot", { outcome: "error", error });
  }
}
