/**
 * `npm run bench:faults`: what clients see when something breaks. For each store (memory, a `redis-server` of
 * its own, DynamoDB on dynalite) the local gateway runs in a child process with the route table's real handlers
 * (bench/fault-gateway.ts); C real `ws` clients connect and join one room; senders send M messages with unique
 * bodies (room-less and room messages, alternating) before, during and after each fault, and every frame is
 * counted (bench/fault-clients.ts). The faults are real events, not mocks:
 *
 * - hang: the store stops answering for `--fault-ms` (redis-server SIGSTOP then SIGCONT; dynalite behind a TCP
 *   proxy that stops forwarding, then forwards again);
 * - drop: every store connection is cut, every 500 ms during the fault (Redis `CLIENT KILL TYPE normal`; the
 *   proxy resets every socket to dynalite);
 * - restart: the store is killed (SIGKILL) and started again on the same port 1 s later, empty (dynalite gets
 *   its table back, empty, as an operator would);
 * - shard: broadcasts are split into worker shards of `--shard-size` ids with nothing posted inline
 *   (FANOUT_INLINE_MAX=0, FANOUT_SHARD_SIZE), and the workers' posts to every other non-sender client fail with
 *   500 from `@connections` for the fault (the code offers no hook to fail a shard itself);
 * - throttle: `@connections` answers 429 `LimitExceededException` past a token bucket of `--throttle-rate` posts/s
 *   (burst `--throttle-burst`) for the fault, as API Gateway's account throttle does.
 *
 * The memory store lives inside the gateway process: it cannot hang, drop or restart on its own, and those rows
 * say n/a. Everything is on 127.0.0.1; every wait is bounded; every child process is stopped on any exit.
 *
 *   npm run bench:faults
 *   npm run bench:faults -- --stores redis --faults hang,restart --clients 20 --messages 50
 *   npm run bench:faults -- --help
 */
import { type ChildProcess, fork } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import * as path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { ENV } from "../contract/env";
import { type BenchClient, openBenchClient, type Phase, type SentMessage, Tally } from "./fault-clients";
import type { GatewayStart } from "./fault-gateway";
import { ConnectionsFaultProxy, type ConnectionsFaultProxy as ConnectionsProxy, TcpFaultProxy } from "./fault-proxies";
import { detail, type PhaseFigures, type RunResult, TABLE_HEAD, tableRow } from "./fault-report";
import { children, DynaliteProcess, killAllChildren, RedisProcess, stopChild, track } from "./fault-stores";

type StoreName = "memory" | "redis" | "dynamodb";
type FaultName = "hang" | "drop" | "restart" | "shard" | "throttle";
const STORES: readonly StoreName[] = ["memory", "redis", "dynamodb"];
const FAULTS: readonly FaultName[] = ["hang", "drop", "restart", "throttle", "shard"];

interface Options {
  stores: StoreName[];
  faults: FaultName[];
  clients: number;
  senders: number;
  messages: number;
  phaseMs: number;
  faultMs: number;
  settleMs: number;
  dropEveryMs: number;
  downMs: number;
  shardSize: number;
  throttleRate: number;
  throttleBurst: number;
  maxSeconds: number;
  json?: string;
  handlerLog?: string;
}

const HELP = `npm run bench:faults -- [options]
  --stores memory,redis,dynamodb   stores (default all three)
  --faults ${FAULTS.join(",")}   faults (default all)
  --clients 20                     WebSocket clients per run, all in one room
  --senders 5                      of them, how many send (round robin)
  --messages 50                    messages per phase (before, during, after), room-less and room alternating
  --phase-ms 3000                  length of the before and after phases
  --fault-ms 3000                  length of the fault phase (how long a store hangs, a throttle lasts, ...)
  --settle-ms 10000                after the last send, wait at most this long for answers and deliveries
  --drop-every-ms 500              drop: cut the store's connections this often during the fault
  --down-ms 1000                   restart: how long the store is down
  --shard-size 10                  shard: FANOUT_SHARD_SIZE (FANOUT_INLINE_MAX is 0)
  --throttle-rate 100              throttle: @connections posts admitted per second
  --throttle-burst 20              throttle: token-bucket depth
  --max-seconds 600                abort (and stop every child) past this
  --json file                      also write every figure as JSON
  --handler-log file               also append the handlers' log lines to this file`;

