/**
 * LocalGateway: API Gateway's WebSocket API on one machine, invoking the same handlers as Lambda, in process.
 * Behaviour follows /work/shared/docs/apigw-websocket-semantics.md (Appendix A is the checklist):
 *
 * - `ws://HOST:PORT/{stage}`: the WebSocket API. `$connect` runs while the upgrade request waits; 2xx completes
 *   the handshake with the returned headers, another status refuses it with that status, a throw gives 502 (a
 *   timeout 504). Every other path is refused with 403.
 * - Each inbound text message gets a MESSAGE event and the route the selection expression picks; handlers run
 *   concurrently. No route and no `$default`: the `Forbidden` frame; a throw: `Internal server error`; no result
 *   within the integration timeout: `Endpoint request timed out`. The connection stays open in all three cases.
 * - `http://HOST:PORT/{stage}/@connections/{id}`: the management API (connections-endpoint.ts).
 * - Limits (limits.ts): binary frame → 1003, frame > 32 KB or message > 128 KB → 1009, idle 10 min and 2 h →
 *   1001; a text frame that is not UTF-8 → 1007 and other protocol violations → 1002 (`ws` fails the
 *   connection; AWS's codes for these are not documented). Every close, from either side, fires `$disconnect`
 *   once with its code and reason; the connection is unknown to `@connections` (410) from the moment its close
 *   starts.
 * - With `authorizer` (authorizer.ts), the `$connect` Lambda REQUEST authorizer runs first: a missing identity
 *   source → 401 without calling it; `Unauthorized` → 401; a denying policy → 403; any other failure → 500;
 *   an allow puts its context on every event of the connection as `requestContext.authorizer`.
 *
 * Handlers: by default the route table's exported `handler`s (route-handlers.ts), loaded after the gateway has
 * put the Lambda environment contract (STORE, TABLE_NAME / REDIS_URL, CALLBACK_URL = this gateway) in
 * `process.env`. Handlers cache their dependencies per process, so only one such gateway can run per process.
 * Tests that need several gateways inject handlers built around explicit dependencies instead.
 */
import { randomUUID } from "node:crypto";
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import type { HandlerResult, WebSocketEvent } from "../runtime/event";
import { ENV } from "../contract/env";
import { ROUTE_SELECTION_EXPRESSION } from "../contract/routes";
import {
  DEFAULT_AUTHORIZER_TIMEOUT_MS,
  authorizerEvent,
  authorizerInput,
  identitySourcesPresent,
  loadAuthorizerHandler,
  methodArnOf,
  parseIdentitySources,
  runAuthorizer,
  type AuthorizerDecision,
  type AuthorizerHandler,
  type IdentitySource,
  type LocalAuthorizerOptions,
} from "./authorizer";
import { handleConnectionsRequest, type ManagedConnection } from "./connections-endpoint";
import {
  connectEvent,
  disconnectEvent,
  messageEvent,
  newConnectionId,
  newRequestId,
  type ConnectInput,
  type ConnectionContext,
} from "./events";
import { FrameGuard, type FrameViolation } from "./frame-guard";
import { gatewayErrorFrame } from "./gateway-frames";
import { CLOSE, NO_STATUS_REASON, resolveLimits, type GatewayLimits } from "./limits";
import { loadRouteTableHandlers, type RouteHandler, type RouteHandlers } from "./route-handlers";
import { CONNECT_ROUTE, DISCONNECT_ROUTE, selectRoute } from "./route-selection";
import { connectInputOf, isStagePath, isWebSocketHandshake, sourceIpOf } from "./upgrade-request";
import { serveWebClient } from "./web-client";

export const DEFAULT_PORT = 3001;
export const DEFAULT_STAGE = "dev";
export const DEFAULT_HOST = "127.0.0.1";
export const LOCAL_API_ID = "local";

/** What an injected-handler factory learns about the gateway it serves (known only once it listens). */
export interface GatewayAddress {
  readonly port: number;
  readonly stage: string;
  /** `http://127.0.0.1:PORT/{stage}`: CALLBACK_URL for the handlers. */
  readonly callbackUrl: string;
}

