/**
 * Only the server speaks for the server: typed clients (subprotocol `websocket-chat.v1`) get every room-less
 * broadcast as a `broadcast` envelope the server wrote, plain clients keep getting `data` as is; every chat message
 * carries a server id. End to end with real `ws` clients, the local gateway and the real handlers, on every store
 * (memory, Redis, DynamoDB on dynalite), inline and split into worker shards.
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { inProcessWorkers } from "../chat/in-process-workers";
import type { ConnectionStore } from "../contract/connection-store";
import type { FanOutSettings } from "../contract/env";
import { CHAT_PROTOCOL } from "../contract/frames";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { type ChatGateway, openClient, startChatGateway, type TestClient } from "./support/gateway";
import { startRedis, type TestRedis } from "./support/redis-server";

type Frame = Record<string, unknown>;
const action = (body: Record<string, unknown>) => JSON.stringify(body);
/** A server id: 26 characters of Crockford's base32, time first. */
const SERVER_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Opens a client at `query` (with `protocols`) and learns its connection id from the `$connect` event. */
async function open(gw: ChatGateway, query: string, protocols?: string[]): Promise<TestClient> {
  const before = gw.events.length;
  const client = await openClient(`${gw.gateway.url}${query}`, protocols ? { protocols } : {});
  client.connectionId = gw.events
    .slice(before)
    .find((e) => e.routeKey === "$connect")!.event.requestContext.connectionId;
  return client;
}

async function envelopeScenario(store: ConnectionStore, fanOut?: FanOutSettings): Promise<void> {
  const gw = await startChatGateway(store);
  if (fanOut) (gw.deps.env as { fanOut?: FanOutSettings }).fanOut = fanOut;
  const clients: TestClient[] = [];
  try {
    // tina speaks the subprotocol (offered after another one); paul and the wscat-like w do not.
    const tina = await open(gw, "?name=tina", ["chat.other", CHAT_PROTOCOL]);
    const paul = await open(gw, `?name=${encodeURIComponent("\u202epaul\u200b\u2066")}`);
    const w = await open(gw, "");
    const typed2 = await open(gw, "", [CHAT_PROTOCOL]);
    clients.push(tina, paul, w, typed2);
    expect(tina.ws.protocol).to.equal(CHAT_PROTOCOL);
    expect(typed2.ws.protocol).to.equal(CHAT_PROTOCOL);
    expect(paul.ws.protocol).to.equal("");
    expect(w.ws.protocol).to.equal("");

    // w forges a server frame as room-less data: plain clients get the text as is (today's behaviour), typed
    // clients get it inside an envelope naming w as the sender.
    const forged = JSON.stringify({ type: "whoami", connectionId: "forged", name: "admin", rooms: [] });
    await w.send(action({ action: "sendmessage", data: forged }));
    for (const plain of [paul, w]) expect(await plain.next()).to.equal(forged);
    const envelopes: Frame[] = [];
    for (const typed of [tina, typed2]) {
      const frame = await typed.nextJson();
      expect(frame).to.include({ type: "broadcast", from: w.connectionId, data: forged });
      expect(frame).to.not.have.property("name");
      expect(frame.id).to.match(SERVER_ID);
      expect(frame.ts).to.be.a("number");
      envelopes.push(frame);
    }
    // One message, one id: every recipient sees the same id and ts.
    expect(envelopes[1]).to.deep.equal(envelopes[0]);

    // paul's name lost its bidi and zero-width characters, and is marked unverified (chosen with ?name=).
    const fakeMessage = { type: "message", room: "lobby", from: "someone", name: "admin", data: "hi" };
    await paul.send(action({ action: "sendmessage", data: fakeMessage }));
    for (const plain of [paul, w]) expect(JSON.parse(await plain.next())).to.deep.equal(fakeMessage);
    const fromPaul = await tina.nextJson();
    expect(fromPaul).to.include({ type: "broadcast", from: paul.connectionId, name: "paul", nameVerified: false });
    expect(fromPaul.data).to.deep.equal(fakeMessage);
    expect(String(fromPaul.id) > String(envelopes[0]!.id), "ids sort by time").to.equal(true);
    expect((await typed2.nextJson()).id).to.equal(fromPaul.id);

    // A typed client's own broadcast comes back to it as an envelope too; plain clients get the string.
    await tina.send(action({ action: "sendmessage", data: "hello world" }));
    expect(await tina.nextJson()).to.include({ type: "broadcast", from: tina.connectionId, name: "tina" });
    expect(await typed2.nextJson()).to.include({ type: "broadcast", data: "hello world" });
    for (const plain of [paul, w]) expect(await plain.next()).to.equal("hello world");

    // sendto and room messages carry server ids as well.
    await w.send(action({ action: "sendto", to: tina.connectionId, data: "psst" }));
    const direct = await tina.nextJson();
    expect(direct).to.include({ type: "direct", from: w.connectionId, data: "psst" });
    expect(direct.id).to.match(SERVER_ID);
    await paul.send(action({ action: "join", room: "lobby" }));
    await paul.next(); // members
    await paul.next(); // joined
    await paul.send(action({ action: "sendmessage", room: "lobby", data: "in the room" }));
    const inRoom = await paul.nextJson();
    expect(inRoom).to.include({ type: "message", room: "lobby", from: paul.connectionId, name: "paul" });
    expect(inRoom.id).to.match(SERVER_ID);
    expect(inRoom.nameVerified).to.equal(false);

    await inProcessWorkers(gw.deps).idle();
    for (const client of clients) expect(await client.quiet(100)).to.deep.equal([]);
    if (fanOut) {
      const lines = gw.deps.logs.filter((l) => l.message === "broadcast shard");
      expect(lines.length, "the broadcasts were split into worker shards").to.be.greaterThan(0);
    }
  } finally {
    for (const client of clients) client.ws.terminate();
    await gw.stop();
  }
}

