/**
 * `sendmessage`: `{"action":"sendmessage","data":…}` is delivered to every live connection, `data` exactly as
 * given (a string as is, any other JSON value as its JSON text). The broadcast itself is broadcast/broadcast.ts:
 * streamed from the store, bounded and adaptive in concurrency, split across fan-out workers when it is too large
 * for one invocation.
 */
import { admitData, admitMessage } from "../chat/admission";
import {
  INTEGRATION_TIMEOUT_MS,
  broadcast,
  deadlineOf,
  type BroadcastSummary,
  type InvocationContext,
  type InvokeWorker,
} from "../broadcast/broadcast";
import { fanOutWorker } from "./fan-out-worker";
import { ConnectionsApi, MAX_POST_BYTES, preparePayload } from "../runtime/connections-api";
import { containerDeps } from "../app/container";
import { requireConnections, type HandlerDeps } from "../chat/deps";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { DEFAULT_FANOUT } from "../contract/env";
import { InProcessInvoker } from "../broadcast/worker-invoker";
import { FAULT, replyError } from "../chat/reply";
import { messageFrame } from "../contract/frames";
import type { Logger } from "../runtime/logger";
import { announceDepartures, broadcastToRoom, checkRoom, lookupWho, roomBroadcastContext } from "../chat/rooms";
import type { RemovedConnection } from "../contract/connection-store";

const inProcess = new WeakMap<HandlerDeps, InProcessInvoker>();

/**
 * The in-process stand-in for the worker Lambda used when `deps.invokeWorker` is absent (local runs, tests): shards
 * run one at a time in this process, with their own keep-alive agent, as a separate Lambda would have.
 */
export function inProcessWorkers(deps: HandlerDeps): InProcessInvoker {
  let invoker = inProcess.get(deps);
  if (!invoker) {
    let workerDeps: HandlerDeps | undefined;
    invoker = new InProcessInvoker((event) => {
      if (!workerDeps) {
        const own = requireConnections(deps);
        const settings = deps.env.fanOut ?? DEFAULT_FANOUT;
        const connections = ConnectionsApi.forEndpoint(deps.env.callbackUrl ?? "", {
          ...own.postOptions,
          maxSockets: Math.min(settings.concurrency, own.maxSockets),
        });
        workerDeps = { ...deps, connections };
      }
      return fanOutWorker(event, workerDeps);
    });
    inProcess.set(deps, invoker);
  }
  return invoker;
}

export async function sendMessage(
  event: WebSocketEvent,
  deps: HandlerDeps,
  context?: InvocationContext,
): Promise<HandlerResult> {
  const admitted = await admitMessage(event, deps);
  if (!admitted.ok) return admitted.result;
  const { log, body } = admitted;
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
  if (body.room !== undefined && body.room !== null) return sendToRoom(event, deps, log, body.room, data, context);

  const connections = requireConnections(deps);
  const invokeWorker: InvokeWorker = deps.invokeWorker ?? inProcessWorkers(deps).invoke;
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
    invokeWorker,
    onRemoved: (removed) => departed.push(...removed),
  });
  if (departed.length > 0)
    await announceDepartures(roomBroadcastContext(event, deps, log, invokeWorker, context), departed);
  const { listed, ...rest } = summary;
  const complete =
    summary.failed === 0 &&
    summary.tooLarge === 0 &&
    !summary.truncated &&
    !summary.listingFailed &&
    summary.dropped === 0;
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
}

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
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  roomField: unknown,
  data: unknown,
  context?: InvocationContext,
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
  const ctx = roomBroadcastContext(event, deps, log, deps.invokeWorker ?? inProcessWorkers(deps).invoke, context);
  const summary = await broadcastToRoom(ctx, room, frame, "message");
  return afterBroadcast(deps, event, log, summary, Buffer.byteLength(frame));
}

export const handler = async (event: WebSocketEvent, context?: InvocationContext): Promise<HandlerResult> =>
  sendMessage(event, await containerDeps(), context);