export interface LocalGatewayOptions {
  /** Default 3001; 0 picks a free port. */
  readonly port?: number;
  /** Interface to listen on; default 127.0.0.1 (loopback only). */
  readonly host?: string;
  /** Default `dev`. */
  readonly stage?: string;
  /** `requestContext.apiId`; default `local`. */
  readonly apiId?: string;
  /**
   * Handlers to invoke instead of the route table's exported ones: a map, or a factory called once the port is
   * known (so it can build dependencies around `callbackUrl`). The map's keys are the API's routes.
   */
  readonly handlers?: RouteHandlers | ((address: GatewayAddress) => RouteHandlers | Promise<RouteHandlers>);
  /**
   * Default path only: variables put in `process.env` before the handlers load (the store's part of the
   * contract: STORE, TABLE_NAME, REDIS_URL, ...). CALLBACK_URL and dummy AWS credentials are added here.
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Default: the route table's `$request.body.action`. */
  readonly routeSelectionExpression?: string;
  /** Overrides of API Gateway's limits (tests use short timeouts). */
  readonly limits?: Partial<GatewayLimits>;
  /** One line per event and per `@connections` call; default `console.log`. */
  readonly log?: (line: string) => void;
  /** A Lambda REQUEST authorizer on `$connect` (see authorizer.ts); none by default, as with `auth: none`. */
  readonly authorizer?: LocalAuthorizerOptions;
}

/** Thrown by `start()` when the port cannot be bound; `code` is Node's (`EADDRINUSE`, `EACCES`, ...). */
export class GatewayListenError extends Error {
  override readonly name = "GatewayListenError";
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

type ConnectionState = "pending" | "open" | "closing" | "closed";

interface Connection {
  readonly ctx: ConnectionContext;
  state: ConnectionState;
  ws?: WebSocket;
  lastActiveAt: number;
  idleTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
  disconnectFired: boolean;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;
  markClosed(): void;
}

type Invocation =
  | { readonly kind: "result"; readonly result: HandlerResult | undefined | undefined; readonly durationMs: number }
  | { readonly kind: "error"; readonly error: unknown; readonly durationMs: number }
  | { readonly kind: "timeout"; readonly durationMs: number }
  | { readonly kind: "no-route" };

/** A text frame that is not valid UTF-8: RFC 6455 §8.1 requires failing the connection with 1007. */
const INVALID_UTF8 = { code: 1007, reason: "Invalid UTF-8 in text frame" } as const;
/** Any other framing violation `ws` detects (bad opcode, RSV bits, unmasked frame, bad close code). */
const PROTOCOL_ERROR = { code: 1002, reason: "Protocol error" } as const;

/**
 * Handshake refusals of the authorizer. API Gateway's WebSocket bodies are not documented; these follow its REST
 * APIs (`{"message":"Unauthorized"}`, `{"message":"Forbidden"}`, and `{"message":null}` for a broken authorizer).
 */
const AUTHORIZER_REFUSALS: Record<401 | 403 | 500, Record<string, string> & { body: string }> = {
  401: {
    "x-amzn-ErrorType": "UnauthorizedException",
    "Content-Type": "application/json",
    body: '{"message":"Unauthorized"}',
  },
  403: {
    "x-amzn-ErrorType": "ForbiddenException",
    "Content-Type": "application/json",
    body: '{"message":"Forbidden"}',
  },
  500: {
    "x-amzn-ErrorType": "AuthorizerConfigurationException",
    "Content-Type": "application/json",
    body: '{"message":null}',
  },
};

/** Response headers of `$connect` that the handshake itself owns. */
const HANDSHAKE_HEADERS = new Set([
  "upgrade",
  "connection",
  "sec-websocket-accept",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "content-length",
  "transfer-encoding",
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The route-table handlers read the environment once per process, so only one gateway may use them. */
let routeTableGatewayStarted = false;

export class LocalGateway {
  readonly stage: string;
  readonly limits: GatewayLimits;
  private readonly host: string;
  private readonly apiId: string;
  private readonly expression: string;
  private readonly log: (line: string) => void;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, Connection>();
  /** `$connect` response headers and subprotocol, per upgrade request, for the 101 response. */
  private readonly handshakeHeaders = new WeakMap<IncomingMessage, { headers: string[]; protocol?: string }>();
  /** Invocations still running (each bounded by the integration timeout); `stop()` waits for them. */
  private readonly work = new Set<Promise<unknown>>();
  /** Handshakes whose `$connect` is still running. */
  private readonly handshakes = new Set<Promise<unknown>>();
  private handlers: RouteHandlers = {};
  private readonly identitySources: readonly IdentitySource[] | undefined;
  private authorizerHandler: AuthorizerHandler | undefined;
  private boundPort: number | undefined;
  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  private stopped: Promise<void> | undefined;

  constructor(private readonly options: LocalGatewayOptions = {}) {
    this.stage = options.stage ?? DEFAULT_STAGE;
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(this.stage)) {
      throw new RangeError(`stage must be 1-128 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(this.stage)}`);
    }
    this.host = options.host ?? DEFAULT_HOST;
    this.apiId = options.apiId ?? LOCAL_API_ID;
    this.expression = options.routeSelectionExpression ?? ROUTE_SELECTION_EXPRESSION;
    this.limits = resolveLimits(options.limits);
    this.identitySources = options.authorizer ? parseIdentitySources(options.authorizer.identitySources) : undefined;
    this.log = options.log ?? ((line) => console.log(line));
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on("clientError", (_err, socket) => socket.destroy());
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // Defence in depth: the frame guard enforces the message limit first, with the same close code.
      maxPayload: this.limits.maxMessageBytes,
      // API Gateway answers with the subprotocol `$connect` returned, or none (it never picks one itself).
      handleProtocols: (_offered, req) => this.handshakeHeaders.get(req)?.protocol ?? false,
    });
    this.wss.on("headers", (headers, req) => headers.push(...(this.handshakeHeaders.get(req)?.headers ?? [])));
  }

