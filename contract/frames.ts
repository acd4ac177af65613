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
   * The message was not handled because the connection store could not be read (e.g. the rate-limit counter of a
   * route that fails closed); carries `retryable: true` and `retryAfterMs`.
   */
  | "StoreUnavailable"
  /**
   * The connection's token (the JWT it connected with) has expired; the connection is closed right after this
   * frame. Reconnect with a fresh token. Carries `expiredAt` (epoch ms).
   */
  | "TokenExpired"
  /** `room` missing (join, leave) or not 1-64 characters of `A-Z a-z 0-9 _ . -`; carries `room` when it was a string. */
  | "InvalidRoom"
  /** `join` of one room more than `maxRoomsPerConnection`; carries `limit` and `rooms` (the current ones). */
  | "TooManyRooms"
  /** `leave` or `sendmessage` with `room` of a room the connection has not joined; carries `room`. */
  | "NotInRoom"
  /** `sendto` without `to`, or a `to` that is not a connection id (a non-empty string of at most 128 characters). */
  | "MissingTo"
  /** `sendto` to a connection that is gone (410 from `@connections`); carries `to`. */
  | "RecipientGone"
  /** `sendto` failed for another reason (throttled past its retries, a 5xx); carries `to`. The recipient may be fine. */
  | "DeliveryFailed"
  /** `join`: the store has no live record of this connection (its `$connect` write failed or it expired); reconnect. */
  | "UnknownConnection";

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
  StoreUnavailable: "ours",
  TokenExpired: "client",
  InvalidRoom: "client",
  TooManyRooms: "client",
  NotInRoom: "client",
  MissingTo: "client",
  RecipientGone: "client",
  DeliveryFailed: "ours",
  UnknownConnection: "client",
};

export interface ErrorFrame {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
  readonly [extra: string]: unknown;
}

export function errorFrame(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): string {
  const frame: ErrorFrame = { type: "error", code, message, ...extra };
  return JSON.stringify(frame);
}

/**
 * Frames the server sends besides errors, one builder each (docs/protocol.md shows every one). All are
 * JSON objects with a `type`; `ts` is the server's epoch ms. A connection is described by {@link Who}: its id, and
 * the `userId` (from the `$connect` authorizer) and `name` (the authorizer's, else `?name=` at connect) when known.
 * The no-room `sendmessage` is the exception: it delivers `data` as is, without any envelope.
 */
export interface Who {
  readonly connectionId: string;
  readonly userId?: string;
  readonly name?: string;
}

/** `{"type":"message","room","from","userId"?,"name"?,"data","ts"}`: a `sendmessage` to a room, for each member. */
export function messageFrame(room: string, from: Who, data: unknown, ts: number): string {
  return JSON.stringify({ type: "message", room, from: from.connectionId, ...whoFields(from), data, ts });
}

/** `{"type":"direct","from","userId"?,"name"?,"data","ts"}`: a `sendto`, for its recipient only. */
export function directFrame(from: Who, data: unknown, ts: number): string {
  return JSON.stringify({ type: "direct", from: from.connectionId, ...whoFields(from), data, ts });
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

function whoFields(who: Who): { userId?: string; name?: string } {
  return {
    ...(who.userId !== undefined ? { userId: who.userId } : {}),
    ...(who.name !== undefined ? { name: who.name } : {}),
  };
}
