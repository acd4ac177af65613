/**
 * The WebSocket handshake as API Gateway runs it (docs/local-gateway.md): an upgrade request for
 * another path is refused with 403, a malformed one by `ws` itself (400 and friends, `$connect` never runs);
 * then the authorizer, if any (401 / 403 / 500 refuse); then `$connect`, while the request waits: 2xx sends
 * the 101 with the headers it returned, another status refuses with that status, a throw gives 502 and the
 * integration timeout 504. A connection `$connect` admitted whose 101 cannot be sent (the client left, the
 * gateway is stopping: 503) is over at once, with its `$disconnect`.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import type { WebSocketEvent } from "../runtime/event";
import type { ConnectAuthorizer } from "./connect-authorizer";
import type { Connection } from "./connection";
import { type ConnectInput, type ConnectionContext, connectEvent, newConnectionId } from "./events";
import { describeError, type GatewayLog } from "./gateway-log";
import {
  AUTHORIZER_REFUSALS,
  connectDecision,
  connectRefusal,
  FORBIDDEN_PATH,
  type HandshakeHeaders,
  handshakeHeadersOf,
  refuseHandshake,
} from "./handshake-response";
import { InFlight } from "./in-flight";
import { durationOf, type Invocation } from "./invocation";
import { CLOSE } from "./limits";
import { CONNECT_ROUTE } from "./route-selection";
import { connectInputOf, isStagePath, isWebSocketHandshake, sourceIpOf } from "./upgrade-request";

/** What the handshake needs from the gateway. */
export interface HandshakeHost {
  readonly stage: string;
  readonly apiId: string;
  readonly log: GatewayLog;
  /** The largest inbound message, `ws`'s own backstop. */
  readonly maxMessageBytes: number;
  port(): number;
  /** Whether the gateway accepts connections (not starting, not stopping). */
  running(): boolean;
  authorizer(): ConnectAuthorizer | undefined;
  /** Whether a browser page from `origin` may connect (origin-policy.ts); no `Origin` is a non-browser client. */
  checkOrigin(origin: string | undefined): { readonly allow: boolean; readonly reason?: string };
  invokeConnect(event: WebSocketEvent): Promise<Invocation>;
  /** A new connection, known (as `connecting`) to `@connections` from now on. */
  register(ctx: ConnectionContext): Connection;
  /** The 101 is out. */
  opened(conn: Connection, ws: WebSocket, socket: Duplex): void;
}

export class Handshakes {
  private readonly wss: WebSocketServer;
  /** `$connect` response headers and subprotocol, per upgrade request, for the 101 response. */
  private readonly responses = new WeakMap<IncomingMessage, HandshakeHeaders>();
  /** Handshakes whose authorizer or `$connect` is still running. */
  private readonly running = new InFlight();

