/**
 * `sendmessage`: `{"action":"sendmessage","data":…}` is delivered to every live connection: to a plain client
 * `data` exactly as given (a string as is, any other JSON value as its JSON text), to a typed client (subprotocol
 * `websocket-chat.v1`) a `broadcast` envelope with the sender's verified identity, a server-made id and ts, so a
 * peer's `data` can never pass for a server frame there. The broadcast itself is broadcast/broadcast.ts:
 * streamed from the store, bounded and adaptive in concurrency, split across fan-out workers when it is too large
 * for one invocation.
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import {
  type BroadcastSummary,
  broadcast,
  deadlineOf,
  INTEGRATION_TIMEOUT_MS,
  isComplete,
} from "../broadcast/broadcast";
import { admitData } from "../chat/admission";
import { type HandlerDeps, requireConnections } from "../chat/deps";
import { type MessageInvocation, messageRoute } from "../chat/pipeline";
import { enforceBroadcastLimit } from "../chat/rate-limit";
import { replyError } from "../chat/reply";
import { announceDepartures, broadcastToRoom, checkRoom, lookupWho, roomBroadcastContext } from "../chat/rooms";
import { acknowledge, claimRef, settleClaim } from "../chat/send-claim";
import type { RemovedConnection } from "../contract/connection-store";
import { DEFAULT_FANOUT } from "../contract/env";
import {
  broadcastFrame,
  HISTORY_FRAME_OVERHEAD_BYTES,
  messageFrame,
  messageStamp,
  SEQ_FIELD_MAX_BYTES,
  type Who,
  withSeq,
} from "../contract/frames";
import { DEFAULT_HISTORY_SETTINGS, historyBounds } from "../contract/room-history";
import { MAX_POST_BYTES, preparePayload } from "../runtime/connections-api";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";

export const sendMessage = messageRoute(async (invocation) => {
  const { event, deps, log, body, context } = invocation;
  const admittedData = await admitData(
    event,
    deps,
    log,
    body,
    'sendmessage needs a "data" field, e.g. {"action":"sendmessage","data":"hello"}.',
  );
  if (!admittedData.ok) return admittedData.result;
  const { data, wire } = admittedData;
  const payload = preparePayload(wire);
  // With a room: an envelope to that room's members (chat/rooms.ts). Without: `data` to everyone, as is.
  if (body.room !== undefined && body.room !== null) return sendToRoom(invocation, body.room, data);
  // One post per connection of the API: its own, smaller budget (chat/rate-limit.ts).
  const budget = await enforceBroadcastLimit(event, deps, log);
  if (budget.kind !== "allowed") return budget.result;

  const connections = requireConnections(deps);
  // The envelope typed clients get instead of `data`: the sender as API Gateway verified it.
  const stamp = messageStamp(event.requestContext.requestId, event.requestContext.requestTimeEpoch);
  const envelope = broadcastFrame(await senderOf(invocation), data, stamp);
  if (Buffer.byteLength(envelope) > MAX_POST_BYTES) return envelopeTooLarge(invocation);
  const claimed = await claimRef(invocation, stamp.id, { kind: "everyone" });
  if (claimed.kind === "answered") return claimed.result;
  // Connections found gone are removed; the rooms they were in hear `left` once the broadcast is done.
  const departed: RemovedConnection[] = [];
  const summary = await broadcast({
    store: deps.store,
    connections,
    settings: deps.env.fanOut ?? DEFAULT_FANOUT,
    payload,
    typedPayload: preparePayload(envelope),
    broadcastId: event.requestContext.requestId,
    sender: event.requestContext.connectionId,
    deadline: deadlineOf(context, INTEGRATION_TIMEOUT_MS),
    invokeWorker: deps.invokeWorker,
    onRemoved: (removed) => departed.push(...removed),
  });
  if (claimed.kind === "claimed") {
    const delivered = reachedAnyone(summary);
    await settleClaim(invocation, claimed.claim, delivered);
    if (delivered) await acknowledge(invocation, claimed.claim);
  }
  if (departed.length > 0) await announceDepartures(roomBroadcastContext(event, deps, log, context), departed);
  const { listed, ...rest } = summary;
  const complete = isComplete(summary);
  log.info("broadcast", {
    outcome: complete ? "ok" : "partial",
    ...rest,
    // `targets` is the whole audience; `inline` the part this invocation posted itself.
    targets: listed,
    inline: summary.targets,
    bytes: payload.body.byteLength,
    postsPerSecond:
      summary.durationMs > 0 ? Math.round(((summary.delivered + summary.gone) * 1000) / summary.durationMs) : undefined,
  });
  return afterBroadcast(deps, event, log, summary, payload.body.byteLength);
});

/**
 * What `sendmessage` returns once its broadcast (of `bytes`) is done; the sender always hears when its message did
 * not reach everyone:
 * - API Gateway refused the payload itself (e.g. a frame limit below the 128 KB post limit): nobody got it, and
 *   the sender is told, as for any payload too large;
 * - the store could not list the audience at all (down, timing out): `StoreUnavailable`, nobody got it;
 * - anything else short of complete (posts that failed past their retries or ran out of time, a listing that
 *   failed part-way, ids dropped): `PartialDelivery`, with what this invocation knows of the counts.
 * The last two are faults of ours: the frame is posted, then the route returns 502 (reply.ts).
 */
