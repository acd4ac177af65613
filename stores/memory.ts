import {
  assertRoomName,
  type ConnectionRecord,
  type ConnectionStore,
  DEFAULT_PAGE_SIZE,
  type JoinResult,
  type ListOptions,
  PROTOCOL_ATTRIBUTE,
  type ProtocolPage,
  type RemovedConnection,
  type RemoveOptions,
  rateWindow,
  type UserSlotClaim,
} from "../contract/connection-store";
import {
  assertHistoryBounds,
  assertHistoryMessage,
  assertHistoryQuery,
  assertSendKey,
  assertWindowMs,
  type HistoryAfterQuery,
  type HistoryBeforeQuery,
  type HistoryBounds,
  type HistoryEntry,
  type HistoryMessage,
  type HistoryPage,
  pageRange,
  type ResumePage,
  type SendClaim,
  type SendOutcome,
  seqRetentionMs,
} from "../contract/room-history";

/**
 * A {@link ConnectionStore} kept in a `Map`, for local runs and tests only: nothing survives the process and
 * nothing is shared between processes.
 *
 * Expired records are invisible to `get` and `list` and are dropped when a listing meets them.
 */
export class MemoryConnectionStore implements ConnectionStore {
  readonly kind = "memory" as const;
  private readonly records = new Map<string, ConnectionRecord>();
  /** Rate-limit counters: connection id → the window counted and its count. Dropped with the connection. */
  private readonly meters = new Map<string, { window: number; count: number }>();
  /** Room → member ids (insertion order), and connection id → its rooms. */
  private readonly members = new Map<string, Set<string>>();
  private readonly roomsByConnection = new Map<string, Set<string>>();
  /** User id → its connection slots (connection id → the slot's expiry, epoch ms). */
  private readonly userSlots = new Map<string, Map<string, number>>();

  /** Room history (see the end of the class): room → its counter and entries; heartbeats; send claims. */
  private readonly histories = new Map<string, RoomHistory>();
  private readonly lastSeen = new Map<string, number>();
  private readonly claims = new Map<string, { id: string; seq?: number; until: number }>();

  /** @param now clock, injectable so tests can move time. */
  constructor(private readonly now: () => number = Date.now) {}

  async add(record: ConnectionRecord): Promise<void> {
    // Copied so a caller mutating its object afterwards cannot change what is stored.
    this.records.set(record.connectionId, toRecord(record));
    this.lastSeen.delete(record.connectionId);
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const record = this.records.get(connectionId);
    if (!record || record.expiresAt <= this.now()) return undefined;
    const lastSeenAt = this.lastSeen.get(connectionId);
    return lastSeenAt === undefined ? toRecord(record) : { ...toRecord(record), lastSeenAt };
  }

  async remove(connectionId: string): Promise<RemovedConnection | undefined> {
    return this.drop(connectionId);
  }

  async removeMany(connectionIds: readonly string[], options?: RemoveOptions): Promise<RemovedConnection[]> {
    const removed: RemovedConnection[] = [];
    const cutoff = options?.connectedBefore;
    for (const id of new Set(connectionIds)) {
      const record = this.records.get(id);
      if (cutoff !== undefined && record && record.connectedAt >= cutoff) continue;
      const entry = this.drop(id);
      if (entry) removed.push(entry);
    }
    return removed;
  }

  async join(connectionId: string, room: string, maxRooms: number, maxMembers?: number): Promise<JoinResult> {
    assertRoomName(room);
    const record = this.records.get(connectionId);
    if (!record || record.expiresAt <= this.now()) return "unknown-connection";
    const rooms = this.roomsByConnection.get(connectionId) ?? new Set<string>();
    if (rooms.has(room)) return "already-member";
    if (rooms.size >= maxRooms) return "too-many-rooms";
    const members = this.members.get(room) ?? new Set<string>();
    // A member whose record expired (its $disconnect lost) holds no seat: dropped before the room is found full.
    if (maxMembers !== undefined && members.size >= maxMembers) {
      for (const id of [...members]) if ((this.records.get(id)?.expiresAt ?? 0) <= this.now()) this.drop(id);
      if (members.size >= maxMembers) return "room-full";
    }
    rooms.add(room);
    this.roomsByConnection.set(connectionId, rooms);
    members.add(connectionId);
    this.members.set(room, members);
    return "joined";
  }

  async leave(connectionId: string, room: string): Promise<boolean> {
    assertRoomName(room);
    const rooms = this.roomsByConnection.get(connectionId);
    if (!rooms?.delete(room)) return false;
    if (rooms.size === 0) this.roomsByConnection.delete(connectionId);
    this.dropMember(room, connectionId);
    return true;
  }

