/**
 * Acknowledged, idempotent sends: a `sendmessage` or `sendto` may carry the client's own `ref`. The first claim of
 * a ref (within `SEND_REF_WINDOW_SECONDS`) is delivered and acknowledged; the same ref again (a resend after a
 * reconnect, say) is acknowledged with the first send's id and seq and `"duplicate":true`, and nothing is
 * delivered (docs/history.md, "Frames and handler flow").
 *
 * The scope a ref is unique in: the authorizer's user id when there is one, so a resend from the user's next
 * connection is recognised; else the connection id. Without auth nothing ties two connections to one client that
 * the server could trust, and a shared scope would let any client's ref (refs are the client's choice: "1" is
 * valid) suppress another client's message; so without auth a ref is de-duplicated within one connection only.
 */
import { ackFrame } from "../contract/frames";
import { DEFAULT_SEND_REF_WINDOW_SECONDS, isValidSendRef, SEND_REF_PATTERN } from "../contract/room-history";
import type { HandlerResult } from "../runtime/event";
import { requireConnections } from "./deps";
import type { MessageInvocation } from "./pipeline";
import { replyError } from "./reply";

/** A claimed ref: settle it once the send is done. */
export interface ClaimedSend {
  readonly scope: string;
  readonly ref: string;
  readonly id: string;
  readonly windowMs: number;
}

export type SendClaimResult =
  /** No `ref`: an unacknowledged send, as before. */
  | { readonly kind: "none" }
  | { readonly kind: "claimed"; readonly claim: ClaimedSend }
  /** Answered (a duplicate's ack, or `InvalidRef`): the route returns `result` and delivers nothing. */
  | { readonly kind: "answered"; readonly result: HandlerResult };

/** The scope of a connection's refs (see above). */
export function sendScope(invocation: Pick<MessageInvocation, "event">): string {
  const { authorizer, connectionId } = invocation.event.requestContext;
  const userId = authorizer?.userId ?? authorizer?.principalId;
  return typeof userId === "string" && userId !== "" && userId.length <= 250 ? `u:${userId}` : `c:${connectionId}`;
}

/** Validates and claims the body's `ref` for the message `id` (of `room`, when it goes to one). */
export async function claimRef(invocation: MessageInvocation, id: string, room?: string): Promise<SendClaimResult> {
  const { event, deps, log, body } = invocation;
  if (body.ref === undefined) return { kind: "none" };
  if (!isValidSendRef(body.ref)) {
    return {
      kind: "answered",
      result: await replyError(
        deps,
        event,
        log,
        "InvalidRef",
        '"ref" must be 1-64 characters of A-Z a-z 0-9 _ . : - (a UUID fits).',
        { pattern: SEND_REF_PATTERN.source },
      ),
    };
  }
  const windowMs = (deps.env.history?.sendRefWindowSeconds ?? DEFAULT_SEND_REF_WINDOW_SECONDS) * 1000;
  const claim: ClaimedSend = { scope: sendScope(invocation), ref: body.ref, id, windowMs };
  const found = await deps.store.claimSend(claim.scope, claim.ref, id, windowMs);
  if (found.status === "claimed") return { kind: "claimed", claim };
  log.info("duplicate send", { outcome: "duplicate", ref: claim.ref });
  await requireConnections(deps).post(
    event.requestContext.connectionId,
    ackFrame({ ref: claim.ref, id: found.id, seq: found.seq, room, duplicate: true }),
  );
  return { kind: "answered", result: { statusCode: 200 } };
}

/**
 * Settles a claimed send: `seq` (or none) when something was delivered, else released so the client's retry is a
 * first claim again. Best effort: a settle that fails leaves the claim in progress (a retry is acknowledged as a
 * duplicate without seq, never delivered twice), and must not turn a delivered message into an error.
 */
export async function settleClaim(
  invocation: Pick<MessageInvocation, "deps" | "log">,
  claim: ClaimedSend,
  delivered: boolean,
  seq?: number,
): Promise<void> {
  const outcome = delivered
    ? { id: claim.id, ...(seq !== undefined ? { seq } : {}) }
    : { id: claim.id, released: true as const };
  try {
    await invocation.deps.store.settleSend(claim.scope, claim.ref, outcome, claim.windowMs);
  } catch (error) {
    invocation.log.warn("could not settle a send reference", { outcome: "error", error, ref: claim.ref });
  }
}

/** Tells the sender its message went out: `{"type":"ack","ref","id","seq"?,"room"?}`. */
export async function acknowledge(
  invocation: Pick<MessageInvocation, "event" | "deps">,
  claim: ClaimedSend,
  seq?: number,
  room?: string,
): Promise<void> {
  await requireConnections(invocation.deps).post(
    invocation.event.requestContext.connectionId,
    ackFrame({ ref: claim.ref, id: claim.id, seq, room }),
  );
}
