/**
 * The network faults of `npm run bench:faults`, as loopback proxies the handlers really talk through:
 *
 * - {@link TcpFaultProxy} in front of a store: `hang()` stops forwarding in both directions (sockets stay open,
 *   new ones are accepted and left waiting, as with a server that stopped answering), `resume()` forwards
 *   again; `cutAll()` resets every connection (a dropped network path, or the store closing its clients).
 * - {@link ConnectionsFaultProxy} in front of the local gateway's `@connections` endpoint (the handlers'
 *   CALLBACK_URL): passes requests through, or answers like API Gateway under an account throttle (429
 *   `LimitExceededException` past a token bucket, as bench/throttled-endpoint.ts), or fails the posts to chosen
 *   connection ids with 500 `InternalServerErrorException`.
 */
import { Agent, createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, createConnection, createServer as createTcpServer, type Socket } from "node:net";

function listenLoopback(server: { listen(port: number, host: string, cb: () => void): unknown }): Promise<number> {
  return new Promise((resolve, reject) => {
    (server as Server).once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(((server as Server).address() as AddressInfo).port));
  });
}

/** Resets a socket (RST) where Node can, else destroys it. */
function reset(socket: Socket): void {
  const withReset = socket as Socket & { resetAndDestroy?: () => Socket };
  if (typeof withReset.resetAndDestroy === "function" && !socket.destroyed && socket.readyState === "open") {
    withReset.resetAndDestroy();
  } else {
    socket.destroy();
  }
}

interface Pair {
  readonly client: Socket;
  upstream?: Socket;
}

export class TcpFaultProxy {
  private readonly server = createTcpServer((client) => this.accept(client));
  private readonly pairs = new Set<Pair>();
  private hung = false;
  /** Connections accepted while hung, connected upstream on resume. */
  private waiting: Pair[] = [];
  port = 0;
  /** Connections reset by `cutAll()`, over the proxy's life. */
  cut = 0;

  constructor(private readonly upstreamPort: number) {}

  async start(): Promise<this> {
    this.port = await listenLoopback(this.server);
    return this;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  hang(): void {
    this.hung = true;
    for (const pair of this.pairs) {
      pair.client.pause();
      pair.upstream?.pause();
    }
  }

  resume(): void {
    this.hung = false;
    for (const pair of this.pairs) {
      pair.client.resume();
      pair.upstream?.resume();
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const pair of waiting) if (!pair.client.destroyed) this.connectUpstream(pair);
  }

  /** Resets every connection through the proxy, both sides; resolves with how many. */
  cutAll(): number {
    let count = 0;
    for (const pair of this.pairs) {
      count++;
      reset(pair.client);
      if (pair.upstream) reset(pair.upstream);
    }
    this.pairs.clear();
    this.waiting = [];
    this.cut += count;
    return count;
  }

  async stop(): Promise<void> {
    this.resume();
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const pair: Pair = { client };
    this.pairs.add(pair);
    client.on("error", () => {});
    client.once("close", () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (this.hung) {
      client.pause();
      this.waiting.push(pair);
      return;
    }
    this.connectUpstream(pair);
  }

  private connectUpstream(pair: Pair): void {
    const upstream = createConnection({ host: "127.0.0.1", port: this.upstreamPort });
    pair.upstream = upstream;
    upstream.on("error", () => {});
    upstream.once("close", () => pair.client.destroy());
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    if (this.hung) upstream.pause();
    else pair.client.resume();
  }
}

export type ConnectionsFault =
  | { readonly kind: "pass" }
  | { readonly kind: "throttle"; readonly rate: number; readonly burst: number }
  | { readonly kind: "fail"; readonly connectionIds: ReadonlySet<string> };

export interface ConnectionsProxyStats {
  requests: number;
  throttled: number;
  failed: number;
  /** The slowest answer of the gateway to a forwarded request, ms. */
  slowestForwardMs: number;
}

const CONNECTIONS_PATH = /\/(?:@|%40)connections\/([^/?]+)/;

export class ConnectionsFaultProxy {
  private readonly server: Server = createServer((req, res) => this.handle(req, res));
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 512 });
  private fault: ConnectionsFault = { kind: "pass" };
  private tokens = 0;
  private refilledAt = 0;
  /** Where requests go: the gateway's origin, known once it listens. */
  target: URL | undefined;
  port = 0;
  stats: ConnectionsProxyStats = { requests: 0, throttled: 0, failed: 0, slowestForwardMs: 0 };

  async start(): Promise<this> {
    this.server.keepAliveTimeout = 60_000;
    this.port = await listenLoopback(this.server);
    return this;
  }

  /** The CALLBACK_URL the handlers get. */
  callbackUrl(stage: string): string {
    return `http://127.0.0.1:${this.port}/${stage}`;
  }

  set(fault: ConnectionsFault): void {
    this.fault = fault;
    if (fault.kind === "throttle") {
      this.tokens = fault.burst;
      this.refilledAt = performance.now();
    }
  }

  resetStats(): ConnectionsProxyStats {
    const stats = this.stats;
    this.stats = { requests: 0, throttled: 0, failed: 0, slowestForwardMs: 0 };
    return stats;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private admit(rate: number, burst: number): boolean {
    const now = performance.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private answer(res: ServerResponse, status: number, errorType: string, body: string): void {
    res.writeHead(status, {
      "x-amzn-RequestId": `faults-${this.stats.requests}`,
      "x-amzn-ErrorType": errorType,
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
    });
    res.end(body);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const fault = this.fault;
    const isPost = req.method === "POST";
    if (isPost && fault.kind === "throttle" && !this.admit(fault.rate, fault.burst)) {
      this.stats.throttled++;
      req.resume();
      req.once("end", () => this.answer(res, 429, "LimitExceededException", '{"message":"Too Many Requests"}'));
      return;
    }
    if (isPost && fault.kind === "fail") {
      const id = decodeURIComponent(CONNECTIONS_PATH.exec(req.url ?? "")?.[1] ?? "");
      if (fault.connectionIds.has(id)) {
        this.stats.failed++;
        req.resume();
        req.once("end", () =>
          this.answer(res, 500, "InternalServerErrorException", '{"message":"Internal server error"}'),
        );
        return;
      }
    }
    if (!this.target) {
      req.resume();
      this.answer(res, 503, "ServiceUnavailableException", '{"message":"gateway not started"}');
      return;
    }
    const forwarded = performance.now();
    const upstream = request(
      {
        hostname: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        // The gateway refuses a `Host` that is not its own (DNS rebinding); the signature, made for the proxy's
        // host, then no longer verifies, which is why the bench's gateway runs with signature checks off.
        headers: { ...req.headers, host: `${this.target.hostname}:${this.target.port}` },
        agent: this.agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.once("end", () => {
          const took = performance.now() - forwarded;
          if (took > this.stats.slowestForwardMs) this.stats.slowestForwardMs = took;
        });
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) this.answer(res, 502, "BadGatewayException", '{"message":"upstream error"}');
      else res.destroy();
    });
    req.pipe(upstream);
  }
}
