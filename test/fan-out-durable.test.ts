/**
 * Nothing of a broadcast is lost without a trace:
 * - a post queued inside the agent (every socket busy) is not timed out and retried as if it had been sent;
 * - the split router has a deadline, and a listing that fails part-way is retried from where it stopped;
 * - shards go to a durable queue (SQS, modelled on loopback) and shards that fail land in a dead-letter queue,
 *   from which they are redriven; locally, in a dead-letter list the gateway shows and redrives.
 */
import { createServer, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { type FanOutShardEvent, ListingDeadlineError, splitListing } from "../broadcast/broadcast";
import { untag } from "../broadcast/protocol-audience";
import { SqsShardQueue } from "../broadcast/worker-invoker";
import type { HandlerDeps } from "../chat/deps";
import { inProcessShardsIdle, inProcessWorkers, withInProcessWorkers } from "../chat/in-process-workers";
import { consumeShardBatch, MAX_SHARD_HOPS } from "../chat/shard-batch";
import type { ConnectionStore } from "../contract/connection-store";
import { DEFAULT_FANOUT, type FanOutSettings } from "../contract/env";
import { sendMessage } from "../handlers/send-message";
import { type ConnectionContext, messageEvent, newConnectionId } from "../local/events";
import { ConnectionPoster, ConnectionsApi, preparePayload } from "../runtime/connections-api";
import { Logger } from "../runtime/logger";
import { SigV4Signer, sha256Hex } from "../runtime/sigv4";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { useDummyAwsCredentials } from "./support/aws-env";
import { type ManagementServer, startManagementServer } from "./support/management-server";
import { startRedis, type TestRedis } from "./support/redis-server";
import { type FakeSqs, startSqs } from "./support/sqs-server";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

async function register(store: ConnectionStore, count: number): Promise<string[]> {
  const now = Date.now();
  const ids = Array.from({ length: count }, () => newConnectionId());
  for (const connectionId of ids) await store.add({ connectionId, connectedAt: now, expiresAt: now + 3_600_000 });
  return ids;
}

/** Lost: ids never posted. Duplicated: posts beyond the first, over all ids. */
function tally(server: ManagementServer, ids: readonly string[]): { lost: number; duplicated: number } {
  let lost = 0;
  let duplicated = 0;
  for (const id of ids) {
    const n = server.postsTo(id).length;
    if (n === 0) lost++;
    else duplicated += n - 1;
  }
  return { lost, duplicated };
}

const credentials = async () => ({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" });
const region = async () => "us-east-1";

/** A shard's connection ids: a room-less broadcast's version-2 shard tags each with the payload it gets. */
const idsOf = (shard: FanOutShardEvent): string[] =>
  shard.version === 2 ? shard.connectionIds.map(untag) : [...shard.connectionIds];

describe("fan-out: nothing lost without a trace", function () {
  this.timeout(60_000);

  describe("per-attempt timer", () => {
    it("starts when the request has a socket: a post queued behind a busy agent is sent once, not timed out", async () => {
      const received: string[] = [];
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        const id = decodeURIComponent((req.url ?? "").split("/").pop() ?? "");
        received.push(id);
        req.resume();
        // The first post holds the only socket for 600 ms; the second waits for it in the agent.
        setTimeout(() => res.writeHead(200, { "content-length": 0 }).end(), id === "first" ? 600 : 10);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as AddressInfo).port;
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      try {
        const poster = new ConnectionPoster(`http://127.0.0.1:${port}/test`, agent, credentials, region);
        const payload = preparePayload("hello");
        const [first, second] = await Promise.all([
          poster.attempt("first", payload, 2_000),
          // 400 ms per attempt: it waits ~600 ms for the socket, then is answered in ~10 ms.
          poster.attempt("second", payload, 400),
        ]);
        expect(first.kind).to.equal("delivered");
        expect(second.kind, JSON.stringify(second)).to.equal("delivered");
        expect(received).to.deep.equal(["first", "second"]);
      } finally {
        agent.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it("bounds the wait for a socket separately, and a post dropped there was never sent", async () => {
      const received: string[] = [];
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        received.push(req.url ?? "");
        req.resume();
        setTimeout(() => res.writeHead(200, { "content-length": 0 }).end(), 500);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as AddressInfo).port;
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      try {
        const poster = new ConnectionPoster(`http://127.0.0.1:${port}/test`, agent, credentials, region);
        const payload = preparePayload("hello");
        const [first, second] = await Promise.all([
          poster.attempt("first", payload, 2_000),
          poster.attempt("second", payload, 2_000, 100),
        ]);
        expect(first.kind).to.equal("delivered");
        expect(second.kind).to.equal("retryable");
        expect(second.kind === "retryable" && second.timedOut).to.equal(false);
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(received).to.have.length(1);
      } finally {
        agent.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  describe("listing", () => {
    it("the split router stops waiting for a listing that hangs at its deadline, and accounts for what it got", async () => {
      async function* hangs() {
        yield ["a", "b", "c"];
        yield ["d", "e"];
        await new Promise(() => undefined); // the store never answers again
      }
      const dispatched: string[] = [];
      const started = Date.now();
      const split = splitListing(hangs(), {
        inlineMax: 100,
        shardSize: 2,
        pageSize: 10,
        dispatch: async (ids) => {
          dispatched.push(...ids);
        },
        deadline: started + 300,
      });
      const inline: string[] = [];
      for await (const page of split.inline) inline.push(...page);
      const stats = await split.done;
      expect(Date.now() - started).to.be.lessThan(2_000);
      expect(stats.listingError).to.be.instanceOf(ListingDeadlineError);
      expect(stats.listed).to.equal(5);
      expect([...inline, ...dispatched].sort()).to.deep.equal(["a", "b", "c", "d", "e"]);
      expect(stats.dropped).to.equal(0);
    });

    describe("a real Redis paused mid-listing", () => {
      let redis: TestRedis;
      before(async () => {
        redis = await startRedis();
        if (redis.pid === undefined) this.ctx.skip();
      });
      after(async () => {
        if (redis.pid !== undefined) process.kill(redis.pid, "SIGCONT");
        await redis.stop();
      });

      it("retries the failed page from its cursor: every id listed exactly once", async () => {
        const store = new RedisConnectionStore({ url: redis.url, keyPrefix: `dur-${newConnectionId().slice(0, 8)}` });
        try {
          const now = Date.now();
          const ids = Array.from({ length: 50 }, () => newConnectionId());
          for (const connectionId of ids)
            await store.add({ connectionId, connectedAt: now, expiresAt: now + 3_600_000 });
          const listed: string[] = [];
          let pages = 0;
          for await (const page of store.list({ pageSize: 10 })) {
            listed.push(...page);
            if (++pages === 2) {
              // Redis stops answering for 1.5 s: the next page's command times out (1 s) and fails.
              process.kill(redis.pid!, "SIGSTOP");
              setTimeout(() => process.kill(redis.pid!, "SIGCONT"), 1_500);
            }
          }
          expect(listed).to.have.length(50);
          expect(new Set(listed)).to.deep.equal(new Set(ids));
        } finally {
          await store.close();
        }
      });
    });
  });

  describe("SQS shard queue (loopback model of SQS's JSON protocol)", () => {
    let sqs: FakeSqs;
    let server: ManagementServer;
    let queue: { url: string; arn: string };
    let dlq: { url: string; arn: string };
    const queues: SqsShardQueue[] = [];
    beforeEach(async () => {
      useDummyAwsCredentials();
      sqs = await startSqs();
      sqs.timeScale = 0.01; // a 10 s re-queue delay takes 100 ms
      dlq = sqs.createQueue("shards-dlq");
      queue = sqs.createQueue("shards", {
        visibilityTimeoutMs: 20_000,
        redrive: { deadLetterQueue: "shards-dlq", maxReceiveCount: 5 },
      });
      server = await startManagementServer("test");
    });
    afterEach(async () => {
      for (const q of queues.splice(0)) q.close();
      await server.close();
      await sqs.close();
    });

    function shardQueue(): SqsShardQueue {
      const q = new SqsShardQueue(queue.url, credentials, region, sqs.endpoint);
      queues.push(q);
      return q;
    }

    function deps(store: ConnectionStore, fanOut: Partial<FanOutSettings> = {}): HandlerDeps {
      const q = shardQueue();
      const settings = { ...DEFAULT_FANOUT, pageSize: 100, shardSize: 200, inlineMax: 0, concurrency: 16, ...fanOut };
      return {
        env: { store: store.kind, callbackUrl: server.endpoint, connectionTtlSeconds: 7500, fanOut: settings },
        store,
        connections: ConnectionsApi.forEndpoint(server.endpoint, {
          timeoutMs: 500,
          backoffBaseMs: 1,
          backoffCapMs: 5,
          maxSockets: settings.concurrency,
        }),
        log: new Logger({}, "error", () => undefined),
        invokeWorker: q.invoke,
        deadLetterShard: async (event) => void (await q.send(dlq.url, event)),
      };
    }

    /** Plays the event source mapping until the queue is empty (or `ms` pass); `fn` may fail invocations. */
    async function drain(
      name: string,
      fn: (event: { Records: { messageId: string; body: string }[] }) => Promise<unknown>,
      ms = 20_000,
    ): Promise<number> {
      const until = Date.now() + ms;
      let invocations = 0;
      while (Date.now() < until) {
        const n = await sqs.consume(name, fn, 1);
        invocations += n > 0 ? 1 : 0;
        if (n === 0 && sqs.bodies(name).length === 0) break;
        if (n === 0) await sleep(10);
      }
      return invocations;
    }

    it("SendMessage is signed for sqs, retried on 500 and throttling, and checked against the MD5 SQS answers", async () => {
      const q = shardQueue();
      const event: FanOutShardEvent = {
        type: "fanout-shard",
        version: 1,
        broadcastId: "b",
        shard: 1,
        data: "x\uffffy\u0001",
        connectionIds: ["a", "b"],
      };
      sqs.failNext(1, "internal");
      sqs.failNext(1, "throttle");
      await q.invoke(event, { delaySeconds: 3 });
      const sends = sqs.requests.filter((r) => r.action === "SendMessage");
      expect(sends).to.have.length(3);
      expect(sends[2]!.headers["x-amz-target"]).to.equal("AmazonSQS.SendMessage");
      expect(sends[2]!.body).to.include({ QueueUrl: queue.url, DelaySeconds: 3 });
      // U+FFFF is outside what SQS accepts: it travels escaped, and the worker reads the same payload.
      expect(JSON.parse(sqs.bodies("shards")[0]!)).to.deep.equal(event);
      // A queue that does not exist is not retried.
      const missing = new SqsShardQueue(`${sqs.endpoint}/000000000000/nope`, credentials, region, sqs.endpoint);
      queues.push(missing);
      const before = sqs.requests.length;
      const error = await missing.invoke(event).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.name).to.equal("QueueDoesNotExist");
      expect(sqs.requests.length - before).to.equal(1);
    });

    it("fault runs: worker crashes, worker throttled, failing posts, posts that never succeed (then redriven)", async function () {
      this.timeout(180_000);
      const runs: Record<string, { lost: number; duplicated: number; dlq: number; invocations: number }> = {};
      async function run(
        label: string,
        setup: (server: ManagementServer) => void,
        invoke: (d: HandlerDeps) => (event: { Records: { messageId: string; body: string }[] }) => Promise<unknown>,
        redrive = false,
      ): Promise<void> {
        server.posts.clear();
        server.behaviour = () => "ok";
        setup(server);
        const store = new MemoryConnectionStore();
        const ids = await register(store, 1_000);
        const d = deps(store);
        const result = await sendMessage(
          messageEvent(sender(ids[0]!), "sendmessage", JSON.stringify({ action: "sendmessage", data: label })),
          d,
        );
        expect(result.statusCode).to.equal(200);
        let invocations = await drain("shards", invoke(d));
        const inDlq = sqs.bodies("shards-dlq").length;
        if (redrive) {
          // The runbook: fix the cause, then move the DLQ's messages back to the shard queue.
          server.behaviour = () => "ok";
          const move = await fetchSqs("StartMessageMoveTask", { SourceArn: dlq.arn, DestinationArn: queue.arn });
          expect(move.TaskHandle).to.be.a("string");
          invocations += await drain("shards", invoke(d));
        }
        expect(sqs.bodies("shards")).to.deep.equal([]);
        runs[label] = { ...tally(server, ids), dlq: inDlq, invocations };
      }
      const worker = (d: HandlerDeps) => (event: { Records: { messageId: string; body: string }[] }) =>
        consumeShardBatch(event, d);
      // Each shard's first two invocations die before posting (a crash, a container that cannot start).
      const seen = new Map<string, number>();
      const crashing = (d: HandlerDeps) => async (event: { Records: { messageId: string; body: string }[] }) => {
        const id = event.Records[0]!.messageId;
        seen.set(id, (seen.get(id) ?? 0) + 1);
        if (seen.get(id)! <= 2) throw new Error("Runtime.ExitError");
        return consumeShardBatch(event, d);
      };
      // Each shard's first invocation posts it all, then times out before answering.
      const timedOut = new Set<string>();
      const timingOut = (d: HandlerDeps) => async (event: { Records: { messageId: string; body: string }[] }) => {
        const id = event.Records[0]!.messageId;
        const response = await consumeShardBatch(event, d);
        if (!timedOut.has(id)) {
          timedOut.add(id);
          throw new Error("Task timed out after 120.00 seconds");
        }
        return response;
      };
      // Lambda throttles the mapping's first four invocations of each shard (TooManyRequestsException).
      const throttledSeen = new Map<string, number>();
      const throttled = (d: HandlerDeps) => async (event: { Records: { messageId: string; body: string }[] }) => {
        const id = event.Records[0]!.messageId;
        throttledSeen.set(id, (throttledSeen.get(id) ?? 0) + 1);
        if (throttledSeen.get(id)! <= 4) throw new Error("TooManyRequestsException");
        return consumeShardBatch(event, d);
      };

      await run("baseline", () => undefined, worker);
      await run("worker crashes twice per shard", () => undefined, crashing);
      await run("worker times out after posting, once per shard", () => undefined, timingOut);
      await run("Lambda throttles the worker 4 times per shard", () => undefined, throttled);
      await run(
        "1 in 10 ids answer 500 four times",
        (s) => {
          s.behaviour = (id, attempt) => (id.charCodeAt(1) % 10 === 0 && attempt <= 4 ? "error500" : "ok");
        },
        worker,
      );
      await run(
        "posts throttled (429) for a while",
        (s) => {
          s.behaviour = (_id, attempt) => (attempt <= 2 ? "throttle" : "ok");
        },
        worker,
      );
      await run(
        "1 in 10 ids always answer 500 (until fixed and redriven)",
        (s) => {
          s.behaviour = (id) => (id.charCodeAt(1) % 10 === 0 ? "error500" : "ok");
        },
        worker,
        true,
      );
      // The fault run's figures are part of the test's report.
      console.log(JSON.stringify(runs, null, 1));
      for (const [label, r] of Object.entries(runs)) expect(r.lost, label).to.equal(0);
      expect(runs.baseline!.duplicated).to.equal(0);
      expect(runs["worker crashes twice per shard"]!.duplicated).to.equal(0);
      expect(runs["Lambda throttles the worker 4 times per shard"]!.duplicated).to.equal(0);
      // A worker that posted its shard and then died has it posted again: at least once, exactly the shard.
      expect(runs["worker times out after posting, once per shard"]!.duplicated).to.equal(1_000);
      // Failed posts are re-queued alone: nobody who got the message gets it again.
      expect(runs["1 in 10 ids answer 500 four times"]!.duplicated).to.equal(0);
      expect(runs["1 in 10 ids always answer 500 (until fixed and redriven)"]!.dlq).to.be.greaterThan(0);
      expect(runs["1 in 10 ids always answer 500 (until fixed and redriven)"]!.duplicated).to.equal(0);
    });

    /** A signed JSON-protocol call to the model, as the AWS CLI would make it. */
    async function fetchSqs(action: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
      const url = new URL(sqs.endpoint);
      const text = JSON.stringify(body);
      const headers = { "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${action}` };
      const signed = new SigV4Signer("us-east-1", "sqs").sign(
        { method: "POST", host: url.host, path: "/", payloadHash: sha256Hex(text), headers },
        await credentials(),
      );
      const res = await fetch(`${sqs.endpoint}/`, { method: "POST", headers: { ...headers, ...signed }, body: text });
      return (await res.json()) as Record<string, unknown>;
    }

    it(`dead-letters ids still failing after ${MAX_SHARD_HOPS} re-queues, and never re-posts the ids delivered`, async () => {
      const store = new MemoryConnectionStore();
      const ids = await register(store, 50);
      const bad = new Set(ids.slice(0, 3));
      server.behaviour = (id) => (bad.has(id) ? "error500" : "ok");
      const d = deps(store, { shardSize: 100 });
      await sendMessage(
        messageEvent(sender(ids[10]!), "sendmessage", JSON.stringify({ action: "sendmessage", data: "hi" })),
        d,
      );
      await drain("shards", (event) => consumeShardBatch(event, d));
      const dead = sqs.bodies("shards-dlq").map((b) => JSON.parse(b) as FanOutShardEvent);
      expect(dead).to.have.length(1);
      expect(dead[0]!.hop).to.equal(MAX_SHARD_HOPS + 1);
      expect(idsOf(dead[0]!).sort()).to.deep.equal([...bad].sort());
      for (const id of ids) if (!bad.has(id)) expect(server.postsTo(id), id).to.have.length(1);
    });
  });

  describe("in-process workers (local gateway, tests)", () => {
    let server: ManagementServer;
    beforeEach(async () => {
      server = await startManagementServer("test");
    });
    afterEach(async () => {
      await server.close();
    });

    it("re-queue a shard's failed ids, keep those that fail on every try as dead letters, and redrive them", async () => {
      useDummyAwsCredentials();
      const store = new MemoryConnectionStore();
      const ids = await register(store, 300);
      const bad = new Set(ids.filter((id) => id.charCodeAt(2) % 7 === 0));
      server.behaviour = (id) => (bad.has(id) ? "error500" : "ok");
      const settings = { ...DEFAULT_FANOUT, pageSize: 50, shardSize: 100, inlineMax: 0, concurrency: 8 };
      const deps = withInProcessWorkers(
        {
          env: { store: store.kind, callbackUrl: server.endpoint, connectionTtlSeconds: 7500, fanOut: settings },
          store,
          connections: ConnectionsApi.forEndpoint(server.endpoint, {
            timeoutMs: 500,
            backoffBaseMs: 1,
            backoffCapMs: 5,
            maxSockets: 8,
          }),
          log: new Logger({}, "error", () => undefined),
        },
        { delayScale: 0.001, retryDelayMs: 5 },
      );
      await sendMessage(
        messageEvent(sender(ids[0]!), "sendmessage", JSON.stringify({ action: "sendmessage", data: "x" })),
        deps,
      );
      const workers = inProcessWorkers(deps);
      // What a local gateway's retiring worker thread waits for: every shard of the process, re-queues included.
      await inProcessShardsIdle();
      expect(workers.pending, "nothing waiting, running or delayed").to.equal(0);
      const dead = workers.deadLetters.flatMap(idsOf);
      expect(bad.size).to.be.greaterThan(0);
      expect([...dead].sort()).to.deep.equal([...bad].sort());
      expect(tally(server, ids).lost).to.equal(bad.size);
      // Fixed, then redriven: every id got the message exactly once.
      server.behaviour = () => "ok";
      const shards = workers.deadLetters.length;
      expect(workers.redrive()).to.equal(shards);
      await workers.idle();
      expect(workers.deadLetters).to.deep.equal([]);
      expect(tally(server, ids)).to.deep.equal({ lost: 0, duplicated: 0 });
    });
  });
});
