/**
 * No ghosts: through the local gateway (which, like API Gateway, answers 410 to a post while `$connect` is still
 * running) and the real handlers, on every store (memory, a spawned redis-server, dynalite):
 *
 * - a broadcast that meets a connection in its first seconds does not remove its record: the client gets the next
 *   broadcast and may join a room; a connection that really is gone (old) is still removed;
 * - a connection whose record the store lost (a restart, a failover, a flush) is re-added from its next message's
 *   `requestContext`, authorizer context included, so `join` works and the next broadcast reaches it.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { ConnectionStore } from "../contract/connection-store";
import { joinRoom } from "../handlers/join";
import { sendMessage } from "../handlers/send-message";
import { whoami } from "../handlers/whoami";
import { type ConnectionContext, messageEvent, newConnectionId } from "../local/events";
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
  waitFor,
} from "./support/gateway";
import { testDeps } from "./support/handler-deps";
import { type ManagementServer, startManagementServer } from "./support/management-server";
import { startRedis, type TestRedis } from "./support/redis-server";

const chat = (data: unknown) => JSON.stringify({ action: "sendmessage", data });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long the slow `$connect` keeps the handshake pending after writing its record. */
const CONNECT_DELAY_MS = 1_000;

interface StoreUnderTest {
  readonly name: string;
  store(): Promise<ConnectionStore>;
  /** Loses every record, as a restart of the store without persistence would. */
  wipe(): Promise<void>;
}

/** Ids of `$connect` events so far. */
const connectIds = (gw: ChatGateway) =>
  gw.events.filter((e) => e.routeKey === "$connect").map((e) => e.event.requestContext.connectionId);

/** Resolves once the handler has logged `message` `count` times in all (the line comes after its cleanup). */
const logged = (gw: ChatGateway, message: string, count: number) =>
  waitFor(
    () => (gw.deps.logs.filter((l) => l.message === message).length >= count ? true : undefined),
    5_000,
    `${count} "${message}" log lines`,
  );

function ghostSuite(subject: StoreUnderTest): void {
  it("keeps a client whose $connect is still running when a broadcast meets it; it gets the next one", async () => {
    const store = await subject.store();
    let slow = false;
    const gw = await startChatGateway(store, {
      override: (real) => ({
        ...real,
        // The record is written, then the handshake stays pending: API Gateway answers 410 to posts meanwhile.
        $connect: async (event) => {
          const result = await real.$connect!(event);
          if (slow) await sleep(CONNECT_DELAY_MS);
          return result;
        },
      }),
    });
    const clients: TestClient[] = [];
    try {
      const a = await openChatClient(gw);
      clients.push(a);
      slow = true;
      const before = new Set(connectIds(gw));
      const opening = openClient(gw.gateway.url);
      const newcomer = await waitFor(() => connectIds(gw).find((id) => !before.has(id)), 3_000, "the newcomer");
      await eventually(async () => (await store.get(newcomer)) !== undefined, "the newcomer's record");

      // A broadcast while the newcomer's handshake is pending: its post answers 410.
      await a.send(chat("while connecting"));
      expect(await a.next()).to.equal("while connecting");
      await logged(gw, "broadcast", 1);
      expect(await store.get(newcomer), "a 410 in the first seconds does not remove the record").to.not.equal(
        undefined,
      );

      const b = await opening;
      clients.push(b);
      slow = false;
      await a.send(chat("after connecting"));
      expect(await a.next()).to.equal("after connecting");
      expect(await b.next(), "the newcomer gets the next broadcast").to.equal("after connecting");
      await b.send(JSON.stringify({ action: "join", room: "lobby" }));
      expect(await b.nextJson()).to.include({ type: "members", room: "lobby" });
      expect(await b.nextJson()).to.include({ type: "joined", room: "lobby", connectionId: newcomer });

      // A connection that really is gone (connected minutes ago, no `$disconnect`) is still removed.
      const stale = "STALE0000000000=";
      await store.add({ connectionId: stale, connectedAt: Date.now() - 5 * 60_000, expiresAt: Date.now() + 60_000 });
      await a.send(chat("sweep"));
      expect(await a.next()).to.equal("sweep");
      expect(await b.next()).to.equal("sweep");
      await logged(gw, "broadcast", 3);
      expect(await store.get(stale), "an old 410 is removed").to.equal(undefined);
    } finally {
      for (const client of clients) client.ws.terminate();
      await gw.stop();
    }
  });

  it("re-adds a live client the store lost from its next message: join works, broadcasts reach it", async () => {
    const store = await subject.store();
    const gw = await startChatGateway(store);
    const clients: TestClient[] = [];
    try {
      const a = await openChatClient(gw);
      const b = await openChatClient(gw);
      clients.push(a, b);
      const connectedAt = (await store.get(b.connectionId!))!.connectedAt;
      await subject.wipe();
      expect(await store.get(b.connectionId!)).to.equal(undefined);

      await b.send(JSON.stringify({ action: "join", room: "lobby" }));
      const members = await b.nextJson();
      expect(members, "no UnknownConnection for a live client").to.include({ type: "members", room: "lobby" });
      expect(await b.nextJson()).to.include({ type: "joined", connectionId: b.connectionId });
      expect(await store.get(b.connectionId!)).to.deep.include({ connectionId: b.connectionId, connectedAt });

      // A no-room broadcast from a lost sender re-adds it and still reaches it; the other lost client too, once
      // it talks. A record rebuilt from a message cannot know the subprotocol, so healed clients get envelopes
      // (a plain client can read one; a typed client must never get a peer's raw data).
      const dataOf = async (client: TestClient) => {
        const frame = await client.nextJson();
        expect(frame).to.include({ type: "broadcast" });
        return frame.data;
      };
      await a.send(chat("who is here?"));
      expect(await dataOf(a), "the lost sender gets its own broadcast").to.equal("who is here?");
      expect(await dataOf(b)).to.equal("who is here?");
      expect(await store.get(a.connectionId!)).to.not.equal(undefined);
      await b.send(chat("both back"));
      expect(await dataOf(a)).to.equal("both back");
      expect(await dataOf(b)).to.equal("both back");
      expect(await a.quiet(100)).to.deep.equal([], "exactly once");
    } finally {
      for (const client of clients) client.ws.terminate();
      await gw.stop();
    }
  });
}

