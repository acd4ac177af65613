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
import { ConnectionPoster, preparePayload } from "../runtime/connections-api";

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
});