/** Inline lane of one, shards of two: every room-less broadcast above goes mostly through worker shards. */
const SHARDED: FanOutSettings = { concurrency: 4, postTimeoutMs: 3000, pageSize: 2, inlineMax: 1, shardSize: 2 };

describe("local gateway: typed clients get envelopes, plain clients raw data, on every store", function () {
  this.timeout(30_000);

  it("answers the subprotocol only when the client offered it", async () => {
    const gw = await startChatGateway(new MemoryConnectionStore());
    try {
      const typed = await openClient(gw.gateway.url, { protocols: [CHAT_PROTOCOL] });
      expect(typed.ws.protocol).to.equal(CHAT_PROTOCOL);
      typed.ws.terminate();
      // An offer without ours gets no header back; `ws` (like browsers, per the WHATWG standard) then fails it.
      const error = await openClient(gw.gateway.url, { protocols: ["chat.v9"] }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.message).to.match(/no subprotocol/i);
    } finally {
      await gw.stop();
    }
  });

  it("on the memory store", async () => {
    await envelopeScenario(new MemoryConnectionStore());
  });

  it("on the memory store, split into worker shards", async () => {
    await envelopeScenario(new MemoryConnectionStore(), SHARDED);
  });

  describe("Redis", () => {
    let redis: TestRedis;
    const stores: RedisConnectionStore[] = [];
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      for (const store of stores) await store.close();
      await redis?.stop();
    });
    for (const fanOut of [undefined, SHARDED]) {
      it(`on the redis store${fanOut ? ", split into worker shards" : ""}`, async () => {
        const store = new RedisConnectionStore({ url: redis.url, keyPrefix: `gw-env-${Date.now()}-${stores.length}` });
        stores.push(store);
        await envelopeScenario(store, fanOut);
      });
    }
  });

  describe("DynamoDB (dynalite)", () => {
    let dynamo: TestDynamoDb;
    let client: DynamoDBClient;
    let tables = 0;
    before(async () => {
      dynamo = await startDynalite();
      client = localDynamoDbClient(dynamo.endpoint);
    });
    after(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    for (const fanOut of [undefined, SHARDED]) {
      it(`on the dynamodb store${fanOut ? ", split into worker shards" : ""}`, async () => {
        const tableName = `gateway-envelope-${++tables}`;
        await createConnectionsTable(client, tableName);
        await envelopeScenario(new DynamoDbConnectionStore({ tableName, client }), fanOut);
      });
    }
  });
});
