/**
 * The rate limits of the message routes, applied before any other work. Every count lives in the connection store
 * (`countMessage`, a fixed-window counter), so it holds across Lambda containers.
 *
 * - Per connection: up to `messages` per window. Past that the message is dropped and the sender gets a
 *   `RateLimited` error frame (`scope: "connection"`, `retryAfterMs`: the time until the window ends). Past
 *   {@link ABUSE_FACTOR} times the limit within one window (the sender ignored the frames it got) the connection
 *   is closed through `DELETE @connections`, which makes API Gateway run `$disconnect`.
 * - Per user (the authorizer's `userId`, on every event of an authorized connection): up to `userMessages` per
 *   window over all the user's connections, so N connections do not buy N budgets and a reconnect does not reset
 *   the count. Past it: `RateLimited` with `scope: "user"`. No disconnect: which of the user's connections would
 *   it be? The per-connection abuse rule and the connection cap at `$connect` bound what a user can push past it.
 *   Without auth there is no user id, and the per-connection limit is all there is.
 * - Room-less broadcasts ({@link enforceBroadcastLimit}): `broadcasts` per window per user (per connection
 *   without auth), on top of the above, because one of them is one post per connection of the whole API.
 *
 * When the store cannot count (down, timing out):
 * - routes that deliver the sender's data to others (`sendmessage`, `sendto`; {@link FAIL_CLOSED_ROUTES}) fail
 *   CLOSED: the message is refused with `StoreUnavailable` (`retryable: true`). A limit that vanishes whenever the
 *   counter is slow is the limit a flood gets around, and what it would let through costs everyone else posts;
 * - the others (`whoami`, `join`, `leave`, `$default`) fail OPEN, with a warning logged: they answer only the
 *   sender or touch its own memberships (bounded by `maxRoomsPerConnection`), each needs the store for its own work
 *   anyway, and refusing them would tell a client nothing its own request would not.
 */
import { meterKey, rateWindow } from "../contract/connection-store";
import { ABUSE_FACTOR, DEFAULT_MESSAGE_LIMITS, type MessageLimits } from "../contract/message-limits";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import { type HandlerDeps, requireConnections } from "./deps";
import { ANSWERED, FAULT, replyError } from "./reply";

/** Which limit refused a message: the `scope` of its `RateLimited` frame. */
export type RateScope = "connection" | "user" | "broadcast";

/** A refused message carries what the route returns for it (reply.ts: 200 once answered, 5xx for our faults). */
export type RateDecision =
  | { readonly kind: "allowed"; readonly count?: number }
  | {
      readonly kind: "limited";
      readonly scope: RateScope;
      readonly count: number;
      readonly retryAfterMs: number;
      readonly result: HandlerResult;
    }
  | { readonly kind: "disconnected"; readonly count: number; readonly result: HandlerResult }
  /** The counter could not be read and the route fails closed: the sender was told `StoreUnavailable`. */
  | { readonly kind: "unavailable"; readonly result: HandlerResult };

/** Routes whose rate limit fails closed when the store cannot count (see the module's comment). */
export const FAIL_CLOSED_ROUTES: ReadonlySet<string> = new Set(["sendmessage", "sendto"]);

/** What a refused sender is told to wait before retrying when the counter could not be read. */
export const UNAVAILABLE_RETRY_AFTER_MS = 1_000;

/** The authorizer's user id of the connection that sent `event`, when `$connect` was authorized. */
export function userIdOf(event: WebSocketEvent): string | undefined {
  // The same identity frames name the user by (chat/rooms.ts whoOf): `userId`, else the authorizer's principalId.
  const authorizer = event.requestContext.authorizer;
  for (const candidate of [authorizer?.userId, authorizer?.principalId]) {
    if (typeof candidate === "string" && candidate !== "") return candidate;
  }
  return undefined;
}

/**
 * Counts this message against the connection's and the user's limits; the caller stops unless the decision is
 * `allowed`, and then returns the decision's `result`.
 */
export async function enforceRateLimit(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  now: number = Date.now(),
): Promise<RateDecision> {
  const limits = deps.env.limits ?? DEFAULT_MESSAGE_LIMITS;
  const { messages, windowSeconds } = limits;
  const userId = userIdOf(event);
  const userLimit = userId !== undefined ? limits.userMessages : 0;
  if (messages <= 0 && userLimit <= 0) return { kind: "allowed" };
  const windowMs = windowSeconds * 1000;
  const connectionId = event.requestContext.connectionId;

  let count: number;
  let userCount: number;
  try {
    [count, userCount] = await Promise.all([
      messages > 0 ? deps.store.countMessage(connectionId, windowMs, now) : 0,
      userLimit > 0 ? deps.store.countMessage(meterKey("user", userId!), windowMs, now) : 0,
    ]);
  } catch (error) {
    return counterUnavailable(event, deps, log, error);
  }
  if (messages > 0 && count > messages) return overConnectionLimit(event, deps, log, limits, count, now);
  if (userLimit > 0 && userCount > userLimit) {
    return limited(
      event,
      deps,
      log,
      "user",
      userCount,
      userLimit,
      windowSeconds,
      now,
      "per user (over all its connections)",
    );
  }
  return { kind: "allowed", count };
}

