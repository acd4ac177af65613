/**
 * One measured run of the bench, in a fresh process (forked by bench/processes.ts): the real `sendmessage`
 * handler ("ours"), the seed's naive fan-out ("baseline") or a plain paced HTTP loop ("ceiling"). Reports wall
 * time, CPU time and peak RSS of this process, and what the store holds afterwards.
 */
import { Agent, request } from "node:http";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { Redis } from "ioredis";
import type { HandlerDeps } from "../chat/deps";
import { inProcessWorkers, withInProcessWorkers } from "../chat/in-process-workers";
import { type ConnectionStore, PROTOCOL_ATTRIBUTE } from "../contract/connection-store";
import { DEFAULT_FANOUT, type FanOutSettings } from "../contract/env";
import { CHAT_PROTOCOL } from "../contract/frames";
import { sendMessage } from "../handlers/send-message";
import { messageEvent } from "../local/events";
import { ConnectionsApi, isGone } from "../runtime/connections-api";
import { Logger } from "../runtime/logger";
import { DynamoDbConnectionStore } from "../stores/dynamodb";
import { MemoryConnectionStore } from "../stores/memory";
import { RedisConnectionStore } from "../stores/redis";
import { localDynamoDbClient } from "../test/support/dynalite";
import { benchId } from "./ids";

export type Mode = "ours" | "baseline" | "ceiling";

export type StoreSpec =
  | { readonly kind: "memory" }
  | { readonly kind: "redis"; readonly url: string; readonly keyPrefix: string }
  | { readonly kind: "dynamodb"; readonly endpoint: string; readonly tableName: string };

export interface RunInput {
  readonly mode: Mode;
  readonly store: StoreSpec;
  readonly n: number;
  readonly seed: string;
  /** `${origin}/${stage}` of the throttled endpoint. */
  readonly callbackUrl: string;
  readonly rate: number;
  readonly burst: number;
  readonly fanOut: Partial<FanOutSettings>;
  readonly payloadBytes: number;
  /** Memory store: every k-th connection is a typed client (0: none). */
  readonly typedEvery?: number;
}

export interface RunOutput {
  readonly wallMs: number;
  readonly cpuMs: number;
  /** Peak RSS of this process during the run, KB (`process.resourceUsage().maxRSS`). */
  readonly peakRssKb: number;
  /** RSS taken by the memory store's own data (seeded before the run), KB; 0 for other stores. */
  readonly storeDataKb: number;
  /** Ids left in the store after the run (stale ones must be gone); -1 when not checked. */
  readonly remaining: number;
  /** `sendmessage`'s summary log lines ("broadcast" and "broadcast shard"). */
  readonly logs: Record<string, unknown>[];
  /** Baseline only: posts whose promise rejected (the seed would have answered 500). */
  readonly rejected?: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function rssKb(): number {
  gc();
  return Math.round(process.memoryUsage().rss / 1024);
}

function openStore(spec: StoreSpec): ConnectionStore {
  switch (spec.kind) {
    case "memory":
      return new MemoryConnectionStore();
    case "redis":
      return new RedisConnectionStore({ url: spec.url, keyPrefix: spec.keyPrefix });
    case "dynamodb":
      return new DynamoDbConnectionStore({ tableName: spec.tableName, client: localDynamoDbClient(spec.endpoint) });
  }
}

async function seedMemory(store: ConnectionStore, input: RunInput): Promise<void> {
  const now = Date.now();
  const k = input.typedEvery ?? 0;
  for (let i = 0; i < input.n; i++) {
    const typed = k > 0 && i % k === k - 1;
    await store.add({
      connectionId: benchId(input.seed, i),
      connectedAt: now,
      expiresAt: now + 3_600_000,
      ...(typed ? { attributes: { [PROTOCOL_ATTRIBUTE]: CHAT_PROTOCOL } } : {}),
    });
  }
}

async function countRemaining(store: ConnectionStore): Promise<number> {
  let count = 0;
  for await (const page of store.list({ pageSize: 1000 })) count += page.length;
  return count;
}

async function ours(input: RunInput, store: ConnectionStore, logs: Record<string, unknown>[]): Promise<void> {
  const fanOut: FanOutSettings = { ...DEFAULT_FANOUT, ...input.fanOut };
  const deps: HandlerDeps = withInProcessWorkers({
    env: { store: store.kind, callbackUrl: input.callbackUrl, connectionTtlSeconds: 7500, fanOut },
    store,
    connections: ConnectionsApi.forEndpoint(input.callbackUrl, {
      timeoutMs: fanOut.postTimeoutMs,
      maxSockets: fanOut.concurrency,
    }),
    log: new Logger({}, "info", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (String(entry.message).startsWith("broadcast")) logs.push(entry);
    }),
  });
  const sender = benchId(input.seed, 0);
  const event = messageEvent(
    {
      connectionId: sender,
      connectedAt: Date.now(),
      stage: "bench",
      apiId: "bench",
      domainName: "127.0.0.1",
      sourceIp: "127.0.0.1",
    },
    "sendmessage",
    JSON.stringify({ action: "sendmessage", data: "x".repeat(input.payloadBytes) }),
  );
  const result = await sendMessage(event, deps);
  if (result.statusCode !== 200) throw new Error(`sendmessage answered ${result.statusCode}: ${JSON.stringify(logs)}`);
  // Shards handed to the in-process worker stand-in are part of the broadcast: wait for them too.
  await inProcessWorkers(deps).idle();
}

