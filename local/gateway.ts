/**
 * LocalGateway: API Gateway's WebSocket API on one machine, invoking the same handlers as Lambda, in process.
 * Behaviour follows API Gateway's documented and observed semantics (docs/local-gateway.md). This file is
 * the lifecycle (start, stop) and the composition of its parts, each of which documents its share:
 *
 * - http-server.ts: one port; `ws://HOST:PORT/{stage}` upgrades, `/{stage}/@connections/{id}` (the management
 *   API, connections-endpoint.ts), `/` (the browser client).
 * - handshake.ts: path and request checks, the `$connect` authorizer (connect-authorizer.ts), `$connect` and
 *   its status semantics (handshake-response.ts).
 * - connection.ts: a connection's states, its idle and maximum-duration timers, `$disconnect` exactly once;
 *   connection-socket.ts: frame limits (limits.ts, frame-guard.ts) and protocol errors of an open socket.
 * - route-dispatch.ts: messages to routes and API Gateway's error frames; invocation.ts: the integration timeout.
 * - gateway-log.ts: the log lines.
 *
 * Handlers: by default the route table's exported `handler`s, which read the Lambda environment contract from
 * `process.env` once per process: handler-env.ts installs it (from `env`, with CALLBACK_URL = this gateway), so
 * only one such gateway can run per process. Tests that need several gateways inject handlers built around
 * explicit dependencies instead.
 */
import type { Server } from "node:http";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { WebSocket } from "ws";
import { ROUTE_SELECTION_EXPRESSION } from "../contract/routes";
import { type AuthorizerHandler, type IdentitySource, methodArnOf, parseIdentitySources } from "./authorizer";
import { ConnectAuthorizer } from "./connect-authorizer";
import { Connection, type ConnectionHooks } from "./connection";
import { attachSocket } from "./connection-socket";
import type { ManagedConnection } from "./connections-endpoint";
import { type SignatureVerdict, verifyConnectionsSignature } from "./connections-signature";
import { delay } from "./delay";
import type { ConnectionContext } from "./events";
import { type GatewayLog, gatewayLog } from "./gateway-log";
import {
  checkStage,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_STAGE,
  type GatewayAddress,
  LOCAL_API_ID,
  type LocalGatewayOptions,
} from "./gateway-options";
import { deployedAuthorizer, handlerRegion, handlerStoreKind, routeTableHandlers, signingSecrets } from "./handler-env";
import { type HandlerModules, loadHandlerModules } from "./handler-modules";
import { HandlerPool, MAX_HANDLER_WORKERS, type SharedStore } from "./handler-pool";
import { Handshakes } from "./handshake";
import { HotReload, reloadableScope } from "./hot-reload";
import { closeServer, createGatewayServer, listen } from "./http-server";
import { InFlight } from "./in-flight";
import { CLOSE, type GatewayLimits, resolveLimits } from "./limits";
import { OriginPolicy, type OriginVerdict } from "./origin-policy";
import { RouteDispatch } from "./route-dispatch";
import { ROUTE_TABLE_PRELOAD, type RouteHandler, type RouteHandlers, routeTableModules } from "./route-handlers";
import { currentMemoryStore, currentRoutes, registryDependents, reloadRouteTable } from "./route-table-reload";
import { deployedSweep, TokenSweepTimer } from "./token-sweep-timer";

export { GatewayListenError } from "./http-server";
export { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_STAGE, type GatewayAddress, LOCAL_API_ID, type LocalGatewayOptions };

/** How long `stop()` lets clients answer the close frame before it drops their sockets. */
const STOP_GRACE_MS = 1000;

/**
 * How long a replaced worker pool may run past the integration timeout: long enough for the fan-out shards its
 * last broadcasts queued (re-queues wait 10, 20 and 40 s).
 */
const RETIRE_GRACE_MS = 90_000;

type GatewayState = "new" | "starting" | "running" | "stopping" | "stopped";

