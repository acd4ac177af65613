import type {
  HistoryAfterQuery,
  HistoryBeforeQuery,
  HistoryBounds,
  HistoryMessage,
  HistoryPage,
  ResumePage,
  SendClaim,
  SendOutcome,
} from "./room-history";

/**
 * The store contract. Every handler talks to connections through this interface only; the DynamoDB, Redis and
 * in-memory implementations all pass the same contract suite (test/stores.contract.test.ts).
 */

import { createHash } from "node:crypto";

export type StoreKind = "dynamodb" | "redis" | "memory";
export const STORE_KINDS: readonly StoreKind[] = ["dynamodb", "redis", "memory"];

/** What is kept per connection. */
export interface ConnectionRecord {
  /** API Gateway's connection id. */
  readonly connectionId: string;
  /** Epoch ms of the handshake (`requestContext.connectedAt`). */
  readonly connectedAt: number;
  /**
   * Epoch ms after which the record is dead even if `$disconnect` never ran (API Gateway closes every
   * connection after 2 h; `$disconnect` is best effort).
   */
  readonly expiresAt: number;
  /**
   * Small string attributes stored with the connection (e.g. the authorizer's user id). Kept flat and
   * string-valued so every backend stores them natively.
   */
  readonly attributes?: Readonly<Record<string, string>>;
  /**
   * Epoch ms of the connection's last heartbeat ({@link ConnectionStore.touch}); absent until the first. `add` does
   * not store it: a record starts unseen.
   */
  readonly lastSeenAt?: number;
}

/** Options for {@link ConnectionStore.list}. New optional fields may be added without breaking callers. */
export interface ListOptions {
  /** Upper bound on ids per yielded page (a backend may yield fewer). Default 500. */
  readonly pageSize?: number;
  /** List the live members of this room only (a valid room name, {@link isValidRoomName}); default every connection. */
  readonly room?: string;
}

/**
 * Room names: 1-64 characters of `A-Z a-z 0-9 _ . -`. Safe as they are in Redis key names and DynamoDB keys; stores
 * refuse anything else with a RangeError (handlers validate first and answer `InvalidRoom`).
 */
export const ROOM_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export function isValidRoomName(room: unknown): room is string {
  return typeof room === "string" && ROOM_NAME_PATTERN.test(room);
}

export function assertRoomName(room: string): void {
  if (!isValidRoomName(room)) throw new RangeError(`invalid room name ${JSON.stringify(room)}`);
}

/** What {@link ConnectionStore.join} did. */
export type JoinResult =
  /** Now a member (it was not). */
  | "joined"
  /** Was a member already: nothing changed. */
  | "already-member"
  /** Not joined: the connection is in `maxRooms` rooms already. */
  | "too-many-rooms"
  /** Not joined: the room has `maxMembers` members already. */
  | "room-full"
  /** Not joined: no live record of the connection. */
  | "unknown-connection";

/** A connection as it was when {@link ConnectionStore.remove} / `removeMany` removed it: who it was, which rooms it left. */
export interface RemovedConnection {
  readonly connectionId: string;
  /** The rooms it was a member of (sorted), now left; empty when none. */
  readonly rooms: readonly string[];
  /** Its record's attributes, when it had any (presence frames carry the user id and name). */
  readonly attributes?: Readonly<Record<string, string>>;
}

export const DEFAULT_PAGE_SIZE = 500;

/** Options for {@link ConnectionStore.removeMany}. New optional fields may be added without breaking callers. */
export interface RemoveOptions {
  /**
   * Epoch ms: remove only connections whose record says they connected before it. A record with a later (or equal)
   * `connectedAt` is left as it is, memberships included; the check and the removal are one atomic step, so a
   * record re-added meanwhile is never removed by a check made on the old one. Ids without a record (memberships
   * left behind) are removed as usual. Default: no condition.
   */
  readonly connectedBefore?: number;
}

