/**
 * The handlers in worker threads (local/handler-pool.ts), through the gateway library and `npm start`, with real
 * clients: each invocation runs in a worker, not the gateway's thread; a handler holding its thread holds up only
 * that worker's events; a throw and a dying thread each fail only their own invocation, and a new worker takes a
 * dead one's place; a module that fails to load fails the start, naming it; with two workers the route table's
 * handlers share the gateway's memory store (connections and rooms written by one worker are read by the other).
 */
import { join } from "node:path";
import { MessageChannel } from "node:worker_threads";
import { expect } from "chai";
import { LocalGateway, startLocalGateway } from "../local/gateway";
import type { HandlerModules } from "../local/handler-modules";
import { HandlerLoadError, HandlerPool } from "../local/handler-pool";
import { bridgedStore, serveStore } from "../local/store-bridge";
import { MemoryConnectionStore } from "../stores/memory";
import { bannerOf, type CliRun, cleanEnv, killCli, runCli } from "./support/cli-run";
import { openClient, type TestClient, waitFor } from "./support/gateway";

const FIXTURES = join(__dirname, "fixtures", "worker-handlers");
const HANDLERS = join(FIXTURES, "handlers.ts");

const MODULES: HandlerModules = {
  $connect: { file: HANDLERS, exportName: "connect" },
  $default: { file: HANDLERS, exportName: "message" },
};

interface Reply {
  readonly action: string;
  readonly threadId: number;
  readonly invocations: number;
}