export class LocalGateway {
  readonly stage: string;
  readonly limits: GatewayLimits;
  private readonly host: string;
  private readonly apiId: string;
  private readonly log: GatewayLog;
  private readonly sink: (line: string) => void;
  private hotReload: HotReload | undefined;
  /** Whether the handlers in use have run (so their container was built and a reload must release it). */
  private handlersUsed = false;
  private readonly server: Server;
  private readonly handshakes: Handshakes;
  private readonly connections = new Map<string, Connection>();
  /** Invocations still running (each bounded by the integration timeout); `stop()` waits for them. */
  private readonly work = new InFlight();
  private readonly identitySources: readonly IdentitySource[] | undefined;
  /** Replaced once the handlers are known (at start); no connection exists before. */
  private dispatch: RouteDispatch;
  private authorizer: ConnectAuthorizer | undefined;
  private boundPort: number | undefined;
  /** Known once the port is bound: the gateway's own origin includes it. */
  private originPolicy: OriginPolicy | undefined;
  private secrets: readonly string[] | false = false;
  private state: GatewayState = "new";
  private stopped: Promise<void> | undefined;
  private sweeper: TokenSweepTimer | undefined;
  /** The worker threads the handlers run in, with `handlerWorkers`. */
  private pool: HandlerPool | undefined;
  /** Pools a hot reload replaced, finishing what they run; `stop()` ends them too. */
  private readonly retiring = new Set<HandlerPool>();
  /** The memory store the route table's handlers use, which the workers share (replaced by a reload). */
  private memoryStore: ReturnType<typeof currentMemoryStore>;

  /** The gateway's part in every connection's transitions. */
  private readonly hooks: ConnectionHooks = {
    disconnect: (conn, code, reason) => this.dispatch.disconnect(conn, code, reason),
    closing: (conn, close, detail) => this.log("CLOSE", "-", conn.ctx.connectionId, String(close.code), 0, detail),
    ended: (conn) => this.connections.delete(conn.ctx.connectionId),
  };

  constructor(private readonly options: LocalGatewayOptions = {}) {
    this.stage = checkStage(options.stage ?? DEFAULT_STAGE);
    this.host = options.host ?? DEFAULT_HOST;
    this.apiId = options.apiId ?? LOCAL_API_ID;
    this.limits = resolveLimits(options.limits);
    this.identitySources = options.authorizer ? parseIdentitySources(options.authorizer.identitySources) : undefined;
    if (options.handlers !== undefined && options.handlerModules !== undefined) {
      throw new Error("give handlers or handlerModules, not both");
    }
    const workers = options.handlerWorkers ?? 0;
    if (!Number.isInteger(workers) || workers < 0 || workers > MAX_HANDLER_WORKERS) {
      throw new RangeError(`handlerWorkers must be an integer from 0 to ${MAX_HANDLER_WORKERS}, got ${workers}`);
    }
    this.sink = options.log ?? ((line: string) => console.log(line));
    this.log = gatewayLog(this.sink, options.readableLog);
    this.dispatch = this.dispatchTo({});
    this.handshakes = new Handshakes({
      stage: this.stage,
      apiId: this.apiId,
      log: this.log,
      maxMessageBytes: this.limits.maxMessageBytes,
      port: () => this.port,
      running: () => this.state === "running",
      authorizer: () => this.authorizer,
      checkOrigin: (origin) => this.checkOrigin(origin),
      invokeConnect: (event) => this.dispatch.connect(event),
      register: (ctx) => this.register(ctx),
      opened: (conn, ws, socket) => this.opened(conn, ws, socket),
    });
    this.server = createGatewayServer({
      stage: this.stage,
      maxPostBytes: this.limits.maxPostBytes,
      log: this.log,
      lookup: (id) => this.managed(id),
      verifySignature: (req, payloadHash): SignatureVerdict =>
        this.secrets === false
          ? { ok: true, accessKeyId: "-" }
          : verifyConnectionsSignature(req, payloadHash, this.secrets),
      isOwnHost: (host) => this.originPolicy?.isOwnHost(host) ?? false,
      upgrade: (req, socket, head) => this.handshakes.upgrade(req, socket, head),
    });
  }