  async roomsOf(connectionId: string): Promise<string[]> {
    return [...(this.roomsByConnection.get(connectionId) ?? [])].sort();
  }

  /** Forgets a connection: record, counter and memberships. */
  private drop(connectionId: string): RemovedConnection | undefined {
    const record = this.records.get(connectionId);
    const rooms = [...(this.roomsByConnection.get(connectionId) ?? [])].sort();
    this.records.delete(connectionId);
    this.meters.delete(connectionId);
    this.lastSeen.delete(connectionId);
    this.roomsByConnection.delete(connectionId);
    for (const room of rooms) this.dropMember(room, connectionId);
    if (!record && rooms.length === 0) return undefined;
    const attributes =
      record?.attributes && Object.keys(record.attributes).length > 0 ? { ...record.attributes } : undefined;
    return { connectionId, rooms, ...(attributes ? { attributes } : {}) };
  }

  private dropMember(room: string, connectionId: string): void {
    const members = this.members.get(room);
    if (!members) return;
    members.delete(connectionId);
    if (members.size === 0) this.members.delete(room);
  }

  async countMessage(connectionId: string, windowMs: number, now: number = this.now()): Promise<number> {
    const { index } = rateWindow(windowMs, now);
    const meter = this.meters.get(connectionId);
    if (meter && meter.window === index) return ++meter.count;
    this.meters.set(connectionId, { window: index, count: 1 });
    return 1;
  }

  async *list(options?: ListOptions): AsyncIterable<string[]> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1)
      throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    const room = options?.room;
    if (room !== undefined) assertRoomName(room);
    // A live Map iterator would visit an id twice if it were removed and re-added behind the cursor; iterating
    // a snapshot of the keys cannot, and re-checking each id when its page is built skips ids removed since.
    const ids = room === undefined ? [...this.records.keys()] : [...(this.members.get(room) ?? [])];
    let page: string[] = [];
    for (const id of ids) {
      if (room !== undefined && !this.members.get(room)?.has(id)) continue;
      const record = this.records.get(id);
      if (!record) continue;
      if (record.expiresAt <= this.now()) {
        this.drop(id);
        continue;
      }
      page.push(id);
      if (page.length === pageSize) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  async *listByProtocol(options?: Pick<ListOptions, "pageSize">): AsyncIterable<ProtocolPage> {
    // The same listing, each page split on the record it was checked against.
    for await (const ids of this.list(options)) {
      const page: ProtocolPage = { plain: [], typed: [] };
      for (const id of ids) {
        if (this.records.get(id)?.attributes?.[PROTOCOL_ATTRIBUTE] !== undefined) page.typed.push(id);
        else page.plain.push(id);
      }
      yield page;
    }
  }

  async close(): Promise<void> {
    // Nothing to release; the local gateway shares one instance between handlers, so it must stay usable.
  }

  // Room history, idempotent sends and the heartbeat: the reference semantics the other stores follow.

  async appendHistory(room: string, message: HistoryMessage, bounds: HistoryBounds, now = this.now()): Promise<number> {
    assertRoomName(room);
    assertHistoryMessage(message);
    assertHistoryBounds(bounds);
    const history = this.liveHistory(room, now) ?? { seq: 0, lastAppendAt: now, retentionMs: 0, entries: [] };
    history.seq += 1;
    history.lastAppendAt = now;
    history.retentionMs = seqRetentionMs(bounds);
    history.entries.push({ seq: history.seq, id: message.id, ts: now, frame: message.frame });
    history.entries = keptEntries(history, bounds, now);
    this.histories.set(room, history);
    return history.seq;
  }

  async historyAfter(
    room: string,
    query: HistoryAfterQuery,
    bounds: HistoryBounds,
    now = this.now(),
  ): Promise<ResumePage> {
    const { entries, latest, range } = this.page(room, query, bounds, now);
    return { entries, latestSeq: latest, more: range.more, reachesBack: range.reachesBack };
  }

  async historyBefore(
    room: string,
    query: HistoryBeforeQuery,
    bounds: HistoryBounds,
    now = this.now(),
  ): Promise<HistoryPage> {
    const { entries, latest, range } = this.page(room, query, bounds, now);
    return { entries, latestSeq: latest, more: range.more };
  }

  async latestSeq(room: string): Promise<number> {
    assertRoomName(room);
    return this.liveHistory(room, this.now())?.seq ?? 0;
  }

  async claimSend(scope: string, ref: string, id: string, windowMs: number, now = this.now()): Promise<SendClaim> {
    assertSendKey(scope, ref, id);
    assertWindowMs(windowMs);
    const key = `${scope}#${ref}`;
    const claim = this.claims.get(key);
    if (claim && claim.until > now)
      return { status: "duplicate", id: claim.id, ...(claim.seq !== undefined ? { seq: claim.seq } : {}) };
    this.sweepClaims(now);
    this.claims.set(key, { id, until: now + windowMs });
    return { status: "claimed" };
  }

  async settleSend(
    scope: string,
    ref: string,
    outcome: SendOutcome,
    windowMs: number,
    now = this.now(),
  ): Promise<void> {
    assertSendKey(scope, ref, outcome.id);
    assertWindowMs(windowMs);
    const key = `${scope}#${ref}`;
    const claim = this.claims.get(key);
    if (!claim || claim.id !== outcome.id || claim.until <= now) return;
    if ("released" in outcome) this.claims.delete(key);
    else
      this.claims.set(key, {
        id: claim.id,
        ...(outcome.seq !== undefined ? { seq: outcome.seq } : {}),
        until: now + windowMs,
      });
  }

  async touch(connectionId: string, now = this.now()): Promise<boolean> {
    const record = this.records.get(connectionId);
    if (!record || record.expiresAt <= now) return false;
    this.lastSeen.set(connectionId, now);
    return true;
  }

  /** The room's history, or `undefined` once its counter has outlived its retention (like a Redis key's expiry). */
  private liveHistory(room: string, now: number): RoomHistory | undefined {
    const history = this.histories.get(room);
    if (history && now - history.lastAppendAt >= history.retentionMs) {
      this.histories.delete(room);
      return undefined;
    }
    return history;
  }

  private page(room: string, query: HistoryAfterQuery | HistoryBeforeQuery, bounds: HistoryBounds, now: number) {
    assertRoomName(room);
    assertHistoryQuery(query);
    assertHistoryBounds(bounds);
    const history = this.liveHistory(room, now);
    const latest = history?.seq ?? 0;
    const kept = history ? keptEntries(history, bounds, now) : [];
    const range = pageRange(query, kept[0]?.seq ?? latest + 1, latest);
    const entries = kept
      .filter((entry) => entry.seq >= range.from && entry.seq <= range.to)
      .map((entry) => ({ ...entry }));
    return { entries, latest, range };
  }

  /** Drops expired claims once the map has grown, so a long local run does not keep every reference ever sent. */
  private sweepClaims(now: number): void {
    if (this.claims.size < CLAIM_SWEEP_SIZE) return;
    for (const [key, claim] of this.claims) if (claim.until <= now) this.claims.delete(key);
  }

  async claimUserSlot(
    userId: string,
    connectionId: string,
    max: number,
    expiresAt: number,
    now: number = this.now(),
  ): Promise<UserSlotClaim> {
    const slots = this.userSlots.get(userId) ?? new Map<string, number>();
    for (const [id, until] of slots) if (until <= now) slots.delete(id);
    if (!slots.has(connectionId) && slots.size >= max) return { claimed: false, live: slots.size };
    slots.set(connectionId, expiresAt);
    this.userSlots.set(userId, slots);
    return { claimed: true, live: slots.size };
  }

  async releaseUserSlot(userId: string, connectionId: string): Promise<void> {
    const slots = this.userSlots.get(userId);
    slots?.delete(connectionId);
    if (slots?.size === 0) this.userSlots.delete(userId);
  }
}

