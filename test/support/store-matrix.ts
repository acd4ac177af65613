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

export function forEachStore(suite: (newStore: () => Promise<ConnectionStore>) => void): void {
  describe("memory store", () => {
    suite(async () => new MemoryConnectionStore());
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
      const store = new RedisConnectionStore({ url: redis.url, keyPrefix: `matrix-${Date.now()}-${n++}` });
      opened.push(store);
      return store;
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
      return new DynamoDbConnectionStore({ tableName, client });
    });
  });
}
