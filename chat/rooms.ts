/**
 * Rooms, shared by the route handlers: room-name validation, who a connection is (for envelopes and presence),
 * the member list a joiner gets, and room-scoped broadcasts — the same machinery as `sendmessage`'s broadcast
 * (broadcast/broadcast.ts: streamed listing, bounded adaptive fan-out, worker shards), listing one room's members.
 *
 * Presence: a connection that leaves, disconnects, or is found gone (410) while anything is posted and is then
 * removed from the store, is announced with a `left` frame in each room it was in. The store's removal reports
 * those rooms (`RemovedConnection`), so no extra lookup races with the removal. A presence broadcast can itself
 * find gone connections; their departures are announced in turn, up to {@link MAX_PRESENCE_DEPTH} rounds.
 */

import {
  type BroadcastSummary,
  broadcast,
  deadlineOf,
  INTEGRATION_TIMEOUT_MS,
  type InvocationContext,
  type InvokeWorker,
  isComplete,
} from "../broadcast/broadcast";
import { isValidRoomName, type RemovedConnection } from "../contract/connection-store";
import { DEFAULT_FANOUT, DEFAULT_MAX_MEMBERS_PER_ROOM, DEFAULT_MAX_ROOMS_PER_CONNECTION } from "../contract/env";
import { presenceFrame, type Who } from "../contract/frames";
import { preparePayload } from "../runtime/connections-api";
import type { WebSocketEvent } from "../runtime/event";
import type { Logger } from "../runtime/logger";
import { type HandlerDeps, requireConnections } from "./deps";

/** Members listed in the `members` frame a joiner gets, at most (`more: true` beyond). */
export const MAX_MEMBERS_SHOWN = 100;
/** Rounds of "a presence broadcast found gone connections, announce their departure" before stopping. */
export const MAX_PRESENCE_DEPTH = 2;
/** Longest display name kept from `?name=` at connect, in characters. */
export const MAX_NAME_LENGTH = 32;

export type RoomCheck =
  | { readonly ok: true; readonly room: string }
  | { readonly ok: false; readonly message: string; readonly extra: Record<string, unknown> };

/** A `room` field as sent: a valid room name, or the `InvalidRoom` message to answer. */
export function checkRoom(value: unknown, action: string): RoomCheck {
  if (isValidRoomName(value)) return { ok: true, room: value };
  if (value === undefined || value === null) {
    return {
      ok: false,
      message: `${action} needs a "room" field, e.g. {"action":"${action}","room":"lobby"}.`,
      extra: {},
    };
  }
  const shown = typeof value === "string" ? value.slice(0, 100) : undefined;
  return {
    ok: false,
    message: "Room names are 1-64 characters of A-Z a-z 0-9 _ . -",
    extra: shown !== undefined ? { room: shown } : {},
  };
}

export function maxRoomsOf(deps: HandlerDeps): number {
  return deps.env.maxRoomsPerConnection ?? DEFAULT_MAX_ROOMS_PER_CONNECTION;
}

/** The bound on a room's members, or `undefined` for none (0). */
export function maxMembersOf(deps: HandlerDeps): number | undefined {
  const bound = deps.env.maxMembersPerRoom ?? DEFAULT_MAX_MEMBERS_PER_ROOM;
  return bound > 0 ? bound : undefined;
}

/**
 * Characters a display name never keeps, by Unicode category rather than by list, so no code point of a kind is
 * forgotten: controls (Cc, with C0 and C1), format characters (Cf: the bidi embeddings, overrides, isolates and
 * marks, which let a name reorder the text shown after it, "alice" + U+202E making the rest of the line read
 * backwards; soft hyphens; invisible operators; tags), line and paragraph separators (Zl, Zp: a name that starts a
 * new line can forge one), lone surrogates and private use (Cs, Co), and every default-ignorable code point
 * (zero-width characters, variation selectors, the Hangul fillers that show as blank), which make two names that
 * look the same differ, or a name look empty.
 */
const NOT_IN_NAMES = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Default_Ignorable_Code_Point}]/gu;
/** Combining marks kept on one base character: enough for any script's accents, not for a tower of them. */
export const MAX_MARKS_PER_CHARACTER = 2;

/**
 * A display name (`?name=`, or the authorizer's `name`): NFC-normalised (so one look has one spelling), the
 * characters above dropped, at most {@link MAX_MARKS_PER_CHARACTER} combining marks per character, trimmed, at most
 * {@link MAX_NAME_LENGTH} characters.
 */
export function displayName(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let kept = "";
  let marks = 0;
  for (const char of raw.normalize("NFC").replace(NOT_IN_NAMES, "")) {
    marks = /\p{M}/u.test(char) ? marks + 1 : 0;
    if (marks <= MAX_MARKS_PER_CHARACTER) kept += char;
  }
  const cleaned = [...kept.trim()].slice(0, MAX_NAME_LENGTH).join("").trim();
  return cleaned === "" ? undefined : cleaned;
}

