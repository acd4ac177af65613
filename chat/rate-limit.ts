/**
 * The per-connection message rate limit of the message routes (`sendmessage`, `$default`), applied before any
 * other work. The count lives in the connection store (`countMessage`), so it holds across Lambda containers.
 *
 * - Up to `messages` per window: allowed.
 * - Past that: the message is dropped and the sender gets a `RateLimited` error frame with `retryAfterMs` (the
 *   time until the window ends).
 * - Past {@link ABUSE_FACTOR} times the limit within one window (the sender ignored the frames it got): the
 *   connection is closed through `DELETE @connections`, which makes API Gateway run `$disconnect`.
 * - The store cannot count (down, timing out): the message is allowed (fail open) and a warning is logged. A
 *   store outage must not silence every client; the stage's own throttling still bounds the damage.
 */
import { rateWindow } from "../contract/connection-store";
import { ABUSE_FACTOR, DEFAULT_MESSAGE_LIMITS } from "../contract/message-limits";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import { type HandlerDeps, requireConnections } from "./deps";
import { ANSWERED, FAULT, replyError } from "./reply";

/** A refused message carries what the route returns for it (reply.ts: 200 once answered, 5xx for our faults). */
export type RateDecision =
  | { readonly kind: "allowed"; readonly count?: number }
  | { readonly kind: "limited"; readonly count: number; readonly retryAfterMs: number; readonly result: HandlerResult }
  | { readonly kind: "disconnected"; readonly count: number; readonly result: HandlerResult };

/**
 * Counts this message and enforces the limit; the caller stops unless the decision is `allowed`, and then returns
 * the decision's `result`.
 */
export async function enforceRateLimit(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  now: number = Date.now(),
): Promise<RateDecision> {
  const { messages, windowSeconds } = deps.env.limits ?? DEFAULT_MESSAGE_LIMITS;
  if (messages <= 0) return { kind: "allowed" };
  const windowMs = windowSeconds * 1000;
  const connectionId = event.requestContext.connectionId;

  let count: number;
  try {
    count = await deps.store.countMessage(connectionId, windowMs, now);
  } catch (error) {
    log.warn("rate limit unavailable, message allowed", { outcome: "fail-open", error });
    return { kind: "allowed" };
  }
  if (count <= messages) return { kind: "allowed", count };

  const retryAfterMs = Math.max(0, rateWindow(windowMs, now).endsAt - now);
  const abuseThreshold = messages * ABUSE_FACTOR;
  const detail = { limit: messages, windowSeconds, retryAfterMs };
  if (count <= abuseThreshold) {
    const result = await replyError(
      deps,
      event,
      log,
      "RateLimited",
      `Too many messages: the limit is ${messages} per ${windowSeconds} s. Retry in ${retryAfterMs} ms.`,
      detail,
    );
    return { kind: "limited", count, retryAfterMs, result };
  }

  // Persistent abuse. The first message past the threshold says why before the connection goes; the ones after
  // it get no frame (the client was told, and its connection is closing): the close is their answer.
  let result = ANSWERED;
  if (count === abuseThreshold + 1) {
    result = await replyError(
      deps,
      event,
      log,
      "RateLimited",
      `Over ${abuseThreshold} messages in ${windowSeconds} s (the limit is ${messages}): disconnecting.`,
      { ...detail, disconnecting: true },
    );
  }
  try {
    const closed = await requireConnections(deps).disconnect(connectionId);
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