describe("handler worker threads", function () {
  this.timeout(30_000);
  let gateway: LocalGateway | undefined;
  const clients: TestClient[] = [];
  const lines: string[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await gateway?.stop();
    gateway = undefined;
    lines.length = 0;
  });

  async function start(handlerWorkers: number): Promise<LocalGateway> {
    gateway = await startLocalGateway({
      port: 0,
      handlerModules: MODULES,
      handlerWorkers,
      log: (line) => lines.push(line),
    });
    return gateway;
  }

  async function open(gw: LocalGateway): Promise<TestClient> {
    const c = await openClient(gw.url);
    clients.push(c);
    return c;
  }

  async function ask(c: TestClient, body: Record<string, unknown>, timeoutMs = 5000): Promise<Reply> {
    await c.send(JSON.stringify(body));
    return (await c.nextJson(timeoutMs)) as unknown as Reply;
  }

  it("runs every invocation in a worker thread, not the gateway's", async () => {
    const gw = await start(1);
    const c = await open(gw);
    const reply = await ask(c, { action: "echo" });
    expect(reply.action).to.equal("echo");
    expect(reply.threadId, "the gateway's thread is thread 0").to.be.greaterThan(0);
    // One warm container: its module state carries over from one invocation to the next.
    expect((await ask(c, { action: "echo" })).invocations).to.equal(reply.invocations + 1);
  });

  it("a handler holding its thread holds up only its own worker: another connection is answered meanwhile", async () => {
    const gw = await start(2);
    const a = await open(gw);
    const b = await open(gw);
    await a.send(JSON.stringify({ action: "spin", ms: 2000 }));
    const started = Date.now();
    const echo = await ask(b, { action: "echo" }, 1500);
    expect(Date.now() - started, "b's answer did not wait for a's handler").to.be.below(1500);
    const spin = (await a.nextJson(5000)) as unknown as Reply;
    expect(spin.action).to.equal("spin");
    expect(spin.threadId, "the two ran in different workers").to.not.equal(echo.threadId);
  });

  it("without workers the same modules run in the gateway's thread, where a held thread holds every connection", async () => {
    const gw = await start(0);
    const a = await open(gw);
    const b = await open(gw);
    // The test runs in the gateway's thread too, so the clock starts before a's frame can be handled.
    const started = Date.now();
    await a.send(JSON.stringify({ action: "spin", ms: 600 }));
    const echo = await ask(b, { action: "echo" });
    expect(echo.threadId).to.equal(0);
    expect(Date.now() - started, "b waited for a's handler").to.be.at.least(550);
  });

  it("a handler that throws: API Gateway's error frame to the sender, and the worker serves on", async () => {
    const gw = await start(1);
    const c = await open(gw);
    const first = await ask(c, { action: "echo" });
    await c.send(JSON.stringify({ action: "throw" }));
    expect(await c.nextJson()).to.deep.include({ message: "Internal server error" });
    expect(lines.some((line) => /MESSAGE .* ERR .*TypeError: the handler failed on purpose/.test(line))).to.equal(true);
    const after = await ask(c, { action: "echo" });
    expect(after.threadId, "the same worker").to.equal(first.threadId);
    expect(after.invocations).to.equal(first.invocations + 2);
  });

  it("a result that JSON cannot hold is the invocation's error, as Lambda's runtime makes it", async () => {
    const gw = await start(1);
    const c = await open(gw);
    await c.send(JSON.stringify({ action: "cyclic" }));
    expect(await c.nextJson()).to.deep.include({ message: "Internal server error" });
    expect(
      lines.some((line) => /MESSAGE .* ERR .*TypeError: Converting circular structure to JSON/.test(line)),
    ).to.equal(true);
    expect((await ask(c, { action: "echo" })).action).to.equal("echo");
  });

  it("a worker thread that dies fails the invocation it ran; a new worker serves the next, the connection open", async () => {
    const gw = await start(1);
    const c = await open(gw);
    const first = await ask(c, { action: "echo" });
    await c.send(JSON.stringify({ action: "crash" }));
    expect(await c.nextJson()).to.deep.include({ message: "Internal server error" });
    await waitFor(() => lines.find((line) => /a handler worker ended \(exit code 7\)/.test(line)), 3000, "the line");
    const after = await ask(c, { action: "echo" });
    expect(after.threadId, "a new worker").to.not.equal(first.threadId);
    expect(after.invocations, "a cold start: its module state is new").to.equal(1);
    expect(c.ws.readyState).to.equal(c.ws.OPEN);
  });

  it("a module that throws while loading fails start(), naming the error", async () => {
    let failure: unknown;
    try {
      gateway = await startLocalGateway({
        port: 0,
        handlerModules: { $default: { file: join(FIXTURES, "broken.js"), exportName: "message" } },
        handlerWorkers: 1,
        log: () => {},
      });
    } catch (error) {
      failure = error;
    }
    expect(failure).to.be.instanceOf(HandlerLoadError);
    expect((failure as Error).message).to.match(/broken\.js refuses to load/);
  });

  it("stop() during start() ends the workers it was starting, and start() says so", async () => {
    const gw = new LocalGateway({ port: 0, handlerModules: MODULES, handlerWorkers: 2, log: () => {} });
    const started = gw.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await gw.stop();
    let failure: unknown;
    await started.catch((error: unknown) => {
      failure = error;
    });
    expect((failure as Error | undefined)?.message).to.match(/stopped while it started/);
    expect(gw.tracked.invocations).to.equal(0);
  });

  it("checks handlerWorkers before it binds a port", () => {
    for (const bad of [-1, 1.5, Number.NaN, 65]) {
      expect(() => new LocalGateway({ handlerModules: MODULES, handlerWorkers: bad }), String(bad)).to.throw(
        RangeError,
        /handlerWorkers must be an integer from 0 to 64/,
      );
    }
  });

  it("refuses handlers and handlerModules together", () => {
    expect(() => startLocalGateway({ handlers: {}, handlerModules: MODULES })).to.throw(/not both/);
  });
});

describe("a handler pool's lifecycle", function () {
  this.timeout(30_000);
  const pools: HandlerPool[] = [];
  afterEach(async () => {
    for (const pool of pools.splice(0)) await pool.close();
  });

  const event = (body: Record<string, unknown>) =>
    ({
      body: JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: { connectionId: "c", domainName: "localhost:1", stage: "dev" },
    }) as unknown as Parameters<HandlerPool["invoke"]>[1];

  it("a replaced pool stops once its invocations are done, or at its deadline when one never answers", async () => {
    const lines: string[] = [];
    const pool = await HandlerPool.start({ modules: MODULES, size: 1, log: (line) => lines.push(line) });
    pools.push(pool);
    const hanging = pool.invoke("$default", event({ action: "hang" })).catch((error: Error) => error);
    const started = Date.now();
    await pool.retire(300);
    const elapsed = Date.now() - started;
    expect(elapsed, "waited for the deadline, not forever").to.be.within(250, 2000);
    expect(((await hanging) as Error).message).to.match(/the handler pool stopped/);
    expect(pool.running).to.equal(0);

    const idle = await HandlerPool.start({ modules: MODULES, size: 1, log: () => {} });
    pools.push(idle);
    const quick = Date.now();
    await idle.retire(5000);
    expect(Date.now() - quick, "nothing running: stops at once").to.be.below(1000);
  });

  it("restarts a worker that keeps ending after a pause that doubles, not in a loop", async () => {
    const lines: string[] = [];
    const pool = await HandlerPool.start({
      modules: { $default: { file: join(FIXTURES, "dies-after-load.js"), exportName: "message" } },
      size: 1,
      log: (line) => lines.push(line),
    });
    pools.push(pool);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const delays = lines.map((line) => Number(/starting another in (\d+) ms/.exec(line)?.[1]));
    expect(delays.slice(0, 3)).to.deep.equal([100, 200, 400]);
    expect(lines.length, "at most five restarts in 1.5 s").to.be.at.most(5);
  });
});

