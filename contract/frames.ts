import { createHash } from "node:crypto";

/**
 * Error frames this backend sends to a client. API Gateway's own frames ({"message": "Forbidden", ...}) are
 * distinct: ours always have `"type": "error"` and a stable `code` clients can switch on.
 */

export type ErrorCode =
  | "InvalidJson"
  | "InvalidBody"
  | "MissingAction"
  | "UnknownAction"
  | "MissingData"
  | "PayloadTooLarge"
  /**
   * Over a rate limit; carries `scope` (`connection`, `user` or `broadcast`: which limit), `limit`, `windowSeconds`
   * and `retryAfterMs`.
   */
  | "RateLimited"
  /**
   * The connection's token (the JWT it connected with) has expired; the connection is closed right after this
   * frame. Reconnect with a fresh token. Carries `expiredAt` (epoch ms).
   */
  | "TokenExpired"
  /** `room` missing (join, leave) or not 1-64 characters of `A-Z a-z 0-9 _ . -`; carries `room` when it was a string. */
  | "InvalidRoom"
  /** `join` of one room more than `maxRoomsPerConnection`; carries `limit` and `rooms` (the current ones). */
  | "TooManyRooms"
  /** `join` of a room that has `maxMembersPerRoom` members already; carries `room` and `limit`. */
  | "RoomFull"
  /** `leave` or `sendmessage` with `room` of a room the connection has not joined; carries `room`. */
  | "NotInRoom"
  /** `sendto` without `to`, or a `to` that is not a connection id (a non-empty string of at most 128 characters). */
  | "MissingTo"
  /** `sendto` to a connection that is gone (410 from `@connections`); carries `to`. */
  | "RecipientGone"
  /** `sendto` failed for another reason (throttled past its retries, a 5xx); carries `to`. The recipient may be fine. */
  | "DeliveryFailed"
  /**
   * `join`: the store has no live record of this connection and none can be rebuilt from the message (it expired;
   * a lost record is re-added from `requestContext`: chat/sender-store.ts); reconnect.
   */
  | "UnknownConnection"
  /**
   * The connection store is down or did not answer in time: the message was not handled (or only in part, e.g. a
   * broadcast whose audience could not be listed at all; or the rate-limit counter of a route that fails closed,
   * then with `retryAfterMs`). Retryable.
   */
  | "StoreUnavailable"
  /**
   * A broadcast reached part of its audience only; carries `delivered`, `failed` and `total` (what this invocation
   * knows: recipients handed to fan-out workers are counted in `dispatched`, not in `delivered`). Retryable, at the
   * price of duplicates for those who got it (delivery is at least once).
   */
  | "PartialDelivery"
  /** `ref` on `sendmessage` or `sendto` that is not 1-64 characters of `A-Z a-z 0-9 _ . : -`; carries `pattern`. */
  | "InvalidRef"
  /**
   * `join` with an `after`, or `history` with an `after`, `before` or `limit`, that is not a number in range (or
   * `history` with both `after` and `before`); carries `field` and, for `limit`, `limit` (the largest page).
   */
  | "InvalidHistoryQuery";

/**
 * Whose doing each error is. `client`: the sender's own mistake, or a state of the chat it must act on (its
 * recipient left, its record expired); nothing of ours failed. `ours`: something on our side failed and the
 * sender is told so it may retry. The status a route returns with the frame follows from it (reply.ts).
 */
export const ERROR_ORIGIN: Readonly<Record<ErrorCode, "client" | "ours">> = {
  InvalidJson: "client",
  InvalidBody: "client",
  MissingAction: "client",
  UnknownAction: "client",
  MissingData: "client",
  PayloadTooLarge: "client",
  RateLimited: "client",
  TokenExpired: "client",
  InvalidRoom: "client",
  TooManyRooms: "client",
  RoomFull: "client",
  NotInRoom: "client",
  MissingTo: "client",
  RecipientGone: "client",
  DeliveryFailed: "ours",
  UnknownConnection: "client",
  StoreUnavailable: "ours",
  PartialDelivery: "ours",
  InvalidRef: "client",
  InvalidHistoryQuery: "client",
};

