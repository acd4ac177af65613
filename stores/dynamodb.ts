import {
  type AttributeValue,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
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
  type HistoryMessage,
  type HistoryPage,
  type ResumePage,
  type SendClaim,
  type SendOutcome,
} from "../contract/room-history";
import { DynamoDbHistory } from "./dynamodb-history";
import { countMessageOnItem } from "./dynamodb-meter";
import {
  HASH_KEY,
  MEMBER_ATTRIBUTE,
  membershipKey,
  ROOM_ATTRIBUTE,
  ROOM_INDEX,
  ROOMS_ATTRIBUTE,
  TTL_ATTRIBUTE,
} from "./dynamodb-table";
import { claimUserSlotOnItem, releaseUserSlotOnItem } from "./dynamodb-user-slots";
import { retryPage } from "./page-retry";

/** BatchWriteItem's hard limit on requests per call. */
const BATCH_WRITE_LIMIT = 25;
/** Batches in flight at once in `removeMany`: enough to hide latency, few enough not to provoke throttling. */
const BATCH_CONCURRENCY = 4;
/** Connection deletes in flight at once in `removeMany` (each a DeleteItem returning the rooms it had). */
const DELETE_CONCURRENCY = 16;
/** Calls per batch before giving up on items DynamoDB keeps returning as unprocessed (throttling). */
const BATCH_MAX_ATTEMPTS = 8;
const BACKOFF_BASE_MS = 25;
const BACKOFF_CAP_MS = 1000;
/**
 * A listing scans in parallel segments once the table holds more items than this per segment: one sequential
 * Scan reads at most `pageSize` items (and at most 1 MB) per round trip, so a 100,000-item table takes 100 round
 * trips in one segment and 13 in eight.
 */
const ITEMS_PER_SEGMENT = 10_000;
export const MAX_SCAN_SEGMENTS = 16;
/** How long a table's item count (DescribeTable, itself refreshed by DynamoDB about every 6 h) is reused. */
const ITEM_COUNT_TTL_MS = 5 * 60_000;

/**
 * Builds a DynamoDB client that fails fast instead of hanging until Lambda's timeout. `throwOnRequestTimeout`
 * is needed because this SDK's `requestTimeout` otherwise only logs a warning. The endpoint follows the standard
 * `AWS_ENDPOINT_URL_DYNAMODB` override unless `config.endpoint` is given.
 */
export function createDynamoDbClient(config: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
    ...config,
  });
}

/** Options for {@link DynamoDbConnectionStore}. */
export interface DynamoDbStoreOptions {
  readonly tableName: string;
  /** An existing client, which the caller keeps and closes; by default the store builds and owns one. */
  readonly client?: DynamoDBClient;
  /**
   * Parallel Scan segments of a listing: a number, or `auto` (default): one per {@link ITEMS_PER_SEGMENT} items of
   * the table's approximate item count (DescribeTable), at most {@link MAX_SCAN_SEGMENTS}; one when the count is
   * unavailable.
   */
  readonly scanSegments?: number | "auto";
}

/**
 * A {@link ConnectionStore} on a DynamoDB table keyed by connection id (layout in `dynamodb-table.ts`).
 *
 * Items carry `expiresAt` in epoch ms, which reads filter on, and the TTL attribute in epoch seconds, which only
 * lets DynamoDB delete them eventually (TTL deletion can lag by days, so reads never rely on it).
 */
export class DynamoDbConnectionStore implements ConnectionStore {
  readonly kind = "dynamodb" as const;
  private readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;
  private readonly tableName: string;
  private readonly scanSegments: number | "auto";
  private itemCount: { value: number | undefined; at: number } | undefined;

  constructor(options: DynamoDbStoreOptions) {
    this.tableName = options.tableName;
    this.scanSegments = options.scanSegments ?? "auto";
    if (this.scanSegments !== "auto" && (!Number.isInteger(this.scanSegments) || this.scanSegments < 1)) {
      throw new RangeError(`scanSegments must be a positive integer or "auto", got ${this.scanSegments}`);
    }
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createDynamoDbClient();
  }