function parseOptions(argv: string[]): Options {
  const options: Options = {
    stores: [...STORES],
    faults: [...FAULTS],
    clients: 20,
    senders: 5,
    messages: 50,
    phaseMs: 3000,
    faultMs: 3000,
    settleMs: 10_000,
    dropEveryMs: 500,
    downMs: 1000,
    shardSize: 10,
    throttleRate: 100,
    throttleBurst: 20,
    maxSeconds: 600,
  };
  const ints: Record<string, keyof Options> = {
    "--clients": "clients",
    "--senders": "senders",
    "--messages": "messages",
    "--phase-ms": "phaseMs",
    "--fault-ms": "faultMs",
    "--settle-ms": "settleMs",
    "--drop-every-ms": "dropEveryMs",
    "--down-ms": "downMs",
    "--shard-size": "shardSize",
    "--throttle-rate": "throttleRate",
    "--throttle-burst": "throttleBurst",
    "--max-seconds": "maxSeconds",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const list = <T extends string>(allowed: readonly T[]): T[] => {
      const items = value().split(",") as T[];
      for (const item of items) if (!allowed.includes(item)) throw new Error(`${arg}: unknown "${item}"`);
      return items;
    };
    if (arg === "--help" || arg === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (arg === "--stores" || arg === "--store") options.stores = list(STORES);
    else if (arg === "--faults" || arg === "--fault") options.faults = list(FAULTS);
    else if (arg === "--json") options.json = value();
    else if (arg === "--handler-log") options.handlerLog = value();
    else if (ints[arg]) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${arg} must be a positive integer`);
      (options as unknown as Record<string, number>)[ints[arg]] = n;
    } else throw new Error(`unknown option ${arg}\n${HELP}`);
  }
  if (options.clients < 2) throw new Error("--clients must be at least 2");
  options.senders = Math.min(options.senders, options.clients - 1);
  // Bounds that keep the run bounded whatever is asked.
  if (options.clients > 500 || options.messages > 2000) throw new Error("at most 500 clients and 2000 messages");
  return options;
}

const STAGE = "faults";
const ROOM = "faults";
const SETUP_TIMEOUT_MS = 10_000;
/** Before a run, how long the previous run's invocations may take to finish. */
const IDLE_TIMEOUT_MS = 20_000;
/** Between the before phase and the fault, how long its messages may take to be answered and delivered. */
const GAP_MS = 3000;
const ANSWER_WITHIN_MS = [2000, 10_000] as const;
/** Once every sender has its answer (or waited 10 s), settling ends after this long without a delivery. */
const QUIET_MS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The handlers' limits: high enough that no rate limit rejects the bench's messages (the faults are the point). */
const NO_RATE_LIMITS: Record<string, string> = {
  [ENV.RATE_LIMIT_MESSAGES]: "1000000",
  // Limits that newer versions of the handlers read (0 turns each off); today's code ignores them.
  RATE_LIMIT_USER_MESSAGES: "0",
  RATE_LIMIT_BROADCASTS: "0",
  MAX_CONNECTIONS_PER_USER: "0",
};

// ---------------------------------------------------------------------------------------------------------------
// The gateway under test, in a child process.

interface HandlerLogTally {
  /** `level:message` of warn and error lines → count. */
  readonly problems: Map<string, number>;
  /** Worker shards run ("broadcast shard" lines). */
  shards: number;
  /** Sums of the fan-out summaries' counters (inline and shards): failed, retried, throttled, timedOut, ... */
  readonly fanOut: Map<string, number>;
}

/** The counters of the fan-out's summary log lines (docs/fan-out.md) that the bench adds up. */
const FAN_OUT_COUNTERS = ["failed", "expired", "retried", "throttled", "timedOut", "gone", "dispatched"];

const newLogTally = (): HandlerLogTally => ({ problems: new Map(), shards: 0, fanOut: new Map() });

interface GatewayChild {
  url: string;
  logs: HandlerLogTally;
  /** Resolves once the gateway has no connection and no running invocation, or after `maxMs`; false then. */
  idle(maxMs: number): Promise<boolean>;
  /** The longest stall of the gateway process's event loop since the last call, ms. */
  maxLagMs(): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function startGatewayChild(
  env: Record<string, string>,
  proxy: ConnectionsProxy,
  logFile: string | undefined,
): Promise<GatewayChild> {
  // The child's environment: this process's, without any of the contract's variables a shell may have set.
  const childEnv: Record<string, string | undefined> = { ...process.env };
  for (const name of [...Object.values(ENV), ...Object.keys(NO_RATE_LIMITS)]) delete childEnv[name];
  childEnv.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  childEnv.LOG_LEVEL = "info";
  const child: ChildProcess = track(
    fork(path.join(__dirname, "fault-gateway.ts"), [], {
      execArgv: ["--require", "tsx/cjs"],
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    }),
  );
  const tracked = () =>
    new Promise<Tracked | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), 2000);
      const onMessage = (message: { type?: string } & Tracked) => {
        if (message.type === "tracked") done(message);
      };
      const done = (value: Tracked | undefined) => {
        clearTimeout(timer);
        child.off("message", onMessage);
        resolve(value);
      };
      child.on("message", onMessage);
      if (child.connected) child.send({ type: "tracked" });
    });
  const gateway: GatewayChild = {
    url: "",
    logs: newLogTally(),
    stop: () => stopGateway(child),
    maxLagMs: async () => (await tracked())?.maxLagMs,
    async idle(maxMs) {
      const deadline = performance.now() + maxMs;
      while (performance.now() < deadline) {
        const now = await tracked();
        if (now && now.connections === 0 && now.invocations === 0) return true;
        await sleep(100);
      }
      return false;
    },
  };
  let partial = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) tallyLogLine(gateway.logs, line);
    if (logFile && lines.length > 0) appendFileSync(logFile, `${lines.join("\n")}\n`);
  });
  // What the store clients print themselves (ioredis' "connect ECONNREFUSED", ...): counted, not shown.
  child.stderr?.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      const text = line.trim().slice(0, 80);
      if (text) gateway.logs.problems.set(`stderr: ${text}`, (gateway.logs.problems.get(`stderr: ${text}`) ?? 0) + 1);
    }
  });
  const listening = new Promise<{ port: number; url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the gateway child did not listen within 30 s")), 30_000);
    child.on("message", (message: { type?: string; port: number; url: string }) => {
      if (message.type !== "listening") return;
      clearTimeout(timer);
      resolve(message);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the gateway child exited (${code}) before listening`));
    });
  });
  const start: GatewayStart = { type: "start", env, callbackUrl: proxy.callbackUrl(STAGE), stage: STAGE };
  child.send(start);
  try {
    const { port, url } = await listening;
    proxy.target = new URL(`http://127.0.0.1:${port}`);
    gateway.url = url;
    return gateway;
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }

  function tallyLogLine(logs: HandlerLogTally, line: string): void {
    if (!line.startsWith("{")) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (entry.message === "broadcast shard") logs.shards++;
    for (const counter of FAN_OUT_COUNTERS) {
      const value = entry[counter];
      if (typeof value === "number" && value > 0) logs.fanOut.set(counter, (logs.fanOut.get(counter) ?? 0) + value);
    }
    if (entry.level === "warn" || entry.level === "error") {
      const key = `${entry.level}: ${String(entry.message)}`;
      logs.problems.set(key, (logs.problems.get(key) ?? 0) + 1);
    }
  }
}

