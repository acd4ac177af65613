import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type AttributeValue,
  type DynamoDBClientConfig,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { DEFAULT_PAGE_SIZE, type ConnectionRecord, type ConnectionStore, type ListOptions } from "./connection-store";
import { HASH_KEY, TTL_ATTRIBUTE } from "./dynamodb-table";

/** BatchWriteItem's hard limit on requests per call. */
const BATCH_WRITE_LIMIT = 25;
/** Batches in flight at once in `removeMany`: enough to hide latency, few enough not to provoke throttling. */
const BATCH_CONCURRENCY = 4;
/** Calls per batch before giving up on items DynamoDB keeps returning as unprocessed (throttling). */
const BATCH_MAX_ATTEMPTS = 8;
const BACKOFF_BASE_MS = 25;
const BACKOFF_CAP_MS = 1000;

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

  constructor(options: DynamoDbStoreOptions) {
    this.tableName = options.tableName;
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
    const record = { connectionId, connectedAt: Number(item.connectedAt.N), expiresAt };
    const map = item.attributes?.M;
    if (!map || Object.keys(map).length === 0) return record;
    return { ...record, attributes: Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v.S ?? ""])) };
  }

  async remove(connectionId: string): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: { [HASH_KEY]: { S: connectionId } } }));
  }

  async removeMany(connectionIds: readonly string[]): Promise<void> {
    // DynamoDB rejects a batch that names the same key twice.
    const ids = [...new Set(connectionIds)];
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += BATCH_WRITE_LIMIT) batches.push(ids.slice(i, i + BATCH_WRITE_LIMIT));
    let next = 0;
    const worker = async (): Promise<void> => {
      try {
        while (next < batches.length) await this.deleteBatch(batches[next++]);
      } catch (error) {
        next = batches.length; // the call has failed: the other workers must not go on deleting in the background
        throw error;
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, batches.length) }, worker));
  }

  async *list(options?: ListOptions): AsyncIterable<string[]> {
    const pageSize = options?.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          ProjectionExpression: "#id",
          FilterExpression: "#e > :now",
          ExpressionAttributeNames: { "#id": HASH_KEY, "#e": "expiresAt" },
          ExpressionAttributeValues: { ":now": { N: String(Date.now()) } },
          // Limit caps items read before the filter, so a page never exceeds pageSize.
          Limit: pageSize,
          // An eventually consistent scan could miss a connection added just before the listing started.
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      const ids = (page.Items ?? []).flatMap((item) => (item[HASH_KEY]?.S !== undefined ? [item[HASH_KEY].S] : []));
      if (ids.length > 0) yield ids;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
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
        throw new Error(`DynamoDB left ${requests.length} of ${ids.length} deletes unprocessed after ${attempt} attempts`);
      }
      // Full jitter: concurrent batches that were throttled together must not retry together.
      await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
