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
import { ListingDeadlineError, splitListing } from "../broadcast/broadcast";
import { newConnectionId } from "../local/events";
import { ConnectionPoster, preparePayload } from "../runtime/connections-api";
import { RedisConnectionStore } from "../stores/redis";
import { startRedis, type TestRedis } from "./support/redis-server";

const credentials = async () => ({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" });
const region = async () => "us-east-1";

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
});