async function afterBroadcast(
  deps: HandlerDeps,
  event: WebSocketEvent,
  log: Logger,
  summary: BroadcastSummary,
  bytes: number,
): Promise<HandlerResult> {
  if (summary.tooLarge > 0) {
    const message = `API Gateway refused the message as too large (${bytes} bytes).`;
    return replyError(deps, event, log, "PayloadTooLarge", message, { bytes });
  }
  if (summary.listingFailed && summary.listed === 0) {
    const message = "Your message reached no one: the server could not list its recipients; try again.";
    return replyError(deps, event, log, "StoreUnavailable", message);
  }
  if (isComplete(summary)) return { statusCode: 200 };
  return replyError(deps, event, log, "PartialDelivery", partialMessage(summary), partialCounts(summary));
}

/** Whether anyone may have the message (what {@link afterBroadcast} does not answer as "nobody got it"). */
function reachedAnyone(summary: BroadcastSummary): boolean {
  return summary.tooLarge === 0 && !(summary.listingFailed && summary.listed === 0);
}

/** The counts a `PartialDelivery` frame carries: what this invocation posted, and what it handed to workers. */
function partialCounts(summary: BroadcastSummary): Record<string, number | boolean> {
  return {
    delivered: summary.delivered,
    failed: summary.failed,
    total: summary.listed,
    ...(summary.dispatched > 0 ? { dispatched: summary.dispatched } : {}),
    ...(summary.listingFailed ? { listingFailed: true } : {}),
  };
}

function partialMessage(summary: BroadcastSummary): string {
  const reached = `Your message reached ${summary.delivered} of ${summary.listed} recipients`;
  if (summary.listingFailed) return `${reached}; the server could not list the rest. Sending again may repeat it.`;
  return `${reached}; ${summary.failed} could not be reached. Sending again may repeat it.`;
}

/**
 * `sendmessage` with `room`: only a member may send to a room (else `NotInRoom`); every member, the sender included,
 * gets `{"type":"message","room","id","from","userId"?,"name"?,"data","ts","seq"}`. The frame is appended to the
 * room's history first (which assigns `seq`; an append that fails is `StoreUnavailable` and nothing is delivered),
 * stored without `seq` and posted with it (contract/frames.ts `withSeq`), so live and history frames agree.
 */
async function sendToRoom(invocation: MessageInvocation, roomField: unknown, data: unknown): Promise<HandlerResult> {
  const { event, deps, log, context } = invocation;
  const check = checkRoom(roomField, "sendmessage");
  if (!check.ok) return replyError(deps, event, log, "InvalidRoom", check.message, check.extra);
  const { room } = check;
  const connectionId = event.requestContext.connectionId;
  const [who, rooms] = await Promise.all([lookupWho(deps, connectionId), deps.store.roomsOf(connectionId)]);
  if (!rooms.includes(room)) {
    return replyError(
      deps,
      event,
      log,
      "NotInRoom",
      `Join room "${room}" before sending to it: {"action":"join","room":"${room}"}.`,
      { room },
    );
  }
  const stamp = messageStamp(event.requestContext.requestId, event.requestContext.requestTimeEpoch);
  const frame = messageFrame(room, who, data, stamp);
  // With its seq, and inside a one-message history page, it must still fit one post.
  if (Buffer.byteLength(frame) > MAX_STORED_FRAME_BYTES) return envelopeTooLarge(invocation, MAX_STORED_FRAME_BYTES);
  const claimed = await claimRef(invocation, stamp.id, { kind: "room", room });
  if (claimed.kind === "answered") return claimed.result;
  let seq: number;
  try {
    const bounds = historyBounds(deps.env.history ?? DEFAULT_HISTORY_SETTINGS);
    seq = await deps.store.appendHistory(room, { id: stamp.id, frame }, bounds);
  } catch (error) {
    if (claimed.kind === "claimed") await settleClaim(invocation, claimed.claim, false);
    log.error("history append failed: nothing delivered", { outcome: "store-unavailable", error, room });
    const message = "Your message was not sent: the server could not store it; try again.";
    return replyError(deps, event, log, "StoreUnavailable", message, { room });
  }
  const posted = withSeq(frame, seq);
  const ctx = roomBroadcastContext(event, deps, log, context);
  const summary = await broadcastToRoom(ctx, room, posted, "message");
  if (claimed.kind === "claimed") {
    // In the room's history whatever the broadcast did: a resend would be a second message.
    await settleClaim(invocation, claimed.claim, true, seq);
    await acknowledge(invocation, claimed.claim, seq, room);
  }
  return afterBroadcast(deps, event, log, summary, Buffer.byteLength(posted));
}

/**
 * Largest room `message` frame: one post, less what `,"seq":N` and a one-message `history` page add around it, so
 * every stored message can be posted live and in a page.
 */
export const MAX_STORED_FRAME_BYTES = MAX_POST_BYTES - SEQ_FIELD_MAX_BYTES - HISTORY_FRAME_OVERHEAD_BYTES;

/**
 * The sender as the envelope names it. Its connection id is API Gateway's, so always right; its name and user id
 * come from the store, and if the store cannot answer the message still goes out, naming the sender by id alone.
 */
async function senderOf({ event, deps, log }: Pick<MessageInvocation, "event" | "deps" | "log">): Promise<Who> {
  const { connectionId } = event.requestContext;
  try {
    return await lookupWho(deps, connectionId);
  } catch (error) {
    log.warn("sender lookup failed: the envelope names the connection id only", { outcome: "error", error });
    return { connectionId };
  }
}

/** The message fits `maxDataBytes` but not, with its envelope, one `@connections` post (or `limit`). */
function envelopeTooLarge(
  { event, deps, log }: Pick<MessageInvocation, "event" | "deps" | "log">,
  limit = MAX_POST_BYTES,
): Promise<HandlerResult> {
  return replyError(deps, event, log, "PayloadTooLarge", `The message with its envelope is over ${limit} bytes.`, {
    limit,
  });
}

export const handler = lambdaHandler(sendMessage, containerDeps);
