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
  /** Over the per-connection rate limit; carries `retryAfterMs`. */
  | "RateLimited"
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
  /**
   * `join`: the store has no live record of this connection and none can be rebuilt from the message (it expired;
   * a lost record is re-added from `requestContext`: chat/sender-store.ts); reconnect.
   */
  | "UnknownConnection"
  /**
   * The connection store is down or did not answer in time: the message was not handled (or only in part, e.g. a
   * broadcast whose audience could not be listed at all). Retryable.
   */
  | "StoreUnavailable"
  /**
   * A broadcast reached part of its audience only; carries `delivered`, `failed` and `total` (what this invocation
   * knows: recipients handed to fan-out workers are counted in `dispatched`, not in `delivered`). Retryable, at the
   * price of duplicates for those who got it (delivery is at least once).
   */
  | "PartialDelivery";

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
  InvalidRoom: "client",
  TooManyRooms: "client",
  NotInRoom: "client",
  MissingTo: "client",
  RecipientGone: "client",
  DeliveryFailed: "ours",
  UnknownConnection: "client",
  StoreUnavailable: "ours",
  PartialDelivery: "ours",
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
  InvalidRoom: false,
  TooManyRooms: false,
  NotInRoom: false,
  MissingTo: false,
  RecipientGone: false,
  DeliveryFailed: true,
  UnknownConnection: false,
  StoreUnavailable: true,
  PartialDelivery: true,
};

export interface ErrorFrame {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
  /** {@link ERROR_RETRYABLE}: whether the same message, sent again, may succeed. */
  readonly retryable: boolean;
  readonly [extra: string]: unknown;
}

export function errorFrame(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): string {
  const frame: ErrorFrame = { type: "error", code, message, ...extra, retryable: ERROR_RETRYABLE[code] };
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