/**
 * Whether sending the same message again may succeed, carried by every error frame as `retryable`: `true` where
 * the cause can pass (our faults, the rate limit's window), `false` where the message itself, or the chat's
 * state, must change first.
 */
export const ERROR_RETRYABLE: Readonly<Record<ErrorCode, boolean>> = {
  InvalidJson: false,
  InvalidBody: false,
  MissingAction: false,
  UnknownAction: false,
  MissingData: false,
  PayloadTooLarge: false,
  RateLimited: true,
  // The connection is closed: a fresh token and a new connection, not a resend, is what helps.
  TokenExpired: false,
  InvalidRoom: false,
  TooManyRooms: false,
  // Only a member leaving helps, which nothing announces to someone outside the room: not worth retrying soon.
  RoomFull: false,
  NotInRoom: false,
  MissingTo: false,
  RecipientGone: false,
  DeliveryFailed: true,
  UnknownConnection: false,
  StoreUnavailable: true,
  PartialDelivery: true,
  InvalidRef: false,
  InvalidHistoryQuery: false,
};

export interface ErrorFrame {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
  /** {@link ERROR_RETRYABLE}: whether the same message, sent again, may succeed. */
  readonly retryable: boolean;
  /** The `ref` of the message this answers, when it had a valid one (chat/reply.ts adds it). */
  readonly ref?: string;
  readonly [extra: string]: unknown;
}

export function errorFrame(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): string {
  const frame: ErrorFrame = { type: "error", code, message, ...extra, retryable: ERROR_RETRYABLE[code] };
  return JSON.stringify(frame);
}

/**
 * Frames the server sends besides errors, one builder each (docs/protocol.md shows every one). All are
 * JSON objects with a `type`; `ts` is the server's epoch ms. A connection is described by {@link Who}: its id, and
 * the `userId` (from the `$connect` authorizer) and `name` (the authorizer's, else `?name=` at connect) when known,
 * with `nameVerified` saying which of the two the name is.
 * The no-room `sendmessage` is the exception for plain clients: they get `data` as is, without any envelope.
 * Clients that connect with the {@link CHAT_PROTOCOL} subprotocol ("typed" clients) get a {@link broadcastFrame}
 * instead, so every frame they receive is one the server wrote.
 */
export interface Who {
  readonly connectionId: string;
  readonly userId?: string;
  readonly name?: string;
  /** Whether `name` came from the `$connect` authorizer (`true`) or was chosen by the client with `?name=`. */
  readonly nameVerified?: boolean;
}

/** The subprotocol of typed clients: its own import-free file, so the client SDK can import it as a value. */
export { CHAT_PROTOCOL } from "./subprotocol";

/**
 * What makes a chat message (a room `message`, a `direct`, a typed `broadcast`) one message: a server-made `id` and
 * `ts`, made once per client message and carried unchanged by every post, retry and worker shard, so a client can
 * drop a duplicate that at-least-once delivery repeats. Room for more (a per-room sequence number) next to them.
 */
export interface MessageStamp {
  readonly id: string;
  readonly ts: number;
}

/** Crockford's base32: sortable as text in the same order as the numbers it encodes, no ambiguous letters. */
const BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * The stamp of the client message API Gateway received at `receivedAt` (epoch ms, `requestTimeEpoch`) as request
 * `requestId`. The id is a ULID-shaped 26-character string: 10 characters of the time (so ids sort by time as
 * text), then 16 derived from the request id (80 bits of its SHA-256), so distinct requests within one millisecond
 * get distinct ids. Derived rather than random: the same request always gets the same id and `ts`, so even a
 * handler that ran twice for one request (a retried invocation) sends a duplicate the client recognises.
 */
export function messageStamp(requestId: string, receivedAt: number): MessageStamp {
  const ts = Number.isSafeInteger(receivedAt) && receivedAt >= 0 ? receivedAt : 0;
  let time = "";
  for (let rest = ts, i = 0; i < 10; i++, rest = Math.floor(rest / 32)) time = BASE32[rest % 32] + time;
  const digest = createHash("sha256").update(requestId).digest();
  let random = "";
  // 16 characters of 5 bits: the first 80 bits of the digest.
  for (let bit = 0; bit < 80; bit += 5) {
    const byte = bit >> 3;
    const pair = ((digest[byte]! << 8) | digest[byte + 1]!) >> (11 - (bit & 7));
    random += BASE32[pair & 31];
  }
  return { id: time + random, ts };
}