  constructor(private readonly host: HandshakeHost) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // Defence in depth: the frame guard enforces the message limit first, with the same close code.
      maxPayload: host.maxMessageBytes,
      // API Gateway answers with the subprotocol `$connect` returned, or none (it never picks one itself).
      handleProtocols: (_offered, req) => this.responses.get(req)?.protocol ?? false,
    });
    this.wss.on("headers", (headers, req) => headers.push(...(this.responses.get(req)?.headers ?? [])));
  }

  get size(): number {
    return this.running.size;
  }

  /** Resolves once the handshakes running now are over (each refused with 503 if the gateway stopped meanwhile). */
  settled(): Promise<void> {
    return this.running.settled();
  }

  close(): void {
    this.wss.close();
  }

  /** An HTTP upgrade request arrived. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    if (!isStagePath(req.url ?? "/", this.host.stage)) {
      this.host.log("CONNECT", "-", "-", "403", 0, `path=${req.url}`);
      return refuseHandshake(socket, 403, FORBIDDEN_PATH);
    }
    if (!this.host.running()) return refuseHandshake(socket, 503);
    // A local-only safety, before anything runs: API Gateway checks no Origin (origin-policy.ts).
    const origin = this.host.checkOrigin(req.headers.origin);
    if (!origin.allow) {
      this.host.log("CONNECT", "-", "-", "403", 0, origin.reason);
      return refuseHandshake(socket, 403, FORBIDDEN_PATH);
    }
    // Malformed handshakes never reach `$connect`: `ws` refuses them itself (400 and friends).
    if (!isWebSocketHandshake(req)) return this.wss.handleUpgrade(req, socket, head, (ws) => ws.terminate());
    const handshake = this.run(req, socket, head).catch((error: unknown) => {
      this.host.log("CONNECT", CONNECT_ROUTE, "-", "500", 0, `gateway error: ${describeError(error)}`);
      socket.destroy();
    });
    this.running.track(handshake);
  }

  private async run(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const connectedAt = Date.now();
    const input = connectInputOf(req, this.host.port());
    const unauthorized = this.contextOf(req, connectedAt);
    const auth = await this.host.authorizer()?.authorize(req, unauthorized, input);
    if (auth && !auth.allow) {
      this.host.log("CONNECT", "authorizer", unauthorized.connectionId, String(auth.status), 0, auth.note);
      return refuseHandshake(socket, auth.status, AUTHORIZER_REFUSALS[auth.status]);
    }
    const ctx: ConnectionContext = auth ? { ...unauthorized, authorizer: auth.authorizer } : unauthorized;
    // Registered while `$connect` runs so `@connections` knows the id, and answers 410 for it until the 101.
    const conn = this.host.register(ctx);
    const { outcome, clientLeft } = await this.runConnect(conn, input, socket, connectedAt);
    const decision = connectDecision(outcome);
    this.host.log(
      "CONNECT",
      CONNECT_ROUTE,
      ctx.connectionId,
      String(decision.status),
      durationOf(outcome),
      decision.note,
    );
    if (!decision.accept) {
      conn.refuse();
      return refuseHandshake(socket, decision.status, connectRefusal(decision));
    }
    if (clientLeft || socket.destroyed) return this.abandon(conn, socket, undefined, 1006, "");
    if (!this.host.running()) return this.abandon(conn, socket, 503, CLOSE.goingAway.code, CLOSE.goingAway.reason);
    this.responses.set(req, handshakeHeadersOf(outcome.kind === "result" ? outcome.result : undefined));
    let upgraded = false;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      this.host.opened(conn, ws, socket);
    });
    // `ws` drops a socket that half-closed meanwhile without calling back (the upgrade is synchronous otherwise).
    if (!upgraded) this.abandon(conn, socket, undefined, 1006, "");
  }

  /** Runs `$connect` while the upgrade request waits, noting whether the client hung up meanwhile. */
  private async runConnect(
    conn: Connection,
    input: ConnectInput,
    socket: Duplex,
    connectedAt: number,
  ): Promise<{ readonly outcome: Invocation; readonly clientLeft: boolean }> {
    let clientLeft = false;
    const onLeave = () => (clientLeft = true);
    socket.once("close", onLeave);
    const outcome = await this.host.invokeConnect(connectEvent(conn.ctx, input, connectedAt));
    socket.off("close", onLeave);
    return { outcome, clientLeft };
  }

  /** `$connect` has run (the handler may have stored the connection): end it the way a close would. */
  private abandon(conn: Connection, socket: Duplex, status: number | undefined, code: number, reason: string): void {
    if (status !== undefined) refuseHandshake(socket, status);
    else socket.destroy();
    conn.abandon(code, reason);
  }

  private contextOf(req: IncomingMessage, connectedAt: number): ConnectionContext {
    const userAgent = req.headers["user-agent"];
    return {
      connectionId: newConnectionId(),
      connectedAt,
      stage: this.host.stage,
      apiId: this.host.apiId,
      domainName: `localhost:${this.host.port()}`,
      sourceIp: sourceIpOf(req),
      ...(userAgent !== undefined ? { userAgent } : {}),
    };
  }
}
