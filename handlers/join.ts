/**
 * `join`: `{"action":"join","room":"lobby"}`. The joiner gets `{"type":"members",…}` (the room's members, itself
 * included); on a first join every member, the joiner too, gets `{"type":"joined",…}`. Joining a room again only
 * answers `members` again. With `"after":N` (the last seq the client saw) the joiner then gets one `history` page
 * of what it missed: membership first, then the read, so every message is live, in the page, or both, never
 * neither (docs/history.md, "the seam").
 */
import { containerDeps } from "../app/container";
import { lambdaHandler } from "../app/lambda-handler";
import { requireConnections } from "../chat/deps";
import { checkAfter, DEFAULT_HISTORY_PAGE, readHistoryFrame } from "../chat/history-page";
import { messageRoute } from "../chat/pipeline";
import { replyError } from "../chat/reply";
import {
  broadcastToRoom,
  checkRoom,
  lookupWho,
  maxMembersOf,
  maxRoomsOf,
  membersOf,
  roomBroadcastContext,
} from "../chat/rooms";
import { membersFrame, presenceFrame } from "../contract/frames";

export const joinRoom = messageRoute(async ({ event, deps, log, body, context }) => {
  const check = checkRoom(body.room, "join");
  if (!check.ok) return replyError(deps, event, log, "InvalidRoom", check.message, check.extra);
  const { room } = check;
  const resume = checkAfter(body.after);
  if (!resume.ok) return replyError(deps, event, log, "InvalidHistoryQuery", resume.message, { ...resume.extra, room });
  const connectionId = event.requestContext.connectionId;
  const limit = maxRoomsOf(deps);
  const maxMembers = maxMembersOf(deps);
  const result = await deps.store.join(connectionId, room, limit, maxMembers);
  if (result === "room-full") {
    return replyError(deps, event, log, "RoomFull", `Room "${room}" has ${maxMembers} members, its limit; try later.`, {
      room,
      limit: maxMembers,
    });
  }
  if (result === "too-many-rooms") {
    const rooms = await deps.store.roomsOf(connectionId);
    return replyError(
      deps,
      event,
      log,
      "TooManyRooms",
      `A connection may be in at most ${limit} rooms; leave one first.`,
      { room, limit, rooms },
    );
  }
  if (result === "unknown-connection") {
    return replyError(
      deps,
      event,
      log,
      "UnknownConnection",
      "This connection is not registered (it may have expired); reconnect.",
    );
  }
  const [who, { members, more }] = await Promise.all([lookupWho(deps, connectionId), membersOf(deps, room)]);
  // A GSI listing is eventually consistent: the joiner is a member whether or not it shows yet.
  if (!members.some((m) => m.connectionId === connectionId)) members.unshift(who);
  await requireConnections(deps).post(connectionId, membersFrame(room, members, more));
  if (resume.after !== undefined) {
    const page = await readHistoryFrame(deps, room, {
      direction: "after",
      after: resume.after,
      limit: DEFAULT_HISTORY_PAGE,
    });
    await requireConnections(deps).post(connectionId, page);
  }
  if (result === "joined") {
    const ctx = roomBroadcastContext(event, deps, log, context);
    await broadcastToRoom(ctx, room, presenceFrame("joined", room, who, Date.now()), "joined");
  }
  log.info("joined room", { outcome: result, room });
  return { statusCode: 200 };
});

export const handler = lambdaHandler(joinRoom, containerDeps);
