/**
 * The sender always hears back, within 2 s, when its message could not be handled or fully delivered: through the
 * local gateway and the real handlers, against real stores that stop answering (a redis-server frozen with
 * SIGSTOP; dynalite behind a loopback proxy that holds every request), and a broadcast that reaches part of its
 * audience (a real `@connections` server failing one recipient). Each wait is measured from the client's send to
 * the frame it gets; the medians are printed.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { ConnectionStore } from "../contract/connection-store";
import { connect } from "../handlers/connect";
import { sendMessage } from "../handlers/send-message";
import { connectEvent, messageEvent, newConnectionId } from "../local/events";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { openChatClient, startChatGateway, type TestClient } from "./support/gateway";
import { testDeps } from "./support/handler-deps";
import { type HoldingProxy, startHoldingProxy } from "./support/holding-proxy";
import { startManagementServer } from "./support/management-server";
import { startRedis, type TestRedis } from "./support/redis-server";

/** What the sender must get its answer within. */
const ANSWER_WITHIN_MS = 2_000;

const messages: readonly { readonly name: string; readonly body: (other: string) => unknown }[] = [
  { name: "sendmessage", body: () => ({ action: "sendmessage", data: "anyone?" }) },
  { name: "sendmessage to a room", body: () => ({ action: "sendmessage", room: "lobby", data: "anyone?" }) },
  { name: "join", body: () => ({ action: "join", room: "other" }) },
  { name: "whoami", body: () => ({ action: "whoami" }) },
  { name: "sendto", body: (other) => ({ action: "sendto", to: other, data: "psst" }) },
];

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

/** Sends `body` and resolves with the first frame back and how long it took. */
async function answerTo(client: TestClient, body: unknown): Promise<{ frame: Record<string, unknown>; ms: number }> {
  const started = Date.now();
  await client.send(JSON.stringify(body));
  const frame = await client.nextJson(ANSWER_WITHIN_MS + 3_000);
  return { frame, ms: Date.now() - started };
}

/**
 * Two clients chat, `a` in room `lobby`; then the store stops answering (`hang`), and every kind of message `a`
 * sends must be answered with `StoreUnavailable` (retryable) within 2 s; then the store answers again (`resume`)
 * and chat goes on.
 */
async function hungStoreScenario(
  label: string,
  store: ConnectionStore,
  hang: () => Promise<void>,
  resume: () => Promise<void>,
): Promise<void> {
  const gw = await startChatGateway(store);
  const clients: TestClient[] = [];
  try {
    const a = await openChatClient(gw);
    const b = await openChatClient(gw);
    clients.push(a, b);
    await a.send(JSON.stringify({ action: "join", room: "lobby" }));
    expect(await a.nextJson()).to.include({ type: "members" });
    expect(await a.nextJson()).to.include({ type: "joined" });

    await hang();
    const waits: number[] = [];
    try {
      for (const message of messages) {
        for (let round = 0; round < 3; round++) {
          const { frame, ms } = await answerTo(a, message.body(b.connectionId!));
          expect(frame, message.name).to.include({ type: "error", code: "StoreUnavailable", retryable: true });
          expect(ms, `${message.name}: waited ${ms} ms`).to.be.below(ANSWER_WITHIN_MS);
          waits.push(ms);
        }
      }
    } finally {
      await resume();
    }
    console.log(
      `      ${label}: sender's wait for StoreUnavailable, median ${median(waits)} ms, max ${Math.max(...waits)} ms (n=${waits.length})`,
    );
    expect(await b.quiet(100), "nothing reached the other client").to.deep.equal([]);

    // The store is back: chat goes on.
    await a.send(JSON.stringify({ action: "sendmessage", data: "back" }));
    expect(await a.next(5_000)).to.equal("back");
    expect(await b.next(5_000)).to.equal("back");
  } finally {
    for (const client of clients) client.ws.terminate();
    await gw.stop();
  }
}