/**
 * The connection attribute `$connect` sets to `"true"` when `name` came from the authorizer (verified); a name
 * without it was chosen by the client. Reserved: `$connect` drops an authorizer context key of this name.
 */
export const NAME_VERIFIED_ATTRIBUTE = "nameVerified";

/** Who a connection is, from its stored attributes: `userId` is the authorizer's (`userId`, else `principalId`). */
export function whoOf(connectionId: string, attributes?: Readonly<Record<string, string>>): Who {
  const userId = attributes?.userId ?? attributes?.principalId;
  const name = attributes?.name;
  return {
    connectionId,
    ...(userId !== undefined ? { userId } : {}),
    ...(name !== undefined ? { name, nameVerified: attributes?.[NAME_VERIFIED_ATTRIBUTE] === "true" } : {}),
  };
}

export async function lookupWho(deps: HandlerDeps, connectionId: string): Promise<Who> {
  return whoOf(connectionId, (await deps.store.get(connectionId))?.attributes);
}

/** Up to `limit` members of `room`, each with its user id and name; `more` when there are others. */
export async function membersOf(
  deps: HandlerDeps,
  room: string,
  limit = MAX_MEMBERS_SHOWN,
): Promise<{ members: Who[]; more: boolean }> {
  const ids: string[] = [];
  for await (const page of deps.store.list({ room, pageSize: limit + 1 })) {
    ids.push(...page);
    if (ids.length > limit) break;
  }
  const more = ids.length > limit;
  const members = await Promise.all(ids.slice(0, limit).map((id) => lookupWho(deps, id)));
  return { members, more };
}

/** What a room broadcast needs besides the room and the frame: who asks, by when, and where shards go. */
export interface RoomBroadcastContext {
  readonly deps: HandlerDeps;
  readonly log: Logger;
  readonly requestId: string;
  readonly sender: string;
  readonly deadline: number;
  readonly invokeWorker: InvokeWorker;
}

/** The context of a route's room broadcasts: shards go wherever the deps send them. */
export function roomBroadcastContext(
  event: WebSocketEvent,
  deps: HandlerDeps,
  log: Logger,
  context?: InvocationContext,
): RoomBroadcastContext {
  return {
    deps,
    log,
    requestId: event.requestContext.requestId,
    sender: event.requestContext.connectionId,
    deadline: deadlineOf(context, INTEGRATION_TIMEOUT_MS),
    invokeWorker: deps.invokeWorker,
  };
}

/**
 * Posts `frame` to every member of `room` through the broadcast machinery, logs one `room broadcast` line, and
 * announces the departure of members found gone. Resolves with the broadcast's summary.
 */
export async function broadcastToRoom(
  ctx: RoomBroadcastContext,
  room: string,
  frame: string,
  kind: string,
  depth = 0,
): Promise<BroadcastSummary> {
  const departed: RemovedConnection[] = [];
  const payload = preparePayload(frame);
  const summary = await broadcast({
    store: ctx.deps.store,
    connections: requireConnections(ctx.deps),
    settings: ctx.deps.env.fanOut ?? DEFAULT_FANOUT,
    payload,
    broadcastId: ctx.requestId,
    sender: ctx.sender,
    deadline: ctx.deadline,
    invokeWorker: ctx.invokeWorker,
    room,
    onRemoved: (removed) => departed.push(...removed),
  });
  const { listed, ...rest } = summary;
  const complete = isComplete(summary);
  ctx.log.info("room broadcast", {
    outcome: complete ? "ok" : "partial",
    kind,
    room,
    ...rest,
    targets: listed,
    inline: summary.targets,
    bytes: payload.body.byteLength,
  });
  await announceDepartures(ctx, departed, depth + 1);
  return summary;
}

/** Sends `left` to the remaining members of every room each removed connection was in. Never throws. */
export async function announceDepartures(
  ctx: RoomBroadcastContext,
  removed: readonly RemovedConnection[],
  depth = 0,
): Promise<void> {
  if (depth > MAX_PRESENCE_DEPTH) {
    if (removed.some((r) => r.rooms.length > 0))
      ctx.log.warn("presence: departures not announced (depth)", { outcome: "skipped", count: removed.length });
    return;
  }
  for (const entry of removed) {
    for (const room of entry.rooms) {
      try {
        await broadcastToRoom(
          ctx,
          room,
          presenceFrame("left", room, whoOf(entry.connectionId, entry.attributes), Date.now()),
          "left",
          depth,
        );
      } catch (error) {
        ctx.log.warn("presence: could not announce a departure", {
          outcome: "error",
          room,
          departed: entry.connectionId,
          error,
        });
      }
    }
  }
}
