import { expect } from "chai";
import { fanOut } from "../broadcast/fan-out";
import type { HandlerDeps } from "../chat/deps";
import type { ConnectionStore } from "../contract/connection-store";
import { ERROR_ORIGIN, type ErrorCode } from "../contract/frames";
import { ABUSE_FACTOR, DEFAULT_MESSAGE_LIMITS, type MessageLimits } from "../contract/message-limits";
import { CLIENT_ACTIONS } from "../contract/routes";
import { connect } from "../handlers/connect";
import { defaultRoute } from "../handlers/default";
import { disconnect } from "../handlers/disconnect";
import { roomHistory } from "../handlers/history";
import { joinRoom } from "../handlers/join";
import { leaveRoom } from "../handlers/leave";
import { MAX_STORED_FRAME_BYTES, sendMessage } from "../handlers/send-message";
import { sendTo } from "../handlers/send-to";
import { whoami } from "../handlers/whoami";
import { type ConnectionContext, connectEvent, disconnectEvent, messageEvent, newConnectionId } from "../local/events";
import { ConnectionsApi, preparePayload } from "../runtime/connections-api";
import type { HandlerResult } from "../runtime/event";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { type TestDeps, testDeps } from "./support/handler-deps";
import { type ManagementServer, startManagementServer } from "./support/management-server";

