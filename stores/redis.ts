import { Redis, type RedisOptions } from "ioredis";
import {
  assertRoomName,
  type ConnectionRecord,
  type ConnectionStore,
  DEFAULT_PAGE_SIZE,
  type JoinResult,
  type ListOptions,
  type RemovedConnection,
  rateWindow,
} from "../contract/connection-store";
import type { RedisEnv } from "../contract/env";
import { retryPage } from "./page-retry";

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
 * Joins a room atomically: the connection must be live (its hash exists), and be in fewer than ARGV[3] rooms unless
 * it is in this one already. KEYS: the connection's hash, its rooms set, the room's member set; ARGV: room, id, max.
 * The rooms set expires with the connection's hash.
 */
const JOIN_SCRIPT = `
local expiresAt = redis.call('HGET', KEYS[1], 'expiresAt')
if not expiresAt then return 'unknown-connection' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'already-member' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'too-many-rooms' end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], expiresAt)
redis.call('ZADD', KEYS[3], 0, ARGV[2])
return 'joined'`;

/**
 * Removes a connection with its memberships, atomically. A script must declare every key it touches, and the room
 * keys depend on the rooms set, so the caller reads the set first and passes the rooms it saw (KEYS[4..] their
 * member sets, ARGV[2..] their names); if the set changed in between (a join or leave raced), nothing is done and
 * -1 is returned, and the caller reads again. KEYS[1..3]: the id set, the connection's hash, its rooms set; ARGV[1]
 * the id. Returns {1 if the hash existed else 0, the attributes JSON or ''}.
 */
const REMOVE_SCRIPT = `
local current = redis.call('SMEMBERS', KEYS[3])
if #current ~= #ARGV - 1 then return -1 end
local expected = {}
for i = 2, #ARGV do expected[ARGV[i]] = true end
for _, room in ipairs(current) do
  if not expected[room] then return -1 end
end
local existed = redis.call('EXISTS', KEYS[2])
local attributes = redis.call('HGET', KEYS[2], 'attributes')
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
for i = 4, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return {existed, attributes or ''}`;