  /** The bound port (after `start()`). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error("the gateway is not listening");
    return this.boundPort;
  }

  /** `ws://localhost:PORT/{stage}`, what clients connect to. */
  get url(): string {
    return `ws://${this.displayHost()}:${this.port}/${this.stage}`;
  }

  /** `http://127.0.0.1:PORT/{stage}`, the `@connections` endpoint (CALLBACK_URL). */
  get callbackUrl(): string {
    return `http://${this.loopbackHost()}:${this.port}/${this.stage}`;
  }

  /** Sizes of the gateway's internal tables: all zero once every client has gone and every handler returned. */
  get tracked(): { readonly connections: number; readonly invocations: number; readonly handshakes: number } {
    return { connections: this.connections.size, invocations: this.work.size, handshakes: this.handshakes.size };
  }

  /** Ids of open connections (handshake done, not closing). */
  openConnectionIds(): string[] {
    return [...this.connections.values()].filter((c) => c.state === "open").map((c) => c.ctx.connectionId);
  }

  async start(): Promise<this> {
    if (this.state !== "new") throw new Error("a LocalGateway can be started once");
    this.state = "starting";
    const usesRouteTable = this.options.handlers === undefined;
    if (usesRouteTable && routeTableGatewayStarted) {
      throw new Error(
        "a gateway running the route table's handlers already ran in this process (handlers cache their environment per process); inject handlers to run more",
      );
    }
    await this.listen();
    try {
      const address: GatewayAddress = { port: this.port, stage: this.stage, callbackUrl: this.callbackUrl };
      if (usesRouteTable) {
        routeTableGatewayStarted = true;
        this.applyLambdaEnvironment();
        this.handlers = loadRouteTableHandlers();
      } else {
        const given = this.options.handlers!;
        this.handlers = typeof given === "function" ? await given(address) : given;
      }
      if (this.options.authorizer) {
        // The default is the deployed module, which reads AUTH_* from the environment put in place above.
        if (!this.options.authorizer.handler && !usesRouteTable) {
          for (const [key, value] of Object.entries(this.options.env ?? {})) process.env[key] = value;
        }
        this.authorizerHandler = this.options.authorizer.handler ?? loadAuthorizerHandler();
      }
    } catch (error) {
      this.state = "stopped";
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      throw error;
    }
    this.state = "running";
    return this;
  }