  async add(record: ConnectionRecord): Promise<void> {
    const item: Record<string, AttributeValue> = {
      [HASH_KEY]: { S: record.connectionId },
      connectedAt: { N: String(record.connectedAt) },
      expiresAt: { N: String(record.expiresAt) },
      [TTL_ATTRIBUTE]: { N: String(Math.ceil(record.expiresAt / 1000)) },
    };
    const attributes = Object.entries(record.attributes ?? {});
    if (attributes.length > 0) item.attributes = { M: Object.fromEntries(attributes.map(([k, v]) => [k, { S: v }])) };
    await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: item }));
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const { Item: item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: { [HASH_KEY]: { S: connectionId } }, ConsistentRead: true }),
    );
    if (!item?.connectedAt?.N || !item.expiresAt?.N) return undefined;
    const expiresAt = Number(item.expiresAt.N);
    if (expiresAt <= Date.now()) return undefined;
    const record = {
      connectionId,
      connectedAt: Number(item.connectedAt.N),
      expiresAt,
      ...(item.lastSeenAt?.N !== undefined ? { lastSeenAt: Number(item.lastSeenAt.N) } : {}),
    };
    const map = item.attributes?.M;
    if (!map || Object.keys(map).length === 0) return record;
    return { ...record, attributes: Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v.S ?? ""])) };
  }

  /**
   * DeleteItem returning the old item, whose `rooms` name the membership items to delete next. A join racing with
   * the removal re-checks the connection after writing its membership and undoes it (see {@link join}), so no
   * membership outlives its connection.
   */
  async remove(connectionId: string): Promise<RemovedConnection | undefined> {
    const removed = await this.deleteConnection(connectionId);
    if (removed && removed.rooms.length > 0)
      await this.deleteKeys(removed.rooms.map((room) => membershipKey(connectionId, room)));
    return removed;
  }

  /**
   * Connections one DeleteItem each (bounded concurrency: each must return its rooms), memberships in batches. With
   * `connectedBefore`, each DeleteItem is conditional on the item's `connectedAt` (a ConditionExpression: checked
   * and applied atomically by DynamoDB), and a young connection's item, rooms and memberships stay.
   */
  async removeMany(connectionIds: readonly string[], options?: RemoveOptions): Promise<RemovedConnection[]> {
    const connectedBefore = options?.connectedBefore;
    const ids = [...new Set(connectionIds)];
    const removed: RemovedConnection[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      try {
        while (next < ids.length) {
          const entry = await this.deleteConnection(ids[next++]!, connectedBefore);
          if (entry) removed.push(entry);
        }
      } catch (error) {
        next = ids.length;
        throw error;
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, ids.length) }, worker));
    await this.deleteKeys(
      removed.flatMap((entry) => entry.rooms.map((room) => membershipKey(entry.connectionId, room))),
    );
    return removed;
  }

  private async deleteConnection(
    connectionId: string,
    connectedBefore?: number,
  ): Promise<RemovedConnection | undefined> {
    let old: Record<string, AttributeValue> | undefined;
    try {
      ({ Attributes: old } = await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { [HASH_KEY]: { S: connectionId } },
          ReturnValues: "ALL_OLD",
          ...(connectedBefore === undefined
            ? {}
            : {
                ConditionExpression: "attribute_not_exists(#c) OR #c < :before",
                ExpressionAttributeNames: { "#c": "connectedAt" },
                ExpressionAttributeValues: { ":before": { N: String(connectedBefore) } },
              }),
        }),
      ));
    } catch (error) {
      // Connected at or after the cutoff: kept as it is.
      if ((error as Error)?.name === "ConditionalCheckFailedException") return undefined;
      throw error;
    }
    const rooms = [...(old?.[ROOMS_ATTRIBUTE]?.SS ?? [])].sort();
    // An item the rate counter created without a record (no connectedAt) and no rooms was no connection.
    if (!old || (!old.connectedAt && rooms.length === 0)) return undefined;
    const map = old.attributes?.M;
    const attributes =
      map && Object.keys(map).length > 0
        ? Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v.S ?? ""]))
        : undefined;
    return { connectionId, rooms, ...(attributes ? { attributes } : {}) };
  }

  /**
   * Joins in up to four calls: (1) a conditional ADD of the room to the connection's `rooms` set (the connection
   * must be live, and in fewer than `maxRooms` rooms unless in this one), (2) the membership item, (3) a consistent
   * re-read of the connection: if it was removed meanwhile, the membership just written is deleted again, so a
   * membership never outlives its connection. A repeated join rewrites the membership item (repairing a join that
   * failed between 1 and 2) and answers `already-member`. With `maxMembers`, the room's live members are counted
   * first from the room index (eventually consistent, and nothing holds the count until the write: joins racing
   * at the bound may pass it together); a room at the bound refuses a connection that is not a member yet.
   */
  async join(connectionId: string, room: string, maxRooms: number, maxMembers?: number): Promise<JoinResult> {
    assertRoomName(room);
    const key = { [HASH_KEY]: { S: connectionId } };
    if (maxMembers !== undefined && (await this.roomHasAtLeast(room, maxMembers))) {
      const { Item: membership } = await this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: { [HASH_KEY]: { S: membershipKey(connectionId, room) } },
          ConsistentRead: true,
          ProjectionExpression: "#m",
          ExpressionAttributeNames: { "#m": MEMBER_ATTRIBUTE },
        }),
      );
      if (!membership) return "room-full";
    }
    let old: Record<string, AttributeValue> | undefined;
    try {
      ({ Attributes: old } = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: "ADD #rooms :room",
          ConditionExpression:
            "attribute_exists(#c) AND #e > :now AND (attribute_not_exists(#rooms) OR contains(#rooms, :name) OR size(#rooms) < :max)",
          ExpressionAttributeNames: { "#rooms": ROOMS_ATTRIBUTE, "#c": "connectedAt", "#e": "expiresAt" },
          ExpressionAttributeValues: {
            ":room": { SS: [room] },
            ":name": { S: room },
            ":now": { N: String(Date.now()) },
            ":max": { N: String(maxRooms) },
          },
          ReturnValues: "ALL_OLD",
        }),
      ));
    } catch (error) {
      if ((error as Error)?.name !== "ConditionalCheckFailedException") throw error;
      const { Item: item } = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
      );
      if (!item?.connectedAt || !item.expiresAt?.N || Number(item.expiresAt.N) <= Date.now())
        return "unknown-connection";
      return item[ROOMS_ATTRIBUTE]?.SS?.includes(room) ? "already-member" : "too-many-rooms";
    }
    const already = old?.[ROOMS_ATTRIBUTE]?.SS?.includes(room) ?? false;
    const expiresAt = old?.expiresAt?.N ?? "0";
    const membership = { [HASH_KEY]: { S: membershipKey(connectionId, room) } };
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          ...membership,
          [ROOM_ATTRIBUTE]: { S: room },
          [MEMBER_ATTRIBUTE]: { S: connectionId },
          expiresAt: { N: expiresAt },
          [TTL_ATTRIBUTE]: { N: String(Math.ceil(Number(expiresAt) / 1000)) },
        },
      }),
    );
    const { Item: after } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: key,
        ConsistentRead: true,
        ProjectionExpression: "#c",
        ExpressionAttributeNames: { "#c": "connectedAt" },
      }),
    );
    if (!after?.connectedAt) {
      await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: membership }));
      return "unknown-connection";
    }
    return already ? "already-member" : "joined";
  }

  async leave(connectionId: string, room: string): Promise<boolean> {
    assertRoomName(room);
    let member = true;
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { [HASH_KEY]: { S: connectionId } },
          UpdateExpression: "DELETE #rooms :room",
          ConditionExpression: "contains(#rooms, :name)",
          ExpressionAttributeNames: { "#rooms": ROOMS_ATTRIBUTE },
          ExpressionAttributeValues: { ":room": { SS: [room] }, ":name": { S: room } },
        }),
      );
    } catch (error) {
      if ((error as Error)?.name !== "ConditionalCheckFailedException") throw error;
      member = false;
    }
    // Deleted either way: a membership item without its room in the set is debris of a half-done join.
    const { Attributes: old } = await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: { [HASH_KEY]: { S: membershipKey(connectionId, room) } },
        ReturnValues: "ALL_OLD",
      }),
    );
    return member || old !== undefined;
  }

  async roomsOf(connectionId: string): Promise<string[]> {
    const { Item: item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [HASH_KEY]: { S: connectionId } },
        ConsistentRead: true,
        ProjectionExpression: "#rooms, #e",
        ExpressionAttributeNames: { "#rooms": ROOMS_ATTRIBUTE, "#e": "expiresAt" },
      }),
    );
    if (!item?.expiresAt?.N || Number(item.expiresAt.N) <= Date.now()) return [];
    return [...(item[ROOMS_ATTRIBUTE]?.SS ?? [])].sort();
  }

  /** Deletes items by key in batches of 25, a few batches at a time, retrying unprocessed ones. */
  private async deleteKeys(keys: readonly string[]): Promise<void> {
    // DynamoDB rejects a batch that names the same key twice.
    const ids = [...new Set(keys)];
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += BATCH_WRITE_LIMIT) batches.push(ids.slice(i, i + BATCH_WRITE_LIMIT));
    let next = 0;
    const worker = async (): Promise<void> => {
      try {
        while (next < batches.length) await this.deleteBatch(batches[next++]!);
      } catch (error) {
        next = batches.length; // the call has failed: the other workers must not go on deleting in the background
        throw error;
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, batches.length) }, worker));
  }

  /**
   * Scans the table, in parallel segments when it is large (see {@link DynamoDbStoreOptions.scanSegments}). Pages
   * are yielded as segments deliver them; each segment has at most one page in flight, so memory stays bounded by
   * segments x pageSize. A segment is a disjoint part of the key space, so every id still appears exactly once.
   */
  async *list(options?: ListOptions): AsyncIterable<string[]> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1)
      throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    if (options?.room !== undefined) {
      assertRoomName(options.room);
      yield* this.queryRoom(options.room, pageSize);
      return;
    }
    const segments = await this.segments();
    if (segments === 1) {
      yield* this.scanSegment(pageSize);
      return;
    }
    yield* mergePages(
      Array.from({ length: segments }, (_, segment) => this.scanSegment(pageSize, { segment, segments })),
    );
  }

  /**
   * {@link list} of every connection, each page split on the `protocol` attribute. The same Scan: a Scan's read
   * capacity is counted on the items read, not on the attributes projected, so projecting one more map entry costs
   * no capacity, only its bytes on the wire.
   */
  async *listByProtocol(options?: Pick<ListOptions, "pageSize">): AsyncIterable<ProtocolPage> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1)
      throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    const segments = await this.segments();
    const scan = (parallel?: { segment: number; segments: number }) =>
      this.scanSegment(pageSize, parallel, protocolPageOf);
    if (segments === 1) {
      yield* scan();
      return;
    }
    yield* mergePages(Array.from({ length: segments }, (_, segment) => scan({ segment, segments })));
  }

  /** Segments for the next listing: fixed, or from the table's approximate size. */
  async segments(): Promise<number> {
    if (this.scanSegments !== "auto") return this.scanSegments;
    const now = Date.now();
    if (!this.itemCount || now - this.itemCount.at > ITEM_COUNT_TTL_MS) {
      let value: number | undefined;
      try {
        const { Table } = await this.client.send(new DescribeTableCommand({ TableName: this.tableName }));
        value = Table?.ItemCount;
      } catch {
        // No dynamodb:DescribeTable (or a transient error): one segment is always correct, only slower.
        value = undefined;
      }
      this.itemCount = { value, at: now };
    }
    const count = this.itemCount.value ?? 0;
    return Math.min(MAX_SCAN_SEGMENTS, Math.max(1, Math.ceil(count / ITEMS_PER_SEGMENT)));
  }

  /** Whether `room` has at least `bound` live members: counted page by page, stopping once the bound is reached. */
  private async roomHasAtLeast(room: string, bound: number): Promise<boolean> {
    let seen = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ROOM_INDEX,
          KeyConditionExpression: "#room = :room",
          FilterExpression: "#e > :now",
          ExpressionAttributeNames: { "#room": ROOM_ATTRIBUTE, "#e": "expiresAt" },
          ExpressionAttributeValues: { ":room": { S: room }, ":now": { N: String(Date.now()) } },
          Select: "COUNT",
          ExclusiveStartKey: startKey,
        }),
      );
      seen += page.Count ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey && seen < bound);
    return seen >= bound;
  }

  /**
   * A room's members from the {@link ROOM_INDEX} GSI, in member-id order, paged by LastEvaluatedKey: each member
   * present for the whole listing appears exactly once. GSI reads are eventually consistent (DynamoDB offers no
   * other): a member who joined a moment ago may be missing from this listing.
   */
  private async *queryRoom(room: string, pageSize: number): AsyncGenerator<string[]> {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const from = startKey;
      const page = await retryPage(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: ROOM_INDEX,
            KeyConditionExpression: "#room = :room",
            FilterExpression: "#e > :now",
            ProjectionExpression: "#m",
            ExpressionAttributeNames: { "#room": ROOM_ATTRIBUTE, "#m": MEMBER_ATTRIBUTE, "#e": "expiresAt" },
            ExpressionAttributeValues: { ":room": { S: room }, ":now": { N: String(Date.now()) } },
            Limit: pageSize,
            ExclusiveStartKey: from,
          }),
        ),
      );
      const ids = (page.Items ?? []).flatMap((item) =>
        item[MEMBER_ATTRIBUTE]?.S !== undefined ? [item[MEMBER_ATTRIBUTE].S] : [],
      );
      if (ids.length > 0) yield ids;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  private scanSegment(pageSize: number, parallel?: { segment: number; segments: number }): AsyncGenerator<string[]>;
  private scanSegment<P>(
    pageSize: number,
    parallel: { segment: number; segments: number } | undefined,
    pageOf: ScanPageOf<P>,
  ): AsyncGenerator<P>;
  private async *scanSegment<P>(
    pageSize: number,
    parallel?: { segment: number; segments: number },
    pageOf: ScanPageOf<P | string[]> = idPageOf,
  ): AsyncGenerator<P | string[]> {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const from = startKey;
      const page = await retryPage(() =>
        this.client.send(
          new ScanCommand({
            TableName: this.tableName,
            ProjectionExpression: pageOf.projection,
            // Membership items (they carry `room`) are not connections.
            FilterExpression: "#e > :now AND attribute_not_exists(#room)",
            ExpressionAttributeNames: {
              "#id": HASH_KEY,
              "#e": "expiresAt",
              "#room": ROOM_ATTRIBUTE,
              ...pageOf.names,
            },
            ExpressionAttributeValues: { ":now": { N: String(Date.now()) } },
            // Limit caps items read before the filter, so a page never exceeds pageSize.
            Limit: pageSize,
            // An eventually consistent scan could miss a connection added just before the listing started.
            ConsistentRead: true,
            ExclusiveStartKey: from,
            ...(parallel ? { Segment: parallel.segment, TotalSegments: parallel.segments } : {}),
          }),
        ),
      );
      const built = pageOf.build(page.Items ?? []);
      if (built !== undefined) yield built;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  /** Counted on the connection's item (stores/dynamodb-meter.ts). */
  countMessage(connectionId: string, windowMs: number, now: number = Date.now()): Promise<number> {
    return countMessageOnItem(this.client, this.tableName, connectionId, windowMs, now);
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  // Room history, idempotent sends and the heartbeat (stores/dynamodb-history.ts).

  private historyItems: DynamoDbHistory | undefined;
  private get history(): DynamoDbHistory {
    this.historyItems ??= new DynamoDbHistory(this.client, this.tableName);
    return this.historyItems;
  }

  async appendHistory(room: string, message: HistoryMessage, bounds: HistoryBounds, now = Date.now()): Promise<number> {
    assertRoomName(room);
    assertHistoryMessage(message);
    assertHistoryBounds(bounds);
    return this.history.append(room, message, bounds, now);
  }

  async historyAfter(
    room: string,
    query: HistoryAfterQuery,
    bounds: HistoryBounds,
    now = Date.now(),
  ): Promise<ResumePage> {
    assertRoomName(room);
    assertHistoryQuery(query);
    assertHistoryBounds(bounds);
    return this.history.after(room, query, bounds, now);
  }

  async historyBefore(
    room: string,
    query: HistoryBeforeQuery,
    bounds: HistoryBounds,
    now = Date.now(),
  ): Promise<HistoryPage> {
    assertRoomName(room);
    assertHistoryQuery(query);
    assertHistoryBounds(bounds);
    return this.history.before(room, query, bounds, now);
  }

  async latestSeq(room: string): Promise<number> {
    assertRoomName(room);
    return this.history.latestSeq(room);
  }

  async claimSend(scope: string, ref: string, id: string, windowMs: number, now = Date.now()): Promise<SendClaim> {
    assertSendKey(scope, ref, id);
    assertWindowMs(windowMs);
    return this.history.claim(scope, ref, id, windowMs, now);
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
    return this.history.settle(scope, ref, outcome, windowMs, now);
  }

  touch(connectionId: string, now = Date.now()): Promise<boolean> {
    return this.history.touch(connectionId, now);
  }

  claimUserSlot(
    userId: string,
    connectionId: string,
    max: number,
    expiresAt: number,
    now: number = Date.now(),
  ): Promise<UserSlotClaim> {
    return claimUserSlotOnItem(this.client, this.tableName, userId, connectionId, max, expiresAt, now);
  }

  releaseUserSlot(userId: string, connectionId: string): Promise<void> {
    return releaseUserSlotOnItem(this.client, this.tableName, userId, connectionId);
  }

  private async deleteBatch(ids: readonly string[]): Promise<void> {
    let requests: WriteRequest[] = ids.map((id) => ({ DeleteRequest: { Key: { [HASH_KEY]: { S: id } } } }));
    for (let attempt = 1; ; attempt++) {
      const { UnprocessedItems: unprocessed } = await this.client.send(
        new BatchWriteItemCommand({ RequestItems: { [this.tableName]: requests } }),
      );
      requests = unprocessed?.[this.tableName] ?? [];
      if (requests.length === 0) return;
      if (attempt === BATCH_MAX_ATTEMPTS) {
        throw new Error(
          `DynamoDB left ${requests.length} of ${ids.length} deletes unprocessed after ${attempt} attempts`,
        );
      }
      // Full jitter: concurrent batches that were throttled together must not retry together.
      await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
    }
  }
}

/** What a Scan projects and how its items become a page (`undefined`: nothing to yield). */
interface ScanPageOf<P> {
  readonly projection: string;
  readonly names: Record<string, string>;
  build(items: Record<string, AttributeValue>[]): P | undefined;
}

const idPageOf: ScanPageOf<string[]> = {
  projection: "#id",
  names: {},
  build: (items) => {
    const ids = items.flatMap((item) => (item[HASH_KEY]?.S !== undefined ? [item[HASH_KEY].S] : []));
    return ids.length > 0 ? ids : undefined;
  },
};

const protocolPageOf: ScanPageOf<ProtocolPage> = {
  projection: "#id, #attrs.#protocol",
  names: { "#attrs": "attributes", "#protocol": PROTOCOL_ATTRIBUTE },
  build: (items) => {
    const page: ProtocolPage = { plain: [], typed: [] };
    for (const item of items) {
      const id = item[HASH_KEY]?.S;
      if (id === undefined) continue;
      if (item.attributes?.M?.[PROTOCOL_ATTRIBUTE] !== undefined) page.typed.push(id);
      else page.plain.push(id);
    }
    return page.plain.length + page.typed.length > 0 ? page : undefined;
  },
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Interleaves several page streams, yielding each page as soon as its source delivers it. Every source has at most
 * one `next()` outstanding; a failure of any source ends the merge with that error, and leaving early (or failing)
 * closes every source.
 */
export async function* mergePages<T>(sources: AsyncIterator<T>[]): AsyncGenerator<T> {
  type Settled = { index: number; result: IteratorResult<T> };
  const pending = new Map<number, Promise<Settled>>();
  const pull = (index: number) => {
    const next = sources[index]!.next().then((result) => ({ index, result }));
    next.catch(() => {});
    pending.set(index, next);
  };
  sources.forEach((_, index) => pull(index));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    for (const [index, next] of pending) {
      await next.catch(() => undefined);
      await sources[index]!.return?.(undefined)?.catch(() => undefined);
    }
  }
}
