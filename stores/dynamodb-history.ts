/**
 * Room history, send claims and the heartbeat of the DynamoDB store (the methods of `ConnectionStore` from
 * `appendHistory` on), on the table of dynamodb-table.ts, by key only: no Query, no Scan, no new index.
 *
 * - Append, two round trips: `UpdateItem ADD seq 1` on the room's counter item returns the new number (atomic, so
 *   concurrent appenders from any container get distinct ones), then one BatchWriteItem puts the entry and deletes
 *   the one that just fell out of the count bound (seq - maxEntries). The age bound is the entry's TTL attribute;
 *   DynamoDB deletes expired items lazily ("typically within a few days", and they "still show up in reads":
 *   Developer Guide, *Working with expired items*; API Reference, *UpdateTimeToLive*), so reads filter on `ts`.
 *   The count bound is enforced by a delete rather than only on read because the connection listing Scans the
 *   whole table and reads every item it holds (docs/history.md weighs the cost).
 * - Reads: a consistent GetItem of the counter, then consistent BatchGetItem of the page's keys (numbers are
 *   consecutive, so the keys are known): up to 100 keys and 16 MB per call, partial results come back as
 *   `UnprocessedKeys` (API Reference, *BatchGetItem*); a full page of 128 KB frames is about 12.8 MB.
 * - A number whose entry is missing is a hole: its append failed after the counter moved (or is still in flight).
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import {
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
import { HASH_KEY, historyEntryKey, historySeqKey, sendClaimKey, TTL_ATTRIBUTE } from "./dynamodb-table";

/** BatchGetItem's limit on keys per call. */
const BATCH_GET_LIMIT = 100;
/** Calls of one batch before giving up on what DynamoDB keeps returning unprocessed (throttling, or the 16 MB cap). */
const BATCH_MAX_ATTEMPTS = 8;
const BACKOFF_BASE_MS = 25;
const BACKOFF_CAP_MS = 1000;
/** Rounds of claim-then-read before giving up on a claim that keeps expiring in between. */
const CLAIM_ROUNDS = 3;

const key = (id: string) => ({ [HASH_KEY]: { S: id } });
const ttlOf = (epochMs: number) => ({ N: String(Math.ceil(epochMs / 1000)) });
const isConditionFailure = (error: unknown) => (error as Error)?.name === "ConditionalCheckFailedException";