/**
 * The heal at the handler level, with what only an authorizer gives: the record rebuilt from a message carries the
 * authorizer's context as `$connect` stored it.
 */
function healFromContextSuite(subject: StoreUnderTest): void {
  let server: ManagementServer;
  beforeEach(async () => {
    server = await startManagementServer("test");
  });
  afterEach(async () => server.close());

  it("rebuilds the record from requestContext, authorizer context included, on whoami, join and sendmessage", async () => {
    const store = await subject.store();
    const deps = testDeps(store, server.endpoint);
    for (const route of [whoami, joinRoom, sendMessage] as const) {
      await subject.wipe();
      const ctx: ConnectionContext = {
        connectionId: newConnectionId(),
        connectedAt: Date.now() - 10 * 60_000,
        stage: "test",
        apiId: "local",
        domainName: "localhost",
        sourceIp: "127.0.0.1",
        authorizer: { principalId: "auth0|7", userId: "auth0|7", name: "Zoë", integrationLatency: 12 },
      };
      const body =
        route === whoami
          ? { action: "whoami" }
          : route === joinRoom
            ? { action: "join", room: "r" }
            : { action: "sendmessage", data: "hi" };
      const result = await route(messageEvent(ctx, body.action, JSON.stringify(body)), deps);
      expect(result.statusCode).to.equal(200);
      expect(await store.get(ctx.connectionId), body.action).to.deep.equal({
        connectionId: ctx.connectionId,
        connectedAt: ctx.connectedAt,
        expiresAt: ctx.connectedAt + 7500 * 1000,
        // A record rebuilt from a message cannot know the subprotocol: typed, so it gets envelopes.
        attributes: {
          principalId: "auth0|7",
          userId: "auth0|7",
          name: "Zoë",
          nameVerified: "true",
          protocol: "websocket-chat.v1",
        },
      });
      const frames = server.postsTo(ctx.connectionId);
      expect(frames.join("\n"), body.action).to.not.include("UnknownConnection");
      if (route === whoami) expect(JSON.parse(frames[0]!)).to.include({ type: "whoami", userId: "auth0|7" });
      if (route === sendMessage) {
        expect(frames).to.have.length(1);
        expect(JSON.parse(frames[0]!)).to.include({ type: "broadcast", data: "hi", userId: "auth0|7", name: "Zoë" });
      }
    }
  });
}

describe("ghosts: every store", function () {
  this.timeout(30_000);

  describe("memory", () => {
    let store: MemoryConnectionStore;
    const subject: StoreUnderTest = {
      name: "memory",
      store: async () => (store = new MemoryConnectionStore()),
      wipe: async () => {
        const ids: string[] = [];
        for await (const page of store.list()) ids.push(...page);
        await store.removeMany(ids);
      },
    };
    ghostSuite(subject);
    healFromContextSuite(subject);
  });

  describe("redis", () => {
    let redis: TestRedis;
    let admin: Redis;
    let store: RedisConnectionStore | undefined;
    before(async () => {
      redis = await startRedis();
      admin = new Redis(redis.url);
    });
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });
    after(async () => {
      await admin?.quit();
      await redis?.stop();
    });
    const subject: StoreUnderTest = {
      name: "redis",
      store: async () =>
        (store = new RedisConnectionStore({ url: redis.url, keyPrefix: `ghosts-${newConnectionId()}` })),
      // A restart without persistence (or a failover to a replica that missed the writes) loses everything.
      wipe: async () => void (await admin.flushall()),
    };
    ghostSuite(subject);
    healFromContextSuite(subject);
  });

  describe("dynamodb (dynalite)", () => {
    let dynamo: TestDynamoDb;
    let client: DynamoDBClient;
    let table = "";
    before(async () => {
      dynamo = await startDynalite();
      client = localDynamoDbClient(dynamo.endpoint);
    });
    after(async () => {
      client?.destroy();
      await dynamo?.stop();
    });
    const subject: StoreUnderTest = {
      name: "dynamodb",
      store: async () => {
        table = `ghosts-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
        await createConnectionsTable(client, table);
        return new DynamoDbConnectionStore({ tableName: table, client });
      },
      wipe: async () => {
        const ids: string[] = [];
        const store = new DynamoDbConnectionStore({ tableName: table, client });
        for await (const page of store.list()) ids.push(...page);
        await store.removeMany(ids);
      },
    };
    ghostSuite(subject);
    healFromContextSuite(subject);
  });
});