  /**
   * Closes every connection with 1001 "Going away" (each fires `$disconnect`), waits for running handlers and
   * stops listening. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    if (this.state === "new" || this.state === "stopped") {
      this.state = "stopped";
      return;
    }
    this.state = "stopping";
    const listening = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Handshakes whose `$connect` is still running are refused (503) when it returns; wait for them first.
    await Promise.allSettled([...this.handshakes]);
    for (const conn of this.connections.values()) this.closeConnection(conn, CLOSE.goingAway);
    const sockets = [...this.connections.values()].filter((c) => c.ws !== undefined).map((c) => c.closed);
    const grace = delay(1000);
    await Promise.race([Promise.all(sockets), grace.promise]);
    grace.cancel();
    for (const conn of this.connections.values()) conn.ws?.terminate();
    await Promise.all(sockets);
    // `$disconnect` of every connection, and any message handler still running.
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
    this.wss.close();
    this.server.closeAllConnections();
    await listening;
    this.state = "stopped";
  }

  // ---- startup ----------------------------------------------------------------------------------------------

  private listen(): Promise<void> {
    const requested = this.options.port ?? DEFAULT_PORT;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.state = "stopped";
        const where = `${this.host}:${requested}`;
        const message =
          error.code === "EADDRINUSE"
            ? `port ${requested} is already in use (${where})`
            : error.code === "EACCES"
              ? `no permission to listen on ${where}`
              : `cannot listen on ${where}: ${error.message}`;
        reject(new GatewayListenError(message, error.code));
      };
      this.server.once("error", onError);
      this.server.listen(requested, this.host, () => {
        this.server.off("error", onError);
        this.boundPort = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** What infra sets on every Lambda, pointed at this gateway; dummy AWS credentials so the SDK can sign. */
  private applyLambdaEnvironment(): void {
    for (const [key, value] of Object.entries(this.options.env ?? {})) process.env[key] = value;
    process.env[ENV.CALLBACK_URL] = this.callbackUrl;
    process.env.AWS_REGION ??= "us-east-1";
    process.env.AWS_ACCESS_KEY_ID ??= "local";
    process.env.AWS_SECRET_ACCESS_KEY ??= "local";
  }

  private loopbackHost(): string {
    if (this.host === "0.0.0.0" || this.host === "::" || this.host === "") return "127.0.0.1";
    return this.host.includes(":") ? `[${this.host}]` : this.host;
  }

  private displayHost(): string {
    const loopback = ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", ""];
    return loopback.includes(this.host) ? "localhost" : this.loopbackHost();
  }