export class DynamoDbHistory {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async append(room: string, message: HistoryMessage, bounds: HistoryBounds, now: number): Promise<number> {
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: key(historySeqKey(room)),
        UpdateExpression: "ADD #s :one SET #t = :ttl",
        ExpressionAttributeNames: { "#s": "seq", "#t": TTL_ATTRIBUTE },
        ExpressionAttributeValues: { ":one": { N: "1" }, ":ttl": ttlOf(now + seqRetentionMs(bounds)) },
        ReturnValues: "UPDATED_NEW",
      }),
    );
    const seq = Number(Attributes?.seq?.N);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new Error(`history counter of ${room} returned ${seq}`);
    const writes: WriteRequest[] = [
      {
        PutRequest: {
          Item: {
            ...key(historyEntryKey(room, seq)),
            seq: { N: String(seq) },
            ts: { N: String(now) },
            messageId: { S: message.id },
            frame: { S: message.frame },
            [TTL_ATTRIBUTE]: ttlOf(now + bounds.maxAgeMs),
          },
        },
      },
    ];
    const dropped = seq - bounds.maxEntries;
    if (dropped >= 1) writes.push({ DeleteRequest: { Key: key(historyEntryKey(room, dropped)) } });
    await this.batchWrite(writes);
    return seq;
  }

  async latestSeq(room: string): Promise<number> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: key(historySeqKey(room)),
        ConsistentRead: true,
        ProjectionExpression: "#s",
        ExpressionAttributeNames: { "#s": "seq" },
      }),
    );
    return Number(Item?.seq?.N ?? 0);
  }

  /**
   * Pages forward from the oldest number the count bound keeps. Entries older than the age bound are a prefix (the
   * cut is at the first young one, as every store makes it); a page made only of those is skipped, so a client that
   * asks again after the last entry returned always moves on.
   */
  async after(room: string, query: HistoryAfterQuery, bounds: HistoryBounds, now: number): Promise<ResumePage> {
    const latest = await this.latestSeq(room);
    const countFloor = Math.max(1, latest - bounds.maxEntries + 1);
    let range = pageRange(query, countFloor, latest);
    const reachesBackByCount = range.reachesBack;
    let first = true;
    for (;;) {
      const read = await this.readRange(room, range.from, range.to, now - bounds.maxAgeMs);
      if (read.kept.length > 0 || range.to >= latest || range.to < range.from) {
        // Reaches back only if nothing was cut at the start: the very number after `after` is there and young.
        const reachesBack = reachesBackByCount && first && (range.to < range.from || read.kept[0]?.seq === range.from);
        return { entries: read.kept, latestSeq: latest, more: range.more, reachesBack };
      }
      first = false;
      range = pageRange({ after: range.to, limit: query.limit }, countFloor, latest);
    }
  }

  async before(room: string, query: HistoryBeforeQuery, bounds: HistoryBounds, now: number): Promise<HistoryPage> {
    const latest = await this.latestSeq(room);
    const countFloor = Math.max(1, latest - bounds.maxEntries + 1);
    const range = pageRange(query, countFloor, latest);
    const read = await this.readRange(room, range.from, range.to, now - bounds.maxAgeMs);
    // Anything cut at the start of the page (expired, or deleted by TTL) is older than the age bound, and so is
    // everything before it: the page is the last one.
    const more = range.more && read.kept[0]?.seq === range.from;
    return { entries: read.kept, latestSeq: latest, more };
  }

  /**
   * The entries numbered `from..to` that the age bound keeps: from the first one younger than `cutoff` on, oldest
   * first. Consistent reads, so an append acknowledged before the read started is in it.
   */
  private async readRange(room: string, from: number, to: number, cutoff: number): Promise<{ kept: HistoryEntry[] }> {
    if (to < from) return { kept: [] };
    const seqs = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const chunks: number[][] = [];
    for (let i = 0; i < seqs.length; i += BATCH_GET_LIMIT) chunks.push(seqs.slice(i, i + BATCH_GET_LIMIT));
    const items = (
      await Promise.all(chunks.map((chunk) => this.batchGet(chunk.map((seq) => historyEntryKey(room, seq)))))
    )
      .flat()
      .flatMap((item) => (item ? [toEntry(item)] : []))
      .sort((a, b) => a.seq - b.seq);
    const firstYoung = items.findIndex((entry) => entry.ts > cutoff);
    return { kept: firstYoung === -1 ? [] : items.slice(firstYoung) };
  }

  async claim(scope: string, ref: string, id: string, windowMs: number, now: number): Promise<SendClaim> {
    const claimKey = key(sendClaimKey(scope, ref));
    for (let round = 1; round <= CLAIM_ROUNDS; round++) {
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: {
              ...claimKey,
              sendId: { S: id },
              until: { N: String(now + windowMs) },
              [TTL_ATTRIBUTE]: ttlOf(now + windowMs),
            },
            // A claim whose window has passed may be taken over; DynamoDB's TTL may not have deleted it yet.
            ConditionExpression: "attribute_not_exists(#k) OR #u <= :now",
            ExpressionAttributeNames: { "#k": HASH_KEY, "#u": "until" },
            ExpressionAttributeValues: { ":now": { N: String(now) } },
          }),
        );
        return { status: "claimed" };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      const { Item } = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: claimKey, ConsistentRead: true }),
      );
      if (Item?.sendId?.S !== undefined && Number(Item.until?.N) > now) {
        return {
          status: "duplicate",
          id: Item.sendId.S,
          ...(Item.seq?.N !== undefined ? { seq: Number(Item.seq.N) } : {}),
        };
      }
    }
    throw new Error(`send claim ${scope}#${ref} kept changing under ${CLAIM_ROUNDS} rounds`);
  }

  async settle(scope: string, ref: string, outcome: SendOutcome, windowMs: number, now: number): Promise<void> {
    const common = {
      TableName: this.tableName,
      Key: key(sendClaimKey(scope, ref)),
      ConditionExpression: "#id = :id AND #u > :now",
    };
    const names = { "#id": "sendId", "#u": "until" };
    const values = { ":id": { S: outcome.id }, ":now": { N: String(now) } };
    try {
      if ("released" in outcome) {
        await this.client.send(
          new DeleteItemCommand({ ...common, ExpressionAttributeNames: names, ExpressionAttributeValues: values }),
        );
        return;
      }
      const withSeq = outcome.seq !== undefined;
      await this.client.send(
        new UpdateItemCommand({
          ...common,
          UpdateExpression: `SET #u = :until, #t = :ttl${withSeq ? ", #s = :seq" : ""}`,
          ExpressionAttributeNames: { ...names, "#t": TTL_ATTRIBUTE, ...(withSeq ? { "#s": "seq" } : {}) },
          ExpressionAttributeValues: {
            ...values,
            ":until": { N: String(now + windowMs) },
            ":ttl": ttlOf(now + windowMs),
            ...(withSeq ? { ":seq": { N: String(outcome.seq) } } : {}),
          },
        }),
      );
    } catch (error) {
      // Not this send's live claim any more: nothing to settle.
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** `lastSeenAt` on a live connection's item, one conditional UpdateItem; `expiresAt` and the TTL stay. */
  async touch(connectionId: string, now: number): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(connectionId),
          UpdateExpression: "SET #l = :now",
          ConditionExpression: "attribute_exists(#c) AND #e > :now",
          ExpressionAttributeNames: { "#l": "lastSeenAt", "#c": "connectedAt", "#e": "expiresAt" },
          ExpressionAttributeValues: { ":now": { N: String(now) } },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private async batchGet(ids: readonly string[]): Promise<Record<string, AttributeValue>[]> {
    const found: Record<string, AttributeValue>[] = [];
    let keys: Record<string, AttributeValue>[] = ids.map(key);
    for (let attempt = 1; ; attempt++) {
      const { Responses, UnprocessedKeys } = await this.client.send(
        new BatchGetItemCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }),
      );
      found.push(...(Responses?.[this.tableName] ?? []));
      keys = UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      if (keys.length === 0) return found;
      if (attempt === BATCH_MAX_ATTEMPTS)
        throw new Error(`DynamoDB left ${keys.length} history reads unprocessed after ${attempt} attempts`);
      await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
    }
  }

  private async batchWrite(writes: WriteRequest[]): Promise<void> {
    let requests = writes;
    for (let attempt = 1; ; attempt++) {
      const { UnprocessedItems } = await this.client.send(
        new BatchWriteItemCommand({ RequestItems: { [this.tableName]: requests } }),
      );
      requests = UnprocessedItems?.[this.tableName] ?? [];
      if (requests.length === 0) return;
      if (attempt === BATCH_MAX_ATTEMPTS)
        throw new Error(`DynamoDB left ${requests.length} history writes unprocessed after ${attempt} attempts`);
      await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
    }
  }
}

function toEntry(item: Record<string, AttributeValue>): HistoryEntry {
  return {
    seq: Number(item.seq?.N),
    id: item.messageId?.S ?? "",
    ts: Number(item.ts?.N),
    frame: item.frame?.S ?? "",
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
