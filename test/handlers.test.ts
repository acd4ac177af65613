import { expect } from "chai";
import { connect } from "../functions/connect";
import { defaultRoute } from "../functions/default";
import { disconnect } from "../functions/disconnect";
import { fanOut } from "../functions/fan-out";
import { sendMessage } from "../functions/send-message";
import { joinRoom } from "../functions/join";
import { leaveRoom } from "../functions/leave";
import { whoami } from "../functions/whoami";
import { sendTo } from "../functions/send-to";
import { CLIENT_ACTIONS } from "../functions/routes";
import { ConnectionsApi, preparePayload } from "../functions/runtime/connections-api";
import { connectEvent, disconnectEvent, messageEvent, newConnectionId, type ConnectionContext } from "../local/events";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { startManagementServer, type ManagementServer } from "./support/management-server";
import { testDeps, type TestDeps } from "./support/handler-deps";

function conn(overrides: Partial<ConnectionContext> = {}): ConnectionContext {
  return {
    connectionId: newConnectionId(),
    connectedAt: Date.now(),
    stage: "test",
    apiId: "local",
    domainName: "localhost",
    sourceIp: "127.0.0.1",
    userAgent: "mocha",
    ...overrides,
  };
}

const send = (c: ConnectionContext, body: unknown) =>
  messageEvent(c, "sendmessage", typeof body === "string" ? body : JSON.stringify(body));

