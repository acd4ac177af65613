import { Redis, type RedisOptions } from "ioredis";
import {
  assertRoomName,
  type ConnectionRecord,
  type ConnectionStore,
  DEFAULT_PAGE_SIZE,
  type JoinResult,
  type ListOptions,
  meterKey,
  PROTOCOL_ATTRIBUTE,
  type ProtocolPage,
  type RemovedConnection,
  type RemoveOptions,
  rateWindow,
  type UserSlotClaim,
} from "../contract/connection-store";
import type { RedisEnv } from "../contract/env";
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
 * {@link KEEP_LIVE_SCRIPT}, answering the live ids split in two: those whose `attributes` JSON has the key ARGV[1]
 * (typed clients), and the others; ARGV[i] is the id of KEYS[i] (i ≥ 2). The same round trip and one command per
 * id, as a plain listing's: HMGET reads liveness (`expiresAt`) and the attributes together; only a record with
 * attributes is decoded.
 */
const KEEP_LIVE_BY_PROTOCOL_SCRIPT = `
local plain = {}
local typed = {}
for i = 2, #ARGV do
  local fields = redis.call('HMGET', KEYS[i], 'expiresAt', 'attributes')
  if not fields[1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
  elseif not fields[2] then
    plain[#plain + 1] = ARGV[i]
  else
    local ok, decoded = pcall(cjson.decode, fields[2])
    -- Attributes that cannot be read say nothing of the protocol: such a client is taken for typed (an envelope
    -- is readable by a plain client; a typed client must never get a peer's raw data).
    if not ok or type(decoded) ~= 'table' or decoded[ARGV[1]] ~= nil then
      typed[#typed + 1] = ARGV[i]
    else
      plain[#plain + 1] = ARGV[i]
    end
  end
end
return {plain, typed}`;

/**
 * Joins a room atomically: the connection must be live (its hash exists), be in fewer than ARGV[3] rooms unless it
 * is in this one already, and the room must have fewer than ARGV[4] members ('' for no bound). KEYS: the
 * connection's hash, its rooms set, the room's member set; ARGV: room, id, max rooms, max members. The rooms set
 * expires with the connection's hash.
 */
const JOIN_SCRIPT = `
local expiresAt = redis.call('HGET', KEYS[1], 'expiresAt')
if not expiresAt then return 'unknown-connection' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'already-member' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'too-many-rooms' end
if ARGV[4] ~= '' and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return 'room-full' end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], expiresAt)
redis.call('ZADD', KEYS[3], 0, ARGV[2])
return 'joined'`;

/**
 * Removes a connection with its memberships, atomically. A script must declare every key it touches, and the room
 * keys depend on the rooms set, so the caller reads the set first and passes the rooms it saw (KEYS[4..] their
 * member sets, ARGV[3..] their names); if the set changed in between (a join or leave raced), nothing is done and
 * -1 is returned, and the caller reads again. KEYS[1..3]: the id set, the connection's hash, its rooms set; ARGV[1]
 * the id; ARGV[2] a `connectedBefore` cutoff in epoch ms, or '' for none: a hash whose `connectedAt` is at or after
 * it is kept, memberships included, and -2 returned (checked in the same script as the removal, so a record
 * re-added meanwhile is never removed on the strength of an older check). Returns {1 if the hash existed else 0,
 * the attributes JSON or ''}.
 */