describe("the sender hears back within 2 s", function () {
  this.timeout(60_000);

  describe("redis frozen (SIGSTOP)", () => {
    let redis: TestRedis;
    let admin: Redis;
    let pid = 0;
    before(async () => {
      // A server of our own (a password forces one even with REDIS_URL set): the test freezes its process.
      redis = await startRedis({ password: "hears-back" });
      admin = new Redis(redis.url);
      pid = Number(/process_id:(\d+)/.exec(await admin.info("server"))![1]);
    });
    after(async () => {
      admin?.disconnect();
      await redis?.stop();
    });

    it("answers every kind of message with StoreUnavailable while Redis does not answer", async () => {
      const store = new RedisConnectionStore({ url: redis.url, keyPrefix: `hears-${newConnectionId()}` });
      try {
        await hungStoreScenario(
          "redis",
          store,
          async () => void process.kill(pid, "SIGSTOP"),
          async () => void process.kill(pid, "SIGCONT"),
        );
      } finally {
        process.kill(pid, "SIGCONT");
        await store.close();
      }
    });
  });

  describe("dynamodb hung (dynalite behind a proxy that holds requests)", () => {
    let dynamo: TestDynamoDb;
    let proxy: HoldingProxy;
    let client: DynamoDBClient;
    before(async () => {
      dynamo = await startDynalite();
      proxy = await startHoldingProxy(dynamo.endpoint);
      // The store's production client settings (timeouts, retries), pointed at the proxy.
      client = localDynamoDbClient(proxy.endpoint);
      await createConnectionsTable(client, "hears-back");
    });
    after(async () => {
      client?.destroy();
      await proxy?.stop();
      await dynamo?.stop();
    });

    it("answers every kind of message with StoreUnavailable while DynamoDB does not answer", async () => {
      const store = new DynamoDbConnectionStore({ tableName: "hears-back", client });
      await hungStoreScenario(
        "dynamodb",
        store,
        async () => void (proxy.hold = true),
        async () => void (proxy.hold = false),
      );
      expect(proxy.held, "requests were really held").to.be.above(0);
    });
  });

  describe("a store slow on one kind of call only (the sender's own record)", () => {
    /** A memory store whose `get` answers only after the guard has given up: the rest of the store is fine. */
    class SlowGetStore extends MemoryConnectionStore {
      override async get(connectionId: string) {
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        return super.get(connectionId);
      }
    }

    it("answers a room-less sendmessage without crashing the process or leaving a rejection unhandled", async () => {
      const unhandled: unknown[] = [];
      const note = (reason: unknown) => unhandled.push(reason);
      process.on("unhandledRejection", note);
      const gw = await startChatGateway(new SlowGetStore());
      const clients: TestClient[] = [];
      try {
        const a = await openChatClient(gw);
        const b = await openChatClient(gw);
        clients.push(a, b);
        const { frame, ms } = await answerTo(a, { action: "sendmessage", data: "anyone?" });
        expect(frame).to.include({ type: "error", code: "StoreUnavailable", retryable: true });
        expect(ms).to.be.below(ANSWER_WITHIN_MS);
        // Rejections are reported a turn after they are left unhandled.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        expect(unhandled.map(String)).to.deep.equal([]);
      } finally {
        process.off("unhandledRejection", note);
        for (const client of clients) client.ws.terminate();
        await gw.stop();
      }
    });
  });

  describe("a broadcast that reaches part of its audience (memory store, a real @connections server)", () => {
    it("answers PartialDelivery with counts, retryable, and 502", async () => {
      const server = await startManagementServer("test");
      const store = new MemoryConnectionStore();
      try {
        const deps = testDeps(store, server.endpoint);
        const ctx = (connectionId: string) => ({
          connectionId,
          connectedAt: Date.now() - 5 * 60_000,
          stage: "test",
          apiId: "local",
          domainName: "localhost",
          sourceIp: "127.0.0.1",
        });
        const ids = Array.from({ length: 5 }, () => newConnectionId());
        for (const id of ids) await connect(connectEvent(ctx(id), { headers: {} }), deps);
        const broken = ids[3]!;
        server.behaviour = (id) => (id === broken ? "error500" : "ok");
        const sender = ctx(ids[0]!);
        const started = Date.now();
        const result = await sendMessage(
          messageEvent(sender, "sendmessage", JSON.stringify({ action: "sendmessage", data: "hi" })),
          deps,
        );
        const ms = Date.now() - started;
        expect(result.statusCode, "a fault of ours").to.equal(502);
        const frames = server.postsTo(sender.connectionId);
        expect(frames[0]).to.equal("hi");
        expect(JSON.parse(frames[1]!)).to.include({
          type: "error",
          code: "PartialDelivery",
          retryable: true,
          delivered: 4,
          failed: 1,
          total: 5,
        });
        expect(ms).to.be.below(ANSWER_WITHIN_MS);
        console.log(`      memory: sender's wait for PartialDelivery ${ms} ms`);
      } finally {
        await server.close();
        await store.close();
      }
    });
  });
});