describe("handlers (against a real management API server)", () => {
  let server: ManagementServer;
  let store: MemoryConnectionStore;
  let deps: TestDeps;

  beforeEach(async () => {
    server = await startManagementServer("test");
    store = new MemoryConnectionStore();
    deps = testDeps(store, server.endpoint);
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  async function connectMany(n: number): Promise<ConnectionContext[]> {
    const all: ConnectionContext[] = [];
    for (let i = 0; i < n; i++) {
      const c = conn();
      expect((await connect(connectEvent(c, { headers: { Host: "localhost" } }), deps)).statusCode).to.equal(200);
      all.push(c);
    }
    return all;
  }

  const frameFor = (c: ConnectionContext) =>
    server.postsTo(c.connectionId).map((b) => JSON.parse(b) as Record<string, unknown>);

  describe("$connect", () => {
    it("stores the connection with connectedAt and an expiry 2 h + 5 min later", async () => {
      const c = conn({ connectedAt: 1_700_000_000_000 });
      const result = await connect(connectEvent(c, { headers: { Host: "localhost" } }), deps);
      expect(result.statusCode).to.equal(200);
      const record = await store.get(c.connectionId);
      // get() hides expired records, so read through list-independent fields only when not expired: use a fresh time.
      expect(record).to.equal(undefined, "a connection from 2023 has long expired");
      const fresh = conn();
      await connect(connectEvent(fresh, { headers: {} }), deps);
      const stored = await store.get(fresh.connectionId);
      expect(stored).to.deep.include({ connectionId: fresh.connectionId, connectedAt: fresh.connectedAt });
      expect(stored!.expiresAt).to.equal(fresh.connectedAt + 7500 * 1000);
    });

    it("keeps the authorizer context, stringified, as connection attributes", async () => {
      const c = conn({ authorizer: { principalId: "user-1", integrationLatency: 12, admin: true, n: 3 } });
      await connect(connectEvent(c, { headers: {} }), deps);
      const stored = await store.get(c.connectionId);
      expect(stored!.attributes).to.deep.equal({ principalId: "user-1", admin: "true", n: "3" });
    });

    it("answers 500 with a generic body and logs the cause when the store is down", async () => {
      // A real Redis client pointed at a loopback port where nothing listens.
      const dead = new RedisConnectionStore({ url: "redis://127.0.0.1:1", keyPrefix: "dead" });
      const d = testDeps(dead, server.endpoint);
      const started = Date.now();
      const result = await connect(connectEvent(conn(), { headers: {} }), d);
      await dead.close();
      expect(result).to.deep.equal({ statusCode: 500, body: "Failed to connect." });
      expect(Date.now() - started).to.be.below(5_000);
      const line = d.logs.find((l) => l.message === "connect failed: store write");
      expect(line).to.include({ level: "error", route: "$connect", outcome: "error" });
      expect(line!.error).to.be.an("object");
    });
  });

  describe("$disconnect", () => {
    it("removes the connection, and a second disconnect is harmless", async () => {
      const [a, b] = await connectMany(2);
      const event = disconnectEvent(a!, 1001, "");
      expect((await disconnect(event, deps)).statusCode).to.equal(200);
      expect(await store.get(a!.connectionId)).to.equal(undefined);
      expect(await store.get(b!.connectionId)).to.not.equal(undefined);
      expect((await disconnect(event, deps)).statusCode).to.equal(200);
      const line = deps.logs.find((l) => l.message === "disconnected");
      expect(line).to.include({ route: "$disconnect", connectionId: a!.connectionId, disconnectStatusCode: 1001 });
    });
  });

  describe("sendmessage", () => {
    it("delivers a string to every connection, sender included, exactly once and as is", async () => {
      const clients = await connectMany(5);
      const result = await sendMessage(send(clients[0]!, { action: "sendmessage", data: 'hello "world"' }), deps);
      expect(result.statusCode).to.equal(200);
      for (const c of clients) expect(server.postsTo(c.connectionId)).to.deep.equal(['hello "world"']);
    });

    it("sends any other JSON value as its JSON text", async () => {
      const [a, b] = await connectMany(2);
      await sendMessage(send(a!, { action: "sendmessage", data: { text: "hi", n: [1, 2] } }), deps);
      await sendMessage(send(a!, { action: "sendmessage", data: 42 }), deps);
      await sendMessage(send(a!, { action: "sendmessage", data: false }), deps);
      expect(server.postsTo(b!.connectionId)).to.deep.equal(['{"text":"hi","n":[1,2]}', "42", "false"]);
    });

    it("removes stale (410) targets and only them, and still delivers to everyone else", async () => {
      const clients = await connectMany(6);
      const stale = new Set([clients[2]!.connectionId, clients[4]!.connectionId]);
      server.behaviour = (id) => (stale.has(id) ? "gone" : "ok");
      await sendMessage(send(clients[0]!, { action: "sendmessage", data: "x" }), deps);
      for (const c of clients) {
        const isStale = stale.has(c.connectionId);
        expect(await store.get(c.connectionId), c.connectionId).to.satisfy((r: unknown) =>
          isStale ? r === undefined : r !== undefined,
        );
        expect(server.postsTo(c.connectionId)).to.deep.equal(isStale ? [] : ["x"]);
      }
      const summary = deps.logs.find((l) => l.message === "broadcast")!;
      expect(summary).to.include({
        targets: 6,
        delivered: 4,
        gone: 2,
        failed: 0,
        connectionId: clients[0]!.connectionId,
      });
    });

    it("keeps going when one target keeps failing, and reports it", async () => {
      const clients = await connectMany(4);
      const broken = clients[1]!.connectionId;
      server.behaviour = (id) => (id === broken ? "error500" : "ok");
      await sendMessage(send(clients[0]!, { action: "sendmessage", data: "y" }), deps);
      for (const c of clients)
        if (c.connectionId !== broken) expect(server.postsTo(c.connectionId)).to.deep.equal(["y"]);
      const summary = deps.logs.find((l) => l.message === "broadcast")!;
      expect(summary).to.include({ delivered: 3, failed: 1, gone: 0, outcome: "partial" });
      expect(await store.get(broken), "a failing target is not stale: it stays").to.not.equal(undefined);
    });

    it("retries throttled posts (429) with backoff and delivers them", async () => {
      const clients = await connectMany(3);
      server.behaviour = (_id, attempt) => (attempt <= 2 ? "throttle" : "ok");
      await sendMessage(send(clients[0]!, { action: "sendmessage", data: "z" }), deps);
      for (const c of clients) expect(server.postsTo(c.connectionId)).to.deep.equal(["z"]);
      const summary = deps.logs.find((l) => l.message === "broadcast")!;
      expect(summary).to.include({ delivered: 3, retried: 6, failed: 0 });
    });

    it("times out a hanging post, counts it failed and does not hold up the rest", async () => {
      const clients = await connectMany(3);
      const hung = clients[2]!.connectionId;
      server.behaviour = (id) => (id === hung ? "hang" : "ok");
      const d = testDeps(store, server.endpoint, { timeoutMs: 200, maxAttempts: 2 });
      const started = Date.now();
      await sendMessage(send(clients[0]!, { action: "sendmessage", data: "w" }), d);
      expect(Date.now() - started).to.be.below(2_000);
      const summary = d.logs.find((l) => l.message === "broadcast")!;
      expect(summary).to.include({ delivered: 2, failed: 1 });
    });

    it("answers the sender with MissingData when data is absent or null, and sends nothing else", async () => {
      const [a, b] = await connectMany(2);
      expect((await sendMessage(send(a!, { action: "sendmessage" }), deps)).statusCode).to.equal(400);
      await sendMessage(send(a!, { action: "sendmessage", data: null }), deps);
      const frames = frameFor(a!);
      expect(frames).to.have.length(2);
      for (const f of frames) expect(f).to.include({ type: "error", code: "MissingData" });
      expect(server.postsTo(b!.connectionId)).to.deep.equal([]);
    });

    it("answers the sender with InvalidJson / InvalidBody for bodies it cannot use", async () => {
      const [a] = await connectMany(1);
      await sendMessage(messageEvent(a!, "sendmessage", "{not json"), deps);
      await sendMessage(messageEvent(a!, "sendmessage", "[1,2]"), deps);
      expect(frameFor(a!).map((f) => f.code)).to.deep.equal(["InvalidJson", "InvalidBody"]);
    });

    it("refuses data over the data limit (maxDataBytes, default 32 KB) with PayloadTooLarge to the sender only", async () => {
      const [a, b] = await connectMany(2);
      const result = await sendMessage(send(a!, { action: "sendmessage", data: "x".repeat(131_073) }), deps);
      expect(result.statusCode).to.equal(413);
      expect(frameFor(a!)[0]).to.include({ code: "PayloadTooLarge", limit: 32_768 });
      expect(server.postsTo(b!.connectionId)).to.deep.equal([]);
    });
  });

  describe("rooms", () => {
    const body = (b: Record<string, unknown>) => JSON.stringify(b);
    const ev = (c: ConnectionContext, routeKey: string, b: Record<string, unknown>) =>
      messageEvent(c, routeKey, body(b));

    it("join answers the joiner with the members and everyone with joined; a repeat join only with members", async () => {
      const [a, b] = await connectMany(2);
      expect((await joinRoom(ev(a!, "join", { action: "join", room: "r" }), deps)).statusCode).to.equal(200);
      expect(frameFor(a!).map((f) => f.type)).to.deep.equal(["members", "joined"]);
      await joinRoom(ev(b!, "join", { action: "join", room: "r" }), deps);
      expect(frameFor(a!).map((f) => f.type)).to.deep.equal(["members", "joined", "joined"]);
      await joinRoom(ev(b!, "join", { action: "join", room: "r" }), deps);
      expect(frameFor(b!).map((f) => f.type)).to.deep.equal(["members", "joined", "members"]);
      expect(frameFor(a!)).to.have.length(3);
      const line = deps.logs.find((l) => l.message === "room broadcast" && l.kind === "joined");
      expect(line).to.include({ room: "r", route: "join", outcome: "ok" });
    });

    it("bounds a connection's rooms by maxRoomsPerConnection with TooManyRooms naming the limit and rooms", async () => {
      const [a] = await connectMany(1);
      const d = { ...deps, env: { ...deps.env, maxRoomsPerConnection: 2 } };
      for (const room of ["r1", "r2", "r3"]) await joinRoom(ev(a!, "join", { action: "join", room }), d);
      const error = frameFor(a!).find((f) => f.type === "error");
      expect(error).to.include({ code: "TooManyRooms", limit: 2, room: "r3" });
      expect(error!.rooms).to.deep.equal(["r1", "r2"]);
      expect(await store.roomsOf(a!.connectionId)).to.deep.equal(["r1", "r2"]);
    });

    it("answers InvalidRoom for a missing, non-string or malformed room", async () => {
      const [a] = await connectMany(1);
      for (const room of [undefined, 42, "", "x".repeat(65), "a/b"])
        await joinRoom(ev(a!, "join", { action: "join", room }), deps);
      await leaveRoom(ev(a!, "leave", { action: "leave" }), deps);
      await sendMessage(send(a!, { action: "sendmessage", room: "a b", data: "x" }), deps);
      expect(frameFor(a!).map((f) => f.code)).to.deep.equal(Array(7).fill("InvalidRoom"));
    });

    it("sendmessage with a room: members only, as an envelope with the authorizer's user id", async () => {
      const a = conn({ authorizer: { principalId: "user-a", userId: "user-a" } });
      await connect(connectEvent(a, { headers: {} }), deps);
      const [b, outsider] = await connectMany(2);
      await joinRoom(ev(a, "join", { action: "join", room: "r" }), deps);
      await joinRoom(ev(b!, "join", { action: "join", room: "r" }), deps);
      await sendMessage(send(a, { action: "sendmessage", room: "r", data: [1, "two"] }), deps);
      for (const c of [a, b!]) {
        const message = frameFor(c).at(-1)!;
        expect(message).to.include({ type: "message", room: "r", from: a.connectionId, userId: "user-a" });
        expect(message.data).to.deep.equal([1, "two"]);
      }
      expect(server.postsTo(outsider!.connectionId)).to.deep.equal([]);
    });

    it("whoami answers the connection id, name and rooms", async () => {
      const a = conn();
      await connect(
        connectEvent(a, {
          headers: {},
          queryStringParameters: { name: "  Zoë\u0007 the great chat user with a long name!  " },
        }),
        deps,
      );
      await joinRoom(ev(a, "join", { action: "join", room: "b" }), deps);
      await joinRoom(ev(a, "join", { action: "join", room: "a" }), deps);
      await whoami(ev(a, "whoami", { action: "whoami" }), deps);
      const frame = frameFor(a).at(-1)!;
      // The name is cleaned: control characters dropped, trimmed, at most 32 characters.
      expect(frame).to.include({
        type: "whoami",
        connectionId: a.connectionId,
        name: "Zoë the great chat user with a l",
      });
      expect(frame.rooms).to.deep.equal(["a", "b"]);
    });

    it("sendto: direct frame to the recipient; RecipientGone (and its removal) for a 410; DeliveryFailed for a 5xx", async () => {
      const [a, b, c] = await connectMany(3);
      await joinRoom(ev(c!, "join", { action: "join", room: "r" }), deps);
      await joinRoom(ev(a!, "join", { action: "join", room: "r" }), deps);
      expect(
        (await sendTo(ev(a!, "sendto", { action: "sendto", to: b!.connectionId, data: { hi: 1 } }), deps)).statusCode,
      ).to.equal(200);
      expect(frameFor(b!)).to.have.length(1);
      expect(frameFor(b!)[0]).to.include({ type: "direct", from: a!.connectionId });
      expect(frameFor(b!)[0]!.data).to.deep.equal({ hi: 1 });

      server.behaviour = (id) => (id === c!.connectionId ? "gone" : id === b!.connectionId ? "error500" : "ok");
      expect(
        (await sendTo(ev(a!, "sendto", { action: "sendto", to: c!.connectionId, data: "x" }), deps)).statusCode,
      ).to.equal(410);
      const frames = frameFor(a!);
      expect(frames.find((f) => f.code === "RecipientGone")).to.include({ to: c!.connectionId });
      expect(frames.at(-1)).to.include({ type: "left", room: "r", connectionId: c!.connectionId });
      expect(await store.get(c!.connectionId)).to.equal(undefined);

      expect(
        (await sendTo(ev(a!, "sendto", { action: "sendto", to: b!.connectionId, data: "x" }), deps)).statusCode,
      ).to.equal(502);
      expect(frameFor(a!).at(-1)).to.include({ code: "DeliveryFailed", to: b!.connectionId });
      const bads = [{}, { to: "" }, { to: 5 }, { to: "a/b" }, { to: ".." }, { to: "\ud800" }, { to: "a b" }];
      for (const bad of bads) await sendTo(ev(a!, "sendto", { action: "sendto", data: "x", ...bad }), deps);
      await sendTo(ev(a!, "sendto", { action: "sendto", to: b!.connectionId }), deps);
      expect(
        frameFor(a!)
          .slice(-(bads.length + 1))
          .map((f) => f.code),
      ).to.deep.equal([...bads.map(() => "MissingTo"), "MissingData"]);
    });

    it("a global sendmessage that finds a gone room member announces its departure to the room", async () => {
      const [a, b, c] = await connectMany(3);
      for (const x of [a!, b!]) await joinRoom(ev(x, "join", { action: "join", room: "r" }), deps);
      server.behaviour = (id) => (id === b!.connectionId ? "gone" : "ok");
      await sendMessage(send(c!, { action: "sendmessage", data: "hello" }), deps);
      expect(JSON.parse(server.postsTo(a!.connectionId).at(-1)!)).to.include({
        type: "left",
        room: "r",
        connectionId: b!.connectionId,
      });
      expect(server.postsTo(c!.connectionId)).to.deep.equal(["hello"]);
    });

    it("$disconnect removes the memberships and tells the rooms", async () => {
      const [a, b] = await connectMany(2);
      for (const x of [a!, b!]) await joinRoom(ev(x, "join", { action: "join", room: "r" }), deps);
      await disconnect(disconnectEvent(b!, 1001, ""), deps);
      expect(frameFor(a!).at(-1)).to.include({ type: "left", room: "r", connectionId: b!.connectionId });
      expect(await store.roomsOf(b!.connectionId)).to.deep.equal([]);
    });
  });

  describe("$default", () => {
    it("names the unknown action and the available ones", async () => {
      const [a] = await connectMany(1);
      await defaultRoute(messageEvent(a!, "$default", JSON.stringify({ action: "dance" })), deps);
      expect(frameFor(a!)[0]).to.deep.equal({
        type: "error",
        code: "UnknownAction",
        message: 'Unknown action "dance".',
        action: "dance",
        availableActions: [...CLIENT_ACTIONS],
      });
      expect(CLIENT_ACTIONS).to.include("sendmessage");
    });

    it("explains non-JSON frames and frames without an action", async () => {
      const [a] = await connectMany(1);
      await defaultRoute(messageEvent(a!, "$default", "hello"), deps);
      await defaultRoute(messageEvent(a!, "$default", JSON.stringify({ data: 1 })), deps);
      expect(frameFor(a!).map((f) => f.code)).to.deep.equal(["InvalidJson", "MissingAction"]);
    });
  });

  describe("fan-out", () => {
    it("never has more posts in flight than its concurrency bound", async () => {
      const ids = Array.from({ length: 120 }, () => newConnectionId());
      async function* pages() {
        for (let i = 0; i < ids.length; i += 7) yield ids.slice(i, i + 7);
      }
      server.latencyMs = 15;
      const api = ConnectionsApi.forEndpoint(server.endpoint);
      const payload = preparePayload("p");
      const summary = await fanOut({
        targets: pages(),
        attempt: (id, timeoutMs) => api.attempt(id, payload, timeoutMs),
        store,
        concurrency: 5,
      });
      expect(summary).to.include({ targets: 120, delivered: 120 });
      expect(server.stats.maxInFlight).to.be.at.most(5);
      expect(server.stats.maxInFlight).to.equal(5, "the window is used, not just bounded");
      for (const id of ids) expect(server.postsTo(id)).to.deep.equal(["p"]);
    });

    it("survives a post function that throws", async () => {
      async function* pages() {
        yield ["a", "b", "c"];
      }
      const summary = await fanOut({
        targets: pages(),
        attempt: async (id) => {
          if (id === "b") throw new Error("boom");
          return { kind: "delivered" };
        },
        store,
      });
      expect(summary).to.include({ delivered: 2, failed: 1 });
    });
  });
});