  // ---- HTTP: the management API -----------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    // The browser client (web/index.html) at `/`; everything else is the management API (or its 403).
    if (serveWebClient(req, res, this.stage)) return this.logLine(req.method ?? "GET", "web", "-", "200", 0);
    handleConnectionsRequest(req, res, {
      stage: this.stage,
      maxPostBytes: this.limits.maxPostBytes,
      lookup: (id) => this.managed(id),
      log: (method, id, status, ms) => this.logLine(method, "@connections", id, String(status), ms),
    }).catch((error: unknown) => {
      this.logLine(req.method ?? "?", "@connections", "-", "500", 0, `error=${describe(error)}`);
      if (!res.headersSent)
        res.writeHead(500, { "x-amzn-RequestId": randomUUID(), "x-amzn-ErrorType": "InternalServerErrorException" });
      res.end();
    });
  }

  private managed(connectionId: string): ManagedConnection | undefined {
    const conn = this.connections.get(connectionId);
    const ws = conn?.ws;
    if (conn?.state !== "open" || !ws || ws.readyState !== WebSocket.OPEN) return undefined;
    return {
      connectedAt: conn.ctx.connectedAt,
      lastActiveAt: conn.lastActiveAt,
      sourceIp: conn.ctx.sourceIp,
      userAgent: conn.ctx.userAgent,
      send: (data) => this.sendFrame(conn, data),
      close: () => {
        this.closeConnection(conn, CLOSE.deleted, { fireDisconnect: false });
        return () => this.fireDisconnect(conn, CLOSE.deleted.code, CLOSE.deleted.reason);
      },
    };
  }

  // ---- handshake ----------------------------------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    if (!isStagePath(req.url ?? "/", this.stage)) {
      this.logLine("CONNECT", "-", "-", "403", 0, `path=${req.url}`);
      return refuseHandshake(socket, 403, {
        "x-amzn-ErrorType": "ForbiddenException",
        "Content-Type": "application/json",
        body: '{"message":"Forbidden"}',
      });
    }
    if (this.state !== "running") return refuseHandshake(socket, 503);
    // Malformed handshakes never reach `$connect`: `ws` refuses them itself (400 and friends).
    if (!isWebSocketHandshake(req)) return this.wss.handleUpgrade(req, socket, head, (ws) => ws.terminate());
    const handshake = this.handshake(req, socket, head).catch((error: unknown) => {
      this.logLine("CONNECT", CONNECT_ROUTE, "-", "500", 0, `gateway error: ${describe(error)}`);
      socket.destroy();
    });
    this.track(handshake, this.handshakes);
  }

  private async handshake(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const connectedAt = Date.now();
    const userAgent = req.headers["user-agent"];
    const unauthorized: ConnectionContext = {
      connectionId: newConnectionId(),
      connectedAt,
      stage: this.stage,
      apiId: this.apiId,
      domainName: `localhost:${this.port}`,
      sourceIp: sourceIpOf(req),
      ...(userAgent !== undefined ? { userAgent } : {}),
    };
    const input = connectInputOf(req, this.port);
    const auth = await this.authorize(req, unauthorized, input);
    if (auth && !auth.allow) {
      this.logLine("CONNECT", "authorizer", unauthorized.connectionId, String(auth.status), 0, auth.note);
      return refuseHandshake(socket, auth.status, AUTHORIZER_REFUSALS[auth.status]);
    }
    const ctx: ConnectionContext = auth ? { ...unauthorized, authorizer: auth.authorizer } : unauthorized;
    const conn = newConnection(ctx);
    // Registered while `$connect` runs so `@connections` knows the id, and answers 410 for it until the 101.
    this.connections.set(ctx.connectionId, conn);
    let clientLeft = false;
    const onLeave = () => (clientLeft = true);
    socket.once("close", onLeave);

    const event = connectEvent(ctx, input, connectedAt);
    const outcome = await this.invoke(CONNECT_ROUTE, event);
    socket.off("close", onLeave);
    const decision = connectDecision(outcome);
    this.logLine(
      "CONNECT",
      CONNECT_ROUTE,
      ctx.connectionId,
      String(decision.status),
      durationOf(outcome),
      decision.note,
    );

    if (!decision.accept) {
      this.connections.delete(ctx.connectionId);
      conn.state = "closed";
      conn.markClosed();
      return refuseHandshake(
        socket,
        decision.status,
        decision.status === 502 ? { body: '{"message": "Internal server error"}' } : {},
      );
    }
    const refuseAfterConnect = (status: number | undefined, code: number, reason: string) => {
      // `$connect` has run (the handler may have stored the connection): end it the way a close would.
      conn.state = "closing";
      if (status !== undefined) refuseHandshake(socket, status);
      else socket.destroy();
      this.connections.delete(ctx.connectionId);
      conn.markClosed();
      this.fireDisconnect(conn, code, reason);
    };
    if (clientLeft || socket.destroyed) return refuseAfterConnect(undefined, 1006, "");
    if (this.state !== "running") return refuseAfterConnect(503, CLOSE.goingAway.code, CLOSE.goingAway.reason);

    this.handshakeHeaders.set(req, handshakeHeadersOf(outcome.kind === "result" ? outcome.result : undefined));
    let upgraded = false;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      this.onOpen(conn, ws, socket);
    });
    // `ws` drops a socket that half-closed meanwhile without calling back (the upgrade is synchronous otherwise).
    if (!upgraded) refuseAfterConnect(undefined, 1006, "");
  }

  /** Runs the `$connect` authorizer when one is configured; `undefined` when none is. */
  private async authorize(
    req: IncomingMessage,
    ctx: ConnectionContext,
    input: ConnectInput,
  ): Promise<AuthorizerDecision | undefined> {
    if (!this.identitySources || !this.authorizerHandler) return undefined;
    if (!identitySourcesPresent(this.identitySources, input)) {
      return { allow: false, status: 401, note: "identity source missing: authorizer not called" };
    }
    const methodArn = methodArnOf(process.env.AWS_REGION ?? "us-east-1", this.apiId, this.stage);
    const event = authorizerEvent(ctx, authorizerInput(req, input), methodArn);
    const { decision, durationMs } = await runAuthorizer(
      this.authorizerHandler,
      event,
      this.options.authorizer?.timeoutMs ?? DEFAULT_AUTHORIZER_TIMEOUT_MS,
    );
    this.logLine(
      "AUTHORIZE",
      "authorizer",
      ctx.connectionId,
      decision.allow ? "200" : String(decision.status),
      durationMs,
      decision.note,
    );
    return decision;
  }

  // ---- open connection ----------------------------------------------------------------------------------------

  private onOpen(conn: Connection, ws: WebSocket, socket: Duplex): void {
    conn.ws = ws;
    conn.state = "open";
    ws.on("error", (error: Error & { code?: string }) => {
      // `ws` has already sent its close frame for these; this records the close and fires `$disconnect`.
      // Its own message limit (a backstop for the frame guard) closes with 1009.
      if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") this.closeConnection(conn, CLOSE.tooBig);
      else if (error.code === "WS_ERR_INVALID_UTF8")
        this.closeConnection(conn, INVALID_UTF8, { detail: error.message });
      else if (error.code?.startsWith("WS_ERR_")) this.closeConnection(conn, PROTOCOL_ERROR, { detail: error.message });
    });
    const guard = new FrameGuard(this.limits, (violation) =>
      this.closeConnection(conn, violation.kind === "binary" ? CLOSE.binary : CLOSE.tooBig, {
        detail: describeViolation(violation),
      }),
    );
    // Prepended: the guard sees each chunk before `ws` parses it, so an oversized frame is refused on its header.
    socket.prependListener("data", (chunk: Buffer) => guard.push(chunk));
    ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on("close", (code: number, reason: Buffer) => this.onSocketClosed(conn, code, reason.toString("utf8")));
    conn.idleTimer = setTimeout(
      () => this.closeConnection(conn, CLOSE.goingAway, { detail: "idle timeout" }),
      this.limits.idleTimeoutMs,
    );
    conn.lifetimeTimer = setTimeout(
      () => this.closeConnection(conn, CLOSE.goingAway, { detail: "maximum connection duration" }),
      this.limits.maxConnectionMs,
    );
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.state !== "open") return; // frames that were already in flight when the close started
    if (isBinary) return this.closeConnection(conn, CLOSE.binary);
    this.touch(conn);
    const body = rawToBuffer(data).toString("utf8");
    let routeKey: string | undefined;
    try {
      routeKey = selectRoute(this.expression, body, Object.keys(this.handlers));
    } catch (error) {
      // Never expected (route selection handles hostile input), but a throw here would end the whole process.
      const requestId = newRequestId();
      this.logLine("MESSAGE", "-", conn.ctx.connectionId, "500", 0, `route selection failed: ${describe(error)}`);
      this.sendGatewayFrame(conn, gatewayErrorFrame("Internal server error", conn.ctx.connectionId, requestId));
      return;
    }
    if (routeKey === undefined) {
      const requestId = newRequestId();
      this.logLine("MESSAGE", "-", conn.ctx.connectionId, "403", 0, "no route and no $default");
      this.sendGatewayFrame(conn, gatewayErrorFrame("Forbidden", conn.ctx.connectionId, requestId));
      return;
    }
    const event = messageEvent(conn.ctx, routeKey, body);
    this.track(
      this.invoke(routeKey, event).then((outcome) => {
        const { requestId } = event.requestContext;
        const status = outcomeStatus(outcome);
        this.logLine("MESSAGE", routeKey, conn.ctx.connectionId, status, durationOf(outcome), outcomeNote(outcome));
        if (outcome.kind === "error") {
          this.sendGatewayFrame(conn, gatewayErrorFrame("Internal server error", conn.ctx.connectionId, requestId));
        } else if (outcome.kind === "timeout") {
          this.sendGatewayFrame(
            conn,
            gatewayErrorFrame("Endpoint request timed out", conn.ctx.connectionId, requestId),
          );
        }
        // Routes are one-way (no route responses): a returned body is not sent to the client.
      }),
    );
  }

  private sendGatewayFrame(conn: Connection, frame: string): void {
    if (conn.state !== "open") return;
    this.sendFrame(conn, Buffer.from(frame)).catch(() => {
      /* the client left meanwhile */
    });
  }

  private sendFrame(conn: Connection, data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = conn.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error("connection is not open"));
      this.touch(conn);
      ws.send(data, { binary: false }, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** A data frame went either way: the idle timer starts over. */
  private touch(conn: Connection): void {
    conn.lastActiveAt = Date.now();
    conn.idleTimer?.refresh();
  }

  /** The gateway ends the connection: close frame out, connection gone for `@connections`, `$disconnect` fired. */
  private closeConnection(
    conn: Connection,
    close: { readonly code: number; readonly reason: string },
    options: { readonly fireDisconnect?: boolean; readonly detail?: string } = {},
  ): void {
    if (conn.state !== "open") return;
    conn.state = "closing";
    clearTimers(conn);
    this.logLine("CLOSE", "-", conn.ctx.connectionId, String(close.code), 0, options.detail ?? close.reason);
    conn.ws?.close(close.code, close.reason);
    if (options.fireDisconnect !== false) this.fireDisconnect(conn, close.code, close.reason);
  }

  /** The socket is closed, whoever started it: a close the client started (or a dropped TCP) fires `$disconnect`. */
  private onSocketClosed(conn: Connection, code: number, reason: string): void {
    clearTimers(conn);
    this.connections.delete(conn.ctx.connectionId);
    const clientInitiated = conn.state === "open";
    conn.state = "closed";
    if (clientInitiated) this.fireDisconnect(conn, code, code === 1005 ? NO_STATUS_REASON : reason);
    conn.markClosed();
  }

  private fireDisconnect(conn: Connection, code: number, reason: string): void {
    if (conn.disconnectFired) return;
    conn.disconnectFired = true;
    const event = disconnectEvent(conn.ctx, code, reason);
    this.track(
      this.invoke(DISCONNECT_ROUTE, event).then((outcome) => {
        if (outcome.kind === "no-route") return;
        this.logLine(
          "DISCONNECT",
          DISCONNECT_ROUTE,
          conn.ctx.connectionId,
          outcomeStatus(outcome),
          durationOf(outcome),
          [`code=${code}`, `reason=${JSON.stringify(reason)}`, outcomeNote(outcome)].filter(Boolean).join(" "),
        );
      }),
    );
  }

  // ---- invocation ---------------------------------------------------------------------------------------------

  /** Runs a route's handler with the integration timeout; never rejects. */
  private async invoke(routeKey: string, event: WebSocketEvent): Promise<Invocation> {
    const handler: RouteHandler | undefined = this.handlers[routeKey];
    if (!handler) return { kind: "no-route" };
    const started = Date.now();
    const run = (async (): Promise<Invocation> => {
      try {
        const result = await handler(event);
        return { kind: "result", result, durationMs: Date.now() - started };
      } catch (error) {
        return { kind: "error", error, durationMs: Date.now() - started };
      }
    })();
    // A handler that outlives the timeout keeps running, unobserved (as on Lambda); nothing waits for it.
    const timeout = delay(this.limits.integrationTimeoutMs);
    const timedOut = timeout.promise.then((): Invocation => ({ kind: "timeout", durationMs: Date.now() - started }));
    try {
      return await Promise.race([run, timedOut]);
    } finally {
      timeout.cancel();
    }
  }

  private track(promise: Promise<unknown>, set: Set<Promise<unknown>> = this.work): void {
    const tracked: Promise<unknown> = promise.catch(() => undefined).finally(() => set.delete(tracked));
    set.add(tracked);
  }

  private logLine(
    kind: string,
    route: string,
    connectionId: string,
    status: string,
    durationMs: number,
    note?: string,
  ): void {
    const parts = [
      new Date().toISOString(),
      kind.padEnd(10),
      route.padEnd(12),
      connectionId.padEnd(16),
      status.padStart(3),
      `${durationMs}ms`,
    ];
    if (note) parts.push(note);
    this.log(parts.join(" "));
  }
}

