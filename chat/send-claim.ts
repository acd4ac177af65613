/**
 * Acknowledged, idempotent sends: a `sendmessage` or `sendto` may carry the client's own `ref`. The first claim of
 * a ref (within `SEND_REF_WINDOW_SECONDS`) is delivered and acknowledged; the same ref again (a resend after a
 * reconnect, say) is acknowledged with the first send's id and seq and `"duplicate":true`, and nothing is
 * delivered (docs/history.md, "Frames and handler flow").
 *
 * The scope a ref is unique in has two parts. Who: the authorizer's user id when there is one, so a resend from the
 * user's next connection is recognised. Without auth nothing ties two connections to one client that the server
 * could trust: a short ref ("1" is valid) is unique within its connection only, since a shared scope would let any
 * client suppress another's message by sending the same ref first; a ref of `SHARED_SEND_REF_MIN_LENGTH` or more
 * characters is unique across all anonymous connections, because a random one that long cannot be guessed (and is
 * only ever echoed to its sender). Where: the room, the recipient connection, or everyone, so a ref reused for
 * another destination is a new send, never acknowledged with a message that went somewhere else.
 */
import { ackFrame } from "../contract/frames";
import {
  DEFAULT_SEND_REF_WINDOW_SECONDS,
  isValidSendRef,
  SEND_REF_PATTERN,
  SHARED_SEND_REF_MIN_LENGTH,
} from "../contract/room-history";
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

/** Where a send goes: one room, one connection, or every connection of the API. */
export type SendDestination =
  | { readonly kind: "room"; readonly room: string }
  | { readonly kind: "connection"; readonly to: string }
  | { readonly kind: "everyone" };

/** The scope of a ref (see above): `<who>|<where>`. */
export function sendScope(
  invocation: Pick<MessageInvocation, "event">,
  ref: string,
  destination: SendDestination,
): string {
  const { authorizer, connectionId } = invocation.event.requestContext;
  const userId = authorizer?.userId ?? authorizer?.principalId;
  const who =
    typeof userId === "string" && userId !== "" && userId.length <= 250
      ? `u:${userId}`
      : ref.length >= SHARED_SEND_REF_MIN_LENGTH
        ? "a"
        : `c:${connectionId}`;
  const where =
    destination.kind === "room"
      ? `r:${destination.room}`
      : destination.kind === "connection"
        ? `t:${destination.to}`
        : "b";
  return `${who}|${where}`;
}

/** Validates and claims the body's `ref` for the message `id` going to `destination`. */
export async function claimRef(
  invocation: MessageInvocation,
  id: string,
  destination: SendDestination,
): Promise<SendClaimResult> {
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
  const claim: ClaimedSend = { scope: sendScope(invocation, body.ref, destination), ref: body.ref, id, windowMs };
  const room = destination.kind === "room" ? destination.room : undefined;
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