/**
 * The separate budget of a room-less broadcast, counted once the message is known to be one (after the message
 * limits, which it also counts against). Fails closed like the broadcast it guards.
 */
export async function enforceBroadcastLimit(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  now: number = Date.now(),
): Promise<RateDecision> {
  const { broadcasts, windowSeconds } = deps.env.limits ?? DEFAULT_MESSAGE_LIMITS;
  if (broadcasts <= 0) return { kind: "allowed" };
  const userId = userIdOf(event);
  const key =
    userId !== undefined
      ? meterKey("broadcast-user", userId)
      : meterKey("broadcast-connection", event.requestContext.connectionId);
  let count: number;
  try {
    count = await deps.store.countMessage(key, windowSeconds * 1000, now);
  } catch (error) {
    return counterUnavailable(event, deps, log, error, true);
  }
  if (count <= broadcasts) return { kind: "allowed", count };
  const per = userId !== undefined ? "per user" : "per connection";
  return limited(
    event,
    deps,
    log,
    "broadcast",
    count,
    broadcasts,
    windowSeconds,
    now,
    `for room-less broadcasts ${per}`,
  );
}

async function counterUnavailable(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  error: unknown,
  failClosed = FAIL_CLOSED_ROUTES.has(event.requestContext.routeKey),
): Promise<RateDecision> {
  if (!failClosed) {
    log.warn("rate limit unavailable, message allowed", { outcome: "fail-open", error });
    return { kind: "allowed" };
  }
  log.error("rate limit unavailable, message refused", { outcome: "fail-closed", error });
  const result = await replyError(
    deps,
    event,
    log,
    "StoreUnavailable",
    `The message was not sent: its rate limit could not be checked. Retry in ${UNAVAILABLE_RETRY_AFTER_MS} ms.`,
    { retryable: true, retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS },
  );
  return { kind: "unavailable", result };
}

async function limited(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  scope: RateScope,
  count: number,
  limit: number,
  windowSeconds: number,
  now: number,
  what: string,
): Promise<RateDecision> {
  const retryAfterMs = Math.max(0, rateWindow(windowSeconds * 1000, now).endsAt - now);
  const result = await replyError(
    deps,
    event,
    log,
    "RateLimited",
    `Too many messages: the limit is ${limit} per ${windowSeconds} s ${what}. Retry in ${retryAfterMs} ms.`,
    { scope, limit, windowSeconds, retryAfterMs },
  );
  return { kind: "limited", scope, count, retryAfterMs, result };
}

async function overConnectionLimit(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  limits: MessageLimits,
  count: number,
  now: number,
): Promise<RateDecision> {
  const { messages, windowSeconds } = limits;
  const abuseThreshold = messages * ABUSE_FACTOR;
  if (count <= abuseThreshold) {
    return limited(event, deps, log, "connection", count, messages, windowSeconds, now, "per connection");
  }

  // Persistent abuse. The first message past the threshold says why before the connection goes; the ones after
  // it get no frame (the client was told, and its connection is closing): the close is their answer.
  const retryAfterMs = Math.max(0, rateWindow(windowSeconds * 1000, now).endsAt - now);
  let result = ANSWERED;
  if (count === abuseThreshold + 1) {
    result = await replyError(
      deps,
      event,
      log,
      "RateLimited",
      `Over ${abuseThreshold} messages in ${windowSeconds} s (the limit is ${messages}): disconnecting.`,
      { scope: "connection", limit: messages, windowSeconds, retryAfterMs, disconnecting: true },
    );
  }
  try {
    const closed = await requireConnections(deps).disconnect(event.requestContext.connectionId);
    log.warn("disconnected for rate-limit abuse", {
      outcome: closed ? "disconnected" : "already-gone",
      count,
      limit: messages,
      windowSeconds,
    });
  } catch (error) {
    log.error("could not disconnect a rate-limit abuser", { outcome: "error", count, error });
    result = FAULT;
  }
  return { kind: "disconnected", count, result };
}
