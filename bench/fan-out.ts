/**
 * `npm run bench`: the broadcast hot path against a management endpoint that behaves like API Gateway's under
 * load (bench/throttled-endpoint.ts), for N registered connections, three ways in the same run:
 *
 * - ours: the real `sendmessage` handler (handlers/send-message.ts) with the chosen store;
 * - baseline: the seed's fan-out (one unpaginated listing, one unbounded Promise.all through a default SDK
 *   client), with its 410 handling fixed;
 * - ceiling: a plain keep-alive HTTP POST loop that knows the throttle's rate and paces itself to it.
 *
 * Every run is a fresh child process (peak RSS is that run's alone); the endpoint is another process; Redis is a
 * redis-server spawned on a free loopback port, DynamoDB an in-process dynalite. Nothing leaves 127.0.0.1.
 *
 *   npm run bench                                   # memory store, N = 1,000 / 10,000 / 100,000
 *   npm run bench -- --store redis --n 1000,10000   # also: dynamodb; --modes ours,ceiling; --rate 3000
 *   npm run bench -- --help
 */
import { BatchWriteItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ConnectionStore } from "../contract/connection-store";
import { DEFAULT_FANOUT } from "../contract/env";
import { HASH_KEY, TTL_ATTRIBUTE } from "../stores/dynamodb-table";
import { RedisConnectionStore } from "../stores/redis";
import {
  createConnectionsTable,
  localDynamoDbClient,
  startDynalite,
  type TestDynamoDb,
} from "../test/support/dynalite";
import { startRedis, type TestRedis } from "../test/support/redis-server";
import { benchId, isStale, staleCount } from "./ids";
import { type EndpointProcess, runInChild, startEndpointProcess } from "./processes";
import type { Mode, RunInput, RunOutput, StoreSpec } from "./run-one";
import type { EndpointParams, EndpointStats } from "./throttled-endpoint";

interface Options {
  stores: ("memory" | "redis" | "dynamodb")[];
  ns: number[];
  modes: Mode[];
  rate: number;
  burst: number;
  latencyMinMs: number;
  latencyMaxMs: number;
  throttledLatencyMs: number;
  staleEvery: number;
  payloadBytes: number;
  concurrency: number;
  typedEvery: number;
  json?: string;
}

const HELP = `npm run bench -- [options]
  --store memory|redis|dynamodb[,...]   store(s) to run "ours" and "baseline" with (default memory)
  --n 1000,10000,100000                 connection counts (default all three)
  --modes ours,baseline,ceiling         runs per N (default all three)
  --rate 3000                           throttle: admitted requests per second (API Gateway's account default is 10,000)
  --burst <rate/2>                      throttle: token-bucket depth (API Gateway: 5,000 for 10,000/s)
  --latency 20-40                       per-request latency range, ms
  --stale-every 50                      every k-th registered id answers 410 (0: none)
  --payload 100                         bytes of data per message
  --concurrency ${DEFAULT_FANOUT.concurrency}                     FANOUT_CONCURRENCY of "ours"
  --typed-every 0                       memory store: every k-th connection speaks the subprotocol (gets the envelope)
  --json file                           also write every result as JSON`;

function parseArgs(argv: string[]): Options {
  const options: Options = {
    stores: ["memory"],
    ns: [1_000, 10_000, 100_000],
    modes: ["ours", "baseline", "ceiling"],
    rate: 3_000,
    burst: 0,
    latencyMinMs: 20,
    latencyMaxMs: 40,
    throttledLatencyMs: 5,
    staleEvery: 50,
    payloadBytes: 100,
    concurrency: DEFAULT_FANOUT.concurrency,
    typedEvery: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const int = (v: string) => {
      const n = Number(v.replace(/_/g, ""));
      if (!Number.isInteger(n) || n < 0) throw new Error(`${arg}: not a non-negative integer: ${v}`);
      return n;
    };
    switch (arg) {
      case "--help":
      case "-h":
        console.log(HELP);
        return process.exit(0);
      case "--store":
      case "--stores":
        options.stores = value().split(",") as Options["stores"];
        for (const s of options.stores)
          if (!["memory", "redis", "dynamodb"].includes(s)) throw new Error(`unknown store ${s}`);
        break;
      case "--n":
        options.ns = value().split(",").map(int);
        break;
      case "--modes":
        options.modes = value().split(",") as Mode[];
        for (const m of options.modes)
          if (!["ours", "baseline", "ceiling"].includes(m)) throw new Error(`unknown mode ${m}`);
        break;
      case "--rate":
        options.rate = int(value());
        break;
      case "--burst":
        options.burst = int(value());
        break;
      case "--latency": {
        const [min, max] = value().split("-").map(int);
        options.latencyMinMs = min!;
        options.latencyMaxMs = max ?? min!;
        break;
      }
      case "--stale-every":
        options.staleEvery = int(value());
        break;
      case "--payload":
        options.payloadBytes = int(value());
        break;
      case "--concurrency":
        options.concurrency = int(value());
        break;
      case "--typed-every":
        options.typedEvery = int(value());
        break;
      case "--json":
        options.json = value();
        break;
      default:
        throw new Error(`unknown option ${arg}\n${HELP}`);
    }
  }
  if (options.burst === 0) options.burst = Math.round(options.rate / 2);
  if (options.rate < 1) throw new Error("--rate must be positive");
  return options;
}

