/**
 * Abuse limits of the message routes: the per-connection rate limit (RateLimited frames, then DELETE
 * @connections for persistent abuse, fail-open when the store is down) and the `data` size limit, at the handler
 * level against a real management API server, and over real sockets through the local gateway.
 */
import { expect } from "chai";
import { enforceRateLimit } from "../chat/rate-limit";
import type { ConnectionStore } from "../contract/connection-store";
import { ENV, EnvError, type RuntimeEnv, readRuntimeEnv } from "../contract/env";
import {
  ABUSE_FACTOR,
  DEFAULT_MESSAGE_LIMITS,
  MAX_DATA_BYTES_CEILING,
  type MessageLimits,
  messageLimitsEnv,
  readMessageLimits,
} from "../contract/message-limits";
import { connect } from "../handlers/connect";
import { defaultRoute } from "../handlers/default";
import { sendMessage } from "../handlers/send-message";
import { type ConnectionContext, connectEvent, messageEvent, newConnectionId } from "../local/events";
import { MemoryConnectionStore } from "../stores/memory";
import { type ChatGateway, openChatClient, startChatGateway, waitFor } from "./support/gateway";
import { type TestDeps, testDeps } from "./support/handler-deps";
import { type ManagementServer, startManagementServer } from "./support/management-server";

const DAY_S = 86_400;

function conn(): ConnectionContext {
  return {
    connectionId: newConnectionId(),
    connectedAt: Date.now(),
    stage: "test",
    apiId: "local",
    domainName: "localhost",
    sourceIp: "127.0.0.1",
  };
}

function withLimits(deps: TestDeps, limits: Partial<MessageLimits>): TestDeps {
  return { ...deps, env: { ...deps.env, limits: { ...DEFAULT_MESSAGE_LIMITS, ...limits } } };
}

const chat = (c: ConnectionContext, data: unknown = "hi") =>
  messageEvent(c, "sendmessage", JSON.stringify({ action: "sendmessage", data }));

