/**
 * `npm start` (local/cli.ts) as a user runs it: a child process running the route table's exported handlers
 * (the default, non-injected path), configured only through flags and the environment.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { readStackSettings } from "../local/pulumi-stack";
import { chooseStore } from "../local/store-setup";
import { type CliRun, cleanEnv, killCli, ROOT, runCli } from "./support/cli-run";
import { openClient, type TestClient, waitFor } from "./support/gateway";
import { startRedis, type TestRedis } from "./support/redis-server";

/** Waits for the startup banner; returns the WebSocket and callback URLs it printed. */
async function started(cli: CliRun): Promise<{ url: string; callbackUrl: string }> {
  const exitedEarly = cli.exited.then(({ code }) => {
    throw new Error(`the CLI exited (${code}) before starting:\n${cli.stderr}${cli.stdout}`);
  });
  const ready = waitFor(
    () => (cli.stdout.includes("Ctrl-C to stop.") ? true : undefined),
    15_000,
    "the startup banner",
  );
  await Promise.race([ready, exitedEarly]);
  const url = /WebSocket:\s+(ws:\/\/\S+)/.exec(cli.stdout)?.[1];
  const callbackUrl = /Callback URL:\s+(http:\/\/\S+)/.exec(cli.stdout)?.[1];
  expect(url, cli.stdout).to.match(/^ws:\/\/localhost:\d+\/dev$/);
  expect(callbackUrl, cli.stdout).to.match(/^http:\/\/127\.0\.0\.1:\d+\/dev$/);
  expect(new URL(url!).port).to.equal(new URL(callbackUrl!).port);
  return { url: url!, callbackUrl: callbackUrl! };
}

/** Two clients exchange a message through the CLI's gateway. */
async function chatThrough(url: string): Promise<TestClient[]> {
  const a = await openClient(url);
  const b = await openClient(url);
  await a.send(JSON.stringify({ action: "sendmessage", data: "hi from the cli test" }));
  expect(await a.next(5000)).to.equal("hi from the cli test");
  expect(await b.next(5000)).to.equal("hi from the cli test");
  await b.send("not json");
  expect(await b.nextJson(5000)).to.include({ type: "error", code: "InvalidJson" });
  return [a, b];
}

function expectOneLineError(cli: { stderr: string }, pattern: RegExp): void {
  const lines = cli.stderr.trim().split("\n");
  expect(lines, cli.stderr).to.have.length(1);
  expect(lines[0]).to.match(/^local gateway: /);
  expect(lines[0]).to.match(pattern);
  expect(cli.stderr).to.not.match(/\n\s+at /, "no stack trace");
}