const SEED = "bench";
const STAGE = "bench";

interface Backend {
  spec(n: number): StoreSpec;
  /** Registers ids 0..n-1 (once per n). */
  seed(n: number): Promise<void>;
  /** Re-registers the stale ids a previous run removed. */
  restoreStale(n: number, staleEvery: number): Promise<void>;
  stop(): Promise<void>;
}

function record(connectionId: string) {
  const now = Date.now();
  return { connectionId, connectedAt: now, expiresAt: now + 3_600_000 };
}

async function addAll(store: ConnectionStore, ids: Iterable<string>, concurrency: number): Promise<void> {
  const iterator = ids[Symbol.iterator]();
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) await store.add(record(next.value));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function* range(n: number, filter: (i: number) => boolean = () => true): Generator<string> {
  for (let i = 0; i < n; i++) if (filter(i)) yield benchId(SEED, i);
}

async function redisBackend(): Promise<Backend> {
  // Always a redis-server of our own on a free port: never a developer's Redis (REDIS_URL is ignored here).
  delete process.env.REDIS_URL;
  const server: TestRedis = await startRedis();
  const stores = new Map<number, RedisConnectionStore>();
  const storeFor = (n: number) => {
    let store = stores.get(n);
    if (!store) stores.set(n, (store = new RedisConnectionStore({ url: server.url, keyPrefix: `bench${n}` })));
    return store;
  };
  return {
    spec: (n) => ({ kind: "redis", url: server.url, keyPrefix: `bench${n}` }),
    seed: (n) => addAll(storeFor(n), range(n), 128),
    restoreStale: (n, k) =>
      addAll(
        storeFor(n),
        range(n, (i) => isStale(i, k)),
        64,
      ),
    stop: async () => {
      for (const store of stores.values()) await store.close();
      await server.stop();
    },
  };
}

async function dynamoBackend(): Promise<Backend> {
  const server: TestDynamoDb = await startDynalite();
  const client: DynamoDBClient = localDynamoDbClient(server.endpoint);
  const table = (n: number) => `bench-${n}`;
  const put = async (n: number, ids: Iterable<string>) => {
    const iterator = ids[Symbol.iterator]();
    const worker = async () => {
      for (;;) {
        const batch: string[] = [];
        while (batch.length < 25) {
          const next = iterator.next();
          if (next.done) break;
          batch.push(next.value);
        }
        if (batch.length === 0) return;
        let requests = batch.map((id) => {
          const r = record(id);
          return {
            PutRequest: {
              Item: {
                [HASH_KEY]: { S: id },
                connectedAt: { N: String(r.connectedAt) },
                expiresAt: { N: String(r.expiresAt) },
                [TTL_ATTRIBUTE]: { N: String(Math.ceil(r.expiresAt / 1000)) },
              },
            },
          };
        });
        while (requests.length > 0) {
          const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table(n)]: requests } }));
          requests = (out.UnprocessedItems?.[table(n)] ?? []) as typeof requests;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  };
  return {
    spec: (n) => ({ kind: "dynamodb", endpoint: server.endpoint, tableName: table(n) }),
    seed: async (n) => {
      await createConnectionsTable(client, table(n));
      await put(n, range(n));
    },
    restoreStale: (n, k) =>
      put(
        n,
        range(n, (i) => isStale(i, k)),
      ),
    stop: async () => {
      client.destroy();
      await server.stop();
    },
  };
}

