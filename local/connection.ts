/**
 * One WebSocket connection as the gateway tracks it: a state machine whose states carry what they need.
 *
 *   connecting ──101──▶ open ──the gateway closes──▶ closing ──socket closed──▶ closed
 *        │                └────────the client closes, or TCP drops─────────────▶ closed
 *        ├──`$connect` refuses──▶ refused
 *        └──`$connect` admitted it, the 101 could not be sent──▶ closed
 *
 * `$disconnect` fires on the one transition out of `open` (or out of `connecting` into `closed`): no state is
 * ever entered twice, so it fires exactly once per admitted connection, and never for a refused one. DELETE
 * `@connections` defers it until its 204 is out, so that close hands the firing to its caller instead.
 * While `open`, two timers run: idle (restarted by every data frame in either direction) and maximum duration;
 * either closes with 1001. `@connections` sees the connection only while `open` (410 otherwise).
 */
import { WebSocket } from "ws";
import type { ConnectionContext } from "./events";
import { CLOSE, type GatewayLimits } from "./limits";

export type ConnectionState =
  | { readonly kind: "connecting" }
  | {
      readonly kind: "open";
      readonly ws: WebSocket;
      readonly idleTimer: NodeJS.Timeout;
      readonly lifetimeTimer: NodeJS.Timeout;
    }
  | { readonly kind: "closing"; readonly ws: WebSocket }
  | { readonly kind: "closed" }
  | { readonly kind: "refused" };

export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

/** What the gateway does at the connection's transitions (one object shared by every connection). */
export interface ConnectionHooks {
  /** Runs `$disconnect`: called exactly once per admitted connection. */
  disconnect(conn: Connection, code: number, reason: string): void;
  /** The gateway started closing an open connection (`detail` says why, for the log). */
  closing(conn: Connection, close: CloseFrame, detail: string): void;
  /** The connection is over (`closed` or `refused`): forget it. */
  ended(conn: Connection): void;
}

export type ConnectionTimeouts = Pick<GatewayLimits, "idleTimeoutMs" | "maxConnectionMs">;

export class Connection {
  private current: ConnectionState = { kind: "connecting" };
  /** Last data frame in either direction (`@connections` GET reports it). */
  lastActiveAt: number;
  /** Resolves once the connection is over. */
  readonly ended: Promise<void>;
  private resolveEnded!: () => void;

  constructor(
    readonly ctx: ConnectionContext,
    private readonly hooks: ConnectionHooks,
  ) {
    this.lastActiveAt = ctx.connectedAt;
    this.ended = new Promise<void>((resolve) => (this.resolveEnded = resolve));
  }

  get state(): ConnectionState {
    return this.current;
  }

  get isOpen(): boolean {
    return this.current.kind === "open";
  }

  /** The socket, while open or closing. */
  get socket(): WebSocket | undefined {
    const state = this.current;
    return state.kind === "open" || state.kind === "closing" ? state.ws : undefined;
  }

  /** The handshake completed: `connecting` → `open`, timers started. */
  open(ws: WebSocket, timeouts: ConnectionTimeouts): void {
    if (this.current.kind !== "connecting") throw new Error(`cannot open a connection that is ${this.current.kind}`);
    const idleTimer = setTimeout(() => this.close(CLOSE.goingAway, "idle timeout"), timeouts.idleTimeoutMs);
    const lifetimeTimer = setTimeout(
      () => this.close(CLOSE.goingAway, "maximum connection duration"),
      timeouts.maxConnectionMs,
    );
    this.current = { kind: "open", ws, idleTimer, lifetimeTimer };
  }

  /** A data frame went either way: the idle timer starts over. */
  touch(): void {
    this.lastActiveAt = Date.now();
    if (this.current.kind === "open") this.current.idleTimer.refresh();
  }

  /** Sends one text frame; rejects if the socket is not open. */
  send(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = this.socket;
      if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error("connection is not open"));
      this.touch();
      ws.send(data, { binary: false }, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** The gateway ends an open connection: close frame out, `$disconnect` fired. Nothing unless open. */
  close(frame: CloseFrame, detail: string = frame.reason): void {
    if (this.startClosing(frame, detail)) this.hooks.disconnect(this, frame.code, frame.reason);
  }

  /**
   * As `close`, but `$disconnect` fires only when the returned function is called (DELETE `@connections`
   * answers first); `undefined` when the connection was not open.
   */
  closeDeferringDisconnect(frame: CloseFrame): (() => void) | undefined {
    if (!this.startClosing(frame, frame.reason)) return undefined;
    let fire: (() => void) | undefined = () => this.hooks.disconnect(this, frame.code, frame.reason);
    return () => {
      const once = fire;
      fire = undefined;
      once?.();
    };
  }

  /** `$connect` did not admit the connection: it never existed for the handlers, no `$disconnect`. */
  refuse(): void {
    if (this.current.kind !== "connecting") return;
    this.current = { kind: "refused" };
    this.end();
  }

  /** `$connect` admitted it but the handshake could not complete (client gone, gateway stopping). */
  abandon(code: number, reason: string): void {
    if (this.current.kind !== "connecting") return;
    this.current = { kind: "closed" };
    this.end();
    this.hooks.disconnect(this, code, reason);
  }

  /** The socket closed, whoever started it: a close the client started (or a dropped TCP) fires `$disconnect`. */
  socketClosed(code: number, reason: string): void {
    const before = this.current;
    if (before.kind === "closed" || before.kind === "refused") return;
    if (before.kind === "open") clearTimers(before);
    this.current = { kind: "closed" };
    this.end();
    if (before.kind === "open") this.hooks.disconnect(this, code, reason);
  }

  /** `open` → `closing`; false (and nothing done) in any other state. */
  private startClosing(frame: CloseFrame, detail: string): boolean {
    const state = this.current;
    if (state.kind !== "open") return false;
    clearTimers(state);
    this.current = { kind: "closing", ws: state.ws };
    this.hooks.closing(this, frame, detail);
    state.ws.close(frame.code, frame.reason);
    return true;
  }

  private end(): void {
    this.hooks.ended(this);
    this.resolveEnded();
  }
}

function clearTimers(state: Extract<ConnectionState, { kind: "open" }>): void {
  clearTimeout(state.idleTimer);
  clearTimeout(state.lifetimeTimer);
}