  /** The bound port (after `start()`). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error("the gateway is not listening");
    return this.boundPort;
  }

  /** `ws://localhost:PORT/{stage}`, what clients connect to. */
  get url(): string {
    return `ws://${displayHost(this.host)}:${this.port}/${this.stage}`;
  }

  /** `http://localhost:PORT/`, the web client's page (its origin is the gateway's own, origin-policy.ts). */
  get webClientUrl(): string {
    return `http://${displayHost(this.host)}:${this.port}/`;
  }

  /** The interface the gateway listens on (as given: `127.0.0.1`, `0.0.0.0`, ...). */
  get listenHost(): string {
    return this.host;
  }

  /** `http://127.0.0.1:PORT/{stage}`, the `@connections` endpoint (CALLBACK_URL). */
  get callbackUrl(): string {
    return `http://${loopbackHost(this.host)}:${this.port}/${this.stage}`;
  }

  /** Sizes of the gateway's internal tables: all zero once every client has gone and every handler returned. */
  get tracked(): { readonly connections: number; readonly invocations: number; readonly handshakes: number } {
    return { connections: this.connections.size, invocations: this.work.size, handshakes: this.handshakes.size };
  }

  /** Ids of open connections (handshake done, not closing). */
  openConnectionIds(): string[] {
    return [...this.connections.values()].filter((c) => c.isOpen).map((c) => c.ctx.connectionId);
  }

  async start(): Promise<this> {
    if (this.state !== "new") throw new Error("a LocalGateway can be started once");
    this.state = "starting";
    try {
      this.boundPort = await listen(this.server, this.options.port ?? DEFAULT_PORT, this.host);
      this.originPolicy = new OriginPolicy({ host: this.host, port: this.boundPort }, this.options.allowedOrigins);
      this.secrets = this.options.signingSecrets ?? signingSecrets();
    } catch (error) {
      this.state = "stopped";
      throw error;
    }
    try {
      await this.loadHandlers();
      // stop() was called while the handlers loaded: it could not see the workers yet.
      if (this.state !== "starting") throw new Error("the gateway was stopped while it started");
    } catch (error) {
      await this.pool?.close();
      if (this.state === "starting") {
        this.state = "stopped";
        this.server.closeAllConnections();
        await closeServer(this.server);
      }
      throw error;
    }
    if (this.options.hotReload) this.startHotReload();
    this.state = "running";
    const sweep = this.options.tokenSweep;
    if (sweep && sweep.intervalMs > 0) {
      const run = sweep.run ?? (this.runsRouteTable ? deployedSweep() : undefined);
      if (run) {
        this.sweeper = new TokenSweepTimer(sweep.intervalMs, run, (line) => (this.options.log ?? console.log)(line));
        this.sweeper.start();
      }
    }
    return this;
  }

  /** Resolves once the hot reloads started so far are done. */
  reloadsSettled(): Promise<void> {
    return this.hotReload?.settled() ?? Promise.resolve();
  }

  private startHotReload(): void {
    if (!this.runsRouteTable) throw new Error("hotReload works with the route table's handlers only");
    this.hotReload = new HotReload({
      scope: reloadableScope(join(__dirname, "..")),
      log: this.sink,
      alsoReload: registryDependents,
      reload: async (reloading, previous) => {
        // With workers, new ones load the new code first (the route table as it is now, too) while the previous
        // ones keep serving; if they cannot load, this throws before anything here has changed.
        const pool = this.pool && (await this.startPool(routeTableModules(currentRoutes())));
        let fresh: Awaited<ReturnType<typeof reloadRouteTable>>;
        try {
          // From here to the swap nothing waits on I/O, so no worker's store call can land between the memory
          // store's copy and the switch to it.
          fresh = await reloadRouteTable(reloading, previous, this.authorizer !== undefined, this.memoryStore);
        } catch (error) {
          await pool?.close();
          throw error;
        }
        this.memoryStore = currentMemoryStore();
        const used = this.handlersUsed;
        this.dispatch = pool ? this.dispatchTo(pool.handlers(), false) : this.dispatchTo(fresh.handlers);
        if (pool) this.retirePool(pool);
        if (fresh.authorizer) this.authorizer = this.connectAuthorizer(fresh.authorizer);
        // Events the previous handlers are serving finish on them, as on Lambda after a deploy.
        if (used) void this.work.drained().then(fresh.release);
      },
    }).watch();
  }

