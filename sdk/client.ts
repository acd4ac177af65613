/**
 * The chat client: one WebSocket that comes back on its own. It connects with the project's subprotocol (so every
 * frame it gets is an envelope the server wrote), keeps the connection alive below API Gateway's idle timeout,
 * renews it before the two-hour limit, and after any loss reconnects with full-jitter backoff, rejoins its rooms
 * resuming each from the last sequence it saw, and sends again what was not acknowledged. Messages are shown once
 * (by server id) and, per room, in order.
 */
import { fullJitterDelay } from "./backoff";
import { ChatError } from "./chat-error";
import { type ConnectionEvent, type ConnectionState, transition } from "./connection-state";
import { Emitter } from "./emitter";
import { type Ack, Outbox } from "./outbox";
import {
  CHAT_SUBPROTOCOL,
  type ClientFrame,
  type ErrorFrame,
  type HistoryFrame,
  type MemberInfo,
  type MessageEvent,
  parseServerFrame,
  type ServerFrame,
} from "./protocol";
import { RoomCursors } from "./room-cursors";
import { SeenIds } from "./seen-ids";
import { unexpectedFrameError } from "./unexpected-frame";

/** The part of the standard WebSocket the client uses (browsers, Node 22+, or `ws` in Node 20). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "message", listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { readonly code: number; readonly reason: string }) => void): void;
  addEventListener(type: "open" | "error", listener: () => void): void;
}
export type SocketFactory = new (url: string, protocols?: string | string[]) => SocketLike;

export interface ChatClientOptions {
  /** The API's WebSocket URL, e.g. `wss://abc123.execute-api.us-east-1.amazonaws.com/prod`. */
  readonly url: string;
  /** A token for the `$connect` authorizer, or a function that returns a fresh one for every connect. */
  readonly token?: string | (() => string | Promise<string>);
  /** The query parameter the authorizer reads the token from. @default "token" */
  readonly tokenParam?: string;
  /** A display name (`?name=`), unverified unless the authorizer gives one. */
  readonly name?: string;
  /** The WebSocket class. @default globalThis.WebSocket (pass `ws`'s on Node 20) */
  readonly WebSocket?: SocketFactory;
  /** Reconnect backoff and limit. @default { baseMs: 500, capMs: 30000, maxAttempts: Infinity } */
  readonly reconnect?: { readonly baseMs?: number; readonly capMs?: number; readonly maxAttempts?: number };
  /** A `ping` after this long without a frame, below API Gateway's 10-minute idle timeout. @default 240000 */
  readonly heartbeatMs?: number;
  /** How long a `ping` may go unanswered before the connection counts as lost. @default 10000 */
  readonly heartbeatTimeoutMs?: number;
  /** Renew the connection after this long, before API Gateway's 2-hour limit closes it. @default 6900000 */
  readonly renewAfterMs?: number;
  /** How long a gap in a room's order may stay open before the client asks `history` for it. @default 1000 */
  readonly gapRepairMs?: number;
  /** Sends waiting for acknowledgement, at most. @default 1000 */
  readonly maxPendingSends?: number;
}

export interface ChatEvents {
  state: ConnectionState;
  /** A room message, a room-less broadcast or a direct message, each once. */
  message: MessageEvent;
  members: { room: string; members: readonly MemberInfo[]; more: boolean };
  joined: { room: string; member: MemberInfo; ts: number };
  left: { room: string; member: MemberInfo; ts: number };
  /** History no longer reaches back to the last message seen in `room`: messages between were missed. */
  gap: { room: string; afterSeq: number; resumedAt: number | undefined };
  error: ChatError;
  /** Who the server says this connection is (after every connect). */
  identity: { connectionId: string; userId?: string; name?: string };
}

const OPEN = 1;