function memoryBackend(): Backend {
  // The memory store lives in the run's own process, which seeds it (and reports what its data weighs).
  return { spec: () => ({ kind: "memory" }), seed: async () => {}, restoreStale: async () => {}, stop: async () => {} };
}

interface Row {
  store: string;
  n: number;
  mode: Mode;
  expected: number;
  delivered: number;
  duplicates: number;
  throttled: number;
  requests: number;
  wallMs: number;
  postsPerSecond: number;
  idealMs: number;
  peakRssKb: number;
  storeDataKb: number;
  remaining: number;
  staleLeft: number;
  cpuMs: number;
  rejected?: number;
  error?: string;
  summaries: Record<string, unknown>[];
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (kb: number) => fmt(kb / 1024, 0);

async function measure(
  options: Options,
  endpoint: EndpointProcess,
  backend: Backend,
  store: string,
  n: number,
  mode: Mode,
): Promise<Row> {
  const expected = n - staleCount(n, options.staleEvery);
  const idealMs = (n / options.rate) * 1000;
  await endpoint.reset({ seed: SEED, n, staleEvery: options.staleEvery });
  if (mode !== "ceiling") await backend.restoreStale(n, options.staleEvery);
  const input: RunInput = {
    mode,
    store: backend.spec(n),
    n,
    seed: SEED,
    callbackUrl: `${endpoint.origin}/${STAGE}`,
    rate: options.rate,
    burst: options.burst,
    fanOut: { concurrency: options.concurrency },
    payloadBytes: options.payloadBytes,
    typedEvery: options.typedEvery,
  };
  // Bounded: a run that takes 6x its ideal (plus setup) is killed and reported.
  const timeoutMs = 60_000 + 6 * idealMs;
  let output: RunOutput | undefined;
  let error: string | undefined;
  try {
    output = await runInChild<RunInput, RunOutput>(input, timeoutMs);
  } catch (e) {
    error = (e as Error).message;
  }
  const stats: EndpointStats = await endpoint.stats();
  const wallMs = output?.wallMs ?? timeoutMs;
  return {
    store: mode === "ceiling" ? "-" : store,
    n,
    mode,
    expected,
    delivered: stats.deliveredIds,
    duplicates: stats.duplicates,
    throttled: stats.throttled,
    requests: stats.requests,
    wallMs,
    postsPerSecond: ((stats.deliveredIds + stats.goneAnswers - stats.unknown) * 1000) / wallMs,
    idealMs,
    peakRssKb: output?.peakRssKb ?? 0,
    storeDataKb: output?.storeDataKb ?? 0,
    remaining: output?.remaining ?? -1,
    staleLeft: output && output.remaining >= 0 ? output.remaining - expected : -1,
    cpuMs: output?.cpuMs ?? 0,
    rejected: output?.rejected,
    error,
    summaries: output?.logs ?? [],
  };
}

function printRow(row: Row): void {
  const pct = row.expected > 0 ? (100 * row.delivered) / row.expected : 100;
  const rss =
    row.storeDataKb > 0
      ? `${mb(row.peakRssKb)} (${mb(row.peakRssKb - row.storeDataKb)} w/o store data)`
      : mb(row.peakRssKb);
  const notes: string[] = [];
  if (row.duplicates > 0) notes.push(`${fmt(row.duplicates)} duplicates`);
  if (row.rejected) notes.push(`${fmt(row.rejected)} posts rejected`);
  if (row.staleLeft > 0) notes.push(`${fmt(row.staleLeft)} stale ids left in store`);
  if (row.staleLeft < 0 && row.remaining >= 0) notes.push(`${fmt(-row.staleLeft)} live ids removed!`);
  if (row.error) notes.push(`ERROR: ${row.error}`);
  console.log(
    `| ${fmt(row.n)} | ${row.mode} | ${fmt(row.delivered)}/${fmt(row.expected)} (${pct.toFixed(1)}%) | ${(row.wallMs / 1000).toFixed(2)} | ` +
      `${fmt(row.postsPerSecond)} | ${(row.wallMs / row.idealMs).toFixed(2)} | ${rss} | ${fmt(row.throttled)} | ${notes.join("; ")} |`,
  );
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const params: EndpointParams = {
    rate: options.rate,
    burst: options.burst,
    latencyMinMs: options.latencyMinMs,
    latencyMaxMs: options.latencyMaxMs,
    throttledLatencyMs: options.throttledLatencyMs,
    stage: STAGE,
  };
  console.log("## Fan-out bench");
  console.log(
    `endpoint: token bucket ${fmt(options.rate)} req/s, burst ${fmt(options.burst)} (API Gateway account default: 10,000/s, burst 5,000, ` +
      `scaled to this machine); latency ${options.latencyMinMs}-${options.latencyMaxMs} ms; 429 answered in ${options.throttledLatencyMs} ms; ` +
      `every ${options.staleEvery}th id stale (410); payload ${options.payloadBytes} B`,
  );
  console.log(
    `ours: FANOUT_CONCURRENCY=${options.concurrency}, page ${DEFAULT_FANOUT.pageSize}, inline max ${fmt(DEFAULT_FANOUT.inlineMax)}, ` +
      `shard ${fmt(DEFAULT_FANOUT.shardSize)} (shards run in-process); ideal = N / rate; node ${process.version}, ` +
      `${require("node:os").cpus().length} CPUs`,
  );
  const endpoint = await startEndpointProcess(params);
  const rows: Row[] = [];
  const stop = async () => {
    await endpoint.stop();
  };
  process.once("SIGINT", () => void stop().then(() => process.exit(130)));
  try {
    const ceilings = new Map<number, Row>();
    for (const store of options.stores) {
      const backend =
        store === "redis" ? await redisBackend() : store === "dynamodb" ? await dynamoBackend() : memoryBackend();
      try {
        console.log(`\n### store: ${store}\n`);
        console.log("| N | run | delivered/expected | wall s | posts/s | wall/ideal | peak RSS MB | 429s | notes |");
        console.log("|---|---|---|---|---|---|---|---|---|");
        for (const n of options.ns) {
          const seeded = Date.now();
          await backend.seed(n);
          if (store !== "memory")
            console.error(`(seeded ${fmt(n)} ids into ${store} in ${((Date.now() - seeded) / 1000).toFixed(1)} s)`);
          const byMode = new Map<Mode, Row>();
          for (const mode of options.modes) {
            // The ceiling does not depend on the store: measured once per N.
            const row =
              mode === "ceiling" && ceilings.has(n)
                ? ceilings.get(n)!
                : await measure(options, endpoint, backend, store, n, mode);
            if (mode === "ceiling") ceilings.set(n, row);
            byMode.set(mode, row);
            rows.push({ ...row, store: mode === "ceiling" ? row.store : store });
            printRow(row);
          }
          const ours = byMode.get("ours");
          const ratios: string[] = [];
          if (ours && byMode.get("baseline")) {
            const b = byMode.get("baseline")!;
            ratios.push(
              `ours/baseline time ${(ours.wallMs / b.wallMs).toFixed(2)} (throughput x${(ours.postsPerSecond / b.postsPerSecond).toFixed(2)})`,
            );
          }
          if (ours && byMode.get("ceiling")) {
            const c = byMode.get("ceiling")!;
            ratios.push(`ours/ceiling time ${(ours.wallMs / c.wallMs).toFixed(2)}`);
          }
          if (ours) ratios.push(`ours/ideal ${(ours.wallMs / ours.idealMs).toFixed(2)}`);
          if (ratios.length > 0) console.log(`| ${fmt(n)} | ratios | ${ratios.join("; ")} | | | | | | |`);
        }
        const oursRows = rows.filter((r) => r.store === store && r.mode === "ours" && r.peakRssKb > 0);
        if (oursRows.length >= 2) {
          const first = oursRows[0]!;
          const last = oursRows[oursRows.length - 1]!;
          const net = (r: Row) => r.peakRssKb - r.storeDataKb;
          console.log(
            `\npeak RSS of ours, N=${fmt(last.n)} vs N=${fmt(first.n)}: x${(net(last) / net(first)).toFixed(2)}` +
              (store === "memory" ? " (memory store's own data excluded)" : ""),
          );
          const cpuPerPost = (last.cpuMs * 1000) / Math.max(1, last.delivered);
          console.log(
            `CPU of ours at N=${fmt(last.n)}: ${cpuPerPost.toFixed(0)} µs per delivered post ` +
              `(~${fmt(1e6 / cpuPerPost)} posts/s per core of this machine, store and in-process shards included)`,
          );
        }
      } finally {
        await backend.stop();
      }
    }
  } finally {
    await stop();
  }
  if (options.json) {
    const { writeFileSync } = await import("node:fs");
    writeFileSync(options.json, JSON.stringify({ options, params, rows }, null, 2));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
