/** The same chat scenario through the local gateway on every store: memory, Redis and DynamoDB (dynalite). */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import type { ConnectionStore } from "../contract/connection-store";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { type ChatGateway, eventually, openChatClient, startChatGateway, type TestClient } from "./support/gateway";
import { startRedis, type TestRedis } from "./support/redis-server";

const chat = (data: unknown) => JSON.stringify({ action: "sendmessage", data });

/** Three clients chat; one vanishes; a stale record is swept by the next broadcast. */
async function chatScenario(store: ConnectionStore): Promise<void> {
  const gw: ChatGateway = await startChatGateway(store);
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await openChatClient(gw));
    const [a, b, c] = clients as [TestClient, TestClient, TestClient];
    for (const client of clients)
      expect(await store.get(client.connectionId!), "$connect stored it").to.not.equal(undefined);

    await a.send(chat("one"));
    await b.send(chat({ two: 2 }));
    for (const client of clients) {
      expect([await client.next(), await client.next()].sort()).to.deep.equal(["one", '{"two":2}'].sort());
    }

    const stale = "STALE0000000000=";
    await store.add({ connectionId: stale, connectedAt: Date.now() - 5 * 60_000, expiresAt: Date.now() + 60_000 });
    c.ws.terminate(); // vanishes without a close handshake
    const gone = await gw.disconnectOf(c.connectionId!);
    expect(gone.requestContext.disconnectStatusCode).to.equal(1006);
    // The event is recorded as the handler starts: wait for its removal, bounded.
    await eventually(async () => (await store.get(c.connectionId!)) === undefined, "$disconnect to remove it");

    await b.send(chat("three"));
    expect(await a.next()).to.equal("three");
    expect(await b.next()).to.equal("three");
    // The frames arrive before the handler has finished sweeping: wait for the sweep, bounded.
    await eventually(
      async () => (await store.get(stale)) === undefined,
      "the broadcast's 410 to remove the stale record",
    );
    for (const client of [a, b]) expect(await client.quiet(100)).to.deep.equal([], "exactly once");
  } finally {
    for (const client of clients) client.ws.terminate();
    await gw.stop();
  }
}

describe("local gateway on every store", function () {
  this.timeout(20_000);

  it("chats on the memory store", async () => {
    await chatScenario(new MemoryConnectionStore());
  });

  describe("Redis", () => {
    let redis: TestRedis;
    let store: RedisConnectionStore | undefined;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await store?.close();
      await redis?.stop();
    });
    it("chats on the redis store", async () => {
      store = new RedisConnectionStore({ url: redis.url, keyPrefix: `gw-${Date.now()}` });
      await chatScenario(store);
    });
  });

  describe("DynamoDB (dynalite)", () => {
    let dynamo: TestDynamoDb;
    let client: DynamoDBClient;
    before(async () => {
      dynamo = await startDynalite();
      client = localDynamoDbClient(dynamo.endpoint);
      await createConnectionsTable(client, "gateway-connections");
    });
    after(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    it("chats on the dynamodb store", async () => {
      await chatScenario(new DynamoDbConnectionStore({ tableName: "gateway-connections", client }));
    });
  });
});