interface Tracked {
  readonly connections: number;
  readonly invocations: number;
  readonly maxLagMs: number;
}

function stopGateway(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  if (child.connected) child.send({ type: "stop" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 12_000);
  return exited.finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------------------
// The stores and their faults.

interface StoreUnderTest {
  readonly name: StoreName;
  /** The store's part of the handlers' environment. */
  readonly env: Record<string, string>;
  /** Why a fault cannot be produced for this store, or undefined when it can. */
  notApplicable(fault: FaultName): string | undefined;
  hang(): void;
  resume(): void;
  drop(): Promise<number>;
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

function memoryStore(): StoreUnderTest {
  const inside = "the memory store is inside the gateway process";
  const reasons: Partial<Record<FaultName, string>> = {
    hang: `${inside}: it cannot hang without the gateway`,
    drop: `${inside}: it has no connections`,
    restart: `${inside}: restarting it restarts the gateway`,
  };
  return {
    name: "memory",
    env: { [ENV.STORE]: "memory" },
    notApplicable: (fault) => reasons[fault],
    hang() {},
    resume() {},
    drop: async () => 0,
    restart: async () => {},
    stop: async () => {},
  };
}

async function redisStore(): Promise<StoreUnderTest> {
  const redis = await RedisProcess.create();
  return {
    name: "redis",
    env: { [ENV.STORE]: "redis", [ENV.REDIS_URL]: redis.url },
    notApplicable: () => undefined,
    hang: () => redis.hang(),
    resume: () => redis.resume(),
    drop: () => redis.dropClients(),
    restart: (downMs) => redis.restart(downMs),
    stop: () => redis.stop(),
  };
}

async function dynamoStore(): Promise<StoreUnderTest> {
  const tableName = "faults-connections";
  const dynalite = await DynaliteProcess.create(tableName);
  const proxy = await new TcpFaultProxy(dynalite.port).start();
  return {
    name: "dynamodb",
    env: { [ENV.STORE]: "dynamodb", [ENV.TABLE_NAME]: tableName, [ENV.AWS_ENDPOINT_URL_DYNAMODB]: proxy.endpoint },
    notApplicable: () => undefined,
    hang: () => proxy.hang(),
    resume: () => proxy.resume(),
    drop: async () => proxy.cutAll(),
    restart: async (downMs) => {
      // Connections to the dead process are reset by it; the proxy's own sockets to the clients go with them.
      await dynalite.restart(downMs);
    },
    stop: async () => {
      await proxy.stop();
      await dynalite.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One run: fresh clients, three phases, the fault in the middle one.

const emptyFigures = (): PhaseFigures => ({
  sent: 0,
  expected: 0,
  delivered: 0,
  lost: 0,
  duplicates: 0,
  answered: 0,
  waitsMs: [],
  noAnswerWithin2s: 0,
  noAnswerWithin10s: 0,
  incomplete: 0,
  incompleteReported2s: 0,
});

interface RunContext {
  readonly options: Options;
  readonly store: StoreUnderTest;
  readonly fault: FaultName;
  readonly gateway: GatewayChild;
  readonly proxy: ConnectionsFaultProxy;
  readonly runIndex: number;
}

async function openClients(ctx: RunContext, tally: Tally, problems: string[]): Promise<BenchClient[]> {
  const opened = await Promise.allSettled(
    Array.from({ length: ctx.options.clients }, (_, i) => openBenchClient(ctx.gateway.url, i, tally, SETUP_TIMEOUT_MS)),
  );
  const clients: BenchClient[] = [];
  for (const result of opened) {
    if (result.status === "fulfilled") clients.push(result.value);
    else problems.push(`connect: ${(result.reason as Error).message}`);
  }
  await Promise.all(
    clients.map(async (client) => {
      const who = (await client.ask({ action: "whoami" }, (f) => f.type === "whoami", SETUP_TIMEOUT_MS)) as
        | { connectionId?: string }
        | undefined;
      client.connectionId = who?.connectionId;
      if (!who) problems.push(`client ${client.index}: no whoami answer`);
      const members = await client.ask(
        { action: "join", room: ROOM },
        (f) => (f.type === "members" && f.room === ROOM) || f.type === "error",
        SETUP_TIMEOUT_MS,
      );
      client.joined = (members as { type?: string } | undefined)?.type === "members";
      if (!client.joined) problems.push(`client ${client.index}: join failed (${JSON.stringify(members)})`);
    }),
  );
  // Presence frames of the joins settle before the first message.
  const quietSince = performance.now();
  while (performance.now() - quietSince < SETUP_TIMEOUT_MS && performance.now() - tally.lastFrameAt < 300)
    await sleep(50);
  return clients;
}

/** Sends `options.messages` messages over `durationMs`, round robin over the senders, room-less and room alternating. */
async function sendPhase(
  ctx: RunContext,
  clients: BenchClient[],
  senders: BenchClient[],
  tally: Tally,
  phase: Phase,
  durationMs: number,
): Promise<void> {
  const count = ctx.options.messages;
  const interval = durationMs / count;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    await sleep(started + i * interval - performance.now());
    const sender = senders[i % senders.length]!;
    const kind = i % 2 === 0 ? "all" : "room";
    const body = `fx-${ctx.runIndex}-${phase}-${i}`;
    const open = clients.filter((c) => c.closedAt === undefined);
    const audience = (kind === "room" ? open.filter((c) => c.joined) : open).map((c) => c.index);
    const message: SentMessage = {
      body,
      sender: sender.index,
      kind,
      phase,
      sentAt: performance.now(),
      audience,
      received: new Map(),
      ids: new Set(),
    };
    tally.record(message);
    sender.send(
      kind === "room" ? { action: "sendmessage", room: ROOM, data: body } : { action: "sendmessage", data: body },
    );
  }
}

const answerAt = (m: SentMessage): number | undefined =>
  m.echoAt === undefined ? m.errorAt : m.errorAt === undefined ? m.echoAt : Math.min(m.echoAt, m.errorAt);

const isDone = (m: SentMessage): boolean =>
  answerAt(m) !== undefined && m.audience.every((client) => (m.received.get(client) ?? 0) > 0);

/** Waits for answers and deliveries: bounded by `settleMs` after the last send. */
async function settle(ctx: RunContext, tally: Tally, lastSendAt: number): Promise<void> {
  const deadline = lastSendAt + ctx.options.settleMs;
  for (;;) {
    const now = performance.now();
    const messages = [...tally.messages.values()];
    if (messages.every(isDone)) return;
    if (now >= deadline) return;
    const waitingForAnswer = messages.some((m) => answerAt(m) === undefined && now - m.sentAt < ANSWER_WITHIN_MS[1]);
    if (!waitingForAnswer && now - Math.max(lastSendAt, tally.lastDeliveryAt) >= QUIET_MS) return;
    await sleep(50);
  }
}

function figures(tally: Tally): { phases: Record<Phase, PhaseFigures>; total: PhaseFigures } {
  const phases = { before: emptyFigures(), during: emptyFigures(), after: emptyFigures() };
  const total = emptyFigures();
  for (const m of tally.messages.values()) {
    for (const f of [phases[m.phase], total]) {
      f.sent++;
      f.expected += m.audience.length;
      let missing = 0;
      for (const client of m.audience) {
        const got = m.received.get(client) ?? 0;
        if (got > 0) f.delivered++;
        else missing++;
      }
      f.lost += missing;
      for (const got of m.received.values()) if (got > 1) f.duplicates += got - 1;
      const at = answerAt(m);
      const wait = at === undefined ? undefined : at - m.sentAt;
      if (wait !== undefined) {
        f.answered++;
        f.waitsMs.push(wait);
      }
      if (wait === undefined || wait > ANSWER_WITHIN_MS[0]) f.noAnswerWithin2s++;
      if (wait === undefined || wait > ANSWER_WITHIN_MS[1]) f.noAnswerWithin10s++;
      if (missing > 0) {
        f.incomplete++;
        if (m.errorAt !== undefined && m.errorAt - m.sentAt <= ANSWER_WITHIN_MS[0]) f.incompleteReported2s++;
      }
    }
  }
  return { phases, total };
}

/** Runs the fault for the length of the during phase; resolves once it is over and the store is back. */
async function runFault(ctx: RunContext, clients: BenchClient[], senders: BenchClient[], events: string[]) {
  const { options, store, proxy } = ctx;
  const t0 = performance.now();
  const at = () => `${Math.round(performance.now() - t0)} ms`;
  switch (ctx.fault) {
    case "hang":
      store.hang();
      events.push(`${at()}: store hung`);
      await sleep(options.faultMs);
      store.resume();
      events.push(`${at()}: store resumed`);
      return;
    case "drop": {
      const end = t0 + options.faultMs;
      let cut = 0;
      let times = 0;
      while (performance.now() < end) {
        cut += await store.drop();
        times++;
        await sleep(Math.min(options.dropEveryMs, end - performance.now()));
      }
      events.push(`${times} drops over ${options.faultMs} ms, ${cut} connections cut`);
      return;
    }
    case "restart":
      events.push(`${at()}: store killed`);
      await store.restart(options.downMs);
      events.push(`${at()}: store up again (empty)`);
      await sleep(options.faultMs - (performance.now() - t0));
      return;
    case "shard": {
      const senderSet = new Set(senders.map((s) => s.index));
      const victims = clients.filter((c) => !senderSet.has(c.index) && c.index % 2 === 1 && c.connectionId);
      proxy.set({ kind: "fail", connectionIds: new Set(victims.map((c) => c.connectionId!)) });
      events.push(`${at()}: posts to ${victims.length} clients answer 500`);
      await sleep(options.faultMs);
      proxy.set({ kind: "pass" });
      events.push(`${at()}: posts pass again`);
      return;
    }
    case "throttle":
      proxy.set({ kind: "throttle", rate: options.throttleRate, burst: options.throttleBurst });
      events.push(`${at()}: @connections throttled to ${options.throttleRate}/s, burst ${options.throttleBurst}`);
      await sleep(options.faultMs);
      proxy.set({ kind: "pass" });
      events.push(`${at()}: throttle lifted`);
      return;
  }
}

/**
 * A run nobody counts, on a fresh gateway: its first seconds are slow (modules loaded and compiled on first use,
 * clients created, code not yet optimised), which would otherwise land on the first fault's "before" phase.
 */
async function warmUp(ctx: RunContext): Promise<void> {
  const tally = new Tally();
  const clients = await openClients(ctx, tally, []);
  const senders = clients.slice(0, ctx.options.senders);
  if (senders.length > 0) {
    await sendPhase({ ...ctx, options: { ...ctx.options, messages: 10 } }, clients, senders, tally, "before", 500);
    const end = performance.now() + GAP_MS;
    while (performance.now() < end && ![...tally.messages.values()].every(isDone)) await sleep(50);
  }
  await Promise.all(clients.map((c) => c.close(2000)));
  await ctx.gateway.idle(IDLE_TIMEOUT_MS);
}

async function runOne(ctx: RunContext): Promise<RunResult> {
  const started = performance.now();
  const tally = new Tally();
  const setupProblems: string[] = [];
  const faultEvents: string[] = [];
  ctx.gateway.logs = newLogTally();
  ctx.proxy.resetStats();
  // Runs are independent: the previous run's clients are gone and its invocations finished.
  if (!(await ctx.gateway.idle(IDLE_TIMEOUT_MS))) setupProblems.push("the previous run's invocations still running");
  let clients: BenchClient[] = [];
  let error: string | undefined;
  await ctx.gateway.maxLagMs();
  const benchLag = monitorEventLoopDelay({ resolution: 20 });
  benchLag.enable();
  try {
    clients = await openClients(ctx, tally, setupProblems);
    // What setup received is not part of the figures.
    tally.errorCodes.clear();
    tally.otherFrames.clear();
    tally.unattributedErrors = 0;
    const senders = clients.slice(0, ctx.options.senders);
    if (senders.length === 0) throw new Error("no client connected");
    await sendPhase(ctx, clients, senders, tally, "before", ctx.options.phaseMs);
    const gapEnd = performance.now() + GAP_MS;
    while (performance.now() < gapEnd && ![...tally.messages.values()].every(isDone)) await sleep(50);
    const fault = runFault(ctx, clients, senders, faultEvents);
    await sendPhase(ctx, clients, senders, tally, "during", ctx.options.faultMs);
    await fault;
    await sendPhase(ctx, clients, senders, tally, "after", ctx.options.phaseMs);
    await settle(ctx, tally, performance.now());
  } catch (e) {
    error = (e as Error).message;
  } finally {
    // Whatever happened, the store runs again and @connections passes before the next run.
    ctx.store.resume();
    ctx.proxy.set({ kind: "pass" });
  }
  benchLag.disable();
  const maxLagMs = { gateway: await ctx.gateway.maxLagMs(), bench: benchLag.max / 1e6 };
  const clientsClosed = clients.filter((c) => c.closedAt !== undefined).length;
  await Promise.all(clients.map((c) => c.close(2000)));
  const { phases, total } = figures(tally);
  const logs = ctx.gateway.logs;
  return {
    store: ctx.store.name,
    fault: ctx.fault,
    error,
    clients: clients.length,
    setupProblems,
    phases,
    total,
    duplicatesById: tally.duplicatesById,
    framesWithId: tally.framesWithId,
    errorCodes: Object.fromEntries(tally.errorCodes),
    unattributedErrors: tally.unattributedErrors,
    otherFrames: Object.fromEntries(tally.otherFrames),
    clientsClosed,
    faultEvents,
    proxy: ctx.proxy.resetStats(),
    handlerLog: {
      shards: logs.shards,
      fanOut: Object.fromEntries(logs.fanOut),
      problems: Object.fromEntries(logs.problems),
    },
    maxLagMs,
    durationMs: performance.now() - started,
  };
}

// ---------------------------------------------------------------------------------------------------------------

async function runStore(options: Options, name: StoreName, proxy: ConnectionsFaultProxy, results: RunResult[]) {
  const store = name === "memory" ? memoryStore() : name === "redis" ? await redisStore() : await dynamoStore();
  let runIndex = results.length;
  try {
    // Faults that need the split run on a gateway of their own: the handlers read the environment once.
    const groups: { env: Record<string, string>; faults: FaultName[] }[] = [
      { env: {}, faults: options.faults.filter((f) => f !== "shard") },
      {
        env: { [ENV.FANOUT_INLINE_MAX]: "0", [ENV.FANOUT_SHARD_SIZE]: String(options.shardSize) },
        faults: options.faults.filter((f) => f === "shard"),
      },
    ];
    for (const group of groups) {
      const runnable = group.faults.filter((f) => !store.notApplicable(f));
      for (const fault of group.faults.filter((f) => store.notApplicable(f))) {
        const row = { store: name, fault, notApplicable: store.notApplicable(fault) } as RunResult;
        results.push(row);
        console.log(tableRow(row));
      }
      if (runnable.length === 0) continue;
      const env = { ...store.env, ...NO_RATE_LIMITS, ...group.env };
      const gateway = await startGatewayChild(env, proxy, options.handlerLog);
      try {
        await warmUp({ options, store, fault: runnable[0]!, gateway, proxy, runIndex: -1 });
        for (const fault of runnable) {
          const result = await runOne({ options, store, fault, gateway, proxy, runIndex: runIndex++ });
          results.push(result);
          console.log(tableRow(result));
        }
      } finally {
        await gateway.stop();
      }
    }
  } finally {
    await store.stop();
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const watchdog = setTimeout(() => {
    console.error(`bench:faults: over --max-seconds ${options.maxSeconds}; stopping every child`);
    killAllChildren();
    process.exit(1);
  }, options.maxSeconds * 1000);
  watchdog.unref();
  const began = performance.now();
  console.log("## Fault runs");
  console.log(
    `${options.clients} clients in room "${ROOM}", ${options.senders} senders, ${options.messages} messages per phase ` +
      `(room-less and room alternating); phases ${options.phaseMs} / ${options.faultMs} / ${options.phaseMs} ms; ` +
      `settle ≤ ${options.settleMs} ms; node ${process.version}, ${cpus().length} CPUs\n`,
  );
  console.log(TABLE_HEAD);
  const proxy = await new ConnectionsFaultProxy().start();
  const results: RunResult[] = [];
  try {
    for (const store of options.stores) await runStore(options, store, proxy, results);
  } finally {
    await proxy.stop();
  }
  console.log("\nPer phase, what each fault did, and what the handlers logged:\n");
  for (const r of results) {
    const text = detail(r);
    if (text) console.log(text);
  }
  console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(1)} s`);
  if (options.json) writeFileSync(options.json, JSON.stringify({ options, results }, null, 2));
}

process.on("exit", killAllChildren);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}

main().then(
  async () => {
    await Promise.all([...children].map((child) => stopChild(child)));
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    killAllChildren();
    process.exit(1);
  },
);
