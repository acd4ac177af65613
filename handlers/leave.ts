/**
 * `leave`: `{"action":"leave","room":"lobby"}`. The remaining members get `{"type":"left",…}`, and so does the
 * leaver, as its acknowledgement. Leaving a room one is not in answers `NotInRoom`.
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { requireConnections } from "../chat/deps";
import { messageRoute } from "../chat/pipeline";
import { replyError } from "../chat/reply";
import { broadcastToRoom, checkRoom, lookupWho, roomBroadcastContext } from "../chat/rooms";
import { presenceFrame } from "../contract/frames";

export const leaveRoom = messageRoute(async ({ event, deps, log, body, context }) => {
  const check = checkRoom(body.room, "leave");
  if (!check.ok) return replyError(deps, event, log, "InvalidRoom", check.message, check.extra);
  const { room } = check;
  const connectionId = event.requestContext.connectionId;
  if (!(await deps.store.leave(connectionId, room))) {
    return replyError(deps, event, log, "NotInRoom", `Not a member of room "${room}".`, { room });
  }
  const frame = presenceFrame("left", room, await lookupWho(deps, connectionId), Date.now());
  const ctx = roomBroadcastContext(event, deps, log, context);
  await broadcastToRoom(ctx, room, frame, "left");
  await requireConnections(deps).post(connectionId, frame);
  log.info("left room", { outcome: "ok", room });
  return { statusCode: 200 };
});

export const handler = lambdaHandler(leaveRoom, containerDeps);