export class ChatClient extends Emitter<ChatEvents> {
  private current: ConnectionState = "idle";
  private socket: SocketLike | undefined;
  private attempts = 0;
  private readonly seen = new SeenIds();
  private readonly cursors = new RoomCursors();
  private readonly outbox: Outbox;
  private readonly joins = new Map<string, { resolve: (m: MemberInfo[]) => void; reject: (e: ChatError) => void }>();
  private timers: ReturnType<typeof setTimeout>[] = [];
  private heartbeat: ReturnType<typeof setTimeout> | undefined;
  private pongDue: ReturnType<typeof setTimeout> | undefined;
  private refCounter = 0;
  /** Rooms rejoined after a connect whose `members` has not come yet: sends wait for them (membership first). */
  private readonly rejoining = new Set<string>();
  /** Rooms with a gap repair scheduled. */
  private readonly repairs = new Set<string>();
  private readonly refPrefix = randomId();

  constructor(private readonly options: ChatClientOptions) {
    super();
    this.outbox = new Outbox(options.maxPendingSends ?? 1_000);
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Opens the connection; it then stays up (reconnecting as needed) until {@link close}. */
  connect(): void {
    if (this.move("connect")) void this.open();
  }

  /** Closes for good: no reconnect; sends still waiting fail with `Closed`. */
  close(): void {
    if (!this.move("close")) return;
    this.clearTimers();
    this.socket?.close(1000, "client closed");
    this.socket = undefined;
    const closed = new ChatError("Closed", "The client was closed.", false);
    this.outbox.failAll(closed);
    for (const pending of this.joins.values()) pending.reject(closed);
    this.joins.clear();
  }

  /** Joins `room` (and rejoins it after every reconnect, resuming from the last message seen). */
  join(room: string): Promise<MemberInfo[]> {
    this.cursors.track(room);
    const answer = new Promise<MemberInfo[]>((resolve, reject) => this.joins.set(room, { resolve, reject }));
    if (this.current === "open") this.sendJoin(room);
    return answer;
  }

  leave(room: string): void {
    this.cursors.forget(room);
    this.write({ action: "leave", room });
  }

  /** Sends to a room; resolves with the server's acknowledgement (id and sequence). Queued while offline. */
  send(room: string, data: unknown): Promise<Ack> {
    return this.queue({ action: "sendmessage", room, data });
  }

  /** Sends to every connection (a room-less `sendmessage`). */
  broadcast(data: unknown): Promise<Ack> {
    return this.queue({ action: "sendmessage", data });
  }

  /** Sends to one connection. */
  sendTo(connectionId: string, data: unknown): Promise<Ack> {
    return this.queue({ action: "sendto", to: connectionId, data });
  }

  /** Asks for up to `limit` messages of `room` before sequence `before` (newest page when omitted). */
  history(room: string, before?: number, limit?: number): void {
    this.write({
      action: "history",
      room,
      ...(before !== undefined ? { before } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
  }

  private queue(frame: ClientFrame): Promise<Ack> {
    // Closed for good: nothing would ever send it.
    if (this.current === "closed") return Promise.reject(new ChatError("Closed", "The client was closed.", false));
    const ref = `${this.refPrefix}-${(++this.refCounter).toString(36)}`;
    const acked = this.outbox.add(ref, frame);
    const wire = this.outbox.frameOf(ref);
    if (wire && this.current === "open" && this.rejoining.size === 0) this.write(wire);
    return acked;
  }

  private move(event: ConnectionEvent): boolean {
    const next = transition(this.current, event);
    if (next === undefined) return false;
    this.current = next;
    this.emit("state", next);
    return true;
  }

  private async open(): Promise<void> {
    let url: string;
    try {
      url = await this.connectUrl();
    } catch (error) {
      this.emit("error", new ChatError("ConnectFailed", `Could not get a token: ${String(error)}`, true));
      return this.lost("failed");
    }
    if (this.current !== "connecting") return;
    const Socket = this.options.WebSocket ?? (globalThis as { WebSocket?: SocketFactory }).WebSocket;
    if (!Socket) throw new Error("No WebSocket class: pass options.WebSocket (e.g. the `ws` package's) on Node 20.");
    const socket = new Socket(url, CHAT_SUBPROTOCOL);
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      opened = true;
      this.onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (this.socket === socket) this.onText(String(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (!opened) {
        this.emit(
          "error",
          new ChatError("ConnectFailed", `The handshake failed (close ${event.code ?? "?"}); retrying.`, true),
        );
      }
      this.lost(opened ? "lost" : "failed");
    });
    // A failed handshake is followed by `close`, which decides what happens next.
    socket.addEventListener("error", () => {});
  }

  private async connectUrl(): Promise<string> {
    const url = new URL(this.options.url);
    const { token } = this.options;
    if (token !== undefined) {
      url.searchParams.set(this.options.tokenParam ?? "token", typeof token === "function" ? await token() : token);
    }
    if (this.options.name !== undefined) url.searchParams.set("name", this.options.name);
    return url.toString();
  }

  private onOpen(): void {
    if (!this.move("opened")) return;
    this.attempts = 0;
    this.write({ action: "whoami" });
    this.rejoining.clear();
    for (const room of this.cursors.rooms()) {
      this.rejoining.add(room);
      this.sendJoin(room);
    }
    // Queued sends go once every room is joined again: a room message before its join would be refused.
    if (this.rejoining.size === 0) this.flushDue();
    this.armHeartbeat();
    this.later(this.options.renewAfterMs ?? 115 * 60_000, () => this.renew());
  }

  private sendJoin(room: string): void {
    const after = this.cursors.beginResume(room);
    this.write({ action: "join", room, ...(after !== undefined ? { after } : {}) });
  }

  /** The connection went away (or never came): back off and try again, or give up. */
  private lost(event: "lost" | "failed"): void {
    this.clearTimers();
    if (!this.move(event)) return;
    const maxAttempts = this.options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY;
    if (++this.attempts > maxAttempts) {
      this.emit("error", new ChatError("ConnectFailed", `Gave up after ${maxAttempts} attempts.`, false));
      return this.close();
    }
    const delay = event === "lost" && this.attempts === 1 ? 0 : fullJitterDelay(this.attempts, this.options.reconnect);
    this.later(delay, () => {
      if (this.move("retry")) void this.open();
    });
  }

  /** Planned renewal before the 2-hour limit: a clean close, then an immediate reconnect that resumes. */
  private renew(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "renewing");
    this.lost("lost");
  }

  private armHeartbeat(): void {
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = setTimeout(() => {
      this.write({ action: "ping" });
      this.pongDue ??= setTimeout(() => {
        this.pongDue = undefined;
        this.emit("error", new ChatError("Timeout", "No answer to a heartbeat: reconnecting.", true));
        this.renew();
      }, this.options.heartbeatTimeoutMs ?? 10_000);
    }, this.options.heartbeatMs ?? 240_000);
  }

  private onText(text: string): void {
    // Any frame shows the connection is alive.
    if (this.pongDue) clearTimeout(this.pongDue);
    this.pongDue = undefined;
    this.armHeartbeat();
    const frame = parseServerFrame(text);
    if (frame) this.onFrame(frame);
    else this.emit("error", unexpectedFrameError(text));
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "message":
      case "broadcast":
      case "direct":
        return this.onMessage(frame);
      case "history":
        return this.onHistory(frame);
      case "members": {
        this.emit("members", { room: frame.room, members: frame.members, more: frame.more });
        const pending = this.joins.get(frame.room);
        this.joins.delete(frame.room);
        pending?.resolve([...frame.members]);
        this.rejoined(frame.room);
        return;
      }
      case "joined":
      case "left":
        this.emit(frame.type, { room: frame.room, member: memberOf(frame), ts: frame.ts });
        return;
      case "ack": {
        const { type: _type, ...ack } = frame;
        this.outbox.acknowledge(ack);
        return;
      }
      case "whoami":
        this.emit("identity", memberOf(frame));
        return;
      case "pong":
        return;
      case "error":
        return this.onError(frame);
    }
  }

  private onMessage(frame: MessageEvent): void {
    if (frame.type === "message" && typeof frame.seq === "number") {
      for (const ready of this.cursors.offer(frame)) this.show(ready);
      if (this.cursors.hasGap(frame.room)) this.repairLater(frame.room);
      return;
    }
    this.show(frame);
  }

  /** A `history` page: the next page of a resume is asked for (`after`), a finished one is shown in order. */
  private onHistory(frame: HistoryFrame): void {
    const step = this.cursors.resumed(frame);
    if (step.kind === "more") {
      this.write({ action: "history", room: frame.room, after: step.after });
      return;
    }
    if (step.gap !== undefined)
      this.emit("gap", { room: frame.room, afterSeq: step.gap, resumedAt: step.messages[0]?.seq });
    for (const message of step.messages) this.show(message);
  }

  /**
   * A room holds messages beyond a gap: most close within moments (concurrent fan-outs arrive out of order); one
   * still open after `gapRepairMs` is asked for with `history` (`after` = the watermark).
   */
  private repairLater(room: string): void {
    if (this.repairs.has(room)) return;
    this.repairs.add(room);
    this.later(this.options.gapRepairMs ?? 1_000, () => {
      this.repairs.delete(room);
      const after = this.current === "open" ? this.cursors.beginRepair(room) : undefined;
      if (after !== undefined) this.write({ action: "history", room, after });
    });
  }

  /** `room` answered its rejoin: once every room has, the queued sends go. */
  private rejoined(room: string): void {
    if (!this.rejoining.delete(room)) return;
    if (this.rejoining.size === 0) this.flushDue();
  }

  private show(message: MessageEvent): void {
    if (message.id !== undefined && !this.seen.admit(message.id)) return;
    this.emit("message", message);
  }

  private onError(frame: ErrorFrame): void {
    const error = new ChatError(frame.code, frame.message, frame.retryable === true, frame);
    const retryAfterMs = typeof frame.retryAfterMs === "number" ? frame.retryAfterMs : undefined;
    const room = typeof frame.room === "string" ? frame.room : undefined;
    if (frame.code === "TokenExpired") {
      // The server closes the connection next; the reconnect fetches a fresh token.
      this.emit("error", error);
      return;
    }
    if (typeof frame.ref === "string") {
      this.outbox.refuse(frame.ref, error, Date.now(), retryAfterMs);
      if (error.retryable) this.later((retryAfterMs ?? 1_000) + 1, () => this.flushDue());
    }
    if (room !== undefined && frame.ref === undefined) {
      const pending = this.joins.get(room);
      if (pending) {
        this.joins.delete(room);
        this.cursors.forget(room);
        pending.reject(error);
      }
      // A rejoin that failed does not hold the queued sends back.
      this.rejoined(room);
    }
    this.emit("error", error);
  }

  private flushDue(): void {
    if (this.current !== "open" || this.rejoining.size > 0) return;
    for (const frame of this.outbox.due(Date.now())) this.write(frame);
  }

  private write(frame: Record<string, unknown>): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(frame));
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      run();
    }, ms);
    this.timers.push(timer);
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    this.repairs.clear();
    if (this.heartbeat) clearTimeout(this.heartbeat);
    if (this.pongDue) clearTimeout(this.pongDue);
    this.heartbeat = undefined;
    this.pongDue = undefined;
  }
}

function memberOf(frame: { connectionId: string; userId?: string; name?: string; nameVerified?: boolean }): MemberInfo {
  return {
    connectionId: frame.connectionId,
    ...(frame.userId !== undefined ? { userId: frame.userId } : {}),
    ...(frame.name !== undefined ? { name: frame.name } : {}),
    ...(frame.nameVerified !== undefined ? { nameVerified: frame.nameVerified } : {}),
  };
}

/** 16 random base-36 characters: unique enough to scope this client's refs (no secure context needed). */
function randomId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(36).padStart(2, "0")).join("");
}