export interface ConnectionStore {
  readonly kind: StoreKind;
  /** Adds or replaces a connection. */
  add(record: ConnectionRecord): Promise<void>;
  /** Reads one live connection; `undefined` when unknown or expired. */
  get(connectionId: string): Promise<ConnectionRecord | undefined>;
  /**
   * Removes one connection and its room memberships. Resolves with what was removed (its rooms, so presence can
   * announce `left`), or `undefined` when there was nothing to remove. Removing an unknown id is not an error.
   */
  remove(connectionId: string): Promise<RemovedConnection | undefined>;
  /**
   * Removes many connections and their memberships in as few round trips as the backend allows. Unknown ids are
   * ignored. Resolves with one entry per distinct id that had a record or memberships (any order). With
   * `options.connectedBefore`, a record whose `connectedAt` is at or after it is kept, memberships included, in the
   * same atomic step as the check ({@link RemoveOptions}).
   */
  removeMany(connectionIds: readonly string[], options?: RemoveOptions): Promise<RemovedConnection[]>;
  /**
   * Streams the ids of live (unexpired) connections as pages, each page non-empty and at most `pageSize` long;
   * with `room`, only that room's members. Memory is bounded by the page size, never by the number of
   * connections. An id added or removed while a listing runs may or may not appear; every id present for the
   * whole listing appears exactly once.
   */
  list(options?: ListOptions): AsyncIterable<string[]>;
  /**
   * Makes a live connection a member of `room`, unless it is in `maxRooms` rooms already, or the room has
   * `maxMembers` members already (when given). Idempotent: joining a room again changes nothing and answers
   * `already-member` (even at either bound). Atomic with respect to `remove`: a connection removed concurrently
   * ends up in no room. The room bound is exact on memory and Redis; on DynamoDB it is counted before the join
   * from an eventually consistent index, so joins racing at the bound may pass it together.
   */
  join(connectionId: string, room: string, maxRooms: number, maxMembers?: number): Promise<JoinResult>;
  /** Ends a membership; resolves `true` if it existed. Leaving a room one is not in is not an error. */
  leave(connectionId: string, room: string): Promise<boolean>;
  /** The rooms a connection is a member of, sorted; empty for an unknown connection. */
  roomsOf(connectionId: string): Promise<string[]>;
  /**
   * Counts one message of a connection for the rate limit and returns how many it has sent in the current fixed
   * window, this one included. `connectionId` is the meter's key: a connection id, or a key of {@link meterKey}
   * (a user's messages, its room-less broadcasts), which never equals a connection id. Windows are aligned to the epoch (`floor(now / windowMs)`), so every caller, in
   * any Lambda container, counts into the same window; the count starts again at 1 in the next one. Atomic:
   * concurrent calls get distinct counts. Counters expire on their own shortly after their window.
   * @param now epoch ms, default the current time.
   */
  countMessage(connectionId: string, windowMs: number, now?: number): Promise<number>;
  /** Releases network resources (sockets); the store is unusable afterwards. */
  close(): Promise<void>;

  // Room history, idempotent sends and the heartbeat (types and bounds: contract/room-history.ts; design:
  // docs/history.md). Every `now` is epoch ms, default the current time; tests inject it.

  /**
   * Appends a message to `room`'s history and returns its sequence number: the room's previous one plus 1 (1 for a
   * room without one), assigned atomically, so concurrent appenders from any number of containers get distinct,
   * increasing numbers, without gaps while appends succeed. Then trims the history to `bounds`: the newest
   * `maxEntries`, none older than `maxAgeMs`. A room's history expires once it has been silent for `maxAgeMs`,
   * its counter after {@link HISTORY_SEQ_RETENTION_MS}.
   */
  appendHistory(room: string, message: HistoryMessage, bounds: HistoryBounds, now?: number): Promise<number>;
  /**
   * Entries with a seq greater than `after`, oldest first, at most `limit`: what a client that saw `after` missed.
   * `reachesBack` says whether history still holds everything after `after`; `more`, whether entries remain
   * after the page.
   */
  historyAfter(room: string, query: HistoryAfterQuery, bounds: HistoryBounds, now?: number): Promise<ResumePage>;
  /** The newest `limit` entries with a seq smaller than `before` (default: all), oldest first: one page backwards. */
  historyBefore(room: string, query: HistoryBeforeQuery, bounds: HistoryBounds, now?: number): Promise<HistoryPage>;
  /** The room's latest sequence number; 0 when it has none. One round trip. */
  latestSeq(room: string): Promise<number>;
  /**
   * Claims a client's send reference `ref` in `scope` (the user id, or the connection id) for `windowMs`, recording
   * the message id `id` the first claim will deliver. The first claim within the window wins (`claimed`); every
   * other, concurrent ones included, gets `duplicate` with what the first recorded. After the window the reference
   * may be claimed again.
   */
  claimSend(scope: string, ref: string, id: string, windowMs: number, now?: number): Promise<SendClaim>;
  /**
   * Records how the claimed send ended: its seq (a repeat is then acknowledged with it), or `released` when it was
   * not delivered, which frees the reference for the client's retry. Does nothing unless the claim is still the one
   * with this id. The window runs on from the settlement.
   */
  settleSend(scope: string, ref: string, outcome: SendOutcome, windowMs: number, now?: number): Promise<void>;
  /**
   * The heartbeat: records `now` as the connection's `lastSeenAt`, in one round trip. Does not move `expiresAt`: API
   * Gateway closes every connection 2 h after its handshake however active, so the record's lifetime stays
   * connectedAt + TTL. Resolves `false`, writing nothing, when there is no live record of the connection.
   */
  touch(connectionId: string, now?: number): Promise<boolean>;
  /**
   * Streams every live connection as {@link list} does (same pages, same guarantees, same cost in round trips),
   * each page split by whether the connection speaks a subprotocol ({@link PROTOCOL_ATTRIBUTE}): the room-less
   * broadcast posts typed clients an envelope and plain clients the raw data, from one listing.
   */
  listByProtocol(options?: Pick<ListOptions, "pageSize">): AsyncIterable<ProtocolPage>;
  /**
   * Takes one of a user's `max` connection slots for `connectionId` until `expiresAt` (epoch ms), unless the user
   * already holds `max` live ones. A slot lives until {@link releaseUserSlot} or its `expiresAt`, so a lost
   * `$disconnect` frees it at the latest when the connection's record expires. Claiming again for a connection that
   * holds a slot succeeds and moves its expiry. Atomic: concurrent claims never exceed `max`.
   * @param now epoch ms, default the current time; slots whose `expiresAt` is at or before it are not counted.
   */
  claimUserSlot(
    userId: string,
    connectionId: string,
    max: number,
    expiresAt: number,
    now?: number,
  ): Promise<UserSlotClaim>;
  /** Frees the connection's slot of the user; freeing one it does not hold is not an error. */
  releaseUserSlot(userId: string, connectionId: string): Promise<void>;
}