  /**
   * Makes `next` the pool events go to; the previous one finishes its invocations and the fan-out shards they
   * queued, for at most the integration timeout plus a grace, then stops.
   */
  private retirePool(next: HandlerPool): void {
    const previous = this.pool;
    this.pool = next;
    if (!previous) return;
    this.retiring.add(previous);
    void previous
      .retire(this.limits.integrationTimeoutMs + RETIRE_GRACE_MS)
      .finally(() => this.retiring.delete(previous));
  }

  /**
   * Closes every connection with 1001 "Going away" (each fires `$disconnect`), waits for running handlers and
   * stops listening. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /** Whether the handlers are the route table's (neither `handlers` nor `handlerModules` given). */
  private get runsRouteTable(): boolean {
    return this.options.handlers === undefined && this.options.handlerModules === undefined;
  }

  /**
   * The route handlers and the authorizer, once the port (hence CALLBACK_URL) is known. With workers, the route
   * table is loaded here too: its modules are what hot reload watches, and the authorizer, the token sweeper and
   * the memory store the workers share run in this thread.
   */
  private async loadHandlers(): Promise<void> {
    const env = this.options.env ?? {};
    const address: GatewayAddress = { port: this.port, stage: this.stage, callbackUrl: this.callbackUrl };
    const modules = this.options.handlerModules;
    const given = modules ? undefined : (this.options.handlers ?? routeTableHandlers(env));
    const inThread = typeof given === "function" ? await given(address) : given;
    if (this.runsRouteTable) this.memoryStore = currentMemoryStore();
    const workers = this.options.handlerWorkers ?? 0;
    if (workers > 0 && (modules || this.runsRouteTable)) {
      this.pool = await this.startPool(modules ?? routeTableModules());
      this.dispatch = this.dispatchTo(this.pool.handlers(), false);
    } else {
      this.dispatch = this.dispatchTo(inThread ?? Object.fromEntries(loadHandlerModules<RouteHandler>(modules ?? {})));
    }
    const authorizer = this.options.authorizer;
    if (!authorizer || !this.identitySources) return;
    // The route table's default already installed `env`; reinstalling would undo its CALLBACK_URL.
    const handler = authorizer.handler ?? deployedAuthorizer(this.runsRouteTable ? {} : env);
    this.authorizer = this.connectAuthorizer(handler);
  }

  /** Worker threads loading `modules`; the route table's memory store is shared with them. */
  private startPool(modules: HandlerModules): Promise<HandlerPool> {
    const shared: SharedStore | undefined =
      this.runsRouteTable && handlerStoreKind() === "memory"
        ? {
            kind: "memory",
            store: () => {
              if (!this.memoryStore) throw new Error("the gateway's memory store is not loaded");
              return this.memoryStore;
            },
          }
        : undefined;
    return HandlerPool.start({
      modules,
      ...(this.runsRouteTable ? { preload: ROUTE_TABLE_PRELOAD } : {}),
      size: this.options.handlerWorkers ?? 1,
      ...(shared ? { sharedStore: shared } : {}),
      log: this.sink,
    });
  }

