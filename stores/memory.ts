import {
  assertRoomName,
  type ConnectionRecord,
  type ConnectionStore,
  DEFAULT_PAGE_SIZE,
  type JoinResult,
  type ListOptions,
  type RemovedConnection,
  rateWindow,
  type UserSlotClaim,
} from "../contract/connection-store";

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

  /** @param now clock, injectable so tests can move time. */
  constructor(private readonly now: () => number = Date.now) {}

  async add(record: ConnectionRecord): Promise<void> {
    // Copied so a caller mutating its object afterwards cannot change what is stored.
    this.records.set(record.connectionId, toRecord(record));
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const record = this.records.get(connectionId);
    return record && record.expiresAt > this.now() ? toRecord(record) : undefined;
  }

  async remove(connectionId: string): Promise<RemovedConnection | undefined> {
    return this.drop(connectionId);
  }

  async removeMany(connectionIds: readonly string[]): Promise<RemovedConnection[]> {
    const removed: RemovedConnection[] = [];
    for (const id of new Set(connectionIds)) {
      const entry = this.drop(id);
      if (entry) removed.push(entry);
    }
    return removed;
  }

  async join(connectionId: string, room: string, maxRooms: number): Promise<JoinResult> {
    assertRoomName(room);
    const record = this.records.get(connectionId);
    if (!record || record.expiresAt <= this.now()) return "unknown-connection";
    const rooms = this.roomsByConnection.get(connectionId) ?? new Set<string>();
    if (rooms.has(room)) return "already-member";
    if (rooms.size >= maxRooms) return "too-many-rooms";
    rooms.add(room);
    this.roomsByConnection.set(connectionId, rooms);
    const members = this.members.get(room) ?? new Set<string>();
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

  async close(): Promise<void> {
    // Nothing to release; the local gateway shares one instance between handlers, so it must stay usable.
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
