/**
 * Latency of the room-history store operations (docs/history.md) on each store, in one process: a spawned
 * redis-server and in-process dynalite, so the figures compare the stores' round trips and work, not AWS. Prints the
 * median and p95 of sequential appends and of resume pages, and the wall time of 20 concurrent appenders x 25.
 *
 *   node --require tsx/cjs bench/history.ts [frameBytes=1024]
 */
import { randomUUID } from "node:crypto";
import type { ConnectionStore } from "../contract/connection-store";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite } from "../test/support/dynalite";
import { startRedis } from "../test/support/redis-server";

const frameBytes = Number(process.argv[2] ?? 1024);
const bounds = { maxEntries: 100, maxAgeMs: 3_600_000 };
const frame = JSON.stringify({ type: "message", room: "r", data: "x".repeat(Math.max(0, frameBytes - 40)) });

function quantile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function timed(operation: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await operation();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function measure(name: string, store: ConnectionStore): Promise<void> {
  const appends: number[] = [];
  for (let i = 0; i < 300; i++)
    appends.push(await timed(() => store.appendHistory("seq", { id: `m-${i}`, frame }, bounds)));
  const pages: number[] = [];
  for (let i = 0; i < 50; i++)
    pages.push(await timed(() => store.historyAfter("seq", { after: 200, limit: 100 }, bounds)));
  const concurrent = await timed(() =>
    Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        for (let i = 0; i < 25; i++) await store.appendHistory("busy", { id: `c-${w}-${i}`, frame }, bounds);
      }),
    ),
  );
  const fmt = (ms: number) => ms.toFixed(2);
  console.log(
    `${name.padEnd(8)} append median ${fmt(quantile(appends, 0.5))} ms p95 ${fmt(quantile(appends, 0.95))} ms | ` +
      `page of 100 median ${fmt(quantile(pages, 0.5))} ms p95 ${fmt(quantile(pages, 0.95))} ms | ` +
      `20x25 concurrent appends ${fmt(concurrent)} ms`,
  );
}

async function main(): Promise<void> {
  console.log(`frame ${Buffer.byteLength(frame)} bytes, bounds ${JSON.stringify(bounds)}`);
  await measure("memory", new MemoryConnectionStore());
  const redis = await startRedis();
  const redisStore = new RedisConnectionStore({ url: redis.url, keyPrefix: `bench-${randomUUID()}` });
  try {
    await measure("redis", redisStore);
  } finally {
    await redisStore.close();
    await redis.stop();
  }
  const dynamo = await startDynalite();
  const client = localDynamoDbClient(dynamo.endpoint);
  try {
    const tableName = `bench-${randomUUID()}`;
    await createConnectionsTable(client, tableName);
    await measure("dynalite", new DynamoDbConnectionStore({ tableName, client }));
  } finally {
    client.destroy();
    await dynamo.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
