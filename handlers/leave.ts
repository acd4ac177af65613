/**
 * `leave`: `{"action":"leave","room":"lobby"}`. The remaining members get `{"type":"left",…}`, and so does the
 * leaver, as its acknowledgement. Leaving a room one is not in answers `NotInRoom`.
 */
import { admitMessage } from "../chat/admission";
import { containerDeps } from "../app/container";
import { requireConnections, type HandlerDeps } from "../chat/deps";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { presenceFrame } from "../contract/frames";
import { replyError } from "../chat/reply";
import { broadcastToRoom, checkRoom, lookupWho, roomBroadcastContext } from "../chat/rooms";
import type { InvocationContext } from "../broadcast/broadcast";
import { inProcessWorkers } from "./send-message";

export async function leaveRoom(
  event: WebSocketEvent,
  deps: HandlerDeps,
  context?: InvocationContext,
): Promise<HandlerResult> {
  const admitted = await admitMessage(event, deps);
  if (!admitted.ok) return admitted.result;
  const { log, body } = admitted;
  const check = checkRoom(body.room, "leave");
  if (!check.ok) return replyError(deps, event, log, "InvalidRoom", check.message, check.extra);
  const { room } = check;
  const connectionId = event.requestContext.connectionId;
  if (!(await deps.store.leave(connectionId, room))) {
    return replyError(deps, event, log, "NotInRoom", `Not a member of room "${room}".`, { room });
  }
  const frame = presenceFrame("left", room, await lookupWho(deps, connectionId), Date.now());
  const ctx = roomBroadcastContext(event, deps, log, deps.invokeWorker ?? inProcessWorkers(deps).invoke, context);
  await broadcastToRoom(ctx, room, frame, "left");
  await requireConnections(deps).post(connectionId, frame);
  log.info("left room", { outcome: "ok", room });
  return { statusCode: 200 };
}

export const handler = async (event: WebSocketEvent, context?: InvocationContext): Promise<HandlerResult> =>
  leaveRoom(event, await containerDeps(), context);