/** What {@link ConnectionStore.claimUserSlot} decided, and the user's live slots after it (this one included). */
export interface UserSlotClaim {
  readonly claimed: boolean;
  readonly live: number;
}

/**
 * Keys of the rate-limit meters that are not a connection's own ({@link ConnectionStore.countMessage}): a user's
 * messages over all its connections, and room-less broadcasts of a user or a connection. The user id is hashed,
 * so a key is short and of safe characters whatever the token's `sub` holds, and it contains `:`, which neither
 * API Gateway's connection ids (base64) nor the local gateway's ever do.
 */
export function meterKey(kind: "user" | "broadcast-user" | "broadcast-connection", id: string): string {
  const subject = kind === "broadcast-connection" ? id : createHash("sha256").update(id).digest("base64url");
  return `${kind}:${subject}`;
}

/** The fixed window `now` falls in, for {@link ConnectionStore.countMessage}; throws on a bad `windowMs`. */
export function rateWindow(windowMs: number, now: number): { readonly index: number; readonly endsAt: number } {
  if (!Number.isSafeInteger(windowMs) || windowMs < 1)
    throw new RangeError(`windowMs must be a positive integer, got ${windowMs}`);
  const index = Math.floor(now / windowMs);
  return { index, endsAt: (index + 1) * windowMs };
}

/**
 * How long after its handshake began a connection's 410 may mean "not open yet" rather than "gone": API Gateway
 * answers 410 `GoneException` to a post while `$connect` is still running (the connection is not established
 * until its integration returns), and `$connect` may run up to the 29 s integration timeout, after the
 * authorizer. Stale-id cleanup spares records younger than this (`removeMany`'s `connectedBefore`); a connection
 * that really is gone is removed by the first 410 after it (docs/fan-out.md#connections-in-their-first-seconds).
 */
export const CONNECT_GRACE_MS = 60_000;

/** The `connectedBefore` cutoff of a stale-id removal made at `now` ({@link CONNECT_GRACE_MS}). */
export function goneCutoff(now: number = Date.now()): RemoveOptions {
  return { connectedBefore: now - CONNECT_GRACE_MS };
}

/**
 * The connection attribute that holds the WebSocket subprotocol a connection speaks (set by `$connect`); a
 * connection without it is a plain client. {@link ConnectionStore.listByProtocol} splits its pages on it.
 */
export const PROTOCOL_ATTRIBUTE = "protocol";

/**
 * One page of {@link ConnectionStore.listByProtocol}: live connections, those with the {@link PROTOCOL_ATTRIBUTE}
 * attribute (typed clients) apart from the others (plain clients). Never both empty; together at most `pageSize`.
 */
export interface ProtocolPage {
  readonly plain: string[];
  readonly typed: string[];
}