/** Creates and starts a gateway. */
export function startLocalGateway(options: LocalGatewayOptions = {}): Promise<LocalGateway> {
  return new LocalGateway(options).start();
}

// ---- helpers --------------------------------------------------------------------------------------------------

function newConnection(ctx: ConnectionContext): Connection {
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  return { ctx, state: "pending", lastActiveAt: ctx.connectedAt, disconnectFired: false, closed, markClosed };
}

function clearTimers(conn: Connection): void {
  clearTimeout(conn.idleTimer);
  clearTimeout(conn.lifetimeTimer);
}

/** What `$connect`'s outcome means for the handshake (apigw-websocket-semantics.md §3.1). */
function connectDecision(outcome: Invocation): { accept: boolean; status: number; note?: string } {
  switch (outcome.kind) {
    case "no-route":
      return { accept: true, status: 200, note: "no $connect route" };
    case "error":
      return { accept: false, status: 502, note: `handler threw: ${describe(outcome.error)}` };
    case "timeout":
      return { accept: false, status: 504, note: "integration timeout" };
    case "result": {
      const status = (outcome.result as HandlerResult | undefined)?.statusCode;
      if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
        return { accept: false, status: 502, note: "malformed $connect result (no valid statusCode)" };
      }
      return { accept: status >= 200 && status < 300, status };
    }
  }
}

