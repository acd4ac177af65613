/**
 * Runs a suite once per store: memory, a spawned redis-server, and DynamoDB on dynalite. Each test gets a fresh
 * store (a new key prefix, a new table), so suites need no cleanup between tests.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ConnectionStore } from "../../contract/connection-store";
import { DynamoDbConnectionStore } from "../../stores/dynamodb";
import { MemoryConnectionStore } from "../../stores/memory";
import { RedisConnectionStore } from "../../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./dynalite";
import { startRedis, type TestRedis } from "./redis-server";

export type StoreName = "memory" | "redis" | "dynamodb";

/** A fresh store, and how a restarted process would open it again. */
export interface OpenedStore {
  readonly name: StoreName;
  readonly store: ConnectionStore;
  /**
   * A second client on the same data, as a restarted gateway opens it: Redis and DynamoDB keep everything; a
   * memory store lives in its process, so a restart starts an empty one.
   */
  reopen(): Promise<ConnectionStore>;
}

export function forEachStore(suite: (newStore: () => Promise<ConnectionStore>) => void): void {
  forEachOpenedStore((open) => suite(async () => (await open()).store));
}

/** {@link forEachStore}, with each store's name and a way to open it again (a gateway restart). */
export function forEachOpenedStore(suite: (open: () => Promise<OpenedStore>) => void): void {
  describe("memory store", () => {
    suite(async () => ({
      name: "memory",
      store: new MemoryConnectionStore(),
      reopen: async () => new MemoryConnectionStore(),
    }));
  });

  describe("redis store", () => {
    let redis: TestRedis;
    const opened: ConnectionStore[] = [];
    let n = 0;
    before(async () => {
      redis = await startRedis();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });
    after(async () => {
      await redis?.stop();
    });
    suite(async () => {
      const keyPrefix = `matrix-${Date.now()}-${n++}`;
      const openOne = () => {
        const store = new RedisConnectionStore({ url: redis.url, keyPrefix });
        opened.push(store);
        return store;
      };
      return { name: "redis", store: openOne(), reopen: async () => openOne() };
    });
  });

  describe("dynamodb store (dynalite)", () => {
    let dynamo: TestDynamoDb;
    let client: DynamoDBClient;
    let n = 0;
    before(async () => {
      dynamo = await startDynalite();
      client = localDynamoDbClient(dynamo.endpoint);
    });
    after(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    suite(async () => {
      const tableName = `matrix-${n++}`;
      await createConnectionsTable(client, tableName);
      const openOne = () => new DynamoDbConnectionStore({ tableName, client });
      return { name: "dynamodb", store: openOne(), reopen: async () => openOne() };
    });
  });
}
