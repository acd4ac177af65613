/**
 * Rooms, direct messages and presence end to end: real `ws` clients, the local gateway, the real handlers, on every
 * store (memory, Redis, DynamoDB on dynalite).
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import type { ConnectionStore } from "../contract/connection-store";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import {
  type ChatGateway,
  eventually,
  openChatClient,
  openClient,
  startChatGateway,
  type TestClient,
} from "./support/gateway";
import { startRedis, type TestRedis } from "./support/redis-server";

type Frame = Record<string, unknown>;
const action = (body: Record<string, unknown>) => JSON.stringify(body);

async function frames(client: TestClient, n: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) out.push(JSON.parse(await client.next()) as Frame);
  return out;
}

async function roomsScenario(store: ConnectionStore): Promise<void> {
  const gw: ChatGateway = await startChatGateway(store);
  const clients: TestClient[] = [];
  const open = async () => {
    const client = await openChatClient(gw, {});
    clients.push(client);
    return client;
  };
  try {
    // alice connects with a display name (the gateway passes the query string to $connect).
    const before = gw.events.length;
    const aWs = await openClient(`${gw.gateway.url}?name=alice`);
    clients.push(aWs);
    aWs.connectionId = gw.events
      .slice(before)
      .find((e) => e.routeKey === "$connect")!.event.requestContext.connectionId;
    const a = aWs;
    const b = await open();
    const c = await open();
    const [ida, idb, idc] = [a.connectionId!, b.connectionId!, c.connectionId!];

    // join: the joiner gets the members, then everyone (the joiner too) gets `joined`.
    await a.send(action({ action: "join", room: "A" }));
    const [membersA, joinedA] = await frames(a, 2);
    expect(membersA).to.deep.equal({
      type: "members",
      room: "A",
      members: [{ connectionId: ida, name: "alice", nameVerified: false }],
      more: false,
    });
    expect(joinedA).to.include({ type: "joined", room: "A", connectionId: ida, name: "alice" });
    expect(joinedA!.ts).to.be.a("number");

    await b.send(action({ action: "join", room: "A" }));
    const [membersB, joinedB] = await frames(b, 2);
    expect(membersB!.type).to.equal("members");
    expect((membersB!.members as Frame[]).map((m) => m.connectionId).sort()).to.deep.equal([ida, idb].sort());
    expect(joinedB).to.include({ type: "joined", room: "A", connectionId: idb });
    expect(await a.nextJson()).to.include({ type: "joined", room: "A", connectionId: idb });

    await c.send(action({ action: "join", room: "B" }));
    expect((await frames(c, 2)).map((f) => f.type)).to.deep.equal(["members", "joined"]);

    // Joining again changes nothing: members again, no `joined` for anyone.
    await b.send(action({ action: "join", room: "A" }));
    expect((await b.nextJson()).type).to.equal("members");
    expect(await a.quiet(150)).to.deep.equal([]);

    // whoami
    await a.send(action({ action: "whoami" }));
    expect(await a.nextJson()).to.deep.equal({
      type: "whoami",
      connectionId: ida,
      name: "alice",
      nameVerified: false,
      rooms: ["A"],
    });

    // A room message reaches that room's members only, as an envelope.
    await a.send(action({ action: "sendmessage", room: "A", data: { text: "hi A" } }));
    for (const member of [a, b]) {
      const message = await member.nextJson();
      expect(message).to.include({ type: "message", room: "A", from: ida, name: "alice" });
      expect(message.data).to.deep.equal({ text: "hi A" });
      expect(message.ts).to.be.a("number");
    }
    expect(await c.quiet(150)).to.deep.equal([], "room B hears nothing of room A");

    // Sending to a room one has not joined, or an invalid one.
    await c.send(action({ action: "sendmessage", room: "A", data: "intrude" }));
    expect(await c.nextJson()).to.include({ type: "error", code: "NotInRoom", room: "A" });
    await c.send(action({ action: "join", room: "bad room!" }));
    expect(await c.nextJson()).to.include({ type: "error", code: "InvalidRoom", room: "bad room!" });
    expect(await a.quiet(100)).to.deep.equal([]);

    // No room: exactly as before, data as is to everyone.
    await b.send(action({ action: "sendmessage", data: "hello, everyone" }));
    for (const client of [a, b, c]) expect(await client.next()).to.equal("hello, everyone");

    // sendto: that one connection only.
    await a.send(action({ action: "sendto", to: idc, data: "psst" }));
    expect(await c.nextJson()).to.include({ type: "direct", from: ida, name: "alice", data: "psst" });
    expect(await a.quiet(100)).to.deep.equal([]);
    expect(await b.quiet(50)).to.deep.equal([]);
    await a.send(action({ action: "sendto", data: "x" }));
    expect(await a.nextJson()).to.include({ type: "error", code: "MissingTo" });

    // Presence after a 410: a stale member of A is found gone by a room message, removed, and announced.
    const stale = "STALE0000000000=";
    await store.add({
      connectionId: stale,
      connectedAt: Date.now() - 5 * 60_000, // not in its first seconds (CONNECT_GRACE_MS)
      expiresAt: Date.now() + 60_000,
      attributes: { userId: "u-stale" },
    });
    expect(await store.join(stale, "A", 10)).to.equal("joined");
    await b.send(action({ action: "sendmessage", room: "A", data: "anyone?" }));
    for (const member of [a, b]) {
      expect(await member.nextJson()).to.include({ type: "message", data: "anyone?" });
      expect(await member.nextJson()).to.include({ type: "left", room: "A", connectionId: stale, userId: "u-stale" });
    }
    await eventually(async () => (await store.get(stale)) === undefined, "the stale member's removal");
    expect(await c.quiet(100)).to.deep.equal([]);

    // sendto a gone connection: a clear error to the sender; its rooms hear it left.
    const ghost = "GHOST0000000000=";
    await store.add({ connectionId: ghost, connectedAt: Date.now() - 5 * 60_000, expiresAt: Date.now() + 60_000 });
    await store.join(ghost, "B", 10);
    await a.send(action({ action: "sendto", to: ghost, data: "hello?" }));
    expect(await a.nextJson()).to.include({ type: "error", code: "RecipientGone", to: ghost });
    expect(await c.nextJson()).to.include({ type: "left", room: "B", connectionId: ghost });
    expect(await store.get(ghost)).to.equal(undefined);

    // leave: the others and the leaver get `left`; leaving again is NotInRoom.
    await b.send(action({ action: "leave", room: "A" }));
    expect(await a.nextJson()).to.include({ type: "left", room: "A", connectionId: idb });
    expect(await b.nextJson()).to.include({ type: "left", room: "A", connectionId: idb });
    await b.send(action({ action: "leave", room: "A" }));
    expect(await b.nextJson()).to.include({ type: "error", code: "NotInRoom" });
    await b.send(action({ action: "sendmessage", room: "A", data: "still here?" }));
    expect(await b.nextJson()).to.include({ type: "error", code: "NotInRoom" });

    // Disconnect: the rooms it was in hear `left`.
    await c.close(1000);
    await gw.disconnectOf(idc);
    await c.closed;
    // $disconnect runs after the close: wait for its `left` broadcast to room B (nobody is left there to hear it).
    await eventually(
      async () =>
        gw.deps.logs.some(
          (l) => l.message === "room broadcast" && l.kind === "left" && l.room === "B" && l.connectionId === idc,
        ),
      "c's departure announced",
    );
    expect(await store.roomsOf(idc)).to.deep.equal([]);
    await b.send(action({ action: "join", room: "B" }));
    expect((await frames(b, 2)).map((f) => f.type)).to.deep.equal(["members", "joined"]);
    await a.send(action({ action: "join", room: "B" }));
    await frames(a, 2);
    expect(await b.nextJson()).to.include({ type: "joined", room: "B", connectionId: ida });
    a.ws.terminate();
    await gw.disconnectOf(ida);
    expect(await b.nextJson()).to.include({ type: "left", room: "B", connectionId: ida, name: "alice" });
    expect(await store.roomsOf(ida)).to.deep.equal([]);
  } finally {
    for (const client of clients) client.ws.terminate();
    await gw.stop();
  }
}

describe("local gateway: rooms, direct messages and presence on every store", function () {
  this.timeout(30_000);

  it("on the memory store", async () => {
    await roomsScenario(new MemoryConnectionStore());
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
    it("on the redis store", async () => {
      store = new RedisConnectionStore({ url: redis.url, keyPrefix: `gw-rooms-${Date.now()}` });
      await roomsScenario(store);
    });
  });

  describe("DynamoDB (dynalite)", () => {
    let dynamo: TestDynamoDb;
    let client: DynamoDBClient;
    before(async () => {
      dynamo = await startDynalite();
      client = localDynamoDbClient(dynamo.endpoint);
      await createConnectionsTable(client, "gateway-rooms");
    });
    after(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    it("on the dynamodb store", async () => {
      await roomsScenario(new DynamoDbConnectionStore({ tableName: "gateway-rooms", client }));
    });
  });
});