/**
 * What the seed (aws-samples/simple-websockets-chat-app) does, with its 410 handling fixed: one unpaginated
 * listing, one unbounded `Promise.all` of posts through a default SDK client (SDK retries, 50 sockets), each 410
 * deleting that target. Timed until every post settled (the seed's Promise.all rejects at the first other error).
 */
async function baseline(input: RunInput, store: ConnectionStore, spec: StoreSpec): Promise<number> {
  let ids: string[];
  if (spec.kind === "dynamodb") {
    const client = localDynamoDbClient(spec.endpoint);
    const page = await client.send(new ScanCommand({ TableName: spec.tableName }));
    ids = (page.Items ?? []).map((item) => item.connectionId!.S!);
    client.destroy();
  } else if (spec.kind === "redis") {
    const redis = new Redis(spec.url);
    ids = await redis.zrange(`{${spec.keyPrefix}}:ids`, "-", "+", "BYLEX");
    redis.disconnect();
  } else {
    ids = [];
    for await (const page of store.list({ pageSize: 1_000_000 })) ids.push(...page);
  }
  const client = new ApiGatewayManagementApiClient({ endpoint: input.callbackUrl });
  const data = Buffer.from("x".repeat(input.payloadBytes));
  const settled = await Promise.allSettled(
    ids.map(async (connectionId) => {
      try {
        await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
      } catch (error) {
        if (isGone(error)) await store.remove(connectionId);
        else throw error;
      }
    }),
  );
  client.destroy();
  return settled.filter((s) => s.status === "rejected").length;
}

/**
 * The ceiling: a plain keep-alive HTTP POST loop that knows the throttle (same rate and burst as the endpoint)
 * and paces itself to it; no signing, no store, no SDK.
 */
async function ceiling(input: RunInput): Promise<void> {
  const url = new URL(input.callbackUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const body = Buffer.from("x".repeat(input.payloadBytes));
  const post = (id: string) =>
    new Promise<number>((resolve) => {
      const req = request(
        {
          hostname: url.hostname,
          port: url.port,
          method: "POST",
          path: `${url.pathname}/@connections/${encodeURIComponent(id)}`,
          headers: { "content-length": body.byteLength, "content-type": "application/octet-stream" },
          agent,
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", () => resolve(0));
      req.end(body);
    });
  // A client-side token bucket with the server's parameters, started slightly below full to absorb clock skew.
  let tokens = input.burst * 0.95;
  let last = performance.now();
  let next = 0;
  const retry: string[] = [];
  let inFlight = 0;
  let done: (() => void) | undefined;
  while (next < input.n || retry.length > 0 || inFlight > 0) {
    const now = performance.now();
    tokens = Math.min(input.burst, tokens + ((now - last) * input.rate) / 1000);
    last = now;
    while (tokens >= 1 && (retry.length > 0 || next < input.n)) {
      tokens--;
      const id = retry.pop() ?? benchId(input.seed, next++);
      inFlight++;
      void post(id).then((status) => {
        inFlight--;
        if (status === 429 || status === 0) retry.push(id);
        done?.();
      });
    }
    if (next >= input.n && retry.length === 0) {
      // Only answers are outstanding: wait for one (it may bring a retry back).
      if (inFlight > 0) await new Promise<void>((resolve) => (done = resolve));
      done = undefined;
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
  agent.destroy();
}

async function run(input: RunInput): Promise<RunOutput> {
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "bench";
  process.env.AWS_SECRET_ACCESS_KEY ??= "bench";
  const store = input.mode === "ceiling" ? undefined : openStore(input.store);
  let storeDataKb = 0;
  if (store?.kind === "memory") {
    const before = rssKb();
    await seedMemory(store, input);
    storeDataKb = Math.max(0, rssKb() - before);
  }
  const logs: Record<string, unknown>[] = [];
  let rejected: number | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (input.mode === "ours") await ours(input, store!, logs);
  else if (input.mode === "baseline") rejected = await baseline(input, store!, input.store);
  else await ceiling(input);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const peakRssKb = process.resourceUsage().maxRSS;
  const remaining = store ? await countRemaining(store) : -1;
  await store?.close();
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, peakRssKb, storeDataKb, remaining, logs, rejected };
}

if (require.main === module) {
  process.on("message", (message: { type: string; input: RunInput }) => {
    if (message.type !== "run") return;
    run(message.input).then(
      (result) => process.send?.({ type: "result", result }, () => process.exit(0)),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
  process.on("disconnect", () => process.exit(0));
}