function toRecord(record: ConnectionRecord): ConnectionRecord {
  const { connectionId, connectedAt, expiresAt, attributes } = record;
  return attributes && Object.keys(attributes).length > 0
    ? { connectionId, connectedAt, expiresAt, attributes: { ...attributes } }
    : { connectionId, connectedAt, expiresAt };
}

/** A room's counter and its kept entries, oldest first. */
interface RoomHistory {
  seq: number;
  lastAppendAt: number;
  /** How long the counter outlives `lastAppendAt` ({@link seqRetentionMs}). */
  retentionMs: number;
  entries: HistoryEntry[];
}

/** Local runs only; a sweep is O(claims), so it runs once the map holds this many. */
const CLAIM_SWEEP_SIZE = 10_000;

/**
 * What `bounds` keep of a history at `now`: the newest `maxEntries` numbers, and of those, the first one younger than
 * `maxAgeMs` and everything after it. Entries are appended in seq order but stamped by the appending container's
 * clock, so an age cut at the first young entry (rather than a filter) can never leave a gap inside what is kept.
 */
function keptEntries(history: RoomHistory, bounds: HistoryBounds, now: number): HistoryEntry[] {
  const byCount = history.entries.filter((entry) => entry.seq > history.seq - bounds.maxEntries);
  const firstYoung = byCount.findIndex((entry) => entry.ts > now - bounds.maxAgeMs);
  return firstYoung === -1 ? [] : byCount.slice(firstYoung);
}