/** Rounds of read-rooms-then-remove before `remove` gives up on a connection whose rooms keep changing. */
const REMOVE_ROUNDS = 5;

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
 * - `{prefix}:rate:<id>:<window>`: the rate-limit counter of one connection in one fixed window (INCR), expiring
 *   one window after its own ends.
 * - `{prefix}:room:<room>`: sorted set of the room's member ids (scores 0), listed with `ZRANGE … BYLEX` like `ids`.
 * - `{prefix}:rooms:<id>`: set of the connection's rooms, expiring with its hash.
 *
 * Why one hash tag for rooms too (rather than one per room, which would spread rooms over a cluster's shards):
 * joining must check the connection's hash and room count and write two sets atomically, and removing a connection
 * must clear every room it is in; with per-room tags both would become several per-slot steps with races between
 * them. One slot keeps each of them one script. The cost is that a cluster gives the chat no more than one shard's
 * throughput, which is what this project deploys anyway (a non-cluster replication group).
 *
 * An id whose hash has expired stays in the set until a listing meets it and removes it.
 */
export class RedisConnectionStore implements ConnectionStore {
  readonly kind = "redis" as const;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly idsKey: string;
  private readonly connPrefix: string;
  private readonly ratePrefix: string;
  private readonly roomPrefix: string;
  private readonly roomsPrefix: string;

  constructor(options: RedisStoreOptions) {
    const { keyPrefix } = options;
    // An empty tag or a brace inside it would hash each key on its full name: CROSSSLOT errors in cluster mode.
    if (!/^[^{}]+$/.test(keyPrefix))
      throw new Error(`redis keyPrefix must be non-empty and brace-free, got "${keyPrefix}"`);
    this.ownsClient = !("client" in options);
    this.client = "client" in options ? options.client : createRedisClient(options);
    this.idsKey = `{${keyPrefix}}:ids`;
    this.connPrefix = `{${keyPrefix}}:conn:`;
    this.ratePrefix = `{${keyPrefix}}:rate:`;
    this.roomPrefix = `{${keyPrefix}}:room:`;
    this.roomsPrefix = `{${keyPrefix}}:rooms:`;
  }

  async add(record: ConnectionRecord): Promise<void> {
    const key = this.connKey(record.connectionId);
    const fields: Record<string, string> = {
      connectedAt: String(record.connectedAt),
      expiresAt: String(record.expiresAt),
    };
    if (record.attributes && Object.keys(record.attributes).length > 0)
      fields.attributes = JSON.stringify(record.attributes);
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

  async remove(connectionId: string): Promise<RemovedConnection | undefined> {
    return (await this.removeChunk([connectionId]))[0];
  }

  async removeMany(connectionIds: readonly string[]): Promise<RemovedConnection[]> {
    const ids = [...new Set(connectionIds)];
    const removed: RemovedConnection[] = [];
    for (let i = 0; i < ids.length; i += REMOVE_CHUNK)
      removed.push(...(await this.removeChunk(ids.slice(i, i + REMOVE_CHUNK))));
    return removed;
  }

  /** Two pipelined round trips per round: read each connection's rooms, then remove each with the rooms it saw. */
  private async removeChunk(ids: readonly string[]): Promise<RemovedConnection[]> {
    const removed: RemovedConnection[] = [];
    let pending = [...ids];
    for (let round = 1; pending.length > 0; round++) {
      if (round > REMOVE_ROUNDS)
        throw new Error(`redis: the rooms of ${pending.length} connection(s) kept changing during removal`);
      const reads = this.client.pipeline();
      for (const id of pending) reads.smembers(this.roomsKey(id));
      const roomsRead = await reads.exec();
      throwOnFailure(roomsRead);
      const writes = this.client.pipeline();
      const seen = pending.map((id, i) => {
        const rooms = [...((roomsRead![i]![1] as string[]) ?? [])].sort();
        const keys = [this.idsKey, this.connKey(id), this.roomsKey(id), ...rooms.map((room) => this.roomKey(room))];
        writes.eval(REMOVE_SCRIPT, keys.length, ...keys, id, ...rooms);
        return rooms;
      });
      const results = await writes.exec();
      throwOnFailure(results);
      const retry: string[] = [];
      pending.forEach((id, i) => {
        const result = results![i]![1] as number | [number, string];
        if (result === -1) return void retry.push(id);
        const [existed, attributes] = result as [number, string];
        const rooms = seen[i]!;
        if (existed !== 1 && rooms.length === 0) return;
        removed.push({
          connectionId: id,
          rooms,
          ...(attributes ? { attributes: JSON.parse(attributes) as Record<string, string> } : {}),
        });
      });
      pending = retry;
    }
    return removed;
  }

  async join(connectionId: string, room: string, maxRooms: number): Promise<JoinResult> {
    assertRoomName(room);
    const keys = [this.connKey(connectionId), this.roomsKey(connectionId), this.roomKey(room)];
    return (await this.client.eval(
      JOIN_SCRIPT,
      keys.length,
      ...keys,
      room,
      connectionId,
      String(maxRooms),
    )) as JoinResult;
  }

  async leave(connectionId: string, room: string): Promise<boolean> {
    assertRoomName(room);
    const replies = await this.client
      .multi()
      .srem(this.roomsKey(connectionId), room)
      .zrem(this.roomKey(room), connectionId)
      .exec();
    throwOnFailure(replies);
    return Number(replies![0]![1]) === 1;
  }

  async roomsOf(connectionId: string): Promise<string[]> {
    return (await this.client.smembers(this.roomsKey(connectionId))).sort();
  }

  async *list(options?: ListOptions): AsyncIterable<string[]> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1)
      throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    if (options?.room !== undefined) assertRoomName(options.room);
    // A room's members are listed exactly as every connection is: the same paging over the room's own sorted set.
    const setKey = options?.room !== undefined ? this.roomKey(options.room) : this.idsKey;
    let start = "-";
    for (;;) {
      // A page that fails is asked for again from the same cursor (page-retry.ts): nothing skipped or repeated.
      const from = start;
      const { ids, live } = await retryPage(async () => {
        const ids = await this.client.zrange(setKey, from, "+", "BYLEX", "LIMIT", 0, pageSize);
        if (ids.length === 0) return { ids, live: [] as string[] };
        const keys = [setKey, ...ids.map((id) => this.connKey(id))];
        const live = (await this.client.eval(KEEP_LIVE_SCRIPT, keys.length, ...keys, ...ids)) as string[];
        return { ids, live };
      });
      if (ids.length === 0) return;
      start = `(${ids[ids.length - 1]}`;
      if (live.length > 0) yield live;
      if (ids.length < pageSize) return;
    }
  }

  async countMessage(connectionId: string, windowMs: number, now: number = Date.now()): Promise<number> {
    const { index, endsAt } = rateWindow(windowMs, now);
    const key = `${this.ratePrefix}${connectionId}:${index}`;
    // A key per window: no reset to race with. PEXPIREAT rather than PEXPIRE keeps the expiry fixed however
    // often the key is counted; a window's length past its end covers callers whose clocks run behind.
    const replies = await this.client
      .multi()
      .incr(key)
      .pexpireat(key, endsAt + windowMs)
      .exec();
    throwOnFailure(replies);
    return Number(replies![0]![1]);
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

  private roomKey(room: string): string {
    return this.roomPrefix + room;
  }

  private roomsKey(connectionId: string): string {
    return this.roomsPrefix + connectionId;
  }
}

/** `exec()` resolves even when commands inside failed; surface the first failure as the rejection. */
function throwOnFailure(replies: [error: Error | null, result: unknown][] | null): void {
  if (replies === null) throw new Error("redis: transaction aborted");
  for (const [error] of replies) if (error) throw error;
}