const REMOVE_SCRIPT = `
if ARGV[2] ~= '' then
  local connectedAt = redis.call('HGET', KEYS[2], 'connectedAt')
  if connectedAt and tonumber(connectedAt) >= tonumber(ARGV[2]) then return -2 end
end
local current = redis.call('SMEMBERS', KEYS[3])
if #current ~= #ARGV - 2 then return -1 end
local expected = {}
for i = 3, #ARGV do expected[ARGV[i]] = true end
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
 * Appends one history entry and trims, atomically: the next number (INCR), the entry in the room's sorted set scored
 * by it (member `seq|ts|[id, frame]`, unique by its seq), then the count bound (every score at or below seq -
 * maxEntries) and the age bound (oldest first while older than the cutoff: entries are stamped by their appender's
 * clock, so the cut stops at the first young one and never leaves a gap). Both keys expire when the room is silent:
 * the entries after the history age, the counter after its longer retention. KEYS: counter, entries; ARGV: ts,
 * [id, frame] JSON, maxEntries, age cutoff (ms), entries' expiry (ms), counter's expiry (ms).
 */
const APPEND_SCRIPT = `
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[1] .. '|' .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', seq - tonumber(ARGV[3]))
local cutoff = tonumber(ARGV[4])
while true do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 or tonumber(string.match(oldest[1], '^%d+|(%d+)|')) > cutoff then break end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, 0)
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return seq`;

/**
 * Reads a page of history in one snapshot: the latest seq, the oldest kept one (the first entry within both bounds;
 * latest + 1 if none), and the entries of the page's range, computed as contract/room-history.ts's pageRange does.
 * Read-only: trimming is the appends' job. KEYS: counter, entries; ARGV: age cutoff, maxEntries, 'after' | 'before',
 * the after / before seq (0: no before), limit. Returns {latest, oldest, members}.
 */
const READ_SCRIPT = `
local latest = tonumber(redis.call('GET', KEYS[1]) or '0')
local countFloor = latest - tonumber(ARGV[2])
local cutoff = tonumber(ARGV[1])
local oldest = latest + 1
local rank = 0
while true do
  local e = redis.call('ZRANGE', KEYS[2], rank, rank)
  if #e == 0 then break end
  local seq, ts = string.match(e[1], '^(%d+)|(%d+)|')
  if tonumber(seq) > countFloor and tonumber(ts) > cutoff then
    oldest = tonumber(seq)
    break
  end
  rank = rank + 1
end
local arg, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local from, to
if ARGV[3] == 'after' then
  if arg > latest then arg = 0 end
  from = math.max(arg + 1, oldest)
  to = math.min(latest, from + limit - 1)
else
  to = latest
  if arg > 0 then to = math.min(latest, arg - 1) end
  from = math.max(oldest, to - limit + 1)
end
local members = {}
if to >= from then members = redis.call('ZRANGE', KEYS[2], from, to, 'BYSCORE') end
return {latest, oldest, members}`;

/**
 * Claims a send reference: the stored claim (`until|seq|id`) is returned while it is within its window; otherwise
 * the new one is written. Its own `until` decides, not the key's expiry, so a caller's clock (and a test's) is what
 * counts; the key expires a margin later. KEYS: the claim; ARGV: now, the new claim, its expiry (ms). Returns '' when
 * claimed.
 */
const CLAIM_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v and tonumber(string.match(v, '^(%d+)|')) > tonumber(ARGV[1]) then return v end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ''`;

/**
 * Settles a claim that is still live and still this send's (same id): records the outcome or releases it.
 * KEYS: the claim; ARGV: id, now, 'settle' | 'release', the settled claim, its expiry (ms).
 */
const SETTLE_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local untilMs, id = string.match(v, '^(%d+)|%d*|(.*)$')
if id ~= ARGV[1] or tonumber(untilMs) <= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == 'release' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
end
return 1`;

/** The heartbeat: `lastSeenAt` on a live connection's hash, which keeps its expiry. KEYS: the hash; ARGV: now. */
const TOUCH_SCRIPT = `
local expiresAt = redis.call('HGET', KEYS[1], 'expiresAt')
if not expiresAt or tonumber(expiresAt) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[1])
return 1`;

/** How long after its logical end a history or claim key lives: covers clock skew between Lambda and Redis. */
const EXPIRY_MARGIN_MS = 60_000;

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
    // Reconnects whenever the connection drops (a restart, or a failover in which ElastiCache closes the
    // connections to the old primary), never waiting long between tries. That alone does not survive every
    // failover: a primary demoted to a replica may keep its connections open, and every write on them then fails
    // with READONLY for as long as the container lives. Hence `reconnectOnError` (see onReadOnly).
    retryStrategy: (times) => Math.min(times * 100, 2000),
    reconnectOnError: (error) => {
      if (!isReadOnlyError(error)) return false;
      failover.demotions++;
      return 1;
    },
    // Commands in flight when a connection drops are failed, never sent again on the next connection: replayed one
    // by one they would run outside the transaction or script they belonged to. The store retries whole operations.
    autoResendUnfulfilledCommands: false,
  };
  const failover = { demotions: 0 };
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
  DEMOTIONS.set(client, failover);
  return client;
}

/** Per client built by {@link createRedisClient}: how many READONLY replies made it reconnect. */
const DEMOTIONS = new WeakMap<Redis, { readonly demotions: number }>();

/**
 * A READONLY reply means the connection now talks to a replica: its primary was demoted in a failover that kept
 * the connections open, while the primary endpoint's DNS already names the new primary. ioredis is told to
 * reconnect (`reconnectOnError` returning 1, which also fails the command; ioredis README, "Reconnect on Error"),
 * which resolves the endpoint again. The command is not resent alone (returning 2 would): most of the store's
 * writes are a MULTI or a script, and one of their commands resent by itself on the new connection would run
 * outside it (measured: EXECABORT, and a transaction half applied). Instead the store retries the whole operation
 * once ({@link RedisConnectionStore}): nothing of it was applied, since a replica refuses every write.
 */
export function isReadOnlyError(error: Error): boolean {
  return error.message.startsWith("READONLY");
}

/**
 * Options for {@link RedisConnectionStore}: the env shape, from which the store builds (and owns) a client, or an
 * existing client, which the caller keeps and closes.
 */
export type RedisStoreOptions = RedisEnv | { readonly client: Redis; readonly keyPrefix: string };

/**
 * Claims a user's connection slot (`claimUserSlot`). KEYS[1] is the user's sorted set of connection ids scored by
 * their slot's expiry; ARGV: now, the connection id, max, the slot's expiry. Expired slots are dropped first, so a
 * lost `$disconnect` frees its slot once its connection's record has expired. The key expires with its last slot.
 * Returns {1 claimed | 0 refused, live slots}.
 */
const CLAIM_SLOT_SCRIPT = `
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
local live = redis.call('ZCARD', key)
if not redis.call('ZSCORE', key, ARGV[2]) then
  if live >= tonumber(ARGV[3]) then return {0, live} end
  live = live + 1