  private connectAuthorizer(handler: AuthorizerHandler): ConnectAuthorizer {
    return new ConnectAuthorizer({
      identitySources: this.identitySources ?? [],
      handler,
      methodArn: methodArnOf(handlerRegion(), this.apiId, this.stage),
      timeoutMs: this.options.authorizer?.timeoutMs,
      log: this.log,
    });
  }

  private checkOrigin(origin: string | undefined): OriginVerdict {
    return this.originPolicy?.checkOrigin(origin) ?? { allow: false, reason: "the gateway is not listening" };
  }

  /**
   * Dispatch to `given`, each call noted when they are this thread's handlers (`inThread`): a hot reload releases
   * this thread's previous container only if it was built.
   */
  private dispatchTo(given: RouteHandlers, inThread = true): RouteDispatch {
    this.handlersUsed = false;
    const handlers: Record<string, RouteHandler> = {};
    for (const [routeKey, handler] of Object.entries(given)) {
      handlers[routeKey] = inThread
        ? (event) => {
            this.handlersUsed = true;
            return handler(event);
          }
        : handler;
    }
    return new RouteDispatch({
      handlers,
      routeSelectionExpression: this.options.routeSelectionExpression ?? ROUTE_SELECTION_EXPRESSION,
      integrationTimeoutMs: this.limits.integrationTimeoutMs,
      log: this.log,
      work: this.work,
    });
  }

  private async shutdown(): Promise<void> {
    if (this.state === "new" || this.state === "stopped") {
      this.state = "stopped";
      return;
    }
    this.state = "stopping";
    await this.sweeper?.stop();
    this.hotReload?.close();
    await this.hotReload?.settled();
    const listening = closeServer(this.server);
    // Handshakes whose `$connect` is still running are refused (503) when it returns; wait for them first.
    await this.handshakes.settled();
    for (const conn of this.connections.values()) conn.close(CLOSE.goingAway);
    const sockets = [...this.connections.values()].filter((c) => c.socket !== undefined).map((c) => c.ended);
    const grace = delay(STOP_GRACE_MS);
    await Promise.race([Promise.all(sockets), grace.promise]);
    grace.cancel();
    for (const conn of this.connections.values()) conn.socket?.terminate();
    await Promise.all(sockets);
    // `$disconnect` of every connection, and any message handler still running.
    await this.work.drained();
    await Promise.all([this.pool, ...this.retiring].map((pool) => pool?.close()));
    this.handshakes.close();
    this.server.closeAllConnections();
    await listening;
    this.state = "stopped";
  }

  private register(ctx: ConnectionContext): Connection {
    const conn = new Connection(ctx, this.hooks);
    this.connections.set(ctx.connectionId, conn);
    return conn;
  }

  private opened(conn: Connection, ws: WebSocket, socket: Duplex): void {
    attachSocket(conn, ws, socket, this.limits, (c, body) => this.dispatch.message(c, body));
  }

  /** The connection as `@connections` may act on it: only while open. */
  private managed(connectionId: string): ManagedConnection | undefined {
    const conn = this.connections.get(connectionId);
    const ws = conn?.socket;
    if (!conn?.isOpen || !ws || ws.readyState !== WebSocket.OPEN) return undefined;
    return {
      connectedAt: conn.ctx.connectedAt,
      lastActiveAt: conn.lastActiveAt,
      sourceIp: conn.ctx.sourceIp,
      userAgent: conn.ctx.userAgent,
      send: (data) => conn.send(data),
      close: () => conn.closeDeferringDisconnect(CLOSE.deleted) ?? (() => {}),
    };
  }
}

/** Creates and starts a gateway. */
export function startLocalGateway(options: LocalGatewayOptions = {}): Promise<LocalGateway> {
  return new LocalGateway(options).start();
}

/** The host handlers call back on: a wildcard address is reached through loopback. */
function loopbackHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

/** The host shown to people: `localhost` for any loopback or wildcard address. */
function displayHost(host: string): string {
  const loopback = ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", ""];
  return loopback.includes(host) ? "localhost" : loopbackHost(host);
}