/** `{"type":"message","room","id","from","userId"?,"name"?,"nameVerified"?,"data","ts"}`: a room's `sendmessage`. */
export function messageFrame(room: string, from: Who, data: unknown, stamp: MessageStamp): string {
  return JSON.stringify({
    type: "message",
    room,
    id: stamp.id,
    from: from.connectionId,
    ...whoFields(from),
    data,
    ts: stamp.ts,
  });
}

/** `{"type":"direct","id","from","userId"?,"name"?,"nameVerified"?,"data","ts"}`: a `sendto`, for its recipient. */
export function directFrame(from: Who, data: unknown, stamp: MessageStamp): string {
  return JSON.stringify({
    type: "direct",
    id: stamp.id,
    from: from.connectionId,
    ...whoFields(from),
    data,
    ts: stamp.ts,
  });
}

/**
 * `{"type":"broadcast","id","from","userId"?,"name"?,"nameVerified"?,"data","ts"}`: a room-less `sendmessage`, as a
 * typed client gets it. `from` is the sender's connection id as API Gateway verified it, whatever `data` says.
 */
export function broadcastFrame(from: Who, data: unknown, stamp: MessageStamp): string {
  return JSON.stringify({
    type: "broadcast",
    id: stamp.id,
    from: from.connectionId,
    ...whoFields(from),
    data,
    ts: stamp.ts,
  });
}

/** `{"type":"joined"|"left","room","connectionId","userId"?,"name"?,"ts"}`: presence, for the room's members. */
export function presenceFrame(type: "joined" | "left", room: string, who: Who, ts: number): string {
  return JSON.stringify({ type, room, connectionId: who.connectionId, ...whoFields(who), ts });
}

/**
 * `{"type":"members","room","members":[Who…],"more"}`: the answer to `join`, for the joiner: the room's members
 * (the joiner included), at most a bounded number; `more` says the list was cut.
 */
export function membersFrame(room: string, members: readonly Who[], more: boolean): string {
  return JSON.stringify({
    type: "members",
    room,
    members: members.map((m) => ({ connectionId: m.connectionId, ...whoFields(m) })),
    more,
  });
}

/** `{"type":"whoami","connectionId","userId"?,"name"?,"rooms":[…]}`: the answer to `whoami`. */
export function whoamiFrame(who: Who, rooms: readonly string[]): string {
  return JSON.stringify({ type: "whoami", connectionId: who.connectionId, ...whoFields(who), rooms });
}

function whoFields(who: Who): { userId?: string; name?: string; nameVerified?: boolean } {
  return {
    ...(who.userId !== undefined ? { userId: who.userId } : {}),
    ...(who.name !== undefined ? { name: who.name, nameVerified: who.nameVerified === true } : {}),
  };
}

/** The {@link Who} fields a frame carries next to a connection id. */
export interface WhoFields {
  readonly userId?: string;
  readonly name?: string;
  readonly nameVerified?: boolean;
}

/** What every chat message frame carries: the server's {@link MessageStamp} and the sender. */
export interface ChatMessageFields extends WhoFields {
  readonly id: string;
  /** The sender's connection id. */
  readonly from: string;
  readonly data: unknown;
  readonly ts: number;
}

/** {@link messageFrame}, as posted: with the room's sequence number (live and in `history` alike). */
export interface MessageFrame extends ChatMessageFields {
  readonly type: "message";
  readonly room: string;
  /** The room's sequence number of the message: 1, 2, 3… (docs/history.md). */
  readonly seq: number;
}

/** {@link broadcastFrame}. */
export interface BroadcastFrame extends ChatMessageFields {
  readonly type: "broadcast";
}

/** {@link directFrame}. */
export interface DirectFrame extends ChatMessageFields {
  readonly type: "direct";
}

/** {@link presenceFrame}. */
export interface PresenceFrame extends WhoFields {
  readonly type: "joined" | "left";
  readonly room: string;
  readonly connectionId: string;
  readonly ts: number;
}

