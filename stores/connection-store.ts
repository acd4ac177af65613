/**
 * The store contract. Every handler talks to connections through this interface only; the DynamoDB, Redis and
 * in-memory implementations all pass the same contract suite (test/stores.contract.test.ts).
 */

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

/** Options for {@link ConnectionStore.list}. New optional fields (e.g. a room) may be added without breaking callers. */
export interface ListOptions {
  /** Upper bound on ids per yielded page (a backend may yield fewer). Default 500. */
  readonly pageSize?: number;
}

export const DEFAULT_PAGE_SIZE = 500;

export interface ConnectionStore {
  readonly kind: StoreKind;
  /** Adds or replaces a connection. */
  add(record: ConnectionRecord): Promise<void>;
  /** Reads one live connection; `undefined` when unknown or expired. */
  get(connectionId: string): Promise<ConnectionRecord | undefined>;
  /** Removes one connection. Removing an unknown id is not an error. */
  remove(connectionId: string): Promise<void>;
  /** Removes many connections in as few round trips as the backend allows. Unknown ids are ignored. */
  removeMany(connectionIds: readonly string[]): Promise<void>;
  /**
   * Streams the ids of live (unexpired) connections as pages, each page non-empty and at most `pageSize` long.
   * Memory is bounded by the page size, never by the number of connections. An id added or removed while a
   * listing runs may or may not appear; every id present for the whole listing appears exactly once.
   */
  list(options?: ListOptions): AsyncIterable<string[]>;
  /** Releases network resources (sockets); the store is unusable afterwards. */
  close(): Promise<void>;
}