describe("rate limit and data size (handlers)", () => {
  let server: ManagementServer;
  let store: MemoryConnectionStore;
  let base: TestDeps;

  beforeEach(async () => {
    server = await startManagementServer("test");
    store = new MemoryConnectionStore();
    base = testDeps(store, server.endpoint);
  });
  afterEach(async () => {
    await server.close();
  });

  /** The JSON-object frames posted to `c` (its error frames; broadcasts of plain text are skipped). */
  const frames = (c: ConnectionContext) =>
    server.postsTo(c.connectionId).flatMap((b) => {
      try {
        const value = JSON.parse(b) as unknown;
        return typeof value === "object" && value !== null ? [value as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  const join = async (deps: TestDeps): Promise<ConnectionContext> => {
    const c = conn();
    await connect(connectEvent(c, { headers: {} }), deps);
    return c;
  };

  it("allows the limit, answers the excess with RateLimited (retryAfterMs), then disconnects past 3x the limit", async () => {
    // A day-long window: the test cannot straddle a window boundary (except at midnight UTC).
    const deps = withLimits(base, { messages: 4, windowSeconds: DAY_S });
    const [a, b] = [await join(deps), await join(deps)];
    const statuses: number[] = [];
    for (let i = 1; i <= 4 * ABUSE_FACTOR + 2; i++)
      statuses.push((await sendMessage(chat(a, `m${i}`), deps)).statusCode);

    // Refused messages are answered in-band (or by the close): 200, so IntegrationError does not count them.
    expect(statuses).to.deep.equal(Array(4 * ABUSE_FACTOR + 2).fill(200));
    // Only the allowed messages were broadcast.
    expect(server.postsTo(b.connectionId)).to.deep.equal(["m1", "m2", "m3", "m4"]);

    const own = frames(a).filter((f) => f.type === "error");
    // Messages 5..12 get RateLimited; 13 gets the last one (disconnecting); 14 gets none (already being closed).
    expect(own).to.have.length(4 * ABUSE_FACTOR - 4 + 1);
    for (const frame of own) {
      expect(frame).to.include({ code: "RateLimited", limit: 4, windowSeconds: DAY_S });
      expect(frame.retryAfterMs)
        .to.be.a("number")
        .within(0, DAY_S * 1000);
    }
    expect(own.at(-1)).to.include({ disconnecting: true });
    expect(String(own[0]!.message)).to.match(/limit is 4 per 86400 s/);
    // DELETE @connections for the abuser (once per message past the threshold), never for anyone else.
    expect(server.deleted).to.deep.equal([a.connectionId, a.connectionId]);
    const warning = base.logs.find((l) => l.message === "disconnected for rate-limit abuse");
    expect(warning).to.include({ level: "warn", count: 4 * ABUSE_FACTOR + 1, limit: 4, connectionId: a.connectionId });
  });

  it("counts $default messages too (garbage floods cost invocations and posts)", async () => {
    const deps = withLimits(base, { messages: 2, windowSeconds: DAY_S });
    const a = await join(deps);
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await defaultRoute(messageEvent(a, "$default", "garbage"), deps)).statusCode);
    expect(statuses).to.deep.equal([200, 200, 200, 200]);
    expect(frames(a).map((f) => f.code)).to.deep.equal(["InvalidJson", "InvalidJson", "RateLimited", "RateLimited"]);
  });

  it("shares the count between sendmessage and $default (one budget per connection)", async () => {
    const deps = withLimits(base, { messages: 2, windowSeconds: DAY_S });
    const a = await join(deps);
    await sendMessage(chat(a), deps);
    await defaultRoute(messageEvent(a, "$default", "{}"), deps);
    await sendMessage(chat(a), deps);
    expect(frames(a).map((f) => f.code)).to.deep.equal(["MissingAction", "RateLimited"]);
  });

  it("computes retryAfterMs to the end of the fixed window and starts over in the next", async () => {
    const deps = withLimits(base, { messages: 1, windowSeconds: 10 });
    const a = await join(deps);
    const windowStart = Math.floor(Date.now() / 10_000) * 10_000 + 100_000;
    const event = chat(a);
    const log = deps.log;
    expect(await enforceRateLimit(event, deps, log, windowStart + 1_000)).to.deep.equal({ kind: "allowed", count: 1 });
    expect(await enforceRateLimit(event, deps, log, windowStart + 2_500)).to.deep.equal({
      kind: "limited",
      scope: "connection",
      count: 2,
      retryAfterMs: 7_500,
      result: { statusCode: 200 },
    });
    expect(await enforceRateLimit(event, deps, log, windowStart + 10_000)).to.deep.equal({ kind: "allowed", count: 1 });
  });

  it("fails CLOSED for sendmessage when the store cannot count: StoreUnavailable (retryable), nothing broadcast", async () => {
    const broken: ConnectionStore = Object.assign(Object.create(store) as ConnectionStore, {
      countMessage: () => Promise.reject(new Error("store down")),
    });
    const deps = withLimits({ ...base, store: broken }, { messages: 1, windowSeconds: DAY_S });
    const [a, b] = [await join(deps), await join(deps)];
    // StoreUnavailable is ours: 502, so IntegrationError counts the outage.
    for (let i = 0; i < 3; i++) expect((await sendMessage(chat(a, `x${i}`), deps)).statusCode).to.equal(502);
    expect(server.postsTo(b.connectionId)).to.deep.equal([]);
    const own = frames(a);
    expect(own).to.have.length(3);
    expect(own[0]).to.include({ code: "StoreUnavailable", retryable: true, retryAfterMs: 1_000 });
    const errors = base.logs.filter((l) => l.message === "rate limit unavailable, message refused");
    expect(errors).to.have.length(3);
    expect(errors[0]).to.include({ level: "error", outcome: "fail-closed" });
  });

  it("fails open for $default when the store cannot count: the sender is answered and a warning is logged", async () => {
    const broken: ConnectionStore = Object.assign(Object.create(store) as ConnectionStore, {
      countMessage: () => Promise.reject(new Error("store down")),
    });
    const deps = withLimits({ ...base, store: broken }, { messages: 1, windowSeconds: DAY_S });
    const a = await join(deps);
    for (let i = 0; i < 3; i++)
      expect((await defaultRoute(messageEvent(a, "$default", "{}"), deps)).statusCode).to.equal(200);
    expect(frames(a).map((f) => f.code)).to.deep.equal(["MissingAction", "MissingAction", "MissingAction"]);
    const warnings = base.logs.filter((l) => l.message === "rate limit unavailable, message allowed");
    expect(warnings).to.have.length(3);
    expect(warnings[0]).to.include({ level: "warn", outcome: "fail-open" });
  });

  it("does not count at all when the limit is 0 (off)", async () => {
    let calls = 0;
    const counting: ConnectionStore = Object.assign(Object.create(store) as ConnectionStore, {
      countMessage: (...args: Parameters<ConnectionStore["countMessage"]>) => {
        calls++;
        return store.countMessage(...args);
      },
    });
    const deps = withLimits({ ...base, store: counting }, { messages: 0, broadcasts: 0 });
    const a = await join(deps);
    for (let i = 0; i < 30; i++) await sendMessage(chat(a), deps);
    expect(calls).to.equal(0);
  });

  it("applies the default limit (20 per 10 s) when the environment sets none", async () => {
    expect(base.env.limits).to.equal(undefined);
    expect(DEFAULT_MESSAGE_LIMITS).to.deep.equal({
      messages: 20,
      windowSeconds: 10,
      maxDataBytes: 32_768,
      userMessages: 40,
      broadcasts: 10,
      connectionsPerUser: 5,
    });
  });

  it("refuses data over maxDataBytes with PayloadTooLarge naming the limit; at the limit it goes out", async () => {
    const deps = withLimits(base, { maxDataBytes: 100, messages: 0 });
    const [a, b] = [await join(deps), await join(deps)];
    expect((await sendMessage(chat(a, "x".repeat(101)), deps)).statusCode).to.equal(200);
    const frame = frames(a)[0]!;
    expect(frame).to.include({ type: "error", code: "PayloadTooLarge", limit: 100 });
    expect(String(frame.message)).to.include("the limit is 100");
    // The size is the wire form: a JSON value counts as its JSON text, a string as its UTF-8 bytes.
    expect((await sendMessage(chat(a, "é".repeat(50)), deps)).statusCode).to.equal(200);
    expect((await sendMessage(chat(a, "é".repeat(51)), deps)).statusCode).to.equal(200);
    expect((await sendMessage(chat(a, "x".repeat(100)), deps)).statusCode).to.equal(200);
    expect(server.postsTo(b.connectionId)).to.deep.equal(["é".repeat(50), "x".repeat(100)]);
    expect(frames(a).map((f) => f.code)).to.deep.equal(["PayloadTooLarge", "PayloadTooLarge"]);
  });

  it("defaults maxDataBytes to 32 KB", async () => {
    const a = await join(base);
    expect((await sendMessage(chat(a, "x".repeat(32_769)), base)).statusCode).to.equal(200);
    expect(frames(a)[0]).to.include({ code: "PayloadTooLarge", limit: 32_768 });
  });

  it("echoes at most 200 characters of an unknown action", async () => {
    const a = await join(base);
    await defaultRoute(messageEvent(a, "$default", JSON.stringify({ action: "y".repeat(20_000) })), base);
    const frame = frames(a)[0]!;
    expect(frame.code).to.equal("UnknownAction");
    expect(String(frame.action)).to.have.length(201).and.match(/…$/);
    expect(JSON.stringify(frame).length).to.be.below(1_000);
  });
});

describe("rate limit: environment contract", () => {
  it("reads RATE_LIMIT_* and MAX_DATA_BYTES with defaults, and round-trips through messageLimitsEnv", () => {
    expect(readMessageLimits({})).to.deep.equal(DEFAULT_MESSAGE_LIMITS);
    const limits = {
      messages: 0,
      windowSeconds: 60,
      maxDataBytes: MAX_DATA_BYTES_CEILING,
      userMessages: 7,
      broadcasts: 0,
      connectionsPerUser: 3,
    };
    expect(readMessageLimits(messageLimitsEnv(limits))).to.deep.equal(limits);
    expect(readRuntimeEnv({ [ENV.STORE]: "memory", ...messageLimitsEnv(limits) }).limits).to.deep.equal(limits);
  });

  it("refuses bad values naming the variable; maxDataBytes must stay below 131072", () => {
    expect(() => readMessageLimits({ [ENV.RATE_LIMIT_MESSAGES]: "-1" })).to.throw(EnvError, ENV.RATE_LIMIT_MESSAGES);
    expect(() => readMessageLimits({ [ENV.RATE_LIMIT_MESSAGES]: "ten" })).to.throw(EnvError, ENV.RATE_LIMIT_MESSAGES);
    expect(() => readMessageLimits({ [ENV.RATE_LIMIT_WINDOW_SECONDS]: "0" })).to.throw(
      EnvError,
      ENV.RATE_LIMIT_WINDOW_SECONDS,
    );
    expect(() => readMessageLimits({ [ENV.MAX_DATA_BYTES]: "131072" })).to.throw(EnvError, ENV.MAX_DATA_BYTES);
    expect(() => readMessageLimits({ [ENV.MAX_DATA_BYTES]: "0" })).to.throw(EnvError, ENV.MAX_DATA_BYTES);
  });
});

describe("rate limit over real sockets (local gateway, memory store)", function () {
  this.timeout(20_000);
  let gw: ChatGateway;
  afterEach(async () => {
    await gw?.stop();
  });

  it("sends RateLimited frames, then closes the abuser with 1000 through DELETE @connections; others are unaffected", async () => {
    gw = await startChatGateway(new MemoryConnectionStore());
    (gw.deps as { env: RuntimeEnv }).env = {
      ...gw.deps.env,
      limits: { ...DEFAULT_MESSAGE_LIMITS, messages: 3, windowSeconds: DAY_S },
    };
    const abuser = await openChatClient(gw);
    const bystander = await openChatClient(gw);
    // One at a time, each answered, so the counts arrive in order.
    const answers: string[] = [];
    for (let i = 1; i <= 3 * ABUSE_FACTOR; i++) {
      await abuser.send(JSON.stringify({ action: "sendmessage", data: `n${i}` }));
      answers.push(await abuser.next());
    }
    expect(answers.slice(0, 3)).to.deep.equal(["n1", "n2", "n3"]);
    for (const answer of answers.slice(3))
      expect(JSON.parse(answer)).to.include({ type: "error", code: "RateLimited" });
    await abuser.send(JSON.stringify({ action: "sendmessage", data: "one too many" }));
    expect(JSON.parse(await abuser.next())).to.include({ code: "RateLimited", disconnecting: true });
    expect(await abuser.closed).to.deep.equal({ code: 1000, reason: "Connection Closed Normally" });
    const disconnect = await gw.disconnectOf(abuser.connectionId!);
    expect(disconnect.requestContext).to.include({ disconnectStatusCode: 1000 });
    expect([await bystander.next(), await bystander.next(), await bystander.next()]).to.deep.equal(["n1", "n2", "n3"]);
    await bystander.send(JSON.stringify({ action: "sendmessage", data: "still here" }));
    expect(await bystander.next()).to.equal("still here");
    await waitFor(() => (gw.gateway.openConnectionIds().length === 1 ? true : undefined));
    await bystander.close();
  });
});