function handshakeHeadersOf(result: HandlerResult | undefined | undefined): { headers: string[]; protocol?: string } {
  const headers: string[] = [];
  let protocol: string | undefined;
  for (const [name, value] of Object.entries(result?.headers ?? {})) {
    if (typeof value !== "string" || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) continue;
    const lower = name.toLowerCase();
    if (lower === "sec-websocket-protocol") protocol = value.split(",")[0]!.trim();
    else if (!HANDSHAKE_HEADERS.has(lower)) headers.push(`${name}: ${value}`);
  }
  return { headers, ...(protocol ? { protocol } : {}) };
}

/** Writes a complete HTTP error response on the upgrade socket and closes it. */
function refuseHandshake(socket: Duplex, status: number, extra: Record<string, string> & { body?: string } = {}): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  const { body = "", ...headers } = extra;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}`,
    "Connection: close",
    `x-amzn-RequestId: ${randomUUID()}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.once("finish", () => socket.destroy());
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

function outcomeStatus(outcome: Invocation): string {
  switch (outcome.kind) {
    case "result":
      return String((outcome.result as HandlerResult | undefined)?.statusCode ?? "-");
    case "error":
      return "ERR";
    case "timeout":
      return "TIMEOUT";
    case "no-route":
      return "-";
  }
}

function outcomeNote(outcome: Invocation): string | undefined {
  if (outcome.kind === "error") return `handler threw: ${describe(outcome.error)}`;
  if (outcome.kind === "timeout") return "integration timeout";
  return undefined;
}

function durationOf(outcome: Invocation): number {
  return outcome.kind === "no-route" ? 0 : outcome.durationMs;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function describeViolation(violation: FrameViolation): string {
  switch (violation.kind) {
    case "binary":
      return "binary frame";
    case "frame-too-big":
      return `frame of ${violation.frameBytes} bytes > ${violation.limit}`;
    case "message-too-big":
      return `message of ${violation.messageBytes}+ bytes > ${violation.limit}`;
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}

function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}
