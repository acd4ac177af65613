/**
 * `sendmessage`: `{"action":"sendmessage","data":…}` is delivered to every live connection, `data` exactly as
 * given (a string as is, any other JSON value as its JSON text). The broadcast itself is broadcast/broadcast.ts:
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
import { FAULT, replyError } from "../chat/reply";
import { announceDepartures, broadcastToRoom, checkRoom, lookupWho, roomBroadcastContext } from "../chat/rooms";
import type { RemovedConnection } from "../contract/connection-store";
import { DEFAULT_FANOUT } from "../contract/env";
import { messageFrame } from "../contract/frames";
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
  // Connections found gone are removed; the rooms they were in hear `left` once the broadcast is done.
  const departed: RemovedConnection[] = [];
  const summary = await broadcast({
    store: deps.store,
    connections,
    settings: deps.env.fanOut ?? DEFAULT_FANOUT,
    payload,
    broadcastId: event.requestContext.requestId,
    sender: event.requestContext.connectionId,
    deadline: deadlineOf(context, INTEGRATION_TIMEOUT_MS),
    invokeWorker: deps.invokeWorker,
    onRemoved: (removed) => departed.push(...removed),
  });
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
 * What `sendmessage` returns once its broadcast (of `bytes`) is done. If API Gateway refused the payload itself
 * (e.g. a frame limit below the 128 KB post limit), nobody got it: the sender is told, as for any payload too
 * large. If the store could not list the audience (down, timing out), part or all of it never got the message: a
 * fault of ours (reply.ts).
 */
async function afterBroadcast(
  deps: HandlerDeps,
  event: WebSocketEvent,
  log: Logger,
  summary: Pick<BroadcastSummary, "tooLarge" | "listingFailed">,
  bytes: number,
): Promise<HandlerResult> {
  let answered: HandlerResult = { statusCode: 200 };
  if (summary.tooLarge > 0) {
    const message = `API Gateway refused the message as too large (${bytes} bytes).`;
    answered = await replyError(deps, event, log, "PayloadTooLarge", message, { bytes });
  }
  return summary.listingFailed ? FAULT : answered;
}

/**
 * `sendmessage` with `room`: only a member may send to a room (else `NotInRoom`); every member, the sender included,
 * gets `{"type":"message","room","from","userId"?,"name"?,"data","ts"}`.
 */
async function sendToRoom(
  { event, deps, log, context }: MessageInvocation,
  roomField: unknown,
  data: unknown,
): Promise<HandlerResult> {
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
  const frame = messageFrame(room, who, data, Date.now());
  if (Buffer.byteLength(frame) > MAX_POST_BYTES) {
    return replyError(
      deps,
      event,
      log,
      "PayloadTooLarge",
      `The message with its envelope is over ${MAX_POST_BYTES} bytes.`,
      { limit: MAX_POST_BYTES },
    );
  }
  const ctx = roomBroadcastContext(event, deps, log, context);
  const summary = await broadcastToRoom(ctx, room, frame, "message");
  return afterBroadcast(deps, event, log, summary, Buffer.byteLength(frame));
}

export const handler = lambdaHandler(sendMessage, containerDeps);
