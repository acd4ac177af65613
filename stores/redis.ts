import { Redis, type RedisOptions } from "ioredis";
import type { RedisEnv } from "../functions/runtime/env";
import { DEFAULT_PAGE_SIZE, type ConnectionRecord, type ConnectionStore, type ListOptions } from "./connection-store";

/** Ids per ZREM/DEL command in `removeMany`, so no single command carries an unbounded argument list. */
const REMOVE_CHUNK = 500;

/**
 * Keeps the ids of a listed page whose hash still exists and drops the others from the id set, atomically, so
 * an id re-added between the check and the removal cannot be lost from the set. KEYS[1] is the id set, KEYS[i+1]
 * the hash of ARGV[i]; every key is declared, so the script is valid on cluster-mode deployments too.
 */
const KEEP_LIVE_SCRIPT = `
local live = {}
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    live[#live + 1] = ARGV[i]
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return live`;

/**
 * Builds an ioredis client that fails fast: a handler must get an error within about a second rather than hang
 * until Lambda's timeout. The offline queue stays on (turning it off fails the very first command, sent before
 * the lazy connection is up) and `commandTimeout` bounds every command, queued or sent.
 */
export function createRedisClient(env: RedisEnv): Redis {
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 1,
    // Keeps reconnecting (a warm Lambda container must recover from a failover) but never waits long between tries.
    retryStrategy: (times) => Math.min(times * 100, 2000),
  };
  const client =
    "url" in env
      ? new Redis(env.url, options)
      : new Redis({
          ...options,
          host: env.host,
          port: env.port,
          ...(env.tls ? { tls: {} } : {}),
          ...(env.authToken ? { password: env.authToken } : {}),
        });
  // Failed commands reject with their own error; without a listener ioredis would print a stack trace for every
  // reconnect attempt. One line per distinct error keeps the cause (refused, auth, DNS) visible in the logs.
  let lastMessage: string | undefined;
  client.on("error", (error: Error) => {
    if (error.message === lastMessage) return;
    lastMessage = error.message;
    console.error(`redis: ${error.message}`);
  });
  client.on("ready", () => (lastMessage = undefined));
  return client;
}

/**
 * Options for {@link RedisConnectionStore}: the env shape, from which the store builds (and owns) a client, or an
 * existing client, which the caller keeps and closes.
 */
export type RedisStoreOptions = RedisEnv | { readonly client: Redis; readonly keyPrefix: string };

/**
 * A {@link ConnectionStore} on Redis (≥ 6.2 for `ZRANGE … BYLEX`).
 *
 * Layout, every key under the hash tag `{prefix}` so all of them share one cluster slot:
 * - `{prefix}:ids`: sorted set of connection ids, all scores 0, so members are ordered by id and a listing can
 *   resume after the last id it returned. SSCAN is not used because it may return an element more than once.
 * - `{prefix}:conn:<id>`: hash with `connectedAt`, `expiresAt` and `attributes` (JSON), expiring at `expiresAt`.
 *
 * An id whose hash has expired stays in the set until a listing meets it and removes it.
 */
export class RedisConnectionStore implements ConnectionStore {
  readonly kind = "redis" as const;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly idsKey: string;
  private readonly connPrefix: string;

  constructor(options: RedisStoreOptions) {
    const { keyPrefix } = options;
    // An empty tag or a brace inside it would hash each key on its full name: CROSSSLOT errors in cluster mode.
    if (!/^[^{}]+$/.test(keyPrefix)) throw new Error(`redis keyPrefix must be non-empty and brace-free, got "${keyPrefix}"`);
    this.ownsClient = !("client" in options);
    this.client = "client" in options ? options.client : createRedisClient(options);
    this.idsKey = `{${keyPrefix}}:ids`;
    this.connPrefix = `{${keyPrefix}}:conn:`;
  }

  async add(record: ConnectionRecord): Promise<void> {
    const key = this.connKey(record.connectionId);
    const fields: Record<string, string> = {
      connectedAt: String(record.connectedAt),
      expiresAt: String(record.expiresAt),
    };
    if (record.attributes && Object.keys(record.attributes).length > 0) fields.attributes = JSON.stringify(record.attributes);
    // DEL first: replacing a record must not keep attributes of the previous one.
    const transaction = this.client
      .multi()
      .zadd(this.idsKey, 0, record.connectionId)
      .del(key)
      .hset(key, fields)
      .pexpireat(key, record.expiresAt);
    throwOnFailure(await transaction.exec());
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const hash = await this.client.hgetall(this.connKey(connectionId));
    if (hash.connectedAt === undefined || hash.expiresAt === undefined) return undefined;
    const expiresAt = Number(hash.expiresAt);
    // Redis expires keys lazily to the millisecond already; this only guards against a skewed server clock.
    if (expiresAt <= Date.now()) return undefined;
    const record = { connectionId, connectedAt: Number(hash.connectedAt), expiresAt };
    return hash.attributes ? { ...record, attributes: JSON.parse(hash.attributes) as Record<string, string> } : record;
  }

  async remove(connectionId: string): Promise<void> {
    throwOnFailure(await this.client.multi().zrem(this.idsKey, connectionId).del(this.connKey(connectionId)).exec());
  }

  async removeMany(connectionIds: readonly string[]): Promise<void> {
    if (connectionIds.length === 0) return;
    const pipeline = this.client.pipeline();
    for (let i = 0; i < connectionIds.length; i += REMOVE_CHUNK) {
      const chunk = connectionIds.slice(i, i + REMOVE_CHUNK);
      pipeline.zrem(this.idsKey, ...chunk).del(...chunk.map((id) => this.connKey(id)));
    }
    throwOnFailure(await pipeline.exec());
  }

  async *list(options?: ListOptions): AsyncIterable<string[]> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    let start = "-";
    for (;;) {
      const ids = await this.client.zrange(this.idsKey, start, "+", "BYLEX", "LIMIT", 0, pageSize);
      if (ids.length === 0) return;
      start = `(${ids[ids.length - 1]}`;
      const keys = [this.idsKey, ...ids.map((id) => this.connKey(id))];
      const live = (await this.client.eval(KEEP_LIVE_SCRIPT, keys.length, ...keys, ...ids)) as string[];
      if (live.length > 0) yield live;
      if (ids.length < pageSize) return;
    }
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.client.quit();
    } catch {
      // QUIT fails when the connection is already down; the socket must still be released.
      this.client.disconnect();
    }
  }

  private connKey(connectionId: string): string {
    return this.connPrefix + connectionId;
  }
}

/** `exec()` resolves even when commands inside failed; surface the first failure as the rejection. */
function throwOnFailure(replies: [error: Error | null, result: unknown][] | null): void {
  if (replies === null) throw new Error("redis: transaction aborted");
  for (const [error] of replies) if (error) throw error;
}
