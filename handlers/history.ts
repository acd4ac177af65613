/**
 * `history`: `{"action":"history","room","before"?,"after"?,"limit"?}` answers one
 * `{"type":"history","room","messages":[…],"latestSeq","more","complete"?}` page of the room's history: backwards
 * from `before` (absent: the newest), or forwards after `after` (the rest of a resume). Members only (`NotInRoom`);
 * `limit` 1-100, default 50 (chat/history-page.ts).
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { requireConnections } from "../chat/deps";
import { checkHistoryQuery, readHistoryFrame } from "../chat/history-page";
import { messageRoute } from "../chat/pipeline";
import { replyError } from "../chat/reply";
import { checkRoom } from "../chat/rooms";

export const roomHistory = messageRoute(async ({ event, deps, log, body }) => {
  const check = checkRoom(body.room, "history");
  if (!check.ok) return replyError(deps, event, log, "InvalidRoom", check.message, check.extra);
  const { room } = check;
  const query = checkHistoryQuery(body);
  if (!query.ok) return replyError(deps, event, log, "InvalidHistoryQuery", query.message, { ...query.extra, room });
  const connectionId = event.requestContext.connectionId;
  const rooms = await deps.store.roomsOf(connectionId);
  if (!rooms.includes(room)) {
    return replyError(
      deps,
      event,
      log,
      "NotInRoom",
      `Join room "${room}" before reading its history: {"action":"join","room":"${room}"}.`,
      { room },
    );
  }
  const frame = await readHistoryFrame(deps, room, query.query);
  const outcome = await requireConnections(deps).post(connectionId, frame);
  log.info("history", { outcome: outcome.kind, room, direction: query.query.direction });
  return { statusCode: 200 };
});

export const handler = lambdaHandler(roomHistory, containerDeps);
