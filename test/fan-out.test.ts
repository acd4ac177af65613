/**
 * The broadcast hot path, correctness only — speed is `npm run bench`'s job:
 * - every connection gets the message exactly once, with pages of several sizes, every store, and when the
 *   broadcast is split into worker shards;
 * - throttled posts (a real token bucket) are retried and delivered, none dropped;
 * - hanging posts time out, count as failed, and do not hold up the rest;
 * - stale ids (410) are removed, and only they;
 * - posts in flight never exceed the bound (the management server counts them);
 * - DynamoDB's parallel Scan yields every id once; the split router keeps memory to one shard; the worker invoker
 *   and the worker itself.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import {
  broadcast,
  type FanOutShardEvent,
  PartialDispatchError,
  shardData,
  shardDispatcher,
  shardPayload,
  splitListing,
} from "../broadcast/broadcast";
import { AimdWindow, fanOut, readAhead } from "../broadcast/fan-out";
import { InProcessInvoker, LambdaInvoker } from "../broadcast/worker-invoker";
import type { HandlerDeps } from "../chat/deps";
import { fanOutWorker } from "../chat/fan-out-shard";
import { inProcessWorkers, withInProcessWorkers } from "../chat/in-process-workers";
import type { ConnectionStore } from "../contract/connection-store";
import { DEFAULT_FANOUT, type FanOutSettings, readRuntimeEnv } from "../contract/env";
import { sendMessage } from "../handlers/send-message";
import { type ConnectionContext, messageEvent, newConnectionId } from "../local/events";
import { type Attempt, ConnectionsApi, preparePayload } from "../runtime/connections-api";
import { DynamoDbConnectionStore, mergePages } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { createConnectionsTable, localDynamoDbClient, startDynalite, type TestDynamoDb } from "./support/dynalite";
import { type TestDeps, testDeps } from "./support/handler-deps";
import { type ManagementServer, startManagementServer } from "./support/management-server";
import { startRedis, type TestRedis } from "./support/redis-server";

const HOUR = 3_600_000;

function sender(connectionId: string): ConnectionContext {
  return {
    connectionId,
    connectedAt: Date.now(),
    stage: "test",
    apiId: "local",
    domainName: "localhost",
    sourceIp: "127.0.0.1",
  };
}

const broadcastEvent = (from: string, data: unknown) =>
  messageEvent(sender(from), "sendmessage", JSON.stringify({ action: "sendmessage", data }));

async function register(store: ConnectionStore, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => newConnectionId());
  const now = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < ids.length)
        // Established minutes ago: a 410 from a connection in its first seconds is not "gone" (CONNECT_GRACE_MS).
        await store.add({ connectionId: ids[next++]!, connectedAt: now - 5 * 60_000, expiresAt: now + HOUR });
    }),
  );
  return ids;
}

async function listAll(store: ConnectionStore): Promise<string[]> {
  const all: string[] = [];
  for await (const page of store.list({ pageSize: 1000 })) all.push(...page);
  return all;
}

/** Handler deps with fan-out settings of the test's choice. */
function depsWith(
  store: ConnectionStore,
  server: ManagementServer,
  fanOut: Partial<FanOutSettings>,
  post = {},
): TestDeps {
  const base = testDeps(store, server.endpoint, post);
  const settings = { ...DEFAULT_FANOUT, ...fanOut };
  // Workers built again: the base's would run shards with the base's settings and client.
  return withInProcessWorkers({
    ...base,
    env: { ...base.env, fanOut: settings },
    connections: ConnectionsApi.forEndpoint(server.endpoint, {
      timeoutMs: 1_000,
      backoffBaseMs: 1,
      backoffCapMs: 5,
      ...post,
      maxSockets: settings.concurrency,
    }),
  });
}

/** Sends a broadcast through the real handler and waits for the shards it handed to in-process workers. */
async function sendAndSettle(deps: TestDeps, from: string, data: unknown, status = 200): Promise<void> {
  const result = await sendMessage(broadcastEvent(from, data), deps);
  expect(result.statusCode).to.equal(status);
  await inProcessWorkers(deps).idle();
}

function expectEachOnce(
  server: ManagementServer,
  ids: readonly string[],
  body: string,
  except: ReadonlySet<string> = new Set(),
): void {
  const wrong: string[] = [];
  for (const id of ids) {
    const posts = server.postsTo(id);
    const ok = except.has(id) ? posts.length === 0 : posts.length === 1 && posts[0] === body;
    if (!ok) wrong.push(`${id}: ${JSON.stringify(posts)}`);
  }
  expect(wrong, `${wrong.length} connections did not get exactly one copy`).to.deep.equal([]);
}

const summaries = (deps: TestDeps) =>
  deps.logs.filter((l) => l.message === "broadcast" || l.message === "broadcast shard");

