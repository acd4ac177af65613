import { DEFAULT_PAGE_SIZE, type ConnectionRecord, type ConnectionStore, type ListOptions } from "./connection-store";

/**
 * A {@link ConnectionStore} kept in a `Map`, for local runs and tests only: nothing survives the process and
 * nothing is shared between processes.
 *
 * Expired records are invisible to `get` and `list` and are dropped when a listing meets them.
 */
export class MemoryConnectionStore implements ConnectionStore {
  readonly kind = "memory" as const;
  private readonly records = new Map<string, ConnectionRecord>();

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

  async remove(connectionId: string): Promise<void> {
    this.records.delete(connectionId);
  }

  async removeMany(connectionIds: readonly string[]): Promise<void> {
    for (const id of connectionIds) this.records.delete(id);
  }

  async *list(options?: ListOptions): AsyncIterable<string[]> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    // A live Map iterator would visit an id twice if it were removed and re-added behind the cursor; iterating
    // a snapshot of the keys cannot, and re-checking each id when its page is built skips ids removed since.
    const ids = [...this.records.keys()];
    let page: string[] = [];
    for (const id of ids) {
      const record = this.records.get(id);
      if (!record) continue;
      if (record.expiresAt <= this.now()) {
        this.records.delete(id);
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
}

function toRecord(record: ConnectionRecord): ConnectionRecord {
  const { connectionId, connectedAt, expiresAt, attributes } = record;
  return attributes && Object.keys(attributes).length > 0
    ? { connectionId, connectedAt, expiresAt, attributes: { ...attributes } }
    : { connectionId, connectedAt, expiresAt };
}
