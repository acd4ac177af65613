/**
 * Events to routes: `$connect` for the handshake, each text message to the route the selection expression
 * picks, `$disconnect` once a connection is over. Messages run concurrently; the client learns of a failure
 * only through API Gateway's error frames (no route and no `$default`: `Forbidden`; a throw: `Internal server
 * error`; the integration timeout: `Endpoint request timed out`), and the connection stays open. Routes are
 * one-way (no route responses): a returned body is not sent to the client.
 */
import type { WebSocketEvent } from "../runtime/event";
import type { Connection } from "./connection";
import { disconnectEvent, messageEvent, newRequestId } from "./events";
import { type GatewayFrameMessage, gatewayErrorFrame } from "./gateway-frames";
import { describeError, type GatewayLog } from "./gateway-log";
import type { InFlight } from "./in-flight";
import { durationOf, type Invocation, invokeHandler, outcomeNote, outcomeStatus } from "./invocation";
import type { RouteHandlers } from "./route-handlers";
import { CONNECT_ROUTE, DISCONNECT_ROUTE, selectRoute } from "./route-selection";

export interface RouteDispatchOptions {
  readonly handlers: RouteHandlers;
  readonly routeSelectionExpression: string;
  readonly integrationTimeoutMs: number;
  readonly log: GatewayLog;
  /** Where message and `$disconnect` invocations are tracked (the gateway's stop waits for them). */
  readonly work: InFlight;
}

export class RouteDispatch {
  private readonly routeKeys: readonly string[];

  constructor(private readonly options: RouteDispatchOptions) {
    this.routeKeys = Object.keys(options.handlers);
  }

  /** Runs `$connect` (the handshake waits for it). */
  connect(event: WebSocketEvent): Promise<Invocation> {
    return this.invoke(CONNECT_ROUTE, event);
  }

  /** Routes one inbound text message of `conn`. */
  message(conn: Connection, body: string): void {
    const { connectionId } = conn.ctx;
    let routeKey: string | undefined;
    try {
      routeKey = selectRoute(this.options.routeSelectionExpression, body, this.routeKeys);
    } catch (error) {
      // Never expected (route selection handles hostile input), but a throw here would end the whole process.
      this.options.log("MESSAGE", "-", connectionId, "500", 0, `route selection failed: ${describeError(error)}`);
      return sendErrorFrame(conn, "Internal server error", newRequestId());
    }
    if (routeKey === undefined) {
      this.options.log("MESSAGE", "-", connectionId, "403", 0, "no route and no $default");
      return sendErrorFrame(conn, "Forbidden", newRequestId());
    }
    const route = routeKey;
    const event = messageEvent(conn.ctx, route, body);
    const { requestId } = event.requestContext;
    this.options.work.track(
      this.invoke(route, event).then((outcome) => {
        this.options.log(
          "MESSAGE",
          route,
          connectionId,
          outcomeStatus(outcome),
          durationOf(outcome),
          outcomeNote(outcome),
        );
        if (outcome.kind === "error") sendErrorFrame(conn, "Internal server error", requestId);
        else if (outcome.kind === "timeout") sendErrorFrame(conn, "Endpoint request timed out", requestId);
      }),
    );
  }

  /** Runs `$disconnect` for `conn` (the connection calls this exactly once). */
  disconnect(conn: Connection, code: number, reason: string): void {
    const event = disconnectEvent(conn.ctx, code, reason);
    this.options.work.track(
      this.invoke(DISCONNECT_ROUTE, event).then((outcome) => {
        if (outcome.kind === "no-route") return;
        const note = [`code=${code}`, `reason=${JSON.stringify(reason)}`, outcomeNote(outcome)].filter(Boolean);
        this.options.log(
          "DISCONNECT",
          DISCONNECT_ROUTE,
          conn.ctx.connectionId,
          outcomeStatus(outcome),
          durationOf(outcome),
          note.join(" "),
        );
      }),
    );
  }

  private invoke(routeKey: string, event: WebSocketEvent): Promise<Invocation> {
    return invokeHandler(this.options.handlers[routeKey], event, this.options.integrationTimeoutMs);
  }
}

/** API Gateway's error frame, if the connection is still open (the client may have left meanwhile). */
function sendErrorFrame(conn: Connection, message: GatewayFrameMessage, requestId: string): void {
  if (!conn.isOpen) return;
  conn.send(Buffer.from(gatewayErrorFrame(message, conn.ctx.connectionId, requestId))).catch(() => {
    /* the client left meanwhile */
  });
}
