/**
 * `$disconnect`: forgets the connection and its room memberships, and tells the rooms it was in (`left`). Best
 * effort: API Gateway ignores the result and may never call it.
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { plainRoute } from "../chat/pipeline";
import { userIdOf } from "../chat/rate-limit";
import { announceDepartures, roomBroadcastContext } from "../chat/rooms";
import { releaseConnectionSlot } from "../chat/user-connections";

export const disconnect = plainRoute(async ({ event, deps, log, context }) => {
  const started = Date.now();
  const { disconnectStatusCode, disconnectReason } = event.requestContext;
  try {
    const removed = await deps.store.remove(event.requestContext.connectionId);
    // The user's connection slot (chat/user-connections.ts): from the event's authorizer context, else the record.
    await releaseConnectionSlot(
      deps,
      log,
      userIdOf(event) ?? removed?.attributes?.userId,
      event.requestContext.connectionId,
    );
    log.info("disconnected", {
      outcome: "ok",
      disconnectStatusCode,
      disconnectReason,
      rooms: removed?.rooms.length ?? 0,
      durationMs: Date.now() - started,
    });
    if (removed && removed.rooms.length > 0 && deps.connections) {
      await announceDepartures(roomBroadcastContext(event, deps, log, context), [removed]);
    }
  } catch (error) {
    // Not fatal: the record expires on its own, and the next broadcast's 410 removes it.
    log.warn("disconnect cleanup failed", { outcome: "error", error, durationMs: Date.now() - started });
  }
  return { statusCode: 200 };
});

export const handler = lambdaHandler(disconnect, containerDeps);
