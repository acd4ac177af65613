/**
 * `sendto`: `{"action":"sendto","to":"<connectionId>","data":…}` delivers `{"type":"direct","id","from",…,"data","ts"}`
 * to that one connection (the management API's "send to a specific client"). With a `ref` the sender gets an `ack`
 * (chat/send-claim.ts); without one it hears back only on failure:
 * `RecipientGone` when the recipient is gone (it is then removed, and its rooms hear `left`), `DeliveryFailed`
 * otherwise.
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { admitData } from "../chat/admission";
import { requireConnections } from "../chat/deps";
import { type MessageInvocation, messageRoute } from "../chat/pipeline";
import { replyError } from "../chat/reply";
import { announceDepartures, lookupWho, roomBroadcastContext } from "../chat/rooms";
import { acknowledge, claimRef, settleClaim } from "../chat/send-claim";
import { goneCutoff } from "../contract/connection-store";
import { directFrame, messageStamp } from "../contract/frames";
import { MAX_POST_BYTES, type PostOutcome, preparePayload } from "../runtime/connections-api";
import type { HandlerResult } from "../runtime/event";

/** What a connection id may contain. */
const CONNECTION_ID_PATTERN = /^[A-Za-z0-9_=+-]+$/;
/** Longest `to` accepted (API Gateway's ids are 16 characters). */
export const MAX_CONNECTION_ID_LENGTH = 128;

export const sendTo = messageRoute(async (invocation) => {
  const { event, deps, log, body } = invocation;
  const { to } = body;
  // API Gateway's ids are base64-like; anything else (`..`, lone surrogates, separators) can only be a mistake and
  // must never reach the `@connections/{id}` path.
  if (typeof to !== "string" || to.length > MAX_CONNECTION_ID_LENGTH || !CONNECTION_ID_PATTERN.test(to)) {
    return replyError(
      deps,
      event,
      log,
      "MissingTo",
      'sendto needs "to": a connection id, e.g. {"action":"sendto","to":"<connectionId>","data":"hi"}.',
    );
  }
  const admittedData = await admitData(
    event,
    deps,
    log,
    body,
    'sendto needs a "data" field, e.g. {"action":"sendto","to":"<connectionId>","data":"hi"}.',
  );
  if (!admittedData.ok) return admittedData.result;
  const { requestId, requestTimeEpoch, connectionId } = event.requestContext;
  const stamp = messageStamp(requestId, requestTimeEpoch);
  const payload = preparePayload(directFrame(await lookupWho(deps, connectionId), admittedData.data, stamp));
  // The envelope can push a within-limit `data` past API Gateway's own limit.
  if (payload.body.byteLength > MAX_POST_BYTES) {
    const { wire, maxDataBytes } = admittedData;
    return replyError(
      deps,
      event,
      log,
      "PayloadTooLarge",
      `"data" is ${Buffer.byteLength(wire)} bytes; the limit is ${maxDataBytes}.`,
      { limit: maxDataBytes },
    );
  }
  const claimed = await claimRef(invocation, stamp.id, { kind: "connection", to });
  if (claimed.kind === "answered") return claimed.result;
  const outcome = await requireConnections(deps).post(to, payload);
  log.info("direct message", { outcome: outcome.kind, to, bytes: payload.body.byteLength });
  if (claimed.kind === "claimed") {
    // Only a delivered message is remembered: after a failure the client's retry is a first send again.
    await settleClaim(invocation, claimed.claim, outcome.kind === "delivered");
    if (outcome.kind === "delivered") await acknowledge(invocation, claimed.claim);
  }
  return answerDelivery(invocation, to, outcome, payload.body.byteLength);
});

/** What `sendto` answers once the post to `to` (of `bytes`) came to `outcome`. */
async function answerDelivery(
  { event, deps, log, context }: MessageInvocation,
  to: string,
  outcome: PostOutcome,
  bytes: number,
): Promise<HandlerResult> {
  switch (outcome.kind) {
    case "delivered":
      return { statusCode: 200 };
    case "gone": {
      const answered = await replyError(deps, event, log, "RecipientGone", `Connection ${to} is gone.`, { to });
      try {
        // A recipient in its first seconds answers 410 too (its `$connect` still running): its record is spared.
        const removed = await deps.store.removeMany([to], goneCutoff());
        await announceDepartures(roomBroadcastContext(event, deps, log, context), removed);
      } catch (error) {
        log.warn("could not remove a gone recipient", { outcome: "error", to, error });
      }
      return answered;
    }
    case "too-large":
      return replyError(
        deps,
        event,
        log,
        "PayloadTooLarge",
        `API Gateway refused the message as too large (${bytes} bytes).`,
        { bytes },
      );
    case "failed":
      // Ours (throttled past the retries, a 5xx): a fault, whatever became of the frame telling the sender.
      return replyError(deps, event, log, "DeliveryFailed", `Could not deliver to ${to}; try again.`, { to });
  }
}

export const handler = lambdaHandler(sendTo, containerDeps);
