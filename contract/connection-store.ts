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
   * ignored. Resolves with one entry per distinct id that had a record or memberships (any order).
   */
  removeMany(connectionIds: readonly string[]): Promise<RemovedConnection[]>;
  /**
   * Streams the ids of live (unexpired) connections as pages, each page non-empty and at most `pageSize` long;
   * with `room`, only that room's members. Memory is bounded by the page size, never by the number of
   * connections. An id added or removed while a listing runs may or may not appear; every id present for the
   * whole listing appears exactly once.
   */
  list(options?: ListOptions): AsyncIterable<string[]>;
  /**
   * Makes a live connection a member of `room`, unless it is in `maxRooms` rooms already. Idempotent: joining a
   * room again changes nothing and answers `already-member` (even at the bound). Atomic with respect to
   * `remove`: a connection removed concurrently ends up in no room.
   */
  join(connectionId: string, room: string, maxRooms: number): Promise<JoinResult>;
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
