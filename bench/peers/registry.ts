/**
 * The harness's side of the probe handlers: a loopback HTTP server that hands the broadcast route its list of
 * connection ids (`GET /ids`; the harness sets it) and hears from `$disconnect` (`POST /disconnected`) and from a
 * finished broadcast (`POST /broadcasted`). It stands in for the connection table a real app keeps, identically
 * for every target.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface DisconnectReport {
  readonly connectionId?: string;
  readonly eventType?: string;
  readonly routeKey?: string;
  readonly disconnectStatusCode?: number;
}

export interface BroadcastReport {
  readonly seq: string;
  readonly targets: number;
  readonly failed: number;
}

export class Registry {
  ids: readonly string[] = [];
  readonly disconnects: DisconnectReport[] = [];
  readonly broadcasts: BroadcastReport[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<Registry> {
    let registry: Registry | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => registry?.handle(req.method ?? "", req.url ?? "", Buffer.concat(chunks).toString(), res));
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    registry = new Registry(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return registry;
  }

  private handle(method: string, url: string, body: string, res: import("node:http").ServerResponse): void {
    if (method === "GET" && url === "/ids") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(this.ids));
      return;
    }
    try {
      if (method === "POST" && url === "/disconnected") this.disconnects.push(JSON.parse(body) as DisconnectReport);
      else if (method === "POST" && url === "/broadcasted") this.broadcasts.push(JSON.parse(body) as BroadcastReport);
      else res.statusCode = 404;
    } catch {
      res.statusCode = 400;
    }
    res.end();
    for (const wake of this.waiters) wake();
  }

  /** Resolves with the first report `pick` finds within `timeoutMs`, else undefined. */
  until<T>(pick: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const check = () => {
        const found = pick();
        if (found === undefined) return;
        done(found);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (value: T | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      this.waiters.add(check);
      check();
    });
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