/** One member in a {@link MembersFrame}. */
export interface MemberEntry extends WhoFields {
  readonly connectionId: string;
}

/** {@link membersFrame}. */
export interface MembersFrame {
  readonly type: "members";
  readonly room: string;
  readonly members: readonly MemberEntry[];
  readonly more: boolean;
}

/** {@link whoamiFrame}. */
export interface WhoamiFrame extends WhoFields {
  readonly type: "whoami";
  readonly connectionId: string;
  readonly rooms: readonly string[];
}

/** {@link ackFrame}: the answer to a `sendmessage` or `sendto` that carried a `ref`. */
export interface AckFrame {
  readonly type: "ack";
  readonly ref: string;
  /** The server id of the message (the first send's, for a duplicate). */
  readonly id: string;
  /** The room's sequence number, for a room message (absent while a duplicate's first send is still in progress). */
  readonly seq?: number;
  readonly room?: string;
  /** The ref was seen within the window: nothing was delivered this time. */
  readonly duplicate?: true;
}

/** {@link historyFrame}: a page of a room's history (`join` with `after`, and `history`). */
export interface HistoryFrame {
  readonly type: "history";
  readonly room: string;
  /** Oldest first, each as it was posted live (with `seq`). */
  readonly messages: readonly MessageFrame[];
  /** The room's latest seq when the page was read (0: none yet). */
  readonly latestSeq: number;
  /** More lie beyond the page in its direction (after its last message, or before its first). */
  readonly more: boolean;
  /** Forward pages only: `false` when history no longer reaches back to the `after` asked for. */
  readonly complete?: boolean;
}

/** {@link pongFrame}: the answer to `ping`. */
export interface PongFrame {
  readonly type: "pong";
  readonly ts: number;
}

/** Every frame a typed client may receive. */
export type ServerFrame =
  | MessageFrame
  | BroadcastFrame
  | DirectFrame
  | PresenceFrame
  | MembersFrame
  | WhoamiFrame
  | ErrorFrame
  | AckFrame
  | HistoryFrame
  | PongFrame;

/**
 * The most a `,"seq":N` adds to a stored frame (N a safe integer of at most 16 digits, and 7 characters around it):
 * the stored frame is bounded this far below the post limit, so the posted one fits (docs/history.md).
 */
export const SEQ_FIELD_MAX_BYTES = 24;

/** A stored `message` frame as posted: `,"seq":N` added before its closing brace, so live and history agree. */
export function withSeq(frame: string, seq: number): string {
  return `${frame.slice(0, frame.lastIndexOf("}"))},"seq":${seq}}`;
}

/** `{"type":"ack","ref","id","seq"?,"room"?,"duplicate"?}`. */
export function ackFrame(ack: Omit<AckFrame, "type">): string {
  const frame: AckFrame = {
    type: "ack",
    ref: ack.ref,
    id: ack.id,
    ...(ack.seq !== undefined ? { seq: ack.seq } : {}),
    ...(ack.room !== undefined ? { room: ack.room } : {}),
    ...(ack.duplicate ? { duplicate: true } : {}),
  };
  return JSON.stringify(frame);
}

/** The most a {@link historyFrame} adds around its messages (a 64-character room, 16-digit numbers). */
export const HISTORY_FRAME_OVERHEAD_BYTES = 232;

/**
 * `{"type":"history","room","messages":[…],"latestSeq","more","complete"?}`, with `messages` the posted frames
 * (each already with its seq) spliced in as they are: they are JSON objects the server wrote.
 */
export function historyFrame(
  page: { readonly room: string; readonly latestSeq: number; readonly more: boolean; readonly complete?: boolean },
  messages: readonly string[],
): string {
  const tail = JSON.stringify({
    latestSeq: page.latestSeq,
    more: page.more,
    ...(page.complete !== undefined ? { complete: page.complete } : {}),
  });
  return `{"type":"history","room":${JSON.stringify(page.room)},"messages":[${messages.join(",")}],${tail.slice(1)}`;
}

/** `{"type":"pong","ts"}`. */
export function pongFrame(ts: number): string {
  const frame: PongFrame = { type: "pong", ts };
  return JSON.stringify(frame);
}
