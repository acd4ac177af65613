/**
 * A loopback `@connections` endpoint that behaves like API Gateway's under load, for `npm run bench`:
 * - every answer takes tens of ms (uniform in [latencyMinMs, latencyMaxMs]);
 * - an account-level token bucket (`rate` per second, `burst` deep) admits requests; past it the answer is
 *   429 `LimitExceededException`, quickly (`throttledLatencyMs`), as API Gateway rejects before integration;
 * - admitted posts to a stale id answer 410 `GoneException` (empty body); others 200, and are counted per id.
 *
 * It runs in its own process (`fork` this file), so the handler's process is measured alone: CPU, RSS and the
 * event loop are not shared with the server. The parent drives it over IPC: `start`, `reset` (ids of the next run),
 * `stats`, `stop`.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { benchId, isStale } from "./ids";

export interface EndpointParams {
  /** Steady-state admitted requests per second (API Gateway's account default: 10,000). */
  readonly rate: number;
  /** Token-bucket depth (API Gateway's account default: 5,000). */
  readonly burst: number;
  readonly latencyMinMs: number;
  readonly latencyMaxMs: number;
  /** Delay of a 429 answer. */
  readonly throttledLatencyMs: number;
  readonly stage: string;
  /** PEM key and certificate: serve HTTPS (as API Gateway does) instead of HTTP. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export interface RunIds {
  readonly seed: string;
  readonly n: number;
  readonly staleEvery: number;
}

export interface EndpointStats {
  readonly requests: number;
  /** Ids that got at least one 200. */
  readonly deliveredIds: number;
  /** 200s beyond the first for an id (a correct fan-out has none). */
  readonly duplicates: number;
  readonly goneAnswers: number;
  readonly throttled: number;
  /** Posts to ids that are not part of the run. */
  readonly unknown: number;
  readonly maxInFlight: number;
  /** Time between the first request and the last answer of the run, ms. */
  readonly activeMs: number;
  readonly bytes: number;
}

type Message =
  | { type: "start"; params: EndpointParams }
  | ({ type: "reset" } & RunIds)
  | { type: "stats" }
  | { type: "stop" };

function endpointServer(params: EndpointParams) {
  let index = new Map<string, number>();
  let stale = new Uint8Array(0);
  let counts = new Uint32Array(0);
  let stats = { requests: 0, goneAnswers: 0, throttled: 0, unknown: 0, inFlight: 0, maxInFlight: 0, bytes: 0 };
  let firstAt = 0;
  let lastAt = 0;
  let tokens = params.burst;
  let refilledAt = performance.now();
  let requestSeq = 0;

  const admit = (): boolean => {
    const now = performance.now();
    tokens = Math.min(params.burst, tokens + ((now - refilledAt) * params.rate) / 1000);
    refilledAt = now;
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    return false;
  };

  const reply = (res: ServerResponse, status: number, errorType?: string, body = "") => {
    const headers: Record<string, string | number> = {
      "x-amzn-RequestId": `bench-${++requestSeq}`,
      "Content-Length": Buffer.byteLength(body),
    };
    if (errorType) headers["x-amzn-ErrorType"] = errorType;
    if (body) headers["Content-Type"] = "application/json";
    res.writeHead(status, headers).end(body);
    lastAt = performance.now();
  };

  const pathPattern = new RegExp(`^/${params.stage}/(?:@|%40)connections/([^/?]+)$`);

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    if (firstAt === 0) firstAt = performance.now();
    stats.inFlight++;
    if (stats.inFlight > stats.maxInFlight) stats.maxInFlight = stats.inFlight;
    res.on("close", () => stats.inFlight--);
    let bytes = 0;
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      stats.bytes += bytes;
      if (!admit()) {
        stats.throttled++;
        setTimeout(() => reply(res, 429, "LimitExceededException", "{}"), params.throttledLatencyMs);
        return;
      }
      const latency = params.latencyMinMs + Math.random() * (params.latencyMaxMs - params.latencyMinMs);
      setTimeout(() => {
        const match = pathPattern.exec(req.url ?? "");
        if (!match || req.method !== "POST") return reply(res, 403, "ForbiddenException", '{"message":"Forbidden"}');
        const id = decodeURIComponent(match[1]!);
        const i = index.get(id);
        if (i === undefined) {
          stats.unknown++;
          stats.goneAnswers++;
          return reply(res, 410, "GoneException");
        }
        if (stale[i]) {
          stats.goneAnswers++;
          return reply(res, 410, "GoneException");
        }
        counts[i]!++;
        return reply(res, 200);
      }, latency);
    });
  };

  const server = params.tls
    ? createHttpsServer({ key: params.tls.key, cert: params.tls.cert }, handle)
    : createHttpServer(handle);
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.maxRequestsPerSocket = 0;

  return {
    server,
    reset(run: RunIds) {
      index = new Map();
      stale = new Uint8Array(run.n);
      counts = new Uint32Array(run.n);
      for (let i = 0; i < run.n; i++) {
        index.set(benchId(run.seed, i), i);
        if (isStale(i, run.staleEvery)) stale[i] = 1;
      }
      stats = {
        requests: 0,
        goneAnswers: 0,
        throttled: 0,
        unknown: 0,
        inFlight: stats.inFlight,
        maxInFlight: 0,
        bytes: 0,
      };
      firstAt = 0;
      lastAt = 0;
      // A fresh, full bucket per run: every run starts from the same state.
      tokens = params.burst;
      refilledAt = performance.now();
    },
    stats(): EndpointStats {
      let deliveredIds = 0;
      let duplicates = 0;
      for (const c of counts) {
        if (c > 0) deliveredIds++;
        if (c > 1) duplicates += c - 1;
      }
      const { requests, goneAnswers, throttled, unknown, maxInFlight, bytes } = stats;
      return {
        requests,
        deliveredIds,
        duplicates,
        goneAnswers,
        throttled,
        unknown,
        maxInFlight,
        bytes,
        activeMs: firstAt === 0 ? 0 : Math.round(lastAt - firstAt),
      };
    },
  };
}

// Child-process entry point.
if (require.main === module) {
  let endpoint: ReturnType<typeof endpointServer> | undefined;
  const send = (message: unknown) => process.send?.(message);
  process.on("message", (message: Message) => {
    switch (message.type) {
      case "start":
        endpoint = endpointServer(message.params);
        endpoint.server.listen(0, "127.0.0.1", () => {
          send({ type: "listening", port: (endpoint!.server.address() as AddressInfo).port });
        });
        return;
      case "reset":
        endpoint!.reset(message);
        send({ type: "reset-done" });
        return;
      case "stats":
        send({ type: "stats", stats: endpoint!.stats() });
        return;
      case "stop":
        endpoint?.server.closeAllConnections();
        endpoint?.server.close();
        process.exit(0);
    }
  });
  // Never outlive the bench: an orphaned endpoint would hold its port and a core.
  process.on("disconnect", () => process.exit(0));
}