describe("npm start (local/cli.ts)", function () {
  this.timeout(30_000);
  const running: CliRun[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map(killCli));
  });
  function run(args: string[], env?: NodeJS.ProcessEnv): CliRun {
    const cli = runCli(args, ROOT, env);
    running.push(cli);
    return cli;
  }

  it("prints the URLs and the store, serves a chat with the real handlers, and exits 0 on SIGINT after closing every connection", async () => {
    const cli = run(["--port", "0"]);
    const { url } = await started(cli);
    expect(cli.stdout).to.match(/Store:\s+memory \(default: no --store, REDIS_URL or AWS_ENDPOINT_URL_DYNAMODB\)/);
    const [a, b] = await chatThrough(url);
    // The frames reach the clients before the handlers return, so the log lines may still be on their way.
    await waitFor(
      () => (/MESSAGE\s+sendmessage\s+\S+=\s+200 \d+ms/.test(cli.stdout) ? true : undefined),
      3000,
      "the sendmessage line",
    );
    await waitFor(
      () => (/MESSAGE\s+\$default\s+\S+=\s+200 \d+ms/.test(cli.stdout) ? true : undefined),
      3000,
      "the $default line",
    );

    cli.child.kill("SIGINT");
    const [closedA, closedB] = await Promise.all([a!.closed, b!.closed]);
    expect(closedA).to.deep.equal({ code: 1001, reason: "Going away" });
    expect(closedB).to.deep.equal({ code: 1001, reason: "Going away" });
    const { code } = await cli.exited;
    expect(code, cli.stderr).to.equal(0);
    expect(
      cli.stdout.match(/DISCONNECT\s+\$disconnect\s+\S+=\s+200 \d+ms code=1001 reason="Going away"/g),
    ).to.have.length(2);
    expect(cli.stderr).to.equal("");
  });

  it("runs with --store dynamodb on an embedded dynalite (zero setup)", async () => {
    const cli = run(["--port", "0", "--store", "dynamodb", "--stage", "local"]);
    await waitFor(() => (cli.stdout.includes("Ctrl-C to stop.") ? true : undefined), 15_000, "the banner").catch(() => {
      throw new Error(`no banner:\n${cli.stderr}${cli.stdout}`);
    });
    expect(cli.stdout).to.match(
      /Store:\s+dynamodb \(--store\): DynamoDB table "websocket-chat-connections" at http:\/\/127\.0\.0\.1:\d+ \(embedded dynalite/,
    );
    const url = /WebSocket:\s+(ws:\/\/\S+)/.exec(cli.stdout)![1]!;
    expect(url).to.match(/\/local$/);
    const clients = await chatThrough(url);
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code, cli.stderr).to.equal(0);
    for (const c of clients) expect((await c.closed).code).to.equal(1001);
  });

  describe("with Redis", () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });

    it("picks the redis store when REDIS_URL is set, and says why", async () => {
      const cli = run(["--port", "0"], cleanEnv({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: `cli-${Date.now()}` }));
      const { url } = await started(cli);
      expect(cli.stdout).to.include(`Store:        redis (REDIS_URL is set): Redis at ${redis.url}`);
      await chatThrough(url);
      cli.child.kill("SIGINT");
      expect((await cli.exited).code, cli.stderr).to.equal(0);
    });
  });

  it("exits non-zero with one line and no stack trace when the port is in use", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const cli = run(["--port", String(port)]);
      const { code } = await cli.exited;
      expect(code).to.equal(1);
      expectOneLineError(cli, new RegExp(`port ${port} is already in use`));
      expect(cli.stdout).to.equal("");
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("exits non-zero with one line and no stack trace when the store is unreachable", async () => {
    const started = Date.now();
    const cli = run(["--port", "0", "--store", "redis", "--redis-url", "redis://127.0.0.1:1"]);
    const { code } = await cli.exited;
    expect(code).to.equal(1);
    expectOneLineError(cli, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/);
    expect(Date.now() - started).to.be.lessThan(15_000);
  });

  it("rejects unknown flags and bad values with a usage error (exit 2)", async () => {
    const bad = run(["--no-such-flag"]);
    expect((await bad.exited).code).to.equal(2);
    expectOneLineError(bad, /Unknown option '--no-such-flag'/);
    const store = run(["--store", "mongo"]);
    expect((await store.exited).code).to.equal(2);
    expectOneLineError(store, /--store must be one of/);
  });
});

describe("store choice and stack settings for npm start", () => {
  it("lets --store win, then --redis-url / REDIS_URL, then AWS_ENDPOINT_URL_DYNAMODB, else memory", () => {
    const both = { REDIS_URL: "redis://r", AWS_ENDPOINT_URL_DYNAMODB: "http://d" };
    expect(chooseStore("memory", both)).to.deep.equal({ kind: "memory", reason: "--store" });
    expect(chooseStore(undefined, {}, "redis://x")).to.deep.equal({ kind: "redis", reason: "--redis-url" });
    expect(chooseStore(undefined, both).kind).to.equal("redis");
    expect(chooseStore(undefined, { AWS_ENDPOINT_URL_DYNAMODB: "http://d" }).kind).to.equal("dynamodb");
    expect(chooseStore(undefined, { REDIS_URL: "  " }).kind).to.equal("memory");
    expect(chooseStore(undefined, {}).kind).to.equal("memory");
    expect(() => chooseStore("postgres", {})).to.throw(/--store must be one of dynamodb, redis, memory/);
  });

  it("reads the stage and store of Pulumi.<stack>.yaml, and nothing when there is no file", () => {
    const dir = mkdtempSync(join(tmpdir(), "stack-"));
    try {
      writeFileSync(
        join(dir, "Pulumi.qa.yaml"),
        "config:\n  aws:region: eu-west-1\n  websocket-chat:store: redis\n  websocket-chat:stage: v1\n",
      );
      writeFileSync(join(dir, "Pulumi.empty.yaml"), "config:\n  websocket-chat:stage: ''\n");
      writeFileSync(join(dir, "Pulumi.bad.yaml"), "config: [\n");
      expect(readStackSettings(dir, "qa")).to.deep.equal({
        file: join(dir, "Pulumi.qa.yaml"),
        store: "redis",
        stage: "v1",
      });
      expect(readStackSettings(dir, "empty")).to.deep.equal({
        file: join(dir, "Pulumi.empty.yaml"),
        store: undefined,
        stage: undefined,
      });
      expect(readStackSettings(dir, "none")).to.deep.equal({});
      expect(() => readStackSettings(dir, "bad")).to.throw(/cannot read .*Pulumi\.bad\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