function conn(overrides: Partial<ConnectionContext> = {}): ConnectionContext {
  return {
    connectionId: newConnectionId(),
    // Established minutes ago: a 410 from a connection in its first seconds is not "gone" (CONNECT_GRACE_MS).
    connectedAt: Date.now() - 5 * 60_000,
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
      for (const c of clients.slice(2)) expect(server.postsTo(c.connectionId)).to.deep.equal(["y"]);
      const [own, partial] = server.postsTo(clients[0]!.connectionId);
      expect(own).to.equal("y");
      expect(JSON.parse(partial!), "the sender hears it was partial").to.include({
        code: "PartialDelivery",
        delivered: 3,
        failed: 1,
        total: 4,
      });
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
      // Answered in-band: 200, so API Gateway's IntegrationError does not count a client's mistake.
      expect((await sendMessage(send(a!, { action: "sendmessage" }), deps)).statusCode).to.equal(200);
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
      expect(result.statusCode).to.equal(200);
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

    it("bounds a room's members by maxMembersPerRoom with RoomFull naming the room and the limit", async () => {
      const [a, b, c] = await connectMany(3);
      const d = { ...deps, env: { ...deps.env, maxMembersPerRoom: 2 } };
      for (const s of [a!, b!, c!]) await joinRoom(ev(s, "join", { action: "join", room: "small" }), d);
      expect(frameFor(c!).find((f) => f.type === "error")).to.include({ code: "RoomFull", room: "small", limit: 2 });
      expect(frameFor(c!).some((f) => f.type === "members")).to.equal(false);
      expect(await store.roomsOf(c!.connectionId)).to.deep.equal([]);
      // A member joining again is answered as before; 0 (the default) is no bound.
      await joinRoom(ev(a!, "join", { action: "join", room: "small" }), d);
      expect(frameFor(a!).filter((f) => f.type === "error")).to.deep.equal([]);
      await joinRoom(ev(c!, "join", { action: "join", room: "small" }), {
        ...deps,
        env: { ...deps.env, maxMembersPerRoom: 0 },
      });
      expect(await store.roomsOf(c!.connectionId)).to.deep.equal(["small"]);
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
      ).to.equal(200);
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
        retryable: false,
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

/**
 * What API Gateway's `IntegrationError` metric counts: every 4XX/5XX a route's function returns. infra/alarms.ts
 * alarms on it, which only makes sense because of what these tests hold: every client mistake is answered in-band
 * (an error frame to the sender) with 200, and only faults of ours (the store down, a delivery to `@connections`
 * that failed on our side) give a 5xx or a throw.
 */
describe("handlers: status codes (what IntegrationError counts)", () => {
  const DAY_S = 86_400;
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

  const connected = async (d: HandlerDeps = deps): Promise<ConnectionContext> => {
    const c = conn();
    expect((await connect(connectEvent(c, { headers: {} }), d)).statusCode).to.equal(200);
    return c;
  };
  const ev = (c: ConnectionContext, routeKey: string, body: unknown) =>
    messageEvent(c, routeKey, typeof body === "string" ? body : JSON.stringify(body));
  const withEnv = (d: HandlerDeps, env: Partial<HandlerDeps["env"]>): HandlerDeps => ({
    ...d,
    env: { ...d.env, ...env },
  });
  const withLimits = (d: HandlerDeps, limits: Partial<MessageLimits>) =>
    withEnv(d, { limits: { ...DEFAULT_MESSAGE_LIMITS, ...limits } });
  /** The JSON objects posted to `c`, in order (plain-text broadcasts skipped). */
  const objectsTo = (c: ConnectionContext) =>
    server.postsTo(c.connectionId).flatMap((b) => {
      try {
        const value = JSON.parse(b) as unknown;
        return typeof value === "object" && value !== null && !Array.isArray(value)
          ? [value as Record<string, unknown>]
          : [];
      } catch {
        return [];
      }
    });
  const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
  const availableActions = [...CLIENT_ACTIONS];
  const sendToUsage = 'sendto needs "to": a connection id, e.g. {"action":"sendto","to":"<connectionId>","data":"hi"}.';

  interface Mistake {
    readonly what: string;
    readonly code: ErrorCode;
    /** Besides `type` and `code`, what the error frame carries (as the README's protocol section shows it). */
    readonly frame?: Record<string, unknown>;
    /**
     * The sender has no record in the store, and none can be rebuilt from its message: its connection is older than
     * the record's TTL (a younger one is re-added from `requestContext`: test/ghosts.test.ts).
     */
    readonly unregistered?: boolean;
    /** Sends the mistake as `sender` (`peer` is another live connection); resolves with the handler's result. */
    run(sender: ConnectionContext, peer: ConnectionContext): Promise<HandlerResult>;
  }

  /** The same message twice under a limit of one per day: the second is the mistake. */
  const twice = async (message: () => Promise<HandlerResult>) => {
    await message();
    return message();
  };
  const limitOne = () => withLimits(deps, { messages: 1, windowSeconds: DAY_S });
  const rateLimited = (
    route: string,
    send: (s: ConnectionContext, p: ConnectionContext) => Promise<HandlerResult>,
  ) => ({
    what: `${route}: over the rate limit`,
    code: "RateLimited" as const,
    frame: { limit: 1, windowSeconds: DAY_S },
    run: (s: ConnectionContext, p: ConnectionContext) => twice(() => send(s, p)),
  });

  const MISTAKES: readonly Mistake[] = [
    {
      what: "$default: not JSON",
      code: "InvalidJson",
      frame: { message: "The message is not valid JSON; send a JSON object.", availableActions },
      run: (s) => defaultRoute(ev(s, "$default", "hello"), deps),
    },
    {
      what: "$default: JSON that is not an object",
      code: "InvalidBody",
      frame: { availableActions },
      run: (s) => defaultRoute(ev(s, "$default", "[1,2]"), deps),
    },
    {
      what: "$default: no action",
      code: "MissingAction",
      frame: { message: 'The message has no "action" field.', availableActions },
      run: (s) => defaultRoute(ev(s, "$default", { data: 1 }), deps),
    },
    {
      what: "$default: an action that names no route",
      code: "UnknownAction",
      frame: { message: 'Unknown action "dance".', action: "dance", availableActions },
      run: (s) => defaultRoute(ev(s, "$default", { action: "dance" }), deps),
    },
    {
      what: "sendmessage: not JSON",
      code: "InvalidJson",
      run: (s) => sendMessage(ev(s, "sendmessage", "{not json"), deps),
    },
    {
      what: "sendmessage: no data",
      code: "MissingData",
      frame: { message: 'sendmessage needs a "data" field, e.g. {"action":"sendmessage","data":"hello"}.' },
      run: (s) => sendMessage(ev(s, "sendmessage", { action: "sendmessage" }), deps),
    },
    {
      what: "sendmessage: data nested too deeply to send",
      code: "InvalidBody",
      frame: { message: '"data" is nested too deeply to send.' },
      run: (s) => sendMessage(ev(s, "sendmessage", `{"action":"sendmessage","data":${deep}}`), deps),
    },
    {
      what: "sendmessage: data over maxDataBytes",
      code: "PayloadTooLarge",
      frame: { message: '"data" is 32769 bytes; the limit is 32768.', limit: 32_768 },
      run: (s) => sendMessage(ev(s, "sendmessage", { action: "sendmessage", data: "x".repeat(32_769) }), deps),
    },
    {
      what: "sendmessage: a payload API Gateway refuses (413)",
      code: "PayloadTooLarge",
      frame: { bytes: 3 },
      run: (s) => {
        server.behaviour = (id) => (id === s.connectionId ? "ok" : "too-large");
        return sendMessage(ev(s, "sendmessage", { action: "sendmessage", data: "big" }), deps);
      },
    },
    {
      what: "sendmessage: an invalid room",
      code: "InvalidRoom",
      frame: { room: "a b" },
      run: (s) => sendMessage(ev(s, "sendmessage", { action: "sendmessage", room: "a b", data: "x" }), deps),
    },
    {
      what: "sendmessage: a room not joined",
      code: "NotInRoom",
      frame: { room: "ops", message: 'Join room "ops" before sending to it: {"action":"join","room":"ops"}.' },
      run: (s) => sendMessage(ev(s, "sendmessage", { action: "sendmessage", room: "ops", data: "x" }), deps),
    },
    {
      what: "sendmessage: a room message whose envelope is over 128 KB",
      code: "PayloadTooLarge",
      // Room for the seq and a one-message history page around the stored frame.
      frame: { limit: MAX_STORED_FRAME_BYTES },
      run: async (s) => {
        const d = withLimits(deps, { maxDataBytes: 131_071 });
        await joinRoom(ev(s, "join", { action: "join", room: "r" }), d);
        return sendMessage(ev(s, "sendmessage", { action: "sendmessage", room: "r", data: "x".repeat(131_050) }), d);
      },
    },
    {
      what: "sendmessage: a room message API Gateway refuses (413)",
      code: "PayloadTooLarge",
      run: async (s, p) => {
        for (const c of [s, p]) await joinRoom(ev(c, "join", { action: "join", room: "r" }), deps);
        server.behaviour = (id) => (id === p.connectionId ? "too-large" : "ok");
        return sendMessage(ev(s, "sendmessage", { action: "sendmessage", room: "r", data: "big" }), deps);
      },
    },
    {
      what: "sendmessage: a ref that is not 1-64 safe characters",
      code: "InvalidRef",
      frame: { pattern: "^[A-Za-z0-9_.:-]{1,64}$" },
      run: (s) => sendMessage(ev(s, "sendmessage", { action: "sendmessage", data: "x", ref: "no spaces" }), deps),
    },
    {
      what: "sendto: a ref that is not a string",
      code: "InvalidRef",
      run: (s, p) => sendTo(ev(s, "sendto", { action: "sendto", to: p.connectionId, data: "x", ref: 7 }), deps),
    },
    {
      what: "join: an after that is not a non-negative integer",
      code: "InvalidHistoryQuery",
      frame: { field: "after", room: "r" },
      run: (s) => joinRoom(ev(s, "join", { action: "join", room: "r", after: -1 }), deps),
    },
    {
      what: "history: a limit over the largest page",
      code: "InvalidHistoryQuery",
      frame: { field: "limit", limit: 100, room: "r", message: '"limit" must be an integer from 1 to 100.' },
      run: (s) => roomHistory(ev(s, "history", { action: "history", room: "r", limit: 101 }), deps),
    },
    {
      what: "history: of a room the sender has not joined",
      code: "NotInRoom",
      frame: { room: "r" },
      run: (s) => roomHistory(ev(s, "history", { action: "history", room: "r" }), deps),
    },
    {
      what: "join: no room",
      code: "InvalidRoom",
      frame: { message: 'join needs a "room" field, e.g. {"action":"join","room":"lobby"}.' },
      run: (s) => joinRoom(ev(s, "join", { action: "join" }), deps),
    },
    {
      what: "join: one room more than maxRoomsPerConnection",
      code: "TooManyRooms",
      frame: { room: "r2", limit: 1, rooms: ["r1"] },
      run: async (s) => {
        const d = withEnv(deps, { maxRoomsPerConnection: 1 });
        await joinRoom(ev(s, "join", { action: "join", room: "r1" }), d);
        return joinRoom(ev(s, "join", { action: "join", room: "r2" }), d);
      },
    },
    {
      what: "join: a room at maxMembersPerRoom",
      code: "RoomFull",
      frame: { room: "r1", limit: 1 },
      run: async (s, p) => {
        const d = withEnv(deps, { maxMembersPerRoom: 1 });
        await joinRoom(ev(p, "join", { action: "join", room: "r1" }), d);
        return joinRoom(ev(s, "join", { action: "join", room: "r1" }), d);
      },
    },
    {
      what: "join: a connection the store does not know, past its expiry",
      code: "UnknownConnection",
      unregistered: true,
      frame: { message: "This connection is not registered (it may have expired); reconnect." },
      run: (s) => joinRoom(ev(s, "join", { action: "join", room: "r" }), deps),
    },
    {
      what: "leave: an invalid room",
      code: "InvalidRoom",
      frame: { room: "a/b" },
      run: (s) => leaveRoom(ev(s, "leave", { action: "leave", room: "a/b" }), deps),
    },
    {
      what: "leave: a room not joined",
      code: "NotInRoom",
      frame: { room: "r", message: 'Not a member of room "r".' },
      run: (s) => leaveRoom(ev(s, "leave", { action: "leave", room: "r" }), deps),
    },
    {
      what: "sendto: no to",
      code: "MissingTo",
      frame: { message: sendToUsage },
      run: (s) => sendTo(ev(s, "sendto", { action: "sendto", data: "x" }), deps),
    },
    {
      what: "sendto: a to that cannot be a connection id",
      code: "MissingTo",
      run: (s) => sendTo(ev(s, "sendto", { action: "sendto", to: "../x", data: "x" }), deps),
    },
    {
      what: "sendto: no data",
      code: "MissingData",
      run: (s, p) => sendTo(ev(s, "sendto", { action: "sendto", to: p.connectionId }), deps),
    },
    {
      what: "sendto: data over maxDataBytes",
      code: "PayloadTooLarge",
      frame: { limit: 32_768 },
      run: (s, p) => sendTo(ev(s, "sendto", { action: "sendto", to: p.connectionId, data: "x".repeat(40_000) }), deps),
    },
    {
      what: "sendto: an envelope over 128 KB",
      code: "PayloadTooLarge",
      frame: { limit: 131_071 },
      run: (s, p) =>
        sendTo(
          ev(s, "sendto", { action: "sendto", to: p.connectionId, data: "x".repeat(131_050) }),
          withLimits(deps, { maxDataBytes: 131_071 }),
        ),
    },
    {
      what: "sendto: a payload API Gateway refuses (413)",
      code: "PayloadTooLarge",
      run: (s, p) => {
        server.behaviour = (id) => (id === p.connectionId ? "too-large" : "ok");
        return sendTo(ev(s, "sendto", { action: "sendto", to: p.connectionId, data: "x" }), deps);
      },
    },
    {
      what: "sendto: a recipient that is gone (410)",
      code: "RecipientGone",
      run: (s, p) => {
        server.behaviour = (id) => (id === p.connectionId ? "gone" : "ok");
        return sendTo(ev(s, "sendto", { action: "sendto", to: p.connectionId, data: "x" }), deps);
      },
    },
    {
      what: "sendto: a recipient that never existed (410)",
      code: "RecipientGone",
      frame: { to: "NoSuchConnection=" },
      run: (s) => {
        server.behaviour = (id) => (id === "NoSuchConnection=" ? "gone" : "ok");
        return sendTo(ev(s, "sendto", { action: "sendto", to: "NoSuchConnection=", data: "x" }), deps);
      },
    },
    {
      what: "whoami from a connection whose token has expired (it is then closed)",
      code: "TokenExpired",
      frame: { reconnect: true },
      run: (s) => {
        const event = ev(s, "whoami", { action: "whoami" });
        const authorizer = { userId: "u-1", tokenExpiresAt: "1700000000" };
        return whoami({ ...event, requestContext: { ...event.requestContext, authorizer } }, deps);
      },
    },
    rateLimited("sendmessage", (s) =>
      sendMessage(ev(s, "sendmessage", { action: "sendmessage", data: "x" }), limitOne()),
    ),
    rateLimited("join", (s) => joinRoom(ev(s, "join", { action: "join", room: "r" }), limitOne())),
    rateLimited("leave", (s) => leaveRoom(ev(s, "leave", { action: "leave", room: "r" }), limitOne())),
    rateLimited("whoami", (s) => whoami(ev(s, "whoami", { action: "whoami" }), limitOne())),
    rateLimited("sendto", (s, p) =>
      sendTo(ev(s, "sendto", { action: "sendto", to: p.connectionId, data: "x" }), limitOne()),
    ),
    rateLimited("$default", (s) => defaultRoute(ev(s, "$default", { action: "dance" }), limitOne())),
  ];

  for (const mistake of MISTAKES) {
    it(`answers 200 and the ${mistake.code} frame to the sender only: ${mistake.what}`, async () => {
      const sender = mistake.unregistered ? conn({ connectedAt: Date.now() - 3 * 3_600_000 }) : await connected();
      const peer = await connected();
      const result = await mistake.run(sender, peer);
      expect(result.statusCode, "a client's mistake must not count as IntegrationError").to.equal(200);
      const frame = objectsTo(sender).at(-1);
      expect(frame, "the error frame").to.deep.include({ type: "error", code: mistake.code, ...mistake.frame });
      expect(objectsTo(peer).filter((f) => f.type === "error")).to.deep.equal([]);
    });
  }

  it("has a case for every error code that is the client's doing, and only those answer 200", () => {
    const clientCodes = Object.entries(ERROR_ORIGIN)
      .filter(([, origin]) => origin === "client")
      .map(([code]) => code);
    expect([...new Set(MISTAKES.map((m) => m.code))].sort()).to.deep.equal(clientCodes.sort());
  });

  it("answers 200 after the last RateLimited frame (disconnecting) and for what follows while the connection closes", async () => {
    const d = limitOne();
    const sender = await connected(d);
    const statuses: number[] = [];
    for (let i = 0; i < ABUSE_FACTOR + 2; i++)
      statuses.push((await sendMessage(ev(sender, "sendmessage", { action: "sendmessage", data: "x" }), d)).statusCode);
    expect(statuses).to.deep.equal(Array(ABUSE_FACTOR + 2).fill(200));
    const frames = objectsTo(sender).filter((f) => f.type === "error");
    expect(frames).to.have.length(ABUSE_FACTOR);
    expect(frames.at(-1)).to.include({ code: "RateLimited", disconnecting: true });
    expect(server.deleted).to.deep.equal([sender.connectionId, sender.connectionId]);
  });

  it("answers 200 when the sender of a mistake has gone (410) before its error frame: nothing is wrong on our side", async () => {
    const sender = await connected();
    server.behaviour = (id) => (id === sender.connectionId ? "gone" : "ok");
    expect((await defaultRoute(ev(sender, "$default", "hello"), deps)).statusCode).to.equal(200);
  });

  describe("faults of ours", () => {
    it("sendto whose delivery fails on our side (5xx from @connections past the retries): 502 and DeliveryFailed", async () => {
      const [sender, peer] = [await connected(), await connected()];
      server.behaviour = (id) => (id === peer.connectionId ? "error500" : "ok");
      const result = await sendTo(ev(sender, "sendto", { action: "sendto", to: peer.connectionId, data: "x" }), deps);
      expect(result.statusCode).to.equal(502);
      expect(objectsTo(sender).at(-1)).to.deep.include({
        type: "error",
        code: "DeliveryFailed",
        message: `Could not deliver to ${peer.connectionId}; try again.`,
        to: peer.connectionId,
      });
    });

    it("a mistake whose error frame cannot be posted (5xx from @connections): 502, the sender never got its answer", async () => {
      const sender = await connected();
      server.behaviour = () => "error500";
      expect((await defaultRoute(ev(sender, "$default", "hello"), deps)).statusCode).to.equal(502);
      expect((await joinRoom(ev(sender, "join", { action: "join" }), deps)).statusCode).to.equal(502);
    });

    /** A store whose every call fails, as a store that is down does. */
    const storeDown = (): ConnectionStore => {
      const down = () => Promise.reject(new Error("store down"));
      return {
        kind: "memory",
        add: down,
        get: down,
        remove: down,
        removeMany: down,
        join: down,
        leave: down,
        roomsOf: down,
        countMessage: down,
        list: () => ({ [Symbol.asyncIterator]: () => ({ next: down }) }),
        close: async () => {},
        appendHistory: down,
        historyAfter: down,
        historyBefore: down,
        latestSeq: down,
        claimSend: down,
        settleSend: down,
        touch: down,
        listByProtocol: () => ({ [Symbol.asyncIterator]: () => ({ next: down }) }),
        claimUserSlot: down,
        releaseUserSlot: down,
      };
    };
    /** An invocation's status as API Gateway has it: a throw is a Lambda function error, 5xx for the integration. */
    const integrationStatus = async (invocation: Promise<HandlerResult>): Promise<number> => {
      try {
        return (await invocation).statusCode;
      } catch {
        return 500;
      }
    };

    it("every message route fails with 5xx (or throws) when the store is down", async () => {
      const [sender, peer] = [await connected(), await connected()];
      const d: HandlerDeps = { ...deps, store: storeDown() };
      const invocations: Record<string, () => Promise<HandlerResult>> = {
        "sendmessage (everyone)": () => sendMessage(ev(sender, "sendmessage", { action: "sendmessage", data: "x" }), d),
        "sendmessage (room)": () =>
          sendMessage(ev(sender, "sendmessage", { action: "sendmessage", room: "r", data: "x" }), d),
        join: () => joinRoom(ev(sender, "join", { action: "join", room: "r" }), d),
        leave: () => leaveRoom(ev(sender, "leave", { action: "leave", room: "r" }), d),
        whoami: () => whoami(ev(sender, "whoami", { action: "whoami" }), d),
        sendto: () => sendTo(ev(sender, "sendto", { action: "sendto", to: peer.connectionId, data: "x" }), d),
      };
      for (const [what, invoke] of Object.entries(invocations))
        expect(await integrationStatus(invoke()), what).to.be.within(500, 599);
      // The rate limit fails open, so a mistake is still answered: $default needs nothing else of the store.
      expect(await integrationStatus(defaultRoute(ev(sender, "$default", "hello"), d))).to.equal(200);
      expect(objectsTo(sender).at(-1)).to.include({ code: "InvalidJson" });
    });
  });
});
