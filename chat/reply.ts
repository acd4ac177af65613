/**
 * Answers the connection that sent the current message, through `@connections` (routes are one-way), and decides
 * the status the route's function returns with that answer. This is the one place that rule lives:
 *
 * - A client's mistake (bad JSON, an unknown action, over the rate limit, too large, a full room, a gone
 *   recipient, …) is answered in-band with an error frame, and the function then returns 200, never a 4xx. API
 *   Gateway's `IntegrationError` metric is "the number of requests that return a 4XX/5XX response from the
 *   integration": a 4xx per client mistake would make it count normal client traffic, and an alarm on it would
 *   page on that. Nor would a 4xx tell the client anything: a route other than `$connect` has no route response,
 *   so API Gateway shows the integration's status to nobody but its own metrics and logs.
 * - A fault of ours (a delivery to `@connections` that failed on our side, the store failing) returns 502 or
 *   throws, so `IntegrationError` (and the function's `Errors`) count faults, and only faults.
 *
 * `$connect` does not use this: its status decides the handshake.
 */

import { ERROR_ORIGIN, type ErrorCode, errorFrame } from "../contract/frames";
import { isValidSendRef } from "../contract/room-history";
import type { PostOutcome } from "../runtime/connections-api";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import type { HandlerDeps } from "./deps";
import { requireConnections } from "./deps";

/** The sender has its answer (or has gone, so there is no one left to answer): nothing failed on our side. */
export const ANSWERED: HandlerResult = /* @__PURE__ */ Object.freeze({ statusCode: 200 });
/** Something of ours failed (`@connections`, the store): the status `IntegrationError` is meant to count. */
export const FAULT: HandlerResult = /* @__PURE__ */ Object.freeze({ statusCode: 502 });

/** The status to return with an error frame of `code` whose post came to `delivery`. */
export function answeredWith(code: ErrorCode, delivery: PostOutcome["kind"]): HandlerResult {
  if (ERROR_ORIGIN[code] === "ours") return FAULT;
  // The answer itself was lost to a failure of ours (throttled past the retries, a 5xx, a frame we made too large).
  if (delivery === "failed" || delivery === "too-large") return FAULT;
  return ANSWERED;
}

/** Posts the error frame to the sender; resolves with what the route returns ({@link answeredWith}). */
export async function replyError(
  deps: HandlerDeps,
  event: WebSocketEvent,
  log: Logger,
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
): Promise<HandlerResult> {
  const ref = refOf(event);
  const outcome = await requireConnections(deps).post(
    event.requestContext.connectionId,
    errorFrame(code, message, ref !== undefined ? { ...extra, ref } : extra),
  );
  if (outcome.kind === "delivered") {
    log.info("rejected message", { outcome: "client-error", code });
  } else {
    // The sender may have gone in the meantime; nothing else to do.
    log.warn("could not deliver error frame", {
      outcome: outcome.kind,
      code,
      error: "error" in outcome ? outcome.error : undefined,
    });
  }
  return answeredWith(code, outcome.kind);
}

const refs = new WeakMap<WebSocketEvent, string | null>();

/**
 * The valid `ref` of the message `event` carries, if any. Every error frame answering a message that had one
 * carries it, so a client (the SDK's outbox) can fail exactly that send: read here, in the one place every error
 * frame goes through, rather than by each route; parsed only on this error path, once per event. An invalid ref
 * is not echoed (it is what `InvalidRef` is about, and may be anything).
 */
export function refOf(event: WebSocketEvent): string | undefined {
  let ref = refs.get(event);
  if (ref === undefined) {
    ref = null;
    try {
      const body: unknown = typeof event.body === "string" ? JSON.parse(event.body) : undefined;
      if (typeof body === "object" && body !== null && isValidSendRef((body as { ref?: unknown }).ref))
        ref = (body as { ref: string }).ref;
    } catch {
      // Not JSON: no ref to echo.
    }
    refs.set(event, ref);
  }
  return ref ?? undefined;
}
