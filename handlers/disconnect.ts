/**
 * `$disconnect`: forgets the connection and its room memberships, and tells the rooms it was in (`left`). Best
 * effort: API Gateway ignores the result and may never call it.
 */
import type { InvocationContext } from "../broadcast/broadcast";
import { containerDeps } from "../app/container";
import type { HandlerDeps } from "../chat/deps";
import { invocationLogger, type HandlerResult, type WebSocketEvent } from "../runtime/event";
import { announceDepartures, roomBroadcastContext } from "../chat/rooms";
import { inProcessWorkers } from "./send-message";

export async function disconnect(
  event: WebSocketEvent,
  deps: HandlerDeps,
  context?: InvocationContext,
): Promise<HandlerResult> {
  const log = invocationLogger(deps.log, event);
  const started = Date.now();
  const { disconnectStatusCode, disconnectReason } = event.requestContext;
  try {
    const removed = await deps.store.remove(event.requestContext.connectionId);
    log.info("disconnected", {
      outcome: "ok",
      disconnectStatusCode,
      disconnectReason,
      rooms: removed?.rooms.length ?? 0,
      durationMs: Date.now() - started,
    });
    if (removed && removed.rooms.length > 0 && deps.connections) {
      await announceDepartures(
        roomBroadcastContext(event, deps, log, deps.invokeWorker ?? inProcessWorkers(deps).invoke, context),
        [removed],
      );
    }
  } catch (error) {
    // Not fatal: the record expires on its own, and the next broadcast's 410 removes it.
    log.warn("disconnect cleanup failed", { outcome: "error", error, durationMs: Date.now() - started });
  }
  return { statusCode: 200 };
}

export const handler = async (event: WebSocketEvent, context?: InvocationContext): Promise<HandlerResult> =>
  disconnect(event, await containerDeps(), context);