end
redis.call('ZADD', key, ARGV[4], ARGV[2])
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', key, last[2])
return {1, live}`;

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
 * - `{prefix}:slots:<hashed user id>`: sorted set of a user's connection ids scored by their slot's expiry
 *   (`claimUserSlot`), expiring with its last slot.
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
  private readonly slotsPrefix: string;
  private readonly historyKeys: (room: string) => [seq: string, entries: string];
  private readonly sendPrefix: string;

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
    this.slotsPrefix = `{${keyPrefix}}:slots:`;
    this.roomPrefix = `{${keyPrefix}}:room:`;
    this.roomsPrefix = `{${keyPrefix}}:rooms:`;
    this.historyKeys = (room) => [`{${keyPrefix}}:seq:${room}`, `{${keyPrefix}}:hist:${room}`];
    this.sendPrefix = `{${keyPrefix}}:send:`;
  }

  /**
   * Runs a write once more if the client met a demoted primary meanwhile (READONLY, then a reconnect): the first
   * run was refused by a replica, so nothing of it was applied, and the second goes to the new primary.
   */
  private async writing<T>(operation: () => Promise<T>): Promise<T> {
    const counter = DEMOTIONS.get(this.client);
    const before = counter?.demotions ?? 0;
    try {
      return await operation();
    } catch (error) {
      if (counter === undefined || counter.demotions === before) throw error;
      return operation();
    }
  }

  add(record: ConnectionRecord): Promise<void> {
    return this.writing(() => this.addOnce(record));
  }

  private async addOnce(record: ConnectionRecord): Promise<void> {
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
    const record = {
      connectionId,
      connectedAt: Number(hash.connectedAt),
      expiresAt,
      ...(hash.lastSeenAt !== undefined ? { lastSeenAt: Number(hash.lastSeenAt) } : {}),
    };
    return hash.attributes ? { ...record, attributes: JSON.parse(hash.attributes) as Record<string, string> } : record;
  }

  async remove(connectionId: string): Promise<RemovedConnection | undefined> {
    return (await this.writing(() => this.removeChunk([connectionId])))[0];
  }

  async removeMany(connectionIds: readonly string[], options?: RemoveOptions): Promise<RemovedConnection[]> {
    const ids = [...new Set(connectionIds)];
    const removed: RemovedConnection[] = [];
    for (let i = 0; i < ids.length; i += REMOVE_CHUNK)
      removed.push(
        ...(await this.writing(() => this.removeChunk(ids.slice(i, i + REMOVE_CHUNK), options?.connectedBefore))),
      );
    return removed;
  }

  /** Two pipelined round trips per round: read each connection's rooms, then remove each with the rooms it saw. */
  private async removeChunk(ids: readonly string[], connectedBefore?: number): Promise<RemovedConnection[]> {
    const cutoff = connectedBefore === undefined ? "" : String(connectedBefore);
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
        writes.eval(REMOVE_SCRIPT, keys.length, ...keys, id, cutoff, ...rooms);
        return rooms;
      });
      const results = await writes.exec();
      throwOnFailure(results);
      const retry: string[] = [];
      pending.forEach((id, i) => {
        const result = results![i]![1] as number | [number, string];
        if (result === -1) return void retry.push(id);
        if (result === -2) return; // connected too recently: kept
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

  async join(connectionId: string, room: string, maxRooms: number, maxMembers?: number): Promise<JoinResult> {
    assertRoomName(room);
    const keys = [this.connKey(connectionId), this.roomsKey(connectionId), this.roomKey(room)];
    const bounds = [String(maxRooms), maxMembers === undefined ? "" : String(maxMembers)];
    const joinOnce = () =>
      this.writing(
        async () =>
          (await this.client.eval(JOIN_SCRIPT, keys.length, ...keys, room, connectionId, ...bounds)) as JoinResult,
      );
    const result = await joinOnce();
    if (result !== "room-full") return result;
    // An id whose hash expired (its $disconnect lost) stays in the room's set until a listing drops it, and would
    // hold a seat for good in a room nobody lists any more: list the room once, which drops such ids, and ask again.
    for await (const _page of this.list({ room })) {
      // Listing is the point: each page drops the ids it finds dead.
    }
    return joinOnce();
  }

  async leave(connectionId: string, room: string): Promise<boolean> {
    assertRoomName(room);
    const replies = await this.writing(() =>
      this.client.multi().srem(this.roomsKey(connectionId), room).zrem(this.roomKey(room), connectionId).exec(),
    );
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

  async *listByProtocol(options?: Pick<ListOptions, "pageSize">): AsyncIterable<ProtocolPage> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1)
      throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    let start = "-";
    for (;;) {
      // Retried from the same cursor like `list` (page-retry.ts): the room-less broadcast lists through here.
      const from = start;
      const { ids, plain, typed } = await retryPage(async () => {
        const ids = await this.client.zrange(this.idsKey, from, "+", "BYLEX", "LIMIT", 0, pageSize);
        if (ids.length === 0) return { ids, plain: [] as string[], typed: [] as string[] };
        const keys = [this.idsKey, ...ids.map((id) => this.connKey(id))];
        const [plain, typed] = (await this.client.eval(
          KEEP_LIVE_BY_PROTOCOL_SCRIPT,
          keys.length,
          ...keys,
          PROTOCOL_ATTRIBUTE,
          ...ids,
        )) as [string[], string[]];
        return { ids, plain, typed };
      });
      if (ids.length === 0) return;
      start = `(${ids[ids.length - 1]}`;
      if (plain.length + typed.length > 0) yield { plain, typed };
      if (ids.length < pageSize) return;
    }
  }

  async countMessage(connectionId: string, windowMs: number, now: number = Date.now()): Promise<number> {
    const { index, endsAt } = rateWindow(windowMs, now);
    const key = `${this.ratePrefix}${connectionId}:${index}`;
    // A key per window: no reset to race with. PEXPIREAT rather than PEXPIRE keeps the expiry fixed however
    // often the key is counted; a window's length past its end covers callers whose clocks run behind.
    const replies = await this.writing(() =>
      this.client
        .multi()
        .incr(key)
        .pexpireat(key, endsAt + windowMs)
        .exec(),
    );
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

  // Room history, idempotent sends and the heartbeat: one script each, so each is atomic and one round trip.

  async appendHistory(room: string, message: HistoryMessage, bounds: HistoryBounds, now = Date.now()): Promise<number> {
    assertRoomName(room);
    assertHistoryMessage(message);
    assertHistoryBounds(bounds);
    const keys = this.historyKeys(room);
    const seq = await this.client.eval(
      APPEND_SCRIPT,
      keys.length,
      ...keys,
      String(now),
      JSON.stringify([message.id, message.frame]),
      String(bounds.maxEntries),
      String(now - bounds.maxAgeMs),
      String(bounds.maxAgeMs + EXPIRY_MARGIN_MS),
      String(seqRetentionMs(bounds)),
    );
    return Number(seq);
  }

  async historyAfter(
    room: string,
    query: HistoryAfterQuery,
    bounds: HistoryBounds,
    now = Date.now(),
  ): Promise<ResumePage> {
    const { entries, latest, oldest } = await this.readHistory(room, query, bounds, now);
    const range = pageRange(query, oldest, latest);
    return { entries, latestSeq: latest, more: range.more, reachesBack: range.reachesBack };
  }

  async historyBefore(
    room: string,
    query: HistoryBeforeQuery,
    bounds: HistoryBounds,
    now = Date.now(),
  ): Promise<HistoryPage> {
    const { entries, latest, oldest } = await this.readHistory(room, query, bounds, now);
    return { entries, latestSeq: latest, more: pageRange(query, oldest, latest).more };
  }

  async latestSeq(room: string): Promise<number> {
    assertRoomName(room);
    return Number((await this.client.get(this.historyKeys(room)[0])) ?? 0);
  }

  async claimSend(scope: string, ref: string, id: string, windowMs: number, now = Date.now()): Promise<SendClaim> {
    assertSendKey(scope, ref, id);
    assertWindowMs(windowMs);
    const found = (await this.client.eval(
      CLAIM_SCRIPT,
      1,
      this.sendKey(scope, ref),
      String(now),
      claimValue(now + windowMs, id),
      String(windowMs + EXPIRY_MARGIN_MS),
    )) as string;
    if (found === "") return { status: "claimed" };
    const claim = parseClaim(found);
    return { status: "duplicate", id: claim.id, ...(claim.seq !== undefined ? { seq: claim.seq } : {}) };
  }

  async settleSend(
    scope: string,
    ref: string,
    outcome: SendOutcome,
    windowMs: number,
    now = Date.now(),
  ): Promise<void> {
    assertSendKey(scope, ref, outcome.id);
    assertWindowMs(windowMs);
    const released = "released" in outcome;
    await this.client.eval(
      SETTLE_SCRIPT,
      1,
      this.sendKey(scope, ref),
      outcome.id,
      String(now),
      released ? "release" : "settle",
      released ? "" : claimValue(now + windowMs, outcome.id, outcome.seq),
      String(windowMs + EXPIRY_MARGIN_MS),
    );
  }

  async touch(connectionId: string, now = Date.now()): Promise<boolean> {
    return Number(await this.client.eval(TOUCH_SCRIPT, 1, this.connKey(connectionId), String(now))) === 1;
  }

  private async readHistory(
    room: string,
    query: HistoryAfterQuery | HistoryBeforeQuery,
    bounds: HistoryBounds,
    now: number,
  ): Promise<{ entries: HistoryEntry[]; latest: number; oldest: number }> {
    assertRoomName(room);
    assertHistoryQuery(query);
    assertHistoryBounds(bounds);
    const keys = this.historyKeys(room);
    const [latest, oldest, members] = (await this.client.eval(
      READ_SCRIPT,
      keys.length,
      ...keys,
      String(now - bounds.maxAgeMs),
      String(bounds.maxEntries),
      "after" in query ? "after" : "before",
      String("after" in query ? query.after : (query.before ?? 0)),
      String(query.limit),
    )) as [number, number, string[]];
    return { entries: members.map(parseEntry), latest: Number(latest), oldest: Number(oldest) };
  }

  private sendKey(scope: string, ref: string): string {
    // The reference never contains `#`, so the key splits at its last `#`: no two (scope, ref) pairs share a key.
    return `${this.sendPrefix}${scope}#${ref}`;
  }

  async claimUserSlot(
    userId: string,
    connectionId: string,
    max: number,
    expiresAt: number,
    now: number = Date.now(),
  ): Promise<UserSlotClaim> {
    const [claimed, live] = (await this.client.eval(
      CLAIM_SLOT_SCRIPT,
      1,
      this.slotsKey(userId),
      String(now),
      connectionId,
      String(max),
      String(expiresAt),
    )) as [number, number];
    return { claimed: claimed === 1, live: Number(live) };
  }

  async releaseUserSlot(userId: string, connectionId: string): Promise<void> {
    await this.client.zrem(this.slotsKey(userId), connectionId);
  }

  private slotsKey(userId: string): string {
    // Hashed: a token's `sub` may be long or hold anything, braces included (which would move the hash tag).
    return `${this.slotsPrefix}${meterKey("user", userId).slice("user:".length)}`;
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

/** A history member `seq|ts|[id, frame]` as an entry. */
function parseEntry(member: string): HistoryEntry {
  const first = member.indexOf("|");
  const second = member.indexOf("|", first + 1);
  const [id, frame] = JSON.parse(member.slice(second + 1)) as [string, string];
  return { seq: Number(member.slice(0, first)), ts: Number(member.slice(first + 1, second)), id, frame };
}

/** A send claim's value: `until|seq|id` (seq empty until settled with one); the id last, as it may hold `|`. */
function claimValue(until: number, id: string, seq?: number): string {
  return `${until}|${seq ?? ""}|${id}`;
}

function parseClaim(value: string): { id: string; seq?: number } {
  const first = value.indexOf("|");
  const second = value.indexOf("|", first + 1);
  const seq = value.slice(first + 1, second);
  return { id: value.slice(second + 1), ...(seq !== "" ? { seq: Number(seq) } : {}) };
}