describe("the store bridge", () => {
  it("carries an error's name, primitive fields and cause, and lets go of a listing nobody pulls", async () => {
    const served = new MemoryConnectionStore();
    const cause = Object.assign(new Error("socket closed"), { code: "ECONNRESET" });
    const failing = Object.assign(Object.create(served), {
      get: async () => {
        throw Object.assign(new Error("store unavailable", { cause }), { name: "StoreError", retryable: true });
      },
    }) as MemoryConnectionStore;
    const { port1, port2 } = new MessageChannel();
    serveStore(port1, () => failing, 50);
    const store = bridgedStore(port2, "memory");
    try {
      const error = (await store.get("x").catch((e: unknown) => e)) as Error & { retryable?: boolean };
      expect(error.name).to.equal("StoreError");
      expect(error.retryable).to.equal(true);
      expect((error.cause as Error & { code?: string }).message).to.equal("socket closed");
      expect((error.cause as Error & { code?: string }).code).to.equal("ECONNRESET");

      for (let i = 0; i < 3; i++)
        await served.add({ connectionId: `c${i}`, connectedAt: 1, expiresAt: Date.now() + 60_000 });
      const abandoned = store.list({ pageSize: 1 })[Symbol.asyncIterator]();
      expect((await abandoned.next()).value).to.have.length(1);
      await new Promise((resolve) => setTimeout(resolve, 80));
      // The next listing opened lets the idle one go: its next pull ends it.
      const pages: string[][] = [];
      for await (const page of store.list({ pageSize: 2 })) pages.push(page);
      expect(pages.flat()).to.have.length(3);
      expect((await abandoned.next()).done).to.equal(true);
    } finally {
      port2.close();
    }
  });
});

/** The next frame of `type`, skipping the others (members lists, presence). */
async function nextOfType(c: TestClient, type: string): Promise<Record<string, unknown>> {
  for (;;) {
    const frame = await c.nextJson(5000);
    if (frame.type === type) return frame;
  }
}

describe("npm start --workers 2: the route table's handlers share the gateway's memory store", function () {
  this.timeout(60_000);
  let cli: CliRun | undefined;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    if (cli) await killCli(cli);
    cli = undefined;
  });

  it("connections and rooms written by one worker are read by the other", async () => {
    cli = runCli(["--port", "0", "--no-reload", "--workers", "2"], undefined, cleanEnv());
    const { url } = await bannerOf(cli);
    expect(cli.stdout).to.match(/Workers: +2 handler threads beside/);
    // Events go to the workers in turn, so consecutive events are served by different workers.
    const a = await openClient(url);
    const b = await openClient(url);
    clients.push(a, b);
    for (const c of [a, b]) {
      await c.send(JSON.stringify({ action: "join", room: "lobby" }));
      await nextOfType(c, "joined");
    }
    await nextOfType(a, "joined"); // b's, announced to a
    for (let i = 0; i < 4; i++) {
      const sender = i % 2 === 0 ? a : b;
      await sender.send(JSON.stringify({ action: "sendmessage", room: "lobby", data: `m${i}` }));
      for (const c of [a, b]) {
        expect(await c.nextJson(5000), `message ${i}`).to.deep.include({
          type: "message",
          room: "lobby",
          data: `m${i}`,
        });
      }
    }
  });
});