describe("fan-out: delivery, exactly once", function () {
  this.timeout(60_000);
  let server: ManagementServer;
  beforeEach(async () => {
    server = await startManagementServer("test");
  });
  afterEach(async () => {
    await server.close();
  });

  for (const pageSize of [1, 7, 250, 1000]) {
    it(`reaches each of 1,200 connections once with store pages of ${pageSize}`, async () => {
      const store = new MemoryConnectionStore();
      const ids = await register(store, 1200);
      const deps = depsWith(store, server, { pageSize, concurrency: 32 });
      await sendAndSettle(deps, ids[0]!, "hello");
      expectEachOnce(server, ids, "hello");
      const line = deps.logs.find((l) => l.message === "broadcast")!;
      expect(line).to.include({ targets: 1200, delivered: 1200, failed: 0, dispatched: 0 });
    });
  }

  it("splits a broadcast larger than one invocation into worker shards, and still reaches everyone once", async () => {
    const store = new MemoryConnectionStore();
    const ids = await register(store, 2_345);
    const deps = depsWith(store, server, { pageSize: 100, shardSize: 400, inlineMax: 300, concurrency: 16 });
    server.latencyMs = 2;
    await sendAndSettle(deps, ids[0]!, { n: 1 });
    expectEachOnce(server, ids, '{"n":1}');
    const head = deps.logs.find((l) => l.message === "broadcast")!;
    const shards = deps.logs.filter((l) => l.message === "broadcast shard");
    expect(head.targets).to.equal(2_345);
    expect(head.shards).to.equal(shards.length).and.be.greaterThan(0);
    expect(head.inline as number).to.be.at.most(300);
    expect((head.inline as number) + (head.dispatched as number)).to.equal(2_345);
    expect(shards.reduce((sum, s) => sum + (s.delivered as number), 0)).to.equal(head.dispatched);
    for (const s of shards) expect(s).to.include({ broadcastId: head.requestId, failed: 0, connectionId: ids[0] });
  });

  it("hands everything to workers when the invocation may post nothing itself (inlineMax 0)", async () => {
    const store = new MemoryConnectionStore();
    const ids = await register(store, 500);
    const deps = depsWith(store, server, { pageSize: 64, shardSize: 150, inlineMax: 0, concurrency: 8 });
    await sendAndSettle(deps, ids[0]!, "w");
    expectEachOnce(server, ids, "w");
    expect(deps.logs.find((l) => l.message === "broadcast")).to.include({ inline: 0, dispatched: 500, shards: 4 });
  });

  describe("with Redis and DynamoDB", () => {
    let redis: TestRedis;
    let dynamo: TestDynamoDb;
    before(async () => {
      redis = await startRedis();
      dynamo = await startDynalite();
    });
    after(async () => {
      await redis.stop();
      await dynamo.stop();
    });

    const stores: [string, () => Promise<ConnectionStore>][] = [
      [
        "redis",
        async () => new RedisConnectionStore({ url: redis.url, keyPrefix: `fan-${newConnectionId().slice(0, 8)}` }),
      ],
      [
        "dynamodb (3 parallel segments)",
        async () => {
          const client = localDynamoDbClient(dynamo.endpoint);
          const tableName = `fan-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
          await createConnectionsTable(client, tableName);
          return new DynamoDbConnectionStore({ tableName, client, scanSegments: 3 });
        },
      ],
    ];
    for (const [name, open] of stores) {
      it(`${name}: reaches everyone once across small pages and shards, and removes exactly the stale ids`, async () => {
        const store = await open();
        try {
          const ids = await register(store, 900);
          const stale = new Set(ids.filter((_, i) => i % 17 === 5));
          server.behaviour = (id) => (stale.has(id) ? "gone" : "ok");
          const deps = depsWith(store, server, { pageSize: 50, shardSize: 300, inlineMax: 200, concurrency: 16 });
          await sendAndSettle(deps, ids[0]!, "s");
          expectEachOnce(server, ids, "s", stale);
          const left = new Set(await listAll(store));
          expect(left.size).to.equal(ids.length - stale.size);
          for (const id of ids) expect(left.has(id), id).to.equal(!stale.has(id));
          const gone = summaries(deps).reduce((sum, s) => sum + (s.gone as number), 0);
          expect(gone).to.equal(stale.size);
        } finally {
          await store.close();
        }
      });
    }
  });
});

describe("fan-out: throttling, timeouts, bounds", function () {
  this.timeout(60_000);
  let server: ManagementServer;
  beforeEach(async () => {
    server = await startManagementServer("test");
  });
  afterEach(async () => {
    await server.close();
  });

  /** A token bucket on the server: `rate` per second, `burst` deep; past it, 429 LimitExceededException. */
  function throttleAt(rate: number, burst: number) {
    let tokens = burst;
    let at = performance.now();
    const admitted = { count: 0, throttled: 0 };
    server.behaviour = () => {
      const now = performance.now();
      tokens = Math.min(burst, tokens + ((now - at) * rate) / 1000);
      at = now;
      if (tokens >= 1) {
        tokens--;
        admitted.count++;
        return "ok";
      }
      admitted.throttled++;
      return "throttle";
    };
    return admitted;
  }

  it("retries throttled posts until the bucket admits them: all delivered, once, none dropped", async () => {
    const store = new MemoryConnectionStore();
    const ids = await register(store, 600);
    const bucket = throttleAt(400, 40);
    server.latencyMs = 5;
    // maxAttempts 2: were 429s counted toward it, most posts would be dropped.
    const deps = depsWith(store, server, { concurrency: 64 }, { maxAttempts: 2 });
    const started = Date.now();
    await sendAndSettle(deps, ids[0]!, "t");
    const elapsed = Date.now() - started;
    expectEachOnce(server, ids, "t");
    const line = deps.logs.find((l) => l.message === "broadcast")!;
    expect(line).to.include({ delivered: 600, failed: 0, expired: 0 });
    expect(line.throttled as number)
      .to.be.greaterThan(0)
      .and.equal(bucket.throttled);
    expect(line.retried as number).to.be.at.least(line.throttled as number);
    expect(line.minWindow as number, "the AIMD window shrank").to.be.below(64);
    // (600 - 40) / 400 per second = 1.4 s at the very least.
    expect(elapsed).to.be.at.least(1_300);
  });

  it("gives up on a throttled post only at the deadline", async () => {
    server.behaviour = () => "throttle";
    const api = ConnectionsApi.forEndpoint(server.endpoint, { maxSockets: 4 });
    const payload = preparePayload("d");
    const started = Date.now();
    const summary = await fanOut({
      targets: (async function* () {
        yield ["a", "b", "c"];
      })(),
      attempt: (id, timeoutMs) => api.attempt(id, payload, timeoutMs),
      store: new MemoryConnectionStore(),
      deadline: started + 600,
      throttleBackoffBaseMs: 5,
      throttleBackoffCapMs: 50,
    });
    api.close();
    expect(summary).to.include({ delivered: 0, failed: 3, expired: 3 });
    expect(summary.throttled).to.be.greaterThan(6);
    expect(Date.now() - started).to.be.within(500, 2_000);
  });

  it("times out hanging posts, counts them failed, and delivers to the rest without waiting for them", async () => {
    const store = new MemoryConnectionStore();
    const ids = await register(store, 200);
    const hung = new Set(ids.slice(10, 15));
    server.behaviour = (id) => (hung.has(id) ? "hang" : "ok");
    const deps = depsWith(store, server, { concurrency: 8 }, { timeoutMs: 150, maxAttempts: 2 });
    const started = Date.now();
    // A partial broadcast: the sender is told (PartialDelivery), and it is a fault of ours (502).
    await sendAndSettle(deps, ids[0]!, "h", 502);
    // Five hung posts, two attempts of 150 ms each, in parallel with the rest: well under a second.
    expect(Date.now() - started).to.be.below(1_500);
    const [own, partial, ...more] = server.postsTo(ids[0]!);
    expect(own).to.equal("h");
    expect(JSON.parse(partial!)).to.include({ code: "PartialDelivery", delivered: 195, failed: 5, total: 200 });
    expect(more).to.deep.equal([]);
    expectEachOnce(server, ids.slice(1), "h", hung);
    const line = deps.logs.find((l) => l.message === "broadcast")!;
    expect(line).to.include({ delivered: 195, failed: 5, gone: 0 });
    expect(line.timedOut).to.equal(10);
    expect((await listAll(store)).length, "a timed-out target is not stale").to.equal(200);
  });

  it("never has more posts in flight than the bound, through the handler, throttled or not", async () => {
    const store = new MemoryConnectionStore();
    const ids = await register(store, 400);
    server.latencyMs = 10;
    throttleAt(2_000, 30);
    const deps = depsWith(store, server, { concurrency: 12 });
    await sendAndSettle(deps, ids[0]!, "b");
    expect(server.stats.maxInFlight).to.be.at.most(12);
    expect(deps.logs.find((l) => l.message === "broadcast")!.maxInFlight as number).to.be.at.most(12);
    expectEachOnce(server, ids, "b");
  });

  it("sizes the keep-alive agent to the concurrency and never opens more sockets", async () => {
    const sockets = new Set<unknown>();
    const raw = createServer((req, res) => {
      sockets.add(req.socket);
      setTimeout(() => res.writeHead(200, { "content-length": 0 }).end(), 5);
    });
    await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/test`;
    const api = ConnectionsApi.forEndpoint(endpoint, { maxSockets: 6 });
    const payload = preparePayload("k");
    const summary = await fanOut({
      targets: (async function* () {
        for (let p = 0; p < 10; p++) yield Array.from({ length: 30 }, (_, i) => `id${p}-${i}`);
      })(),
      attempt: (id, timeoutMs) => api.attempt(id, payload, timeoutMs),
      store: new MemoryConnectionStore(),
      concurrency: 6,
    });
    api.close();
    raw.closeAllConnections();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
    expect(summary.delivered).to.equal(300);
    expect(sockets.size).to.be.at.most(6);
  });

  it("stops at the first 413 and tells the sender once", async () => {
    const store = new MemoryConnectionStore();
    const ids = await register(store, 300);
    const from = ids[0]!;
    server.behaviour = (id) => (id === from ? "ok" : "too-large");
    const deps = depsWith(store, server, { concurrency: 4 });
    const result = await sendMessage(broadcastEvent(from, "big"), deps);
    // Answered in-band (PayloadTooLarge): 200, so IntegrationError does not count it.
    expect(result.statusCode).to.equal(200);
    const frames = server.postsTo(from).filter((b) => b.startsWith("{"));
    expect(frames).to.have.length(1);
    expect(JSON.parse(frames[0]!)).to.include({ type: "error", code: "PayloadTooLarge" });
    const line = deps.logs.find((l) => l.message === "broadcast")!;
    expect(line.tooLarge as number).to.be.at.least(1);
    expect(line.inline as number, "the broadcast stopped early").to.be.below(300);
  });
});

describe("fan-out: building blocks", function () {
  this.timeout(30_000);

  it("readAhead fetches the next page while the current one is used, and closes the source on early exit", async () => {
    const log: string[] = [];
    let closed = false;
    async function* source() {
      try {
        for (let i = 0; i < 5; i++) {
          log.push(`fetch ${i}`);
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    for await (const page of readAhead(source())) {
      log.push(`use ${page}`);
      if (page === 2) break;
    }
    expect(log.slice(0, 4)).to.deep.equal(["fetch 0", "fetch 1", "use 0", "fetch 2"]);
    expect(closed).to.equal(true);
  });

  it("AIMD: shrinks by 30% once per round trip on 429s, grows back by about one per round trip", () => {
    const w = new AimdWindow(100, 4, 100);
    w.onThrottle(0);
    expect(w.limit).to.equal(70);
    w.onThrottle(5);
    expect(w.limit, "second 429 within the same round trip").to.equal(70);
    w.onThrottle(100);
    expect(w.limit).to.equal(49);
    for (let i = 0; i < 50; i++) w.onSuccess(30);
    expect(w.limit).to.equal(50);
    for (let i = 0; i < 100; i++) w.onThrottle(1_000 + i * 1_000);
    expect(w.limit).to.equal(4);
    expect(w.minReached).to.equal(4);
  });

  it("fanOut stops taking pages at the intake deadline and leaves the rest to the caller", async () => {
    let pulled = 0;
    async function* pages() {
      for (let p = 0; p < 100; p++) {
        pulled++;
        yield [`a${p}`, `b${p}`];
      }
    }
    let t = 0;
    const summary = await fanOut({
      targets: pages(),
      prefetch: false,
      attempt: async (): Promise<Attempt> => {
        t += 10;
        return { kind: "delivered" };
      },
      store: new MemoryConnectionStore(),
      concurrency: 1,
      now: () => t,
      intakeDeadline: 55,
      deadline: 1_000,
    });
    expect(summary.handedBack).to.equal(true);
    expect(summary.truncated).to.equal(false);
    expect(summary.delivered).to.equal(pulled * 2);
    expect(pulled).to.be.below(100);
  });

  it("fanOut leaves no id unaccounted when the deadline comes mid-page: given back to the split, else expired", async () => {
    const ids = Array.from({ length: 30 }, (_, k) => `c${k}`);
    async function* pages() {
      for (let p = 0; p < 3; p++) yield ids.slice(p * 10, p * 10 + 10);
    }
    const run = (targets: AsyncIterable<readonly string[]>, giveBack?: (ids: readonly string[]) => void) => {
      let t = 0;
      const delivered: string[] = [];
      const summary = fanOut({
        targets,
        giveBack,
        prefetch: false,
        attempt: async (id): Promise<Attempt> => {
          t += 10;
          delivered.push(id);
          return { kind: "delivered" };
        },
        store: new MemoryConnectionStore(),
        concurrency: 1,
        now: () => t,
        // Six posts of the first page fit before the deadline; four of its ids are never started.
        deadline: 55,
      });
      return summary.then((s) => ({ summary: s, delivered }));
    };

    // Alone: the unstarted ids of the page count as expired.
    const alone = await run(pages());
    expect(alone.summary).to.include({ targets: 10, delivered: 6, failed: 4, expired: 4, truncated: true });
    expect(alone.summary.delivered + alone.summary.failed).to.equal(alone.summary.targets);

    // Behind a split: they go back to the buffer and on to workers with the rest of the listing.
    const shards: string[][] = [];
    const split = splitListing(pages(), {
      inlineMax: 1_000,
      shardSize: 100,
      pageSize: 10,
      dispatch: async (shard) => void shards.push(shard),
    });
    const { summary, delivered } = await run(split.inline, split.giveBack);
    const stats = await split.done;
    expect(summary).to.include({ delivered: 6, failed: 0, handedBack: true });
    expect(stats).to.include({ listed: 30, inline: 6, dispatched: 24, dropped: 0 });
    expect(summary.delivered + stats.dispatched + summary.failed).to.equal(ids.length);
    expect([...delivered, ...shards.flat()]).to.have.members(ids);
  });

  describe("splitListing", () => {
    async function* listing(total: number, pageSize: number) {
      for (let i = 0; i < total; i += pageSize) {
        yield Array.from({ length: Math.min(pageSize, total - i) }, (_, k) => `c${i + k}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }

    async function drain(inline: AsyncIterable<string[]>, perPageMs = 0): Promise<string[]> {
      const got: string[] = [];
      for await (const page of inline) {
        got.push(...page);
        if (perPageMs) await new Promise((resolve) => setTimeout(resolve, perPageMs));
      }
      return got;
    }

    it("sends back to the inline lane only the ids no worker got when a halved shard fails halfway", async () => {
      // 20,000 ids do not fit one 256 KB async event: the dispatcher halves, the first half goes, the second fails.
      const ids = Array.from({ length: 20_000 }, (_, i) => `conn-${String(i).padStart(10, "0")}`);
      const invoked: string[][] = [];
      const dispatch = shardDispatcher(
        { type: "fanout-shard", version: 1, broadcastId: "b", sender: "s", data: "x" },
        async (event) => {
          if (invoked.length === 1) throw new Error("throttled");
          invoked.push([...event.connectionIds]);
        },
      );
      let error: unknown;
      try {
        await dispatch(ids);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(PartialDispatchError);
      expect(invoked).to.have.length(1);
      const undispatched = (error as PartialDispatchError).undispatched;
      expect([...invoked[0]!, ...undispatched]).to.deep.equal(ids);

      // Behind splitListing: the inline lane gets exactly the undispatched ids, nobody gets a message twice.
      async function* one() {
        yield ids;
      }
      const shards: string[][] = [];
      const split = splitListing(one(), {
        inlineMax: 0,
        shardSize: 20_000,
        pageSize: 20_000,
        dispatch: shardDispatcher(
          { type: "fanout-shard", version: 1, broadcastId: "b", sender: "s", data: "x" },
          async (event) => {
            if (shards.length === 1) throw new Error("throttled");
            shards.push([...event.connectionIds]);
          },
        ),
      });
      const inline = await drain(split.inline);
      const stats = await split.done;
      expect([...shards.flat(), ...inline].sort()).to.deep.equal([...ids].sort());
      expect(new Set([...shards.flat(), ...inline]).size).to.equal(ids.length);
      expect(stats).to.include({ dispatched: shards.flat().length, dispatchFailed: true, dropped: 0 });
    });

    it("keeps a broadcast smaller than a shard entirely inline", async () => {
      const shards: string[][] = [];
      const split = splitListing(listing(250, 40), {
        inlineMax: 1_000,
        shardSize: 300,
        pageSize: 40,
        dispatch: async (ids) => void shards.push(ids),
      });
      const inline = await drain(split.inline);
      const stats = await split.done;
      expect(shards).to.deep.equal([]);
      expect(inline).to.have.length(250);
      expect(stats).to.include({ listed: 250, inline: 250, dispatched: 0 });
    });

    it("dispatches full shards while the inline lane posts, bounded by one shard of lookahead, and loses nothing", async () => {
      const shards: string[][] = [];
      let maxBuffered = 0;
      let listed = 0;
      let inlineTaken = 0;
      let dispatched = 0;
      async function* counted() {
        for await (const page of listing(5_000, 100)) {
          listed += page.length;
          maxBuffered = Math.max(maxBuffered, listed - inlineTaken - dispatched);
          yield page;
        }
      }
      const split = splitListing(counted(), {
        inlineMax: 600,
        shardSize: 500,
        pageSize: 100,
        dispatch: async (ids) => {
          shards.push(ids);
          dispatched += ids.length;
        },
      });
      const inline: string[] = [];
      for await (const page of split.inline) {
        inline.push(...page);
        inlineTaken += page.length;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const stats = await split.done;
      const all = [...inline, ...shards.flat()];
      expect(all).to.have.length(5_000);
      expect(new Set(all).size).to.equal(5_000);
      expect(inline.length).to.be.at.most(600);
      expect(shards.every((s) => s.length <= 500)).to.equal(true);
      expect(stats).to.include({ listed: 5_000, dispatched: 5_000 - inline.length, dispatchFailed: false, dropped: 0 });
      expect(maxBuffered, "lookahead buffer").to.be.at.most(500 + 100);
    });

    it("dispatches what the inline lane leaves when it stops after the listing ended, even within its budget", async () => {
      let ended!: () => void;
      const listingEnded = new Promise<void>((resolve) => (ended = resolve));
      const ids = Array.from({ length: 30 }, (_, k) => `c${k}`);
      async function* pages() {
        for (let p = 0; p < 3; p++) yield ids.slice(p * 10, p * 10 + 10);
        ended();
      }
      const shards: string[][] = [];
      const split = splitListing(pages(), {
        inlineMax: 1_000,
        shardSize: 100,
        pageSize: 10,
        dispatch: async (shard) => void shards.push(shard),
      });
      const inline: string[] = [];
      for await (const page of split.inline) {
        inline.push(...page);
        await listingEnded;
        await new Promise((resolve) => setImmediate(resolve));
        break; // the intake deadline: the 20 ids left fit the inline budget but were not taken
      }
      const stats = await split.done;
      expect(inline).to.deep.equal(ids.slice(0, 10));
      expect(shards.flat()).to.have.members(ids.slice(10));
      expect(stats).to.include({ listed: 30, inline: 10, dispatched: 20, dropped: 0 });
    });

    it("falls back to posting inline when a dispatch fails", async () => {
      let calls = 0;
      const split = splitListing(listing(1_200, 100), {
        inlineMax: 100,
        shardSize: 300,
        pageSize: 100,
        dispatch: async () => {
          calls++;
          throw new Error("AccessDenied");
        },
      });
      const inline = await drain(split.inline, 1);
      const stats = await split.done;
      expect(calls).to.equal(1);
      expect(new Set(inline).size).to.equal(1_200);
      expect(stats).to.include({ dispatchFailed: true, dispatched: 0, dropped: 0 });
    });
  });

  describe("DynamoDB parallel Scan", () => {
    let dynamo: TestDynamoDb;
    before(async () => {
      dynamo = await startDynalite();
    });
    after(async () => {
      await dynamo.stop();
    });

    it("yields every id exactly once with 1, 3 and 8 segments and several page sizes", async () => {
      const client = localDynamoDbClient(dynamo.endpoint);
      const tableName = `scan-${Date.now()}`;
      await createConnectionsTable(client, tableName);
      const ids = await register(new DynamoDbConnectionStore({ tableName, client }), 700);
      for (const scanSegments of [1, 3, 8]) {
        for (const pageSize of [13, 500]) {
          const store = new DynamoDbConnectionStore({ tableName, client, scanSegments });
          const seen: string[] = [];
          for await (const page of store.list({ pageSize })) {
            expect(page.length).to.be.within(1, pageSize);
            seen.push(...page);
          }
          expect(seen.length, `${scanSegments} segments, pages of ${pageSize}`).to.equal(700);
          expect([...seen].sort()).to.deep.equal([...ids].sort());
        }
      }
      client.destroy();
    });

    it("chooses segments from the table's item count (auto), one when the count is unknown", async () => {
      const client = localDynamoDbClient(dynamo.endpoint);
      const tableName = `auto-${Date.now()}`;
      await createConnectionsTable(client, tableName);
      const store = new DynamoDbConnectionStore({ tableName, client });
      expect(await store.segments()).to.equal(1);
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      expect(Table?.TableStatus).to.equal("ACTIVE");
      const missing = new DynamoDbConnectionStore({ tableName: "no-such-table", client });
      expect(await missing.segments()).to.equal(1);
      expect(await new DynamoDbConnectionStore({ tableName, client, scanSegments: 5 }).segments()).to.equal(5);
      expect(() => new DynamoDbConnectionStore({ tableName, client, scanSegments: 0 })).to.throw(RangeError);
      client.destroy();
    });

    it("mergePages interleaves sources as they deliver, fails with a failing source, and closes all on exit", async () => {
      const closed: number[] = [];
      function source(index: number, pages: number, delayMs: number, failAt?: number) {
        return (async function* () {
          try {
            for (let p = 0; p < pages; p++) {
              await new Promise((resolve) => setTimeout(resolve, delayMs));
              if (p === failAt) throw new Error(`segment ${index} failed`);
              yield [`${index}:${p}`];
            }
          } finally {
            closed.push(index);
          }
        })();
      }
      const order: string[] = [];
      for await (const page of mergePages([source(0, 3, 30), source(1, 3, 5)])) order.push(...page);
      expect(order.slice(0, 2)).to.deep.equal(["1:0", "1:1"]);
      expect([...order].sort()).to.deep.equal(["0:0", "0:1", "0:2", "1:0", "1:1", "1:2"]);
      closed.length = 0;
      let error: unknown;
      try {
        for await (const _ of mergePages([source(0, 5, 5), source(1, 5, 7, 1)])) void _;
      } catch (e) {
        error = e;
      }
      expect((error as Error).message).to.equal("segment 1 failed");
      expect([...closed].sort()).to.deep.equal([0, 1]);
    });
  });

  describe("shard events and the worker", () => {
    let server: ManagementServer;
    beforeEach(async () => {
      server = await startManagementServer("test");
    });
    afterEach(async () => {
      await server.close();
    });

    it("encodes the payload as text, or as base64 when escaping would make it larger, losslessly", () => {
      const text = Buffer.from('{"a":"héllo"}');
      expect(shardData(text)).to.deep.equal({ data: '{"a":"héllo"}' });
      const quotes = Buffer.from('"'.repeat(300));
      expect(shardData(quotes)).to.have.property("dataBase64");
      for (const payload of [text, quotes, Buffer.from([0xff, 0xfe, 0x00])]) {
        const event = {
          type: "fanout-shard",
          version: 1,
          broadcastId: "b",
          shard: 1,
          connectionIds: [],
          ...shardData(payload),
        } as FanOutShardEvent;
        expect(shardPayload(JSON.parse(JSON.stringify(event)) as FanOutShardEvent).equals(payload)).to.equal(true);
      }
    });

    it("keeps every shard event under Lambda's 256 KB async payload limit", async () => {
      const store = new MemoryConnectionStore();
      await register(store, 30_000);
      const events: FanOutShardEvent[] = [];
      const deps = depsWith(store, server, {});
      const summary = await broadcast({
        store,
        connections: deps.connections!,
        settings: { ...DEFAULT_FANOUT, inlineMax: 0, shardSize: 30_000, pageSize: 1000 },
        payload: preparePayload("\\".repeat(30_000)),
        broadcastId: "big",
        deadline: Date.now() + 20_000,
        invokeWorker: async (event) => void events.push(event),
      });
      expect(summary).to.include({ listed: 30_000, dispatched: 30_000 });
      expect(events.length).to.be.greaterThan(1);
      for (const e of events) expect(Buffer.byteLength(JSON.stringify(e))).to.be.below(256 * 1024);
      expect(events.reduce((n, e) => n + e.connectionIds.length, 0)).to.equal(30_000);
      expect(new Set(events.map((e) => e.shard)).size).to.equal(events.length);
    });

    it("the worker announces members it finds gone to their rooms (left), posting those itself", async () => {
      const store = new MemoryConnectionStore();
      const ids = await register(store, 4);
      for (const id of ids.slice(0, 3)) await store.join(id!, "r", 10);
      const gone = ids[1]!;
      server.behaviour = (id) => (id === gone ? "gone" : "ok");
      const deps: HandlerDeps = depsWith(store, server, { concurrency: 4 });
      const summary = await fanOutWorker(
        {
          type: "fanout-shard",
          version: 1,
          broadcastId: "p1",
          shard: 1,
          sender: ids[0],
          ...shardData(Buffer.from("hello")),
          connectionIds: ids,
        },
        deps,
      );
      expect(summary).to.include({ delivered: 3, gone: 1 });
      for (const member of [ids[0]!, ids[2]!]) {
        const frames = server.postsTo(member);
        expect(frames[0]).to.equal("hello");
        const left = frames.slice(1).map((f) => JSON.parse(f) as Record<string, unknown>);
        expect(left).to.have.length(1);
        expect(left[0]).to.include({ type: "left", room: "r", connectionId: gone });
      }
      // Not in the room: the shard's message only.
      expect(server.postsTo(ids[3]!)).to.deep.equal(["hello"]);
      expect(await store.roomsOf(gone)).to.deep.equal([]);
    });

    it("the worker posts its shard, removes its stale ids and never throws", async () => {
      const store = new MemoryConnectionStore();
      const ids = await register(store, 120);
      const stale = new Set(ids.slice(0, 3));
      server.behaviour = (id) => (stale.has(id) ? "gone" : "ok");
      const deps: HandlerDeps = depsWith(store, server, { concurrency: 8 });
      const event: FanOutShardEvent = {
        type: "fanout-shard",
        version: 1,
        broadcastId: "r1",
        shard: 2,
        sender: ids[5],
        ...shardData(Buffer.from("payload")),
        connectionIds: ids,
      };
      const summary = await fanOutWorker(event, deps);
      expect(summary).to.include({ delivered: 117, gone: 3, failed: 0 });
      expectEachOnce(server, ids, "payload", stale);
      expect((await listAll(store)).length).to.equal(117);
      expect(await fanOutWorker({ type: "something else" }, deps)).to.equal(undefined);
      const noApi = { ...deps, connections: undefined };
      expect(await fanOutWorker(event, noApi)).to.equal(undefined);
      const lines = (deps as TestDeps).logs;
      expect(lines.find((l) => l.message === "broadcast shard")).to.include({
        broadcastId: "r1",
        shard: 2,
        route: "fanout-worker",
      });
      expect(lines.filter((l) => l.level === "error")).to.have.length(2);
    });

    it("InProcessInvoker runs shards later, one at a time, holds at most one waiting, and reports idle", async () => {
      const running: number[] = [];
      let concurrent = 0;
      let maxConcurrent = 0;
      const invoker = new InProcessInvoker(async (event) => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await new Promise((resolve) => setTimeout(resolve, 10));
        running.push(event.shard);
        concurrent--;
      });
      const base = { type: "fanout-shard", version: 1, broadcastId: "x", data: "d", connectionIds: ["a"] } as const;
      const accepted: number[] = [];
      await Promise.all(
        [1, 2, 3, 4].map((shard) => invoker.invoke({ ...base, shard }).then(() => accepted.push(shard))),
      );
      await invoker.idle();
      expect(running).to.deep.equal([1, 2, 3, 4]);
      expect(maxConcurrent).to.equal(1);
      expect(invoker.pending).to.equal(0);
    });
  });

  describe("LambdaInvoker", () => {
    it("invokes asynchronously (Event), signed for lambda, and retries 429 but not 403", async () => {
      const seen: { path: string; headers: IncomingMessage["headers"]; body: string; status: number }[] = [];
      const answers = [429, 202, 403];
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const status = answers.shift() ?? 202;
          seen.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString(), status });
          const headers: Record<string, string> =
            status >= 400
              ? { "x-amzn-errortype": status === 429 ? "TooManyRequestsException" : "AccessDeniedException" }
              : {};
          res.writeHead(status, headers).end(status >= 400 ? '{"message":"no"}' : "");
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const credentials = async () => ({ accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "token" });
      const invoker = new LambdaInvoker(
        "arn:aws:lambda:eu-west-1:123456789012:function:chat-fanout",
        credentials,
        async () => "eu-west-1",
        endpoint,
      );
      const event: FanOutShardEvent = {
        type: "fanout-shard",
        version: 1,
        broadcastId: "b",
        shard: 1,
        data: "hi",
        connectionIds: ["x=", "y="],
      };
      await invoker.invoke(event);
      let error: unknown;
      try {
        await invoker.invoke(event);
      } catch (e) {
        error = e;
      }
      invoker.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      expect(seen.map((s) => s.status)).to.deep.equal([429, 202, 403]);
      expect(seen[1]!.path).to.equal(
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Achat-fanout/invocations",
      );
      expect(seen[1]!.headers["x-amz-invocation-type"]).to.equal("Event");
      expect(seen[1]!.headers["x-amz-security-token"]).to.equal("token");
      expect(seen[1]!.headers.authorization).to.match(
        /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/eu-west-1\/lambda\/aws4_request, SignedHeaders=[^,]*x-amz-invocation-type/,
      );
      expect(JSON.parse(seen[1]!.body)).to.deep.equal(event);
      expect((error as Error).name).to.equal("AccessDeniedException");
    });
  });

  it("reads the fan-out settings from the environment contract", () => {
    const env = readRuntimeEnv({
      STORE: "memory",
      FANOUT_CONCURRENCY: "64",
      POST_TIMEOUT_MS: "1500",
      FANOUT_PAGE_SIZE: "200",
      FANOUT_INLINE_MAX: "1000",
      FANOUT_SHARD_SIZE: "300",
      FANOUT_WORKER_FUNCTION: "chat-fanout",
    });
    expect(env.fanOut).to.deep.equal({
      concurrency: 64,
      postTimeoutMs: 1500,
      pageSize: 200,
      inlineMax: 1000,
      shardSize: 300,
      workerFunction: "chat-fanout",
    });
    expect(readRuntimeEnv({ STORE: "memory" }).fanOut).to.deep.equal(DEFAULT_FANOUT);
    expect(() => readRuntimeEnv({ STORE: "memory", FANOUT_CONCURRENCY: "0" })).to.throw(/FANOUT_CONCURRENCY/);
  });
});
